"""``mlops cost``: what bills while idle is counted from the templates, and priced from the dated table."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from mlops.tools.cost import (
    FunctionUse,
    Measured,
    Usage,
    access_log_bytes,
    estimate,
    inventory,
    load_measured,
    load_prices,
    money,
    render,
)
from mlops.tools.samples import example_config_path

pytestmark = pytest.mark.unit


def _alarm(metric: str, model: str | None = None) -> dict:
    dims = [{"Name": "Model", "Value": model}] if model else [{"Name": "QueueName", "Value": "q"}]
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": metric, "Dimensions": dims}}


def _function(handler: str, memory: int) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {"MemorySize": memory, "Environment": {"Variables": {"MLOPS_FUNCTION": handler}}},
    }


def _schedule(expression: str, function: str, model: str) -> dict:
    template = '{"version":"0","id":<id>,"detail":{"model":"' + model + '"}}'
    target = {"Arn": {"Fn::GetAtt": [function, "Arn"]}, "InputTransformer": {"InputTemplate": template}}
    return {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": expression, "Targets": [target]}}


# The bundled example under another name, capturing half its requests.
CHURN = {
    **yaml.safe_load(example_config_path().read_text()),
    "name": "churn",
    "monitoring": {"capture_sample": 0.5},
}
TEMPLATES = {
    "Mlops-test-Pipeline": {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "Properties": {}},
            "Config": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": "/Mlops-test/config/churn",
                    "Value": json.dumps(CHURN),
                },
            },
            "Catalog": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "/Mlops-test/catalog", "Value": "{}"}},
            "Train": _function("train", 3008),
        }
    },
    "Mlops-test-Monitoring": {
        "Resources": {
            "Drift": _alarm("DriftedFeatures", "churn"),
            "Quality": _alarm("QualityShortfall", "churn"),
            "DeadLetters": _alarm("ApproximateNumberOfMessagesVisible"),
            "Failed": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Metrics": [
                        {"Id": "expr", "Expression": "a + b"},
                        {"Id": "a", "MetricStat": {"Metric": {"MetricName": "ExecutionsFailed"}}},
                        {"Id": "b", "MetricStat": {"Metric": {"MetricName": "ExecutionsTimedOut"}}},
                    ]
                },
            },
            "Dashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {}},
            "Monitor": _function("monitor", 2048),
            "Hourly": _schedule("rate(1 hour)", "Monitor", "churn"),
        }
    },
    "Mlops-test-Triggers": {
        "Resources": {"Trigger": _function("trigger", 512), "Weekly": _schedule("rate(7 days)", "Trigger", "churn")}
    },
    "Mlops-test-Serving": {
        "Resources": {
            "Serve": _function("serve", 1024),
            "Stage": {
                "Type": "AWS::ApiGateway::Stage",
                "Properties": {"AccessLogSetting": {"Format": '{"id":"$context.requestId","s":"$context.status"}'}},
            },
        }
    },
}


def _measured() -> Measured:
    """A run of 1 s of train; a monitor window of 1 s, one series; 1,000 predictions."""
    run = Usage(functions={"train": FunctionUse(invocations=1, duration_ms=1000, memory_mb=3008)}, transitions=40)
    window = Usage(
        functions={"monitor": FunctionUse(invocations=1, duration_ms=1000, memory_mb=2048)}, custom_metrics=1
    )
    serve = Usage(functions={"serve": FunctionUse(invocations=1000, memory_mb=1024)}, api_requests=1000)
    return Measured.model_validate(
        {
            "measured_on": "2026-01-01",
            "how": "a test",
            "runs": {"breast-cancer": run.model_dump()},
            "monitor_idle": {"breast-cancer": window.model_dump()},
            "monitor_judged": {"breast-cancer": window.model_dump()},
            "predictions": {
                "requests": 1000,
                "serve": serve.model_dump(),
                "capture": Usage().model_dump(),
                "capture_format": {"bytes_per_captured_row": 0, "bytes_per_capture_request": 0},
                "cold_start": FunctionUse(invocations=1, duration_ms=500, init_ms=400, memory_mb=1024).model_dump(),
            },
        }
    )


def test_given_templates_then_what_bills_while_idle_is_counted_by_type_and_model():
    inv = inventory(TEMPLATES, "test")
    assert inv.models == ["churn"] and inv.capture_sample == {"churn": 0.5}
    # GIVEN a metric-math alarm over two metrics THEN it bills as two; a Model dimension makes an alarm the model's
    assert inv.alarms == {"churn": 2, None: 2} and inv.alarm_metrics == {"churn": 2, None: 3}
    assert (inv.dashboards, inv.kms_keys, inv.kms_retained) == (1, 1, 1)
    schedules = {(s.handler, s.model): round(s.runs_per_month, 2) for s in inv.schedules}
    assert schedules == {("monitor", "churn"): 730, ("trigger", "churn"): 4.35}
    assert inv.memory_mb == {"train": 3008, "monitor": 2048, "trigger": 512, "serve": 1024}
    assert inv.access_log_bytes == len('{"id":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef","s":"200"}') + 1


def test_given_an_inventory_then_idle_is_alarms_dashboard_key_and_scheduled_work_at_the_tables_prices():
    prices = load_prices()
    e = estimate(inventory(TEMPLATES, "test"), _measured(), prices)
    gb_s = 0.0000133334
    # A run: 1 s of train at 3,008 MB (a full vCPU and more: as measured), 40 transitions.
    run = (1.0005 * 3008 / 1024) * gb_s + 0.2e-6 + 40 * 0.025e-3 + 500 / 1024**3 * 0.5
    assert e.per_run["churn"] == pytest.approx(run) and "as breast-cancer's" in e.notes[0]
    # A monitor window: 1 s at 2,048 MB, one series for its hour.
    window = (1.0005 * 2) * gb_s + 0.2e-6 + 0.30 / 730 + 500 / 1024**3 * 0.5
    shared = 3 * 0.10 + 3.00 + 1.00
    assert e.idle == pytest.approx(shared + 2 * 0.10 + 730 * window + 730 * 3600 / (7 * 86400) * run)
    # Below 1,769 MB a function has a share of a vCPU: the same work takes longer (the cold start's init here).
    assert e.cold_start == pytest.approx(0.4 * 1769 / 1024 * gb_s)


def test_given_a_month_with_traffic_then_the_total_adds_runs_predictions_and_what_traffic_publishes():
    prices = load_prices()
    inv = inventory(TEMPLATES, "test")
    quiet = estimate(inv, _measured(), prices)
    busy = estimate(inv, _measured(), prices, runs_per_month=10, predictions_per_month=1_000_000)
    assert quiet.month_lines == [] and "your volumes" in render(quiet)
    assert busy.month_total == pytest.approx(
        busy.idle
        + 10 * busy.per_run["churn"]
        + 1000 * busy.per_1000_predictions
        + sum(x.dollars for x in busy.month_lines[2:])
    )
    # 1,000 requests: 1,000 API requests at $3.50 a million, 1,000 tiny invocations, an access-log line each.
    assert busy.per_1000_predictions == pytest.approx(
        0.0035 + 1000 * (0.2e-6 + 0.0005 * gb_s_share(1024) + (56 + 500) / 1024**3 * 0.5), rel=1e-3
    )
    with pytest.raises(ValueError, match="eu-west-1"):
        estimate(inv, _measured(), prices, region="mars-east-1")


def gb_s_share(memory_mb: int) -> float:
    return memory_mb / 1024 * 0.0000133334


def test_given_the_price_table_then_every_price_has_a_unit_a_source_page_and_every_region():
    prices = load_prices()
    assert {"us-east-1", "eu-west-1", "eu-central-1"} <= set(prices.regions) and len(prices.regions) >= 4
    for name, item in prices.items.items():
        assert item.unit and item.source.startswith("https://aws.amazon.com/"), name
        assert set(item.prices) == set(prices.regions) and all(p > 0 for p in item.prices.values()), name
    assert prices.rate("cloudwatch_alarm_metric", "us-east-1") == 0.10
    assert prices.rate("lambda_gb_second", "eu-central-1") == 0.0000133334


def test_given_the_committed_measurements_then_they_load_and_name_capture_bytes_per_row():
    measured = load_measured()
    assert measured.predictions.capture_format.bytes_per_captured_row > 0
    assert set(measured.runs) == {"breast-cancer", "diabetes"} and measured.predictions.requests > 0


def test_given_amounts_then_money_keeps_cents_and_three_figures_below_a_dime():
    assert [money(x) for x in (7.3649, 0.41, 0.0753, 0.0000248, 0)] == [
        "$7.36",
        "$0.41",
        "$0.0753",
        "$0.0000248",
        "$0.00",
    ]
    assert access_log_bytes("$context.unknownThing") == 11
    assert re.fullmatch(r"\$\d+\.\d\d", money(1234.5).replace(",", ""))
