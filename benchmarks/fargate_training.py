"""Training past one Lambda, offline: a run whose training split outgrows run_trial's memory, end to end through the
synthesized state machine in the emulator — the data steps, the trials on prepare's sample in Lambda environments,
the refit of the chosen candidate as the ECS Fargate task (the emulator runs the task's command as a process with
the task's memory enforced), then export, evaluate, validate_model and register.

The table is :mod:`benchmarks.bounded_memory`'s: 20 skewed numeric columns with missing values, its two small
categorical columns (4 and 12 values), and a binary label made to depend on three columns. Its three wide
categorical columns (300, 5,000 and 50,000 values, each 100 one-hot columns) are left out: they would make the
refit's matrix 337 columns wide, and 8.5M rows of it are 23 GB, past this machine.

**The denominator** is the same work in one plain process: the same estimator with the same parameters and seed,
fit on the same train + validation Parquet files (downloaded from the run's artifacts first), read with the same
reader, then pickled — a fresh interpreter, timed from its start to its exit, as the task is. The ratio is the
platform's overhead on the refit: the task's reads from and writes to S3, its run record, its start.

The projected AWS cost of the refit is the task's measured seconds at the run's Fargate size and the list prices
in ``mlops/tools/prices.json`` (Fargate bills per second, one minute at least).

Run: ``python -m benchmarks.fargate_training [rows] [--objects N]`` (default 10,000,000 rows in 20 objects; ~25 min
on 2 cores, ~8 GB of memory at the refit and ~4 GB under /tmp).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmarks.sharded_run import SOURCE_BUCKET, upload_objects

WIDE = ["c2", "c3", "c4"]  # the categorical columns of 300, 5,000 and 50,000 values
FARGATE = {"cpu": 2048, "memory_mb": 16384}  # 2 vCPU, 16 GB: the refit's matrix with room
TUNE_ROWS = 200_000


def learnable(df: pd.DataFrame) -> pd.DataFrame:
    """The table without its wide categorical columns, its label made to depend on three columns (the table's own
    is random: a champion could not beat the baseline, and the run would stop at validate_model)."""
    out = df.drop(columns=WIDE)
    score = (out["n03"].fillna(50) - 50) / 10 + (out["c0"] == "v4-0").astype(float) - out["n04"].fillna(2) / 2
    noise = np.random.default_rng(len(out)).normal(0, 1, len(out))
    out["label"] = (score + noise > 0.5).astype(np.int64)
    return out


def model_config(directory: Path) -> Path:
    raw = {
        "name": "wide",
        "data": {"prefix": "wide/", "bucket": SOURCE_BUCKET, "scope": "prefix", "max_bytes": 16 * 1024**3},
        "target": "label",
        "training": {
            "candidates": [{"family": "logistic_regression", "params": {"C": [0.1, 1.0]}}],
            "compute": "auto",
            "tune_rows": TUNE_ROWS,
            "fargate": FARGATE,
        },
    }
    path = directory / "wide.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def plain_fit(train: str, validation: str, dataset: str, family: str, params: str, seed: str, out: str) -> None:
    """The denominator, in its own process: what :func:`mlops.steps.train.select_and_refit` fits, without the
    platform around it."""
    import io

    import joblib
    import numpy as np
    import pandas as pd

    from mlops.core.config import Family, FeatureType, Task
    from mlops.data.frames import from_parquet_bytes
    from mlops.ml.models import build_pipeline, model_frame

    t0 = time.perf_counter()
    spec = json.loads(Path(dataset).read_text())
    kinds = {c: FeatureType(k) for c, k in spec["features"].items()}
    frames = [from_parquet_bytes(Path(p).read_bytes()) for p in (train, validation)]
    X = pd.concat([model_frame(f, kinds) for f in frames])
    y = np.concatenate([f[spec["target"]].to_numpy() for f in frames])
    t1 = time.perf_counter()
    pipe = build_pipeline(Family(family), json.loads(params), Task(spec["task"]), kinds, int(seed))
    pipe.fit(X, y)
    t2 = time.perf_counter()
    buffer = io.BytesIO()
    joblib.dump(pipe, buffer)
    Path(out).write_bytes(buffer.getvalue())
    print(json.dumps({"read_s": round(t1 - t0, 1), "fit_s": round(t2 - t1, 1)}))


def run_plain(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of :func:`plain_fit` in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fargate_training", "--plain", *args], check=True, capture_output=True
    )
    wall = time.monotonic() - t0
    print(f"plain process's phases: {done.stdout.decode().strip()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def fargate_cost(seconds: float, cpu: int, memory_mb: int, ephemeral_gb: int, region: str = "us-east-1") -> float:
    """List price of one task of this size for ``seconds`` (billed per second, one minute at least; ephemeral
    storage past the 20 GB included)."""
    prices = json.loads((Path(__file__).parents[1] / "src/mlops/tools/prices.json").read_text())["items"]
    hours = max(seconds, 60) / 3600

    def price(item: str) -> float:
        return float(prices[item]["prices"][region]) / float(prices[item].get("per", 1))

    return hours * (
        cpu / 1024 * price("fargate_vcpu_hour")
        + memory_mb / 1024 * price("fargate_gb_hour")
        + max(0, ephemeral_gb - 20) * price("fargate_ephemeral_gb_hour")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=10_000_000)
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--plain", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_fit(*args.plain)
        return

    from mlops.local import seams
    from mlops.local.emulator import LocalCloud
    from mlops.tools.platform import Platform

    with tempfile.TemporaryDirectory() as tmp, LocalCloud([model_config(Path(tmp))], port=0) as cloud:
        platform = Platform.connect("dev", cloud.endpoint).for_model("wide")
        upload_objects(platform, args.rows, args.objects, learnable)

        started = time.monotonic()
        run_id = platform.request_run(reason="benchmarks.fargate_training")["run_id"]
        run = platform.wait(
            run_id,
            timeout=4 * 3600,
            on_step=lambda name, step: print(f"  {name}: {step.get('status')} {step.get('duration_s', 0):.0f} s"),
        )
        wall = time.monotonic() - started
        print(f"run {run_id}: {run['status']} in {wall:.0f} s; error: {(run.get('error') or {}).get('message')}")
        steps = run.get("steps") or {}
        print(json.dumps({k: {"status": v.get("status"), "s": v.get("duration_s")} for k, v in steps.items()}))
        planned = (steps.get("plan_trials") or {}).get("outputs") or {}
        tasks = [t for t in seams.tasks_run if run_id in json.dumps(t.get("Overrides"))]
        if not tasks:
            print(f"no Fargate task ran (plan: compute {planned.get('compute')})")
            return
        task = tasks[-1]
        trained = (steps.get("train") or {}).get("outputs") or {}
        print(
            f"refit on Fargate: exit {task['Containers'][0]['ExitCode']}, {task['DurationS']:.1f} s, peak "
            f"{task['PeakRssMb']:,.0f} MB of {task['Memory']} MB ({task['PeakRssMb'] / int(task['Memory']):.2f}); "
            f"prepared rows {json.dumps(((steps.get('prepare') or {}).get('outputs') or {}).get('rows'))}; the fit "
            f"inside it {trained.get('refit_s')} s"
        )

        store = platform.stores.artifacts
        prepared = store.uri(f"runs/{run_id}/prepare/")
        with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as work:
            files = {}
            for name in ("train", "validation", "dataset"):
                suffix = "json" if name == "dataset" else "parquet"
                files[name] = str(Path(work) / f"{name}.{suffix}")
                store.download(f"{prepared}{name}.{suffix}", files[name])
            plain_s, plain_mb = run_plain(
                [
                    files["train"],
                    files["validation"],
                    files["dataset"],
                    str(trained.get("family")),
                    json.dumps(trained.get("params") or {}),
                    str(platform.config().split.seed),
                    str(Path(work) / "model.joblib"),
                ]
            )
        cost = fargate_cost(task["DurationS"], FARGATE["cpu"], FARGATE["memory_mb"], 20)
        print(
            f"plain process: {plain_s:.1f} s, peak {plain_mb:,.0f} MB; the task ÷ the plain process: "
            f"{task['DurationS'] / plain_s:.2f}x time, {task['PeakRssMb'] / plain_mb:.2f}x memory"
        )
        print(
            f"projected AWS cost of the refit (us-east-1, on demand, {FARGATE['cpu'] // 1024} vCPU / "
            f"{FARGATE['memory_mb'] // 1024} GB, {task['DurationS']:.0f} s): ${cost:.4f}"
        )


if __name__ == "__main__":
    main()
