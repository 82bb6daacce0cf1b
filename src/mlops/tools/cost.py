"""``mlops cost``: what an environment costs a month idle, per run and per 1,000 predictions — from its synthesized
templates, the figures ``python -m benchmarks.cost`` measured in the emulator, and a dated price table.

Three sources, each named in the output:

* **the templates** (what bills while nothing happens, counted by type): alarms — a metric-math alarm bills each
  metric it queries —, dashboards, KMS keys, the schedules that run while idle (each model's monitor, each model's
  retraining) and what each of their runs is; the functions' memory; the API's access-log format; each model's
  capture rate (its config parameter);
* **the measurements** (:data:`MEASURED`, written by ``python -m benchmarks.cost``): one training run of each
  bundled model, one monitor window without traffic and one judged, and a batch of predictions — each as what AWS
  bills for it (:class:`Usage`): the duration of each function's invocations (memory comes from the templates of
  the environment priced, so one measurement prices dev and prod), state transitions, S3 requests and bytes,
  DynamoDB units, log bytes, custom metric series, events;
* **the price table** (:data:`PRICES`): per region, each price with its unit and the AWS pricing page it comes from.

No free tier is subtracted: it is the account's, shared by everything in it. Storage that accumulates (S3, logs
kept for ``log_retention_days``) is counted for a month only.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mlops.core.clock import schedule_period_s
from mlops.core.config import parse_config
from mlops.core.constants import ENV_FUNCTION
from mlops.infra.functions import ONE_VCPU_MB

HERE = Path(__file__).resolve().parent
PRICES = HERE / "prices.json"
MEASURED = HERE / "measured_costs.json"
DEFAULT_REGION = "us-east-1"
GB = 1024**3

# Lambda writes a platform.start and a platform.report record (JSON log format, X-Ray ids in the report) to the
# function's log group for every invocation; the emulator does not. Their size, estimated from AWS's documented
# record shapes with a 36-character request id: ~150 + ~350 bytes.
LAMBDA_PLATFORM_LOG_BYTES = 500
# A value of typical length for each $context variable of an access-log format (the rest: 10 characters).
CONTEXT_VALUES = {
    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "identity.sourceIp": "203.0.113.10",
    "identity.user": "-",
    "identity.caller": "-",
    "requestTime": "05/Dec/2026:23:54:12 +0000",
    "httpMethod": "POST",
    "resourcePath": "/models/{name}/predict",
    "status": "200",
    "protocol": "HTTP/1.1",
    "responseLength": "96",
}


# -- the price table ------------------------------------------------------------------------------------------
class PriceItem(BaseModel):
    unit: str
    per: float = Field(gt=0, description="The price is for this many units.")
    source: str
    free_tier: str = ""
    prices: dict[str, float]


class PriceTable(BaseModel):
    as_of: date
    currency: str
    note: str
    hours_per_month: float
    items: dict[str, PriceItem]

    @property
    def regions(self) -> list[str]:
        return sorted(set.intersection(*(set(item.prices) for item in self.items.values())))

    def rate(self, item: str, region: str) -> float:
        """The price of one unit of ``item`` in ``region``."""
        entry = self.items[item]
        return entry.prices[region] / entry.per


def load_prices(path: Path = PRICES) -> PriceTable:
    return PriceTable.model_validate_json(path.read_text())


# -- what was measured ----------------------------------------------------------------------------------------
class FunctionUse(BaseModel):
    """One function's share of a measured unit of work (fractional once divided per request).

    Lambda bills wall time. Measured on a shared machine, neither clock is the function's alone: other work stretches
    the wall time, and threads that spin while they wait (OpenMP in the training libraries) inflate the CPU time
    when cores are free. Each invocation counts the lesser of the two (``duration_ms``), for its init and its
    handler; both totals are kept beside it. Projected to the memory priced as Lambda allots CPU (a full vCPU at
    1,769 MB, a share below): a duration there is ``duration_ms * max(1, 1769 / memory)``; each invocation's
    rounding up to the millisecond is added as 0.5 ms.
    """

    invocations: float = 0
    duration_ms: float = 0.0  # the lesser of CPU and wall time of each handler call and cold start's init
    init_ms: float = 0.0  # of which cold starts' init (billed since 2025-08)
    cpu_ms: float = 0.0  # CPU time (user + system, every thread) of the same, for reference
    wall_ms: float = 0.0  # wall time on the measuring machine of the same, for reference
    memory_mb: int = 0  # the function's memory where it was measured (the environment priced may set another)

    def billed_s(self, memory_mb: int) -> float:
        """Lambda's billed duration at ``memory_mb``, in seconds."""
        return (self.duration_ms * max(1.0, ONE_VCPU_MB / memory_mb) + 0.5 * self.invocations) / 1000


