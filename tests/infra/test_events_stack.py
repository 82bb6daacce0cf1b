"""The platform's events in the synthesized stacks: one published schema per detail-type from the same models the
publishers build; only the functions that make a fact may put events, on that bus, for that source; every event kept
in a log group; champion changes to the notifications topic (failures reach it from the pipeline's catch)."""

from __future__ import annotations

import json

import pytest

from mlops.core.facts import KINDS, detail_type_of, json_schema

pytestmark = pytest.mark.infra

PUBLISHERS = {"register", "await_approval", "promote", "finalize", "trigger", "monitor"}


def _resources(synth, kind: str) -> dict:
    return {
        f"{stack}/{name}": res
        for stack, template in synth.templates.items()
        for name, res in template.get("Resources", {}).items()
        if res["Type"] == kind
    }


def test_given_the_stacks_then_each_fact_kind_has_its_published_schema(synth):
    schemas = _resources(synth, "AWS::EventSchemas::Schema")
    published = {
        json.loads(s["Properties"]["Content"])["title"]: json.loads(s["Properties"]["Content"])
        for s in schemas.values()
    }
    assert published == {detail_type_of(k): json_schema(k) for k in KINDS}
    assert all(s["Properties"]["Type"] == "JSONSchemaDraft4" for s in schemas.values())
    assert len(_resources(synth, "AWS::EventSchemas::Registry")) == 1


def test_given_the_functions_then_only_those_that_make_a_fact_may_put_events_for_the_platforms_source(synth):
    allowed = set()
    for template in synth.templates.values():
        resources = template.get("Resources", {})
        for res in resources.values():
            if res["Type"] != "AWS::IAM::Policy":
                continue
            for statement in res["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "events:PutEvents" not in actions:
                    continue
                assert statement["Condition"] == {"StringEquals": {"events:source": "serverless-mlops"}}
                assert ":event-bus/default" in json.dumps(statement["Resource"])
                for role in res["Properties"]["Roles"]:
                    role_id = role["Ref"]
                    functions = [
                        r
                        for r in resources.values()
                        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Role"]["Fn::GetAtt"][0] == role_id
                    ]
                    allowed |= {f["Properties"]["Environment"]["Variables"]["MLOPS_FUNCTION"] for f in functions}
    assert allowed == PUBLISHERS


def test_given_the_rules_then_every_event_is_kept_and_champions_notify_once(synth):
    rules = [r["Properties"] for r in _resources(synth, "AWS::Events::Rule").values()]
    ours = [r for r in rules if (r.get("EventPattern") or {}).get("source") == ["serverless-mlops"]]
    kept = next(r for r in ours if "detail-type" not in r["EventPattern"])
    assert kept["EventPattern"]["detail"] == {"environment": ["dev"]} and ":logs:" in json.dumps(kept["Targets"])
    notified = {
        tuple(r["EventPattern"]["detail-type"]): r["EventPattern"]["detail"]
        for r in ours
        if "detail-type" in r["EventPattern"]
    }
    # failures reach the topic from the pipeline's catch, once: no rule sends them a second time
    assert notified == {("Champion Changed",): {"environment": ["dev"]}}
