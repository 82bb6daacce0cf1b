"""The curves an evaluation page draws, computed once by evaluate and stored in its ``evaluation.json``:
ROC and precision-recall per class, a calibration curve (binary), predicted against actual (regression).
Coordinates are plain lists, at most ``MAX_POINTS`` per curve, so a page renders them without numpy."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops.core.config import Task

MAX_POINTS = 200
CALIBRATION_BINS = 10


def _thin(xs: np.ndarray, ys: np.ndarray, limit: int = MAX_POINTS) -> list[list[float]]:
    idx = np.unique(np.linspace(0, len(xs) - 1, min(len(xs), limit)).astype(int))
    return [[round(float(xs[i]), 5), round(float(ys[i]), 5)] for i in idx]


def _class_pairs(classes: list[Any]) -> list[tuple[Any, int]]:
    return [(classes[1], 1)] if len(classes) == 2 else list(zip(classes, range(len(classes)), strict=True))


def classification_curves(y: np.ndarray, proba: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    from sklearn.metrics import precision_recall_curve, roc_curve

    roc, pr = [], []
    truth_text = np.asarray(y).astype(str)
    for label, i in _class_pairs(classes):
        truth = truth_text == str(label)
        positives = int(truth.sum())
        if not 0 < positives < len(truth):
            continue
        fpr, tpr, _ = roc_curve(truth, proba[:, i])
        roc.append({"name": f"class {label}", "points": _thin(fpr, tpr)})
        precision, recall, _ = precision_recall_curve(truth, proba[:, i])
        pr.append(
            {
                "name": f"class {label}",
                "points": _thin(recall[::-1], precision[::-1]),
                "prevalence": round(positives / len(truth), 5),
            }
        )
    out: dict[str, Any] = {"roc": roc, "pr": pr}
    if len(classes) == 2:
        truth = truth_text == str(classes[1])
        p = proba[:, 1]
        bins = np.minimum((p * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
        points = []
        for b in range(CALIBRATION_BINS):
            mask = bins == b
            if mask.any():
                points.append([round(float(p[mask].mean()), 5), round(float(truth[mask].mean()), 5), int(mask.sum())])
        out["calibration"] = {"positive": str(classes[1]), "points": points}
    return out


def regression_curves(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    actual, predicted = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    order = np.argsort(predicted, kind="stable")
    return {"predicted_actual": _thin(predicted[order], actual[order], limit=400)}


def evaluation_curves(
    task: Task, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: list[Any] | None
) -> dict[str, Any]:
    if task is Task.REGRESSION:
        return regression_curves(y, pred)
    if proba is None or not classes:
        return {}
    return classification_curves(y, proba, classes)
