"""``mlops demo``: the lifecycle as a story a newcomer can follow — offline, through the real state machine.

It starts the emulator (the synthesized stacks on a local endpoint), uploads data to the landing bucket
and lets each upload trigger a run, exactly as in AWS: S3 → EventBridge → trigger → Step Functions →
one Lambda handler per step.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any

import typer

from mlops.core.config import ProjectConfig
from mlops.reports.site import write_sites
from mlops.tools.platform import LIVENESS_S
from mlops.tools.samples import bundled, corrupt, degrade_labels, example_config_path, example_feature_store

# The feature store's chapter: the example model on the example feature set (models/examples/churn.yaml).
FEATURE_MODEL_PATH = example_config_path("examples/churn")
FEATURE_SET, ENTITY_KEY = "customers", "customer_id"


def say(text: str = "", **style: Any) -> None:
    typer.secho(text, **style)


def headline(n: int, text: str) -> None:
    say(f"\n[{n}] {text}", bold=True, fg=typer.colors.CYAN)


def _await_version(p: Any, records: list[dict[str, Any]], old: int, timeout: float = LIVENESS_S) -> int:
    """Poll the API until it answers from a version other than ``old`` (the cache interval at most)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        version = int(p.predict(records)["model_version"])
        if version != old:
            return version
        time.sleep(0.5)
    return old


def alarm_line(label: str, alarm: dict[str, Any], width: int = 110) -> str:
    """An alarm's state and its whole reason, wrapped at word boundaries under the label (never cut mid-word)."""
    text = f"{label}: {alarm.get('StateValue')} — {alarm.get('StateReason', '')}"
    return textwrap.fill(text, width=width, initial_indent="    ", subsequent_indent="      ", break_long_words=False)


