"""Self-contained HTML reports with inline SVG plots.

Plots are drawn as SVG by hand rather than with matplotlib: matplotlib (~40 MB) does not fit in
the pipeline layer beside scikit-learn within Lambda's 250 MB limit.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;margin:2rem;color:#1f2933;max-width:1100px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d9e2ec}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #d9e2ec;padding:.25rem .6rem;text-align:right}th{background:#f0f4f8}
td.l,th.l{text-align:left}.ok{color:#127c3a;font-weight:600}.bad{color:#b42318;font-weight:600}
.warn{color:#b54708}.muted{color:#7b8794}svg{background:#fff;border:1px solid #e4e7eb;margin:.5rem 1rem .5rem 0}
"""


def esc(v: Any) -> str:
    return html.escape(str(v))


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return esc(v)


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{body}</body></html>"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> str:
    head = "".join(f"<th class='{'l' if i < left else ''}'>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='{'l' if i < left else ''}'>{c if str(c).startswith('<') else fmt(c)}</td>"
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def bars_svg(values: Sequence[float], labels: Sequence[str] = (), width: int = 240, height: int = 70) -> str:
    if not values:
        return ""
    top = max(values) or 1
    w = width / len(values)
    rects = "".join(
        f"<rect x='{i * w:.1f}' y='{height - v / top * (height - 4):.1f}' width='{max(w - 1, 1):.1f}' "
        f"height='{v / top * (height - 4):.1f}' fill='#3e7bfa'><title>{esc(labels[i] if labels else '')}: "
        f"{v:g}</title></rect>"
        for i, v in enumerate(values)
    )
    return f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}'>{rects}</svg>"


def line_svg(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    size: int = 300,
    diagonal: bool = False,
) -> str:
    pad = 36
    inner = size - 2 * pad
    colors = ["#3e7bfa", "#e4572e", "#17bebb", "#ffc914", "#76b041", "#8e44ad"]
    parts = [
        f"<text x='{size / 2}' y='16' text-anchor='middle' font-size='12'>{esc(title)}</text>",
        f"<rect x='{pad}' y='{pad}' width='{inner}' height='{inner}' fill='none' stroke='#9aa5b1'/>",
        f"<text x='{size / 2}' y='{size - 6}' text-anchor='middle' font-size='11'>{esc(xlabel)}</text>",
        f"<text x='10' y='{size / 2}' font-size='11' transform='rotate(-90 10 {size / 2})' "
        f"text-anchor='middle'>{esc(ylabel)}</text>",
    ]
    if diagonal:
        parts.append(
            f"<line x1='{pad}' y1='{pad + inner}' x2='{pad + inner}' y2='{pad}' stroke='#cbd2d9' stroke-dasharray='4'/>"
        )
    for i, (name, (xs, ys)) in enumerate(series.items()):
        pts = " ".join(f"{pad + x * inner:.1f},{pad + inner - y * inner:.1f}" for x, y in zip(xs, ys, strict=True))
        color = colors[i % len(colors)]
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{pts}'/>")
        parts.append(f"<text x='{pad + 6}' y='{pad + 14 + 13 * i}' font-size='11' fill='{color}'>{esc(name)}</text>")
    return f"<svg width='{size}' height='{size}'>{''.join(parts)}</svg>"


