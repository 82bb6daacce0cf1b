"""Self-contained HTML reports: Jinja2 templates (``mlops/templates``) with autoescape, inline SVG plots.

Every value reaches the page through a template with autoescape on, so a slice value, a column name or an
anomaly description is text and never markup. Python computes the data and the plot coordinates; the
templates draw them. Plots are SVG rather than matplotlib: matplotlib (~40 MB) does not fit in the
pipeline layer beside scikit-learn within Lambda's 250 MB limit; nothing is fetched at view time.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader

COLORS = ["#3e7bfa", "#e4572e", "#17bebb", "#ffc914", "#76b041", "#8e44ad"]
MAX_POINTS = 500


def fmt(value: Any) -> Any:
    """Floats to four significant digits; None to an empty cell."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else value


@functools.cache
def templates() -> Environment:
    env = Environment(loader=PackageLoader("mlops", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = fmt
    env.filters["slice_row"] = lambda row, keys: [row["value"], *[row.get(k, "") for k in keys]]
    return env


def render(template: str, **context: Any) -> str:
    return templates().get_template(template).render(**context)


def statistics_html(model: str, run_id: str, stats: dict[str, Any]) -> str:
    return render("statistics.html.j2", title=f"Data statistics — {model}", model=model, run_id=run_id, stats=stats)


def roc_points(y_true: np.ndarray, scores: np.ndarray) -> list[tuple[float, float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y_true, scores)
    idx = np.linspace(0, len(fpr) - 1, min(len(fpr), 200)).astype(int)
    return list(zip(fpr[idx].tolist(), tpr[idx].tolist(), strict=True))


def scatter_plot(xs: np.ndarray, ys: np.ndarray, title: str, xlabel: str, ylabel: str) -> dict[str, Any] | None:
    """Points scaled into the unit square (at most MAX_POINTS), with the y = 0 line when it is in view."""
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = float(np.min(xs)), float(np.max(xs)), float(np.min(ys)), float(np.max(ys))
    sx, sy = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    idx = np.linspace(0, len(xs) - 1, min(len(xs), MAX_POINTS)).astype(int)
    points = [((float(xs[i]) - x0) / sx, (float(ys[i]) - y0) / sy) for i in idx]
    zero = (0 - y0) / sy if y0 < 0 < y1 else None
    return {"title": title, "xlabel": xlabel, "ylabel": ylabel, "points": points, "zero": zero, "x0": x0, "x1": x1}


def evaluation_html(
    model: str,
    run_id: str,
    payload: dict[str, Any],
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
) -> str:
    confusion = None
    if "confusion_matrix" in payload:
        cm = payload["confusion_matrix"]
        top = max(max(row) for row in cm["matrix"]) or 1
        labels = [str(c) for c in cm["labels"]]
        confusion = {
            "labels": labels,
            "rows": [
                {"label": labels[i], "cells": [{"value": v, "shade": v / top} for v in row]}
                for i, row in enumerate(cm["matrix"])
            ],
        }
    line_plots = []
    if proba is not None and classes:
        pairs = [(classes[1], 1)] if len(classes) == 2 else [(c, i) for i, c in enumerate(classes)]
        series: list[dict[str, Any]] = []
        for c, i in pairs:
            truth = np.asarray(y).astype(str) == str(c)
            if 0 < truth.sum() < len(truth):
                series.append(
                    {
                        "name": f"class {c}",
                        "color": COLORS[len(series) % len(COLORS)],
                        "points": roc_points(truth, proba[:, i]),
                    }
                )
        if series:
            line_plots.append(
                {
                    "title": "ROC",
                    "xlabel": "false positive rate",
                    "ylabel": "true positive rate",
                    "diagonal": True,
                    "series": series,
                }
            )
    scatter_plots = []
    if payload["task"] == "regression":
        yt, yp = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
        scatter_plots = [
            p
            for p in (
                scatter_plot(yp, yt - yp, "Residuals", "predicted", "actual - predicted"),
                scatter_plot(yt, yp, "Predicted vs actual", "actual", "predicted"),
            )
            if p is not None
        ]
    return render(
        "evaluation.html.j2",
        title=f"Evaluation — {model}",
        model=model,
        run_id=run_id,
        payload=payload,
        metrics=payload["metrics"],
        baseline=payload.get("baseline"),
        confusion=confusion,
        line_plots=line_plots,
        scatter_plots=scatter_plots,
        slices=payload.get("slices", {}),
    )


def lifecycle_html(
    model: str,
    runs: list[dict[str, Any]],
    versions: list[dict[str, Any]],
    history: list[dict[str, Any]],
    links: dict[str, str] | None = None,
    monitors: list[dict[str, Any]] | None = None,
) -> str:
    """Runs with step timings, metrics and anomalies; versions; the promotion history; monitored windows
    (``monitors``: the monitor's summaries, each with ``href`` to its HTML report)."""
    version_rows = [
        [
            v["version"],
            v.get("status"),
            v.get("run_id"),
            v.get("family"),
            v.get("metric"),
            (v.get("metrics") or {}).get(v.get("metric", ""), ""),
            v.get("created_at"),
        ]
        for v in versions
    ]
    history_rows = [
        [h["at"], h["action"], h.get("alias"), h["version"], h.get("previous") or "", h.get("actor"), h.get("reason")]
        for h in history
    ]
    return render(
        "lifecycle.html.j2",
        title=f"serverless-mlops lifecycle — {model}",
        model=model,
        runs=runs,
        versions=versions,
        links=links or {},
        version_rows=version_rows,
        history_rows=history_rows,
        monitors=monitors or [],
    )


def monitor_html(summary: dict[str, Any]) -> str:
    """D3: one monitored window — verdicts first, then drift per feature, data quality and live quality."""
    return render("monitor.html.j2", title=f"Monitor: {summary['model']}", s=summary)