class Usage(BaseModel):
    """What one unit of work (a run, a monitor window, a batch of predictions) asked of AWS, in billed units."""

    functions: dict[str, FunctionUse] = Field(default_factory=dict)  # by handler (functions/<handler>/)
    transitions: float = 0  # Step Functions state transitions (states entered)
    s3_put: float = 0  # PUT, COPY, POST and LIST requests
    s3_get: float = 0  # GET and HEAD requests
    s3_bytes_stored: float = 0  # bytes the objects (and object versions) it added hold
    dynamodb_write_units: float = 0
    dynamodb_read_units: float = 0
    log_bytes: float = 0  # CloudWatch Logs ingested: the functions' lines and the state machine's execution log
    custom_metrics: float = 0  # custom metric series published (each bills the hour it is published in)
    metric_requests: float = 0  # PutMetricData calls
    events: float = 0  # custom events on EventBridge
    notifications: float = 0  # SNS publishes (a failed run, a champion change)
    traces: float = 0  # X-Ray traces recorded
    api_requests: float = 0  # API Gateway REST requests

    def scaled(self, factor: float) -> Usage:
        """This usage ``factor`` times (e.g. per request, from a batch)."""
        counts = {k: v * factor for k, v in self.model_dump(exclude={"functions"}).items()}
        functions = {
            name: use.model_copy(
                update={
                    k: getattr(use, k) * factor for k in ("invocations", "duration_ms", "init_ms", "cpu_ms", "wall_ms")
                }
            )
            for name, use in self.functions.items()
        }
        return Usage(functions=functions, **counts)


class Capture(BaseModel):
    """What capture writes to the serve function's log (billed as log ingestion) for one captured request."""

    bytes_per_captured_row: float  # grows with the rows of a request
    bytes_per_capture_request: float  # a request's share whatever its rows (the line's head)
    measured_rows: list[int] = Field(default_factory=list)  # the request sizes the two were fitted on


class Predictions(BaseModel):
    requests: int  # warm POST /predict requests of one record each, all captured
    serve: Usage  # the API request, the serve function and what it logs besides capture
    capture: Usage  # the capture function, its S3 writes and its own log, at capture_sample 1.0
    capture_format: Capture
    cold_start: FunctionUse  # the serve function's first invocation in a fresh environment
    traffic_metrics: float = 0  # custom metric series published in an hour with traffic (the capture function's)


class Measured(BaseModel):
    measured_on: date
    how: str
    machine: str = ""
    runs: dict[str, Usage]  # one training run on the bundled data, by model
    run_rows: dict[str, int] = Field(default_factory=dict)
    monitor_idle: dict[str, Usage]  # one monitor window without traffic (a cold start, as hourly in AWS), by model
    monitor_judged: dict[str, Usage]  # one judged window (traffic and labels), by model
    predictions: Predictions

    def run(self, model: str) -> tuple[str, Usage]:
        """The run measured for ``model``, else the first bundled model's (its name says which)."""
        name = model if model in self.runs else next(iter(self.runs))
        return name, self.runs[name]

    def window(self, model: str, judged: bool) -> Usage:
        windows = self.monitor_judged if judged else self.monitor_idle
        return windows.get(model) or next(iter(windows.values()))


def load_measured(path: Path = MEASURED) -> Measured:
    return Measured.model_validate_json(path.read_text())


# -- what the templates hold ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """A rule that runs while idle, and what each of its runs is."""

    expression: str
    handler: str  # the function it invokes (monitor, trigger)
    model: str | None
    runs_per_month: float


