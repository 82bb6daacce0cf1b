"""The steps' event models carry artifact refs in one shape (ports.ArtifactRefDict): validated at the edge."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.parser import parse
from pydantic import ValidationError

from mlops.handlers import AnalyzeEvent, DatasetEvent

pytestmark = pytest.mark.unit

REF = {"uri": "s3://artifacts/runs/r/extract/snapshot.parquet", "sha256": "ab" * 32, "size": 10}


def test_given_a_ref_without_its_sha256_then_the_step_refuses_the_event_naming_the_field():
    event = {"run_id": "20260101T000000Z-abcdef", "model": "m", "extract": {"snapshot": dict(REF), "manifest": REF}}
    del event["extract"]["snapshot"]["sha256"]
    with pytest.raises(ValidationError, match=r"extract\.snapshot\.sha256"):
        parse(event=event, model=AnalyzeEvent)


def test_given_well_formed_refs_then_the_step_gets_them_as_sent():
    event = {"run_id": "20260101T000000Z-abcdef", "model": "m", "prepare": {"dataset": REF, "rows": 3}}
    req = parse(event=event, model=DatasetEvent)
    assert req.prepare.dataset == REF and isinstance(req.prepare.dataset, dict)
