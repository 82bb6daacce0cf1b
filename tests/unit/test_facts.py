"""The facts' schemas are valid JSON Schema (draft 4, as EventBridge's registry takes them) and what the publisher
sends validates against them; one fact has one id however often it is published."""

from __future__ import annotations

import json

import jsonschema
import pytest

from mlops.adapters.events import EventBridgePublisher
from mlops.core.facts import KINDS, ChampionChanged, RunStateChange, fact_id, json_schema

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_given_each_kind_then_its_schema_is_valid_draft_4(kind):
    jsonschema.Draft4Validator.check_schema(json_schema(kind))


class _Bus:
    def __init__(self, failed: int = 0) -> None:
        self.entries: list[dict] = []
        self.failed = failed

    def put_events(self, Entries):
        self.entries += Entries
        return {
            "FailedEntryCount": self.failed,
            "Entries": [{"ErrorCode": "ThrottlingException"}] if self.failed else [{}],
        }


def test_given_a_fact_then_the_event_carries_it_and_validates_against_its_schema():
    bus = _Bus()
    fact = ChampionChanged(
        id=fact_id("m", "champion", "t", "promote", 2),
        model="m",
        version=2,
        previous=1,
        action="promote",
        actor="pipeline",
        reason="blessed",
        at="2026-12-05T00:00:00.000Z",
    )
    EventBridgePublisher(bus, "default", "serverless-mlops", "dev").publish(fact)
    (entry,) = bus.entries
    event = {"detail-type": entry["DetailType"], "source": entry["Source"], "detail": json.loads(entry["Detail"])}
    jsonschema.validate(event, json_schema(ChampionChanged))
    assert event["detail"]["environment"] == "dev" and entry["EventBusName"] == "default"
    assert "detail_type" not in event["detail"]


def test_given_a_refused_event_then_the_step_is_retried_not_the_fact_lost():
    from mlops.core.errors import TransientError

    fact = RunStateChange(id=fact_id("m", "r", "FAILED"), model="m", run_id="r", status="FAILED", at="t")
    with pytest.raises(TransientError, match="ThrottlingException"):
        EventBridgePublisher(_Bus(failed=1), "default", "s", "dev").publish(fact)
    assert fact_id("m", "r", "FAILED") == fact.id  # the retry publishes the same id: subscribers deduplicate
