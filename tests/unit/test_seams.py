"""The emulator's seams into moto: event shapes and rule matching, as EventBridge does them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.local import seams
from mlops.local.template import render, state_machine_definition
from mlops.tools.platform import LIVENESS_S

pytestmark = pytest.mark.unit


class _Pattern:
    def __init__(self, pattern: dict | None) -> None:
        from moto.events.models import EventPattern

        self._inner = EventPattern.load(json.dumps(pattern) if pattern else None)

    def get_pattern(self):
        return self._inner.get_pattern()

    def matches_event(self, event):
        return self._inner.matches_event(event)


class _Rule:
    def __init__(self, pattern: dict | None, schedule: str | None = None) -> None:
        self.event_pattern = _Pattern(pattern)
        self.scheduled_expression = schedule
        self.state = "ENABLED"
        self.targets: list[dict] = []


def test_given_moto_s3_detail_then_it_is_reshaped_to_aws_field_names():
    moto_event = {
        "source": "aws.s3",
        "time": 1763823600.0,
        "detail": {"object": {"key": "k", "eTag": "abc", "size": 1}},
    }
    shaped = seams._aws_shape(moto_event)
    assert shaped["detail"]["object"] == {"key": "k", "etag": "abc", "size": 1}
    assert shaped["time"] == "2025-11-22T15:00:00Z"
    assert moto_event["detail"]["object"]["eTag"] == "abc"  # the original is not mutated


def test_given_the_deployed_rule_pattern_then_only_matching_uploads_match():
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["landing"]}, "object": {"key": [{"prefix": "breast-cancer/"}]}},
    }
    rule = _Rule(pattern)
    event = json.loads((Path(__file__).resolve().parents[2] / "events" / "s3_object_created.json").read_text())
    event["detail"]["bucket"]["name"] = "landing"
    assert seams.rule_matches(rule, event)
    event["detail"]["object"]["key"] = "other/x.csv"
    assert not seams.rule_matches(rule, event)
    assert not seams.rule_matches(_Rule(None, "rate(7 days)"), event)  # schedules match no events


def test_given_a_template_then_intrinsics_render_and_the_definition_parses():
    template = {
        "Resources": {
            "Sm": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": {
                        "Fn::Join": [
                            "",
                            [
                                '{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"',
                                {"Fn::GetAtt": ["Fn", "Arn"]},
                                '","End":true}}}',
                            ],
                        ]
                    }
                },
            }
        }
    }
    definition = state_machine_definition(template, lambda ref: "arn:aws:lambda:us-east-1:1:function:f")
    assert definition["States"]["A"]["Resource"] == "arn:aws:lambda:us-east-1:1:function:f"
    assert render({"a": [{"Ref": "X"}]}, lambda ref: "x") == {"a": ["x"]}


def test_given_any_change_to_the_mlops_package_then_the_cached_templates_are_synthesized_again(tmp_path, monkeypatch):
    """The templates carry the code layer's hash and each function's config hash: a stale cache is a bug."""
    import shutil

    from mlops.local import assembly
    from mlops.tools.samples import example_config_path

    package = tmp_path / "mlops"
    for part in ("core/config.py", "serving/api.py", "infra/app.py", "layers/build.py", "functions/serve/handler.py"):
        (package / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(assembly.PACKAGE / part, package / part)
    monkeypatch.setattr(assembly, "PACKAGE", package)
    before = assembly.assembly_key([example_config_path()], "dev")
    for part in ("core/config.py", "infra/app.py", "functions/serve/handler.py", "layers/build.py"):
        with (package / part).open("a") as fh:
            fh.write("\n# a change here changes what synthesis makes: every function's config hash, the stacks\n")
        after = assembly.assembly_key([example_config_path()], "dev")
        assert after != before, part
        before = after


def test_given_one_config_in_two_temporary_directories_then_one_assembly_key_and_an_edit_changes_it(tmp_path):
    from mlops.local import assembly
    from mlops.tools.samples import example_config_path

    a, b = tmp_path / "a" / "m.yaml", tmp_path / "b" / "m.yaml"
    for path in (a, b):
        path.parent.mkdir()
        path.write_bytes(example_config_path().read_bytes())
    assert assembly.assembly_key([a], "dev") == assembly.assembly_key([b], "dev")
    b.write_text(b.read_text() + "\n# edited\n")
    assert assembly.assembly_key([a], "dev") != assembly.assembly_key([b], "dev")


def test_given_two_processes_wanting_one_new_assembly_at_once_then_it_is_synthesized_once_and_never_taken_away(
    tmp_path, monkeypatch
):
    """Two test workers starting emulators of one config: the second used to synthesize it again and replace the
    directory the first was reading its templates from (a KeyError on a missing stack, once in a while)."""
    import threading
    import time
    from types import SimpleNamespace

    from mlops.local import assembly
    from mlops.tools.samples import example_config_path

    monkeypatch.setenv(assembly.STATE_DIR_ENV, str(tmp_path / "state"))
    synths: list[str] = []

    def fake_synth(cmd, *, env, **kwargs):  # what `python -m mlops.infra.app` leaves: a manifest and templates
        synths.append(env["CDK_OUTDIR"])
        out = Path(env["CDK_OUTDIR"])
        out.mkdir(parents=True)
        time.sleep(0.3)
        (out / "Mlops-dev-Serving.template.json").write_text("{}")
        (out / "manifest.json").write_text("{}")
        return SimpleNamespace(returncode=0, stderr="")

    monkeypatch.setattr(assembly.subprocess, "run", fake_synth)
    seen: list[list[str]] = []

    def start_an_emulator() -> None:
        outdir = assembly.synthesize([example_config_path()], "dev")
        time.sleep(0.5)  # reading its templates while the other is still at it
        seen.append(sorted(p.name for p in outdir.iterdir()))

    threads = [threading.Thread(target=start_an_emulator) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(synths) == 1, synths
    assert seen == [["Mlops-dev-Serving.template.json", "manifest.json"]] * 2


def test_given_lines_arriving_during_a_delivery_then_they_ride_in_the_next_one_in_order_and_in_bounded_chunks(
    monkeypatch,
):
    """The emulator batches a log group's lines as CloudWatch Logs does for a subscription: one delivery at a
    time per group; what arrives meanwhile goes in the next, at most LOG_BATCH_EVENTS per delivery."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    shipped: list[list[str]] = []
    gate = threading.Event()

    class Router:
        def ship(self, group: str, function: str, lines: list[str]) -> None:
            gate.wait(5)  # the first delivery is slow: everything else queues behind it
            shipped.append(list(lines))

    pool = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(seams, "_router", Router())
    monkeypatch.setattr(seams, "_log_pool", pool)
    monkeypatch.setattr(seams, "_pending", [])
    monkeypatch.setattr(seams, "_log_batches", {})
    try:
        seams._queue_logs("/aws/lambda/serve", "serve", ["first"])
        while seams._log_batches:  # the first delivery has started and holds the worker
            threading.Event().wait(0.01)
        for i in range(2500):
            seams._queue_logs("/aws/lambda/serve", "serve", [f"line-{i}"])
        gate.set()
        seams.drain(timeout=LIVENESS_S)  # returns as soon as the deliveries are done
    finally:
        pool.shutdown(wait=True)
    assert [len(batch) for batch in shipped] == [1, 1000, 1000, 500]
    assert [line for batch in shipped for line in batch] == ["first", *(f"line-{i}" for i in range(2500))]


