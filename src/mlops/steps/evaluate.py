"""B4: the exported model's metrics on the test split, sliced, with plots in an HTML report."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops.adapters.artifacts import put_json
from mlops.config import Task
from mlops.context import StepContext
from mlops.dataset import load_dataset
from mlops.frames import to_parquet_bytes
from mlops.ml.metrics import sliced_metrics, task_metrics
from mlops.report import evaluation_html
from mlops.runs import pipeline_step
from mlops.serving.onnx_model import OnnxModel


def score_onnx(model: OnnxModel, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    return model.run({s["name"]: X[s["name"]].to_numpy().reshape(-1, 1) for s in model.signature.inputs})


@pipeline_step("evaluate")
def evaluate(ctx: StepContext, *, dataset: dict[str, Any], onnx: dict[str, Any]) -> dict[str, Any]:
    store = ctx.stores.artifacts
    ds = load_dataset(store, dataset)
    model = OnnxModel(store.get_bytes(onnx["uri"]))
    raw, X, y = ds.load(store, "test")
    pred, proba = score_onnx(model, X)
    metrics = task_metrics(ds.task, y, pred, proba, ds.classes)
    slices = sliced_metrics(ds.task, raw, ctx.config.features.slice_by, y, pred, proba, ds.classes)
    extra: dict[str, Any] = {}
    if ds.task is not Task.REGRESSION:
        from sklearn.metrics import confusion_matrix

        extra["confusion_matrix"] = {
            "labels": ds.classes,
            "matrix": confusion_matrix(y, pred, labels=ds.classes).tolist(),
        }
    # The test sample and its predictions: validate_model replays them in the serving runtime.
    sample = X.head(200).copy()
    sample["__prediction"] = pred[:200]
    if proba is not None:
        for i in range(proba.shape[1]):
            sample[f"__proba_{i}"] = proba[:200, i]
    sample_ref = store.put_bytes(ctx.key("evaluate", "test_sample.parquet"), to_parquet_bytes(sample))
    metric = ctx.config.primary_metric_for(ds.task)
    payload = {"task": ds.task.value, "metric": metric, "metrics": metrics, "slices": slices, **extra}
    ref = put_json(store, ctx.key("evaluate", "evaluation.json"), payload)
    html = evaluation_html(ctx.model, ctx.run_id, payload, y, pred, proba, ds.classes)
    report = store.put_bytes(ctx.key("evaluate", "report.html"), html.encode(), "text/html")
    return {
        "evaluation": ref.as_dict(),
        "report": report.as_dict(),
        "test_sample": sample_ref.as_dict(),
        "metric": metric,
        "value": metrics.get(metric),
        "metrics": {k: round(v, 6) for k, v in metrics.items() if isinstance(v, float)},
    }
