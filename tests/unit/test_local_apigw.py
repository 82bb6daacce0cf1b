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


def test_given_a_client_that_goes_away_before_the_answer_then_the_gateway_ends_quietly_and_keeps_serving(
    monkeypatch, capsys
):
    """What happened under load: the serve function cold-started past the client's timeout, the client closed
    its connection, and the gateway's write of the late answer raised BrokenPipeError in its handler thread."""
    import socket
    import struct
    import threading

    client_gone = threading.Event()

    def late_answer(method: str, path: str, *args: Any) -> tuple[int, dict[str, str], str]:
        if path == "/slow":
            assert client_gone.wait(timeout=120)  # a liveness bound: the test sets it right after closing
            return 200, {"Content-Type": "application/json"}, json.dumps({"pad": "x" * 4_000_000})
        return 200, {"Content-Type": "application/json"}, json.dumps({"ok": True})

    monkeypatch.setattr(apigw, "call", late_answer)
    local = apigw.LocalApi().start()
    host, port = local.url.split("//")[1].split("/")[0].split(":")
    try:
        client = socket.create_connection((host, int(port)), timeout=120)
        client.sendall(b"POST /live/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        client.close()
        client_gone.set()
        with urllib.request.urlopen(local.url + "/fast", timeout=120) as resp:  # still serving
            assert json.loads(resp.read()) == {"ok": True}
    finally:
        local.stop()  # joins the handler threads: the late answer's write has been tried by now
    errors = capsys.readouterr().err
    assert "Traceback" not in errors and "BrokenPipeError" not in errors and "ConnectionResetError" not in errors