def test_given_rules_and_a_finished_execution_then_the_seams_read_them_and_a_reset_empties_the_account():
    import time

    import boto3
    from moto import mock_aws

    account, region = "123456789012", "us-east-1"
    with mock_aws():
        events = boto3.client("events", region_name=region)
        events.put_rule(Name="hourly", ScheduleExpression="rate(1 hour)")
        events.put_rule(Name="uploads", EventPattern=json.dumps({"source": ["aws.s3"]}))
        assert {r.name for r in seams.event_rules(account, region)} == {"hourly", "uploads"}

        seams.execute_state_machines(True)  # before the machine exists: moto keeps it in its ASL engine then
        try:
            sfn = boto3.client("stepfunctions", region_name=region)
            definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
            role = "arn:aws:iam::123456789012:role/sfn"
            created = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=role)
            arn = created["stateMachineArn"]
            assert seams.finished_executions(account, region) == []
            execution = sfn.start_execution(stateMachineArn=arn, name="run-1", input='{"a": 1}')["executionArn"]
            deadline = time.monotonic() + LIVENESS_S  # moto's engine runs the execution on a thread of its own
            while not seams.finished_executions(account, region) and time.monotonic() < deadline:
                time.sleep(0.05)
            [ended] = seams.finished_executions(account, region)
            assert (ended.arn, ended.name, ended.status, ended.state_machine_arn) == (
                execution,
                "run-1",
                "SUCCEEDED",
                arn,
            )
            assert json.loads(json.dumps(ended.input)) == {"a": 1}
        finally:
            seams.execute_state_machines(False)

        boto3.client("s3", region_name=region).create_bucket(Bucket="kept-until-reset")
        seams.reset_backends()
        assert boto3.client("s3", region_name=region).list_buckets()["Buckets"] == []
        assert seams.event_rules(account, region) == []


