"""End to end, offline: the synthesized state machine on moto, the real handlers, real event routing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.infra.functions import PIPELINE_FUNCTIONS, WARMED
from mlops.local import seams
from mlops.local.emulator import LocalCloud, free_port
from mlops.tools.platform import LIVENESS_S, Platform
from mlops.tools.samples import bundled, corrupt, example_config_path
from tests.conftest import quick_config_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DATA = bundled("breast-cancer").to_csv(index=False).encode()
# Other data, so a second run makes a new model: one on the champion's own data, config and code is not promoted.
MORE = bundled("breast-cancer").sample(frac=0.95, random_state=1).to_csv(index=False).encode()


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    """The example with one candidate: these tests are about what happens around a run, not the tuning (the
    first test runs the full example)."""
    with LocalCloud(quick_config_file(tmp_path), port=0) as c:
        yield c


@pytest.fixture
def platform(cloud: LocalCloud) -> Platform:
    return Platform.connect("dev", cloud.endpoint)


def _upload_and_wait(p: Platform, name: str, body: bytes) -> dict:
    up = p.upload(body, f"breast-cancer/{name}")
    return p.wait(p.run_for_upload(up["key"], up["etag"]), timeout=300)


def _executions(p: Platform) -> list[dict]:
    return p.client("stepfunctions").list_executions(stateMachineArn=p.output("StateMachineArn"))["executions"]


def test_given_an_upload_when_it_lands_then_the_state_machine_registers_a_champion():
    with LocalCloud(example_config_path(), port=0) as cloud:
        _registers_a_champion(Platform.connect("dev", cloud.endpoint))


def _registers_a_champion(platform: Platform) -> None:
    run = _upload_and_wait(platform, "v1.csv", DATA)
    assert run["status"] == "SUCCEEDED", run
    assert run["trigger"]["reason"] == "s3_upload" and run["trigger"]["key"] == "breast-cancer/v1.csv"
    assert list(run["steps"]) == [
        "extract",
        "analyze",
        "validate_data",
        "prepare",
        "plan_trials",
        "train",
        "export",
        "evaluate",
        "validate_model",
        "register",
    ]
    assert len(run["trials"]) == 7  # one Lambda invocation per trial, through the Map
    # The run warmed its later steps beside the earlier ones; none of those warm-ups ran a step or failed, and every
    # step found its environment initialized: extract's is the one cold start on the run's path.
    warm_ups = Counter(i.handler for i in seams.invocations if i.warm_up and not i.error)
    assert warm_ups == Counter({f: 4 if f == "run_trial" else 1 for f in WARMED})
    assert not any(i.error for i in seams.invocations if i.warm_up)
    steps = {spec.name for spec in PIPELINE_FUNCTIONS}
    assert {i.handler for i in seams.invocations if i.handler in steps and not i.warm_up and i.cold} == {"extract"}
    assert run["metrics"]["roc_auc"] >= 0.95
    assert platform.champion() == 1
    execution = _executions(platform)[0]
    assert execution["status"] == "SUCCEEDED" and execution["name"].startswith("s3-")
    # the run lock was released: a request now starts at once
    assert platform.request_run(reason="again")["status"] == "started"


def test_given_a_bad_upload_then_the_run_fails_with_anomalies_and_the_champion_stays(platform):
    assert _upload_and_wait(platform, "v1.csv", DATA)["status"] == "SUCCEEDED"
    broken = corrupt(bundled("breast-cancer"), "drop", "mean_texture").to_csv(index=False).encode()
    seams.drain()  # the first run's warm-ups, all answered
    before = len(seams.invocations)
    run = _upload_and_wait(platform, "v2.csv", broken)
    seams.drain()
    # the training steps initialized beside the batch's validation, as for any run (the price of never waiting
    # for one init after another); none of them ran
    assert {i.handler for i in seams.invocations[before:] if i.warm_up} == set(WARMED)
    assert {i.handler for i in seams.invocations[before:] if not i.warm_up} & {"prepare", "run_trial"} == set()
    assert run["status"] == "FAILED"
    # a column of the schema missing from the object: refused as it is read (#27), naming the object
    assert (run["error"]["type"], run["error"]["step"]) == ("DataValidationError", "extract")
    missing = {(a["code"], a["column"], a.get("object")) for a in run["anomalies"]}
    assert ("MISSING_COLUMN", "mean_texture", "breast-cancer/v2.csv") in missing
    assert "prepare" not in run["steps"]
    assert platform.champion() == 1 and len(platform.versions()) == 1
    failed = [e for e in _executions(platform) if e["status"] == "FAILED"]
    assert len(failed) == 1


def test_given_the_same_event_delivered_twice_then_one_run(cloud, platform):
    up = platform.upload(DATA, "breast-cancer/dup.csv")
    run_id = platform.run_for_upload(up["key"], up["etag"])
    assert platform.wait(run_id, timeout=300)["status"] == "SUCCEEDED"
    # One trial in this model's plan: one trial environment warmed (not the Map's four), and still no step but
    # extract met a cold start.
    warm_ups = Counter(i.handler for i in seams.invocations if i.warm_up and not i.error)
    assert warm_ups == Counter(WARMED)
    steps = {spec.name for spec in PIPELINE_FUNCTIONS}
    assert {i.handler for i in seams.invocations if i.handler in steps and not i.warm_up and i.cold} == {"extract"}
    event = {
        "version": "0",
        "id": "redelivered",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-22T15:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "bucket": {"name": up["bucket"]},
            "object": {
                "key": up["key"],
                "etag": up["etag"],
                "size": len(DATA),
                "version-id": _version(platform, up["key"]),
            },
        },
    }
    cloud.put_event(event)  # EventBridge delivers at least once: the same event again
    cloud.put_event(event)
    seams.drain()
    assert len(_executions(platform)) == 1
    assert [r["run_id"] for r in platform.runs()] == [run_id]


def _version(p: Platform, key: str) -> str:
    return p.client("s3").head_object(Bucket=p.output("LandingBucket"), Key=key)["VersionId"]


def test_given_a_transient_error_then_the_step_is_retried_and_the_run_succeeds(platform):
    seams.inject_fault("analyze", "TransientError", times=1)
    run = _upload_and_wait(platform, "v1.csv", DATA)
    assert run["status"] == "SUCCEEDED"
    history = platform.client("stepfunctions").get_execution_history(
        executionArn=_executions(platform)[0]["executionArn"], maxResults=1000
    )["events"]
    failures = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert len(failures) == 1 and failures[0]["lambdaFunctionFailedEventDetails"]["error"] == "TransientError"


def test_given_a_permanent_failure_then_catch_records_it_notifies_and_promotes_nothing(platform):
    sqs, sns = platform.client("sqs"), platform.client("sns")
    queue = sqs.create_queue(QueueName="failures")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=platform.output("FailureTopicArn"), Protocol="sqs", Endpoint=queue_arn)
    seams.inject_fault("evaluate", "RuntimeError", times=10)
    run = _upload_and_wait(platform, "v1.csv", DATA)
    assert run["status"] == "FAILED"
    assert run["error"]["type"] == "RuntimeError" and "injected fault" in run["error"]["message"]
    assert platform.champion() is None and platform.versions() == []
    assert _executions(platform)[0]["status"] == "FAILED"
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    # The topic carries alarms too (the example feature set's staleness alarm, say): the run's is the one naming it.
    bodies = [json.loads(m["Body"])["Message"] for m in messages]
    failures = [json.loads(b) for b in bodies if run["run_id"] in b]
    assert failures, f"no failure notification was published: {bodies}"
    assert failures[0]["run_id"] == run["run_id"] and failures[0]["error"]["Error"] == "RuntimeError"


def test_given_manual_approval_then_the_run_waits_until_promote_releases_it(tmp_path):
    with LocalCloud(quick_config_file(tmp_path, registry={"approval": "manual"}), port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        up = p.upload(DATA, "breast-cancer/v1.csv")
        run_id = p.run_for_upload(up["key"], up["etag"])
        waiting = p.wait(run_id, timeout=300, until={"WAITING_APPROVAL", "SUCCEEDED", "FAILED", "REJECTED"})
        assert waiting["status"] == "WAITING_APPROVAL"
        assert p.champion() is None and p.version(1)["status"] == "pending_approval"
        assert _executions(p)[0]["status"] == "RUNNING"
        p.promote(1, reason="reviewed the report", actor="carol")
        done = p.wait(run_id, timeout=120)
        assert done["status"] == "SUCCEEDED"
        assert p.champion() == 1
        assert p.history()[-1]["actor"] == "carol" and p.history()[-1]["reason"] == "reviewed the report"


@pytest.mark.skipif(shutil.which("aws", path=str(Path(sys.executable).parent)) is None, reason="awscli not installed")
def test_given_mlops_local_up_when_aws_s3_cp_uploads_then_a_run_is_triggered(tmp_path):
    port = free_port()
    env = {**os.environ, "MLOPS_STATE_DIR": str(tmp_path / "state")}
    # reuse the synthesized-template cache, so the subprocess starts quickly
    from mlops.local.assembly import state_dir

    for cached in state_dir().glob("cdk.out-*"):
        if ".tmp" not in cached.name:
            shutil.copytree(cached, tmp_path / "state" / cached.name)
    bindir = Path(sys.executable).parent
    server = subprocess.Popen(
        [str(bindir / "mlops"), "local", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        local_file = tmp_path / "state" / "local.json"
        deadline = time.monotonic() + 600  # a liveness bound: synthesis and provisioning, on a busy machine
        while not local_file.exists():
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "the emulator did not come up"
            time.sleep(0.3)
        data = tmp_path / "batch.csv"
        data.write_bytes(DATA)
        outputs = json.loads(local_file.read_text())["outputs"]
        landing = outputs["Mlops-dev-Storage"]["LandingBucket"]
        aws_env = {**env, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
        aws_env.pop("AWS_ENDPOINT_URL", None)
        cp = subprocess.run(
            [
                str(bindir / "aws"),
                "--endpoint-url",
                endpoint,
                "s3",
                "cp",
                str(data),
                f"s3://{landing}/breast-cancer/from-cli.csv",
            ],
            env=aws_env,
            capture_output=True,
            text=True,
        )
        assert cp.returncode == 0, cp.stderr
        listing = subprocess.run(
            [str(bindir / "aws"), "--endpoint-url", endpoint, "s3", "ls", f"s3://{landing}/"],
            env=aws_env,
            capture_output=True,
            text=True,
        )
        assert "breast-cancer/" in listing.stdout
        project = Platform.connect("dev", endpoint)
        assert project.models() == ["breast-cancer", "diabetes"]  # `mlops local up`: every model of the project
        p = project.for_model("breast-cancer")
        etag = p.client("s3").head_object(Bucket=landing, Key="breast-cancer/from-cli.csv")["ETag"].strip('"')
        # The upload started a run of the state machine (its training to a champion is the test above's subject).
        run_id = p.run_for_upload("breast-cancer/from-cli.csv", etag)
        run = p.wait(run_id, timeout=300, until={"RUNNING", "SUCCEEDED", "FAILED", "REJECTED"})
        assert run["status"] in ("RUNNING", "SUCCEEDED"), run.get("error")
        assert run["trigger"]["key"] == "breast-cancer/from-cli.csv" and run["trigger"]["etag"] == etag
        execution = p.client("stepfunctions").describe_execution(executionArn=run["execution_arn"])
        assert execution["status"] in ("RUNNING", "SUCCEEDED") and json.loads(execution["input"])["run_id"] == run_id
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_given_a_champion_then_http_predictions_a_named_4xx_and_rollback_within_the_cache_interval(
    monkeypatch, tmp_path
):
    # The serve function's environment is fixed when the emulator starts, as a deployed function's is.
    monkeypatch.setenv("MLOPS_MODEL_CACHE_SECONDS", "1")
    with LocalCloud(quick_config_file(tmp_path), port=0) as cloud:
        _serve_and_roll_back(Platform.connect("dev", cloud.endpoint))


def _serve_and_roll_back(platform: Platform) -> None:
    import urllib.error
    import urllib.request

    from typer.testing import CliRunner

    from mlops.tools.cli import app

    assert _upload_and_wait(platform, "v1.csv", DATA)["status"] == "SUCCEEDED"
    assert _upload_and_wait(platform, "v2.csv", MORE)["status"] == "SUCCEEDED"
    assert platform.champion() == 2
    url = platform.output("ApiUrl") + "/predict"
    record = bundled("breast-cancer").drop(columns=["target"]).iloc[0].to_dict()

    def post(records):  # plain HTTP, as curl would
        req = urllib.request.Request(
            url,
            data=json.dumps({"records": records}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=LIVENESS_S) as resp:  # a cold start may take a while
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    status, body = post([record])
    assert status == 200 and body["model_version"] == 2 and body["predictions"][0]["prediction"] == 0
    status, body = post([{**record, "worst_radius": "wide"}])
    assert status == 400 and body["errors"][0]["field"] == "worst_radius"

    result = CliRunner().invoke(app, ["models", "rollback", "--reason", "e2e", "--endpoint", platform.endpoint])
    assert result.exit_code == 0, result.output
    time.sleep(1.2)  # MLOPS_MODEL_CACHE_SECONDS=1: past it, the next request re-reads the alias, however busy
    assert post([record])[1]["model_version"] == 1, "the rollback did not take effect within the cache interval"
    cli = CliRunner().invoke(app, ["predict", "--endpoint", platform.endpoint], input=json.dumps([record]))
    assert cli.exit_code == 0 and json.loads(cli.output)["model_version"] == 1


def test_given_an_edited_schema_when_pushed_then_the_next_run_validates_against_it(platform, tmp_path):
    from typer.testing import CliRunner

    from mlops.tools.cli import app

    assert _upload_and_wait(platform, "v1.csv", DATA)["status"] == "SUCCEEDED"
    runner = CliRunner()
    shown = runner.invoke(app, ["schema", "show", "--endpoint", platform.endpoint])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert doc["version"] == 1 and doc["source"] == "inferred"
    schema = doc["schema"]
    schema["features"]["mean_radius"]["max"] = 20.0  # a user tightens a range
    edited = tmp_path / "schema.json"
    edited.write_text(json.dumps(schema))
    pushed = runner.invoke(app, ["schema", "push", str(edited), "--endpoint", platform.endpoint])
    assert pushed.exit_code == 0 and "schema v2" in pushed.output
    run = _upload_and_wait(platform, "v2.csv", DATA)
    assert run["status"] == "FAILED"
    assert ("OUT_OF_RANGE", "mean_radius") in {(a["code"], a["column"]) for a in run["anomalies"]}
    when = platform.history()[0]["at"]
    served = runner.invoke(app, ["models", "served-at", when, "--endpoint", platform.endpoint])
    assert served.exit_code == 0 and served.output.strip() == "v1"
