"""The real handlers, invoked with Lambda semantics against moto, with events in AWS's shapes."""

from __future__ import annotations

import json

import pytest

from mlops.core.runs import start_run
from mlops.local.lambda_runtime import function_names, invoke
from mlops.tools.samples import bundled
from tests.conftest import load_event

pytestmark = pytest.mark.functional


def test_given_every_function_folder_then_each_is_a_thin_handler():
    from mlops.infra.functions import ALL_FUNCTIONS
    from mlops.local.lambda_runtime import FUNCTIONS_DIR

    names = function_names()
    assert set(names) == {f.name for f in ALL_FUNCTIONS}  # a folder per function the app deploys, no other
    for name in names:
        source = (FUNCTIONS_DIR / name / "handler.py").read_text()
        body = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert len(body) <= 30, f"{name}: {len(body)} lines"
        assert "boto3.client(" not in source or name == "trigger"


def test_given_the_extract_event_when_invoked_then_the_snapshot_is_written_and_recorded(
    lambda_env, breast_cancer_config
):
    event = load_event("extract")
    lambda_env.upload(event["source"]["keys"][0], bundled("breast-cancer").to_csv(index=False).encode())
    start_run(lambda_env.stores, breast_cancer_config, event["run_id"], event["trigger"])
    out = invoke("extract", event)
    assert out.function_error is None, out.payload
    assert out.payload["rows"] == 569 and out.payload["snapshot"]["uri"].startswith("s3://mlops-artifacts/runs/")
    run = lambda_env.stores.meta.get_run("breast-cancer", event["run_id"])
    assert run["steps"]["extract"]["status"] == "SUCCEEDED"


def test_given_an_event_missing_a_field_when_invoked_then_a_validation_function_error(lambda_env):
    event = load_event("extract")
    del event["source"]
    out = invoke("extract", event)
    assert out.function_error == "Unhandled"
    assert out.payload["errorType"] == "ValidationError" and "source" in out.payload["errorMessage"]


def test_given_a_catch_payload_when_finalized_then_the_run_fails_with_the_error_named(lambda_env, breast_cancer_config):
    event = load_event("finalize_failed")
    start_run(lambda_env.stores, breast_cancer_config, event["run_id"], {"reason": "test"})
    out = invoke("finalize", event)
    assert out.function_error is None, out.payload
    run = lambda_env.stores.meta.get_run("breast-cancer", event["run_id"])
    assert run["status"] == "FAILED"
    assert run["error"]["type"] == "DataTooLargeError" and "data.max_bytes" in run["error"]["message"]


def test_given_a_missing_object_when_extracted_then_a_named_error_for_catch(lambda_env, breast_cancer_config):
    event = load_event("extract")
    start_run(lambda_env.stores, breast_cancer_config, event["run_id"], event["trigger"])
    out = invoke("extract", event)
    assert out.function_error == "Unhandled"
    assert out.payload["errorType"] == "SourceObjectMissingError"  # was botocore's ClientError (404, HeadObject)
    assert "was deleted before the run read it" in out.payload["errorMessage"]
    assert json.dumps(out.payload)  # serialisable, as Lambda returns it
