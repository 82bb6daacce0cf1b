"""Every Lambda of the pipeline, defined once: its folder under functions/, bundle, memory and timeout.

Memory also buys CPU (one vCPU at 1,769 MB, a share below): no function gets less than 512 MB, where the base
bundle's cold import (Powertools, pydantic, boto3: ~0.4 s on a full core) projects to ~1.3 s of init, well inside
Lambda's 10 s (at 256 MB it projected to 5-7 s). The base-bundle steps a run passes through get one full vCPU
(``ONE_VCPU_MB``): their init is then done while extract's is (they are warmed beside it), and since Lambda bills
an init by its duration times the memory, a CPU-bound init costs the same at either size. ``python -m
benchmarks.cold_start`` measures each one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # folder under functions/ and the construct id
    bundle: str  # dependency layer: base | data | train | export | serving | scoring
    memory_mb: int
    timeout_s: int
    description: str
    ephemeral_mb: int = 512  # /tmp: Lambda's default; the data steps spill DuckDB and stage their tables there


# The data steps stage their tables on /tmp (the landed objects, the snapshot, its shards, the splits) and DuckDB
# spills past its memory limit there: Lambda's largest ephemeral storage, billed only beyond 512 MB and per second
# the function runs ($0.0000000309 per GB-second: 10 GB for a minute is $0.00002).
DATA_EPHEMERAL_MB = 10240


ONE_VCPU_MB = 1769

PIPELINE_FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("extract", "data", 3008, 900, "A1: landing data into a snapshot with a manifest", DATA_EPHEMERAL_MB),
    FunctionSpec("analyze", "data", 2048, 300, "A2: per-column statistics", DATA_EPHEMERAL_MB),
    FunctionSpec("validate_data", "data", 2048, 900, "A3/A4: schema, anomalies, drift", DATA_EPHEMERAL_MB),
    FunctionSpec("prepare", "data", 2048, 900, "A5: deterministic splits (numpy: no scikit-learn)", DATA_EPHEMERAL_MB),
    FunctionSpec("plan_trials", "base", ONE_VCPU_MB, 60, "B2: the tuning Map's configurations (no scikit-learn)"),
    FunctionSpec("run_trial", "train", 3008, 900, "B1/B2: one hyperparameter trial"),
    FunctionSpec("train", "train", 3008, 900, "B1/B3: select the best trial and refit"),
    FunctionSpec("export", "export", 2048, 300, "scikit-learn pipeline to ONNX"),
    FunctionSpec("evaluate", "train", 2048, 300, "B4: held-out metrics, slices, plots"),
    FunctionSpec("validate_model", "serving", 1024, 300, "B5: gates, champion, parity and infra check"),
    FunctionSpec("register", "base", ONE_VCPU_MB, 60, "B6: model version with lineage"),
    FunctionSpec("await_approval", "base", 512, 30, "B6: park a run for manual approval"),
    FunctionSpec("promote", "base", 512, 30, "B6: promote an approved version"),
    FunctionSpec("finalize", "base", ONE_VCPU_MB, 120, "close the run record, release the run lock, publish the site"),
)
TRIGGER_FUNCTION = FunctionSpec("trigger", "base", 512, 30, "D5: start runs idempotently, one at a time")
SERVE_FUNCTION = FunctionSpec("serve", "serving", 1024, 29, "C1-C3: the prediction API (ONNX)")
CAPTURE_FUNCTION = FunctionSpec("capture", "base", 512, 60, "D1/D2: ship captured predictions and labels to S3")
# The feature store's ingestion: the data bundle (DuckDB), as extract reads its uploads.
INGEST_FEATURES_FUNCTION = FunctionSpec(
    "ingest_features",
    "data",
    2048,
    900,
    "feature store: an upload into the offline and online stores",
    DATA_EPHEMERAL_MB,
)
MONITOR_FUNCTION = FunctionSpec("monitor", "train", 2048, 300, "D3: drift, data and live quality of served traffic")
# Batch scoring (S3 to S3): its own small state machine. The shards score in the scoring bundle (serving's, and
# DuckDB to read and write the tables), with memory for a shard's table and its scores; planning and finishing read
# listings and JSON only.
SCORING_FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("score_plan", "base", 1024, 120, "batch scoring: the job's shards"),
    FunctionSpec("score_shard", "scoring", 3008, 900, "batch scoring: one shard through /predict's checks (ONNX)"),
    FunctionSpec("score_finish", "base", 1024, 300, "batch scoring: rows in = rows out, manifest, _SUCCESS"),
)
ALL_FUNCTIONS = (
    *PIPELINE_FUNCTIONS,
    *SCORING_FUNCTIONS,
    TRIGGER_FUNCTION,
    SERVE_FUNCTION,
    CAPTURE_FUNCTION,
    MONITOR_FUNCTION,
    INGEST_FEATURES_FUNCTION,
)

# The steps the state machine warms before the run reaches them (see TrainingPipeline._warmed), each with a
# synchronous warm-up event beside the steps before it, and joined before it is needed — so a step never finds its
# environment still initializing (which in Lambda means a second, full cold start), and the run waits at most for
# what is left of the slowest init, not for one init after another. Beside extract (joined before analyze): the rest
# of the data bundle and plan_trials — extract's own cold start is as long, so they cost the run nothing. Beside
# extract → analyze → validate_data (joined before prepare): the training steps. The manual approval's two steps
# are off the usual path.
WARMED_WITH_EXTRACT = ("analyze", "validate_data", "prepare", "plan_trials")
WARMED_WITH_INGEST = (
    "run_trial",
    "train",
    "export",
    "evaluate",
    "validate_model",
    "register",
    "finalize",
)
WARMED = WARMED_WITH_EXTRACT + WARMED_WITH_INGEST
