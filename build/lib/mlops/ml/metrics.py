"""Task metrics on held-out data, sliced by configured columns."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from mlops.core.config import Task


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
    auc = roc_auc(y_true, proba, classes)
    if auc is not None:  # a slice may hold one class only: AUC is undefined there
        out["roc_auc"] = auc
    with contextlib.suppress(ValueError):  # a label outside ``classes``: log loss is undefined
        out["log_loss"] = float(skm.log_loss(y_true, np.clip(proba, 1e-15, 1), labels=classes))
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


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks (scipy.stats.rankdata's "average")."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]  # where each run of equal values starts
    dense = np.cumsum(first)
    bounds = np.r_[np.flatnonzero(first), len(values)]
    ranks = np.empty(len(values))
    ranks[order] = 0.5 * (bounds[dense] + bounds[dense - 1] + 1)
    return ranks


def binary_roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """The area under the ROC curve of ``score`` for the rows where ``positive``, as scikit-learn's
    ``roc_auc_score`` computes it (the Mann-Whitney statistic: ties count half), without its input checks — the
    bootstrap calls it hundreds of times. None where one side is empty."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(np.asarray(score, dtype=float))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ovr_roc_auc(y_true: np.ndarray, proba: np.ndarray, classes: list[Any]) -> float | None:
    """Macro-averaged one-vs-rest AUC (scikit-learn's ``multi_class="ovr"``); None unless every class is present."""
    aucs = [binary_roc_auc(np.asarray(y_true == c), proba[:, k]) for k, c in enumerate(classes)]
    present = [a for a in aucs if a is not None]
    return float(np.mean(present)) if len(present) == len(aucs) else None


def roc_auc(y_true: np.ndarray, proba: np.ndarray, classes: list[Any]) -> float | None:
    """ROC AUC of ``proba`` (columns in ``classes`` order): of the second class for two, macro one-vs-rest for more;
    None where a class is absent."""
    if len(classes) == 2:
        return binary_roc_auc(np.asarray(y_true == classes[1]), proba[:, 1])
    return ovr_roc_auc(y_true, proba, classes)


def metric_value(
    task: Task,
    metric: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
) -> float | None:
    """One metric, as :func:`task_metrics` defines it, without computing the others (bootstrap loops)."""
    if metric == "roc_auc" and task is not Task.REGRESSION and classes is not None and proba is not None:
        return roc_auc(y_true, proba, classes)
    if metric == "accuracy" and task is not Task.REGRESSION:
        return float(np.mean(y_true == y_pred))
    if metric in ("rmse", "mae") and task is Task.REGRESSION:
        err = y_true.astype(float) - y_pred.astype(float)
        return float(math.sqrt(np.mean(err**2))) if metric == "rmse" else float(np.mean(np.abs(err)))
    value = task_metrics(task, y_true, y_pred, proba, classes).get(metric)
    return None if value is None else float(value)


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


def lift(metric: str, candidate: float, baseline: float) -> float:
    """How much better than the baseline: a difference for higher-is-better metrics, the share of the
    baseline's error removed for lower-is-better ones (rmse, mae, log loss …), so one margin reads alike."""
    from mlops.core.config import HIGHER_IS_BETTER

    if HIGHER_IS_BETTER[metric]:
        return candidate - baseline
    return (baseline - candidate) / baseline if baseline > 0 else baseline - candidate


def baseline_comparison(
    task: Task,
    metric: str,
    y_train: np.ndarray,
    y_test: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
    *,
    resamples: int = 200,
    max_rows: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The trivial model — the training split's majority class with its class priors, or its mean — scored on
    the same test split, and the candidate's lift over it with a one-sided 95% bootstrap lower bound: a
    model that beats the trivial one only by chance (random labels, noise features) is not blessed."""
    n = len(y_test)
    if task is Task.REGRESSION:
        base_pred = np.full(n, float(np.mean(y_train)))
        base_proba = None
        name = f"the training mean {float(np.mean(y_train)):.4g}"
    else:
        labels, counts = np.unique(y_train, return_counts=True)
        majority = labels[int(np.argmax(counts))]
        priors = dict(zip(labels.tolist(), (counts / counts.sum()).tolist(), strict=True))
        base_pred = np.array([majority] * n, dtype=np.asarray(y_test).dtype)
        base_proba = np.tile([priors.get(c, 0.0) for c in classes or []], (n, 1))
        label = majority.item() if isinstance(majority, np.generic) else majority
        name = f"the majority class {label!r} with the training class priors"
    candidate = metric_value(task, metric, y_test, pred, proba, classes)
    baseline = metric_value(task, metric, y_test, base_pred, base_proba, classes)
    out: dict[str, Any] = {"model": name, "value": baseline, "lift": None, "lift_low": None, "resamples": 0}
    if candidate is None or baseline is None:
        return out
    out["lift"] = lift(metric, candidate, baseline)
    rng = np.random.default_rng(seed)
    lifts = []
    size = min(n, max_rows)
    for _ in range(resamples):
        i = rng.integers(0, n, size)
        c = metric_value(task, metric, y_test[i], pred[i], None if proba is None else proba[i], classes)
        b = metric_value(task, metric, y_test[i], base_pred[i], None if base_proba is None else base_proba[i], classes)
        if c is not None and b is not None and math.isfinite(c) and math.isfinite(b):
            lifts.append(lift(metric, c, b))
    out["resamples"] = len(lifts)
    if len(lifts) >= resamples // 2:
        out["lift_low"] = float(np.quantile(lifts, 0.05))
    return out
