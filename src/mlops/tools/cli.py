"""The ``mlops`` command line: the same commands against the offline emulator and a deployed stack.

Target selection: ``--target local`` (default; the endpoint started by ``mlops local up``, found in
``.mlops/local.json``, or ``--endpoint``) or ``--target aws`` (stack outputs of ``Mlops-<env>-*`` with
the default credential chain). ``MLOPS_TARGET`` / ``MLOPS_ENV`` set the defaults.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from mlops.core.config import ConfigError, load_config
from mlops.tools.display import emit, event_line, show_monitor, show_run, step_line
from mlops.tools.samples import example_config_path

app = typer.Typer(
    help="serverless-mlops: continuous training and serving on AWS serverless — offline too.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check the project configuration.", no_args_is_help=True)
local_app = typer.Typer(help="The offline AWS emulator.", no_args_is_help=True)
runs_app = typer.Typer(help="Pipeline runs: status, steps, anomalies, metrics.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry: versions, champion, promotion, rollback.", no_args_is_help=True)
schema_app = typer.Typer(
    help="The data schema runs validate against: show it, or push an edited one.", no_args_is_help=True
)


def _version(value: bool) -> None:
    if value:
        from mlops import __version__

        typer.echo(f"serverless-mlops {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """serverless-mlops: continuous training and serving on AWS serverless — offline too."""


app.add_typer(config_app, name="config")
app.add_typer(local_app, name="local")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(schema_app, name="schema")
events_app = typer.Typer(help="The platform's events on EventBridge (runs, versions, champions, windows).")
app.add_typer(events_app, name="events")
component_app = typer.Typer(help="Your own components: check one before a pipeline runs it.", no_args_is_help=True)
app.add_typer(component_app, name="component")
quarantine_app = typer.Typer(
    help="Objects a run rejected: prefix and scheduled runs skip them until replaced or released.",
    no_args_is_help=True,
)
app.add_typer(quarantine_app, name="quarantine")
features_app = typer.Typer(
    help="The feature store: feature sets, their versions and users, ingestion, online values.", no_args_is_help=True
)
app.add_typer(features_app, name="features")
monitor_app = typer.Typer(
    help="The monitor: drift, data quality and live quality of served traffic.", no_args_is_help=True
)
app.add_typer(monitor_app, name="monitor")

EXAMPLE_CONFIG = example_config_path()
COMPANION_CONFIG = example_config_path("diabetes")
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Project config (YAML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
TargetOpt = Annotated[str, typer.Option("--target", "-t", envvar="MLOPS_TARGET", help="local | aws")]
EnvOpt = Annotated[str, typer.Option("--env", "-e", envvar="MLOPS_ENV", help="Deployment environment (cdk.json).")]
EndpointOpt = Annotated[str | None, typer.Option("--endpoint", envvar="MLOPS_ENDPOINT", help="Local endpoint URL.")]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", envvar="MLOPS_MODEL", help="The model (default: the deployment's only one)."),
]


STILL_RUNNING = 3  # the exit code of a command that stopped waiting while its run goes on
WaitOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Stop waiting after this many seconds (0: until the run ends). The run goes on; the command says how "
        f"to follow it and exits {STILL_RUNNING}.",
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def reported(*extra: type[Exception]) -> Iterator[None]:
    """Turn a PlatformError (and any ``extra`` error types) into a one-line failure with a non-zero exit."""
    from mlops.tools.platform import PlatformError

    caught: tuple[type[Exception], ...] = (PlatformError, *extra)
    try:
        yield
    except caught as err:
        fail(str(err))


def platform(target: str, env: str, endpoint: str | None, model: str | None = None, *, one: bool = True) -> Any:
    """The target's platform, about ``model`` (``one``: a command about one model, which needs the name when
    the deployment has several; a clear error names them)."""
    from mlops.tools.platform import Platform, PlatformError

    try:
        if target == "aws":
            p = Platform.connect(env)
        elif target != "local":
            fail(f"--target must be 'local' or 'aws', not '{target}'")
        else:
            p = Platform.connect(env, endpoint) if endpoint else Platform.local()
        return p.for_model(model) if (one or model) else p
    except PlatformError as err:
        fail(str(err))


def actor() -> str:
    return os.environ.get("MLOPS_ACTOR") or os.environ.get("USER") or "cli"


# -- config -------------------------------------------------------------------------
@config_app.command("check")
def config_check(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="One model's YAML. Default: every model of the project.")
    ] = None,
    env: EnvOpt = "dev",
    as_json: JsonOpt = False,
) -> None:
    """Validate a model's config, or every model of the project's environment together (unique names, prefixes no
    upload falls under twice), and that each component they name imports; print the resolved values."""
    from mlops.components import component_problems
    from mlops.core.config import load_models
    from mlops.core.project import Project, ProjectNotFoundError

    try:
        project = Project.find(config.resolve().parent) if config else Project.find()
    except ProjectNotFoundError as err:
        if config is None:
            fail(str(err))
        project = None
    try:
        sets = project.feature_set_paths(env) if project else []
        models = load_models([config] if config else project.model_paths(env), sets)  # type: ignore[union-attr]
    except (ConfigError, ValueError) as err:
        fail(str(err))
        return
    problems = component_problems(models, project.root if project else None)
    if as_json:
        emit({name: cfg.model_dump(mode="json") for name, cfg in models.configs.items()})
    for name, cfg in models.configs.items():
        if not as_json:
            typer.echo(f"{models.sources[name]}: valid (model '{name}', config hash {cfg.config_hash()[:12]})")
    for fs in models.feature_sets if not as_json else ():
        typer.echo(f"{models.feature_sets.sources[fs.name]}: valid (feature set '{fs.name}')")
    if problems:
        fail("; ".join(problems))


# -- local ------------------------------------------------------------------------------
ConfigsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--config", "-c", help="A model config (YAML) or a folder of them; repeatable. Default: the project's models."
    ),
]


@local_app.command("up")
def local_up(
    config: ConfigsOpt = None,
    port: Annotated[int, typer.Option(help="AWS endpoint port on 127.0.0.1 (0: any free port).")] = 4566,
    api_port: Annotated[int, typer.Option(help="Prediction API port on 127.0.0.1 (0: any free port).")] = 4567,
    env: EnvOpt = "dev",
) -> None:
    """Start the emulator in the foreground: an AWS endpoint and the prediction API on 127.0.0.1."""
    from mlops.local.emulator import LocalCloud

    try:
        cloud = LocalCloud(list(config) if config else None, port=port, env=env, api_port=api_port)
        cloud.start()
    except (RuntimeError, OSError, ConfigError) as err:
        fail(f"could not start the emulator: {err}")
    outputs = {k: v for stack in cloud.p.outputs.values() for k, v in stack.items()}
    typer.secho(f"serverless-mlops offline AWS at {cloud.endpoint}", bold=True)
    typer.echo(f"  state machine    {outputs['StateMachineArn']}   (one, for every model)")
    for path in cloud.config_paths:
        model = load_config(path)
        typer.echo(
            f"  model {model.name:<10} s3://{outputs['LandingBucket']}/{model.data.prefix}  →  "
            f"{outputs['ApiUrl']}/models/{model.name}/predict"
        )
    typer.echo(f"  prediction API   {outputs['ApiUrl']}   (GET /models, /health, /openapi.json)")
    typer.echo("  first champion   mlops run --sample --model <name>   (the model's sample data)")
    typer.echo(f"  try              aws --endpoint-url {cloud.endpoint} s3 ls")
    typer.echo("  state            a fresh, empty account: in memory, and stopping discards it")
    typer.echo('  AWS CLI          eval "$(mlops local env)"   (endpoint and dummy credentials)')
    typer.echo("Press Ctrl+C to stop.")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        typer.echo("stopping…")
    finally:
        cloud.stop()


@local_app.command("env")
def local_env(endpoint: EndpointOpt = None) -> None:
    """The exports that point the AWS CLI and SDKs at the running emulator: eval "$(mlops local env)"."""
    from mlops.local.emulator import REGION, read_local_file

    info = read_local_file()
    url = endpoint or (info or {}).get("endpoint")
    if not url:
        fail("no local endpoint is running: start one with `mlops local up`")
    for name, value in {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "offline",  # any value: the emulator checks no signature
        "AWS_SECRET_ACCESS_KEY": "offline",
        "AWS_DEFAULT_REGION": (info or {}).get("region", REGION),
    }.items():
        typer.echo(f"export {name}={value}")


@local_app.command("tick")
def local_tick(
    rule: Annotated[str | None, typer.Option(help="Only this rule (fired whatever its schedule).")] = None,
    advance: Annotated[
        str | None,
        typer.Option(help="Move the emulated clock forward first (e.g. 1h, 30m, 7d); fire only the rules then due."),
    ] = None,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
) -> None:
    """Fire scheduled rules on the running emulator (as EventBridge's scheduler would), then evaluate alarms; print
    every alarm state change since the previous tick (the emulator's own evaluations' too)."""
    from datetime import UTC, datetime, timedelta

    from mlops.core.clock import schedule_period_s
    from mlops.local.cloudwatch import AlarmEvaluator, alarm_state_changes
    from mlops.local.emulator import (
        clock_lock,
        mark_reported,
        read_clock_offset,
        read_settled_offset,
        reported_until,
        settle_clock,
        write_clock_offset,
    )
    from mlops.local.targets import target_input

    p = platform("local", "dev", endpoint, one=False)
    step = _duration_s(advance) if advance else 0
    where = p.endpoint or ""
    # Alarms stay evaluated at the previous tick's time until the schedules below have run (settle_clock).
    offset = write_clock_offset(where, step, settle=False) if step else read_clock_offset(where)
    now = datetime.now(UTC) + timedelta(seconds=offset)
    client = p.client("events")
    fired = 0
    for r in (r for r in client.list_rules()["Rules"] if r.get("ScheduleExpression")):
        if rule and r["Name"] != rule:
            continue
        if step and not rule and schedule_period_s(r["ScheduleExpression"]) > step:
            continue  # not due within this advance
        event = {
            "version": "0",
            "id": f"tick-{time.time_ns()}",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": p.session.region_name,
            "resources": [r["Arn"]],
            "detail": {},
        }
        for target in client.list_targets_by_rule(Rule=r["Name"])["Targets"]:
            # Synchronously: the monitor's metrics are published before the alarms are evaluated.
            payload = target_input(target, event)  # e.g. the model's schedule names it in detail.model
            p.client("lambda").invoke(FunctionName=target["Arn"], Payload=json.dumps(payload))
            typer.echo(f"fired {r['Name']} → {target['Arn'].rsplit(':', 1)[-1]}")
            fired += 1
    time.sleep(1.0)  # the emulator publishes service metrics in the background, twice a second
    settle_clock(where)
    evaluator = AlarmEvaluator(
        p.client("cloudwatch"),
        p.client("sns"),
        lambda event: p.client("events").put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": event["resources"],
                    "Time": now,
                }
            ]
        ),
        lambda: datetime.now(UTC) + timedelta(seconds=read_settled_offset(where)),
        exclusive=lambda: clock_lock(where),
    )
    evaluator.evaluate()
    # Every change since the previous tick, whoever made it (this evaluation, the emulator's every few seconds).
    until = datetime.now(UTC) + timedelta(seconds=read_clock_offset(where))
    for change in alarm_state_changes(p.client("cloudwatch"), reported_until(where), until):
        typer.echo(
            f"alarm {change['alarm']}: {change['from']} → {change['to']} at {change['at']:%Y-%m-%dT%H:%M:%SZ} "
            f"({change['reason']})"
        )
    mark_reported(where, until)
    typer.echo(f"fired {fired} scheduled target(s) at {now:%Y-%m-%dT%H:%M:%SZ}")
    if not fired and not step:
        raise typer.Exit(1)


def _duration_s(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)
    except (ValueError, IndexError):
        fail(f"--advance: '{text}' is not a duration such as 90s, 30m, 1h or 7d")
        raise


# -- runs ---------------------------------------------------------------------------------
def _follow(p: Any, run_id: str, timeout: float, as_json: bool, until: set[str] | None = None) -> dict[str, Any]:
    """Wait for a run, printing each step as it finishes; past ``timeout`` say the run goes on and how to follow
    it, and exit STILL_RUNNING (a run outlives the command that started it: it runs in the state machine)."""
    from mlops.tools.platform import StillRunning

    try:
        record: dict[str, Any] = p.wait(
            run_id, timeout=timeout or None, on_step=None if as_json else step_line, until=until
        )
    except StillRunning as err:
        where = (f" --target aws --env {p.env}" if not p.endpoint else "") + f" --model {p.model}"
        if as_json:
            emit({"run_id": run_id, "status": err.status, "still_running": True, "waited_s": err.waited_s})
        else:
            typer.secho(
                f"run {run_id} is still {err.status} after {err.waited_s:.0f}s: it goes on without this command.\n"
                f"  follow it:  mlops runs watch {run_id}{where}\n"
                f"  see it:     mlops runs show {run_id}{where}",
                fg=typer.colors.YELLOW,
            )
        raise typer.Exit(STILL_RUNNING) from None
    return record


def _upload_body(p: Any, data: Path | None, sample: bool) -> tuple[bytes, str] | None:
    """What ``mlops run`` uploads (bytes and file name): the file, the model's bundled example data (so a fresh
    emulator can train a first champion with nothing of one's own), or nothing (a run over the prefix)."""
    if data is not None and sample:
        fail("give --data FILE or --sample, not both")
    if data is not None:
        if not data.exists():
            fail(f"no such file: {data}")
        return data.read_bytes(), data.name
    if not sample:
        return None
    from mlops.tools.samples import sample_frame

    frame = sample_frame(p.config())
    if frame is None:
        fail(f"model '{p.model}' has no sample: set data.sample in its YAML, or give --data FILE")
    return frame.to_csv(index=False).encode(), "sample.csv"


@app.command()
def run(
    data: Annotated[Path | None, typer.Option(help="Upload this file to the landing bucket first.")] = None,
    sample: Annotated[
        bool,
        typer.Option("--sample", help="Upload the model's sample first (its data.sample, or the bundled data)."),
    ] = False,
    key: Annotated[str | None, typer.Option(help="Landing key (default: <prefix><file name>).")] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded in the run).")] = "",
    wait: Annotated[bool, typer.Option(help="Wait for the run to finish.")] = True,
    timeout: WaitOpt = 3600,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a run: upload a data file or the bundled sample (the upload triggers it), or request one over the
    configured prefix."""
    p = platform(target, env, endpoint, model)
    with reported():
        upload = _upload_body(p, data, sample)
        if upload is not None:
            body, name = upload
            config = p.config()
            landing_key = key or f"{config.data.prefix}{name}"
            from mlops.steps.trigger import why_no_run

            why = why_no_run(config, landing_key)
            if why:
                fail(f"s3://{p.output('LandingBucket')}/{landing_key} would start no run: {why}")
            up = p.upload(body, landing_key)
            if not as_json:
                typer.echo(f"uploaded s3://{up['bucket']}/{up['key']}")
            run_id = p.run_for_upload(up["key"], up["etag"])
        else:
            started = p.request_run(key=key, reason=reason)
            if started["status"] not in ("started", "deferred"):
                fail(f"no run started: {started}")
            run_id = started["run_id"]
        if not as_json:
            typer.echo(f"run {run_id} started")
        if not wait:
            if as_json:
                emit({"run_id": run_id})
            return
        record = _follow(p, run_id, timeout, as_json, until={"SUCCEEDED", "FAILED", "REJECTED", "WAITING_APPROVAL"})
    if as_json:
        emit(record)
    else:
        show_run(record, steps=False)
    if record["status"] == "FAILED":
        raise typer.Exit(1)


@app.command()
def score(
    source: Annotated[
        str, typer.Argument(help="A local file, an s3:// object, or an s3://…/ folder (CSV, Parquet or JSON Lines).")
    ],
    name: Annotated[str | None, typer.Option(help="Its name under the scoring prefix (default: its own).")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the job to finish.")] = True,
    timeout: WaitOpt = 3600,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a file or folder with the champion (a batch scoring job): it is put under the model's scoring prefix
    (scoring.prefix, default score/<model>/), which starts the job; the scored Parquet lands in
    scored/<model>/<job>/ of the artifact bucket, with _manifest.json and _SUCCESS."""
    p = platform(target, env, endpoint, model)
    with reported(OSError):
        up = p.score(source, name)
        if not as_json:
            typer.echo(f"uploaded s3://{up['bucket']}/{up['key']}")
        job_id = p.job_for_upload(up["key"], up["etag"])
        if not as_json:
            typer.echo(f"scoring job {job_id} started")
        if not wait:
            if as_json:
                emit({"job_id": job_id})
            return
        from mlops.tools.platform import StillRunning

        try:
            job = p.wait_job(job_id, timeout)
        except StillRunning as still:
            fail(f"{still}; the job goes on in the scoring state machine", STILL_RUNNING)
    if as_json:
        emit(job)
    else:
        typer.echo(
            f"{job['status']}: v{job.get('version')}, {job.get('rows_in', 0):,} rows in, {job.get('rows_out', 0):,} "
            f"out, {job.get('errors', 0):,} with an error, {job.get('duration_s', 0):.1f} s → {job.get('output')}"
        )
        if job.get("reason"):
            typer.echo(f"  {job['reason']}")
    if job["status"] == "FAILED":
        raise typer.Exit(1)


@app.command()
def jobs(
    limit: int = 20,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recent batch scoring jobs of a model, newest first: status, pinned version, rows, errors, duration, output."""
    p = platform(target, env, endpoint, model)
    with reported():
        found = p.jobs(limit)
    if as_json:
        emit(found)
        return
    for j in found:
        typer.echo(
            f"{j['job_id']}  {j.get('status', ''):<9} v{j.get('version')}  {j.get('rows_out', '-')!s:>9} rows  "
            f"{j.get('errors', '-')!s:>6} errors  {j.get('duration_s', '-')!s:>7} s  {j.get('output', '')}"
        )


@runs_app.command("list")
def runs_list(
    limit: int = 20,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs, newest first, with their primary metric — to compare runs. Every model's, unless --model."""
    base = platform(target, env, endpoint, model, one=False)
    with reported():
        names = [model] if model else base.models()
        # run ids sort by start time: the newest ``limit`` of all the models' runs
        runs = sorted(
            (r for name in names for r in base.for_model(name).runs(limit)),
            key=lambda r: str(r.get("run_id")),
            reverse=True,
        )[:limit]
    if as_json:
        emit(runs)
        return
    if not runs:
        started = base.started_at()
        since = f" since the emulator started at {started} with a fresh account" if started else ""
        typer.echo(f"no runs yet{since}")
        return
    width = max(len(n) for n in names)
    typer.echo(
        f"{'model':<{width}}  {'run':<26} {'status':<17} {'trigger':<11} {'time':>7}  {'metric':<9} {'value':>7}  "
        "version"
    )
    for r in runs:
        metrics = r.get("metrics") or {}
        metric = "roc_auc" if "roc_auc" in metrics else ("rmse" if "rmse" in metrics else "")
        value = f"{metrics[metric]:.4f}" if metric else ""
        typer.echo(
            f"{r.get('model', ''):<{width}}  {r['run_id']:<26} {r.get('status', ''):<17} "
            f"{(r.get('trigger') or {}).get('reason', ''):<11} {r.get('duration_s', 0):6.1f}s  {metric:<9} "
            f"{value:>7}  {r.get('model_version') or ''}"
        )


@runs_app.command("watch")
def runs_watch(
    run_id: str,
    timeout: WaitOpt = 3600,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow a run until it ends: each step as it finishes, then the outcome (exit 1 if it failed)."""
    p = platform(target, env, endpoint, model)
    with reported():
        p.run(run_id)  # an unknown run id fails now, naming the model, rather than waiting for nothing
        record = _follow(p, run_id, timeout, as_json)
    if as_json:
        emit(record)
    else:
        show_run(record, steps=False)
    if record["status"] == "FAILED":
        raise typer.Exit(1)


@runs_app.command("show")
def runs_show(
    run_id: str,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One run: per-step status and timings, trials, anomalies, metrics, reasons."""
    with reported():
        record = platform(target, env, endpoint, model).run(run_id)
    if as_json:
        emit(record)
    else:
        show_run(record)


# -- models ------------------------------------------------------------------------------
@models_app.command("list")
def models_list(
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    as_json: JsonOpt = False,
    model: ModelOpt = None,
) -> None:
    """Every model's registered versions (or one model's, with --model); each champion is marked."""
    base = platform(target, env, endpoint, model, one=False)
    with reported():
        names = [model] if model else base.models()
        listing = [
            {"model": name, "champion": (p := base.for_model(name)).champion(), "versions": p.versions()}
            for name in names
        ]
    if as_json:
        emit(listing[0] if model else {"models": listing})
        return
    for entry in listing:
        typer.secho(
            f"{entry['model']}  (champion: v{entry['champion']})"
            if entry["champion"]
            else f"{entry['model']}  (no champion yet)",
            bold=True,
        )
        for v in entry["versions"]:
            mark = "★" if v["version"] == entry["champion"] else " "
            metric = v.get("metric", "")
            typer.echo(
                f"  {mark} v{v['version']:<4} {v.get('status', ''):<17} {v.get('family', ''):<20} "
                f"{metric} {(v.get('metrics') or {}).get(metric, float('nan')):.4f}  run {v.get('run_id')}"
            )


@models_app.command("show")
def models_show(
    version: int,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One version with its lineage."""
    with reported():
        record = platform(target, env, endpoint, model).version(version)
    record.pop("approval_token", None)
    emit(record)


def _registry_action(fn_name: str, *args: Any, as_json: bool, **kwargs: Any) -> None:
    with reported():
        result = getattr(kwargs.pop("p"), fn_name)(*args, **kwargs)
    if as_json:
        emit(result)
    else:
        typer.echo(
            f"{result.get('action')}: v{result.get('version')} ({result.get('reason')}, by {result.get('actor')})"
        )


@models_app.command("promote")
def models_promote(
    version: int,
    reason: Annotated[str, typer.Option(help="Why (audit history).")] = "manual",
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a version champion (releases a run waiting for approval of that version)."""
    _registry_action(
        "promote", version, reason=reason, actor=actor(), as_json=as_json, p=platform(target, env, endpoint, model)
    )


@models_app.command("canary")
def models_canary(
    version: int,
    percent: Annotated[float, typer.Option(help="Share of traffic the challenger answers (0 < p <= 50).")] = 10.0,
    reason: Annotated[str, typer.Option(help="Why (audit history).")] = "canary",
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Try a version on a share of live traffic (by a stable key: one entity sees one version)."""
    p = platform(target, env, endpoint, model)
    with reported():
        result = p.challenge(version, "canary", percent, reason, actor())
    if as_json:
        emit(result)
    else:
        typer.echo(f"canary: v{version} answers {percent:g} % of {p.model}'s requests")


@models_app.command("shadow")
def models_shadow(
    version: int,
    reason: Annotated[str, typer.Option(help="Why (audit history).")] = "shadow",
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every request with a version as well, captured beside the champion's answer and never returned."""
    p = platform(target, env, endpoint, model)
    with reported():
        result = p.challenge(version, "shadow", 0, reason, actor())
    if as_json:
        emit(result)
    else:
        typer.echo(f"shadow: v{version} scores every {p.model} request, unseen")


@models_app.command("withdraw")
def models_withdraw(
    reason: Annotated[str, typer.Option(help="Why (audit history).")] = "manual",
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take the challenger off traffic: the champion answers everything again."""
    p = platform(target, env, endpoint, model)
    with reported():
        result = p.withdraw(reason, actor())
    if as_json:
        emit(result)
    else:
        typer.echo(f"withdrawn: v{result['version']} ({reason})")


@models_app.command("compare")
def models_compare(
    hours: Annotated[float, typer.Option(help="How much captured traffic to compare (hours back from now).")] = 24,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Champion against challenger on live traffic: records, agreement, latency, errors, quality where labelled."""
    p = platform(target, env, endpoint, model)
    with reported():
        result = p.compare(hours)
    if result is None:
        fail(f"{p.model} has no challenger: `mlops models canary <v>` or `mlops models shadow <v>`")
        return
    if as_json:
        emit(result)
        return
    records, latency, quality = result["records"], result["latency_ms"], result["quality"]
    typer.secho(
        f"{p.model}: champion v{result['champion']} vs challenger v{result['version']} ({result['mode']}"
        + (f" {result['percent']:g} %" if result["mode"] == "canary" else "")
        + f"), last {hours:g} h",
        bold=True,
    )
    typer.echo(f"  records     champion {records['champion']:>7}   challenger {records['challenger']:>7}")
    typer.echo(f"  latency ms  champion {latency['champion']!s:>7}   challenger {latency['challenger']!s:>7}")
    if result.get("agreement") is not None:
        typer.echo(f"  agreement   {result['agreement']:.1%} of the records both answered")
    typer.echo(f"  errors      {result['errors']} record(s) the challenger could not answer")
    for side in ("champion", "challenger"):
        if side in quality:
            q = quality[side]
            typer.echo(f"  live {quality['metric']:<8} {side:<10} {q['value']} on {q['labelled']} labels")


@models_app.command("rollback")
def models_rollback(
    reason: Annotated[str, typer.Option(help="Why (audit history).")] = "manual",
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Return to the previous champion (repeat to walk further back)."""
    _registry_action(
        "rollback", reason=reason, actor=actor(), as_json=as_json, p=platform(target, env, endpoint, model)
    )


@models_app.command("approve")
def models_approve(
    version: int,
    reason: str = "approved",
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a version waiting for manual approval: its run continues and promotes it."""
    _registry_action(
        "approve", version, reason=reason, actor=actor(), as_json=as_json, p=platform(target, env, endpoint, model)
    )


@models_app.command("reject")
def models_reject(
    version: int,
    reason: str = "rejected",
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject a version waiting for manual approval: its run fails, nothing is promoted."""
    _registry_action(
        "reject", version, reason=reason, actor=actor(), as_json=as_json, p=platform(target, env, endpoint, model)
    )


@models_app.command("retain")
def models_retain(
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    as_json: JsonOpt = False,
    model: ModelOpt = None,
) -> None:
    """Upgrade step: copy registered versions' artifacts out of expiring run scratch into models/ (idempotent)."""
    with reported():
        moved = platform(target, env, endpoint, model).retain()
    if as_json:
        emit(moved)
        return
    for version, names in sorted(moved.items()):
        typer.echo(f"v{version}: " + (f"retained {', '.join(names)}" if names else "already retained"))


@models_app.command("history")
def models_history(
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    as_json: JsonOpt = False,
    model: ModelOpt = None,
) -> None:
    """The audit history of promotions and rollbacks."""
    history = platform(target, env, endpoint, model).history()
    if as_json:
        emit(history)
        return
    for h in history:
        typer.echo(
            f"{h['at']}  {h['action']:<9} v{h['version']:<4} (was {h.get('previous')})  "
            f"{h.get('actor')}: {h.get('reason')}"
        )


# -- predictions ------------------------------------------------------------------------------
@features_app.command("list")
def features_list(
    target: TargetOpt = "local", env: EnvOpt = "dev", endpoint: EndpointOpt = None, as_json: JsonOpt = False
) -> None:
    """Every feature set of the deployment: its entity, features, TTL, source prefix and the models using it."""
    base = platform(target, env, endpoint, one=False)
    with reported():
        catalog = base.catalog()
    listing = [
        {
            "name": fs.name,
            "entity": fs.keys,
            "features": list(fs.features),
            "ttl_hours": fs.ttl_hours,
            "source": fs.source,
            "online": fs.online,
            "models": [m.name for m in catalog if any(u.name == fs.name for u in m.feature_sets)],
        }
        for fs in catalog.feature_sets
    ]
    if as_json:
        emit({"feature_sets": listing})
        return
    if not listing:
        typer.echo("no feature sets (list them in cdk.json beside the models: feature_sets)")
    for entry in listing:
        typer.echo(
            f"{entry['name']:<20} entity {','.join(entry['entity']):<16} {len(entry['features'])} features  "
            f"ttl {entry['ttl_hours']:g} h  s3://…/{entry['source']}  models: {', '.join(entry['models']) or '-'}"
        )


@features_app.command("show")
def features_show(name: str, target: TargetOpt = "local", env: EnvOpt = "dev", endpoint: EndpointOpt = None) -> None:
    """One feature set: its definition, its registry version, the models using it and the versions trained on it."""
    with reported():
        emit(platform(target, env, endpoint, one=False).feature_set(name))


@features_app.command("ingest")
def features_ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV, Parquet or JSON Lines.")],
    feature_set: Annotated[str | None, typer.Option("--set", help="The feature set (default: the only one).")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the ingestion's outcome.")] = True,
    timeout: WaitOpt = 300.0,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
) -> None:
    """Upload FILE under the feature set's source prefix: it is checked, appended to the offline store and
    materialized into the online store (or quarantined, naming its problems)."""
    p = platform(target, env, endpoint, one=False)
    with reported():
        uploaded = p.ingest_features(file, feature_set)
        typer.echo(f"uploaded s3://{uploaded['bucket']}/{uploaded['key']}")
        if not wait:
            return
        outcome = p.wait_for_ingestion(uploaded["feature_set"], uploaded["etag"], uploaded["key"], timeout or 1e9)
    if outcome.get("status") == "quarantined":
        fail(f"quarantined: {outcome.get('reason')} (mlops features show {uploaded['feature_set']})")
    typer.echo(
        f"{outcome.get('status')}: {outcome.get('rows')} rows into {len(outcome.get('partitions') or [])} "
        f"partition(s), {outcome.get('online_written')} entities updated online"
    )


@features_app.command("get")
def features_get(
    name: str, entity: str, target: TargetOpt = "local", env: EnvOpt = "dev", endpoint: EndpointOpt = None
) -> None:
    """An entity's latest values in the online store (what /predict looks up), with their event time."""
    with reported():
        emit(platform(target, env, endpoint, one=False).online_features(name, entity))


def read_records(source: Path | None) -> list[dict[str, Any]]:
    """Records from a JSON file ({"records": [...]} or a list), a CSV file, or JSON on stdin."""
    import csv

    if source is not None and source.suffix.lower() == ".csv":
        with source.open() as fh:
            return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    text = source.read_text() if source is not None else sys.stdin.read()
    data = json.loads(text)
    records = data.get("records") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise ValueError('expected a list of records or {"records": [...]}')
    return records


def _number(value: str) -> Any:
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value


@app.command()
def lineage(
    ref: Annotated[str, typer.Argument(help="An artifact's sha256 (which runs made or used it) or a run id.")],
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
) -> None:
    """The lineage table: the runs and steps behind an artifact, or a run's executions with their artifacts."""
    with reported():
        emit(platform(target, env, endpoint, one=False).lineage(ref))


@app.command()
def site(
    out: Annotated[Path, typer.Option(help="The folder to write the site to (one sub-folder per model).")] = Path(
        ".mlops/site"
    ),
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
) -> None:
    """Build each model's report site from the runs, the registry and the monitor, into a folder: an overview,
    a page per run, per version and per monitored window (the same pages finalize publishes under sites/)."""
    from mlops.reports import site as report_site

    with reported():
        p = platform(target, env, endpoint, one=False)
        home = report_site.write_sites(p.stores, [model] if model else p.models(), out, catalog=p.catalog())
        typer.echo(f"Site: {home.resolve()}")


@app.command()
def predict(
    source: Annotated[Path | None, typer.Argument(help="JSON or CSV file; JSON on stdin when omitted.")] = None,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
) -> None:
    """Score records with the serving champion through the prediction API (local or deployed)."""
    try:
        records = read_records(source)
    except (OSError, ValueError) as err:
        fail(f"could not read records: {err}")
        return
    with reported():
        emit(platform(target, env, endpoint, model).predict(records))


@app.command()
def feedback(
    source: Annotated[
        Path | None, typer.Argument(help="JSON ({'labels': [...]} or a list) or CSV; stdin when omitted.")
    ] = None,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
) -> None:
    """Ground-truth labels for earlier predictions, by request_id (and row) or by id, through POST /feedback."""
    import csv

    try:
        if source is not None and source.suffix.lower() == ".csv":
            with source.open() as fh:
                labels = [
                    {k: _number(v) if k in ("row", "label") else v for k, v in row.items() if v != ""}
                    for row in csv.DictReader(fh)
                ]
            for item in labels:
                if isinstance(item.get("row"), float):
                    item["row"] = int(item["row"])
        else:
            data = json.loads(source.read_text() if source is not None else sys.stdin.read())
            labels = data.get("labels") if isinstance(data, dict) else data  # type: ignore[assignment]
        if not isinstance(labels, list):
            raise ValueError('expected a list of labels or {"labels": [...]}')
    except (OSError, ValueError) as err:
        fail(f"could not read labels: {err}")
        return
    with reported():
        emit(platform(target, env, endpoint, model).feedback(labels))


@monitor_app.command("run")
def monitor_run(
    end: Annotated[str | None, typer.Option(help="Judge the window ending then (ISO-8601); default now.")] = None,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Judge a window of served traffic now (the monitor function, on demand)."""
    with reported():
        p = platform(target, env, endpoint, model)
        p.monitor(end)
        show_monitor(p.latest_monitor() or {}, as_json)


@monitor_app.command("show")
def monitor_show(
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    as_json: JsonOpt = False,
    model: ModelOpt = None,
) -> None:
    """The latest judged window, and the alarms' states."""
    with reported():
        p = platform(target, env, endpoint, model)
        summary = p.latest_monitor()
        if summary is None:
            fail("the monitor has not run yet: `mlops monitor run` (or wait for its schedule)")
            return
        show_monitor(summary, as_json)
        if not as_json:
            for alarm in p.alarms():
                name = alarm["AlarmName"].removeprefix(f"Mlops-{env}-")
                color = typer.colors.RED if alarm["StateValue"] == "ALARM" else None
                typer.secho(f"  alarm {alarm['StateValue']:<17} {name}", fg=color)


@models_app.command("served-at")
def models_served_at(
    when: Annotated[str, typer.Argument(help="ISO-8601 time, e.g. 2026-11-22T15:00:00Z")],
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which version was champion at a given time (from the audit history)."""
    with reported(ValueError):
        version = platform(target, env, endpoint, model).served_at(when)
    if as_json:
        emit({"at": when, "version": version})
    else:
        typer.echo(f"v{version}" if version is not None else f"no champion at {when}")


# -- events ---------------------------------------------------------------------------------
@events_app.command("tail")
def events_tail(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model's events.")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", "-f", help="Keep printing new ones.")] = True,
    since: Annotated[str, typer.Option(help="How far back: 15m, 2h, 1d.")] = "1h",
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the platform's events as they come (from the environment's event log group, where a rule keeps every
    one): Run State Change, Model Version Registered, Champion Changed, Challenger Changed, Monitor Window Judged."""
    with reported():
        p = platform(target, env, endpoint, None, one=False)
    start = int((time.time() - _duration_s(since)) * 1000)
    seen: set[str] = set()
    while True:
        with reported():
            found = p.events(start, model)
        for event in found:
            if event["id"] in seen:
                continue
            seen.add(event["id"])
            start = max(start, int(event["_ms"]))
            if as_json:
                typer.echo(json.dumps({k: v for k, v in event.items() if k != "_ms"}))
            else:
                typer.echo(event_line(event))
        if not follow:
            return
        time.sleep(2)


# -- components -----------------------------------------------------------------------------
@component_app.command("check")
def component_check(
    path: Annotated[
        str | None, typer.Argument(help="The component's import path, e.g. components.features:Ratio.")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="A sample of the raw table (CSV, Parquet or JSON Lines).")] = None,
    every: Annotated[
        bool,
        typer.Option("--all", help="Every component the project's models name, on each model's data.sample."),
    ] = False,
    params: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="A constructor argument, name=value (repeat).")
    ] = None,
    params_json: Annotated[str | None, typer.Option("--params", help="Constructor arguments as a JSON object.")] = None,
    target: Annotated[str | None, typer.Option(help="The label column (needed for a model component).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit, transform, pickle, determinism, ONNX conversion, parity on rows it was not fitted on and single-row
    latency: each failure names its rule and the fix. Exits 1 unless every rule passes."""
    from mlops.core.config import DataFormat
    from mlops.data.frames import detect_format, read_table
    from mlops.testing import check_component

    if every:
        _check_every_component(as_json)
        return
    if path is None or data is None:
        fail("give a component's import path and --data FILE, or --all")
        return
    if not data.exists():
        fail(f"no such file: {data}")
    arguments: dict[str, Any] = json.loads(params_json) if params_json else {}
    for item in params or []:
        name, sep, value = item.partition("=")
        if not sep:
            fail(f"--param {item!r}: write name=value")
        arguments[name] = _param(value)
    sys.path.insert(0, str(Path.cwd()))  # the project's components/ package, as the pipeline imports it
    from mlops.core.errors import MlopsError

    with reported(OSError, ValueError, MlopsError):
        frame = read_table(data.read_bytes(), data.name, detect_format(data.name, DataFormat.AUTO))
        report = check_component(path, frame, params=arguments, target=target)
    if as_json:
        emit(report.as_dict())
    else:
        typer.secho(str(report), fg=typer.colors.GREEN if report.ok else typer.colors.RED)
    if not report.ok:
        raise typer.Exit(1)


def _check_every_component(as_json: bool) -> None:
    """What the delivery pipeline's build stage runs before staging: each component of each model, with the model's
    parameters, on its sample."""
    from mlops.core.config import load_models
    from mlops.core.project import Project
    from mlops.testing import check_component
    from mlops.tools.samples import sample_frame

    project = Project.find()
    sys.path.insert(0, str(project.root))
    models = load_models(project.model_paths("dev"))
    reports = []
    for name, cfg in models.configs.items():
        frame = sample_frame(cfg, project)
        steps: list[tuple[str, dict[str, Any], str | None]] = [
            (s.component, s.params, None) for s in cfg.features.steps
        ]
        steps += [(c.family, _first_values(c.params), cfg.target) for c in cfg.training.candidates if ":" in c.family]
        if steps and frame is None:
            fail(f"model '{name}' names components but has no data.sample to check them on")
        for component, params, target in steps:
            report = check_component(component, frame, params=params, target=target)
            reports.append(report)
            if not as_json:
                typer.secho(f"[{name}] {report}", fg=typer.colors.GREEN if report.ok else typer.colors.RED)
    if as_json:
        emit([r.as_dict() for r in reports])
    if not reports and not as_json:
        typer.echo("no components: the project's models use only built-in families and preprocessing")
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


def _first_values(space: dict[str, Any]) -> dict[str, Any]:
    """One point of a candidate's search space (the first value of each list; a range's low end)."""
    out = {}
    for key, value in space.items():
        out[key] = value[0] if isinstance(value, list) else getattr(value, "low", value)
    return out


def _param(value: str) -> Any:
    """A parameter's value as YAML reads it (numbers, true/false, lists), else the text."""
    import yaml

    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


# -- quarantine -----------------------------------------------------------------------------
@quarantine_app.command("list")
def quarantine_list(
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every quarantined object, the run that rejected it and why."""
    with reported():
        held = platform(target, env, endpoint, model).quarantined()
    if as_json:
        emit(held)
        return
    if not held:
        typer.echo("nothing is quarantined")
    for q in held:
        typer.echo(f"{q['key']}  {q.get('reason')}  (run {q.get('run_id')}, {q.get('at')})")


@quarantine_app.command("release")
def quarantine_release(
    key: Annotated[str | None, typer.Argument(help="The object's key; omit with --all.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Release every quarantined object.")] = False,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
) -> None:
    """Let prefix and scheduled runs read an object again as it is (replacing it releases it too)."""
    if (key is None) == (not every):
        fail("give an object's key or --all")
    with reported():
        released = platform(target, env, endpoint, model).release(None if every else key)
    typer.echo(f"released {len(released)} object(s): {', '.join(released)}" if released else "nothing released")


# -- schema ---------------------------------------------------------------------------------
@schema_app.command("show")
def schema_show(
    target: TargetOpt = "local", env: EnvOpt = "dev", endpoint: EndpointOpt = None, model: ModelOpt = None
) -> None:
    """The current schema (JSON): edit it and `mlops schema push` it to pin your changes."""
    with reported():
        emit(platform(target, env, endpoint, model).schema())


@schema_app.command("push")
def schema_push(
    file: Path,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    as_json: JsonOpt = False,
    model: ModelOpt = None,
) -> None:
    """Store an edited schema as the next version; later runs validate against it."""
    with reported(OSError, json.JSONDecodeError):
        raw = json.loads(file.read_text())
        record = platform(target, env, endpoint, model).push_schema(raw.get("schema", raw), actor())
    if as_json:
        emit(record)
    else:
        typer.echo(f"schema v{record['version']} stored ({record['source']}); later runs validate against it")


# -- functions -----------------------------------------------------------------------------
@app.command()
def invoke(
    function: str,
    event: Annotated[Path, typer.Option("--event", help="Event JSON file (see events/).")],
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
) -> None:
    """Invoke one function with an event file, through the Lambda API."""
    if not event.exists():
        fail(f"no such event file: {event}")
    with reported(json.JSONDecodeError):
        emit(platform(target, env, endpoint, model).invoke(function, json.loads(event.read_text())))


@app.command()
def smoke(
    batch: Annotated[
        Path | None, typer.Option(help="A small batch (CSV) for the model; default: the bundled data of its name.")
    ] = None,
    emulator: Annotated[
        bool, typer.Option("--emulator", help="Start an offline emulator of the project for the test, then stop it.")
    ] = False,
    target: TargetOpt = "local",
    env: EnvOpt = "dev",
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
) -> None:
    """Health, a signed predict and one pipeline run that must register a model (staging, prod, offline)."""
    from mlops.tools.smoke import Check, smoke

    def say(check: Check) -> None:
        mark, color = ("ok  ", typer.colors.GREEN) if check.ok else ("FAIL", typer.colors.RED)
        typer.secho(f"  {mark} {check.name:<32} {check.seconds:6.1f}s  {check.detail}", fg=color)

    def run(p: Any) -> bool:
        from mlops.tools.samples import sample_frame

        config = p.config()
        if batch is not None:
            body = batch.read_bytes()
            import pandas as pd

            frame = pd.read_csv(batch)
        else:
            found = sample_frame(config)
            if found is None:
                fail(f"give --batch: {config.name} has no sample (data.sample) nor bundled data")
            frame = found
            body = frame.to_csv(index=False).encode()
        records = frame.drop(columns=[config.target]).head(3).to_dict("records")
        typer.secho(f"smoke test of {p.model} at {p.endpoint or p.env}", bold=True)
        return all(c.ok for c in smoke(p, body, records, say))

    if emulator:
        from mlops.local.emulator import LocalCloud, project_models
        from mlops.tools.platform import Platform

        # One model is enough to prove the platform: the one named, or the project's first.
        candidates = project_models(None, env)
        configs = [f for f in candidates if model is None or load_config(f).name == model][:1]
        if not configs:
            fail(f"no model '{model}' in the project's {env} environment")
        with LocalCloud(configs, port=0, env=env) as cloud:
            ok = run(Platform.connect(env, cloud.endpoint).for_model(model))
    else:
        p = platform(target, env, endpoint, model, one=False)
        ok = run(p if model else p.for_model(p.models()[0]))  # one model proves the deployment
    if not ok:
        raise typer.Exit(1)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="A new (or empty) folder for the project.")],
) -> None:
    """Start a project of one's own: cdk.json, a model, components with their tests, a sample, a CI workflow and a
    README with its two commands. It depends on this platform (a pinned version); it copies nothing of it."""
    from mlops.tools.starter import init_project

    try:
        written = init_project(directory)
    except FileExistsError as err:
        fail(str(err))
    typer.secho(f"a new project in {directory} ({len(written)} files)", bold=True)
    for line in (
        f"cd {directory}",
        "./scripts/demo    # set up, then train its model offline from data/, serve it and predict",
        "./scripts/test    # set up, then its tests, `mlops config check` and `mlops component check --all`",
        "npx cdk deploy --all -c env=dev   # with AWS credentials: the same, deployed",
    ):
        typer.echo(f"  {line}")


@app.command()
def cost(
    env: EnvOpt = "dev",
    runs_per_month: Annotated[float, typer.Option(help="Training runs a month, beside the scheduled ones.")] = 0,
    predictions_per_month: Annotated[
        float, typer.Option(help="POST /predict requests a month (one record each), across the models.")
    ] = 0,
    region: Annotated[str, typer.Option(help="Whose prices (the price table's regions).")] = "us-east-1",
    cdk_out: Annotated[
        Path | None, typer.Option(help="Read this cloud assembly (./scripts/synth's cdk.out) instead of synthesizing.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """What the environment costs: idle a month (per model and shared), per run, per 1,000 predictions, and a
    month at the volumes given — from its synthesized stacks, the figures benchmarks.cost measured in the emulator
    and the repository's dated price table."""
    from mlops.tools.cost import as_json as cost_json
    from mlops.tools.cost import environment_templates, estimate, inventory, load_measured, load_prices, render

    prices = load_prices()
    if region not in prices.regions:
        fail(f"no prices for --region {region}; the price table has {', '.join(prices.regions)}")
    if runs_per_month < 0 or predictions_per_month < 0:
        fail("--runs-per-month and --predictions-per-month cannot be negative")
    try:
        templates = environment_templates(env, cdk_out)
    except (ConfigError, ValueError, FileNotFoundError, RuntimeError) as err:
        fail(str(err))
    result = estimate(
        inventory(templates, env, prices.hours_per_month),
        load_measured(),
        prices,
        region=region,
        runs_per_month=runs_per_month,
        predictions_per_month=predictions_per_month,
    )
    if as_json:
        emit(cost_json(result))
    else:
        typer.echo(render(result))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where to write the report site (one folder per model).")] = Path(
        ".mlops/demo"
    ),
    config: ConfigOpt = EXAMPLE_CONFIG,
    companion: Annotated[
        Path, typer.Option(help="A second model trained and served beside it (default: the diabetes regressor).")
    ] = COMPANION_CONFIG,
) -> None:
    """The whole lifecycle offline, through the real state machine. In this repository: two models side by side;
    train, reject bad data, judge a candidate, serve, roll back, detect drift, retrain on the alarm. In a project of
    one's own: each model trained from its sample, served, and asked for predictions over HTTP."""
    from mlops.core.project import Project
    from mlops.tools.demo import run_demo, run_project
    from mlops.tools.samples import REPOSITORY

    try:
        project = Project.find()
        if project.root == REPOSITORY.resolve():
            report = run_demo(load_config(config), config, out, companion)
        else:
            report = run_project(project, project.root / out)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        fail(str(err))
    typer.secho(f"\nSite: {report.resolve()}", bold=True)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
