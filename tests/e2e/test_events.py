"""The platform's facts on EventBridge, as a team subscribes to them: each kind emitted once per fact, after the fact
is recorded, each matching its published schema; a failed run, a promotion, a rollback and an alarm-started run
each reach a subscriber's rule; champion changes reach the notifications topic, and failures reach it once."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest
from typer.testing import CliRunner

from mlops.core.facts import KINDS, detail_type_of, json_schema
from mlops.local import seams
from mlops.local.emulator import LocalCloud
from mlops.tools.cli import app
from mlops.tools.platform import Platform
from mlops.tools.samples import bundled, corrupt
from tests.conftest import load_event, quick_config_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DATA = bundled("breast-cancer")


def _subscribe(p: Platform, name: str, pattern: dict) -> str:
    """A team's subscription: a rule on the bus with a queue as its target; returns the queue's URL."""
    sqs, bus = p.client("sqs"), p.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus.put_rule(Name=name, EventPattern=json.dumps(pattern))
    bus.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def _received(p: Platform, url: str) -> list[dict]:
    sqs, out = p.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def _run(p: Platform, key: str, frame) -> dict:
    up = p.upload(frame.to_csv(index=False).encode(), f"breast-cancer/{key}")
    return p.wait(p.run_for_upload(up["key"], up["etag"]), timeout=600)


def test_given_the_lifecycle_then_each_fact_is_one_event_that_matches_its_schema_and_reaches_subscribers(tmp_path):
    with LocalCloud(quick_config_file(tmp_path), port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint).for_model("breast-cancer")
        source = p.outputs["EventSource"]
        everything = _subscribe(p, "everything", {"source": [source]})
        failures = _subscribe(p, "failures", {"source": [source], "detail": {"status": ["FAILED"]}})
        topic = p.client("sqs").create_queue(QueueName="topic-mail")["QueueUrl"]
        topic_arn = p.client("sqs").get_queue_attributes(QueueUrl=topic, AttributeNames=["QueueArn"])
        p.client("sns").subscribe(
            TopicArn=p.outputs["FailureTopicArn"], Protocol="sqs", Endpoint=topic_arn["Attributes"]["QueueArn"]
        )

        first = _run(p, "v1.csv", DATA)
        assert first["status"] == "SUCCEEDED"
        broken = _run(p, "broken.csv", corrupt(DATA, "drop", "mean_radius"))
        assert broken["status"] == "FAILED"
        second = _run(p, "v2.csv", DATA.sample(frac=0.95, random_state=1))
        assert second["status"] == "SUCCEEDED" and p.champion() == 2
        p.rollback(reason="the team prefers v1 for now", actor="alice")
        p.challenge(2, "shadow", 0, reason="watch v2 beside v1", actor="alice")
        p.monitor()  # too few records to judge: still a verdict, and an event
        alarm = load_event("alarm_state_change")  # the drift alarm fires, as CloudWatch tells EventBridge
        name = p.alarm_name("DriftAlarm")
        alarm["detail"]["alarmName"] = name
        alarm["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]
        cloud.put_event(alarm)
        deadline = time.monotonic() + 600
        while not [r for r in p.runs(20) if (r.get("trigger") or {}).get("reason") == "alarm"]:
            assert time.monotonic() < deadline, "no alarm-started run"
            time.sleep(1)
        alarm_run = next(r for r in p.runs(20) if (r.get("trigger") or {}).get("reason") == "alarm")
        p.wait(alarm_run["run_id"], timeout=600)
        seams.drain()

        events = _received(p, everything)
        by_type: dict[str, list[dict]] = {}
        for event in events:
            by_type.setdefault(event["detail-type"], []).append(event)
            schema = json_schema(next(k for k in KINDS if detail_type_of(k) == event["detail-type"]))
            jsonschema.validate(event, schema)  # every event matches its published schema
            assert event["detail"]["environment"] == "dev" and event["detail"]["model"] == "breast-cancer"
        assert set(by_type) == {detail_type_of(k) for k in KINDS}
        ids = [e["detail"]["id"] for e in events]
        assert len(ids) == len(set(ids)), "a fact published twice"

        runs = {(e["detail"]["run_id"], e["detail"]["status"]) for e in by_type["Run State Change"]}
        for run, ended in ((first, "SUCCEEDED"), (broken, "FAILED"), (second, "SUCCEEDED")):
            assert {(run["run_id"], "STARTED"), (run["run_id"], ended)} <= runs
        assert (alarm_run["run_id"], "STARTED") in runs
        alarm_started = next(
            e["detail"] for e in by_type["Run State Change"] if e["detail"]["run_id"] == alarm_run["run_id"]
        )
        assert alarm_started["trigger"] == "alarm"
        failed = next(e["detail"] for e in by_type["Run State Change"] if e["detail"]["status"] == "FAILED")
        assert "MISSING_COLUMN" in failed["error"] or "mean_radius" in failed["error"]
        assert failed["report"].endswith(f"sites/breast-cancer/runs/{broken['run_id']}.html")

        registered = sorted(e["detail"]["version"] for e in by_type["Model Version Registered"])
        assert registered == sorted(v["version"] for v in p.versions())  # one event per version, the alarm's too
        assert {1, 2} <= set(registered)
        champions = [(e["detail"]["action"], e["detail"]["version"]) for e in by_type["Champion Changed"]]
        assert ("promote", 1) in champions and ("promote", 2) in champions and ("rollback", 1) in champions
        rolled = next(e["detail"] for e in by_type["Champion Changed"] if e["detail"]["action"] == "rollback")
        assert rolled["actor"] == "alice" and rolled["previous"] == 2
        shadow = by_type["Challenger Changed"][0]["detail"]
        assert (shadow["action"], shadow["version"]) == ("shadow", 2)
        judged = by_type["Monitor Window Judged"][0]["detail"]
        assert judged["judged"] is False and judged["report"].startswith("s3://")

        # a subscriber's narrower rule gets the failure alone; the notifications topic gets the champion changes
        # and each failure once (the pipeline's own note, not the event a second time)
        assert [e["detail"]["run_id"] for e in _received(p, failures)] == [broken["run_id"]]
        published = [json.loads(json.loads(m)["Message"]) for m in _raw(p, topic)]
        events_mailed = [m for m in published if "detail-type" in m]
        notes = [m for m in published if "run_id" in m]  # the pipeline's own notes (alarms reach the topic too)
        assert sorted(m["detail"]["id"] for m in events_mailed) == sorted(
            e["detail"]["id"] for e in by_type["Champion Changed"]
        )  # every champion change, once, and no other kind
        assert [n["run_id"] for n in notes] == [broken["run_id"]]

        # and a person reads them: mlops events tail
        tail = CliRunner().invoke(
            app, ["events", "tail", "--no-follow", "--since", "1h", "--endpoint", cloud.endpoint, "-m", "breast-cancer"]
        )
        assert tail.exit_code == 0, tail.output
        assert "Champion Changed" in tail.output and "action=rollback" in tail.output and "actor=alice" in tail.output


def _raw(p: Platform, url: str) -> list[str]:
    sqs, out = p.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            out.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out
