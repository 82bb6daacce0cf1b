"""The trigger: one idempotent path for uploads, schedules, alarms and requests; one run at a time."""

from __future__ import annotations

import copy
import json

import pytest

from mlops.core.constants import ENV_STATE_MACHINE_ARN
from mlops.local.lambda_runtime import invoke
from tests.conftest import load_event

pytestmark = pytest.mark.functional


@pytest.fixture
def sfn(lambda_env, monkeypatch):
    """A placeholder state machine: these tests look at what the trigger starts, not at what runs."""
    client = lambda_env.session.client("stepfunctions")
    arn = client.create_state_machine(
        name="Training",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    monkeypatch.setenv(ENV_STATE_MACHINE_ARN, arn)
    return client, arn


@pytest.fixture
def moved_clock():
    """Move this process's clock (mlops.core.clock) as the emulator's ``tick --advance`` moves it; back after."""
    from mlops.core import clock

    yield clock.set_offset
    clock.set_offset(None)


def _trigger(event: dict) -> dict:
    out = invoke("trigger", event)
    assert out.function_error is None, out.payload
    return out.payload


def _upload_event(key: str, etag: str) -> dict:
    event = load_event("s3_object_created")
    event["detail"]["object"].update(key=key, etag=etag)
    return event


def test_given_the_same_upload_event_three_times_then_one_run_starts(sfn, lambda_env):
    client, arn = sfn
    event = load_event("s3_object_created")
    results = [_trigger(copy.deepcopy(event)) for _ in range(3)]
    assert [r["status"] for r in results] == ["started", "duplicate", "duplicate"]
    assert len({r["run_id"] for r in results}) == 1
    executions = client.list_executions(stateMachineArn=arn)["executions"]
    assert len(executions) == 1 and executions[0]["name"] == results[0]["execution_name"]
    run = lambda_env.stores.meta.get_run("breast-cancer", results[0]["run_id"])
    assert run["trigger"]["reason"] == "s3_upload"
    assert run["trigger"]["key"] == "breast-cancer/batch-001.csv" and run["trigger"]["etag"]
    payload = json.loads(client.describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert payload["source"] == {"bucket": "mlops-landing", "keys": ["breast-cancer/batch-001.csv"]}


def test_given_a_run_in_progress_when_new_data_arrives_then_it_is_deferred_and_started_after(sfn, lambda_env):
    client, arn = sfn
    first = _trigger(_upload_event("breast-cancer/a.csv", "etag-a"))
    second = _trigger(_upload_event("breast-cancer/b.csv", "etag-b"))
    third = _trigger(_upload_event("breast-cancer/c.csv", "etag-c"))
    assert first["status"] == "started"
    assert second["status"] == third["status"] == "deferred" and second["behind"] == first["run_id"]
    assert len(client.list_executions(stateMachineArn=arn)["executions"]) == 1

    finished = load_event("execution_status_change")
    finished["detail"].update(stateMachineArn=arn, input=json.dumps({"run_id": first["run_id"]}))
    released = _trigger(finished)
    assert released["status"] == "released" and released["pending"] == 2
    started = released["next"]
    assert started["status"] == "started"
    executions = client.list_executions(stateMachineArn=arn)["executions"]
    assert len(executions) == 2
    run = lambda_env.stores.meta.get_run("breast-cancer", started["run_id"])
    assert run["trigger"]["reason"] == "coalesced"
    assert [c["reason"] for c in run["trigger"]["coalesced"]] == ["s3_upload", "s3_upload"]
    assert run["trigger"]["keys"] == ["breast-cancer/b.csv", "breast-cancer/c.csv"]  # nothing dropped
    payload = json.loads(client.describe_execution(executionArn=started["execution_arn"])["input"])
    assert payload["source"] == {"bucket": "mlops-landing", "keys": ["breast-cancer/b.csv", "breast-cancer/c.csv"]}
    # the run that ended without finalize (e.g. aborted) is closed by the status change
    assert lambda_env.stores.meta.get_run("breast-cancer", first["run_id"])["status"] == "FAILED"


def test_given_a_key_outside_the_prefix_then_nothing_starts(sfn):
    client, arn = sfn
    assert _trigger(_upload_event("other-model/a.csv", "x"))["status"] == "ignored"
    assert _trigger(_upload_event("breast-cancer/readme.txt", "y"))["status"] == "ignored"
    assert client.list_executions(stateMachineArn=arn)["executions"] == []


def test_given_a_schedule_and_an_alarm_then_runs_start_over_the_prefix(sfn, lambda_env):
    client, _ = sfn
    scheduled = _trigger(load_event("scheduled_event"))
    assert scheduled["status"] == "started" and scheduled["execution_name"] == "schedule-2026-11-22T00-00-00Z"
    payload = json.loads(client.describe_execution(executionArn=scheduled["execution_arn"])["input"])
    assert payload["source"] == {"bucket": "mlops-landing", "prefix": "breast-cancer/"}
    assert _trigger(load_event("scheduled_event"))["status"] == "duplicate"
    alarm = _trigger(load_event("alarm_state_change"))
    assert alarm["status"] == "deferred"
    ok = load_event("alarm_state_change")
    ok["detail"]["state"]["value"] = "OK"
    assert _trigger(ok)["status"] == "ignored"


def test_given_an_on_demand_request_then_it_runs_and_records_who_asked(sfn, lambda_env):
    result = _trigger(load_event("manual_run"))
    run = lambda_env.stores.meta.get_run("breast-cancer", result["run_id"])
    assert run["trigger"]["reason"] == "manual" and run["trigger"]["requested_by"] == "alice@example.com"


def test_given_an_unknown_event_then_the_trigger_fails_loudly(sfn):
    out = invoke("trigger", {"hello": "world"})
    assert out.function_error and "unrecognised trigger event" in out.payload["errorMessage"]


class _ThrottledOnce:
    """A Step Functions client whose first StartExecution is throttled, as AWS does under load."""

    def __init__(self, client):
        self._client, self.calls = client, 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def start_execution(self, **kwargs):
        from botocore.exceptions import ClientError

        self.calls += 1
        if self.calls == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "StartExecution")
        return self._client.start_execution(**kwargs)


def test_given_a_throttled_start_when_lambda_retries_the_event_then_exactly_one_run_starts(sfn, lambda_env):
    from mlops.adapters.executions import StepFunctionsExecutions
    from mlops.core.config import load_config
    from mlops.steps.trigger import Trigger
    from mlops.tools.samples import example_config_path

    client, arn = sfn
    throttled = _ThrottledOnce(client)
    trigger = Trigger(load_config(example_config_path()), lambda_env.stores, StepFunctionsExecutions(throttled, arn))
    event = _upload_event("breast-cancer/throttled.csv", "etag-t")
    with pytest.raises(Exception, match="Rate exceeded"):  # a function error: Lambda retries the event
        trigger.handle(copy.deepcopy(event))
    retried = trigger.handle(copy.deepcopy(event))
    assert retried["status"] == "started", retried
    executions = client.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in executions] == [retried["execution_name"]]
    runs = lambda_env.stores.meta.list_runs("breast-cancer")
    assert [r["run_id"] for r in runs] == [retried["run_id"]]  # no phantom record of the throttled attempt
    assert runs[0]["status"] == "RUNNING"


