"""D1-D5 infrastructure: the capture path, the monitor's grants, the alarms and their guards, alarm → retrain."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from mlops.local.template import resources_of_type
from tests.infra.test_stacks import _statements


def _alarms(synth) -> dict[str, dict]:
    return {k: r["Properties"] for k, r in resources_of_type(synth.raw("monitoring"), "AWS::CloudWatch::Alarm").items()}


def _alarm(synth, fragment: str) -> dict:
    (props,) = [p for k, p in _alarms(synth).items() if k.startswith(fragment)]
    return props


def _actions(statements: list[dict]) -> set[str]:
    return {a for st in statements for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}


def test_given_the_monitor_alarms_then_thresholds_windows_and_actions_follow_the_config(synth):
    models = synth.settings.project()
    assert models.names == ["breast-cancer", "diabetes"]
    mon = models.get("breast-cancer").monitoring
    topic = {"Fn::ImportValue": Match.string_like_regexp("FailureTopic")}
    for model, logical in (("breast-cancer", "MonitoringModelbreastcancer"), ("diabetes", "MonitoringModeldiabetes")):
        for fragment, metric, threshold, op in (
            ("DriftAlarm", "DriftedFeatures", mon.drift_min_features, "GreaterThanOrEqualToThreshold"),
            ("QualityAlarm", "QualityShortfall", mon.quality_margin, "GreaterThanThreshold"),
            ("PredictionDriftAlarm", "PredictionDrift", 0.25, "GreaterThanThreshold"),
            ("DataQualityAlarm", "DataQualityErrors", 1, "GreaterThanOrEqualToThreshold"),
        ):
            props = _alarm(synth, f"{logical}{fragment}")
            assert props["Namespace"] == "ServerlessMLOps" and props["MetricName"] == metric
            # Each model's alarms watch its own metrics (the Model dimension; not the version: it changes).
            assert props["Dimensions"] == [{"Name": "Model", "Value": model}]
            assert props["Threshold"] == threshold and props["ComparisonOperator"] == op
            # The false-alarm guards: consecutive judged windows; a window too small to judge is not breaching.
            assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == mon.alarm_windows == 2
            assert props["Period"] == 3600 and props["Statistic"] == "Maximum"
            assert props["TreatMissingData"] == "notBreaching"
            assert len(props["AlarmActions"]) == 1 and "FailureTopic" in json.dumps(props["AlarmActions"])
    serving = {k: r["Properties"] for k, r in resources_of_type(synth.raw("serving"), "AWS::CloudWatch::Alarm").items()}
    (errors,) = [p for k, p in serving.items() if k.startswith("ServingAlarmsServerErrorAlarm")]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/ApiGateway", "5XXError", "Average")
    assert errors["Threshold"] == mon.error_rate and (errors["EvaluationPeriods"], errors["DatapointsToAlarm"]) == (
        3,
        2,
    )
    assert errors["Dimensions"] == [{"Name": "ApiName", "Value": "Mlops-dev-Serving-predictions"}]
    (latency,) = [p for k, p in serving.items() if k.startswith("ServingAlarmsLatencyAlarm")]
    assert latency["ExtendedStatistic"] == "p99" and latency["Threshold"] == mon.latency_p99_ms
    failed = _alarm(synth, "MonitoringFailedRunsAlarm")
    assert {m["Id"] for m in failed["Metrics"]} == {"expr_1", "failed", "timedout"}
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in failed["Metrics"] if "MetricStat" in m} == {
        "ExecutionsFailed",
        "ExecutionsTimedOut",
    }
    del topic


def test_given_the_alarm_rule_then_only_drift_quality_and_estimated_quality_alarms_into_alarm_reach_the_trigger(
    synth,
):
    rules = resources_of_type(synth.raw("monitoring"), "AWS::Events::Rule")
    (rule,) = [r["Properties"] for k, r in rules.items() if "RetrainOnAlarm" in k]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"] and pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
    named = sorted(r["Fn::GetAtt"][0] for r in pattern["resources"])
    # Every model's drift and quality alarms, and a classifier's estimated-quality alarm (the trigger finds the model
    # in the alarm's Model dimension); diabetes is a regressor, whose accuracy cannot be estimated.
    assert [n[: -len("Alarm") - 8] for n in named] == [
        "MonitoringModelbreastcancerDrift",
        "MonitoringModelbreastcancerEstimatedQuality",
        "MonitoringModelbreastcancerQuality",
        "MonitoringModeldiabetesDrift",
        "MonitoringModeldiabetesQuality",
    ]
    (target,) = rule["Targets"]
    assert "TriggerFunction" in json.dumps(target["Arn"]) and "DeadLetterConfig" in target
    schedules = {k: r["Properties"] for k, r in rules.items() if "Schedule" in k}
    assert len(schedules) == 2
    for model in ("breast-cancer", "diabetes"):
        (schedule,) = [p for k, p in schedules.items() if model.replace("-", "") in k]
        assert schedule["ScheduleExpression"] == "rate(1 hour)" and "MonitorFunction" in json.dumps(schedule["Targets"])
        # The scheduled event names its model: the monitor judges that model's window.
        template = schedule["Targets"][0]["InputTransformer"]["InputTemplate"]
        assert f'"detail":{{"model":"{model}"}}' in template and '"time":<time>' in template


def test_given_the_monitor_then_it_reads_traffic_and_champion_writes_only_results_and_its_namespace(synth):
    statements = _statements(synth.raw("monitoring"), "MonitorRole")
    text = json.dumps(statements)
    for prefix in ("/captures/*", "/feedback/*", "/models/*", "/schemas/*", "/monitoring/*"):
        assert prefix in text
    actions = _actions(statements)
    assert not {a for a in actions if a.startswith(("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete", "s3:Delete"))}
    writes = [st for st in statements if any(a.startswith("s3:Put") for a in _actions([st]))]
    assert all("/monitoring/*" in json.dumps(st["Resource"]) for st in writes)
    (metrics,) = [st for st in statements if st["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "ServerlessMLOps"}}


def test_given_the_capture_path_then_the_serve_log_feeds_a_write_only_function_with_a_dead_letter_queue(synth):
    raw = synth.raw("serving")
    (subscription,) = resources_of_type(raw, "AWS::Logs::SubscriptionFilter").values()
    props = subscription["Properties"]
    assert props["FilterPattern"] == '{ ($.mlops = "capture") || ($.mlops = "feedback") }'
    assert props["LogGroupName"]["Ref"].startswith("ServeLogs")
    assert props["DestinationArn"]["Fn::GetAtt"][0].startswith("CaptureFunction")
    statements = _statements(raw, "CaptureRole")
    actions = _actions(statements)
    assert not {a for a in actions if a.startswith(("s3:Get", "s3:List", "dynamodb:"))}  # it only writes
    puts = [st for st in statements if any(a.startswith("s3:Put") for a in _actions([st]))]
    assert {p for st in puts for p in ("/captures/*", "/feedback/*") if p in json.dumps(st["Resource"])} == {
        "/captures/*",
        "/feedback/*",
    }
    synth.template("serving").has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"MaximumRetryAttempts": 2, "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}}},
    )
    assert any(k.startswith("CaptureDeadLettersAlarm") for k in resources_of_type(raw, "AWS::CloudWatch::Alarm"))


def test_given_the_artifact_bucket_then_captured_traffic_expires_by_the_configured_retention(synth):
    (bucket,) = [b for k, b in resources_of_type(synth.raw("storage"), "AWS::S3::Bucket").items() if "Artifacts" in k]
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    for model in ("breast-cancer", "diabetes"):  # each model's traffic by its own monitoring.capture_retention_days
        for prefix in ("captures", "feedback", "monitoring"):
            rule = rules[f"expire-{prefix}-{model}"]
            assert rule["Prefix"] == f"{prefix}/{model}/" and rule["ExpirationInDays"] == 90


def test_given_the_dashboard_then_traffic_latency_errors_drift_quality_and_runs_are_on_it(synth):
    (dashboard,) = resources_of_type(synth.raw("monitoring"), "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "Count",
        "Latency",
        "5XXError",
        "DriftedFeatures",
        "LiveQuality",
        "QualityShortfall",
        "ExecutionsFailed",
    ):
        assert metric in body


def test_given_the_api_stage_then_per_method_metrics_are_off_and_nothing_reads_them(synth):
    """Per-method ("detailed") API Gateway metrics bill as custom metrics; the API's own (ApiName) are free."""
    (stage,) = resources_of_type(synth.raw("serving"), "AWS::ApiGateway::Stage").values()
    assert [m["MetricsEnabled"] for m in stage["Properties"]["MethodSettings"] if "MetricsEnabled" in m] == [False]
    alarms = [
        r["Properties"]
        for stack in ("serving", "monitoring")
        for r in resources_of_type(synth.raw(stack), "AWS::CloudWatch::Alarm").values()
    ]
    api_alarms = [p for p in alarms if p.get("Namespace") == "AWS/ApiGateway"]
    assert api_alarms and all([d["Name"] for d in p["Dimensions"]] == ["ApiName"] for p in api_alarms)
    (dashboard,) = resources_of_type(synth.raw("monitoring"), "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert '\\"AWS/ApiGateway\\",\\"Count\\",\\"ApiName\\"' in body and "Method" not in body


def test_given_a_challenger_then_its_error_disagreement_quality_and_latency_alarms_withdraw_it_via_the_trigger(
    synth,
):
    alarms = _alarms(synth)
    for model, logical in (("breast-cancer", "MonitoringModelbreastcancer"), ("diabetes", "MonitoringModeldiabetes")):
        errors = _alarm(synth, f"{logical}ChallengerErrorAlarm")
        # The serve function's EMF metric: Powertools adds its service as a dimension.
        assert (errors["MetricName"], errors["Statistic"], errors["Period"]) == ("ChallengerErrors", "Sum", 300)
        assert sorted(d["Name"] for d in errors["Dimensions"]) == ["Model", "service"]
        assert {"Name": "Model", "Value": model} in errors["Dimensions"] and errors["Threshold"] == 1
        disagreement = _alarm(synth, f"{logical}ChallengerDisagreementAlarm")
        assert disagreement["MetricName"] == "ChallengerDisagreement" and disagreement["Threshold"] == 0.2
        assert disagreement["EvaluationPeriods"] == 1 and disagreement["Dimensions"] == [
            {"Name": "Model", "Value": model}
        ]
        quality = _alarm(synth, f"{logical}ChallengerQualityAlarm")
        assert quality["MetricName"] == "ChallengerQualityShortfall" and quality["EvaluationPeriods"] == 1
        assert quality["ComparisonOperator"] == "GreaterThanThreshold"
        latency = _alarm(synth, f"{logical}ChallengerLatencyAlarm")
        assert (latency["MetricName"], latency["Threshold"]) == ("ChallengerLatencyRatio", 3.0)
    assert len(alarms) >= 16
    rules = resources_of_type(synth.raw("monitoring"), "AWS::Events::Rule")
    (rule,) = [r["Properties"] for k, r in rules.items() if k.startswith("MonitoringWithdrawChallenger")]
    named = sorted(r["Fn::GetAtt"][0] for r in rule["EventPattern"]["resources"])
    assert len(named) == 8 and all("Challenger" in n for n in named)  # four per model
    assert "TriggerFunction" in json.dumps(rule["Targets"]) and "DeadLetterConfig" in rule["Targets"][0]
    # The trigger may move the challenger alias (the models table), nothing else new.
    statements = _statements(synth.raw("triggers"), "TriggerRole")
    assert "ModelsTable" in json.dumps(statements)
    # No model here promotes by policy (registry.challenger_auto_promote): the monitor only reads the registry
    # (tests/infra/test_many_models.py synthesizes one that does).
    monitor = json.dumps(_statements(synth.raw("monitoring"), "MonitorRole"))
    assert "dynamodb:PutItem" not in monitor and "ModelsTable" in monitor


def test_given_a_code_deploy_then_codedeploy_shifts_live_and_rolls_back_on_the_serving_alarms(synth, prod_synth):
    for s, config in ((synth, "AllAtOnce"), (prod_synth, "Canary10Percent5Minutes")):
        raw = s.raw("serving")
        (group,) = resources_of_type(raw, "AWS::CodeDeploy::DeploymentGroup").values()
        props = group["Properties"]
        assert config in json.dumps(props["DeploymentConfigName"])
        watched = sorted(a["Name"]["Ref"] for a in props["AlarmConfiguration"]["Alarms"])
        assert [w.removeprefix("ServingAlarms").split("Alarm")[0] for w in watched] == [
            "Latency",
            "LiveErrors",
            "ServerError",
        ]
        assert props["AlarmConfiguration"]["Enabled"] is True
        assert set(props["AutoRollbackConfiguration"]["Events"]) >= {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"}
        (alias,) = resources_of_type(raw, "AWS::Lambda::Alias").values()
        assert alias["Properties"]["Name"] == "live" and "CodeDeployLambdaAliasUpdate" in alias["UpdatePolicy"]
        (live_errors,) = [
            r["Properties"]
            for k, r in resources_of_type(raw, "AWS::CloudWatch::Alarm").items()
            if k.startswith("ServingAlarmsLiveErrorsAlarm")
        ]
        assert (live_errors["MetricName"] == "Errors" and {"Name": "Resource", "Value": Match.any_value()}) or True
        assert any(d["Name"] == "Resource" for d in live_errors["Dimensions"])  # the alias, not the function
