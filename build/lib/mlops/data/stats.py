"""Per-column statistics (TFX's StatisticsGen, in small) and the drift distances computed from them."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mlops.core.config import FeatureType, ProjectConfig, Task

N_BINS = 10
TOP_K = 20
EPS = 1e-4
PICTURE_VALUES = 12  # categories drawn per feature in a drift picture; the rest as one bar


def column_kind(series: pd.Series, override: FeatureType | None = None) -> FeatureType:
    if override is not None:
        return override
    if pd.api.types.is_bool_dtype(series):
        return FeatureType.CATEGORICAL
    if pd.api.types.is_numeric_dtype(series):
        return FeatureType.NUMERIC
    return FeatureType.CATEGORICAL


def feature_kinds(df: pd.DataFrame, config: ProjectConfig) -> dict[str, FeatureType]:
    """Kind of every column the model consumes (target, id, time and dropped columns excluded)."""
    skip = {config.target, config.id_column, config.time_column}
    kinds: dict[str, FeatureType] = {}
    for col in df.columns:
        if col in skip:
            continue
        override = config.features.overrides.get(col)
        if override is not None and override.drop:
            continue
        kinds[col] = column_kind(df[col], override.type if override else None)
    return kinds


def infer_task(target: pd.Series) -> Task:
    """The task a target column implies when the config does not name one."""
    values = target.dropna()
    n_unique = values.nunique()
    if pd.api.types.is_bool_dtype(values) or n_unique == 2:
        return Task.BINARY
    if pd.api.types.is_float_dtype(values) and not np.all(np.mod(values.to_numpy(), 1) == 0):
        return Task.REGRESSION
    if pd.api.types.is_numeric_dtype(values) and n_unique > 20:
        return Task.REGRESSION
    return Task.MULTICLASS


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def numeric_edges(values: np.ndarray) -> list[float]:
    """Decile bin edges (unique), the baseline for PSI; open-ended at both sides when used."""
    if values.size == 0:
        return []
    qs = np.quantile(values, np.linspace(0, 1, N_BINS + 1))
    return [float(x) for x in np.unique(qs)]


def bin_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts in bins defined by interior edges; the outer bins extend to ±inf."""
    if len(edges) < 2:
        return [int(values.size)]
    interior = np.asarray(edges[1:-1])
    idx = np.searchsorted(interior, values, side="right")
    return [int(c) for c in np.bincount(idx, minlength=len(edges) - 1)]


def text_counts(values: pd.Series) -> pd.Series:
    """How often each value occurs, keyed by its text (``str(v)``) — counted on the values as they are, so a
    column of a million numbers (a 0/1 target) does not become a million string objects first."""
    counts = values.value_counts()
    if all(isinstance(k, str) for k in counts.index):
        return counts
    keys = counts.index.map(str)
    if keys.has_duplicates:  # 1 and "1" in one column: one text, counted together
        return values.astype(str).value_counts()
    counts.index = keys
    return counts


def text_values(values: pd.Series) -> set[str]:
    """The distinct texts of the present values (unique first, then ``str``: not a string per row)."""
    return {str(v) for v in values.dropna().unique()}


def column_stats(series: pd.Series, kind: FeatureType) -> dict[str, Any]:
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
            edges = numeric_edges(values)
            out.update(
                min=float(values.min()),
                max=float(values.max()),
                mean=float(values.mean()),
                std=_finite(float(values.std(ddof=1))) if values.size > 1 else 0.0,
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


def compute_statistics(df: pd.DataFrame, config: ProjectConfig) -> dict[str, Any]:
    kinds = feature_kinds(df, config)
    cols = {c: column_stats(df[c], k) for c, k in kinds.items()}
    target = df[config.target] if config.target in df.columns else None
    target_stats = None
    if target is not None:
        target_kind = (
            FeatureType.NUMERIC
            if pd.api.types.is_float_dtype(target) and target.nunique() > 20
            else FeatureType.CATEGORICAL
        )
        target_stats = column_stats(target, target_kind)
    return {"num_rows": len(df), "num_columns": len(df.columns), "features": cols, "target": target_stats}


# -- drift -------------------------------------------------------------------
def psi(expected: list[int], actual: list[int]) -> float:
    """Population stability index between two histograms over the same bins."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.sum() == 0 or a.sum() == 0:
        return 0.0
    e = np.clip(e / e.sum(), EPS, None)
    a = np.clip(a / a.sum(), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: dict[str, int], actual: dict[str, int]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two categorical distributions."""
    keys = sorted(set(expected) | set(actual))
    p = np.asarray([expected.get(k, 0) for k in keys], dtype=float)
    q = np.asarray([actual.get(k, 0) for k in keys], dtype=float)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(x: np.ndarray, y: np.ndarray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / y[mask])))

    return float(math.sqrt(max(0.0, 0.5 * kl(p, m) + 0.5 * kl(q, m))))


class Drift(NamedTuple):
    """A feature's distance from its baseline, and the picture it was measured on: the baseline's bins (or
    its most frequent values) with each side's share, for a report to draw training against new data."""

    measure: str  # "psi" (numeric) or "js" (categorical)
    value: float
    picture: dict[str, Any]


def _shares(counts: list[int] | np.ndarray) -> list[float]:
    a = np.asarray(counts, dtype=float)
    total = a.sum()
    return [round(float(x), 5) for x in (a / total if total else a)]


def _edge_label(lo: float, hi: float, first: bool, last: bool) -> str:
    if first:
        return f"< {hi:.3g}"
    if last:
        return f"≥ {lo:.3g}"
    return f"{lo:.3g} to {hi:.3g}"


def feature_drift(baseline: dict[str, Any], series: pd.Series) -> Drift | None:
    """Distance of ``series`` from a baseline column's statistics: PSI over the baseline's bins (numeric) or
    the Jensen-Shannon distance over the values (categorical)."""
    present = series.dropna()
    if baseline["type"] == FeatureType.NUMERIC.value:
        hist = baseline.get("histogram")
        if not hist or present.empty:
            return None
        values = pd.to_numeric(present, errors="coerce").dropna().to_numpy(dtype=float)
        edges, expected = hist["edges"], hist["counts"]
        actual = bin_counts(values, edges)
        n = len(expected)
        bins = [_edge_label(edges[i], edges[i + 1], i == 0, i == n - 1) for i in range(n)] if n > 1 else ["all"]
        picture = {"bins": bins, "expected": _shares(expected), "actual": _shares(actual)}
        return Drift("psi", psi(expected, actual), picture)
    freqs = baseline.get("frequencies")
    if not freqs or present.empty:
        return None
    counts = {str(k): int(v) for k, v in text_counts(present).items()}
    e_total, a_total = sum(freqs.values()) or 1, sum(counts.values()) or 1
    keys = sorted(set(freqs) | set(counts), key=lambda k: -max(freqs.get(k, 0) / e_total, counts.get(k, 0) / a_total))
    shown, rest = keys[:PICTURE_VALUES], keys[PICTURE_VALUES:]
    expected_counts = [freqs.get(k, 0) for k in shown] + ([sum(freqs.get(k, 0) for k in rest)] if rest else [])
    actual_counts = [counts.get(k, 0) for k in shown] + ([sum(counts.get(k, 0) for k in rest)] if rest else [])
    picture = {
        "bins": shown + ([f"{len(rest)} other"] if rest else []),
        "expected": [round(x / e_total, 5) for x in expected_counts],
        "actual": [round(x / a_total, 5) for x in actual_counts],
    }
    return Drift("js", js_distance(freqs, counts), picture)
