"""Self-contained HTML reports: Jinja2 templates (``mlops/templates``) with autoescape, inline SVG plots.

Every value reaches the page through a template with autoescape on, so a slice value, a column name or an
anomaly description is text and never markup. Python computes the data and the plot coordinates; the
templates draw them. Plots are SVG rather than matplotlib: matplotlib (~40 MB) does not fit in the
pipeline layer beside scikit-learn within Lambda's 250 MB limit; nothing is fetched at view time.
No numpy here: the site (:mod:`mlops.reports.site`) renders these pages in the base bundle; the curves are computed
by evaluate (:mod:`mlops.ml.curves`) and stored with the evaluation.
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, Undefined

from mlops.core.clock import offset_s

COLORS = ["#2f6fde", "#d9480f", "#0c8599", "#b08900", "#5c940d", "#862e9c"]


def fmt(value: Any) -> Any:
    """Floats to four significant digits; None to an empty cell (numpy scalars as their Python value)."""
    if isinstance(value, Undefined):  # a statistic the column does not have (all missing: no min)
        return ""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else value


def _pct(value: Any) -> str:
    return "" if value is None else f"{100 * float(value):.1f}%"


@functools.cache
def templates() -> Environment:
    env = Environment(loader=PackageLoader("mlops", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = fmt
    env.filters["pct"] = _pct
    env.filters["slice_row"] = lambda row, keys: [row["value"], *[row.get(k, "") for k in keys]]
    env.globals["colors"] = COLORS
    return env


def render(template: str, **context: Any) -> str:
    context.setdefault("root", "")
    context.setdefault("nav", None)
    # Every time on a page is by the deployment's clock (mlops.core.clock); offline the emulator's, which `mlops local
    # tick --advance` moves ahead of the wall clock: a page says so, or a window ending tomorrow reads as a bug.
    context.setdefault("clock_ahead_h", round(offset_s() / 3600, 1))
    return templates().get_template(template).render(**context)


def statistics_html(model: str, run_id: str, stats: dict[str, Any]) -> str:
    return render("statistics.html.j2", title=f"Data statistics — {model}", model=model, run_id=run_id, stats=stats)


def line_plot(
    title: str,
    xlabel: str,
    ylabel: str,
    series: list[dict[str, Any]],
    *,
    diagonal: bool = False,
    x_range: tuple[float, float] = (0.0, 1.0),
    y_range: tuple[float, float] = (0.0, 1.0),
    dots: bool = False,
) -> dict[str, Any] | None:
    """Series of (x, y) points scaled into the unit square, each with a name and a colour."""
    (x0, x1), (y0, y1) = x_range, y_range
    sx, sy = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    drawn = []
    for i, s in enumerate(series):
        points = [((float(x) - x0) / sx, (float(y) - y0) / sy) for x, y, *_ in s["points"]]
        if points:
            drawn.append({"name": s["name"], "color": COLORS[i % len(COLORS)], "points": points})
    if not drawn:
        return None
    return {
        "title": title,
        "xlabel": xlabel,
        "ylabel": ylabel,
        "series": drawn,
        "diagonal": diagonal,
        "dots": dots,
        "x0": x0,
        "x1": x1,
        "y0": y0,
        "y1": y1,
    }


def evaluation_plots(curves: dict[str, Any], task: str) -> list[dict[str, Any]]:
    """The evaluation's stored curves (:func:`mlops.ml.curves.evaluation_curves`) as plots."""
    plots = [
        line_plot("ROC", "false positive rate", "true positive rate", curves.get("roc") or [], diagonal=True),
        line_plot("Precision-recall", "recall", "precision", curves.get("pr") or []),
    ]
    calibration = curves.get("calibration")
    if calibration:
        plots.append(
            line_plot(
                f"Calibration (class {calibration['positive']})",
                "mean predicted probability",
                "observed frequency",
                [{"name": "by decile of score", "points": calibration["points"]}],
                diagonal=True,
                dots=True,
            )
        )
    pairs = curves.get("predicted_actual") or []
    if task == "regression" and pairs:
        values = [v for pair in pairs for v in pair]
        lo, hi = min(values), max(values)
        residuals = [[p, a - p] for p, a in pairs]
        r = max(abs(res) for _, res in residuals) or 1.0
        plots.append(
            line_plot(
                "Predicted vs actual",
                "predicted",
                "actual",
                [{"name": "test rows", "points": pairs}],
                diagonal=True,
                x_range=(lo, hi),
                y_range=(lo, hi),
                dots=True,
            )
        )
        plots.append(
            line_plot(
                "Residuals",
                "predicted",
                "actual - predicted",
                [{"name": "test rows", "points": residuals}],
                x_range=(lo, hi),
                y_range=(-r, r),
                dots=True,
            )
        )
    return [p for p in plots if p is not None]


def confusion_table(cm: dict[str, Any] | None) -> dict[str, Any] | None:
    """Counts with each row's share; the cell's shade follows the share of its true class, and its text is
    white on the darker half of the scale, so every number stays readable."""
    if not cm:
        return None
    labels = [str(x) for x in cm["labels"]]
    rows = []
    for label, row in zip(labels, cm["matrix"], strict=True):
        total = sum(row) or 1
        cells = []
        for j, v in enumerate(row):
            share = v / total
            lightness = round(97 - 55 * share)  # hsl lightness: 97 % (none) to 42 % (all of the row)
            cells.append(
                {
                    "value": v,
                    "share": share,
                    "background": f"hsl(218,70%,{lightness}%)",
                    "color": "#ffffff" if lightness < 66 else "#102a43",
                    "diagonal": labels[j] == label,
                }
            )
        rows.append({"label": label, "cells": cells, "total": sum(row)})
    return {"labels": labels, "rows": rows}


def evaluation_html(model: str, run_id: str, payload: dict[str, Any] | None, **page: Any) -> str:
    """One evaluation: metrics, the trivial baseline, the champion on the same split, curves, the confusion
    matrix, slices. ``page``: ``root`` and ``nav`` when it is a page of the site, ``version`` and ``champion``.
    Without a payload (its artifact expired) the page says so."""
    payload = payload or {}
    return render(
        "evaluation.html.j2",
        title=page.pop("title", f"Evaluation — {model}"),
        model=model,
        run_id=run_id,
        e=payload or None,
        plots=evaluation_plots(payload.get("curves") or {}, payload.get("task", "")),
        confusion=confusion_table(payload.get("confusion_matrix")),
        **page,
    )


def monitor_html(summary: dict[str, Any], **page: Any) -> str:
    """D3: one monitored window — verdicts first, then drift per feature (with each feature's picture), data
    quality and live quality."""
    drift = (summary.get("drift") or {}).get("features") or {}
    pictures = sorted(
        ({"feature": col, **d} for col, d in drift.items() if (d.get("picture") or {}).get("bins")),
        key=lambda d: -float(d.get("value") or 0),
    )
    prediction = summary.get("prediction_drift") or {}
    if (prediction.get("picture") or {}).get("bins"):  # predictions against the training labels
        pictures = [{"feature": "prediction", **prediction}, *pictures]
    return render("monitor.html.j2", title=f"Monitor: {summary['model']}", s=summary, pictures=pictures[:13], **page)
