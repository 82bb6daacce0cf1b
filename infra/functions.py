"""Every Lambda of the pipeline, defined once: its folder under functions/, bundle, memory and timeout.

Memory also buys CPU (one vCPU at 1,769 MB, a share below): no function gets less than 512 MB, where the base
bundle's cold import (Powertools, pydantic, boto3: ~0.9 s on a full core) projects to ~3 s of init, well inside
Lambda's 10 s (at 256 MB it projected to 5-7 s). ``python -m benchmarks.cold_start`` measures each one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # folder under functions/ and the construct id
    bundle: str  # dependency layer: base | data | train | export | serving
    memory_mb: int
    timeout_s: int
    description: str


PIPELINE_FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("extract", "data", 3008, 600, "A1: landing data into a snapshot with a manifest"),
    FunctionSpec("analyze", "data", 2048, 300, "A2: per-column statistics"),
    FunctionSpec("validate_data", "data", 2048, 300, "A3/A4: schema, anomalies, drift"),
    FunctionSpec("prepare", "data", 2048, 300, "A5: deterministic splits (numpy: no scikit-learn)"),
    FunctionSpec("plan_trials", "base", 512, 60, "B2: candidate configurations for the tuning Map (no scikit-learn)"),
    FunctionSpec("run_trial", "train", 3008, 900, "B1/B2: one hyperparameter trial"),
    FunctionSpec("train", "train", 3008, 900, "B1/B3: select the best trial and refit"),
    FunctionSpec("export", "export", 2048, 300, "scikit-learn pipeline to ONNX"),
    FunctionSpec("evaluate", "train", 2048, 300, "B4: held-out metrics, slices, plots"),
    FunctionSpec("validate_model", "serving", 1024, 300, "B5: gates, champion, parity and infra check"),
    FunctionSpec("register", "base", 512, 60, "B6: model version with lineage"),
    FunctionSpec("await_approval", "base", 512, 30, "B6: park a run for manual approval"),
    FunctionSpec("promote", "base", 512, 30, "B6: promote an approved version"),
    FunctionSpec("finalize", "base", 512, 120, "close the run record, release the run lock, publish the site"),
)
TRIGGER_FUNCTION = FunctionSpec("trigger", "base", 512, 30, "D5: start runs idempotently, one at a time")
SERVE_FUNCTION = FunctionSpec("serve", "serving", 1024, 29, "C1-C3: the prediction API (ONNX)")
CAPTURE_FUNCTION = FunctionSpec("capture", "base", 512, 60, "D1/D2: ship captured predictions and labels to S3")
MONITOR_FUNCTION = FunctionSpec("monitor", "train", 2048, 300, "D3: drift, data and live quality of served traffic")
ALL_FUNCTIONS = (*PIPELINE_FUNCTIONS, TRIGGER_FUNCTION, SERVE_FUNCTION, CAPTURE_FUNCTION, MONITOR_FUNCTION)

# The steps the state machine warms before the run reaches them (see TrainingPipeline._warm_up), in the order the
# run reaches them: as the run starts, the data steps after extract (invoked at once) and plan_trials (the base
# bundle: cheap, and reached too soon after the batch is judged for a later warm-up to be ready); once the batch
# is valid, the training steps. The manual approval's two steps are off the usual path.
WARMED_AT_START = ("analyze", "validate_data", "prepare", "plan_trials")
WARMED_ONCE_VALID = (
    "run_trial",
    "train",
    "export",
    "evaluate",
    "validate_model",
    "register",
    "finalize",
)
WARMED = WARMED_AT_START + WARMED_ONCE_VALID