@dataclass
class Inventory:
    """What an environment's templates say bills while idle, and what prices its work."""

    env: str
    models: list[str]
    alarms: dict[str | None, int] = field(default_factory=dict)  # by model (None: shared)
    alarm_metrics: dict[str | None, int] = field(default_factory=dict)
    dashboards: int = 0
    kms_keys: int = 0
    kms_retained: int = 0
    schedules: list[Schedule] = field(default_factory=list)
    memory_mb: dict[str, int] = field(default_factory=dict)  # by handler
    capture_sample: dict[str, float] = field(default_factory=dict)  # by model
    min_samples: dict[str, int] = field(default_factory=dict)
    window_hours: dict[str, float] = field(default_factory=dict)
    access_log_bytes: int = 0  # one API request's access-log line


_SCHEDULED_MODEL = re.compile(r'"detail"\s*:\s*\{\s*"model"\s*:\s*"([^"]+)"')


def scheduled_model(target: dict[str, Any]) -> str | None:
    """The model a schedule's target names (its input's ``detail.model``: mlops.infra's ``scheduled_for``)."""
    found = _SCHEDULED_MODEL.search(str((target.get("InputTransformer") or {}).get("InputTemplate", "")))
    return found.group(1) if found else None


def _resources(templates: dict[str, dict[str, Any]], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (logical, resource)
        for template in templates.values()
        for logical, resource in template.get("Resources", {}).items()
        if resource.get("Type") == kind
    ]


def _model_of_alarm(props: dict[str, Any]) -> str | None:
    for dimension in props.get("Dimensions") or []:
        if dimension.get("Name") == "Model" and isinstance(dimension.get("Value"), str):
            return str(dimension["Value"])
    return None


def access_log_bytes(log_format: str) -> int:
    """The size of one access-log line of ``log_format``, each ``$context`` variable at a typical length."""
    line = re.sub(r"\$context\.([A-Za-z.]+)", lambda m: CONTEXT_VALUES.get(m.group(1), "x" * 10), log_format)
    return len(line.encode()) + 1


def inventory(templates: dict[str, dict[str, Any]], env: str, hours_per_month: float = 730) -> Inventory:
    """Count, from an environment's synthesized templates (stack name → template), what bills while idle."""
    functions: dict[str, str] = {}  # logical id → handler
    inv = Inventory(env=env, models=[])
    for logical, res in _resources(templates, "AWS::Lambda::Function"):
        props = res.get("Properties", {})
        handler = (props.get("Environment") or {}).get("Variables", {}).get(ENV_FUNCTION)
        if handler:
            functions[logical] = handler
            inv.memory_mb[handler] = int(props.get("MemorySize", 128))
    for _, res in _resources(templates, "AWS::SSM::Parameter"):
        props = res.get("Properties", {})
        if str(props.get("Name", "")).rsplit("/", 2)[-2:-1] == ["config"]:
            config = parse_config(json.loads(props["Value"]), str(props["Name"]))
            inv.models.append(config.name)
            inv.capture_sample[config.name] = config.monitoring.capture_sample
            inv.min_samples[config.name] = config.monitoring.min_samples
            inv.window_hours[config.name] = config.monitoring.window_hours
    inv.models.sort()
    for _, res in _resources(templates, "AWS::CloudWatch::Alarm"):
        props = res.get("Properties", {})
        model = _model_of_alarm(props)
        queried = [m for m in props.get("Metrics") or [] if "MetricStat" in m]
        inv.alarms[model] = inv.alarms.get(model, 0) + 1
        inv.alarm_metrics[model] = inv.alarm_metrics.get(model, 0) + (len(queried) or 1)
    inv.dashboards = len(_resources(templates, "AWS::CloudWatch::Dashboard"))
    keys = _resources(templates, "AWS::KMS::Key")
    inv.kms_keys = len(keys)
    inv.kms_retained = sum(res.get("DeletionPolicy") == "Retain" for _, res in keys)
    for _, res in _resources(templates, "AWS::Events::Rule"):
        props = res.get("Properties", {})
        expression = props.get("ScheduleExpression")
        if not expression or props.get("State", "ENABLED") != "ENABLED":
            continue
        for target in props.get("Targets") or []:
            arn = target.get("Arn")
            invoked = arn["Fn::GetAtt"][0] if isinstance(arn, dict) and "Fn::GetAtt" in arn else None
            if invoked not in functions:
                continue
            runs = hours_per_month * 3600 / schedule_period_s(expression)
            inv.schedules.append(Schedule(expression, functions[invoked], scheduled_model(target), runs))
    for _, res in _resources(templates, "AWS::ApiGateway::Stage"):
        log_format = ((res.get("Properties") or {}).get("AccessLogSetting") or {}).get("Format")
        if isinstance(log_format, str):
            inv.access_log_bytes = access_log_bytes(log_format)
    return inv


