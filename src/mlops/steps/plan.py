"""B2: plan the trials — the candidate configurations the tuning Map fans out over (no scikit-learn here)."""

from __future__ import annotations

from typing import Any

from mlops.context import StepContext
from mlops.ml.search import expand_trials
from mlops.ports import ArtifactRefDict
from mlops.runs import pipeline_step


@pipeline_step("plan_trials")
def plan_trials(ctx: StepContext, *, dataset: ArtifactRefDict) -> dict[str, Any]:
    trials = expand_trials(ctx.config)
    return {"trials": trials, "count": len(trials), "max_concurrency": ctx.config.training.max_concurrency}
