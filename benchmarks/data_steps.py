"""Peak memory of the data steps against the size of the frame they hold, and a run against plain scikit-learn.

**Memory.** The real steps (extract, analyze, validate_data, prepare, one trial) run in one process against an
in-memory account (moto) on a churn-like table with numeric and text columns; their artifacts go to the
ArtifactStore port held in a dict (moto's S3 keeps further copies of every body it serves, which S3 never puts in
a function's memory; the bytes a step stores still count against it, conservatively). Before each step the heap's
free memory is handed back to the OS (``malloc_trim``: in Lambda a step starts in a process of its own, with no
reserve left by earlier steps to reuse unseen) and the peak resident set is reset (Linux: ``/proc/self/clear_refs``
← 5); after it, the step's own peak is ``VmHWM - VmRSS before``. The ratio divides it by the size of the DataFrame
the step reads (``memory_usage(deep=True)``): 1.0x would be one copy of the frame and nothing else.

**Time.** The same steps as a run (every step of the pipeline in-process, the tuning grid included), against a
plain scikit-learn script fitting and scoring the same grid on the same splits: the pipeline's overhead over the
work itself. A deployed run adds one cold start per step on its path (the trials run side by side: one counts);
those are measured in the same run as ``benchmarks.cold_start`` does (``import handler`` under python3.12 with
the shipped layers, projected to each function's memory) and added.

**With the run's warm-up** (the state machine sends every coming step a warm-up event as the run starts and waits
for the answers beside the steps before it: the data steps' and plan_trials' beside extract, joined before analyze;
the training steps' beside extract → analyze → validate_data, joined before prepare): what a run waits for is
extract's init, then whatever is left of the slowest init at each join. The timeline is computed from the same
measurements (each init projected to its function's memory, each step its own in-process seconds; the trials one
after another, as in-process: conservative, the Map runs them side by side).

Run: ``python -m benchmarks.data_steps [--memory | --time] [rows ...]`` (default: both, at 10,000, 100,000 and
1,000,000 rows; Linux only).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pandas as pd
from moto import mock_aws

from benchmarks import offline_aws
from mlops.core.clock import new_run_id
from mlops.core.config import ProjectConfig, parse_config
from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRef
from mlops.core.runs import start_run
from mlops.infra.functions import WARMED, WARMED_WITH_EXTRACT, WARMED_WITH_INGEST
from mlops.local.provision import create_resources
from mlops.tools.samples import customers, example_config_path
from mlops.wiring.runtime import make_stores

T = TypeVar("T")

GRID: list[dict[str, Any]] = [
    {"family": "logistic_regression", "params": {"C": [0.1, 1.0]}},
    {"family": "gradient_boosting", "params": {"learning_rate": [0.1], "max_iter": [100]}},
]


def config() -> ProjectConfig:
    import yaml

    raw = yaml.safe_load(example_config_path("breast-cancer").read_text())
    raw.update(
        name="customers",
        target="churn",
        id_column="customer_id",
        data={**raw["data"], "prefix": "customers/"},
        training={"candidates": GRID, "search": {"strategy": "grid", "max_trials": 12}, "max_concurrency": 4},
    )
    raw["evaluation"]["gates"] = {"min": {}, "max_regression": 1.0}
    return parse_config(raw)


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _release_free_heap() -> None:
    """Hand the heap's free memory back to the OS (glibc ``malloc_trim``): what earlier steps freed but the allocator
    kept would otherwise be reused by the next step without raising the resident set, hiding part of its peak (in
    Lambda each step starts in its own process, with no such reserve)."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def peak_of(fn: Callable[[], T]) -> tuple[T, int]:
    """(result, bytes above the resident set before the call at the call's peak)."""
    gc.collect()
    _release_free_heap()
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    out = fn()
    return out, _status("VmHWM") - before


