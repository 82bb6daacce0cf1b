"""Statistics past one function: partial statistics per shard, merged, against the single pass over all shards.

The table of :mod:`benchmarks.bounded_memory` (20 skewed numeric columns with 2-15 % missing, 5 Zipf-skewed
categorical ones of 4 to 50,000 values, a binary target) is written as ``K`` Parquet shards of uneven sizes (as a
snapshot of several objects is). Each shard's :func:`mlops.data.partials.partial_statistics` runs in a fresh child
process (as one Distributed Map iteration runs in a Lambda invocation of its own), held to
:meth:`EngineLimits.for_function` of the analyze function's memory; the merge runs in another child; the single pass
(:func:`mlops.data.stats.compute_statistics` over all the shards) in a third. Each child reports its peak resident
set (``VmHWM``) and its seconds; the merged artifact is then compared with the single pass's, statistic by
statistic, and the quantiles and histogram edges with the true ranks of the values.

Run: ``python -m benchmarks.sharded_statistics [rows] [--shards K]`` (default 1,000,000 rows, 8 shards; Linux).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bounded_memory import FUNCTION_MB, _high_water_kb, config, table


def write_shards(rows: int, shards: int, where: Path) -> tuple[list[Path], Any]:
    """The table in ``shards`` Parquet files of uneven sizes (the i-th ∝ i + 1); the frame, for the true ranks."""
    import fastparquet

    df = table(rows)
    weights = np.arange(1, shards + 1, dtype=float)
    bounds = np.concatenate([[0], np.cumsum(weights / weights.sum() * rows)]).round().astype(int)
    paths = []
    for i in range(shards):
        path = where / f"part-{i:03d}.parquet"
        part = df.iloc[bounds[i] : bounds[i + 1]]
        fastparquet.write(str(path), part, write_index=False, compression="SNAPPY", row_group_offsets=1_000_000)
        paths.append(path)
    return paths, df


def child(mode: str, out: str, paths: list[str]) -> None:
    """In a process of its own: one shard's partial, the merge of partials, or the single pass; writes the result
    to ``out`` and prints peak RSS and seconds as JSON."""
    from mlops.data.engine import EngineLimits
    from mlops.data.partials import Shard, StatisticsPlan, merge_partials, partial_statistics
    from mlops.data.stats import compute_statistics

    cfg = config()
    limits = EngineLimits.for_function(FUNCTION_MB)
    imported_kb = _high_water_kb()
    t0 = time.perf_counter()
    if mode == "partial":
        data = partial_statistics(paths, cfg, limits, plan=StatisticsPlan(), shard=Shard(Path(paths[0]).stem))
        Path(out).write_bytes(data)
        size = len(data)
    else:
        if mode == "merge":
            partials = [Path(p).read_bytes() for p in paths]
            keys = [Path(p).stem for p in paths]
            stats = merge_partials(partials, cfg, expected_shards=keys)
        else:
            stats = compute_statistics(paths, cfg, limits)
        Path(out).write_text(json.dumps(stats))
        size = 0
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {"seconds": seconds, "peak_mb": _high_water_kb() / 1024, "imported_mb": imported_kb / 1024, "bytes": size}
        )
    )


def run(mode: str, out: Path, paths: list[Path]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.sharded_statistics", "--child", mode, str(out), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def errors(single: dict[str, Any], merged: dict[str, Any], df: Any) -> dict[str, float]:
    """The largest difference of the merged statistics from the single pass's, per statistic: counts as absolute
    differences, moments relative, quantiles and histogram edges as rank errors against the data, distinct counts
    and top counts relative to the single pass's / the column's rows."""
    worst: dict[str, float] = {}

    def note(name: str, value: float) -> None:
        worst[name] = max(worst.get(name, 0.0), float(value))

    for col, s in single["features"].items():
        m = merged["features"][col]
        for field in ("count", "missing", "zeros"):
            if field in s:
                note(f"{field} (abs)", abs(s[field] - m[field]))
        note("distinct (rel)", abs(s["distinct"] - m["distinct"]) / max(1, s["distinct"]))
        if s["type"] == "numeric":
            for field in ("min", "max"):
                note(f"{field} (abs)", abs(s[field] - m[field]))
            for field in ("mean", "std"):
                note(f"{field} (rel)", abs(s[field] - m[field]) / abs(s[field]))
            values = np.sort(df[col].dropna().to_numpy(dtype=float))
            n = values.size

            def rank_error(x: float, level: float, values: np.ndarray = values, n: int = n) -> float:
                lo = np.searchsorted(values, x, side="left") / n
                hi = np.searchsorted(values, x, side="right") / n
                return max(0.0, lo - level, level - hi)

            levels = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
            for name, level in levels.items():
                note("quantile (rank)", rank_error(m["quantiles"][name], level))
                note(
                    "quantile (rel value)",
                    abs(m["quantiles"][name] - s["quantiles"][name]) / abs(s["quantiles"][name] or 1),
                )
            below = np.cumsum(m["histogram"]["counts"])[:-1]
            for edge, count in zip(m["histogram"]["edges"][1:-1], below, strict=True):
                note("histogram cumulative count (share of rows)", abs(count - np.searchsorted(values, edge)) / n)
        else:
            note("frequencies equal (0 = yes)", float(s["frequencies"] != m["frequencies"]))
            rows = s["count"] - s["missing"]
            for a, b in zip(s["top"], m["top"], strict=True):
                note("top count (share of rows)", abs(a["count"] - b["count"]) / rows)
    return worst


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="?", default="1000000")
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    rows = int(args.rows.replace(",", "").replace("_", ""))
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        where = Path(tmp)
        paths, df = write_shards(rows, args.shards, where)
        print(f"{rows:,} rows in {args.shards} shards, {sum(p.stat().st_size for p in paths) / 1e6:.0f} MB of Parquet")
        print("\n| shard | rows | Parquet MB | peak RSS MB | RSS after imports MB | seconds | partial KB |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        partials = []
        for path in paths:
            out = where / f"{path.stem}"  # named as the shard: the merge reads its key from the name
            m = run("partial", out, [path])
            partials.append(out)
            shard_rows = len(df) if len(paths) == 1 else None
            print(
                f"| {path.stem} | {shard_rows or _rows(path):,} | {path.stat().st_size / 1e6:.1f} | {m['peak_mb']:.0f} "
                f"| {m['imported_mb']:.0f} | {m['seconds']:.1f} | {m['bytes'] / 1024:.0f} |",
                flush=True,
            )
        merge = run("merge", where / "merged.json", partials)
        single = run("single", where / "single.json", paths)
        print("\n| step | peak RSS MB | seconds |\n|---|---:|---:|")
        print(f"| merge of {len(partials)} partials | {merge['peak_mb']:.0f} | {merge['seconds']:.2f} |")
        print(f"| single pass over all shards | {single['peak_mb']:.0f} | {single['seconds']:.1f} |")
        worst = errors(
            json.loads((where / "single.json").read_text()), json.loads((where / "merged.json").read_text()), df
        )
        print("\n| statistic | largest difference, merged vs single pass |\n|---|---:|")
        for name, value in worst.items():
            print(f"| {name} | {value:.3g} |" if not math.isnan(value) else f"| {name} | nan |")


def _rows(path: Path) -> int:
    import fastparquet

    return int(fastparquet.ParquetFile(str(path)).count())


if __name__ == "__main__":
    main()
