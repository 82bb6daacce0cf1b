"""The local API Gateway's own edge, over loopback HTTP and with no function behind it: what it answers before
the serve function would run, and that a client's misbehaviour never costs the emulator a thread's traceback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from mlops.local import apigw

pytestmark = pytest.mark.unit

PREDICT_SCHEMA = {
    "type": "object",
    "required": ["records"],
    "additionalProperties": False,
    "properties": {"records": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"type": "object"}}},
}


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[apigw.LocalApi]:
    """The gateway with the deployed request model on POST /predict; the serve function is never reached."""
    monkeypatch.setattr(apigw, "_models", {("POST", "/predict"): PREDICT_SCHEMA})
    local = apigw.LocalApi().start()
    yield local
    local.stop()


def post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:  # a liveness bound, not a latency check
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize("depth", [1_100, 5_000])
def test_given_a_body_nested_past_the_json_depth_limit_then_the_gateway_answers_400_and_stays_up(gateway, depth):
    deep = ("[" * depth + "]" * depth).encode()
    for body in (deep, b'{"records": ' + deep + b"}"):
        status, answer = post(gateway.url + "/predict", body)
        assert status == 400, answer
        assert answer["message"].startswith("Invalid request body"), answer
    # the same server, still answering
    status, answer = post(gateway.url + "/predict", b'{"records": []}')
    assert status == 400 and answer["message"].startswith("Invalid request body")