def environment_templates(env: str, cdk_out: Path | None = None) -> dict[str, dict[str, Any]]:
    """The stacks of environment ``env``: from a cloud assembly (``cdk.out`` of ``./scripts/synth``), else
    synthesized from the project (cached by a hash of its sources: a stale assembly is never read)."""
    from mlops.local.assembly import synthesize
    from mlops.local.emulator import project_models
    from mlops.local.template import load_templates

    outdir = cdk_out if cdk_out is not None else synthesize(project_models(None, env), env)
    templates = {k: v for k, v in load_templates(outdir).items() if k.startswith(f"Mlops-{env}-")}
    if not templates:
        raise FileNotFoundError(f"no Mlops-{env}-* templates in {outdir} (run ./scripts/synth {env})")
    return templates


# -- pricing --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pricer:
    prices: PriceTable
    region: str
    memory_mb: dict[str, int]  # the environment's, by handler

    def rate(self, item: str) -> float:
        return self.prices.rate(item, self.region)

    def lines(self, usage: Usage) -> dict[str, float]:
        """What ``usage`` costs, by service."""
        r = self.rate
        gb_s = self.gb_seconds(usage)
        invocations = sum(use.invocations for use in usage.functions.values())
        logged = usage.log_bytes + invocations * LAMBDA_PLATFORM_LOG_BYTES
        return {
            "Lambda": gb_s * r("lambda_gb_second") + invocations * r("lambda_request"),
            "Step Functions": usage.transitions * r("sfn_transition"),
            "S3": usage.s3_put * r("s3_put")
            + usage.s3_get * r("s3_get")
            + usage.s3_bytes_stored / GB * r("s3_gb_month"),
            "DynamoDB": usage.dynamodb_write_units * r("dynamodb_write_unit")
            + usage.dynamodb_read_units * r("dynamodb_read_unit"),
            "CloudWatch Logs": logged / GB * r("logs_ingestion_gb"),
            "CloudWatch metrics": usage.custom_metrics * r("cloudwatch_metric_month") / self.prices.hours_per_month
            + usage.metric_requests * r("cloudwatch_api_request"),
            "EventBridge": usage.events * r("eventbridge_event"),
            "SNS": usage.notifications * r("sns_publish"),
            "X-Ray": usage.traces * r("xray_trace"),
            "API Gateway": usage.api_requests * r("apigw_rest_request"),
        }

    def cost(self, usage: Usage) -> float:
        return sum(self.lines(usage).values())

    def memory(self, handler: str, use: FunctionUse) -> int:
        return self.memory_mb.get(handler, use.memory_mb)

    def gb_seconds(self, usage: Usage) -> float:
        return sum(
            use.billed_s(self.memory(name, use)) * self.memory(name, use) / 1024
            for name, use in usage.functions.items()
        )


@dataclass
class Line:
    what: str
    dollars: float


@dataclass
class Estimate:
    """Everything ``mlops cost`` prints, in dollars a month unless named otherwise."""

    env: str
    region: str
    prices_as_of: date
    measured_on: date
    measured_how: str
    shared: list[Line]
    per_model: dict[str, list[Line]]
    per_run: dict[str, float]  # by model: one run on data the size of the bundled example
    run_basis: dict[str, str]  # by model: the measured run it is priced from
    run_detail: dict[str, str]
    per_1000_predictions: float
    prediction_detail: str
    cold_start: float  # dollars a cold start of the serve function adds
    runs_per_month: float
    predictions_per_month: float
    month_total: float
    month_lines: list[Line]
    notes: list[str]

    @property
    def idle(self) -> float:
        return sum(x.dollars for x in self.shared) + sum(self.model_idle(m) for m in self.per_model)

    def model_idle(self, model: str) -> float:
        return sum(x.dollars for x in self.per_model[model])


