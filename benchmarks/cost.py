"""What a run, a monitor window and a prediction ask of AWS, in the units AWS bills — measured in the emulator (#33).

One emulator with the bundled models (dev's two), every function at ``POWERTOOLS_LOG_LEVEL=INFO`` (what it logs
in AWS, where nothing sets a level), and for each stretch of work the difference of what the account holds and
what the endpoint counted before and after it:

* **a training run** of each bundled model on its bundled data, every function cold as a week apart in AWS (an
  upload: the trigger, every step, every trial, the warm-ups, the lock released when the execution ends): each
  invocation's CPU time, init included, and memory (``seams.invocations``), the states entered (the execution
  history; Step Functions also logs each history event at ``Level: ALL``, counted as log bytes), S3 requests by
  price tier and DynamoDB units by function (the endpoint's meter, ``seams.metered_requests``), the bytes the
  objects it added hold (every bucket's versions), the lines the functions logged, the custom metric series they
  published, the events they put on the bus;
* **a monitor window** of each model without traffic, and one judged (after traffic and labels): the monitor
  cold-starts each time (its environments are reclaimed first, as an hour apart in AWS);
* **predictions**: the serve function's cold start, then 100 ``POST /predict`` of one record, then 20 of ten records,
  billed as under steady traffic (warm: no init); what capture logs per request is fitted on the two sizes
  (``bytes_per_captured_row`` and ``bytes_per_capture_request``), the capture function's work is kept apart
  (``mlops cost`` scales it by each model's ``capture_sample``).

Lambda bills wall time. Here neither clock is the functions' alone: other work on the machine stretches the wall
time (a run's functions took ~10x their CPU time at a load average of 13-17 on two cores), and threads that spin
while they wait (OpenMP in the trials) inflate the CPU time when cores are free (a run's trials took 8x the CPU
time at a load average of 2 that they took at 15). Each invocation counts the lesser of the two, for its init and
its handler (both totals are kept beside it); ``mlops cost`` projects it to the memory it prices, as Lambda allots
CPU in proportion to memory. Writes ``src/mlops/tools/measured_costs.json``, which ``mlops cost`` reads.

Run: ``python -m benchmarks.cost`` (a few minutes: two runs through the real state machine).
"""

from __future__ import annotations

import json
import os
import platform as host
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.core.constants import CAPTURE_FIELD, CAPTURE_KIND
from mlops.local import seams
from mlops.local.emulator import ACCOUNT, REGION, LocalCloud
from mlops.tools.cost import MEASURED, Capture, FunctionUse, Measured, Predictions, Usage, scheduled_model
from mlops.tools.platform import Platform
from mlops.tools.samples import bundled, example_config_path

MODELS = ("breast-cancer", "diabetes")
LOG_EVENT_OVERHEAD = 26  # CloudWatch Logs bills each event's message plus 26 bytes
PUT_TIER = {"PutObject", "CopyObject", "PostObject", "ListObjects", "PutBucket"}
GET_TIER = {"GetObject", "HeadObject", "HeadBucket"}
WRITES = set(seams.DYNAMODB_WRITES)
CAPTURE_MARK = f'"{CAPTURE_FIELD}":"{CAPTURE_KIND}"'
ONE_ROW, TEN_ROWS = 100, 20  # requests of one record, of ten


@dataclass
class Snapshot:
    """What the account holds and the endpoint counted at one moment."""

    invocations: int
    requests: dict[seams.RequestKey, seams.RequestTally]
    log_counts: dict[tuple[str, str], int]
    metrics: int
    stored: int

    @classmethod
    def take(cls, cloud: LocalCloud) -> Snapshot:
        seams.drain()
        logs = seams.log_events(ACCOUNT, REGION)
        return cls(
            len(seams.invocations),
            seams.metered_requests(),
            {k: len(v) for k, v in logs.items()},
            len(seams.metric_data(ACCOUNT, REGION)),
            stored_bytes(cloud),
        )


def stored_bytes(cloud: LocalCloud) -> int:
    s3, total = cloud.client("s3"), 0
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket["Name"]):
            total += sum(int(v["Size"]) for v in page.get("Versions", []))
    return total


def new_lines(before: Snapshot) -> dict[str, list[str]]:
    """The log lines written since ``before``, by log group."""
    out: dict[str, list[str]] = {}
    for (group, stream), messages in seams.log_events(ACCOUNT, REGION).items():
        out.setdefault(group, []).extend(messages[before.log_counts.get((group, stream), 0) :])
    return out


def logged(lines: list[str]) -> int:
    return sum(len(line.encode()) + LOG_EVENT_OVERHEAD for line in lines)


