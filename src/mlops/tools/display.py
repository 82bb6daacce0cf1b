"""How the CLI and the demo print a run, its steps and a monitored window (one place, for both)."""

from __future__ import annotations

import json
from typing import Any

import typer


def event_line(event: dict[str, Any]) -> str:
    """One platform event on a line: when, what, which model, and its facts."""
    detail = dict(event.get("detail") or {})
    keys = ("run_id", "status", "version", "previous", "action", "actor", "trigger", "judged", "drifted_features")
    facts = " ".join(f"{k}={detail[k]}" for k in keys if detail.get(k) not in (None, [], ""))
    why = detail.get("error") or detail.get("reason") or "; ".join(detail.get("reasons") or [])
    return f"{detail.get('at', event.get('time'))}  {event.get('detail-type'):<24} {detail.get('model')}  {facts}" + (
        f"  — {why}" if why else ""
    )


def emit(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _num(value: Any) -> str:
    """A metric as the other figures print: four decimals (0.956140350877193 → 0.9561); anything else as is."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def step_line(name: str, step: dict[str, Any]) -> None:
    ok = step.get("status") == "SUCCEEDED"
    mark = typer.style("✔" if ok else "✘", fg=typer.colors.GREEN if ok else typer.colors.RED)
    extra = ""
    outputs = step.get("outputs") or {}
    for key in ("rows", "num_errors", "value", "version", "best_trial"):
        value = outputs.get(key)
        if isinstance(value, float):
            extra += f" {key}={value:.4f}"
        elif isinstance(value, dict):
            extra += f" {key}=" + "/".join(str(v) for v in value.values())
        elif value is not None:
            extra += f" {key}={value}"
    if step.get("error"):
        extra += f" {step['error'].get('type')}: {step['error'].get('message', '')[:120]}"
    typer.echo(f"  {mark} {name:<15} {step.get('duration_s', 0):6.2f}s{extra}")


def data_lines(run: dict[str, Any]) -> None:
    """What a run read, what it set aside and what it skipped (quarantined by earlier runs)."""
    keys = [o["key"] for o in run.get("objects") or []]
    if keys:
        typer.echo(f"  data: {len(keys)} object(s): {', '.join(keys[:4])}" + (" …" if len(keys) > 4 else ""))
    for aside in run.get("set_aside") or []:
        problems = "; ".join(
            f"{a['code']} {a.get('column') or ''}".strip() + f": {a['description']}"
            for a in aside.get("anomalies") or []
        )
        typer.secho(f"  set aside {aside['key']} (the run went on without it): {problems}", fg=typer.colors.YELLOW)
    for gone in run.get("missing") or []:
        typer.secho(f"  missing {gone['key']} (the run went on without it): {gone['message']}", fg=typer.colors.YELLOW)
    if (run.get("trigger") or {}).get("retry_of"):
        without = ", ".join(run["trigger"].get("without") or [])
        typer.echo(f"  retry of run {run['trigger']['retry_of']}, without {without}")
    for skipped in run.get("skipped") or []:
        typer.secho(
            f"  skipped {skipped['key']}: quarantined by run {skipped.get('rejected_by')} ({skipped.get('reason')})",
            fg=typer.colors.YELLOW,
        )


def show_run(run: dict[str, Any], steps: bool = True) -> None:
    color = {"SUCCEEDED": typer.colors.GREEN, "FAILED": typer.colors.RED, "REJECTED": typer.colors.YELLOW}
    typer.secho(f"run {run['run_id']}: {run.get('status')}", bold=True, fg=color.get(run.get("status", "")))
    trig = run.get("trigger") or {}
    typer.echo(f"  trigger: {trig.get('reason')} {trig.get('key') or trig.get('time') or ''}".rstrip())
    for name, step in run.get("steps", {}).items() if steps else ():
        step_line(name, step)
    data_lines(run)
    trials = run.get("trials") or {}
    if trials:
        from mlops.core.config import HIGHER_IS_BETTER

        scored = [t for t in trials.values() if t.get("value") is not None]
        pick = max if scored and HIGHER_IS_BETTER.get(scored[0].get("metric", ""), True) else min
        best = pick(scored, key=lambda t: t["value"], default=None)
        typer.echo(
            f"  trials: {len(trials)} ({', '.join(sorted({t['family'] for t in trials.values()}))})"
            + (f"; best validation {best['metric']} {best['value']:.4f}" if best else "")
        )
    anomalies = sorted(run.get("anomalies") or [], key=lambda a: a["severity"] != "error")
    for a in anomalies[:6]:
        typer.secho(
            f"  anomaly [{a['severity']}] {a['code']} {a['column']}: {a['description']}"
            + (
                f" (in {', '.join(a['objects'][:4])}{' …' if len(a['objects']) > 4 else ''})"
                if a.get("objects")
                else ""
            ),
            fg=typer.colors.RED if a["severity"] == "error" else typer.colors.YELLOW,
        )
    if len(anomalies) > 6:
        typer.echo(f"  … and {len(anomalies) - 6} more (mlops runs show {run['run_id']} --json)")
    if run.get("metrics"):
        typer.echo("  test metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(run["metrics"].items())))
    for reason in run.get("reasons") or []:
        typer.secho(f"  not blessed: {reason}", fg=typer.colors.YELLOW)
    if run.get("error"):
        typer.secho(f"  error: {run['error'].get('type')}: {run['error'].get('message')}", fg=typer.colors.RED)
    if run.get("quarantined"):
        typer.secho(
            f"  quarantined: {', '.join(run['quarantined'])} (prefix and scheduled runs skip them until each is "
            "replaced, or `mlops quarantine release`)",
            fg=typer.colors.YELLOW,
        )
    if run.get("retried_as"):
        typer.echo(f"  retried without them: execution {run['retried_as']}")
    if run.get("model_version"):
        typer.echo(f"  model version: v{run['model_version']}")


def show_monitor(summary: dict[str, Any], as_json: bool = False) -> None:
    if as_json:
        emit(summary)
        return
    window = summary.get("window") or {}
    typer.echo(
        f"{summary.get('model')} v{summary.get('version', '?')}: window {window.get('start')} → {window.get('end')}"
    )
    if not summary.get("judged"):
        typer.secho(f"  not judged: {summary.get('reason') or summary.get('status')}", fg=typer.colors.YELLOW)
        return
    drift = summary.get("drift") or {}
    flag = typer.colors.RED if summary.get("drifted") else typer.colors.GREEN
    typer.secho(
        f"  {summary['records']} records; drift: {len(drift.get('drifted', []))} feature(s) "
        f"{', '.join(drift.get('drifted', [])[:6])} (score {_num(drift.get('score'))})",
        fg=flag,
    )
    pred = summary.get("prediction_drift") or {}
    if pred:
        typer.echo(f"  prediction drift: {pred['measure']} {pred['value']} (threshold {pred['threshold']})")
    typer.echo(f"  data quality: {(summary.get('data_quality') or {}).get('errors', 0)} error(s)")
    q = summary.get("quality") or {}
    if q.get("judged") and q.get("live") is not None:
        color = typer.colors.RED if q.get("degraded") else typer.colors.GREEN
        typer.secho(
            f"  live {q['metric']}: {q['live']:.4f} on {q['labelled']} labels; champion {_num(q.get('champion'))}; "
            f"shortfall {_num(q.get('shortfall'))} (margin {q.get('margin')})",
            fg=color,
        )
    else:
        typer.echo(f"  live quality: not judged ({q.get('reason', 'no labels')})")
    est = summary.get("estimate") or {}
    if est.get("accuracy") is not None:
        low, high = est["accuracy_band"]
        realized = (est.get("realized") or {}).get("accuracy")
        typer.echo(
            f"  estimated accuracy (before labels): {est['accuracy']:.4f} [{low:.4f}, {high:.4f}] on {est['rows']} "
            f"predictions" + (f"; realized {realized:.4f}" if realized is not None else "")
        )
    report = (summary.get("report") or {}).get("uri")
    if report:
        typer.echo(f"  report: {report}")