def money(dollars: float) -> str:
    """Dollars to the cent from a dime up; under a dime, to three significant figures ($0.0753)."""
    if dollars == 0 or abs(dollars) >= 0.1:
        return f"${dollars:,.2f}"
    return f"${dollars:.{2 - math.floor(math.log10(abs(dollars)))}f}"


def by_service(lines: dict[str, float], times: float = 1) -> str:
    """The items of a cost that reach a twentieth of a cent, largest first (``times`` over)."""
    top = sorted(((v * times, k) for k, v in lines.items() if v * times >= 0.00005), reverse=True)
    return ", ".join(f"{k} {money(v)}" for v, k in top)


def count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() or value >= 100 else f"{value:,.1f}"


def _shared(inv: Inventory, rate: Any) -> list[Line]:
    alarms, metrics = inv.alarms.get(None, 0), inv.alarm_metrics.get(None, 0)
    return [
        Line(
            f"CloudWatch alarms: {alarms}, {metrics} alarm metrics"
            + (" (metric math bills each metric it queries)" if metrics != alarms else ""),
            metrics * rate("cloudwatch_alarm_metric"),
        ),
        Line(
            f"CloudWatch dashboard: {inv.dashboards} (free if among the account's first three)",
            inv.dashboards * rate("cloudwatch_dashboard"),
        ),
        Line(
            f"KMS key: {inv.kms_keys} (the notifications topic's"
            + ("; kept after cdk destroy)" if inv.kms_retained else ")"),
            inv.kms_keys * rate("kms_key_month"),
        ),
    ]


def _runs(
    inv: Inventory, measured: Measured, pricer: Pricer
) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """Each model's run: its cost, the measured run it is priced from, what it holds."""
    per_run: dict[str, float] = {}
    basis: dict[str, str] = {}
    detail: dict[str, str] = {}
    for model in inv.models:
        basis[model], usage = measured.run(model)
        per_run[model] = pricer.cost(usage)
        detail[model] = (
            f"{pricer.gb_seconds(usage):.0f} GB-s in {count(sum(u.invocations for u in usage.functions.values()))} "
            f"invocations, {count(usage.transitions)} transitions, {count(usage.s3_put + usage.s3_get)} S3 "
            f"requests, {usage.s3_bytes_stored / 1e6:.1f} MB stored, {usage.log_bytes / 1e3:.0f} KB logged, "
            f"{count(usage.custom_metrics)} metric series; {by_service(pricer.lines(usage))}"
        )
    return per_run, basis, detail


def _models(
    inv: Inventory, measured: Measured, pricer: Pricer, per_run: dict[str, float], predictions_per_month: float
) -> tuple[dict[str, list[Line]], list[Line]]:
    """Each model's idle lines (its alarms and schedules), and what judging its windows adds with traffic."""
    rate, hours = pricer.rate, pricer.prices.hours_per_month
    per_model: dict[str, list[Line]] = {}
    judged_lines: list[Line] = []
    for model in inv.models:
        lines = [
            Line(
                f"CloudWatch alarms: {inv.alarms.get(model, 0)}",
                inv.alarm_metrics.get(model, 0) * rate("cloudwatch_alarm_metric"),
            )
        ]
        for s in (s for s in inv.schedules if s.model == model and s.handler == "monitor"):
            idle = measured.window(model, judged=False)
            lines.append(
                Line(
                    f"monitor, {s.expression}: {count(s.runs_per_month)} cold starts, "
                    f"{count(idle.custom_metrics)} metric series, {count(idle.s3_put)} S3 puts each",
                    s.runs_per_month * pricer.cost(idle),
                )
            )
            # With traffic, a window holding min_samples records is judged: more series, more work.
            per_window = predictions_per_month / len(inv.models) * inv.window_hours.get(model, 24) / hours
            if predictions_per_month and per_window >= inv.min_samples.get(model, 100):
                judged = measured.window(model, judged=True)
                judged_lines.append(
                    Line(
                        f"{model}'s monitor judges every window: {count(judged.custom_metrics)} metric series",
                        s.runs_per_month * (pricer.cost(judged) - pricer.cost(idle)),
                    )
                )
        lines += [
            Line(
                f"retraining, {s.expression}: {count(s.runs_per_month)} runs at {money(per_run[model])}",
                s.runs_per_month * per_run[model],
            )
            for s in inv.schedules
            if s.model == model and s.handler == "trigger"
        ]
        per_model[model] = lines
    return per_model, judged_lines


