"""The events that start, route and end runs, parsed with Powertools' parser (pydantic models).

AWS's own shapes: an S3 "Object Created" through EventBridge (Powertools' ``S3EventNotificationEventBridgeModel``),
an EventBridge "Scheduled Event" (``EventBridgeModel``), and — Powertools has no model for them — a CloudWatch
"Alarm State Change" and a Step Functions "Execution Status Change" on EventBridge's envelope; plus the on-demand
request the CLI sends (``{"action": "run", ...}``). A malformed event fails naming the field; an event of none
of these kinds fails naming the kinds accepted.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, S3EventNotificationEventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

EVENTBRIDGE_TIME = "%Y-%m-%dT%H:%M:%SZ"  # how EventBridge writes an event's time


class AlarmState(BaseModel):
    value: str
    reason: str | None = None
    timestamp: str | None = None  # kept as sent: an alarm run's name derives from it


class AlarmMetric(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)


class AlarmMetricStat(BaseModel):
    model_config = ConfigDict(extra="allow")
    metric: AlarmMetric = Field(default_factory=AlarmMetric)


class AlarmQuery(BaseModel):
    model_config = ConfigDict(extra="allow")
    metric_stat: AlarmMetricStat = Field(default_factory=AlarmMetricStat, alias="metricStat")


class AlarmConfiguration(BaseModel):
    model_config = ConfigDict(extra="allow")
    metrics: list[AlarmQuery] = Field(default_factory=list)


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    alarm_name: str = Field(alias="alarmName")
    state: AlarmState
    configuration: AlarmConfiguration = Field(default_factory=AlarmConfiguration)

    @property
    def metric_names(self) -> set[str]:
        return {q.metric_stat.metric.name for q in self.configuration.metrics if q.metric_stat.metric.name}

    @property
    def model(self) -> str | None:
        """The ``Model`` dimension of the alarm's metric (each model's alarms carry one)."""
        return next(
            (d["Model"] for q in self.configuration.metrics if (d := q.metric_stat.metric.dimensions).get("Model")),
            None,
        )


class AlarmStateChange(EventBridgeModel):
    detail: AlarmDetail


class ExecutionStatusDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    execution_arn: str = Field(alias="executionArn")
    state_machine_arn: str = Field(alias="stateMachineArn")
    name: str | None = None
    status: str
    input: str | None = None

    def input_field(self, name: str) -> Any:
        """A field of the execution's input (None when the input is absent or not JSON)."""
        try:
            data = json.loads(self.input or "{}")
        except json.JSONDecodeError:
            return None
        return data.get(name) if isinstance(data, dict) else None


class ExecutionStatusChange(EventBridgeModel):
    detail: ExecutionStatusDetail


class ScheduleDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None  # each model's rule names it


class ScheduledEvent(EventBridgeModel):
    detail: ScheduleDetail = Field(default_factory=ScheduleDetail)

    @property
    def when(self) -> str:
        return self.time.strftime(EVENTBRIDGE_TIME)


class RunRequest(BaseModel):
    """An on-demand run (``mlops run``, a console): the whole prefix, or one object by ``key``."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["run"]
    model: str | None = None
    key: str | None = None
    bucket: str | None = None
    reason: str = ""
    requested_by: str = "unknown"
    idempotency_key: str | None = None


S3Upload = S3EventNotificationEventBridgeModel
TriggerEvent = S3Upload | ScheduledEvent | AlarmStateChange | ExecutionStatusChange | RunRequest

KINDS: dict[tuple[str, str], type[BaseModel]] = {
    ("aws.s3", "Object Created"): S3Upload,
    ("aws.events", "Scheduled Event"): ScheduledEvent,
    ("aws.cloudwatch", "CloudWatch Alarm State Change"): AlarmStateChange,
    ("aws.states", "Step Functions Execution Status Change"): ExecutionStatusChange,
}


def parse_trigger_event(event: dict[str, Any]) -> TriggerEvent:
    """The event as its model: by ``source`` and ``detail-type``, or an on-demand ``{"action": "run"}``."""
    kind = KINDS.get((str(event.get("source")), str(event.get("detail-type"))))
    if kind is None and isinstance(event, dict) and event.get("action") == "run":
        kind = RunRequest
    if kind is None:
        raise ValueError(
            "unrecognised trigger event: expected an S3 'Object Created', a 'Scheduled Event', an alarm state "
            "change, a Step Functions status change or {'action': 'run'}"
        )
    parsed: TriggerEvent = parse(event=event, model=kind)  # type: ignore[assignment]  # one of TriggerEvent's
    return parsed
