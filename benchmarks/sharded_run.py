"""A run past one function, offline: 20M rows in 40 objects through the synthesized state machine in the emulator.

The table of :mod:`benchmarks.bounded_memory` (20 skewed numeric columns with 2-15 % missing, 5 Zipf-skewed
categorical ones of 4 to 50,000 values, a binary label), written as ``OBJECTS`` Parquet objects of equal size (each
its own seed) into a source bucket of the emulator's S3 (``data.bucket``: the landing bucket's upload trigger would
start a run per object), then one run over the prefix, requested as ``mlops run`` requests it. Every step runs in an
execution environment of its own with the function's MemorySize watched (killed past it, as Lambda kills) and its
timeout enforced. The data steps go through: extract (the snapshot, cut into shards by ``data.shard_rows``), the
Distributed Map of partial statistics and their merge, validate_data, prepare; plan_trials then refuses the
training split for one Lambda trial (``mlops.steps.plan``), naming the limit — training past one Lambda is the next
issue.

Printed (and to paste into docs/benchmarks.md): per step, wall seconds, peak resident memory ÷ MemorySize, and the
merged statistics against a single pass over the same snapshot (computed here, outside the run: counts and moments
exactly, quantiles within the sketch's rank error).

Run: ``python -m benchmarks.sharded_run [rows] [--objects N]`` (default 20,000,000 rows, 40 objects; ~25 min on 2
cores; needs ~6 GB free under /tmp).
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmarks.bounded_memory import table

SOURCE_BUCKET = "wide-source"


def model_config(directory: Path) -> Path:
    raw = {
        "name": "wide",
        "data": {
            "prefix": "wide/",
            "bucket": SOURCE_BUCKET,
            "scope": "prefix",
            "max_bytes": 16 * 1024**3,
        },
        "target": "label",
        "training": {"candidates": [{"family": "logistic_regression", "params": {"C": [1.0]}}]},
    }
    path = directory / "wide.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def parquet(rows: int, seed: int, shape: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> bytes:
    """``rows`` of the table (its seed ``seed``), reshaped by ``shape`` first if given, as one Parquet object."""
    import fastparquet

    buffer = io.BytesIO()
    df = table(rows, seed=seed)
    df = shape(df) if shape else df
    with tempfile.NamedTemporaryFile(suffix=".parquet") as fh:
        fastparquet.write(fh.name, df, write_index=False, compression="SNAPPY", row_group_offsets=250_000)
        buffer.write(Path(fh.name).read_bytes())
    return buffer.getvalue()


def upload_objects(
    platform: Any, rows: int, objects: int, shape: Callable[[pd.DataFrame], pd.DataFrame] | None = None
) -> None:
    """``rows`` of the table as ``objects`` Parquet objects of equal size (a seed each) under ``wide/`` in the
    emulator's source bucket (created here), the time and size printed."""
    s3 = platform.client("s3")
    s3.create_bucket(Bucket=SOURCE_BUCKET)
    per_object = rows // objects
    t0 = time.monotonic()
    total_bytes = 0
    for i in range(objects):
        body = parquet(per_object, i, shape)
        total_bytes += len(body)
        s3.put_object(Bucket=SOURCE_BUCKET, Key=f"wide/part-{i:03d}.parquet", Body=body)
    print(
        f"uploaded {objects} objects, {per_object * objects:,} rows, {total_bytes / 1e6:,.0f} MB "
        f"in {time.monotonic() - t0:.0f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=20_000_000)
    parser.add_argument("--objects", type=int, default=40)
    args = parser.parse_args()

    from mlops.core.artifact_io import get_json
    from mlops.local import seams
    from mlops.local.emulator import LocalCloud
    from mlops.tools.platform import Platform

    with tempfile.TemporaryDirectory() as tmp, LocalCloud([model_config(Path(tmp))], port=0) as cloud:
        platform = Platform.connect("dev", cloud.endpoint).for_model("wide")
        upload_objects(platform, args.rows, args.objects)

        seams.invocations.clear()
        started = time.monotonic()
        run_id = platform.request_run(reason="benchmarks.sharded_run")["run_id"]
        run = platform.wait(
            run_id,
            timeout=3 * 3600,
            on_step=lambda name, step: print(
                f"  {name}: {step.get('status')} {step.get('duration_s', 0):.0f} s", flush=True
            ),
        )
        wall = time.monotonic() - started
        print(f"run {run_id}: {run['status']} in {wall:.0f} s; error: {(run.get('error') or {}).get('message')}")

        peaks: dict[str, dict[str, Any]] = defaultdict(lambda: {"n": 0, "peak": 0.0, "memory": 0, "errors": 0})
        for inv in seams.invocations:
            if inv.warm_up:
                continue
            p = peaks[inv.handler]
            p["n"] += 1
            p["peak"] = max(p["peak"], inv.max_rss_mb)
            p["memory"] = inv.memory_mb
            p["errors"] += int(inv.error)
        print("| function | invocations | peak RSS MB | MemorySize MB | peak ÷ MemorySize |")
        print("|---|---:|---:|---:|---:|")
        for name, p in peaks.items():
            print(f"| {name} | {p['n']} | {p['peak']:,.0f} | {p['memory']:,} | {p['peak'] / p['memory']:.2f} |")

        steps = run.get("steps") or {}
        analyzed = (steps.get("analyze") or {}).get("outputs") or {}
        if analyzed.get("statistics"):
            compare(platform, run_id, analyzed["statistics"], get_json)
        print(json.dumps({k: {"status": v.get("status"), "s": v.get("duration_s")} for k, v in steps.items()}))


def compare(platform: Any, run_id: str, statistics_uri: str, get_json: Any) -> None:
    """The merged statistics against one pass of :func:`compute_statistics` over the run's snapshot."""
    from mlops.data.engine import EngineLimits
    from mlops.data.stats import compute_statistics

    store = platform.stores.artifacts
    merged = get_json(store, statistics_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "snapshot.parquet"
        store.download(store.uri(f"runs/{run_id}/extract/snapshot.parquet"), str(path))
        t0 = time.monotonic()
        single = compute_statistics([path], platform.config(), EngineLimits.for_function(2048))
        seconds = time.monotonic() - t0
    exact = moments = 0
    worst_quantile = 0.0
    for name, one in single["features"].items():
        got = merged["features"][name]
        exact += int(got["count"] == one["count"] and got["missing"] == one["missing"])
        if one["type"] == "numeric" and one.get("mean") is not None:
            moments += int(abs(got["mean"] - one["mean"]) <= 1e-9 * max(1.0, abs(one["mean"])))
            spread = (one["max"] - one["min"]) or 1.0
            for level, value in one["quantiles"].items():
                worst_quantile = max(worst_quantile, abs(got["quantiles"][level] - value) / spread)
    print(
        f"merged vs one pass ({seconds:.0f} s over {single['num_rows']:,} rows): rows {merged['num_rows']:,} = "
        f"{single['num_rows']:,}; count and missing equal in {exact}/{len(single['features'])} columns; means "
        f"within 1e-9 in {moments} numeric columns; the worst quantile off by {worst_quantile:.4f} of the column's "
        "range"
    )


if __name__ == "__main__":
    main()