def _prediction(inv: Inventory, measured: Measured, pricer: Pricer) -> tuple[float, str, float]:
    """One prediction's cost (one record, warm, captured at the models' rate), what it holds, a cold start's cost."""
    p = measured.predictions
    serve, capture = p.serve.scaled(1 / p.requests), p.capture.scaled(1 / p.requests)
    fmt = p.capture_format
    capture_bytes = fmt.bytes_per_capture_request + fmt.bytes_per_captured_row  # one record a request
    sample = sum(inv.capture_sample.values()) / len(inv.capture_sample) if inv.capture_sample else 1.0
    logs = pricer.rate("logs_ingestion_gb") / GB
    lines = pricer.lines(serve)
    for service, dollars in pricer.lines(capture).items():
        lines[service] += sample * dollars
    lines["CloudWatch Logs"] += (inv.access_log_bytes + sample * capture_bytes) * logs
    cost = sum(lines.values())
    serve_ms = 1000 * sum(u.billed_s(pricer.memory(n, u)) for n, u in serve.functions.items())
    detail = (
        f"one record a request, warm: {serve_ms:.1f} ms of serve at {inv.memory_mb.get('serve', 0)} MB, an API "
        f"request, {inv.access_log_bytes} B of access log; capture at {sample:.0%}: {capture_bytes:.0f} B logged "
        f"({fmt.bytes_per_capture_request:.0f} B + bytes_per_captured_row {fmt.bytes_per_captured_row:.0f}), "
        f"{1000 * capture.s3_put:,.0f} S3 puts per 1,000; per 1,000: {by_service(lines, 1000)}"
    )
    init = FunctionUse(duration_ms=p.cold_start.init_ms, memory_mb=p.cold_start.memory_mb)
    return cost, detail, pricer.cost(Usage(functions={"serve": init}))


def estimate(
    inv: Inventory,
    measured: Measured,
    prices: PriceTable,
    *,
    region: str = DEFAULT_REGION,
    runs_per_month: float = 0,
    predictions_per_month: float = 0,
) -> Estimate:
    """Price an environment's inventory with the measured figures; ``runs_per_month`` (beside the scheduled ones)
    and ``predictions_per_month`` (across its models) give the month's total."""
    if region not in prices.regions:
        raise ValueError(f"no prices for region {region!r} in {PRICES.name}; it has {', '.join(prices.regions)}")
    pricer = Pricer(prices, region, inv.memory_mb)
    hours = prices.hours_per_month
    per_run, run_basis, run_detail = _runs(inv, measured, pricer)
    per_model, judged_lines = _models(inv, measured, pricer, per_run, predictions_per_month)
    per_prediction, prediction_detail, cold_start = _prediction(inv, measured, pricer)
    notes = [
        f"{m}'s run is priced as {b}'s measured run (the benchmark runs the bundled models)"
        for m, b in run_basis.items()
        if b != m
    ]
    notes += [f"{s.expression} is counted as hourly (an upper bound)" for s in inv.schedules if "cron(" in s.expression]
    notes += [
        f"a schedule ({s.expression}) of {s.handler} names no model of the environment: not priced"
        for s in inv.schedules
        if s.model not in per_model
    ]
    if predictions_per_month > hours * 3600:
        notes.append(
            "X-Ray's default rule records one request a second and 5 % of the rest: past "
            f"{hours * 3600 / 1e6:.1f} million predictions a month, one trace each is an upper bound"
        )
    month_lines: list[Line] = []
    if runs_per_month:
        mean_run = sum(per_run.values()) / len(per_run) if per_run else 0.0
        month_lines.append(
            Line(f"{count(runs_per_month)} runs at {money(mean_run)} (the models' mean)", runs_per_month * mean_run)
        )
    if predictions_per_month:
        traffic = measured.predictions.traffic_metrics
        month_lines += [
            Line(f"{count(predictions_per_month)} predictions", predictions_per_month * per_prediction),
            Line(
                f"while traffic flows: {count(traffic)} metric series (capture's), by the hour",
                traffic * pricer.rate("cloudwatch_metric_month") * min(hours, predictions_per_month) / hours,
            ),
            *judged_lines,
        ]
    result = Estimate(
        env=inv.env,
        region=region,
        prices_as_of=prices.as_of,
        measured_on=measured.measured_on,
        measured_how=measured.how,
        shared=_shared(inv, pricer.rate),
        per_model=per_model,
        per_run=per_run,
        run_basis=run_basis,
        run_detail=run_detail,
        per_1000_predictions=1000 * per_prediction,
        prediction_detail=prediction_detail,
        cold_start=cold_start,
        runs_per_month=runs_per_month,
        predictions_per_month=predictions_per_month,
        month_total=0.0,
        month_lines=month_lines,
        notes=notes,
    )
    result.month_total = result.idle + sum(x.dollars for x in month_lines)
    return result


