"""CloudWatch offline: what moto stores but does not do.

* **Logs.** A function's stdout lines go to its log group (``PutLogEvents``), and each subscription filter of
  that group hands the lines its pattern matches to its destination function — gzipped and base64-encoded
  as ``{"awslogs": {"data": …}}``, invoked asynchronously — as CloudWatch Logs does. Lines in the
  Embedded Metric Format (Powertools ``Metrics``) become metric data, as CloudWatch extracts them.
* **Service metrics.** The local API Gateway's ``Count``/``4XXError``/``5XXError``/``Latency`` and Step
  Functions' ``ExecutionsSucceeded``/``Failed``/``TimedOut``/``Aborted``, published in the background.
* **Alarms.** moto keeps alarms and metric data but never evaluates them. :class:`AlarmEvaluator` does,
  through the CloudWatch API only: for each alarm, the statistic over its last ``EvaluationPeriods`` periods
  (a math expression of ``a + b`` form is summed), ``TreatMissingData`` and ``DatapointsToAlarm``; on a
  change it sets the state (``describe-alarms`` shows it), publishes to the alarm's SNS actions, and sends
  the "CloudWatch Alarm State Change" event through EventBridge. Percentile statistics are evaluated as the
  period's maximum (moto keeps no distributions): stricter than AWS, never laxer.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import re
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.core import clock

_TERM = re.compile(r'\$\.([\w.]+)\s*=\s*"([^"]*)"')


def pattern_matches(pattern: str, message: str) -> bool:
    """CloudWatch Logs filter patterns, the forms this app uses: JSON equality terms joined by ``||`` or
    ``&&`` (``{ ($.mlops = "capture") || ($.mlops = "feedback") }``), plain terms, or empty (everything)."""
    pattern = pattern.strip()
    if not pattern:
        return True
    if not pattern.startswith("{"):
        return all(term.strip('"') in message for term in pattern.split())
    try:
        obj = json.loads(message)
    except json.JSONDecodeError:
        return False
    if not isinstance(obj, dict):
        return False

    def value(path: str) -> Any:
        node: Any = obj
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    results = [
        str(value(path)) == expected if value(path) is not None else False for path, expected in _TERM.findall(pattern)
    ]
    return any(results) if "||" in pattern else bool(results) and all(results)


def subscription_event(
    log_group: str, log_stream: str, filter_name: str, events: list[dict[str, Any]]
) -> dict[str, Any]:
    """A CloudWatch Logs subscription delivery, exactly as Lambda receives it."""
    data = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": [filter_name],
        "logEvents": events,
    }
    payload = base64.b64encode(gzip.compress(json.dumps(data, separators=(",", ":")).encode())).decode()
    return {"awslogs": {"data": payload}}


def emf_metrics(line: str) -> list[tuple[str, str, float, dict[str, str], str]]:
    """(namespace, name, value, dimensions, unit) for each value an Embedded Metric Format line carries."""
    if '"_aws"' not in line:
        return []
    try:
        obj = json.loads(line)
        directives = obj["_aws"]["CloudWatchMetrics"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return []
    out = []
    for directive in directives:
        for dimension_set in directive.get("Dimensions") or [[]]:
            dims = {d: str(obj[d]) for d in dimension_set if d in obj}
            for metric in directive.get("Metrics", []):
                values = obj.get(metric["Name"])
                for value in values if isinstance(values, list) else [values]:
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        out.append(
                            (directive["Namespace"], metric["Name"], float(value), dims, metric.get("Unit", "None"))
                        )
    return out


class LogRouter:
    """Function log lines into CloudWatch Logs, and on to the subscription filters' destinations."""

    def __init__(
        self, logs_client: Any, deliver: Callable[[str, dict[str, Any]], None], metrics: MetricsBuffer | None = None
    ) -> None:
        self._logs = logs_client
        self._deliver = deliver  # (destination function physical name, event): an asynchronous invocation
        self._metrics = metrics
        self.subscriptions: dict[str, list[tuple[str, str, str]]] = {}  # group -> (filter name, pattern, fn)
        self._streams: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def subscribe(self, log_group: str, filter_name: str, pattern: str, destination: str) -> None:
        self.subscriptions.setdefault(log_group, []).append((filter_name, pattern, destination))

    def ship(self, log_group: str, function: str, lines: list[str]) -> None:
        if not lines or not log_group:
            return
        when = clock.utcnow()  # the emulated clock, as every record of the emulator
        now = int(when.timestamp() * 1000)
        stream = f"{when:%Y/%m/%d}/[$LATEST]{function[-12:]}"
        events: list[dict[str, Any]] = [{"timestamp": now, "message": line} for line in lines]
        try:
            with self._lock:
                if (log_group, stream) not in self._streams:
                    with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
                        self._logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
                    self._streams.add((log_group, stream))
            self._logs.put_log_events(logGroupName=log_group, logStreamName=stream, logEvents=events)
        except (ClientError, BotoCoreError):  # the log group may not be emulated; subscriptions still deliver
            pass
        if self._metrics is not None:
            for line in lines:
                for namespace, name, value, dims, unit in emf_metrics(line):
                    self._metrics.add(namespace, name, value, dims, unit)
        for filter_name, pattern, destination in self.subscriptions.get(log_group, []):
            matched = [
                {"id": uuid.uuid4().hex, "timestamp": e["timestamp"], "message": e["message"]}
                for e in events
                if pattern_matches(pattern, str(e["message"]))
            ]
            if matched:
                self._deliver(destination, subscription_event(log_group, stream, filter_name, matched))


