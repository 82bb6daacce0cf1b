"""Schemathesis against the served OpenAPI document: no 5xx, and every response matches its schema."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import boto3
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from moto import mock_aws
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mlops.core.clock import new_run_id
from mlops.core.config import load_config
from mlops.core.constants import ENV_CONFIG_URI
from mlops.core.context import StepContext
from mlops.core.runs import start_run
from mlops.local.apigw import LocalApi, call
from mlops.local.lambda_runtime import reset_caches
from mlops.local.provision import create_resources
from mlops.serving import api
from mlops.tools.samples import bundled, example_config_path
from mlops.wiring.runtime import make_stores
from tests.chain import run_chain

pytestmark = [pytest.mark.functional, pytest.mark.slow]


@pytest.fixture(scope="module")
def served_api() -> Iterator[str]:
    """A champion in an in-process moto account, served by the real handler over local HTTP."""
    mock = mock_aws()
    mock.start()
    saved = dict(os.environ)
    try:
        session = boto3.session.Session(region_name="us-east-1")
        resources = create_resources(session)
        os.environ.update({**resources.as_env(), ENV_CONFIG_URI: str(example_config_path())})
        reset_caches()
        api.model_cache.cache_clear()
        stores = make_stores(resources, session)
        config = load_config(example_config_path())
        session.client("s3").put_object(
            Bucket=resources.landing_bucket,
            Key="breast-cancer/a.csv",
            Body=bundled("breast-cancer").to_csv(index=False).encode(),
        )
        run_id = new_run_id()
        start_run(stores, config, run_id, {"reason": "fuzz"})
        out = run_chain(
            StepContext(run_id, config, stores), {"bucket": resources.landing_bucket, "keys": ["breast-cancer/a.csv"]}
        )
        assert out["status"] == "SUCCEEDED"
        local = LocalApi().start()
        yield local.url
        local.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_caches()
        api.model_cache.cache_clear()
        mock.stop()


@pytest.fixture(scope="module")
def api_schema(served_api: str):
    status, _, body = call("GET", "/openapi.json")
    assert status == 200
    return schemathesis.openapi.from_dict(json.loads(body))


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


PREDICT_EXAMPLES = 200
EXAMPLES = {
    "/predict": PREDICT_EXAMPLES,
    "/models/breast-cancer/predict": 100,
    "/feedback": 60,
    "/models/breast-cancer/feedback": 40,
}


def test_given_generated_requests_then_no_5xx_and_responses_match_the_schema(api_schema, served_api):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # The one-model routes and the model's own (documented with its record schema, per model).
    assert {op.path for op in operations} == {
        "/predict",
        "/feedback",
        "/model",
        "/health",
        "/models",
        "/models/breast-cancer",
        "/models/breast-cancer/predict",
        "/models/breast-cancer/feedback",
    }
    statuses: dict[str, list[int]] = {}
    for operation in operations:
        record = statuses.setdefault(operation.path, []).append

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES.get(operation.path, 25),
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case):
            record(case.call_and_validate(base_url=served_api, checks=CHECKS).status_code)  # noqa: B023 - run here

        fuzz()
    assert all(s < 500 for codes in statuses.values() for s in codes)
    for path in ("/predict", "/models/breast-cancer/predict"):
        predict = statuses[path]
        reached = sum(1 for s in predict if s == 200)
        print(f"\nfuzz: {len(predict)} POST {path} requests, {reached} reached a prediction, 0 answered 5xx")
        # The document describes the champion's record (names, types): most generated requests are predictions.
        assert reached >= len(predict) // 2, {s: predict.count(s) for s in set(predict)}
