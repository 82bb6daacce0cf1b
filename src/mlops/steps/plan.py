"""B2: plan the trials — the candidate configurations the tuning Map fans out over (no scikit-learn here) — once
the training split is known to fit the trials' memory."""

from __future__ import annotations

import os
from typing import Any

from mlops.core.artifact_io import get_json
from mlops.core.constants import ENV_TRIAL_MEMORY
from mlops.core.context import StepContext
from mlops.core.errors import DataTooLargeError
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import PlanResult, Trial
from mlops.core.runs import pipeline_step
from mlops.ml.search import expand_trials

# What a trial holds per value of the training split, estimated (not measured per family): the split's frame, the
# matrix the preprocessing makes of it, the estimator's working copy and a cross-validation fold's — four copies
# of 8 bytes. A trial may fill TRIAL_MEMORY_SHARE of its function; the rest is the interpreter and the bundle.
BYTES_PER_VALUE = 32
TRIAL_MEMORY_SHARE = 0.8


def check_training_fits(dataset: dict[str, Any], trial_memory_mb: int | None) -> None:
    """Refuse, before any trial starts, a training split a trial's function cannot hold: the data steps go past one
    function, training on one Lambda does not, and a trial killed for memory names nothing. Without a known memory
    (a run outside the stack) nothing is checked."""
    if not trial_memory_mb:
        return
    rows = int((dataset.get("rows") or {}).get("train") or 0)
    width = len(dataset.get("features") or {}) + 1
    need = rows * width * BYTES_PER_VALUE
    room = int(trial_memory_mb * 1024 * 1024 * TRIAL_MEMORY_SHARE)
    if need > room:
        raise DataTooLargeError(
            f"the training split has {rows:,} rows x {width} columns: about {need / 1024**2:,.0f} MB as a trial's "
            f"matrices ({BYTES_PER_VALUE} bytes a value, estimated), more than run_trial's {trial_memory_mb:,} MB "
            f"holds (at most ~{room // (width * BYTES_PER_VALUE):,} rows of this width). The data steps and their "
            "artifacts are complete; training past one Lambda (ECS Fargate) is not built in this version: train on "
            "less data (a narrower data.prefix, or a sample uploaded under it)"
        )


@pipeline_step("plan_trials")
def plan_trials(ctx: StepContext, *, dataset: ArtifactRefDict) -> PlanResult:
    memory = os.environ.get(ENV_TRIAL_MEMORY)
    check_training_fits(get_json(ctx.stores.artifacts, dataset["uri"]), int(memory) if memory else None)
    trials = [Trial.model_validate(t) for t in expand_trials(ctx.config)]
    return PlanResult(trials=trials, count=len(trials), max_concurrency=ctx.config.training.max_concurrency)