def test_given_alarm_state_changes_then_describe_alarm_history_at_the_endpoint_answers_them_as_aws_does():
    """#27: moto has no DescribeAlarmHistory (the endpoint answered HTTP 500). Each state change is recorded as
    AWS's StateUpdate item, stamped by the emulated clock, and the action is answered from them: by alarm, by
    time, newest first, paged."""
    from datetime import UTC, datetime, timedelta

    import boto3
    from moto.server import ThreadedMotoServer

    from mlops.core import clock
    from mlops.local.emulator import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    seams.install(None)
    clock.set_offset(86400)  # the emulated clock, a day ahead: history is stamped by it
    try:
        cw = boto3.client(
            "cloudwatch",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="offline",
            aws_secret_access_key="offline",
        )
        for name in ("drift", "quality"):
            cw.put_metric_alarm(
                AlarmName=name,
                Namespace="ServerlessMLOps",
                MetricName="DriftedFeatures",
                Statistic="Maximum",
                Period=3600,
                EvaluationPeriods=2,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
        cw.set_alarm_state(AlarmName="drift", StateValue="ALARM", StateReason="Threshold Crossed: 2 out of 2")
        cw.set_alarm_state(AlarmName="quality", StateValue="ALARM", StateReason="crossed")
        cw.set_alarm_state(AlarmName="drift", StateValue="OK", StateReason="Threshold Crossed: 0 out of 2")

        items = cw.describe_alarm_history(AlarmName="drift", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
        assert [i["HistorySummary"] for i in items] == [
            "Alarm updated from ALARM to OK",
            "Alarm updated from OK to ALARM",
        ]
        newest = json.loads(items[0]["HistoryData"])
        assert newest["oldState"]["stateValue"] == "ALARM" and newest["newState"] == {
            "stateValue": "OK",
            "stateReason": "Threshold Crossed: 0 out of 2",
        }
        assert all(i["AlarmType"] == "MetricAlarm" and i["AlarmName"] == "drift" for i in items)
        assert abs(items[0]["Timestamp"] - (datetime.now(UTC) + timedelta(days=1))) < timedelta(minutes=5)
        described = cw.describe_alarms(AlarmNames=["drift"])["MetricAlarms"][0]
        assert abs(described["StateUpdatedTimestamp"] - items[0]["Timestamp"]) < timedelta(seconds=1)

        everything = cw.describe_alarm_history(ScanBy="TimestampAscending")["AlarmHistoryItems"]
        assert [(i["AlarmName"], json.loads(i["HistoryData"])["newState"]["stateValue"]) for i in everything] == [
            ("drift", "ALARM"),
            ("quality", "ALARM"),
            ("drift", "OK"),
        ]
        assert cw.describe_alarm_history(StartDate=datetime.now(UTC) + timedelta(days=2))["AlarmHistoryItems"] == []
        first = cw.describe_alarm_history(MaxRecords=2)
        rest = cw.describe_alarm_history(MaxRecords=2, NextToken=first["NextToken"])
        assert len(first["AlarmHistoryItems"]) == 2 and len(rest["AlarmHistoryItems"]) == 1 and "NextToken" not in rest
    finally:
        clock.set_offset(None)
        seams.uninstall()
        server.stop()


def test_given_a_functions_requests_then_the_endpoint_meters_them_by_function_service_and_operation():
    """#33: what a run or a prediction asks of S3 and DynamoDB is counted per calling function (its User-Agent names
    it, as each execution environment sets AWS_SDK_UA_APP_ID); the emulator's and a test's own calls are not."""
    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    from mlops.local.emulator import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    seams.install(None)

    def client(service: str, app: str | None = None):
        return boto3.client(
            service,
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="offline",
            aws_secret_access_key="offline",
            config=Config(user_agent_appid=app),
        )

    try:
        client("s3").create_bucket(Bucket="artifacts")
        client("dynamodb").create_table(
            TableName="runs",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        s3, table = client("s3", "fn.extract"), client("dynamodb", "fn.extract")
        s3.put_object(Bucket="artifacts", Key="runs/r1/extract/snapshot.csv", Body=b"x" * 3000)
        s3.put_object(Bucket="artifacts", Key="runs/r1/extract/manifest.json", Body=b"{}")
        s3.get_object(Bucket="artifacts", Key="runs/r1/extract/snapshot.csv")["Body"].read()
        s3.list_objects_v2(Bucket="artifacts", Prefix="runs/")
        table.put_item(TableName="runs", Item={"pk": {"S": "r1"}, "blob": {"S": "y" * 1500}})
        table.get_item(TableName="runs", Key={"pk": {"S": "r1"}})
        client("s3").get_object(Bucket="artifacts", Key="runs/r1/extract/snapshot.csv")  # no function: not metered

        metered = seams.metered_requests()
        assert {k: t.count for k, t in metered.items()} == {
            ("extract", "s3", "PutObject"): 2,
            ("extract", "s3", "GetObject"): 1,
            ("extract", "s3", "ListObjects"): 1,
            ("extract", "dynamodb", "PutItem"): 1,
            ("extract", "dynamodb", "GetItem"): 1,
        }
        assert metered[("extract", "s3", "PutObject")].bytes_in == 3002
        # A 1.5 KB item: two write units; reading it back, one read unit.
        assert metered[("extract", "dynamodb", "PutItem")].units == 2
        assert metered[("extract", "dynamodb", "GetItem")].units == 1
    finally:
        seams.uninstall()
        server.stop()


def test_given_another_process_pruning_the_same_assemblies_then_a_prune_skips_what_vanished(tmp_path, monkeypatch):
    """Two test workers pruning at once: an assembly the other removed between the listing and its stat failed
    the run (FileNotFoundError in the sort key), seen on a machine with many stale assemblies."""
    import os
    import time
    from pathlib import Path

    from mlops.local import assembly

    current = tmp_path / "cdk.out-current"
    current.mkdir()
    old = time.time() - 10 * assembly.PRUNE_AFTER_S
    folders = [tmp_path / f"cdk.out-{i}" for i in range(assembly.KEEP_ASSEMBLIES + 3)]
    for folder in folders:
        folder.mkdir()
        os.utime(folder, (old, old))
    vanishing = folders[0]
    real_stat = Path.stat

    def stat_after_another_prune(self: Path, *args, **kwargs):
        if self == vanishing:
            raise FileNotFoundError(str(self))  # the other process removed it just now
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat_after_another_prune)
    assembly._prune(current)

    assert current.is_dir()
    assert sum(f.exists() for f in folders[1:]) == assembly.KEEP_ASSEMBLIES - 1  # the rest pruned as before