def scatter_svg(xs: np.ndarray, ys: np.ndarray, title: str, xlabel: str, ylabel: str, size: int = 300) -> str:
    pad = 36
    inner = size - 2 * pad
    if len(xs) == 0:
        return ""
    x0, x1 = float(np.min(xs)), float(np.max(xs))
    y0, y1 = float(np.min(ys)), float(np.max(ys))
    sx = (x1 - x0) or 1.0
    sy = (y1 - y0) or 1.0
    idx = np.linspace(0, len(xs) - 1, min(len(xs), 500)).astype(int)
    dots = "".join(
        f"<circle cx='{pad + (xs[i] - x0) / sx * inner:.1f}' cy='{pad + inner - (ys[i] - y0) / sy * inner:.1f}' "
        "r='2' fill='#3e7bfa' fill-opacity='.6'/>"
        for i in idx
    )
    zero = ""
    if y0 < 0 < y1:
        zy = pad + inner - (0 - y0) / sy * inner
        zero = f"<line x1='{pad}' x2='{pad + inner}' y1='{zy:.1f}' y2='{zy:.1f}' stroke='#e4572e'/>"
    return (
        f"<svg width='{size}' height='{size}'><text x='{size / 2}' y='16' text-anchor='middle' "
        f"font-size='12'>{esc(title)}</text><rect x='{pad}' y='{pad}' width='{inner}' height='{inner}' "
        f"fill='none' stroke='#9aa5b1'/>{zero}{dots}<text x='{size / 2}' y='{size - 6}' text-anchor='middle' "
        f"font-size='11'>{esc(xlabel)} [{x0:.3g}, {x1:.3g}]</text><text x='10' y='{size / 2}' font-size='11' "
        f"transform='rotate(-90 10 {size / 2})' text-anchor='middle'>{esc(ylabel)}</text></svg>"
    )


def statistics_html(model: str, run_id: str, stats: dict[str, Any]) -> str:
    rows = []
    for col, s in stats["features"].items():
        if s["type"] == "numeric":
            hist = s.get("histogram") or {}
            summary = (
                f"min {fmt(s.get('min'))} · mean {fmt(s.get('mean'))} · max {fmt(s.get('max'))} · "
                f"std {fmt(s.get('std'))}"
            )
            plot = bars_svg(hist.get("counts", []))
        else:
            top = s.get("top", [])
            summary = ", ".join(f"{esc(t['value'])} ({t['count']})" for t in top[:5])
            plot = bars_svg([t["count"] for t in top[:12]], [t["value"] for t in top[:12]])
        rows.append([esc(col), s["type"], s["count"], f"{s['missing_rate']:.1%}", s["distinct"], summary, plot])
    body = (
        f"<p>Model <b>{esc(model)}</b>, run <code>{esc(run_id)}</code>: {stats['num_rows']:,} rows, "
        f"{stats['num_columns']} columns.</p>"
        + table(["column", "type", "count", "missing", "distinct", "summary", "distribution"], rows)
    )
    return page(f"Data statistics — {model}", body)


