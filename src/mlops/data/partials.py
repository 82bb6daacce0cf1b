"""Statistics past one function: each shard of a snapshot computes mergeable partial statistics, a merge combines
them into the artifact :func:`mlops.data.stats.compute_statistics` returns for the whole table.

A shard (one or a few of the snapshot's Parquet objects) is read by DuckDB in bounded memory, one column at a time,
as the single pass reads the table. What it keeps of a column is what merges without loss, and sketches (Apache
DataSketches) for what does not:

- **exact**: row count, missing, finite count, zeros, min, max; the mean and the sum of squared deviations ``M2``
  (DuckDB's ``avg`` and ``var_pop`` over the shard), merged with Chan, Golub and LeVeque's pairwise formula
  (``M2 = M2a + M2b + d²·na·nb/n``, ``d`` the difference of the means). Not sums of powers: ``Σx² - (Σx)²/n``
  cancels catastrophically when the mean is large against the spread (timestamps in seconds, prices in cents) and
  can come out negative; the pairwise formula only adds non-negative terms. Merged in the order of the shards'
  keys, so the order the partials arrive in changes no bit of the result.
- **exact into fixed bins**: counts into edges known before the run (:class:`StatisticsPlan` ``bins``, e.g. the
  champion's histogram edges): the merged column carries them as ``bins`` (``edges``, ``counts``), and
  :func:`statistics_drift` gives from them the very PSI :func:`mlops.data.stats.feature_drift` gives over the
  whole table.
- **exact category counts while they are few**: a categorical column's counts per value, while the shard has at
  most ``FREQUENCIES_MAX`` distinct values; when every shard kept them, ``distinct``, ``top`` and ``frequencies``
  are exact. Otherwise:
- **sketched**: a KLL sketch (doubles) of the finite values gives the quantiles; an HLL sketch the distinct count;
  a frequent-items sketch the top values of a categorical column with more values than that.

How far the merged statistics can be from the single pass's, and why that is acceptable:

- ``quantiles``: the KLL's item at the rank asked for, where the single pass interpolates linearly (DuckDB's
  ``quantile_cont``): its true rank is within the sketch's normalized rank error of the level asked (about 1.3%
  at ``k`` = 200 with 99% confidence, ``kll_doubles_sketch.normalized_rank_error(False)``), exact while a column
  has at most ``k`` finite values. The quantiles are for reading (the report, a schema's summary); nothing
  compares them with a threshold.
- ``histogram``: its edges are the merged KLL's deciles (the first and last edge the exact min and max) and its
  counts the KLL's CDF at the interior edges times the finite count, rounded cumulatively so they add up to it:
  each edge's cumulative count is within the rank error times the count (a bin's share within twice it). The
  alternative — a second pass over the shards counting into the merged edges exactly — costs a second fan-out;
  it is :class:`StatisticsPlan` with ``bins`` from a first merge, when a run wants it. A baseline histogram only
  needs to be the counts *of its own edges* for drift to be measured against it: PSI over bins whose shares are
  off by a percent or so moves by about ``Σ δ²/p`` (~0.002 for ten bins of 10% off by 1%), far under any
  threshold worth setting (0.1-0.25).
- ``distinct``: HLL's estimate, rounded (``lg_k`` = 12: 1.6% standard error; exact in practice for a few hundred
  values, where the sketch still holds a list of its hashes), or exact for a categorical column whose shards all
  kept their counts.
- ``top`` of a categorical column with more than ``FREQUENCIES_MAX`` values in a shard: the frequent-items
  sketch's estimates, within ``epsilon`` times the rows (``lg_max_map_size`` = 10: 0.34%), exact while all the
  shards together have at most 768 distinct values; ties at the cut are ordered by text.

The partial is one object of bytes: ``MAGIC``, a little-endian uint32 header length, the header as JSON, then the
sketches, concatenated; the header names each sketch by its ``[offset, length]`` in that tail. The header holds
the envelope's ``schema`` version, the ``shard`` (its key, etag and rows) the merge checks completeness by, the
``plan``'s fingerprint (every shard of one run must have the same), the table's columns, and each column's numbers.
The size is a few KB per numeric column (the KLL 5 KB past a few thousand values, the HLL 4 KB), so a shard writes
it to S3 and the state carries its key.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasketches as ds
import numpy as np

from mlops.core.config import FeatureType, ProjectConfig
from mlops.data.engine import EngineLimits, connect, parquet_source
from mlops.data.stats import (
    EDGE_LEVELS,
    FREQUENCIES_MAX,
    QUANTILES,
    TARGET_NUMERIC_DISTINCT,
    TOP_K,
    Drift,
    categorical_present,
    category_counts,
    column_entry,
    feature_columns,
    finite_or_none,
    frequency_drift,
    histogram_drift,
    is_float_type,
    numeric_sql,
    one_row,
    ranked_values,
    sql_bin_counts,
    table_columns,
)

SCHEMA = 1
MAGIC = b"mlops-partial-statistics\n"
_LENGTH = struct.Struct("<I")
_VECTORS_PER_CHUNK = 64  # DuckDB vectors (2048 rows each) streamed into the sketches at a time: ~1 MB of doubles


class IncompletePartials(ValueError):
    """The partials are not exactly one per expected shard, or were not computed alike."""


@dataclass(frozen=True)
class Shard:
    """One shard's identity, as the listing the run fans out over names it."""

    key: str
    etag: str | None = None