class MemoryArtifacts:
    """The ArtifactStore port over a dict: what a step keeps in memory is its own, not the S3 emulation's."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def uri(self, key: str) -> str:
        return f"s3://bench/{key}"

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ArtifactRef:
        self.blobs[self.uri(key)] = data
        return ArtifactRef(self.uri(key), hashlib.sha256(data).hexdigest(), len(data))

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> ArtifactRef:
        return self.put_bytes(key, Path(path).read_bytes(), content_type)

    def get_bytes(self, uri: str) -> bytes:
        return self.blobs[uri]

    def download(self, uri: str, path: str) -> None:
        Path(path).write_bytes(self.blobs[uri])

    def copy(self, ref: dict[str, Any], key: str) -> ArtifactRef:
        self.blobs[self.uri(key)] = self.blobs[ref["uri"]]
        return ArtifactRef(self.uri(key), str(ref["sha256"]), int(ref["size"]))

    def exists(self, key: str) -> bool:
        return self.uri(key) in self.blobs

    def keys(self, prefix: str) -> list[str]:
        start = self.uri(prefix)
        return sorted(uri.removeprefix(self.uri("")) for uri in self.blobs if uri.startswith(start))


def frame_bytes(df: pd.DataFrame) -> int:
    return int(df.memory_usage(deep=True).sum())


def memory_rows(rows: int) -> list[str]:
    from mlops.data.frames import from_parquet_bytes, read_table
    from mlops.steps.analyze import analyze
    from mlops.steps.extract import extract
    from mlops.steps.plan import plan_trials
    from mlops.steps.prepare import prepare
    from mlops.steps.train import run_trial
    from mlops.steps.validate_data import validate_data

    cfg = config()
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        resources = create_resources(session)
        stores = dataclasses.replace(make_stores(resources, session), artifacts=MemoryArtifacts())
        csv = customers(rows, seed=1).to_csv(index=False).encode()
        raw_frame = frame_bytes(read_table(csv, "x.csv", cfg.data.format))
        gc.collect()
        session.client("s3").put_object(Bucket=resources.landing_bucket, Key="customers/a.csv", Body=csv)
        del csv
        run_id = new_run_id()
        start_run(stores, cfg, run_id, {"reason": "bench"})
        ctx = StepContext(run_id, cfg, stores)
        source = {"bucket": resources.landing_bucket, "keys": ["customers/a.csv"]}
        out = []
        ex, peak = peak_of(lambda: extract(ctx, source=source))
        out.append(("extract", peak, raw_frame))
        snapshot = from_parquet_bytes(stores.artifacts.get_bytes(ex.snapshot["uri"]))
        frame = frame_bytes(snapshot)
        del snapshot
        an, peak = peak_of(lambda: analyze(ctx, snapshot=ex.snapshot))
        out.append(("analyze", peak, frame))
        vd, peak = peak_of(lambda: validate_data(ctx, snapshot=ex.snapshot, statistics=an.statistics))
        out.append(("validate_data", peak, frame))
        pr, peak = peak_of(lambda: prepare(ctx, snapshot=ex.snapshot, schema=vd.usable_schema))
        out.append(("prepare", peak, frame))
        trial = plan_trials(ctx, dataset=pr.dataset).trials[-1]  # gradient boosting
        train_split = from_parquet_bytes(stores.artifacts.get_bytes(pr.train["uri"]))
        train_frame = frame_bytes(train_split)
        del train_split
        _, peak = peak_of(lambda: run_trial(ctx, dataset=pr.dataset, trial=trial))
        out.append(("run_trial (gradient boosting)", peak, train_frame))
    return [
        f"| {step} | {rows:,} | {size / 1e6:.1f} | {peak / 1e6:.1f} | {peak / size:.2f}x | {peak / rows:.0f} |"
        for step, peak, size in out
    ]


PATH = ("extract", *WARMED)  # the functions a run reaches, in order


def cold_on_path(cold: dict[str, float], steps: dict[str, float], warm_up: bool) -> dict[str, float]:
    """The seconds a deployed run waits for cold starts, by function (``cold``: each function's init; ``steps``:
    each step's own seconds). Without the warm-up, every step's init, one after another. With it (see
    ``TrainingPipeline._warmed``): extract's init; then, before analyze, whatever is left of the slowest init among
    the functions warmed beside extract; then, before prepare, whatever is left of the slowest among those warmed
    beside extract → analyze → validate_data. Every warm-up is sent as the run starts."""
    if not warm_up:
        return dict(cold)
    waited = {"extract": cold.get("extract", 0.0)}
    t = waited["extract"] + steps.get("extract", 0.0)
    for warmed, then in ((WARMED_WITH_EXTRACT, ("analyze", "validate_data")), (WARMED_WITH_INGEST, ())):
        slowest = max(warmed, key=lambda fn: cold.get(fn, 0.0))
        left = cold.get(slowest, 0.0) - t
        if left > 0:
            waited[slowest] = left
            t += left
        t += sum(steps.get(fn, 0.0) for fn in then)
    return waited


def run_seconds(rows: int) -> tuple[float, float, dict[str, float]]:
    """(the pipeline's steps in-process, a plain scikit-learn script on the same grid and splits, each step's
    own seconds as its run record has them, the trials' together under ``run_trial``)."""
    from tests.chain import run_chain

    from mlops.core.config import Family, Task
    from mlops.data.stats import column_kind
    from mlops.ml.models import build_pipeline, model_frame

    cfg = config()
    data = customers(rows, seed=2)
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        resources = create_resources(session)
        stores = make_stores(resources, session)
        session.client("s3").put_object(
            Bucket=resources.landing_bucket, Key="customers/b.csv", Body=data.to_csv(index=False).encode()
        )
        run_id = new_run_id()
        start_run(stores, cfg, run_id, {"reason": "bench"})
        t0 = time.perf_counter()
        result = run_chain(
            StepContext(run_id, cfg, stores), {"bucket": resources.landing_bucket, "keys": ["customers/b.csv"]}
        )
        pipeline = time.perf_counter() - t0
        assert result["status"] in ("SUCCEEDED", "WAITING", "REJECTED"), result
        record = stores.meta.get_run(cfg.name, run_id) or {}
        steps = {name: float(info.get("duration_s") or 0) for name, info in (record.get("steps") or {}).items()}
        steps["run_trial"] = sum(float(t.get("duration_s") or 0) for t in (record.get("trials") or {}).values())

    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    t0 = time.perf_counter()
    df = data.dropna(subset=["churn"])
    X, y = df.drop(columns=["churn", "customer_id"]), df["churn"].astype(str)
    kinds = {c: column_kind(X[c]) for c in X.columns}  # as the pipeline infers them (text: categorical)
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
    X_tr, X_val, y_tr, y_val = train_test_split(X_rest, y_rest, test_size=0.25, random_state=42, stratify=y_rest)
    best: tuple[float, Any] = (-1.0, None)
    for cand in GRID:
        for value_set in _grid(cand["params"]):
            pipe = build_pipeline(Family(cand["family"]), value_set, Task.BINARY, kinds, 42)
            pipe.fit(model_frame(X_tr, kinds), y_tr)
            score = roc_auc_score(y_val, pipe.predict_proba(model_frame(X_val, kinds))[:, 1])
            best = max(best, (score, (cand["family"], value_set)), key=lambda b: b[0])
    family, params = best[1]
    final = build_pipeline(Family(family), params, Task.BINARY, kinds, 42)
    final.fit(model_frame(pd.concat([X_tr, X_val]), kinds), pd.concat([y_tr, y_val]))
    roc_auc_score(y_test, final.predict_proba(model_frame(X_test, kinds))[:, 1])
    plain = time.perf_counter() - t0
    return pipeline, plain, steps


def _grid(params: dict[str, list[Any]]) -> list[dict[str, Any]]:
    import itertools

    keys = sorted(params)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(params[k] for k in keys))]


