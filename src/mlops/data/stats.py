"""Per-column statistics (TFX's StatisticsGen, in small) and the drift distances computed from them."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mlops.core.config import FeatureType, ProjectConfig, Task
from mlops.data.engine import EngineLimits, connect, parquet_source, quote

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


def feature_kinds(df: Any, config: ProjectConfig) -> dict[str, FeatureType]:
    """Kind of every column the model consumes (target, id, time and dropped columns excluded), of a frame or of a
    :class:`mlops.data.table.Table` (which tells each column's kind itself)."""
    skip = {config.target, config.id_column, config.time_column}
    kinds: dict[str, FeatureType] = {}
    for col in df.columns:
        if col in skip:
            continue
        override = config.features.overrides.get(col)
        if override is not None and override.drop:
            continue
        if override is not None and override.type is not None:
            kinds[col] = override.type
        else:
            kinds[col] = column_kind(df[col]) if isinstance(df, pd.DataFrame) else df.kind(col)
    return kinds


def task_of(*, boolean: bool, numeric: bool, fractional: bool, distinct: int) -> Task:
    """The task a target implies when the config does not name one, from what is known of its present values:
    booleans or two values, binary; numbers with a fraction, or more than 20 numbers, regression; else multiclass."""
    if boolean or distinct == 2:
        return Task.BINARY
    if fractional or (numeric and distinct > 20):
        return Task.REGRESSION
    return Task.MULTICLASS


def infer_task(target: pd.Series) -> Task:
    """:func:`task_of` a target column held as a frame's column."""
    values = target.dropna()
    return task_of(
        boolean=pd.api.types.is_bool_dtype(values),
        numeric=pd.api.types.is_numeric_dtype(values),
        fractional=pd.api.types.is_float_dtype(values) and not np.all(np.mod(values.to_numpy(), 1) == 0),
        distinct=int(values.nunique()),
    )


def finite_or_none(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
# Decile edges at numpy's levels (np.linspace(0, 1, N_BINS + 1): 0.30000000000000004, not 0.3), so each edge is
# the very quantile numpy's linear interpolation gives.
EDGE_LEVELS = [float(x) for x in np.linspace(0, 1, N_BINS + 1)]
FREQUENCIES_MAX = 200  # a categorical column with more distinct values keeps only its top values


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


# -- statistics, computed by DuckDB over the snapshot's Parquet files ----------------------------------------------
_INTEGERS = {
    "TINYINT": "int8",
    "SMALLINT": "int16",
    "INTEGER": "int32",
    "BIGINT": "int64",
    "UTINYINT": "uint8",
    "USMALLINT": "uint16",
    "UINTEGER": "uint32",
    "UBIGINT": "uint64",
    "HUGEINT": "int128",
    "UHUGEINT": "uint128",
}
_FLOATS = {"FLOAT": "float32", "DOUBLE": "float64"}


def sql_kind(sql_type: str, override: FeatureType | None = None) -> FeatureType:
    """:func:`column_kind` for a column DuckDB reads as ``sql_type``: numbers (integers, floats, decimals) are
    numeric; booleans, text, dates and everything else categorical — as pandas' dtypes decide them."""
    if override is not None:
        return override
    base = sql_type.split("(")[0]
    return FeatureType.NUMERIC if base in _INTEGERS or base in _FLOATS or base == "DECIMAL" else FeatureType.CATEGORICAL


def sql_task(con: Any, source: str, column: str, sql_type: str) -> Task:
    """:func:`task_of` the column ``column`` (read by DuckDB as ``sql_type``) of ``source``'s present values."""
    base = sql_type.split("(")[0]
    y = quote(column)
    is_float = base in _FLOATS or base == "DECIMAL"
    present = f"{y} IS NOT NULL" + (f" AND NOT isnan({y})" if base in _FLOATS else "")
    fraction = f"count(*) FILTER (WHERE {y}::DOUBLE % 1 <> 0)" if is_float else "0"
    distinct, fractional = one_row(con, f"SELECT count(DISTINCT {y}), {fraction} FROM {source} WHERE {present}")
    return task_of(
        boolean=base == "BOOLEAN",
        numeric=base in _INTEGERS or is_float,
        fractional=bool(fractional),
        distinct=int(distinct),
    )


def _pandas_dtype(sql_type: str, missing: int) -> str:
    """The dtype pandas (through :func:`mlops.data.frames.from_parquet_bytes`) gives the column: the statistics'
    ``dtype`` field, as it read before DuckDB computed them."""
    base = sql_type.split("(")[0]
    if base in _INTEGERS:
        name = _INTEGERS[base]
        return name.capitalize().replace("Uint", "UInt") if missing else name  # nullable: Int64, UInt8…
    if base in _FLOATS or base == "DECIMAL":
        return _FLOATS.get(base, "float64")
    if base == "BOOLEAN":
        return "boolean" if missing else "bool"
    if base.startswith("TIMESTAMP"):
        unit = {"TIMESTAMP_S": "s", "TIMESTAMP_MS": "ms", "TIMESTAMP_NS": "ns"}.get(base, "us")
        return f"datetime64[{unit}, UTC]" if "TIME ZONE" in sql_type else f"datetime64[{unit}]"
    return "object"


def one_row(con: Any, sql: str) -> tuple[Any, ...]:
    """The one row an aggregate query returns."""
    row = con.execute(sql).fetchone()
    assert row is not None, sql  # an aggregate without GROUP BY always returns one row
    return tuple(row)


def _sql_list(levels: list[float]) -> str:
    return "[" + ", ".join(repr(float(q)) for q in levels) + "]"


def numeric_sql(column: str, sql_type: str) -> tuple[str, str, str, str]:
    """The SQL of a numeric column's statistics: the column, its value as a double, the predicate of a present
    value (not NULL-tested: ``count(*) FILTER`` and ``WHERE`` drop NULLs on their own; NaN is missing) and of a
    finite one (what the moments, quantiles and histogram are taken on)."""
    x = quote(column)
    v = f"{x}::DOUBLE"
    present = f"NOT isnan({x})" if sql_type.split("(")[0] in _FLOATS else "true"
    return x, v, present, f"isfinite({v})"


def categorical_present(column: str, sql_type: str) -> str:
    """The predicate of a present value of a categorical column: not NULL, and not NaN in a float column."""
    x = quote(column)
    return f"{x} IS NOT NULL" + (f" AND NOT isnan({x})" if sql_type.split("(")[0] in _FLOATS else "")


def category_counts(
    con: Any, source: str, column: str, sql_type: str, *, limit: int | None = None, batch: int = 10_000
) -> Iterator[tuple[str, int]]:
    """Each present value of a categorical column with its count, keyed by its text as :func:`text_counts` keys
    it (``str`` of the Python value: ``True``, ``1.0``), fetched ``batch`` groups at a time. With ``limit``, the
    ``limit`` most frequent, ties by value (the same top whichever order the rows came in); two values of one
    text come out as two pairs, for the caller to add up."""
    x = quote(column)
    order = f" ORDER BY n DESC, {x} LIMIT {int(limit)}" if limit is not None else ""
    result = con.execute(
        f"SELECT {x}, count(*) AS n FROM {source} WHERE {categorical_present(column, sql_type)} GROUP BY {x}{order}"
    )
    while rows := result.fetchmany(batch):
        for value, count in rows:
            yield str(value), int(count)


def _numeric_stats(con: Any, source: str, column: str, sql_type: str) -> dict[str, Any]:
    """count, missing, distinct, moments, quantiles, decile histogram and zeros of a numeric column — the fields
    numpy computed before, on the present, finite values as floats."""
    x, v, present, finite = numeric_sql(column, sql_type)
    levels = sorted(set(QUANTILES.values()) | set(EDGE_LEVELS))
    row = one_row(
        con,
        f"""SELECT count(*), count(*) FILTER (WHERE {x} IS NULL OR NOT ({present})),
               count(DISTINCT {x}) FILTER (WHERE {present}),
               count(*) FILTER (WHERE {finite}), min({v}) FILTER (WHERE {finite}), max({v}) FILTER (WHERE {finite}),
               avg({v}) FILTER (WHERE {finite}), stddev_samp({v}) FILTER (WHERE {finite}),
               count(*) FILTER (WHERE {finite} AND {v} = 0),
               quantile_cont({v}, {_sql_list(levels)}) FILTER (WHERE {finite})
        FROM {source}""",
    )
    n, missing, distinct, size, lo, hi, mean, std, zeros, qs = row
    out: dict[str, Any] = {"count": n, "missing": missing, "distinct": distinct}
    if not size:
        return out
    at = dict(zip(levels, qs, strict=True))
    edges = sorted({float(at[q]) for q in EDGE_LEVELS})  # np.unique of the decile quantiles
    out.update(
        min=float(lo),
        max=float(hi),
        mean=float(mean),
        std=finite_or_none(std) if size > 1 else 0.0,
        quantiles={name: float(at[q]) for name, q in QUANTILES.items()},
        histogram={"edges": edges, "counts": sql_bin_counts(con, source, v, finite, edges, size)},
        zeros=zeros,
    )
    return out


def sql_bin_counts(con: Any, source: str, v: str, where: str, edges: list[float], size: int) -> list[int]:
    """:func:`bin_counts` in SQL over the ``size`` values ``where`` selects: the rows at or past each interior edge,
    differenced (numpy's ``searchsorted`` with ``side="right"``: a value equal to an edge falls in the bin above)."""
    if len(edges) < 2:
        return [size]
    interior = edges[1:-1]
    at_or_past = (
        one_row(
            con,
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {v} >= {e!r})" for e in interior) + f" FROM {source} "
            f"WHERE {where}",
        )
        if interior
        else ()
    )
    cumulative = [size, *at_or_past, 0]
    return [int(cumulative[i] - cumulative[i + 1]) for i in range(len(cumulative) - 1)]


def _categorical_stats(con: Any, source: str, column: str, sql_type: str) -> dict[str, Any]:
    """count, missing, distinct, the top values and (up to ``FREQUENCIES_MAX`` distinct) every value's count,
    each value keyed by its text as :func:`text_counts` keys it (``str`` of the Python value: ``True``, ``1.0``)."""
    x = quote(column)
    present = categorical_present(column, sql_type)
    n, missing, distinct = one_row(
        con,
        f"SELECT count(*), count(*) FILTER (WHERE NOT ({present})), count(DISTINCT {x}) FILTER (WHERE {present}) "
        f"FROM {source}",
    )
    counts: dict[str, int] = {}
    for key, count in category_counts(con, source, column, sql_type, limit=FREQUENCIES_MAX + 1):
        counts[key] = counts.get(key, 0) + count
    return {"count": n, "missing": missing, "distinct": distinct, **ranked_values(counts, distinct)}


def ranked_values(counts: dict[str, int], distinct: int) -> dict[str, Any]:
    """The ``top`` and ``frequencies`` fields of a categorical column from its values' counts (most frequent first;
    ties keep the order ``counts`` has them in): every count only up to ``FREQUENCIES_MAX`` distinct values."""
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return {
        "top": [{"value": k, "count": c} for k, c in ranked[:TOP_K]],
        "frequencies": dict(ranked) if distinct <= FREQUENCIES_MAX else None,
    }


def _column_stats(con: Any, source: str, column: str, sql_type: str, kind: FeatureType) -> dict[str, Any]:
    body = (
        _numeric_stats(con, source, column, sql_type)
        if kind is FeatureType.NUMERIC
        else _categorical_stats(con, source, column, sql_type)
    )
    return column_entry(kind, sql_type, body)


def column_entry(kind: FeatureType, sql_type: str, body: dict[str, Any]) -> dict[str, Any]:
    """A column's entry in the statistics: its kind, the dtype pandas gives it and ``body`` (its numbers)."""
    n, missing = body["count"], body["missing"]
    return {
        "type": kind.value,
        "dtype": _pandas_dtype(sql_type, missing),
        **body,
        "missing_rate": missing / n if n else 0.0,
    }


def table_columns(con: Any, source: str) -> list[tuple[str, str]]:
    """Each column of ``source`` with the SQL type DuckDB reads it as."""
    return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]


