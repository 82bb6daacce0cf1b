"""Task metrics on held-out data, sliced by configured columns."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from mlops.config import Task


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, classes: list[Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "precision_macro": float(skm.precision_score(y_true, y_pred, average="macro", zero_division=0)),
        "recall_macro": float(skm.recall_score(y_true, y_pred, average="macro", zero_division=0)),
        "f1_macro": float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "n": len(y_true),
    }
    present = set(np.unique(y_true).tolist())
    try:
        if len(classes) == 2:
            if len(present) == 2:
                out["roc_auc"] = float(skm.roc_auc_score(y_true == classes[1], proba[:, 1]))
        elif len(present) == len(classes):
            out["roc_auc"] = float(skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes))
        out["log_loss"] = float(skm.log_loss(y_true, np.clip(proba, 1e-15, 1), labels=classes))
    except ValueError:
        pass  # a slice may hold one class only: AUC and log loss are undefined there
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rmse": float(math.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "n": len(y_true),
    }
    if len(y_true) > 1:
        out["r2"] = float(skm.r2_score(y_true, y_pred))
    if np.all(np.abs(y_true) > 1e-9):
        out["mape"] = float(skm.mean_absolute_percentage_error(y_true, y_pred))
    return out


def task_metrics(
    task: Task, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: list[Any] | None
) -> dict[str, Any]:
    if task is Task.REGRESSION:
        return regression_metrics(y_true.astype(float), y_pred.astype(float))
    assert proba is not None and classes is not None
    return classification_metrics(y_true, y_pred, proba, classes)


def sliced_metrics(
    task: Task,
    frame: pd.DataFrame,
    slice_by: tuple[str, ...],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
    min_rows: int = 10,
) -> dict[str, list[dict[str, Any]]]:
    """Metrics per value of each slicing column (numeric columns are cut into quartiles)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for col in slice_by:
        if col not in frame.columns:
            continue
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) and s.nunique() > 10:
            keys = pd.qcut(s, 4, duplicates="drop").astype(str)
        else:
            keys = s.astype(str)
        rows = []
        for value in sorted(keys.unique()):
            mask = (keys == value).to_numpy()
            if mask.sum() < min_rows:
                continue
            m = task_metrics(task, y_true[mask], y_pred[mask], proba[mask] if proba is not None else None, classes)
            rows.append({"value": value, **m})
        out[col] = rows
    return out