def usage_between(
    cloud: LocalCloud, before: Snapshot, after: Snapshot, *, handlers: set[str] | None = None, steady: bool = False
) -> Usage:
    """What the account did between two snapshots (only ``handlers``' invocations and requests, if named;
    ``steady``: without cold starts' init, as under steady traffic, where environments stay warm)."""

    def counted(handler: str) -> bool:
        return handlers is None or handler in handlers

    functions: dict[str, FunctionUse] = {}
    for inv in seams.invocations[before.invocations : after.invocations]:
        if not counted(inv.handler):
            continue
        use = functions.setdefault(inv.handler, FunctionUse(memory_mb=inv.memory_mb))
        init_cpu_ms, init_ms = (0.0, 0.0) if steady else (inv.init_cpu_ms, inv.init_ms)
        init = min(init_cpu_ms, init_ms)  # each clock overstates in its own way: FunctionUse says how
        use.invocations += 1
        use.duration_ms += min(inv.cpu_ms, inv.handler_ms) + init
        use.init_ms += init
        use.cpu_ms += inv.cpu_ms + init_cpu_ms
        use.wall_ms += inv.handler_ms + init_ms
    tallies: Counter[str] = Counter()
    for (handler, service, operation), tally in after.requests.items():
        if not counted(handler):
            continue
        old = before.requests.get((handler, service, operation), seams.RequestTally())
        count, units = tally.count - old.count, tally.units - old.units
        if service == "s3":
            tallies["s3_put" if operation in PUT_TIER else "s3_get" if operation in GET_TIER else "free"] += count
        elif service == "dynamodb":
            tallies["dynamodb_write_units" if operation in WRITES else "dynamodb_read_units"] += units
        elif service == "monitoring":
            tallies["metric_requests"] += count
    published = seams.metric_data(ACCOUNT, REGION)[before.metrics : after.metrics]
    series = {(ns, name, dims) for ns, name, dims in published if not ns.startswith("AWS/")}
    tallies.pop("free", None)
    return Usage(
        functions=functions,
        s3_bytes_stored=max(0, after.stored - before.stored) if handlers is None else 0,
        custom_metrics=len(series),
        **tallies,
    )


def function_log_groups(handlers: set[str]) -> set[str]:
    return {fn.log_group for fn in seams.functions().values() if fn.handler in handlers}