def feature_columns(columns: list[tuple[str, str]], config: ProjectConfig) -> list[tuple[str, str, FeatureType]]:
    """The columns the model consumes (target, id, time and dropped columns excluded), each with its SQL type and
    kind: :func:`feature_kinds` for a table DuckDB reads."""
    skip = {config.target, config.id_column, config.time_column}
    out = []
    for name, sql_type in columns:
        override = config.features.overrides.get(name)
        if name in skip or (override is not None and override.drop):
            continue
        out.append((name, sql_type, sql_kind(sql_type, override.type if override else None)))
    return out


def is_float_type(sql_type: str) -> bool:
    return sql_type.split("(")[0] in _FLOATS


TARGET_NUMERIC_DISTINCT = 20  # a float target with more distinct values is a regression's: numeric statistics


def compute_statistics(
    paths: Sequence[str | Path], config: ProjectConfig, limits: EngineLimits | None = None
) -> dict[str, Any]:
    """Per-column statistics of the table in the Parquet files ``paths`` (TFX's StatisticsGen, in small), computed
    by DuckDB held to ``limits`` (else :meth:`EngineLimits.for_function`): one column at a time, so what it holds
    is one column's quantile state and its buffers, whatever the table's width or length."""
    source = parquet_source([str(p) for p in paths])
    with connect(limits or EngineLimits.for_function()) as con:
        columns = table_columns(con, source)
        (num_rows,) = one_row(con, f"SELECT count(*) FROM {source}")
        features = {
            name: _column_stats(con, source, name, sql_type, kind)
            for name, sql_type, kind in feature_columns(columns, config)
        }
        target_stats = None
        types = dict(columns)
        if config.target in types:
            sql_type = types[config.target]
            kind = FeatureType.CATEGORICAL
            if is_float_type(sql_type):
                y = quote(config.target)
                (distinct,) = one_row(con, f"SELECT count(DISTINCT {y}) FILTER (WHERE NOT isnan({y})) FROM {source}")
                kind = FeatureType.NUMERIC if distinct > TARGET_NUMERIC_DISTINCT else kind
            target_stats = _column_stats(con, source, config.target, sql_type, kind)
    return {"num_rows": int(num_rows), "num_columns": len(columns), "features": features, "target": target_stats}