class MetricsBuffer:
    """Service metrics (API Gateway, Step Functions) batched and published in the background."""

    def __init__(self, cloudwatch: Any, interval_s: float = 0.5) -> None:
        self._cw = cloudwatch
        self._items: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(interval_s,), name="mlops-metrics", daemon=True)
        self._thread.start()

    def add(self, namespace: str, name: str, value: float, dimensions: dict[str, str], unit: str = "None") -> None:
        datum = {
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            "Timestamp": clock.utcnow(),  # the emulated clock: alarms evaluate these at the same clock
            "Value": float(value),
            "Unit": unit,
        }
        with self._lock:
            self._items.append((namespace, datum))

    def flush(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for namespace, datum in items:
            by_namespace.setdefault(namespace, []).append(datum)
        for namespace, data in by_namespace.items():
            for i in range(0, len(data), 1000):
                with contextlib.suppress(Exception):  # the endpoint is stopping
                    self._cw.put_metric_data(Namespace=namespace, MetricData=data[i : i + 1000])

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.flush()


# -- alarms ----------------------------------------------------------------------------------------
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_STATISTICS = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")


def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``configuration.metrics`` of CloudWatch's state-change event for ``alarm`` (DescribeAlarms shape)."""
    if alarm.get("Metrics"):
        out = []
        for q in alarm["Metrics"]:
            entry: dict[str, Any] = {"id": q["Id"], "returnData": q.get("ReturnData", True)}
            if "MetricStat" in q:
                stat = q["MetricStat"]
                entry["metricStat"] = {
                    "metric": {
                        "namespace": stat["Metric"].get("Namespace"),
                        "name": stat["Metric"].get("MetricName"),
                        "dimensions": {d["Name"]: d["Value"] for d in stat["Metric"].get("Dimensions", [])},
                    },
                    "period": stat.get("Period"),
                    "stat": stat.get("Stat"),
                }
            if "Expression" in q:
                entry["expression"] = q["Expression"]
            out.append(entry)
        return out
    return [
        {
            "id": "m1",
            "returnData": True,
            "metricStat": {
                "metric": {
                    "namespace": alarm.get("Namespace"),
                    "name": alarm.get("MetricName"),
                    "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
                },
                "period": alarm.get("Period"),
                "stat": alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
            },
        }
    ]


class AlarmEvaluator:
    """Evaluate every alarm of the account now (``clock()``), as CloudWatch would; return the changes.

    ``exclusive``: a lock shared with every other evaluator of the same account (the emulator's own and a CLI's
    ``mlops local tick``, in another process): two evaluations at once would both see the old state and announce
    one change twice — a second ALARM at the trigger."""

    def __init__(
        self,
        cloudwatch: Any,
        sns: Any,
        send_event: Callable[[dict[str, Any]], None],
        clock: Callable[[], datetime],
        region: str = "us-east-1",
        account: str = "123456789012",
        exclusive: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        self._cw, self._sns, self._send, self._clock = cloudwatch, sns, send_event, clock
        self.region, self.account = region, account
        self._lock = threading.Lock()
        self._exclusive = exclusive or contextlib.nullcontext

    def _statistic(self, stat: dict[str, Any], start: datetime, end: datetime, period: int) -> float | None:
        metric = stat["Metric"]
        statistic = stat.get("Stat") or "Average"
        return self._value(
            metric["Namespace"], metric["MetricName"], metric.get("Dimensions") or [], statistic, start, end, period
        )

    def _value(
        self,
        namespace: str,
        name: str,
        dimensions: list[dict[str, str]],
        statistic: str,
        start: datetime,
        end: datetime,
        period: int,
    ) -> float | None:
        points = self._cw.get_metric_statistics(
            Namespace=namespace,
            MetricName=name,
            Dimensions=dimensions,
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=list(_STATISTICS),
        )["Datapoints"]
        if not points:
            return None
        key = statistic if statistic in _STATISTICS else "Maximum"  # percentiles: the period's maximum
        values = [float(p[key]) for p in points if key in p]
        if not values:
            return None
        if key == "Sum" or key == "SampleCount":
            return sum(values)
        if key == "Average":
            counts = [float(p.get("SampleCount", 1)) for p in points]
            return sum(float(p["Sum"]) for p in points) / max(sum(counts), 1.0)
        return max(values) if key == "Maximum" else min(values)

    def datapoints(self, alarm: dict[str, Any], now: datetime) -> list[float | None]:
        """The alarm's value in each of its last EvaluationPeriods periods, newest first (None: missing)."""
        out: list[float | None] = []
        periods = int(alarm.get("EvaluationPeriods", 1))
        for i in range(periods):
            if alarm.get("Metrics"):
                queries = alarm["Metrics"]
                period = next((int(q["MetricStat"]["Period"]) for q in queries if q.get("MetricStat")), 300)
                end = now - timedelta(seconds=i * period) + timedelta(seconds=1)
                start = end - timedelta(seconds=period)
                parts = [self._statistic(q["MetricStat"], start, end, period) for q in queries if q.get("MetricStat")]
                present = [p for p in parts if p is not None]
                out.append(sum(present) if present else None)  # expressions of the form a + b + …
            else:
                period = int(alarm.get("Period", 300))
                end = now - timedelta(seconds=i * period) + timedelta(seconds=1)
                start = end - timedelta(seconds=period)
                statistic = alarm.get("Statistic") or alarm.get("ExtendedStatistic") or "Average"
                out.append(
                    self._value(
                        alarm["Namespace"],
                        alarm["MetricName"],
                        alarm.get("Dimensions") or [],
                        statistic,
                        start,
                        end,
                        period,
                    )
                )
        return out

    def decide(self, alarm: dict[str, Any], points: list[float | None]) -> tuple[str, str]:
        """(state, reason) from the datapoints, the comparison, TreatMissingData and DatapointsToAlarm."""
        compare = _COMPARE[alarm["ComparisonOperator"]]
        threshold = float(alarm["Threshold"])
        treat = alarm.get("TreatMissingData", "missing")
        needed = int(alarm.get("DatapointsToAlarm") or alarm.get("EvaluationPeriods", 1))
        present = [p for p in points if p is not None]
        breaching = sum(1 for p in present if compare(p, threshold))
        if treat == "breaching":
            breaching += len(points) - len(present)
        shown = [None if p is None else round(p, 6) for p in points]
        if breaching >= needed:
            return "ALARM", (
                f"Threshold Crossed: {breaching} out of the last {len(points)} datapoints {shown} were "
                f"{alarm['ComparisonOperator']} the threshold ({threshold:g})"
            )
        if not present and treat in ("missing", "ignore"):
            return ("INSUFFICIENT_DATA" if treat == "missing" else alarm.get("StateValue", "INSUFFICIENT_DATA")), (
                f"Insufficient Data: no datapoints in the last {len(points)} period(s)"
            )
        return "OK", (
            f"Threshold Crossed: {breaching} out of the last {len(points)} datapoints {shown} breached the "
            f"threshold ({threshold:g}); {needed} needed"
        )

    def evaluate(self) -> list[dict[str, Any]]:
        """Evaluate every alarm; return the state changes made (each already announced)."""
        with self._lock, self._exclusive():
            now = self._clock()
            changes = []
            for alarm in self._cw.describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]:
                state, reason = self.decide(alarm, self.datapoints(alarm, now))
                previous = alarm.get("StateValue", "INSUFFICIENT_DATA")
                if state == previous:
                    continue
                self._cw.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
                change = self._announce(alarm, previous, state, reason, now)
                changes.append(change)
            return changes

    def _announce(self, alarm: dict[str, Any], previous: str, state: str, reason: str, now: datetime) -> dict[str, Any]:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": self.account,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [alarm["AlarmArn"]],
            "detail": {
                "alarmName": alarm["AlarmName"],
                "state": {"value": state, "reason": reason, "timestamp": stamp},
                "previousState": {"value": previous, "reason": alarm.get("StateReason", ""), "timestamp": stamp},
                "configuration": {"description": alarm.get("AlarmDescription", ""), "metrics": alarm_metrics(alarm)},
            },
        }
        self._send(event)
        actions = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}[state]
        for topic in alarm.get(actions) or []:
            if ":sns:" in topic:
                with contextlib.suppress(Exception):
                    self._sns.publish(
                        TopicArn=topic,
                        Subject=f'{state}: "{alarm["AlarmName"]}"'[:100],
                        Message=json.dumps(
                            {
                                "AlarmName": alarm["AlarmName"],
                                "AlarmDescription": alarm.get("AlarmDescription"),
                                "NewStateValue": state,
                                "NewStateReason": reason,
                                "OldStateValue": previous,
                                "StateChangeTime": stamp,
                            }
                        ),
                    )
        return {"alarm": alarm["AlarmName"], "from": previous, "to": state, "reason": reason}


def alarm_state_changes(cloudwatch: Any, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
    """Every alarm state change with ``since < time <= until``, oldest first, from ``DescribeAlarmHistory``:
    whoever evaluated (the emulator in the background, a CLI's tick, a ``set-alarm-state``)."""
    pages = cloudwatch.get_paginator("describe_alarm_history").paginate(
        HistoryItemType="StateUpdate",
        ScanBy="TimestampAscending",
        EndDate=until,
        **({"StartDate": since} if since is not None else {}),
    )
    out = []
    for page in pages:
        for item in page.get("AlarmHistoryItems", []):
            when = item["Timestamp"]
            if since is not None and when <= since:
                continue
            try:
                data = json.loads(item.get("HistoryData") or "{}")
            except ValueError:
                data = {}
            out.append(
                {
                    "alarm": item["AlarmName"],
                    "from": (data.get("oldState") or {}).get("stateValue"),
                    "to": (data.get("newState") or {}).get("stateValue"),
                    "reason": (data.get("newState") or {}).get("stateReason", ""),
                    "at": when,
                }
            )
    return out
