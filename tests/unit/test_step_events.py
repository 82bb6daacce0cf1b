"""The steps' records between one another: each step's result model (mlops.core.results) is what its handler
returns and what the next step's event model parses, with artifact refs in one shape (ports.ArtifactRefDict),
validated at the edge."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.parser import parse
from pydantic import ValidationError

from mlops.core.results import (
    AnalyzeResult,
    EvaluateResult,
    ExportResult,
    ExtractResult,
    PlanResult,
    PrepareResult,
    TrainResult,
    Trial,
    TrialResult,
    ValidateDataResult,
    ValidateModelResult,
)
from mlops.wiring.handlers import AnalyzeEvent, DatasetEvent, FinalizeEvent, RegisterEvent, SelectEvent, TrialEvent

pytestmark = pytest.mark.unit

RUN = {"run_id": "20260101T000000Z-abcdef", "model": "m"}


def ref(name: str) -> dict:
    return {"uri": f"s3://artifacts/runs/r/{name}", "sha256": "ab" * 32, "size": 10}


REF = ref("extract/snapshot.parquet")


def test_given_a_ref_without_its_sha256_then_the_step_refuses_the_event_naming_the_field():
    event = {**RUN, "extract": {"snapshot": dict(REF), "manifest": REF}}
    del event["extract"]["snapshot"]["sha256"]
    with pytest.raises(ValidationError, match=r"extract\.snapshot\.sha256"):
        parse(event=event, model=AnalyzeEvent)


def test_given_well_formed_refs_then_the_step_gets_them_as_sent():
    prepare = PrepareResult(
        dataset=REF, train=ref("t"), validation=ref("v"), test=ref("x"), task="binary", rows={"train": 3}
    )
    req = parse(event={**RUN, "prepare": prepare.as_state()}, model=DatasetEvent)
    assert req.prepare.dataset == REF and isinstance(req.prepare.dataset, dict)


def every_step_result() -> dict:
    """A whole successful run's state, built from the steps' result models as their handlers return them."""
    trials = [
        TrialResult(trial_id="t000", family="logistic_regression", params={"C": 1.0}, status="SUCCEEDED", value=0.9),
        TrialResult(trial_id="t001", family="random_forest", params={}, status="FAILED", error="bad params"),
    ]
    results = {
        "extract": ExtractResult(snapshot=REF, manifest=ref("m"), rows=10, columns=3, objects=1, bytes=99),
        "analyze": AnalyzeResult(statistics=ref("s"), report=ref("s.html"), rows=10, features=2),
        "validate_data": ValidateDataResult(passed=True, schema=ref("schema"), schema_version=0),
        "prepare": PrepareResult(
            dataset=ref("d"), train=ref("t"), validation=ref("v"), test=ref("x"), task="binary", rows={"test": 2}
        ),
        "plan": PlanResult(
            trials=[Trial(trial_id=t.trial_id, family=t.family, params=t.params) for t in trials],
            count=2,
            max_concurrency=2,
        ),
        "train": TrainResult(model=ref("model"), family="logistic_regression", params={"C": 1.0}),
        "export": ExportResult(onnx=ref("onnx"), size_bytes=5, inputs=2),
        "evaluate": EvaluateResult(
            evaluation=ref("e"),
            report=ref("r"),
            reference=ref("ref"),
            metric="roc_auc",
            value=0.9,
            metrics={"roc_auc": 0.9, "n": 2},
        ),
        "validate_model": ValidateModelResult(blessed=True, report=ref("b")),
    }
    state: dict = {**RUN, **{name: r.as_state() for name, r in results.items()}}
    state["trials"] = [t.as_state() for t in trials]
    return json.loads(json.dumps(state))  # as the state machine carries it: JSON, nothing more


def test_given_a_runs_state_built_from_the_result_models_then_each_later_step_parses_it():
    state = every_step_result()
    register = parse(event=state, model=RegisterEvent)
    assert register.validate_data.usable_schema == ref("schema")
    assert register.train.params == {"C": 1.0} and register.evaluate.metrics["n"] == 2
    select = parse(event=state, model=SelectEvent)
    assert [t.status for t in select.trials] == ["SUCCEEDED", "FAILED"]
    item = {**RUN, "dataset": state["prepare"]["dataset"], "trial": state["plan"]["trials"][0]}
    assert parse(event=item, model=TrialEvent).trial == Trial(
        trial_id="t000", family="logistic_regression", params={"C": 1.0}
    )
    done = parse(
        event={
            **state,
            "outcome": "SUCCEEDED",
            "register": {"version": 1, "status": "APPROVED", "promoted": True, "alias": "champion"},
        },
        model=FinalizeEvent,
    )
    assert done.register_ is not None and done.register_.version == 1


def test_given_a_trial_that_died_in_its_lambda_then_train_gets_it_as_a_failed_trial_with_its_cause():
    # The shape the tuning Map's TrialFailed Pass state builds from the caught error.
    died = {
        "trial_id": "t002",
        "family": "gradient_boosting",
        "params": {"max_iter": 400},
        "status": "FAILED",
        "error": "Sandbox.Timedout",
        "cause": "Task timed out after 900.00 seconds",
    }
    req = parse(event={**every_step_result(), "trials": [died]}, model=SelectEvent)
    assert req.trials[0].cause == died["cause"] and req.trials[0].value is None


def test_given_a_malformed_trial_then_train_refuses_the_event_naming_the_field():
    state = every_step_result()
    state["trials"] = [{"family": "logistic_regression", "params": {}, "status": "SUCCEEDED"}]
    with pytest.raises(ValidationError, match=r"trials\.0\.trial_id"):
        parse(event=state, model=SelectEvent)
    state["trials"] = [{**state["plan"]["trials"][0], "status": "DONE"}]
    with pytest.raises(ValidationError, match=r"trials\.0\.status"):
        parse(event=state, model=SelectEvent)


def test_given_a_field_a_newer_step_adds_then_an_older_reader_ignores_it():
    # An execution that spans a deploy: a step's output read by a step of the other version.
    state = every_step_result()
    state["extract"]["sampled"] = True
    assert parse(event=state, model=AnalyzeEvent).extract.rows == 10


def test_given_a_step_result_then_it_is_a_record_that_does_not_change_after_the_step_returns():
    result = ExportResult(onnx=REF, size_bytes=3)
    with pytest.raises(ValidationError, match="frozen"):
        result.size_bytes = 4  # type: ignore[misc]
    assert result.artifacts() == {"onnx": REF} and result.as_state()["size_bytes"] == 3
