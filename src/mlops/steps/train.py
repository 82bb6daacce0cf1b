"""B1/B2/B3: plan the trials, run each (one Lambda per trial in the tuning Map), pick the best, refit."""

from __future__ import annotations

import io
import time
from typing import Any

import joblib
import numpy as np
import pandas as pd

from mlops.core.artifact_io import put_json
from mlops.core.clock import utcnow_iso
from mlops.core.config import FeatureStep
from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import TrainResult, Trial, TrialResult
from mlops.core.runs import FAILED, SUCCEEDED, pipeline_step
from mlops.ml.features import check_deterministic
from mlops.ml.metrics import task_metrics
from mlops.ml.metrics_compare import better
from mlops.ml.models import build_pipeline, predict
from mlops.ml.prepared import Dataset, load_dataset


def _steps(ctx: StepContext) -> tuple[FeatureStep, ...]:
    return ctx.config.features.steps


def components_of(pipe: Any) -> list[dict[str, Any]]:
    """The user's code in a fitted pipeline, for the lineage: each feature component, then the model if it is a
    model component (not a built-in family), with its import path, parameters and source's sha256."""
    from mlops.components import provenance
    from mlops.ml.features import FeatureSteps

    out = [provenance(step) for name, stage in pipe.steps if isinstance(stage, FeatureSteps) for step in stage.steps]
    model = pipe.steps[-1][1]
    if not type(model).__module__.startswith(("sklearn.", "lightgbm.")):
        out.append(provenance(model))
    return out


def _score(ds: Dataset, pipe: Any, X: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    pred, proba = predict(pipe, X, ds.task, ds.classes)
    return task_metrics(ds.task, y, pred, proba, ds.classes)


def run_trial(ctx: StepContext, *, dataset: ArtifactRefDict, trial: Trial) -> TrialResult:
    """Fit one candidate on train, score on validation (on their samples where the plan says: the Fargate path).
    A failing candidate is recorded, not raised."""
    ds = load_dataset(ctx.stores.artifacts, dataset)
    metric = ctx.config.primary_metric_for(ds.task)
    t0 = time.perf_counter()
    started = utcnow_iso()
    try:
        fit_on, score_on = ("train_sample", "validation_sample") if trial.sample else ("train", "validation")
        _, X_train, y_train = ds.load(ctx.stores.artifacts, fit_on)
        _, X_val, y_val = ds.load(ctx.stores.artifacts, score_on)
        pipe = build_pipeline(trial.family, trial.params, ds.task, ds.kinds, ctx.config.split.seed, _steps(ctx))
        pipe.fit(X_train, y_train)
        scores = _score(ds, pipe, X_val, y_val)
        outcome: dict[str, Any] = {"status": SUCCEEDED, "value": scores.get(metric), "validation": scores}
    except (ValueError, TypeError) as err:  # bad hyperparameters for this family
        outcome = {"status": FAILED, "value": None, "error": str(err)[:500]}
    result = TrialResult(
        **trial.model_dump(),
        **outcome,
        metric=metric,
        started_at=started,
        duration_s=round(time.perf_counter() - t0, 3),
    )
    ctx.stores.meta.record_step(ctx.model, ctx.run_id, trial.trial_id, result.as_state(), section="trials")
    return result


@pipeline_step("train")
def select_and_refit(ctx: StepContext, *, dataset: ArtifactRefDict, trials: list[TrialResult]) -> TrainResult:
    """Best trial by the validation metric, refit on train + validation."""
    ds = load_dataset(ctx.stores.artifacts, dataset)
    metric = ctx.config.primary_metric_for(ds.task)
    for t in trials:
        if t.cause is not None:  # died in its Lambda (memory, timeout, crash) and was caught by the tuning Map
            died = t.model_copy(update={"value": None, "error": f"{t.error}: {t.cause[:400]}", "cause": None})
            ctx.stores.meta.record_step(ctx.model, ctx.run_id, t.trial_id, died.as_state(), section="trials")
    scored = [(t.value, t) for t in trials if t.status == SUCCEEDED and t.value is not None]
    if not scored:
        errors = sorted({t.error or "no metric" for t in trials})
        raise ValueError(f"all {len(trials)} trials failed: {errors[:3]}")
    best_value, best = scored[0]
    for value, t in scored[1:]:
        if better(metric, value, best_value):
            best_value, best = value, t
    _, X_train, y_train = ds.load(ctx.stores.artifacts, "train")
    _, X_val, y_val = ds.load(ctx.stores.artifacts, "validation")
    X = pd.concat([X_train, X_val])
    y = np.concatenate([y_train, y_val])
    t0 = time.perf_counter()
    pipe = build_pipeline(best.family, best.params, ds.task, ds.kinds, ctx.config.split.seed, _steps(ctx))
    pipe.fit(X, y)
    fit_s = round(time.perf_counter() - t0, 3)
    if "features" in pipe.named_steps:  # the user's code: made again from the same inputs, it must answer the same
        check_deterministic(pipe.named_steps["features"], X, y, X_val)
    buf = io.BytesIO()
    joblib.dump(pipe, buf)
    model = ctx.stores.artifacts.put_bytes(ctx.key("train", "model.joblib"), buf.getvalue())
    table = put_json(
        ctx.stores.artifacts,
        ctx.key("train", "trials.json"),
        {"metric": metric, "best": best.trial_id, "trials": [t.as_state() for t in trials]},
    )
    return TrainResult(
        model=model.as_dict(),
        trials=table.as_dict(),
        best_trial=best.trial_id,
        family=best.family,
        params=best.params,
        metric=metric,
        validation_value=best_value,
        num_trials=len(trials),
        refit_s=fit_s,
        components=components_of(pipe),
    )