def frame_statistics(df: pd.DataFrame, config: ProjectConfig, limits: EngineLimits | None = None) -> dict[str, Any]:
    """:func:`compute_statistics` of a frame, written as a snapshot is (:func:`mlops.data.frames.to_parquet_bytes`)
    to a file under ``/tmp`` — for a table already in memory (tests, tools); the steps read their snapshot's file."""
    from mlops.data.frames import to_parquet_bytes

    with tempfile.TemporaryDirectory(dir=(limits or EngineLimits.for_function()).temp_root) as tmp:
        path = Path(tmp) / "table.parquet"
        path.write_bytes(to_parquet_bytes(df))
        return compute_statistics([path], config, limits)


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
    """:func:`column_drift` of a column held as a frame's (the monitor's served predictions)."""
    from mlops.data.table import FrameTable

    return column_drift(baseline, FrameTable(series.to_frame("x")), "x")


def column_drift(baseline: dict[str, Any], table: Any, col: str) -> Drift | None:
    """Distance of ``table``'s column ``col`` (a :class:`mlops.data.table.Table`) from a baseline column's
    statistics: PSI over the baseline's bins (numeric) or the Jensen-Shannon distance over the values
    (categorical)."""
    if baseline["type"] == FeatureType.NUMERIC.value:
        hist = baseline.get("histogram")
        if not hist:
            return None
        present, actual = table.bins(col, hist["edges"])
        if not present:
            return None
        return histogram_drift(hist, actual)
    freqs = baseline.get("frequencies")
    if not freqs:
        return None
    counts = table.text_counts(col)
    if not counts:
        return None
    return frequency_drift(freqs, counts)


def histogram_drift(baseline_histogram: dict[str, Any], actual: list[int]) -> Drift:
    """PSI of ``actual``, the counts of new data in the baseline histogram's bins, from the baseline's counts."""
    edges, expected = baseline_histogram["edges"], baseline_histogram["counts"]
    n = len(expected)
    bins = [_edge_label(edges[i], edges[i + 1], i == 0, i == n - 1) for i in range(n)] if n > 1 else ["all"]
    picture = {"bins": bins, "expected": _shares(expected), "actual": _shares(actual)}
    return Drift("psi", psi(expected, actual), picture)


def frequency_drift(freqs: dict[str, int], counts: dict[str, int]) -> Drift:
    """The Jensen-Shannon distance of new data's value ``counts`` from the baseline's value frequencies."""
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
