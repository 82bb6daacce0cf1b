"""D1-D4 units: capture lines and their shipping, filter patterns, labels, windows, and alarm evaluation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mlops.local.cloudwatch import AlarmEvaluator, pattern_matches, subscription_event
from mlops.monitoring import capture
from mlops.monitoring.monitor import Window, join_labels, shortfall

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
PATTERN = '{ ($.mlops = "capture") || ($.mlops = "feedback") }'  # what the Serving stack synthesizes


def _lines(n: int, width: int = 30) -> list[str]:
    answered = capture.Answered(
        numeric=[f"f{j}" for j in range(width)],
        numbers=np.array([[float(i * j) for j in range(width)] for i in range(n)], dtype=np.float32),
        text={},
        predictions=[i % 2 for i in range(n)],
        probabilities=np.array([[0.4, 0.6]] * n),
        classes=["0", "1"],
    )
    return capture.capture_lines(model="m", version=3, request_id="req-1", answered=answered, now=NOW)


def test_given_a_big_batch_then_it_is_split_under_the_log_event_limit_and_ships_every_row():
    lines = _lines(3000)
    assert len(lines) > 1 and all(len(line) <= capture.MAX_LINE_BYTES for line in lines)
    event = subscription_event(
        "/aws/lambda/serve",
        "2026/11/22/[$LATEST]abc",
        "Capture",
        [{"id": str(i), "timestamp": 0, "message": line} for i, line in enumerate(lines)]
        + [{"id": "x", "timestamp": 0, "message": '{"level":"INFO","message":"cold start"}'}],
    )
    written: dict[str, bytes] = {}
    result = capture.ship(event, lambda key, data: written.__setitem__(key, data))
    assert result == {"objects": 1, "rows": 3000, "ignored": 1}
    (key,) = written
    assert key.startswith("captures/m/date=2026-11-22/15-") and key.endswith(".jsonl")
    rows = capture.from_jsonl(written[key])
    assert [r["row"] for r in rows] == list(range(3000))
    assert rows[7] == {
        "model": "m",
        "version": 3,
        "request_id": "req-1",
        "time": "2026-11-22T15:30:00.000000Z",
        "row": 7,
        "features": {f"f{j}": float(7 * j) for j in range(30)},
        "prediction": 1,
        "probabilities": {"0": 0.4, "1": 0.6},
    }
    # Lambda's retry of the same delivery writes the same object again: no duplicated rows.
    again: dict[str, bytes] = {}
    capture.ship(event, lambda key, data: again.__setitem__(key, data))
    assert again == written


def test_given_the_synthesized_filter_pattern_then_captures_and_labels_match_and_nothing_else():
    (line,) = _lines(1)
    label = capture.feedback_lines(
        model="m", request_id="r", labels=[{"request_id": "q", "row": 0, "label": 1}], now=NOW
    )
    assert pattern_matches(PATTERN, line) and pattern_matches(PATTERN, label[0])
    assert not pattern_matches(PATTERN, '{"level": "INFO", "mlops": "other"}')
    assert not pattern_matches(PATTERN, "START RequestId: 1 Version: $LATEST")
    assert not pattern_matches('{ ($.a = "x") && ($.b = "y") }', '{"a": "x", "b": "z"}')


def test_given_a_sample_rate_then_requests_are_captured_in_that_share():
    assert capture.sampled(1.0) and not capture.sampled(0.0)
    assert capture.sampled(0.25, draw=0.2) and not capture.sampled(0.25, draw=0.3)


def test_given_labels_by_request_and_by_id_then_each_joins_its_prediction_and_the_latest_label_wins():
    captures = [
        {"request_id": "a", "row": 0, "id": "p-1", "time": "2026-11-22T10:00:00Z", "prediction": 1},
        {"request_id": "a", "row": 1, "id": "p-2", "time": "2026-11-22T10:00:00Z", "prediction": 0},
        {"request_id": "b", "row": 0, "id": "p-1", "time": "2026-11-22T11:00:00Z", "prediction": 0},
    ]
    labels = [
        {"request_id": "a", "row": 1, "label": 1, "time": "2026-11-22T12:00:00Z"},
        {"request_id": "a", "row": 1, "label": 0, "time": "2026-11-22T13:00:00Z"},  # corrected later
        {"id": "p-1", "label": 1, "time": "2026-11-22T12:00:00Z"},  # the latest prediction for p-1 (request b)
        {"request_id": "zzz", "row": 0, "label": 1, "time": "2026-11-22T12:00:00Z"},  # unknown: ignored
    ]
    pairs = {(r["request_id"], r["row"]): label for r, label in join_labels(captures, labels)}
    assert pairs == {("a", 1): 0, ("b", 0): 1}


def test_given_a_window_then_it_holds_its_start_and_not_its_end_across_midnight():
    window = Window.ending(datetime(2026, 11, 23, 1, 0, tzinfo=UTC), 24)
    assert window.dates() == ["2026-11-22", "2026-11-23"]
    assert window.holds("2026-11-22T01:00:00Z") and window.holds("2026-11-23T00:59:59.999Z")
    assert not window.holds("2026-11-23T01:00:00Z") and not window.holds("not a time")


def test_given_scores_and_errors_then_the_shortfall_reads_the_same_way():
    assert shortfall("accuracy", 0.95, 0.80) == pytest.approx(0.15)
    assert shortfall("rmse", 10.0, 12.0) == pytest.approx(0.2)  # 20 % worse
    assert shortfall("accuracy", 0.90, 0.95) < 0


class _CloudWatch:
    """Just enough of CloudWatch: datapoints by (end of period), and alarm state."""

    def __init__(self, values: dict[datetime, float], alarm: dict):
        self.values, self.alarm, self.states = values, alarm, []

    def get_metric_statistics(self, StartTime, EndTime, **_):
        points = [v for t, v in self.values.items() if StartTime <= t < EndTime]
        if not points:
            return {"Datapoints": []}
        return {
            "Datapoints": [
                {
                    "Maximum": max(points),
                    "Minimum": min(points),
                    "Sum": sum(points),
                    "SampleCount": len(points),
                    "Average": sum(points) / len(points),
                }
            ]
        }

    def describe_alarms(self, **_):
        return {"MetricAlarms": [self.alarm]}

    def set_alarm_state(self, AlarmName, StateValue, StateReason):
        self.alarm = {**self.alarm, "StateValue": StateValue}
        self.states.append(StateValue)


class _Sns:
    def __init__(self):
        self.published = []

    def publish(self, **kwargs):
        self.published.append(kwargs)


ALARM = {
    "AlarmName": "drift",
    "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:drift",
    "Namespace": "N",
    "MetricName": "DriftedFeatures",
    "Dimensions": [],
    "Statistic": "Maximum",
    "Period": 3600,
    "EvaluationPeriods": 2,
    "DatapointsToAlarm": 2,
    "Threshold": 1.0,
    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    "TreatMissingData": "notBreaching",
    "StateValue": "OK",
    "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:t"],
}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({NOW - timedelta(hours=1): 3, NOW: 2}, "ALARM"),  # two consecutive breaching windows
        ({NOW - timedelta(hours=1): 0, NOW: 5}, "OK"),  # one is not enough
        ({NOW: 5}, "OK"),  # a window too small to judge published nothing: not breaching
        ({}, "OK"),
    ],
)
def test_given_datapoints_then_the_alarm_state_follows_datapoints_to_alarm_and_missing_data(values, expected):
    cw, sns, events = _CloudWatch(values, dict(ALARM)), _Sns(), []
    changes = AlarmEvaluator(cw, sns, events.append, lambda: NOW).evaluate()
    assert cw.alarm["StateValue"] == expected
    if expected == "ALARM":
        (change,) = changes
        assert change["to"] == "ALARM" and "2 out of the last 2 datapoints" in change["reason"]
        (event,) = events
        assert event["source"] == "aws.cloudwatch" and event["detail-type"] == "CloudWatch Alarm State Change"
        assert event["resources"] == [ALARM["AlarmArn"]] and event["detail"]["state"]["value"] == "ALARM"
        assert event["detail"]["previousState"]["value"] == "OK"
        (message,) = sns.published
        assert json.loads(message["Message"])["NewStateValue"] == "ALARM"
    else:
        assert changes == [] and events == [] and sns.published == []


def test_given_answers_as_columns_then_a_line_names_each_field_once_and_ships_rows_as_the_monitor_reads_them():
    answered = capture.Answered(
        numeric=["amount", "age"],
        numbers=np.array([[1.5, np.nan], [0.3, 41.0], [1e-7, 3.0]], dtype=np.float32),  # NaN: a missing number
        text={"colour": ["red", "", "blue"]},  # "": a missing category, as the graph is fed
        predictions=["yes", "no", "yes"],
        probabilities=np.array([[0.25, 0.75], [0.9, 0.1], [0.333333, 0.666667]]),
        classes=["no", "yes"],
        ids=["a-1", None, 7],
    )
    (line,) = capture.capture_lines(model="m", version=2, request_id="r", answered=answered, now=NOW, extra={"ms": 1})
    assert line.count('"amount"') == 1 and line.count('"colour"') == 1 and line.count('"yes"') == 3
    rows = capture.flatten(json.loads(line))
    assert rows[1] == {
        "model": "m",
        "version": 2,
        "request_id": "r",
        "time": "2026-11-22T15:30:00.000000Z",
        "ms": 1,
        "row": 1,
        "features": {"amount": 0.3, "age": 41.0, "colour": None},  # as sent: float32's shortest decimal
        "prediction": "no",
        "probabilities": {"no": 0.9, "yes": 0.1},
    }
    assert rows[0]["features"] == {"amount": 1.5, "age": None, "colour": "red"} and rows[0]["id"] == "a-1"
    assert rows[2]["features"]["amount"] == 1e-7 and rows[2]["id"] == 7 and rows[2]["probabilities"]["yes"] == 0.666667


def test_given_a_batch_split_over_lines_then_rows_keep_their_numbers_and_a_shadow_its_answers():
    n = 3000
    answered = capture.Answered(
        numeric=[f"f{j}" for j in range(20)],
        numbers=np.random.default_rng(0).normal(size=(n, 20)).astype(np.float32),
        text={"c": ["x"] * n},
        predictions=[1.5] * n,
    )
    shadow = {"version": 4, "ms": 0.2, "predictions": [{"prediction": float(i)} for i in range(n)]}
    lines = capture.capture_lines(
        model="m", version=3, request_id="r", answered=answered, now=NOW, extra={"shadow": shadow}
    )
    assert len(lines) > 1 and all(len(line.encode()) <= capture.MAX_LINE_BYTES for line in lines)
    rows = [row for line in lines for row in capture.flatten(json.loads(line))]
    assert [r["row"] for r in rows] == list(range(n))
    assert np.array([r["features"]["f3"] for r in rows], dtype=np.float32).tolist() == answered.numbers[:, 3].tolist()
    assert all(r["shadow"]["prediction"] == float(r["row"]) and "probabilities" not in r for r in rows)


def test_given_a_line_of_the_earlier_row_format_then_it_still_ships():
    """Lines written before the columns format (a deploy's in-flight captures) are read as before."""
    records = [{"a": 1.5, "b": "x"}, {"a": None, "b": "y"}]
    answers = [{"prediction": 1, "probabilities": {"0": 0.2, "1": 0.8}}, {"prediction": 0}]
    head = {"mlops": "capture", "model": "m", "version": 1, "request_id": "r", "time": "2026-11-22T15:30:00Z"}
    rows = capture.flatten({**head, "request": {"records": records}, "predictions": answers})
    assert [(r["row"], r["features"], r["prediction"]) for r in rows] == [(0, records[0], 1), (1, records[1], 0)]
    assert rows[0]["probabilities"] == {"0": 0.2, "1": 0.8} and "probabilities" not in rows[1]


def test_given_a_powertools_emf_line_then_each_value_becomes_metric_data(capsys):
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from mlops.local.cloudwatch import emf_metrics

    metrics = Metrics(namespace="ServerlessMLOps", service="serverless-mlops")
    metrics.add_metric(name="ModelLoadFailures", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="CapturedRows", unit=MetricUnit.Count, value=3)
    metrics.flush_metrics()
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "_aws" in x]
    got = sorted(emf_metrics(line))
    assert got == [
        ("ServerlessMLOps", "CapturedRows", 3.0, {"service": "serverless-mlops"}, "Count"),
        ("ServerlessMLOps", "ModelLoadFailures", 1.0, {"service": "serverless-mlops"}, "Count"),
    ]
    assert emf_metrics('{"level": "INFO", "message": "no metrics here"}') == []