def roc_points(y_true: np.ndarray, scores: np.ndarray) -> tuple[list[float], list[float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y_true, scores)
    idx = np.linspace(0, len(fpr) - 1, min(len(fpr), 200)).astype(int)
    return fpr[idx].tolist(), tpr[idx].tolist()


def evaluation_html(
    model: str,
    run_id: str,
    payload: dict[str, Any],
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
) -> str:
    metrics = payload["metrics"]
    parts = [
        f"<p>Model <b>{esc(model)}</b>, run <code>{esc(run_id)}</code>, task {esc(payload['task'])}, "
        f"primary metric <b>{esc(payload['metric'])}</b> = {fmt(metrics.get(payload['metric']))} "
        f"on {metrics.get('n')} held-out rows.</p>",
        "<h2>Metrics</h2>",
        table(["metric", "value"], sorted(metrics.items())),
    ]
    plots = []
    if "confusion_matrix" in payload:
        cm = payload["confusion_matrix"]
        labels = [str(c) for c in cm["labels"]]
        top = max(max(r) for r in cm["matrix"]) or 1
        cells = [
            [esc(labels[i])]
            + [f"<span style='display:block;background:rgba(62,123,250,{v / top:.2f})'>{v}</span>" for v in row]
            for i, row in enumerate(cm["matrix"])
        ]
        parts += ["<h2>Confusion matrix (rows: true, columns: predicted)</h2>", table(["", *labels], cells)]
    if proba is not None and classes:
        series = {}
        pairs = [(classes[1], 1)] if len(classes) == 2 else [(c, i) for i, c in enumerate(classes)]
        for c, i in pairs:
            truth = np.asarray(y).astype(str) == str(c)
            if 0 < truth.sum() < len(truth):
                series[f"class {c}"] = roc_points(truth, proba[:, i])
        if series:
            plots.append(line_svg(series, "ROC", "false positive rate", "true positive rate", diagonal=True))
    if payload["task"] == "regression":
        yt, yp = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
        plots.append(scatter_svg(yp, yt - yp, "Residuals", "predicted", "actual - predicted"))
        plots.append(scatter_svg(yt, yp, "Predicted vs actual", "actual", "predicted"))
    if plots:
        parts += ["<h2>Plots</h2>", "".join(plots)]
    for col, rows in payload.get("slices", {}).items():
        if not rows:
            continue
        keys = [k for k in rows[0] if k != "value"]
        parts += [
            f"<h2>Slices by {esc(col)}</h2>",
            table(["value", *keys], [[r["value"], *[r.get(k, "") for k in keys]] for r in rows]),
        ]
    return page(f"Evaluation — {model}", "".join(parts))


def lifecycle_html(
    model: str,
    runs: list[dict[str, Any]],
    versions: list[dict[str, Any]],
    history: list[dict[str, Any]],
    links: dict[str, str] | None = None,
) -> str:
    """Runs with step timings, metrics and anomalies; versions; the promotion history."""
    links = links or {}
    status_class = {"SUCCEEDED": "ok", "FAILED": "bad", "REJECTED": "warn"}
    rows = []
    for r in runs:
        steps = r.get("steps", {})
        timing = bars_svg([float(s.get("duration_s") or 0) for s in steps.values()], list(steps), width=200, height=40)
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted((r.get("metrics") or {}).items()) if isinstance(v, float))
        notes = "<br>".join(
            f"<span class='{'bad' if a['severity'] == 'error' else 'warn'}'>{esc(a['code'])}</span> "
            f"{esc(a['column'])}: {esc(a['description'])}"
            for a in (r.get("anomalies") or [])[:8]
        )
        notes += "<br>".join(esc(x) for x in r.get("reasons", []))
        if r.get("error") and not notes:
            notes = esc(r["error"].get("message", ""))
        link = f"<a href='{esc(links[r['run_id']])}'>report</a>" if r["run_id"] in links else ""
        rows.append(
            [
                f"<code>{esc(r['run_id'])}</code>",
                f"<span class='{status_class.get(r.get('status', ''), '')}'>{esc(r.get('status'))}</span>",
                esc((r.get("trigger") or {}).get("key") or (r.get("trigger") or {}).get("reason", "")),
                f"{r.get('duration_s', 0):.2f}s",
                timing or "",
                metrics or "<span class='muted'>—</span>",
                notes or "<span class='muted'>—</span>",
                link or "<span class='muted'>—</span>",
            ]
        )
    body = [
        f"<p>Model <b>{esc(model)}</b>: {len(runs)} runs, {len(versions)} registered version(s).</p>",
        "<h2>Runs</h2>",
        table(["run", "status", "trigger", "time", "step timings", "test metrics", "anomalies / reasons", ""], rows),
        "<h2>Model versions</h2>",
        table(
            ["version", "status", "run", "family", "metric", "value", "created"],
            [
                [
                    v["version"],
                    v.get("status"),
                    f"<code>{esc(v.get('run_id'))}</code>",
                    v.get("family"),
                    v.get("metric"),
                    (v.get("metrics") or {}).get(v.get("metric", ""), ""),
                    v.get("created_at"),
                ]
                for v in versions
            ],
        ),
        "<h2>Promotion history</h2>",
        table(
            ["at", "action", "alias", "version", "previous", "actor", "reason"],
            [
                [
                    h["at"],
                    h["action"],
                    h.get("alias"),
                    h["version"],
                    h.get("previous") or "",
                    h.get("actor"),
                    h.get("reason"),
                ]
                for h in history
            ],
        ),
    ]
    return page(f"serverless-mlops lifecycle — {model}", "".join(body))
