"""The run's warm-up: each later step answers the state machine's asynchronous warm-up event without running."""

from __future__ import annotations

import pytest

from mlops.core.constants import WARM_UP_EVENT
from mlops.infra.functions import WARMED
from mlops.local.lambda_runtime import invoke
from mlops.wiring.runtime import stores_from_env

pytestmark = pytest.mark.functional


@pytest.mark.parametrize("function", WARMED)
def test_given_the_warm_up_event_then_the_step_initializes_its_stores_and_runs_nothing(lambda_env, function):
    assert stores_from_env.cache_info().currsize == 0  # a fresh execution environment
    out = invoke(function, WARM_UP_EVENT)
    assert out.function_error is None and out.payload == {"warm": True}
    assert stores_from_env.cache_info().currsize == 1  # the clients the step's first invocation would build
    runs = lambda_env.session.client("dynamodb").scan(TableName=lambda_env.resources.runs_table)
    assert runs["Items"] == []  # no run record, no step recorded


def test_given_a_step_event_that_also_says_warm_up_then_it_is_a_step_and_is_parsed_as_one(lambda_env):
    out = invoke("analyze", {**WARM_UP_EVENT, "run_id": "20260101T000000Z-abcdef", "model": "breast-cancer"})
    assert out.function_error and out.payload["errorType"] == "ValidationError"
    assert "extract" in out.payload["errorMessage"]
