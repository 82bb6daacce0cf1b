"""B2: plan the trials — the candidate configurations the tuning Map fans out over (no scikit-learn here)."""

from __future__ import annotations

from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import PlanResult, Trial
from mlops.core.runs import pipeline_step
from mlops.ml.search import expand_trials


@pipeline_step("plan_trials")
def plan_trials(ctx: StepContext, *, dataset: ArtifactRefDict) -> PlanResult:
    trials = [Trial.model_validate(t) for t in expand_trials(ctx.config)]
    return PlanResult(trials=trials, count=len(trials), max_concurrency=ctx.config.training.max_concurrency)