def render(e: Estimate, width: int = 112) -> str:
    """The estimate as ``mlops cost`` prints it."""

    def row(label: str, dollars: float, indent: int = 0) -> str:
        text = " " * indent + label
        return f"{text:<{width - 12}}{money(dollars):>12}" if len(text) < width - 12 else f"{text}  {money(dollars)}"

    def wrap(text: str) -> list[str]:
        return textwrap.wrap(text, width, initial_indent="    ", subsequent_indent="    ")

    out = [
        f"mlops cost: {e.env} in {e.region}, {len(e.per_model)} model(s) ({', '.join(e.per_model)})",
        f"  prices: mlops/tools/{PRICES.name} as of {e.prices_as_of} (AWS list prices in USD, no free tier)",
        f"  measured: {e.measured_how} on {e.measured_on} (mlops/tools/{MEASURED.name})",
        "",
        row("Idle, a month", e.idle),
        row("shared", sum(x.dollars for x in e.shared), 2),
        *(row(x.what, x.dollars, 4) for x in e.shared),
    ]
    for model, lines in e.per_model.items():
        out.append(row(model, e.model_idle(model), 2))
        out.extend(row(x.what, x.dollars, 4) for x in lines)
    out += ["", "Per run (on the bundled data: the trigger, every step and trial, cold as a week apart)"]
    for model, dollars in e.per_run.items():
        basis = "" if e.run_basis[model] == model else f" (as {e.run_basis[model]}'s)"
        out += [row(f"{model}{basis}", dollars, 2), *wrap(e.run_detail[model])]
    out += [
        "",
        row("Per 1,000 predictions", e.per_1000_predictions),
        *wrap(e.prediction_detail),
        f"    a cold start of serve adds {money(e.cold_start)} (its init; sparse traffic cold-starts often)",
    ]
    if e.month_lines:
        out += [
            "",
            row(
                f"A month with {count(e.runs_per_month)} runs and {count(e.predictions_per_month)} predictions",
                e.month_total,
            ),
            row("idle", e.idle, 2),
            *(row(x.what, x.dollars, 2) for x in e.month_lines),
        ]
    else:
        out += ["", "A month at your volumes: --runs-per-month N --predictions-per-month M"]
    if e.notes:
        out += ["", *(f"note: {n}" for n in e.notes)]
    return "\n".join(out)


def as_json(e: Estimate) -> dict[str, Any]:
    return {
        "env": e.env,
        "region": e.region,
        "prices_as_of": str(e.prices_as_of),
        "measured_on": str(e.measured_on),
        "idle_per_month": round(e.idle, 4),
        "idle_per_model": {m: round(e.model_idle(m), 4) for m in e.per_model},
        "idle_lines": {
            "shared": [{"what": x.what, "dollars": round(x.dollars, 4)} for x in e.shared],
            **{
                m: [{"what": x.what, "dollars": round(x.dollars, 4)} for x in lines] for m, lines in e.per_model.items()
            },
        },
        "per_run": {m: round(v, 6) for m, v in e.per_run.items()},
        "per_1000_predictions": round(e.per_1000_predictions, 6),
        "cold_start": round(e.cold_start, 8),
        "month": {
            "runs": e.runs_per_month,
            "predictions": e.predictions_per_month,
            "total": round(e.month_total, 4),
        },
        "notes": e.notes,
    }
