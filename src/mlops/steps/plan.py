"""B2: plan the trials — the candidate configurations the tuning Map fans out over (no scikit-learn here)."""

from __future__ import annotations

from mlops.context import StepContext
from mlops.ml.search import expand_trials
from mlops.ports import ArtifactRefDict
from mlops.runs import pipeline_step
from mlops.steps.results import PlanResult, Trial


@pipeline_step("plan_trials")
def plan_trials(ctx: StepContext, *, dataset: ArtifactRefDict) -> PlanResult:
    trials = [Trial.model_validate(t) for t in expand_trials(ctx.config)]
    return PlanResult(trials=trials, count=len(trials), max_concurrency=ctx.config.training.max_concurrency)
