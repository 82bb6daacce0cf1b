"""B4: the candidate's metrics on the test split, sliced, with plots; the champion re-scored on the
same split; and the reference answers the serving-runtime parity check replays."""

from __future__ import annotations

import io
import math
from typing import Any

import joblib
import numpy as np
import pandas as pd

from mlops.core.artifact_io import get_verified, put_json
from mlops.core.config import Task
from mlops.core.constants import CHAMPION
from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import EvaluateResult
from mlops.core.runs import pipeline_step
from mlops.ml.curves import evaluation_curves
from mlops.ml.metrics import baseline_comparison, sliced_metrics, task_metrics
from mlops.ml.models import predict
from mlops.ml.prepared import Dataset, load_dataset
from mlops.reports.pages import evaluation_html

MAX_REFERENCE_ROWS = 2000


def champion_value(ctx: StepContext, raw: pd.DataFrame, y: np.ndarray, ds: Dataset, metric: str) -> dict[str, Any]:
    """The champion's pipeline re-scored on this run's test split (parity was proven when it was blessed)."""
    stores = ctx.stores
    version = stores.meta.get_alias(ctx.model, CHAMPION)
    if version is None:
        return {"version": None, "value": None, "note": "no champion yet"}
    record = stores.meta.get_model_version(ctx.model, version) or {}
    try:
        champ_ds = load_dataset(stores.artifacts, record["lineage"]["dataset"])
        if ds.task is not Task.REGRESSION and _labels(champ_ds.classes) != _labels(ds.classes):
            appeared = sorted(_labels(ds.classes) - _labels(champ_ds.classes))
            vanished = sorted(_labels(champ_ds.classes) - _labels(ds.classes))
            return {
                "version": version,
                "value": None,
                "comparable": False,
                "labels": {"appeared": appeared, "vanished": vanished},
                "note": f"champion v{version} was not re-scored: it knows other labels (new here: {appeared[:8]}; "
                f"not here: {vanished[:8]})",
            }
        unchanged = _same_inputs(ctx, ds, champ_ds, record)
        pipe = joblib.load(io.BytesIO(get_verified(stores.artifacts, record["artifacts"]["model"])))
        from mlops.ml.models import model_frame

        pred, proba = predict(pipe, model_frame(raw, champ_ds.kinds), ds.task, ds.classes)
        value = task_metrics(ds.task, y, pred, proba, ds.classes).get(metric)
    except Exception as err:  # noqa: BLE001 — an old pickle, a changed feature set: report, don't guess
        return {"version": version, "value": None, "note": f"champion v{version} could not be re-scored: {err}"}
    return {
        "version": version,
        "value": value,
        "unchanged": unchanged,
        "note": f"champion v{version} re-scored on this test split"
        + (" (trained on the same data with the same config and code)" if unchanged else ""),
    }


def _labels(classes: list[Any] | None) -> set[str]:
    return {str(c) for c in classes or []}


def _same_inputs(ctx: StepContext, ds: Dataset, champ_ds: Dataset, record: dict[str, Any]) -> bool:
    """Whether this candidate was made from what made the champion: the same splits (byte for byte), config
    and code. Its metrics can only tie the champion's up to training noise; promoting it would churn the
    registry and the served version for nothing."""
    from mlops import __version__

    lineage = record.get("lineage") or {}
    run = ctx.stores.meta.get_run(ctx.model, ctx.run_id) or {}
    same_splits = all(
        (ds.splits.get(s) or {}).get("sha256") == (champ_ds.splits.get(s) or {}).get("sha256")
        for s in ("train", "validation", "test")
    )
    return (
        same_splits
        and lineage.get("config_hash") == ctx.config.config_hash()
        and lineage.get("code_version") == run.get("code_version", __version__)
    )


def component_columns(pipe: Any, X: pd.DataFrame) -> dict[str, list[Any]]:
    """What the feature components compute for the reference rows, by column (their parity check's reference)."""
    features = pipe.named_steps.get("features")
    if features is None:
        return {}
    added = features.transform(X)
    return {c: [_plain(v) for v in added[c]] for step in features.steps for c in step.output_columns()}