def main() -> None:
    if not Path("/proc/self/clear_refs").exists():
        raise SystemExit("Linux only: the peak resident set is read from /proc")
    offline_aws()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    only = {a for a in sys.argv[1:] if a.startswith("--")}
    sizes = [int(a.replace(",", "").replace("_", "")) for a in args] or [10_000, 100_000, 1_000_000]
    if only - {"--memory", "--time"}:
        raise SystemExit(f"unknown option(s): {sorted(only)}")
    if "--time" not in only or "--memory" in only:
        memory_table(sizes)
    if "--memory" not in only or "--time" in only:
        time_table(sizes)


def memory_table(sizes: list[int]) -> None:
    print("## Peak memory of each data step ÷ the frame it reads\n")
    print("| step | rows | frame MB | step peak MB | peak ÷ frame | bytes / row |")
    print("|---|---:|---:|---:|---:|---:|")
    for rows in sizes:
        for line in memory_rows(rows):
            print(line, flush=True)


def cold_starts() -> dict[str, float]:
    """Each pipeline function's cold import, as shipped, projected to its memory (see benchmarks.cold_start)."""
    from benchmarks.cold_start import FULL_CPU_MB, init_seconds
    from mlops.infra.functions import PIPELINE_FUNCTIONS
    from mlops.layers.build import RUNTIME_STANDIN, build_code, build_dependencies, find_python

    python = find_python("3.12")
    if python is None:
        return {}
    code, runtime = build_code("3.12"), build_dependencies(RUNTIME_STANDIN, "x86_64", "3.12")
    out = {}
    for spec in PIPELINE_FUNCTIONS:
        if spec.name in ("await_approval", "promote"):  # only on a manual approval's path
            continue
        layer = build_dependencies(spec.bundle, "x86_64", "3.12")
        seconds = sum(init_seconds(python, spec, layer.path / "python", code, runtime))
        out[spec.name] = seconds * max(1.0, FULL_CPU_MB / spec.memory_mb)
    return out


def time_table(sizes: list[int]) -> None:
    cold = cold_starts()
    print("\n## A run ÷ a plain scikit-learn script on the same grid and splits (s)\n")
    print(f"Cold starts on a run's path, projected to each function's memory: {sum(cold.values()):.1f} s")
    print("(" + ", ".join(f"{k} {v:.1f}" for k, v in cold.items()) + ")\n")
    print(
        "| rows | steps in-process | + cold starts | + cold starts with the warm-up | plain script "
        "| in-process ÷ plain | with cold starts ÷ plain | with the warm-up ÷ plain | cold starts left on the path "
        "| slowest steps |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for rows in sizes:
        pipeline, plain, steps = run_seconds(rows)
        deployed = pipeline + sum(cold_on_path(cold, steps, warm_up=False).values())
        left = cold_on_path(cold, steps, warm_up=True)
        warmed = pipeline + sum(left.values())
        slowest = ", ".join(f"{k} {v:.1f}" for k, v in sorted(steps.items(), key=lambda kv: -kv[1])[:4])
        print(
            f"| {rows:,} | {pipeline:.1f} | {deployed:.1f} | {warmed:.1f} | {plain:.1f} | {pipeline / plain:.2f}x | "
            f"{deployed / plain:.2f}x | {warmed / plain:.2f}x | "
            f"{', '.join(f'{k} {v:.1f}' for k, v in left.items())} | {slowest} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