def test_given_a_run_parked_at_approval_for_8_hours_when_new_data_arrives_then_no_second_run_starts(
    sfn, lambda_env, moved_clock
):
    from mlops.core.runs import await_approval

    client, arn = sfn
    first = _trigger(_upload_event("breast-cancer/a.csv", "etag-a"))
    assert first["status"] == "started"
    lambda_env.stores.meta.put_model_version({"model": "breast-cancer", "version": 1, "status": "pending_approval"})
    await_approval(lambda_env.stores, "breast-cancer", first["run_id"], 1, "token")
    moved_clock(8 * 3600)  # 8 hours at the approval wait
    second = _trigger(_upload_event("breast-cancer/b.csv", "etag-b"))
    assert second["status"] == "deferred" and second["behind"] == first["run_id"]
    assert len(client.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_given_alarms_inside_the_cooldown_then_one_run_and_after_it_another(sfn, lambda_env, moved_clock):
    """D5: a drift alarm that keeps firing starts one run per monitoring.cooldown_hours (24), not one per alarm
    (before the cooldown, each new ALARM transition was a new run, queued behind the last). The cooldown is kept
    by mlops.core.clock: moved 25 hours on (as `mlops local tick --advance 25h` moves the emulator's), it expired."""
    from mlops.core.registry import promote

    client, arn = sfn
    lambda_env.stores.meta.put_model_version(
        {"model": "breast-cancer", "version": 1, "status": "approved", "created_at": "2026-11-20T10:00:00.000Z"}
    )
    promote(lambda_env.stores, "breast-cancer", 1, reason="test", actor="test")
    first = _trigger(load_event("alarm_state_change"))
    assert first["status"] == "started"
    payload = json.loads(client.describe_execution(executionArn=first["execution_arn"])["input"])
    # train_on_feedback: the run also reads the traffic labelled since the champion was registered
    assert payload["source"]["feedback"] == {"until": "2026-11-22T15:10:00.000+0000", "since": "2026-11-20T10:00:00Z"}
    assert payload["trigger"]["reason"] == "alarm" and payload["trigger"]["alarm"] == "breast-cancer-drift"
    # the example plans 7 trials, 4 at once: the run warms 4 trial environments
    assert payload["warm_trials"] == 4
    lambda_env.stores.meta.release_lock("breast-cancer", first["run_id"])  # the run ended
    again = load_event("alarm_state_change")
    again["detail"]["state"]["timestamp"] = "2026-11-22T18:10:00.000+0000"  # a new transition into ALARM
    second = _trigger(again)
    assert second["status"] == "cooldown" and second["behind"] == first["run_id"], second
    assert _trigger(copy.deepcopy(again))["status"] == "cooldown"  # its retry is not a run either
    assert len(client.list_executions(stateMachineArn=arn)["executions"]) == 1
    moved_clock(25 * 3600)
    later = load_event("alarm_state_change")
    later["detail"]["state"]["timestamp"] = "2026-11-23T16:10:00.000+0000"
    assert _trigger(later)["status"] == "started"
    assert len(client.list_executions(stateMachineArn=arn)["executions"]) == 2


def test_given_an_alarm_without_a_champion_or_long_after_it_then_feedback_spans_only_kept_traffic(sfn, lambda_env):
    """No champion: nothing was served, so no labelled traffic is read (not every day since 1970); an old
    champion: no further back than monitoring.capture_retention_days (90)."""
    from mlops.core.registry import promote

    client, _ = sfn
    first = _trigger(load_event("alarm_state_change"))
    payload = json.loads(client.describe_execution(executionArn=first["execution_arn"])["input"])
    assert "feedback" not in payload["source"]
    lambda_env.stores.meta.release_lock("breast-cancer", first["run_id"])
    lambda_env.stores.meta.release_lease("breast-cancer", "COOLDOWN#alarm", first["run_id"])
    lambda_env.stores.meta.put_model_version(
        {"model": "breast-cancer", "version": 1, "status": "approved", "created_at": "2025-01-01T00:00:00.000Z"}
    )
    promote(lambda_env.stores, "breast-cancer", 1, reason="test", actor="test")
    later = load_event("alarm_state_change")
    later["detail"]["state"]["timestamp"] = "2026-11-22T18:10:00.000+0000"
    second = _trigger(later)
    payload = json.loads(client.describe_execution(executionArn=second["execution_arn"])["input"])
    assert payload["source"]["feedback"]["since"] == "2026-08-24T18:10:00Z"


def test_given_two_models_then_each_event_reaches_its_model_and_locks_are_per_model(sfn, lambda_env, monkeypatch):
    from mlops.core.constants import ENV_CONFIG_URI
    from mlops.local.lambda_runtime import reset_caches
    from mlops.tools.samples import example_config_path

    models = ",".join(str(example_config_path(m)) for m in ("breast-cancer", "diabetes"))
    monkeypatch.setenv(ENV_CONFIG_URI, models)
    reset_caches()
    meta = lambda_env.stores.meta
    # Uploads for both in the same second: each starts its own model's run (one lock per model).
    bc = _trigger(_upload_event("breast-cancer/a.csv", "e1"))
    db = _trigger(_upload_event("diabetes/a.csv", "e2"))
    assert (bc["model"], bc["status"]) == ("breast-cancer", "started")
    assert (db["model"], db["status"]) == ("diabetes", "started")
    assert meta.get_run("diabetes", db["run_id"])["trigger"]["key"] == "diabetes/a.csv"
    outside = _trigger(_upload_event("other/a.csv", "e3"))
    assert outside == {"status": "ignored", "reason": "s3://mlops-landing/other/a.csv is under no model's data prefix"}
    # A schedule names its model (the rule's target input); an alarm is routed by its metric's Model dimension.
    scheduled = load_event("scheduled_event")
    scheduled["detail"] = {"model": "diabetes"}
    deferred = _trigger(scheduled)
    assert (deferred["model"], deferred["status"]) == ("diabetes", "deferred")  # behind diabetes' own run
    alarm = load_event("alarm_state_change")
    alarm["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {"Model": "diabetes"}
    assert _trigger(alarm)["model"] == "diabetes"
    # breast-cancer's run ends: its lock is released and nothing of diabetes' moves.
    _, arn = sfn
    finished = load_event("execution_status_change")
    finished["detail"].update(
        stateMachineArn=arn,
        status="SUCCEEDED",
        input=json.dumps({"run_id": bc["run_id"], "model": "breast-cancer"}),
    )
    released = _trigger(finished)
    assert (released["model"], released["status"]) == ("breast-cancer", "released")
    assert _trigger(_upload_event("breast-cancer/b.csv", "e4"))["status"] == "started"
    assert _trigger(_upload_event("diabetes/b.csv", "e5"))["status"] == "deferred"  # diabetes' run still holds
    # A request that does not say which model, in a deployment of two: a loud failure naming them.
    out = invoke("trigger", {"action": "run", "reason": "which one?"})
    assert out.function_error and "2 models (breast-cancer, diabetes)" in out.payload["errorMessage"]
