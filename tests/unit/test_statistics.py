"""The statistics DuckDB computes are the ones pandas and numpy computed before it (the reference below, kept only
here), on the bundled datasets and on a table of every kind of column, with missing values injected."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.core.config import FeatureType, ProjectConfig, parse_config
from mlops.data.engine import EngineLimits
from mlops.data.frames import from_parquet_bytes, to_parquet_bytes
from mlops.data.stats import (
    EDGE_LEVELS,
    TOP_K,
    bin_counts,
    column_kind,
    feature_kinds,
    frame_statistics,
    sql_kind,
    text_counts,
)
from mlops.tools.samples import bundled, customers

pytestmark = pytest.mark.unit

LIMITS = EngineLimits(memory_mb=256, threads=2)


# -- the reference: mlops.data.stats.compute_statistics as it was on pandas (before #29) ---------------------------
def _reference_column(series: pd.Series, kind: FeatureType) -> dict[str, Any]:
    n = int(series.size)
    missing = int(series.isna().sum())
    out: dict[str, Any] = {
        "type": kind.value,
        "dtype": str(series.dtype),
        "count": n,
        "missing": missing,
        "missing_rate": missing / n if n else 0.0,
        "distinct": int(series.nunique(dropna=True)),
    }
    present = series.dropna()
    if kind is FeatureType.NUMERIC:
        values = pd.to_numeric(present, errors="coerce").dropna().to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if values.size:
            q = np.quantile(values, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
            edges = [float(x) for x in np.unique(np.quantile(values, np.linspace(0, 1, 11)))]
            std = float(values.std(ddof=1))
            out.update(
                min=float(values.min()),
                max=float(values.max()),
                mean=float(values.mean()),
                std=(std if math.isfinite(std) else None) if values.size > 1 else 0.0,
                quantiles=dict(zip(["p01", "p05", "p25", "p50", "p75", "p95", "p99"], map(float, q), strict=True)),
                histogram={"edges": edges, "counts": bin_counts(values, edges)},
                zeros=int((values == 0).sum()),
            )
    else:
        counts = text_counts(present)
        out.update(
            top=[{"value": str(k), "count": int(v)} for k, v in counts.head(TOP_K).items()],
            frequencies={str(k): int(v) for k, v in counts.items()} if len(counts) <= 200 else None,
        )
    return out


def reference_statistics(df: pd.DataFrame, config: ProjectConfig) -> dict[str, Any]:
    cols = {c: _reference_column(df[c], k) for c, k in feature_kinds(df, config).items()}
    target = df[config.target] if config.target in df.columns else None
    target_stats = None
    if target is not None:
        numeric = pd.api.types.is_float_dtype(target) and target.nunique() > 20
        target_stats = _reference_column(target, FeatureType.NUMERIC if numeric else FeatureType.CATEGORICAL)
    return {"num_rows": len(df), "num_columns": len(df.columns), "features": cols, "target": target_stats}


# -- the tables ------------------------------------------------------------------------------------------------------
def _with_missing(df: pd.DataFrame, keep: set[str], share: float = 0.1, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = df.copy()
    for col in out.columns:
        if col not in keep:
            out.loc[rng.random(len(out)) < share, col] = None
    return out


def every_kind(n: int = 1500, seed: int = 3) -> pd.DataFrame:
    """Each kind of column a snapshot holds: ints, skewed floats with infinities and signed zeros, booleans, text
    with few and with many values (past the 200 kept as frequencies), timestamps, a constant, an empty column."""
    rng = np.random.default_rng(seed)
    skewed = rng.lognormal(0, 2, n)
    skewed[rng.random(n) < 0.01] = np.inf
    skewed[rng.random(n) < 0.01] = -np.inf
    skewed[rng.random(n) < 0.05] = -0.0
    return pd.DataFrame(
        {
            "count": rng.poisson(3, n),  # int64 (no missing: an int column with None reads as float)
            "skewed": skewed,
            "flag": rng.random(n) < 0.3,
            "plan": rng.choice(["basic", "standard", "premium", 'it\'s "quoted"'], n).astype(object),
            "city": np.array([f"city-{i}" for i in rng.zipf(1.1, n) % 1000], dtype=object),
            "code": rng.integers(0, 5, n).astype(float),  # declared categorical below
            "seen": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, n), unit="D"),
            "constant": np.full(n, 2.5),
            "empty": np.full(n, np.nan),
            "dropped": rng.random(n),
            "label": rng.normal(10, 3, n).round(3),
        }
    )


def _config(target: str, **extra: Any) -> ProjectConfig:
    return parse_config(
        {
            "name": "stats",
            "data": {"prefix": "stats/"},
            "target": target,
            "training": {"candidates": [{"family": "logistic_regression"}]},
            **extra,
        }
    )


CHURN = _config("churn", id_column="customer_id")
KINDS = _config("label", features={"overrides": {"code": {"type": "categorical"}, "dropped": {"drop": True}}})
TABLES = {
    "breast-cancer": (lambda: _with_missing(bundled("breast-cancer"), {"target"}), _config("target")),
    "diabetes": (lambda: _with_missing(bundled("diabetes"), {"target"}), _config("target")),
    "wine": (lambda: _with_missing(bundled("wine"), {"target"}), _config("target")),
    "customers": (lambda: _with_missing(customers(3000, seed=4), {"customer_id", "churn"}), CHURN),
    "every kind": (lambda: _with_missing(every_kind(), {"count", "flag", "seen", "empty", "constant"}), KINDS),
}


# -- agreement ---------------------------------------------------------------------------------------------------
def _close(a: Any, b: Any, where: str) -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, f"{where}: {a} against {b}"
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {a!r} against {b!r}"
    else:
        assert a == b, f"{where}: {a!r} against {b!r}"


def assert_same_column(expected: dict[str, Any], actual: dict[str, Any], where: str) -> None:
    assert set(actual) == set(expected), where
    for field in ("type", "dtype", "count", "missing", "missing_rate", "distinct", "zeros", "frequencies"):
        _close(expected.get(field), actual.get(field), f"{where}.{field}")
    for field in ("min", "max", "mean", "std"):
        _close(expected.get(field), actual.get(field), f"{where}.{field}")
    for name, value in (expected.get("quantiles") or {}).items():
        _close(value, actual["quantiles"][name], f"{where}.quantiles.{name}")
    if "histogram" in expected:
        e, a = expected["histogram"], actual["histogram"]
        assert len(a["edges"]) == len(e["edges"]), f"{where}: edges {e['edges']} against {a['edges']}"
        for x, y in zip(e["edges"], a["edges"], strict=True):
            _close(x, y, f"{where}.histogram.edges")
        assert a["counts"] == e["counts"], f"{where}.histogram.counts"
    if "top" in expected:
        # The same counts in the same order; values tied at the cut may be either (pandas' order among ties is
        # its hash table's, DuckDB's is by value), every value above the cut is the same.
        e, a = expected["top"], actual["top"]
        assert [t["count"] for t in a] == [t["count"] for t in e], f"{where}.top"
        cut = e[-1]["count"] if len(e) == TOP_K else 0
        above = [{t["value"] for t in top if t["count"] > cut} for top in (e, a)]
        assert above[0] == above[1], f"{where}.top"


@pytest.mark.parametrize("name", list(TABLES))
def test_given_a_table_with_missing_values_when_duckdb_computes_its_statistics_then_they_are_pandas(name: str) -> None:
    make, config = TABLES[name]
    df = make()
    # GIVEN the frame analyze used to read: the snapshot as pandas read it back
    snapshot = from_parquet_bytes(to_parquet_bytes(df))
    expected = reference_statistics(snapshot, config)
    # WHEN DuckDB computes the statistics of the same snapshot file
    actual = frame_statistics(df, config, LIMITS)
    # THEN every number agrees: counts exactly, floats to 1e-9
    assert (actual["num_rows"], actual["num_columns"]) == (expected["num_rows"], expected["num_columns"])
    assert list(actual["features"]) == list(expected["features"])
    for col, stats in expected["features"].items():
        assert_same_column(stats, actual["features"][col], f"{name}.{col}")
    assert_same_column(expected["target"], actual["target"], f"{name}.target")


def test_given_every_kind_of_column_then_duckdb_types_have_the_kinds_pandas_dtypes_had() -> None:
    df = from_parquet_bytes(to_parquet_bytes(every_kind()))
    stats = frame_statistics(df, KINDS, LIMITS)["features"]
    assert {c: FeatureType(s["type"]) for c, s in stats.items()} == feature_kinds(df, KINDS)
    assert stats["flag"]["type"] == "categorical" and stats["seen"]["type"] == "categorical"
    assert stats["city"]["frequencies"] is None and len(stats["city"]["top"]) == TOP_K
    assert sql_kind("DECIMAL(10,2)") is column_kind(pd.Series([1.5])) is FeatureType.NUMERIC
    assert sql_kind("VARCHAR", FeatureType.NUMERIC) is FeatureType.NUMERIC


def test_given_the_decile_levels_then_they_are_numpys_own() -> None:
    assert list(np.linspace(0, 1, 11)) == EDGE_LEVELS  # 0.30000000000000004: the quantile numpy took


def test_given_a_function_size_then_duckdb_holds_its_share_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
    monkeypatch.delenv("MLOPS_DATA_MEMORY_SHARE", raising=False)
    assert EngineLimits.for_function().memory_mb == 1504
    assert EngineLimits.for_function(2048, share=0.25, threads=1) == EngineLimits(512, 1)
    monkeypatch.setenv("MLOPS_DATA_MEMORY_SHARE", "1.5")
    with pytest.raises(ValueError, match="MLOPS_DATA_MEMORY_SHARE"):
        EngineLimits.for_function()