def run_usage(p: Any, run: dict[str, Any]) -> dict[str, int]:
    """What a run cost in the units AWS bills: the state machine's Lambda invocations (steps, trials and warm-ups)
    and state transitions (states entered), from its execution history."""
    sfn, events = p.client("stepfunctions"), []
    request: dict[str, Any] = {"executionArn": run["execution_arn"], "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**request)
        events += page["events"]
        if not page.get("nextToken"):
            break
        request["nextToken"] = page["nextToken"]
    return {
        "invocations": sum(e["type"] == "LambdaFunctionScheduled" for e in events),
        "transitions": sum(e["type"].endswith("StateEntered") for e in events),
    }


def say_usage(p: Any, run: dict[str, Any]) -> None:
    if run.get("execution_arn"):
        usage = run_usage(p, run)
        say(
            f"    cost: {usage['invocations']} Lambda invocations by the state machine (and the trigger's), "
            f"{usage['transitions']} state transitions"
        )


def drifted(frame: Any) -> Any:
    """Upstream starts sending six size features in other units: values 60 % larger."""
    out = frame.copy()
    for col in ("mean_radius", "mean_perimeter", "mean_area", "worst_radius", "worst_perimeter", "worst_area"):
        out[col] = out[col] * 1.6
    return out


def _close_the_loop(cloud: Any, p: Any, config: ProjectConfig, data: Any, sample: list[Any]) -> list[dict[str, Any]]:
    """Steps 8-10: capture and the hourly monitor; drift fires the alarm; the alarm retrains."""
    from mlops.tools.display import show_monitor, show_run, step_line

    features = data.drop(columns=[config.target])
    monitors: list[dict[str, Any]] = []

    def serve(frame: Any) -> list[dict[str, Any]]:
        return [p.predict(frame.iloc[i : i + 50].to_dict("records")) for i in range(0, len(frame), 50)]

    def hour_passes() -> None:
        cloud.tick(advance_s=3600)  # the emulated clock: the monitor's rate(1 hour) schedule is due
        summary = p.latest_monitor() or {}
        if not summary:
            say("    the monitor wrote no summary (its errors: .mlops/logs/emulator.log)", fg=typer.colors.RED)
            return
        monitors.append(summary)
        show_monitor(summary)

    mon = config.monitoring
    headline(8, f"Production traffic is captured ({mon.capture_sample:.0%}) and judged every hour")
    served = serve(features.iloc[250:450])
    say(f"    {sum(len(a['predictions']) for a in served)} predictions over HTTP → serve log → capture → S3")
    hour_passes()

    headline(9, "Upstream changes units on six features; labels arrive for what was served")
    changed = drifted(features.iloc[:300])
    answers = serve(changed)
    truth = data[config.target].iloc[:300].tolist()
    labels = [
        {"request_id": a["request_id"], "row": r, "label": truth[50 * k + r]}
        for k, a in enumerate(answers)
        for r in range(len(a["predictions"]))
    ]
    accepted = p.feedback(labels)["accepted"]
    say(f"    {len(changed)} drifted predictions; POST /feedback with {accepted} ground-truth labels")
    for _ in range(mon.alarm_windows):
        hour_passes()
    drift_alarm: dict[str, Any] = next((a for a in p.alarms() if a["AlarmName"] == p.alarm_name("DriftAlarm")), {})
    alarmed = drift_alarm.get("StateValue") == "ALARM"
    say(alarm_line("drift alarm", drift_alarm), fg=typer.colors.RED if alarmed else None)

    headline(10, "The alarm retrains: EventBridge → trigger (cooldown, lock) → the same state machine")
    alarm_runs = [r for r in p.runs(20) if (r.get("trigger") or {}).get("reason") == "alarm"]
    if not alarm_runs:
        say("    no alarm-started run (the alarm did not fire)", fg=typer.colors.YELLOW)
        return monitors
    before = p.champion()
    run = p.wait(alarm_runs[0]["run_id"], on_step=step_line, timeout=600)
    show_run(run, steps=False)
    say_usage(p, run)
    rows = (run.get("steps", {}).get("extract") or {}).get("outputs", {}).get("rows")
    say(f"    trained on {rows} rows: the prefix plus {accepted} labelled production records")
    after = p.champion()
    if after != before:
        say(f"    champion v{before} → v{after}", fg=typer.colors.GREEN, bold=True)
        _await_version(p, sample[:1], int(before or 0))
        serve(changed.iloc[:200])
        hour_passes()
        say(
            "    the new champion's training data is still mostly in the old units, so the monitor keeps\n"
            "    reporting drift against it; the cooldown holds further alarm runs for "
            f"{mon.cooldown_hours:g} h (monitoring.cooldown_hours)",
            fg=typer.colors.YELLOW,
        )
    else:
        say(f"    not promoted; champion still v{after}", fg=typer.colors.YELLOW)
    return monitors


def start_feature_store_run(c: Any) -> tuple[dict[str, Any], str]:
    """The customers feature set uploaded and ingested (offline Parquet, the online table), then the churn model's
    labelled events uploaded: the run that joins them point-in-time. The ingestion's receipt and the run's id."""
    from mlops.core.clock import utcnow

    features, labels = example_feature_store(utcnow())
    source = c.feature_sets().get(FEATURE_SET).source
    up = c.upload(features.to_csv(index=False).encode(), f"{source}customers.csv")
    receipt = c.wait_for_ingestion(FEATURE_SET, up["etag"], up["key"])
    key = f"{c.config().data.prefix}labels.csv"
    up = c.upload(labels.to_csv(index=False).encode(), key)
    return receipt, c.run_for_upload(key, up["etag"])


def serve_by_entity(c: Any, entity: str) -> dict[str, Any]:
    """The champion's answer for a record carrying only the entity's key, and for the same record with the online
    store's values sent in full: they must be the same answer."""
    by_entity = c.predict([{ENTITY_KEY: entity}])
    online = c.online_features(FEATURE_SET, entity)
    full = c.predict([{ENTITY_KEY: entity, **online["values"]}])
    return {"by_entity": by_entity, "full": full, "online": online}


def _feature_store_chapter(n: int, c: Any) -> None:
    """A short chapter: features uploaded by customer, a model trained on labels joined as of their time, and one
    prediction asked for by customer id over HTTP."""
    from mlops.tools.display import show_run

    headline(n, "The feature store: customer features by id, a model trained on labels joined point-in-time")
    receipt, run_id = start_feature_store_run(c)
    say(
        f"    customers feature set: {receipt['rows']} rows ingested → {len(receipt['partitions'])} offline "
        f"partitions, {receipt['online_written']} customers' latest values in the online table"
    )
    record = c.wait(run_id)
    show_run(record, steps=False)
    rows = (record.get("steps", {}).get("extract") or {}).get("outputs", {}).get("rows")
    say(f"    {c.model}: {rows} labelled events, each joined to the features as of its time; champion v{c.champion()}")
    answer = serve_by_entity(c, "c001")
    got, sent = answer["by_entity"], answer["full"]
    probs = ", ".join(f"{k}: {v:.3f}" for k, v in got["predictions"][0]["probabilities"].items())
    looked = got["lookups"][0][FEATURE_SET]
    say(
        f'    POST /models/{c.model}/predict {{"{ENTITY_KEY}": "c001"}} → {got["predictions"][0]["prediction"]} '
        f"({probs}); looked up: {looked['status']}"
    )
    same = got["predictions"] == sent["predictions"]
    say(
        f"    the same customer's features sent in full → {'the same answer' if same else 'A DIFFERENT ANSWER'}",
        fg=typer.colors.GREEN if same else typer.colors.RED,
    )
    if not same:
        raise typer.Exit(1)


def run_demo(config: ProjectConfig, config_path: Path, out: Path, companion_path: Path | None = None) -> Path:
    """Train, break, retrain, serve, drift, retrain on the alarm; write both models' report sites under ``out``
    and return the home page's path.
    A companion model (default: the bundled diabetes regressor) shares the emulator: both train from uploads
    in the same second, side by side, and both are served on their own routes."""
    from mlops.core.config import load_config
    from mlops.local.emulator import LocalCloud
    from mlops.tools.display import show_run, step_line
    from mlops.tools.platform import Platform

    t_start = time.perf_counter()
    say("Starting offline AWS (moto) from the CDK app's synthesized templates…")
    os.environ.setdefault("MLOPS_MODEL_CACHE_SECONDS", "2")  # the demo shows switches quickly
    companion_path = companion_path or example_config_path("diabetes")
    companion = load_config(companion_path)
    with LocalCloud([config_path, companion_path, FEATURE_MODEL_PATH], port=0) as cloud:
        platform = Platform.connect(cloud.env, cloud.endpoint)
        p, q = platform.for_model(config.name), platform.for_model(companion.name)
        c = platform.for_model(load_config(FEATURE_MODEL_PATH).name)
        headline(1, f"Offline AWS is up at {cloud.endpoint} ({time.perf_counter() - t_start:.1f}s)")
        say(
            f"    two models, one platform: {config.name} ({config.task or 'inferred'}) and {companion.name} "
            f"({companion.task or 'inferred'}) share one state machine, one trigger, one API (and {c.model}, "
            f"on the {FEATURE_SET} feature set: chapter 11)"
        )
        say(f"    landing bucket {p.output('LandingBucket')}, state machine {p.output('StateMachineArn')}")
        say(
            f"    {len([k for k in p.outputs if k.startswith('Function')]) + 1} Lambda functions served by the real "
            "handlers in functions/"
        )

        def upload_and_follow(name: str, body: bytes, why: str) -> dict[str, Any]:
            key = f"{config.data.prefix}{name}"
            up = p.upload(body, key)
            say(f"    uploaded s3://{up['bucket']}/{key} ({len(body):,} bytes) — {why}")
            run_id = p.run_for_upload(key, up["etag"])
            say(f"    S3 → EventBridge → trigger started run {run_id}")
            record = p.wait(run_id, on_step=step_line)
            show_run(record, steps=False)
            say_usage(p, record)
            return record

        data = bundled("breast-cancer").sample(frac=1.0, random_state=3).reset_index(drop=True)
        first = data.iloc[:400]
        headline(
            2,
            f"First data for both models in the same second: 400 rows of breast-cancer ({data.shape[1] - 1} "
            f"features), and the diabetes regression set",
        )
        side = bundled("diabetes")
        side_key = f"{companion.data.prefix}day-001.csv"
        side_up = q.upload(side.to_csv(index=False).encode(), side_key)
        say(f"    uploaded s3://{side_up['bucket']}/{side_key} ({len(side)} rows) — {companion.name}'s first data")
        side_run = q.run_for_upload(side_key, side_up["etag"])
        upload_and_follow("batch-001.csv", first.to_csv(index=False).encode(), "the first batch")
        side_record = q.wait(side_run)
        say(f"    {'model':<15} {'run':<28} {'status':<10} {'champion':<9} test metric")
        for who, record in ((p, p.runs(1)[0]), (q, side_record)):
            version = who.champion()
            metrics = (who.version(version) if version else {}).get("metrics") or {}
            metric = (who.version(version) if version else {}).get("metric", "")
            value = f"{metric} {metrics[metric]:.4f}" if metric in metrics else ""
            say(
                f"    {who.model:<15} {record['run_id']:<28} {record['status']:<10} v{version or '-':<8} {value}",
                fg=typer.colors.GREEN,
            )

        headline(3, "A broken batch: a column went missing and another turned to text upstream")
        broken = corrupt(corrupt(first, "drop", "mean_radius"), "to_text", "worst_area", fraction=0.4)
        upload_and_follow("batch-002.csv", broken.to_csv(index=False).encode(), "corrupted")
        say(f"    the run stopped before training; champion still v{p.champion()}", fg=typer.colors.GREEN)

        headline(4, "A batch with 45% of its labels scrambled: the data is valid, the model is worse")
        noisy = degrade_labels(first, config.target, 0.45, seed=7)
        upload_and_follow("batch-003.csv", noisy.to_csv(index=False).encode(), "noisy labels")
        say(f"    not blessed; champion still v{p.champion()}", fg=typer.colors.GREEN)

        headline(5, f"A good new batch: the first rows plus {len(data) - 400} new ones")
        upload_and_follow("batch-004.csv", data.to_csv(index=False).encode(), "a clean, larger batch")
        say(f"    champion: v{p.champion()}", fg=typer.colors.GREEN, bold=True)

        headline(6, f"Serving both champions over HTTP: {p.output('ApiUrl')}/models/{{name}}/predict")
        sample = data.drop(columns=[config.target]).iloc[400:403].to_dict("records")
        answer = p.predict(sample)
        for row, pred in zip(data.iloc[400:403][config.target], answer["predictions"], strict=True):
            probs = ", ".join(f"{k}: {v:.3f}" for k, v in pred["probabilities"].items())
            say(f"    v{answer['model_version']} → {pred['prediction']} ({probs}); truth {row}")
        route = f"/models/{config.name}/predict"
        status, body = p.api_request("POST", route, {"records": [{**sample[0], "mean_radius": "large"}]})
        say(f"    a bad record → HTTP {status}: {body['message']}", fg=typer.colors.YELLOW)
        side_rows = side.drop(columns=[companion.target]).iloc[:2].to_dict("records")
        side_answer = q.predict(side_rows)
        for truth, pred in zip(side[companion.target].iloc[:2], side_answer["predictions"], strict=True):
            say(
                f"    {companion.name} v{side_answer['model_version']} (POST /models/{companion.name}/predict) → "
                f"{pred['prediction']:.1f}; truth {truth:.1f}"
            )

        headline(7, "Rollback in one call, effective within the cache interval (no redeploy)")
        before = p.predict(sample[:1])["model_version"]
        p.rollback(reason="demo: back to the previous champion", actor="demo")
        after = _await_version(p, sample[:1], before)
        say(f"    served v{before} → rollback → served v{after}", fg=typer.colors.GREEN)
        p.promote(before, reason="demo: forward again", actor="demo")
        again = _await_version(p, sample[:1], after)
        say(f"    promote v{before} → served v{again}", fg=typer.colors.GREEN)

        _close_the_loop(cloud, p, config, data, sample)
        _feature_store_chapter(11, c)

        runs, versions = p.runs(50), p.versions()
        for old in out.glob("*.html") if out.is_dir() else ():  # an earlier demo's flat report
            old.unlink()
        report = write_sites(
            p.stores, [p.model, q.model, c.model], out, title="serverless-mlops demo", catalog=platform.catalog()
        )
        from mlops.local import seams

        say(
            f"\nDone in {time.perf_counter() - t_start:.1f}s: {len(runs)} runs through the state machine, "
            f"{len(versions)} model version(s), champion v{p.champion()}; {companion.name}: champion "
            f"v{q.champion()}; {c.model}: champion v{c.champion()}; {len(seams.invocations)} Lambda invocations in all."
        )
    return report


def run_project(project: Any, out: Path, env: str = "dev") -> Path:
    """A project's own lifecycle offline (``mlops demo`` inside a project made by ``mlops init``): the emulator from
    the platform's stacks with the project's models and components; each model's sample uploaded under its prefix
    (S3 → EventBridge → trigger → the state machine), its run followed step by step; then a few of its rows, raw as
    a caller sends them, answered over HTTP by the champion's ONNX graph — the project's feature components in it;
    and the report sites written under ``out``."""
    from mlops.core.config import load_config
    from mlops.local.emulator import LocalCloud
    from mlops.tools.display import show_run, step_line
    from mlops.tools.platform import Platform
    from mlops.tools.samples import sample_frame

    t_start = time.perf_counter()
    say(f"Starting offline AWS (moto) with the project at {project.root}…")
    with LocalCloud(None, port=0, env=env, project=project) as cloud:
        platform = Platform.connect(cloud.env, cloud.endpoint)
        configs = [load_config(path) for path in cloud.config_paths]
        headline(1, f"Offline AWS is up at {cloud.endpoint} ({time.perf_counter() - t_start:.1f}s)")
        samples = {c.name: sample_frame(c, project) for c in configs}
        trained = []
        for step, config in enumerate(configs, start=2):
            frame = samples[config.name]
            if frame is None:
                say(f"    {config.name}: no data.sample to train on (set it in its YAML)", fg=typer.colors.YELLOW)
                continue
            p = platform.for_model(config.name)
            key = f"{config.data.prefix}sample.csv"
            body = frame.to_csv(index=False).encode()
            headline(step, f"{config.name}: its sample ({len(frame):,} rows) uploaded to s3://…/{key}")
            up = p.upload(body, key)
            record = p.wait(p.run_for_upload(key, up["etag"]), on_step=step_line)
            show_run(record, steps=False)
            say_usage(p, record)
            if p.champion() is not None:
                trained.append((config, p, frame))
        for config, p, frame in trained:
            records = frame.drop(columns=[config.target]).head(3)
            rows = [{k: (None if v != v else v) for k, v in r.items()} for r in records.to_dict("records")]
            answer = p.predict(rows)
            say(f"\n    POST /models/{config.name}/predict with {len(rows)} raw rows → v{answer['model_version']}:")
            for row, got in zip(rows, answer["predictions"], strict=False):
                say(f"      {row} → {got.get('prediction')}")
        report = write_sites(platform.stores, [c.name for c, _, _ in trained] or [configs[0].name], out)
        say(f"\nDone in {time.perf_counter() - t_start:.1f}s: {len(trained)} of {len(configs)} model(s) served.")
    return report