@dataclass(frozen=True)
class StatisticsPlan:
    """What every shard of one run computes alike: fixed bin edges per column (counted exactly, e.g. the champion's
    histogram edges: :meth:`from_baseline`) and the sketches' sizes."""

    bins: Mapping[str, Sequence[float]] = field(default_factory=dict)
    target_bins: Sequence[float] | None = None
    kll_k: int = 200
    hll_lg_k: int = 12
    items_lg_max_map_size: int = 10

    @classmethod
    def from_baseline(cls, baseline: Mapping[str, Any] | None, **sizes: int) -> StatisticsPlan:
        """A plan counting each numeric column (and a numeric target) into the baseline statistics' histogram
        edges: the new data's drift from the baseline is then exact when merged."""

        def edges(stats: Mapping[str, Any] | None) -> list[float] | None:
            hist = (stats or {}).get("histogram") if (stats or {}).get("type") == FeatureType.NUMERIC.value else None
            return [float(e) for e in hist["edges"]] if hist else None

        features = dict((baseline or {}).get("features") or {})
        bins = {name: e for name, stats in features.items() if (e := edges(stats)) is not None}
        return cls(bins=bins, target_bins=edges((baseline or {}).get("target")), **sizes)

    def as_json(self) -> dict[str, Any]:
        """The plan as the run stores it, for every shard to read alike (:meth:`from_json`)."""
        return {
            "bins": {k: [float(e) for e in v] for k, v in sorted(self.bins.items())},
            "target_bins": [float(e) for e in self.target_bins] if self.target_bins is not None else None,
            **self.sizes(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatisticsPlan:
        return cls(
            bins={str(k): tuple(float(e) for e in v) for k, v in dict(data.get("bins") or {}).items()},
            target_bins=tuple(float(e) for e in data["target_bins"]) if data.get("target_bins") is not None else None,
            **{k: int(data[k]) for k in ("kll_k", "hll_lg_k", "items_lg_max_map_size") if k in data},
        )

    def edges(self, column: str) -> list[float] | None:
        edges = self.bins.get(column)
        return [float(e) for e in edges] if edges is not None else None

    def sizes(self) -> dict[str, int]:
        return {"kll_k": self.kll_k, "hll_lg_k": self.hll_lg_k, "items_lg_max_map_size": self.items_lg_max_map_size}

    def fingerprint(self) -> str:
        """A digest of the plan: partials computed under different plans do not merge."""
        text = json.dumps(
            {
                "bins": {k: [float(e) for e in v] for k, v in sorted(self.bins.items())},
                "target_bins": [float(e) for e in self.target_bins] if self.target_bins is not None else None,
                "sizes": self.sizes(),
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()


# -- one shard -----------------------------------------------------------------------------------------------------
class _Blobs:
    """The envelope's tail: sketches appended, each named in the header by ``[offset, length]``."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, blob: bytes) -> list[int]:
        self.parts.append(blob)
        self.size += len(blob)
        return [self.size - len(blob), len(blob)]


def _numeric_partial(
    con: Any, source: str, column: str, sql_type: str, plan: StatisticsPlan, edges: list[float] | None, blobs: _Blobs
) -> dict[str, Any]:
    x, v, present, finite = numeric_sql(column, sql_type)
    n, missing, size, zeros, lo, hi, mean, m2 = one_row(
        con,
        f"""SELECT count(*), count(*) FILTER (WHERE {x} IS NULL OR NOT ({present})), count(*) FILTER (WHERE {finite}),
               count(*) FILTER (WHERE {finite} AND {v} = 0), min({v}) FILTER (WHERE {finite}),
               max({v}) FILTER (WHERE {finite}), avg({v}) FILTER (WHERE {finite}),
               var_pop({v}) FILTER (WHERE {finite}) * count(*) FILTER (WHERE {finite})
        FROM {source}""",
    )
    kll = ds.kll_doubles_sketch(plan.kll_k)
    hll = ds.hll_sketch(plan.hll_lg_k, ds.tgt_hll_type.HLL_8)
    result = con.execute(f"SELECT {v} AS v FROM {source} WHERE {x} IS NOT NULL AND {present}")
    while len(chunk := result.fetch_df_chunk(_VECTORS_PER_CHUNK)):
        values = chunk["v"].to_numpy(dtype=float)
        kll.update(values[np.isfinite(values)])
        for value in np.unique(values).tolist():  # HLL is idempotent: each distinct value once is enough
            hll.update(value)
    out: dict[str, Any] = {
        "count": n,
        "missing": missing,
        "size": size,
        "zeros": zeros,
        "hll": blobs.add(hll.serialize_compact()),
    }
    if size:
        out.update(min=lo, max=hi, mean=mean, m2=m2, kll=blobs.add(kll.serialize()))
    if edges is not None:  # every present value, infinities in the outer bins: what feature_drift counts
        where = f"{x} IS NOT NULL AND {present}"
        out["bins"] = {"edges": edges, "counts": sql_bin_counts(con, source, v, where, edges, n - missing)}
    return out


def _categorical_partial(
    con: Any, source: str, column: str, sql_type: str, plan: StatisticsPlan, blobs: _Blobs
) -> dict[str, Any]:
    n, missing = one_row(
        con, f"SELECT count(*), count(*) FILTER (WHERE NOT ({categorical_present(column, sql_type)})) FROM {source}"
    )
    exact: Counter[str] | None = Counter()
    items = ds.frequent_strings_sketch(plan.items_lg_max_map_size)
    hll = ds.hll_sketch(plan.hll_lg_k, ds.tgt_hll_type.HLL_8)
    for key, count in category_counts(con, source, column, sql_type):
        items.update(key, count)
        hll.update(key)
        if exact is not None:
            exact[key] += count
            if len(exact) > FREQUENCIES_MAX:
                exact = None
    out: dict[str, Any] = {"count": n, "missing": missing}
    if exact is not None:  # the sketches are rebuilt from the counts, should a merge need them
        out["exact"] = dict(sorted(exact.items()))
    else:
        out.update(items=blobs.add(items.serialize()), hll=blobs.add(hll.serialize_compact()))
    return out


def partial_statistics(
    paths: Sequence[str | Path],
    config: ProjectConfig,
    limits: EngineLimits | None = None,
    *,
    plan: StatisticsPlan,
    shard: Shard,
) -> bytes:
    """The mergeable partial statistics of one shard (the Parquet files ``paths``), computed by DuckDB held to
    ``limits`` one column at a time, in the envelope :func:`merge_partials` reads (the module's docstring)."""
    source = parquet_source([str(p) for p in paths])
    blobs = _Blobs()
    with connect(limits or EngineLimits.for_function()) as con:
        columns = table_columns(con, source)
        (rows,) = one_row(con, f"SELECT count(*) FROM {source}")
        features: dict[str, Any] = {}
        for name, sql_type, kind in feature_columns(columns, config):
            features[name] = (
                _numeric_partial(con, source, name, sql_type, plan, plan.edges(name), blobs)
                if kind is FeatureType.NUMERIC
                else _categorical_partial(con, source, name, sql_type, plan, blobs)
            )
            features[name]["kind"] = kind.value
        target: dict[str, Any] | None = None
        types = dict(columns)
        if config.target in types:
            # Whether a float target is a regression's (numeric) depends on the distinct count of the whole
            # table: the shard keeps both, the merge picks one.
            sql_type = types[config.target]
            target_edges = [float(e) for e in plan.target_bins] if plan.target_bins is not None else None
            target = {"categorical": _categorical_partial(con, source, config.target, sql_type, plan, blobs)}
            if is_float_type(sql_type):
                target["numeric"] = _numeric_partial(con, source, config.target, sql_type, plan, target_edges, blobs)
    header = {
        "schema": SCHEMA,
        "shard": {"key": shard.key, "etag": shard.etag, "rows": int(rows)},
        "plan": plan.fingerprint(),
        "sketches": plan.sizes(),
        "columns": columns,
        "features": features,
        "target": target,
    }
    # Python's JSON: an overflowing mean or M2 travels as Infinity, as the single pass has it.
    head = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([MAGIC, _LENGTH.pack(len(head)), head, *blobs.parts])


# -- the merge -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Partial:
    header: dict[str, Any]
    tail: memoryview

    @property
    def key(self) -> str:
        return str(self.header["shard"]["key"])

    def blob(self, ref: list[int]) -> bytes:
        offset, length = ref
        return bytes(self.tail[offset : offset + length])


def _decode(data: bytes, index: int) -> _Partial:
    if not data.startswith(MAGIC):
        raise IncompletePartials(f"partial #{index} is not a partial statistics envelope (no {MAGIC!r} at its start)")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _LENGTH.size
    header = json.loads(data[start : start + length])
    if header.get("schema") != SCHEMA:
        raise IncompletePartials(
            f"partial #{index} ({header.get('shard', {}).get('key')}) has envelope schema {header.get('schema')}, "
            f"this merge reads {SCHEMA}: recompute it with this version"
        )
    return _Partial(header, memoryview(data)[start + length :])


def _check_complete(partials: list[_Partial], expected_shards: Sequence[str]) -> None:
    """One partial per expected shard, computed alike: else an error naming what is missing, doubled or foreign."""
    seen = Counter(p.key for p in partials)
    expected = Counter(expected_shards)
    problems = []
    if doubled := sorted(k for k, c in expected.items() if c > 1):
        problems.append(f"shards listed more than once: {doubled}")
    if missing := sorted(set(expected) - set(seen)):
        problems.append(f"missing partials for {len(missing)} shard(s): {missing}")
    if duplicated := sorted(k for k, c in seen.items() if c > 1):
        problems.append(f"more than one partial for {duplicated}")
    if extra := sorted(set(seen) - set(expected)):
        problems.append(f"partials of shards not in the listing: {extra}")
    if problems:
        raise IncompletePartials(
            f"{len(partials)} partial(s) for {len(expected)} listed shard(s): " + "; ".join(problems)
        )
    first = partials[0].header if partials else None
    for p in partials[1:]:
        for part, what in (("plan", "a different plan (bins or sketch sizes)"), ("columns", "other columns")):
            if p.header[part] != first[part]:  # type: ignore[index]
                raise IncompletePartials(
                    f"shard {p.key} was computed with {what} than shard {partials[0].key}: recompute the run's "
                    "shards alike"
                )


def _chan(parts: list[dict[str, Any]]) -> tuple[float, float]:
    """Mean and M2 of the union of ``parts`` (each: size, mean, m2), pairwise (Chan, Golub and LeVeque)."""
    n, mean, m2 = 0, 0.0, 0.0
    for p in parts:
        nb, mb, m2b = p["size"], float(p["mean"]), float(p["m2"])
        total = n + nb
        delta = mb - mean
        mean += delta * nb / total
        m2 += m2b + delta * delta * n * nb / total
        n = total
    return mean, m2


def _kll_histogram(kll: Any, lo: float, hi: float, size: int) -> dict[str, Any]:
    """Decile edges from the KLL (the first and last: the exact min and max), counts from its CDF: each bin holds
    the values at or past its left edge and below its right one (numpy's ``searchsorted`` ``side="right"``)."""
    interior = kll.get_quantiles(EDGE_LEVELS[1:-1], True)
    edges = sorted({float(lo), *map(float, interior), float(hi)})
    if len(edges) < 2:
        return {"edges": edges, "counts": [size]}
    below = [round(r * size) for r in kll.get_cdf(edges[1:-1], False)[:-1]]
    cumulative = [0, *below, size]
    return {"edges": edges, "counts": [cumulative[i + 1] - cumulative[i] for i in range(len(cumulative) - 1)]}


def _merge_numeric(parts: list[tuple[_Partial, dict[str, Any]]], plan: StatisticsPlan) -> dict[str, Any]:
    hll = ds.hll_union(plan.hll_lg_k)
    kll = ds.kll_doubles_sketch(plan.kll_k)
    for p, c in parts:
        hll.update(ds.hll_sketch.deserialize(p.blob(c["hll"])))
        if c["size"]:
            kll.merge(ds.kll_doubles_sketch.deserialize(p.blob(c["kll"])))
    cols = [c for _, c in parts]
    size = sum(c["size"] for c in cols)
    out: dict[str, Any] = {
        "count": sum(c["count"] for c in cols),
        "missing": sum(c["missing"] for c in cols),
        "distinct": round(hll.get_estimate()),
    }
    if size:
        present = [c for c in cols if c["size"]]
        mean, m2 = _chan(present)
        lo, hi = min(c["min"] for c in present), max(c["max"] for c in present)
        levels = list(QUANTILES.values())
        out.update(
            min=float(lo),
            max=float(hi),
            mean=mean,
            std=finite_or_none(math.sqrt(m2 / (size - 1))) if size > 1 else 0.0,
            quantiles=dict(zip(QUANTILES, map(float, kll.get_quantiles(levels, True)), strict=True)),
            histogram=_kll_histogram(kll, lo, hi, size),
            zeros=sum(c["zeros"] for c in cols),
        )
    if "bins" in cols[0]:
        counts = [sum(col) for col in zip(*(c["bins"]["counts"] for c in cols), strict=True)]
        out["bins"] = {"edges": cols[0]["bins"]["edges"], "counts": counts}
    return out


def _merge_categorical(parts: list[tuple[_Partial, dict[str, Any]]], plan: StatisticsPlan) -> dict[str, Any]:
    cols = [c for _, c in parts]
    out: dict[str, Any] = {"count": sum(c["count"] for c in cols), "missing": sum(c["missing"] for c in cols)}
    if all("exact" in c for c in cols):
        counts: Counter[str] = Counter()
        for c in cols:
            counts.update(c["exact"])
        ordered = dict(sorted(counts.items()))  # ties at the cut by text: any order of the shards, one top
        return {**out, "distinct": len(ordered), **ranked_values(ordered, len(ordered))}
    items = ds.frequent_strings_sketch(plan.items_lg_max_map_size)
    hll = ds.hll_union(plan.hll_lg_k)
    for p, c in parts:
        if "exact" in c:
            for key, count in c["exact"].items():
                items.update(key, count)
                hll.update(key)
        else:
            items.merge(ds.frequent_strings_sketch.deserialize(p.blob(c["items"])))
            hll.update(ds.hll_sketch.deserialize(p.blob(c["hll"])))
    frequent = sorted(
        items.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES), key=lambda t: (-t[1], t[0])
    )
    # A shard had more than FREQUENCIES_MAX values: the table has too, whatever HLL estimates.
    return {
        **out,
        "distinct": max(round(hll.get_estimate()), FREQUENCIES_MAX + 1),
        "top": [{"value": key, "count": int(estimate)} for key, estimate, _, _ in frequent[:TOP_K]],
        "frequencies": None,
    }


def merge_partials(
    partials: Sequence[bytes], config: ProjectConfig, *, expected_shards: Sequence[str]
) -> dict[str, Any]:
    """The statistics of the whole table from its shards' partials, in the shape :func:`compute_statistics` gives
    (a numeric column also carries ``bins`` when the plan fixed its edges). Raises :class:`IncompletePartials`
    unless there is exactly one partial per shard in ``expected_shards``, all computed under one plan."""
    decoded = sorted((_decode(bytes(p), i) for i, p in enumerate(partials)), key=lambda p: p.key)
    _check_complete(decoded, expected_shards)
    if not decoded:
        raise IncompletePartials("no shards: a snapshot has at least one object")
    first = decoded[0].header
    plan = StatisticsPlan(**first["sketches"])
    columns = [(str(name), str(sql_type)) for name, sql_type in first["columns"]]
    features: dict[str, Any] = {}
    for name, sql_type, _ in feature_columns(columns, config):
        kind = FeatureType(first["features"][name]["kind"])
        parts = [(p, p.header["features"][name]) for p in decoded]
        body = _merge_numeric(parts, plan) if kind is FeatureType.NUMERIC else _merge_categorical(parts, plan)
        features[name] = column_entry(kind, sql_type, body)
    target_stats = None
    if first["target"] is not None:
        sql_type = dict(columns)[config.target]
        categorical = _merge_categorical([(p, p.header["target"]["categorical"]) for p in decoded], plan)
        if "numeric" in first["target"] and categorical["distinct"] > TARGET_NUMERIC_DISTINCT:
            numeric = _merge_numeric([(p, p.header["target"]["numeric"]) for p in decoded], plan)
            target_stats = column_entry(FeatureType.NUMERIC, sql_type, numeric)
        else:
            target_stats = column_entry(FeatureType.CATEGORICAL, sql_type, categorical)
    return {
        "num_rows": sum(int(p.header["shard"]["rows"]) for p in decoded),
        "num_columns": len(columns),
        "features": features,
        "target": target_stats,
    }


# -- drift from merged statistics ----------------------------------------------------------------------------------
def statistics_drift(baseline: Mapping[str, Any], merged: Mapping[str, Any]) -> Drift | None:
    """:func:`mlops.data.stats.feature_drift` from a column's merged statistics rather than its values: PSI over
    the counts the plan fixed in the baseline's histogram edges (``bins``), the Jensen-Shannon distance over the
    exact value counts (``frequencies``) — each the very number the single pass gives. None where the single pass
    gives none (no baseline histogram or frequencies, no value present); an error where the merged statistics
    cannot give it exactly (bins not planned in the baseline's edges; more than ``FREQUENCIES_MAX`` values)."""
    if not merged["count"] - merged["missing"]:
        return None
    if baseline["type"] == FeatureType.NUMERIC.value:
        hist = baseline.get("histogram")
        if not hist:
            return None
        bins = merged.get("bins")
        if not bins or [float(e) for e in bins["edges"]] != [float(e) for e in hist["edges"]]:
            raise ValueError("the merged statistics have no counts in the baseline's edges: plan them as bins")
        return histogram_drift(dict(hist), bins["counts"])
    freqs = baseline.get("frequencies")
    if not freqs:
        return None
    if merged.get("frequencies") is None:
        raise ValueError(f"more than {FREQUENCIES_MAX} values: the merged statistics keep no exact counts")
    return frequency_drift(dict(freqs), dict(merged["frequencies"]))
