"""Statistics merged from shards are the single pass's: counts and moments exactly, quantiles, histograms and distinct
counts within their sketches' stated errors, drift against planned bins exactly; and the merge refuses partials that
are not one per listed shard."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import datasketches as ds
import numpy as np
import pandas as pd
import pytest

from mlops.core.config import FeatureType, ProjectConfig
from mlops.data.engine import EngineLimits
from mlops.data.frames import from_parquet_bytes, to_parquet_bytes
from mlops.data.partials import (
    IncompletePartials,
    Shard,
    StatisticsPlan,
    merge_partials,
    partial_statistics,
    statistics_drift,
)
from mlops.data.stats import QUANTILES, compute_statistics, feature_drift
from mlops.tools.samples import bundled, customers
from tests.unit.test_statistics import CHURN, KINDS, _config, _with_missing, every_kind

pytestmark = pytest.mark.unit

LIMITS = EngineLimits(memory_mb=256, threads=1)
PLAN = StatisticsPlan()
# The KLL's rank error over all ranks at once (its PMF bound, 99% confidence): the tests ask many quantiles.
RANK_ERROR = ds.kll_doubles_sketch.get_normalized_rank_error(PLAN.kll_k, True)
# HLL's relative error at three standard deviations, for a union.
DISTINCT_ERROR = max(abs(ds.hll_sketch.get_rel_err(bound, True, PLAN.hll_lg_k, 3)) for bound in (True, False))

TABLES = {
    "breast-cancer": (lambda: _with_missing(bundled("breast-cancer"), {"target"}), _config("target")),
    "customers": (lambda: _with_missing(customers(3000, seed=4), {"customer_id", "churn"}), CHURN),
    "every kind": (lambda: _with_missing(every_kind(), {"count", "flag", "seen", "empty", "constant"}), KINDS),
}
# Shard boundaries as shares of the rows: one shard; three even; seven uneven with an empty one.
SPLITS = {
    "1": [0.0, 1.0],
    "3": [0.0, 1 / 3, 2 / 3, 1.0],
    "7 uneven, one empty": [0.0, 0.02, 0.05, 0.05, 0.3, 0.35, 0.8, 1.0],
}


def write_shards(df: pd.DataFrame, shares: list[float], where: Path) -> list[Path]:
    bounds = [round(s * len(df)) for s in shares]
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(bounds) - 1):
        path = where / f"part-{i:03d}.parquet"
        path.write_bytes(to_parquet_bytes(df.iloc[bounds[i] : bounds[i + 1]]))
        paths.append(path)
    return paths


def partials_of(paths: list[Path], config: ProjectConfig, plan: StatisticsPlan = PLAN) -> list[bytes]:
    return [
        partial_statistics([p], config, LIMITS, plan=plan, shard=Shard(p.name, f"etag-{i}"))
        for i, p in enumerate(paths)
    ]


def _present_values(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series.dropna(), errors="coerce").dropna().to_numpy(dtype=float)
    return np.sort(values[np.isfinite(values)])


def _rank_between(values: np.ndarray, x: float) -> tuple[float, float]:
    """The share of ``values`` below ``x`` and at or below it: the ranks ``x`` may stand at."""
    n = values.size
    return np.searchsorted(values, x, side="left") / n, np.searchsorted(values, x, side="right") / n


def assert_merged_numeric(single: dict[str, Any], merged: dict[str, Any], values: np.ndarray, where: str) -> None:
    for field in ("type", "dtype", "count", "missing", "missing_rate", "zeros", "min", "max"):
        assert merged.get(field) == single.get(field), (
            f"{where}.{field}: {merged.get(field)} against {single.get(field)}"
        )
    for field in ("mean", "std"):
        a, b = single.get(field), merged.get(field)
        assert (a is None) == (b is None), f"{where}.{field}: {b} against {a}"
        if a is not None:
            scale = single.get("std") or abs(a) or 1.0  # a mean near zero: its error is the spread's rounding
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12 * scale), f"{where}.{field}: {b!r} against {a!r}"
    true = single["distinct"]
    assert abs(merged["distinct"] - true) <= DISTINCT_ERROR * true + 1, (
        f"{where}.distinct: {merged['distinct']} of {true}"
    )
    if not values.size:
        assert "quantiles" not in merged and "histogram" not in merged, where
        return
    for name, level in QUANTILES.items():
        lo, hi = _rank_between(values, merged["quantiles"][name])
        assert lo - RANK_ERROR <= level <= hi + RANK_ERROR, f"{where}.{name}: rank {lo}-{hi} for {level}"
    hist = merged["histogram"]
    assert hist["edges"][0] == single["min"] and hist["edges"][-1] == single["max"], where
    assert hist["edges"] == sorted(set(hist["edges"])) and sum(hist["counts"]) == values.size, where
    below = np.cumsum(hist["counts"])[:-1]
    for edge, count in zip(hist["edges"][1:-1], below, strict=True):
        true_below = np.searchsorted(values, edge, side="left")
        assert abs(count - true_below) <= RANK_ERROR * values.size + 1, f"{where}.histogram below {edge}"


def assert_merged_categorical(single: dict[str, Any], merged: dict[str, Any], where: str) -> None:
    for field in ("type", "dtype", "count", "missing", "missing_rate"):
        assert merged[field] == single[field], f"{where}.{field}: {merged[field]} against {single[field]}"
    if single["frequencies"] is not None:  # few values: every count exact
        assert merged["frequencies"] == single["frequencies"], where
        assert merged["distinct"] == single["distinct"], where
        assert [t["count"] for t in merged["top"]] == [t["count"] for t in single["top"]], where
    else:  # many: distinct within HLL's bound; the top within the frequent-items sketch's
        assert merged["frequencies"] is None, where
        true = single["distinct"]
        assert abs(merged["distinct"] - true) <= DISTINCT_ERROR * true + 1, f"{where}.distinct"
        rows = single["count"] - single["missing"]
        error = ds.frequent_strings_sketch.get_epsilon_for_lg_size(PLAN.items_lg_max_map_size) * rows
        for s, m in zip(single["top"], merged["top"], strict=True):
            assert abs(s["count"] - m["count"]) <= error, f"{where}.top: {m} against {s}"


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize("name", list(TABLES))
def test_given_a_table_in_shards_when_their_partials_merge_then_the_statistics_are_the_single_pass(
    name: str, split: str, tmp_path: Path
) -> None:
    make, config = TABLES[name]
    df = make()
    # GIVEN the table written as shards, and the single pass's statistics over all of them
    paths = write_shards(df, SPLITS[split], tmp_path)
    single = compute_statistics(paths, config, LIMITS)
    frame = from_parquet_bytes(to_parquet_bytes(df))
    # WHEN each shard computes its partial and the merge combines them
    merged = merge_partials(partials_of(paths, config), config, expected_shards=[p.name for p in paths])
    # THEN the counts and moments are the single pass's, the sketched numbers within their bounds
    assert (merged["num_rows"], merged["num_columns"]) == (single["num_rows"], single["num_columns"])
    assert list(merged["features"]) == list(single["features"])
    for col, stats in [*single["features"].items(), (config.target, single["target"])]:
        got = merged["target"] if col == config.target else merged["features"][col]
        if stats["type"] == FeatureType.NUMERIC.value:
            assert_merged_numeric(stats, got, _present_values(frame[col]), f"{name}.{col}")
        else:
            assert_merged_categorical(stats, got, f"{name}.{col}")


def test_given_partials_in_any_order_then_the_merge_is_the_same(tmp_path: Path) -> None:
    make, config = TABLES["every kind"]
    paths = write_shards(make(), SPLITS["7 uneven, one empty"], tmp_path)
    partials = partials_of(paths, config)
    keys = [p.name for p in paths]
    # GIVEN the partials in listing order and reversed
    forward = merge_partials(partials, config, expected_shards=keys)
    backward = merge_partials(partials[::-1], config, expected_shards=keys[::-1])

    # THEN every exact number is bit for bit the same (the KLL's compactions are random: quantiles and histogram
    # are checked against their bound above, not for equality)
    def exact(stats: dict[str, Any]) -> dict[str, Any]:
        return {c: {k: v for k, v in s.items() if k not in {"quantiles", "histogram"}} for c, s in stats.items()}

    assert exact(forward["features"]) == exact(backward["features"])
    assert forward["num_rows"] == backward["num_rows"] == 1500


@pytest.fixture(scope="module")
def three_partials(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], list[str]]:
    make, config = TABLES["breast-cancer"]
    paths = write_shards(make(), SPLITS["3"], tmp_path_factory.mktemp("shards"))
    return partials_of(paths, config), [p.name for p in paths]


def test_given_a_partial_missing_then_the_merge_names_its_shard(three_partials: tuple[list[bytes], list[str]]) -> None:
    partials, keys = three_partials
    with pytest.raises(IncompletePartials, match=r"missing partials for 1 shard\(s\): \['part-001.parquet'\]"):
        merge_partials([partials[0], partials[2]], TABLES["breast-cancer"][1], expected_shards=keys)


def test_given_a_partial_twice_then_the_merge_names_its_shard(three_partials: tuple[list[bytes], list[str]]) -> None:
    partials, keys = three_partials
    with pytest.raises(IncompletePartials, match=r"more than one partial for \['part-002.parquet'\]"):
        merge_partials([*partials, partials[2]], TABLES["breast-cancer"][1], expected_shards=keys)


def test_given_a_partial_of_a_shard_not_listed_then_the_merge_names_it(
    three_partials: tuple[list[bytes], list[str]],
) -> None:
    partials, keys = three_partials
    with pytest.raises(IncompletePartials, match=r"not in the listing: \['part-000.parquet'\]"):
        merge_partials([*partials[1:], partials[0]], TABLES["breast-cancer"][1], expected_shards=keys[1:])


def test_given_partials_of_different_plans_or_not_partials_then_the_merge_refuses(
    three_partials: tuple[list[bytes], list[str]], tmp_path: Path
) -> None:
    partials, keys = three_partials
    config = TABLES["breast-cancer"][1]
    other = partial_statistics(
        [write_shards(TABLES["breast-cancer"][0](), SPLITS["3"], tmp_path)[2]],
        config,
        LIMITS,
        plan=StatisticsPlan(kll_k=100),
        shard=Shard("part-002.parquet"),
    )
    with pytest.raises(IncompletePartials, match="different plan"):
        merge_partials([*partials[:2], other], config, expected_shards=keys)
    with pytest.raises(IncompletePartials, match="not a partial statistics envelope"):
        merge_partials([*partials[:2], b'{"num_rows": 3}'], config, expected_shards=keys)


@pytest.mark.parametrize("name", ["breast-cancer", "every kind"])
def test_given_the_baselines_edges_planned_then_drift_from_the_merge_is_the_single_pass_drift(
    name: str, tmp_path: Path
) -> None:
    make, config = TABLES[name]
    df = make()
    # GIVEN a baseline from the first rows, and new data shifted from it, in shards planned with the baseline's bins
    baseline = compute_statistics(write_shards(df.iloc[:500], SPLITS["1"], tmp_path / "base"), config, LIMITS)
    new = df.iloc[500:].copy()
    numeric = [c for c, s in baseline["features"].items() if s["type"] == FeatureType.NUMERIC.value]
    new[numeric[0]] = new[numeric[0]] * 1.3
    paths = write_shards(new, SPLITS["7 uneven, one empty"], tmp_path / "new")
    plan = StatisticsPlan.from_baseline(baseline)
    merged = merge_partials(partials_of(paths, config, plan), config, expected_shards=[p.name for p in paths])
    # WHEN drift is measured from the merged statistics and, as validate_data does, from the whole new table
    frame = from_parquet_bytes(to_parquet_bytes(new))
    compared = 0
    for col, base in baseline["features"].items():
        expected = feature_drift(base, frame[col])
        actual = statistics_drift(base, merged["features"][col])
        # THEN they are the same number over the same picture
        assert actual == expected, col
        compared += expected is not None
    assert compared >= len(numeric)
    assert max(feature_drift(baseline["features"][c], frame[c]).value for c in numeric[:1]) > 0.1  # type: ignore[union-attr]
