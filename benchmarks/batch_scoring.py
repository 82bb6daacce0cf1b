"""Batch scoring benchmarks: rows per second of a shard, and of a 1M-row job over 10 objects, against the floor.

The floor: the same ONNX session scoring the same Parquet file in one process — DuckDB reads the file into numpy
arrays, one ``session.run`` per 10,000 rows (the shard's chunk), nothing else (no checks, no output). A shard does
what a job's shard does (:func:`mlops.serving.batch.score_table`): read the file, hand its rows to ``/predict``'s
checks as records, score them, write the Parquet part with the input's columns and the answers.

The job, offline: ``--emulator`` uploads the 10 objects and their ``_SUCCESS`` to the emulator and times the job
end to end (trigger → plan → Distributed Map → finish), on this machine's cores, with every shard's execution
environment a process of its own. Without it, the 10 shards run one after another in this process (what the job
costs in Lambda compute, without the orchestration).

Run: ``python -m benchmarks.batch_scoring [--emulator]`` (prints Markdown; figures go to docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROWS, OBJECTS = 1_000_000, 10


def model(family: str) -> tuple[bytes, list[str]]:
    from benchmarks.serving import train

    _, _, X, onnx_bytes = train(family)
    return onnx_bytes, list(X.columns)


def tables(folder: Path, columns: list[str], rows: int, objects: int) -> list[Path]:
    """``objects`` Parquet files of ``rows // objects`` rows: the bundled rows resampled with 1 % noise."""
    import duckdb

    from mlops.tools.samples import bundled

    base = bundled("breast-cancer")[columns].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(objects):
        n = rows // objects
        picked = base[rng.integers(0, len(base), n)] * rng.normal(1.0, 0.01, (n, len(columns)))
        data = {c: picked[:, j] for j, c in enumerate(columns)}  # noqa: F841 — DuckDB scans it by name
        path = folder / f"part-{i:02d}.parquet"
        duckdb.connect().execute(f"COPY (SELECT * FROM data) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
        paths.append(path)
    return paths


def floor(onnx_bytes: bytes, path: Path, columns: list[str]) -> tuple[float, int]:
    """Seconds and rows: DuckDB → numpy → one session run per 10,000 rows."""
    import duckdb

    from mlops.serving.batch import CHUNK_ROWS
    from mlops.serving.onnx_model import OnnxModel

    session = OnnxModel(onnx_bytes).session
    t0 = time.perf_counter()
    arrays = duckdb.connect().execute("SELECT * FROM read_parquet(?)", [str(path)]).fetchnumpy()
    matrix = np.column_stack([np.asarray(arrays[c], dtype=np.float32) for c in columns])
    outputs = [o.name for o in session.get_outputs()]
    for start in range(0, len(matrix), CHUNK_ROWS):
        chunk = matrix[start : start + CHUNK_ROWS]
        session.run(outputs, {c: chunk[:, j : j + 1] for j, c in enumerate(columns)})
    return time.perf_counter() - t0, len(matrix)


def shard(onnx_bytes: bytes, path: Path, out: Path) -> tuple[float, int]:
    from mlops.serving.batch import score_table
    from mlops.serving.onnx_model import OnnxModel

    loaded = OnnxModel(onnx_bytes)
    t0 = time.perf_counter()
    scored = score_table(loaded, 1, path, "parquet", out, capture_sample=0.0)
    assert scored.rows_out == scored.rows_in and scored.errors == 0
    return time.perf_counter() - t0, scored.rows_out


def emulator_job(paths: list[Path]) -> tuple[float, dict[str, Any]]:
    """The job end to end in the emulator: upload → trigger → plan → Map → finish (a quick champion first)."""
    from tests.chain import run_chain
    from tests.conftest import quick_config_file

    from mlops.core.clock import new_run_id
    from mlops.core.config import load_config
    from mlops.core.context import StepContext
    from mlops.core.runs import start_run
    from mlops.local.emulator import LocalCloud
    from mlops.tools.platform import Platform
    from mlops.tools.samples import bundled

    with tempfile.TemporaryDirectory() as tmp:
        config_file = quick_config_file(Path(tmp), scoring={"capture_sample": 0.0})
        with LocalCloud(config_file, port=0) as cloud:
            p = Platform.connect("dev", cloud.endpoint)
            config = load_config(config_file)
            up = p.upload(bundled("breast-cancer").to_csv(index=False).encode(), "elsewhere/train.csv")
            ctx = StepContext(run_id=new_run_id(), config=config, stores=p.stores)
            start_run(p.stores, config, ctx.run_id, {"reason": "benchmark"})
            assert run_chain(ctx, {"bucket": up["bucket"], "keys": [up["key"]]})["status"] == "SUCCEEDED"
            for path in paths:
                p.upload(path.read_bytes(), f"score/breast-cancer/million/{path.name}")
            marker = p.upload(b"", "score/breast-cancer/million/_SUCCESS")
            t0 = time.perf_counter()
            job = p.wait_job(p.job_for_upload(marker["key"], marker["etag"], timeout=600), timeout=3600)
            return time.perf_counter() - t0, job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emulator", action="store_true", help="Also time the 1M-row job in the emulator.")
    parser.add_argument("--family", default="logistic_regression")
    args = parser.parse_args()
    onnx_bytes, columns = model(args.family)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = tables(folder, columns, ROWS, OBJECTS)
        f_s, f_rows = floor(onnx_bytes, paths[0], columns)
        s_s, s_rows = shard(onnx_bytes, paths[0], folder / "out-0.parquet")
        job_s = sum(shard(onnx_bytes, p, folder / f"out-{i}.parquet")[0] for i, p in enumerate(paths))
        floor_job = sum(floor(onnx_bytes, p, columns)[0] for p in paths)
        print(f"| {args.family}, {len(columns)} numeric inputs | rows/s | time vs floor |")
        print("|---|---:|---:|")
        print(f"| floor: one session, one Parquet file of {f_rows:,} rows | {f_rows / f_s:,.0f} | 1 |")
        print(
            f"| one shard ({s_rows:,} rows): /predict's checks, scores, Parquet out | {s_rows / s_s:,.0f} | "
            f"{s_s / f_s:.1f} |"
        )
        print(
            f"| 1M rows over {OBJECTS} objects, shards one after another (in process) | {ROWS / job_s:,.0f} | "
            f"{job_s / floor_job:.1f} |"
        )
        if args.emulator:
            wall, job = emulator_job(paths)
            assert job["status"] == "SUCCEEDED" and job["rows_out"] == ROWS, job
            print(
                f"| 1M rows over {OBJECTS} objects, the job in the emulator (wall, this machine) | "
                f"{ROWS / wall:,.0f} | {wall / floor_job:.1f} |"
            )


if __name__ == "__main__":
    main()
