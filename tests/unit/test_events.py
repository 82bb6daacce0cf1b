"""The trigger's events, parsed with Powertools' parser: AWS's own shapes in, a field-naming error for a bad one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlops.core.events import (
    AlarmStateChange,
    ExecutionStatusChange,
    RunRequest,
    S3Upload,
    ScheduledEvent,
    parse_trigger_event,
)
from tests.conftest import load_event

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("s3_object_created", S3Upload),
        ("scheduled_event", ScheduledEvent),
        ("alarm_state_change", AlarmStateChange),
        ("execution_status_change", ExecutionStatusChange),
        ("manual_run", RunRequest),
    ],
)
def test_given_each_sample_event_then_it_parses_as_its_kind(name, kind):
    assert isinstance(parse_trigger_event(load_event(name)), kind)


def test_given_the_samples_then_the_fields_the_trigger_reads_are_typed():
    upload = parse_trigger_event(load_event("s3_object_created"))
    assert isinstance(upload, S3Upload) and upload.detail.object.key and upload.detail.bucket.name
    alarm = parse_trigger_event(load_event("alarm_state_change"))
    assert isinstance(alarm, AlarmStateChange) and alarm.detail.state.value in ("ALARM", "OK", "INSUFFICIENT_DATA")
    schedule = parse_trigger_event(load_event("scheduled_event"))
    assert isinstance(schedule, ScheduledEvent) and schedule.when.endswith("Z") and len(schedule.when) == 20
    finished = parse_trigger_event(load_event("execution_status_change"))
    assert isinstance(finished, ExecutionStatusChange) and finished.detail.status
    assert finished.detail.input_field("no-such-field") is None


def test_given_a_malformed_or_unknown_event_then_the_error_names_the_field_or_the_kinds():
    upload = load_event("s3_object_created")
    del upload["detail"]["bucket"]
    with pytest.raises(ValidationError, match="bucket"):
        parse_trigger_event(upload)
    with pytest.raises(ValidationError, match="colour"):
        parse_trigger_event({"action": "run", "colour": "red"})
    with pytest.raises(ValueError, match=r"unrecognised trigger event.*Object Created"):
        parse_trigger_event({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"})
