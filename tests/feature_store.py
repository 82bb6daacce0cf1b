"""A feature set whose values change over time, a model that takes features from it, and labels at known times:
what the feature store's tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mlops.core.config import ModelSet, ProjectConfig, parse_config
from mlops.core.feature_sets import FeatureSets, load_feature_set

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS = ROOT / "feature_sets" / "customers.yaml"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SNAPSHOT_DAYS = (0, 10, 20, 30)


def customers() -> FeatureSets:
    return FeatureSets([(str(CUSTOMERS), load_feature_set(CUSTOMERS))])


CHURN = ROOT / "models" / "examples" / "churn.yaml"


def churn_config(on_missing: str = "reject", **overrides: Any) -> ProjectConfig:
    """The shipped example model (``models/examples/churn.yaml``), its ``on_missing`` and ``overrides`` applied."""
    raw: dict[str, Any] = yaml.safe_load(CHURN.read_text())
    raw["feature_sets"] = [{**raw["feature_sets"][0], "on_missing": on_missing}]
    raw.update(overrides)
    return parse_config(raw, "churn.yaml")


def churn_models(on_missing: str = "reject") -> ModelSet:
    return ModelSet([("churn.yaml", churn_config(on_missing))], customers())


def feature_rows(customers_n: int = 40, seed: int = 0) -> pd.DataFrame:
    """Each customer's features as of days 0, 10, 20 and 30: support calls and spend drift over time, so the
    value joined depends on the label's time."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(customers_n):
        spend = float(rng.uniform(20, 120))
        for step, day in enumerate(SNAPSHOT_DAYS):
            rows.append(
                {
                    "customer_id": f"c{i:03d}",
                    "as_of": (T0 + timedelta(days=day)).isoformat(),
                    "tenure_months": float(12 + i % 24 + step),
                    # a value that says which snapshot it came from: the leakage test reads it back
                    "monthly_spend": round(spend + 1000 * step, 2),
                    "support_calls": float((i + step * 3) % 7),
                    "plan": ["basic", "plus", "pro"][(i + step) % 3],
                }
            )
    return pd.DataFrame(rows)


def label_rows(customers_n: int = 40, day: float = 15) -> pd.DataFrame:
    """One label per customer ``day`` days after T0 (between the second and third snapshots by default)."""
    when = (T0 + timedelta(days=day)).isoformat()
    step = max(0, min(len(SNAPSHOT_DAYS) - 1, int(day // 10)))  # the snapshot a label at ``day`` sees
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:03d}" for i in range(customers_n)],
            "label_time": [when] * customers_n,
            # churn follows the support calls of that snapshot: learnable only from the point-in-time value
            "churned": [int((i + step * 3) % 7 >= 4) for i in range(customers_n)],
        }
    )


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()
