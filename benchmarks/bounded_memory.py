"""Analyze's statistics on a table larger than its frame should be: pandas (before issue 29) against DuckDB (after).

A synthetic table shaped like a real one (20 numeric columns — lognormal, Pareto, exponential, normal, counts —
with 2-15 % missing; 5 categorical columns of 4 to 50,000 values, Zipf-skewed, some missing; a binary target) is
written once as the snapshot is, one Parquet file (fastparquet, text dictionary-encoded). Each engine then computes
the statistics artifact in a fresh child process (as a Lambda invocation has one of its own):

- **pandas** — the step as it was: the file read into a frame (``from_parquet_bytes``) and the pandas statistics
  (kept as the reference in ``tests/unit/test_statistics.py``);
- **DuckDB** — the step as it is: :func:`mlops.data.stats.compute_statistics` over the file, held to
  :meth:`EngineLimits.for_function` of the analyze function's memory (2,048 MB → a 1,024 MB ``memory_limit``),
  spilling under ``/tmp``, on every CPU of the machine.

Each child reports its peak resident set (``VmHWM``: interpreter, imports and all) and
its seconds; the table gives them ÷ DuckDB's ``memory_limit``, ÷ the function's MemorySize, and per million rows.

Run: ``python -m benchmarks.bounded_memory [rows ...]`` (default 1,000,000; Linux); ``--steps [rows ...]``
measures extract (a landed CSV parsed and written as the snapshot), validate_data (schema inferred, checks and drift)
and prepare (the three splits) the same way, each at its own function's memory. 10,000,000 rows needs ~6 GB
free for the pandas child and a few minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FUNCTION_MB = 2048  # analyze's MemorySize (mlops.infra.functions)
NUMERIC, CATEGORICAL = 20, 5


def config() -> Any:
    from mlops.core.config import parse_config

    return parse_config(
        {
            "name": "wide",
            "data": {"prefix": "wide/"},
            "target": "label",
            "training": {"candidates": [{"family": "logistic_regression"}]},
        }
    )


def table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    shapes = (
        lambda: rng.lognormal(3, 1.2, rows),
        lambda: rng.pareto(2.5, rows) * 100,
        lambda: rng.exponential(30, rows),
        lambda: rng.normal(50, 10, rows),
        lambda: rng.poisson(2, rows).astype(float),
    )
    for i in range(NUMERIC):
        values = shapes[i % len(shapes)]().round(2)
        values[rng.random(rows) < 0.02 + 0.13 * (i % 4) / 3] = np.nan
        cols[f"n{i:02d}"] = values
    for i, size in enumerate((4, 12, 300, 5_000, 50_000)[:CATEGORICAL]):
        codes = (rng.zipf(1.3, rows) - 1) % size
        codes[rng.random(rows) < 0.05] = -1  # missing
        cols[f"c{i}"] = pd.Categorical.from_codes(codes, [f"v{size}-{k}" for k in range(size)])
    cols["label"] = (rng.random(rows) < 0.2).astype(np.int64)
    return pd.DataFrame(cols)


CHUNK = 5_000_000  # rows generated at once: 50M rows in one frame would not fit this machine's memory


def write(rows: int, path: Path) -> None:
    """The table, one Parquet file; above ``CHUNK`` rows generated a chunk at a time (a seed each) and joined by
    DuckDB."""
    import duckdb
    import fastparquet

    if rows <= CHUNK:
        fastparquet.write(str(path), table(rows), write_index=False, compression="SNAPPY", row_group_offsets=1_000_000)
        return
    chunks = []
    for i, start in enumerate(range(0, rows, CHUNK)):
        chunks.append(path.with_name(f"chunk-{i}.parquet"))
        frame = table(min(CHUNK, rows - start), seed=i)
        fastparquet.write(str(chunks[-1]), frame, write_index=False, compression="SNAPPY", row_group_offsets=1_000_000)
        del frame
    files = ", ".join(f"'{c}'" for c in chunks)
    duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet([{files}])) TO '{path}' (FORMAT parquet)")
    for c in chunks:
        c.unlink()


def write_csv(parquet: Path, csv: Path) -> None:
    import duckdb

    duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet('{parquet}')) TO '{csv}' (HEADER, DELIMITER ',')")


def child(engine: str, path: str) -> None:
    """Run in a process of its own: compute the statistics, print peak RSS and seconds as JSON."""
    # Both children import the same modules before the clock starts (the reference's test module brings
    # scikit-learn through mlops.tools.samples, which a deployed analyze does not load): the resident set after
    # the imports is printed beside the peak.
    from tests.unit.test_statistics import reference_statistics

    from mlops.data.engine import EngineLimits
    from mlops.data.frames import from_parquet_bytes
    from mlops.data.stats import compute_statistics

    cfg = config()
    limits = EngineLimits.for_function(FUNCTION_MB)
    imported_kb = _high_water_kb()
    t0 = time.perf_counter()
    if engine == "duckdb":
        stats = compute_statistics([path], cfg, limits)
    else:
        stats = reference_statistics(from_parquet_bytes(Path(path).read_bytes()), cfg)
    seconds = time.perf_counter() - t0
    peak_kb = _high_water_kb()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": peak_kb / 1024,
                "imported_mb": imported_kb / 1024,
                "limit_mb": limits.memory_mb,
                "rows": stats["num_rows"],
                "threads": limits.threads,
            }
        )
    )


STEP_MB = {"extract": 3008, "validate_data": 2048, "prepare": 2048}  # their MemorySize (mlops.infra.functions)


def step_child(step: str, path: str) -> None:
    """Run one data step's work in a process of its own, as the step does it (DuckDB within the limits of its
    function's memory): extract parses a landed CSV object into Parquet and writes the snapshot from it;
    validate_data infers the schema and validates the snapshot against it and against its own statistics (drift);
    prepare writes the three splits. Prints peak RSS and seconds as JSON."""
    from mlops.core.config import DataFormat
    from mlops.data.engine import EngineLimits, connect
    from mlops.data.landing import load_object, write_snapshot
    from mlops.data.schema import infer_schema, validate
    from mlops.data.splits import write_splits
    from mlops.data.stats import compute_statistics
    from mlops.data.table import SqlTable

    cfg = config()
    limits = EngineLimits.for_function(STEP_MB[step])
    source = Path(path)
    baseline = None
    if step == "validate_data":  # the champion's statistics, computed before the clock starts
        baseline = compute_statistics([str(source)], cfg, limits)
    imported_kb = _high_water_kb()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        out = Path(tmp)
        if step == "extract":
            with connect(limits) as con:
                rows = load_object(con, source, "wide/batch.csv", DataFormat.CSV, out / "part-0.parquet")
                rows, _ = write_snapshot(con, [out / "part-0.parquet"], out / "snapshot.parquet")
        elif step == "validate_data":
            with connect(limits) as con:
                table = SqlTable(con, [str(source)])
                schema = infer_schema(table, cfg)
                checked = validate(table, schema, cfg, baseline)
                assert checked["drift"], "no drift computed"
                rows = table.rows
        else:
            written = write_splits(source, out, cfg, limits)
            rows = sum(written.rows.values())
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": _high_water_kb() / 1024,
                "imported_mb": imported_kb / 1024,
                "limit_mb": limits.memory_mb,
                "function_mb": STEP_MB[step],
                "rows": rows,
                "threads": limits.threads,
            }
        )
    )


def steps(sizes: list[int]) -> None:
    """extract, validate_data and prepare at each size: peak RSS ÷ DuckDB's limit and ÷ the function's memory."""
    print(
        "| rows | step | input MB | RSS after imports MB | peak RSS MB | ÷ DuckDB memory_limit | ÷ function MemorySize "
        "| seconds | s / million rows |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for rows in sizes:
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            parquet, csv = Path(tmp) / "snapshot.parquet", Path(tmp) / "batch.csv"
            write(rows, parquet)
            write_csv(parquet, csv)
            for step, path in (("extract", csv), ("validate_data", parquet), ("prepare", parquet)):
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.bounded_memory", "--step", step, str(path)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                m = json.loads(out.stdout.strip().splitlines()[-1])
                assert m["rows"] == rows, m
                print(
                    f"| {rows:,} | {step} | {path.stat().st_size / 1e6:.0f} | {m['imported_mb']:.0f} "
                    f"| {m['peak_mb']:.0f} | {m['peak_mb'] / m['limit_mb']:.2f} "
                    f"| {m['peak_mb'] / m['function_mb']:.2f} "
                    f"| {m['seconds']:.1f} | {m['seconds'] / (rows / 1e6):.1f} |",
                    flush=True,
                )


def _high_water_kb() -> int:
    """This process's peak resident set (``VmHWM``). Not ``ru_maxrss``: Linux carries into it, across ``exec``,
    the high-water mark of the parent's copy this child was forked from (the parent that wrote the table)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(engine: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bounded_memory", "--child", engine, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3])
        return
    if sys.argv[1:2] == ["--step"]:
        step_child(sys.argv[2], sys.argv[3])
        return
    if sys.argv[1:2] == ["--steps"]:
        steps([int(a.replace(",", "").replace("_", "")) for a in sys.argv[2:]] or [1_000_000])
        return
    sizes = [int(a.replace(",", "").replace("_", "")) for a in sys.argv[1:]] or [1_000_000]
    print(
        "| rows | file MB | engine | threads | RSS after imports MB | peak RSS MB | ÷ DuckDB memory_limit "
        "| ÷ function MemorySize "
        "| seconds | s / million rows |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for rows in sizes:
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            path = Path(tmp) / "snapshot.parquet"
            write(rows, path)
            size = path.stat().st_size / 1e6
            for engine in ("pandas", "duckdb"):
                m = measure(engine, path)
                assert m["rows"] == rows, m
                print(
                    f"| {rows:,} | {size:.0f} | {engine} | {m['threads'] if engine == 'duckdb' else 1} "
                    f"| {m['imported_mb']:.0f} | {m['peak_mb']:.0f} | {m['peak_mb'] / m['limit_mb']:.2f} "
                    f"| {m['peak_mb'] / FUNCTION_MB:.2f} "
                    f"| {m['seconds']:.1f} | {m['seconds'] / (rows / 1e6):.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