def test_given_two_emulators_then_advancing_one_clock_leaves_the_other(tmp_path, monkeypatch):
    from mlops.local import emulator

    monkeypatch.setattr(emulator, "state_dir", lambda: tmp_path)
    a, b = "http://127.0.0.1:4566", "http://127.0.0.1:4999"
    assert emulator.write_clock_offset(a, 3600) == 3600 and emulator.write_clock_offset(a, 3600) == 7200
    assert emulator.read_clock_offset(a) == 7200 and emulator.read_clock_offset(b) == 0.0


def test_given_captured_requests_then_only_records_all_looked_up_and_found_count_as_served_by_entity():
    from mlops.monitoring.feature_sets import looked_up_rows

    def rows(request: str, n: int, looked_up: dict | None, version: int = 1) -> list[dict]:
        head = {"request_id": request, "version": version, **({"looked_up": looked_up} if looked_up else {})}
        return [{**head, "row": i} for i in range(n)]

    by_entity = rows("a", 3, {"customers": {"found": 3}})
    mixed = rows("b", 3, {"customers": {"found": 2}})  # one record sent in full: which rows? capture cannot say
    missing = rows("c", 2, {"customers": {"found": 1, "missing": 1}})  # one row scored with training defaults
    sent = rows("d", 2, None)
    # a canary's request: its records split between two versions, the counts are the request's
    canary = rows("e", 1, {"customers": {"found": 3}}) + rows("e", 2, {"customers": {"found": 3}}, version=2)
    captured = by_entity + mixed + missing + sent + canary
    served = [r for r in captured if r["version"] == 1]
    assert [(r["request_id"], r["row"]) for r in looked_up_rows(captured, served, "customers")] == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("e", 0),
    ]
    assert looked_up_rows(captured, served, "other") == []