def calibrate(ctx: StepContext, proba: np.ndarray, y: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    """The calibrator the monitor estimates live performance with before labels arrive
    (:mod:`mlops.monitoring.estimate`), fitted on the test split (the model never trained on it) and kept only if
    it lowers the expected calibration error out of sample: what evaluation.json records (both errors, the method,
    whether it was kept) and, when kept, the calibrator's own artifact, which register stores with the version."""
    from mlops.monitoring.estimate import MIN_CALIBRATION_ROWS, calibration_report

    if len(y) < MIN_CALIBRATION_ROWS or len(set(np.asarray(y).tolist())) < 2:
        return {
            "kept": False,
            "rows": len(y),
            "reason": f"{len(y)} test row(s) with {len(set(np.asarray(y).tolist()))} class(es): at least "
            f"{MIN_CALIBRATION_ROWS} rows of two classes are needed to fit and judge a calibrator",
        }
    report = calibration_report(proba, y, classes, seed=ctx.config.split.seed)
    out: dict[str, Any] = {
        "kept": report.kept,
        "method": report.method,
        "rows": report.rows,
        "ece_raw": round(report.ece_raw, 6),
        "ece_calibrated": round(report.ece_calibrated, 6),
    }
    if report.calibrator is not None:
        body = report.calibrator.to_json().encode()
        ref = ctx.stores.artifacts.put_bytes(ctx.key("evaluate", "calibrator.json"), body, "application/json")
        out["calibrator"] = ref.as_dict()
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return v


@pipeline_step("evaluate")
def evaluate(ctx: StepContext, *, dataset: ArtifactRefDict, model: ArtifactRefDict) -> EvaluateResult:
    store = ctx.stores.artifacts
    ds = load_dataset(store, dataset)
    pipe = joblib.load(io.BytesIO(get_verified(store, model)))
    scored = ds.scored("test")  # past one Lambda, a stratified sample of the test split in proportion to tune_rows
    raw, X, y = ds.load(store, scored)
    pred, proba = predict(pipe, X, ds.task, ds.classes)
    metric = ctx.config.primary_metric_for(ds.task)
    metrics = task_metrics(ds.task, y, pred, proba, ds.classes)
    payload: dict[str, Any] = {
        "task": ds.task.value,
        "metric": metric,
        "metrics": metrics,
        "rows": {"split": scored, "scored": len(y), "test": int((ds.rows or {}).get("test") or len(y))},
        "slices": sliced_metrics(ds.task, raw, ctx.config.features.slice_by, y, pred, proba, ds.classes),
        "champion": champion_value(ctx, raw, y, ds, metric),
        "baseline": baseline_comparison(
            ds.task,
            metric,
            ds.load(store, ds.scored("train"))[2],
            y,
            pred,
            proba,
            ds.classes,
            seed=ctx.config.split.seed,
        ),
    }
    if ds.task is not Task.REGRESSION:
        from sklearn.metrics import confusion_matrix

        payload["confusion_matrix"] = {
            "labels": ds.classes,
            "matrix": confusion_matrix(y, pred, labels=ds.classes).tolist(),
        }
    payload["curves"] = evaluation_curves(ds.task, y, pred, proba, ds.classes)
    if proba is not None:
        payload["calibration"] = calibrate(ctx, proba, y, ds.classes or [])
    ref = put_json(store, ctx.key("evaluate", "evaluation.json"), payload)
    html = evaluation_html(ctx.model, ctx.run_id, payload)
    report = store.put_bytes(ctx.key("evaluate", "report.html"), html.encode(), "text/html")
    n = min(len(raw), MAX_REFERENCE_ROWS)
    features = list(ds.kinds)
    reference = put_json(
        store,
        ctx.key("evaluate", "reference.json"),
        {
            "records": [{c: _plain(v) for c, v in row.items()} for row in raw[features].head(n).to_dict("records")],
            "predictions": [_plain(v) for v in pred[:n]],
            "probabilities": proba[:n].tolist() if proba is not None else None,
            "features": component_columns(pipe, X.head(n)),
        },
    )
    return EvaluateResult(
        evaluation=ref.as_dict(),
        report=report.as_dict(),
        reference=reference.as_dict(),
        metric=metric,
        value=metrics.get(metric),
        metrics={k: round(v, 6) for k, v in metrics.items() if isinstance(v, float)},
    )
