"""Example data: scikit-learn's bundled datasets as frames, and a synthetic generator with
controllable drift and corruption (for tests, the demo and benchmarks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets as skd

BUNDLED = {
    "breast-cancer": (skd.load_breast_cancer, "target"),  # binary, 569 rows, 30 numeric features
    "wine": (skd.load_wine, "target"),  # multiclass (3), 178 rows
    "iris": (skd.load_iris, "target"),  # multiclass (3), 150 rows
    "diabetes": (skd.load_diabetes, "target"),  # regression, 442 rows
}


# This repository's own project (cdk.json at its root, the bundled models in models/): the demo's and the tests'.
REPOSITORY = Path(__file__).resolve().parents[3]
# What `mlops init` copies: a project of one's own, with a model, components, tests and a sample.
STARTER = Path(__file__).resolve().parents[1] / "starter"


def example_config_path(name: str = "breast-cancer") -> Path:
    """One of this repository's bundled models (``models/<name>.yaml``)."""
    return REPOSITORY / "models" / f"{name}.yaml"


def example_feature_store(now: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The example feature set's rows (``feature_sets/customers.csv``: each customer as of four days) and the churn
    model's labels (``models/examples/churn-labels.csv``), moved in time together so the newest snapshot is stamped
    at midnight (UTC) of ``now``'s day (a datetime): live within the set's TTL and fresher than its staleness bound,
    as a deployment's would be, and every label keeps its place between the snapshots."""
    features = pd.read_csv(REPOSITORY / "feature_sets" / "customers.csv")
    labels = pd.read_csv(REPOSITORY / "models" / "examples" / "churn-labels.csv")
    stamps = pd.to_datetime(features["as_of"], utc=True)
    shift = pd.Timestamp(now).tz_convert("UTC").floor("D") - stamps.max()
    features["as_of"] = (stamps + shift).map(lambda t: t.isoformat())
    labels["label_time"] = (pd.to_datetime(labels["label_time"], utc=True) + shift).map(lambda t: t.isoformat())
    return features, labels


def sample_frame(config: Any, project: Any = None) -> pd.DataFrame | None:
    """A model's sample data: its ``data.sample`` file in the project, else the bundled dataset of its name, else
    None."""
    from mlops.core.config import DataFormat
    from mlops.core.project import Project
    from mlops.data.frames import detect_format, read_table

    if config.data.sample:
        path = (project or Project.find()).path(config.data.sample)
        return read_table(path.read_bytes(), path.name, detect_format(path.name, DataFormat.AUTO))
    return bundled(config.name) if config.name in BUNDLED else None


def bundled(name: str) -> pd.DataFrame:
    """One of scikit-learn's bundled datasets (shipped inside the package: no download)."""
    loader, target = BUNDLED[name]
    bunch: Any = loader(as_frame=True)
    df: pd.DataFrame = bunch.frame.copy()
    df.columns = [str(c).replace(" ", "_").replace("(", "").replace(")", "").replace("/", "_") for c in df.columns]
    return df.rename(columns={"target": target})


def customers(
    n: int = 2000, seed: int = 0, *, shift: dict[str, float] | None = None, new_plan_fraction: float = 0.0
) -> pd.DataFrame:
    """A churn-like table with numeric and categorical features and a learnable binary label.

    ``shift`` adds a number of standard deviations to named numeric features (covariate drift);
    ``new_plan_fraction`` replaces that share of ``plan`` with a category never seen before.
    """
    rng = np.random.default_rng(seed)
    shift = shift or {}
    age = rng.normal(40, 12, n).clip(18, 90) + shift.get("age", 0.0) * 12
    income = rng.lognormal(10.5, 0.5, n) * (1 + shift.get("income", 0.0) * 0.5)
    tenure = rng.exponential(24, n).round() + shift.get("tenure_months", 0.0) * 24
    support = rng.poisson(1.5, n).astype(float) + shift.get("support_calls", 0.0) * 1.2
    plan = rng.choice(["basic", "standard", "premium"], n, p=[0.5, 0.35, 0.15]).astype(object)
    region = rng.choice(["north", "south", "east", "west"], n).astype(object)
    if new_plan_fraction:
        plan[rng.random(n) < new_plan_fraction] = "enterprise"
    logit = (
        -1.0
        + 0.45 * support
        - 0.04 * tenure
        + 0.02 * (age - 40)
        + np.where(plan == "basic", 0.8, np.where(plan == "premium", -0.7, 0.0))
        - 0.3 * (region == "east")
    )
    churn = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    df = pd.DataFrame(
        {
            "customer_id": [f"c{seed}-{i:06d}" for i in range(n)],
            "age": age.round(1),
            "income": income.round(2),
            "tenure_months": tenure,
            "support_calls": support,
            "plan": plan,
            "region": region,
            "churn": churn,
        }
    )
    df.loc[rng.random(n) < 0.02, "income"] = np.nan
    return df


def corrupt(df: pd.DataFrame, how: str, column: str, seed: int = 0, fraction: float = 0.3) -> pd.DataFrame:
    """Deliberate damage for validation tests: drop | rename | to_text | nulls | out_of_range | unseen."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    mask = rng.random(len(out)) < fraction
    if how == "drop":
        return out.drop(columns=[column])
    if how == "rename":
        return out.rename(columns={column: f"{column}_v2"})
    if how == "to_text":
        out[column] = out[column].astype(object)
        out.loc[mask, column] = "n/a"
    elif how == "nulls":
        out.loc[mask, column] = np.nan
    elif how == "out_of_range":
        out.loc[mask, column] = out[column].max() * 10 + 1
    elif how == "unseen":
        out[column] = out[column].astype(object)
        out.loc[mask, column] = "never-seen"
    else:
        raise ValueError(f"unknown corruption {how!r}")
    return out


def degrade_labels(df: pd.DataFrame, target: str, fraction: float, seed: int = 0) -> pd.DataFrame:
    """Shuffle a fraction of labels: the data still validates, but a model trained on it is worse."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    idx = np.flatnonzero(rng.random(len(out)) < fraction)
    out.loc[out.index[idx], target] = rng.permutation(out[target].to_numpy()[idx])
    return out