def facts(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def measure_run(cloud: LocalCloud, p: Platform, model: str) -> tuple[Usage, int]:
    frame = bundled(model)
    body = frame.to_csv(index=False).encode()
    seams.reclaim_idle()  # a scheduled run (a week apart) finds every function cold; the warm-ups overlap their inits
    before = Snapshot.take(cloud)
    up = p.upload(body, f"{p.config().data.prefix}cost-benchmark.csv")
    run = p.wait(p.run_for_upload(up["key"], up["etag"]), timeout=1800)
    sfn = p.client("stepfunctions")
    while sfn.describe_execution(executionArn=run["execution_arn"])["status"] == "RUNNING":
        time.sleep(0.2)
    time.sleep(1.0)  # the emulator's watcher emits the status change: the trigger releases the lock
    after = Snapshot.take(cloud)
    history: list[dict[str, Any]] = []
    request: dict[str, Any] = {"executionArn": run["execution_arn"], "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**request)
        history += page["events"]
        if not page.get("nextToken"):
            break
        request["nextToken"] = page["nextToken"]
    lines = new_lines(before)
    events = facts(lines.get(p.output("EventLogGroup"), []))
    usage = usage_between(cloud, before, after)
    usage.transitions = sum(e["type"].endswith("StateEntered") for e in history)
    # The state machine logs every history event (Level ALL, execution data included) to its log group.
    usage.log_bytes = sum(logged(group) for group in lines.values()) + logged(
        [json.dumps(e, default=str) for e in history]
    )
    usage.events = len(events)
    usage.notifications = sum(
        e["detail-type"] == "Champion Changed"
        or (e["detail-type"] == "Run State Change" and e["detail"].get("status") == "FAILED")
        for e in events
    )
    trigger = usage.functions.get("trigger")
    usage.traces = 1 + (trigger.invocations if trigger else 0)  # the execution's trace; the trigger's own
    print(f"  {model}: run {run['run_id']} {run['status']} v{run.get('model_version')}")
    if run["status"] != "SUCCEEDED":
        raise SystemExit(f"the {model} run ended {run['status']}: {run.get('error')}")
    return usage, len(frame)


def monitor_rules(p: Platform) -> dict[str, str]:
    """Each model's monitor schedule (rule name), from the targets' input."""
    events, out = p.client("events"), {}
    for rule in events.list_rules()["Rules"]:
        if not rule.get("ScheduleExpression"):
            continue
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            model = scheduled_model(target)
            if model and "monitor" in target["Arn"].lower():
                out[model] = rule["Name"]
    return out


def measure_window(cloud: LocalCloud, p: Platform, rule: str) -> Usage:
    seams.reclaim_idle()  # an hour apart in AWS: the monitor cold-starts
    before = Snapshot.take(cloud)
    cloud.tick(rule_name=rule)
    after = Snapshot.take(cloud)
    lines = new_lines(before)
    usage = usage_between(cloud, before, after)
    usage.log_bytes = sum(logged(group) for group in lines.values())
    usage.events = len(lines.get(p.output("EventLogGroup"), []))
    usage.traces = sum(u.invocations for u in usage.functions.values())
    summary = p.latest_monitor() or {}
    print(f"  {p.model}: monitor {summary.get('status')}, {usage.custom_metrics:g} custom metric(s)")
    return usage


def measure_predictions(cloud: LocalCloud, p: Platform) -> tuple[Predictions, list[dict[str, Any]]]:
    frame = bundled(p.model)
    config = p.config()
    records = frame.drop(columns=[config.target]).to_dict("records")
    serve_groups = function_log_groups({"serve"})

    seams.reclaim_idle()
    before = Snapshot.take(cloud)
    p.predict(records[:1])
    cold = usage_between(cloud, before, Snapshot.take(cloud), handlers={"serve"}).functions["serve"]

    def batch(count: int, size: int) -> tuple[Snapshot, Snapshot, list[dict[str, Any]]]:
        start = Snapshot.take(cloud)
        answers = [p.predict(records[i * size : (i + 1) * size]) for i in range(count)]
        return start, Snapshot.take(cloud), answers

    start, end, answers = batch(ONE_ROW, 1)
    lines = new_lines(start)
    serve_lines = [line for g in serve_groups for line in lines.get(g, [])]
    one = [line for line in serve_lines if CAPTURE_MARK in line]
    serve = usage_between(cloud, start, end, handlers={"serve"}, steady=True)
    # Series published while traffic flows bill by the hour they appear in, not by request: kept apart.
    traffic_metrics = serve.custom_metrics
    serve.custom_metrics = 0
    serve.log_bytes = logged([line for line in serve_lines if CAPTURE_MARK not in line])
    serve.api_requests = serve.traces = ONE_ROW
    capture = usage_between(cloud, start, end, handlers={"capture"}, steady=True)
    capture.s3_bytes_stored = max(0, end.stored - start.stored)  # what the batch's captures hold in S3
    capture.custom_metrics = 0
    capture.log_bytes = sum(logged(lines.get(g, [])) for g in function_log_groups({"capture"}))
    capture.traces = sum(u.invocations for u in capture.functions.values())

    start, _, _ = batch(TEN_ROWS, 10)
    ten = [line for g in serve_groups for line in new_lines(start).get(g, []) if CAPTURE_MARK in line]
    per_one, per_ten = logged(one) / ONE_ROW, logged(ten) / TEN_ROWS
    per_row = (per_ten - per_one) / 9
    fmt = Capture(bytes_per_captured_row=per_row, bytes_per_capture_request=per_one - per_row, measured_rows=[1, 10])
    print(
        f"  {p.model}: {ONE_ROW} warm predictions, {serve.functions['serve'].duration_ms / ONE_ROW:.1f} ms each; "
        f"capture {fmt.bytes_per_capture_request:.0f} B a request + {fmt.bytes_per_captured_row:.0f} B a row"
    )
    labels = [
        {"request_id": a["request_id"], "row": 0, "label": frame[config.target].iloc[i].item()}
        for i, a in enumerate(answers)
    ]
    predictions = Predictions(
        requests=ONE_ROW,
        serve=serve,
        capture=capture,
        capture_format=fmt,
        cold_start=cold,
        traffic_metrics=traffic_metrics,
    )
    return predictions, labels


def main() -> None:
    os.environ["MLOPS_LOCAL_LOG_LEVEL"] = "INFO"  # what the functions log in AWS (Powertools' default level)
    t0, load = time.perf_counter(), os.getloadavg()[0]
    print("Measuring in the emulator: a run of each bundled model, monitor windows, predictions…")
    with LocalCloud([example_config_path(m) for m in MODELS], port=0) as cloud:
        platform = Platform.connect(cloud.env, cloud.endpoint)
        runs, rows = {}, {}
        for model in MODELS:
            runs[model], rows[model] = measure_run(cloud, platform.for_model(model), model)
        rules = monitor_rules(platform)
        idle = {m: measure_window(cloud, platform.for_model(m), rules[m]) for m in MODELS}
        p = platform.for_model(MODELS[0])
        predictions, labels = measure_predictions(cloud, p)
        p.feedback(labels)
        judged = {MODELS[0]: measure_window(cloud, p, rules[MODELS[0]])}
    measured = Measured(
        measured_on=datetime.now(UTC).date(),
        how="python -m benchmarks.cost (the offline emulator)",
        machine=f"{host.machine()}, {os.cpu_count()} CPU(s), Python {host.python_version()}, load average "
        f"{load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end",
        runs=runs,
        run_rows=rows,
        monitor_idle=idle,
        monitor_judged=judged,
        predictions=predictions,
    )
    write(measured, MEASURED)
    print(f"Wrote {MEASURED} in {time.perf_counter() - t0:.0f} s.")


def write(measured: Measured, path: Path) -> None:
    path.write_text(json.dumps(measured.model_dump(mode="json"), indent=1) + "\n")


if __name__ == "__main__":
    main()
