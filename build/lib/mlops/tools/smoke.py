"""The smoke test a deployment must pass before it takes more (E4): the API is healthy, a signed prediction is
answered, and one pipeline run on a small batch registers a model. One script for every target: the offline
emulator (CI runs it that way), staging and prod (the delivery pipeline runs it after each deploy)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


def smoke(
    p: Any, batch: bytes, records: list[dict[str, Any]], say: Callable[[Check], None], timeout: float = 900
) -> list[Check]:
    """Run the checks against platform ``p`` (about one model); stop at the first failure."""
    checks: list[Check] = []
    for name, fn in (
        ("health", lambda: _health(p)),
        ("pipeline run registers a model", lambda: _pipeline_run(p, batch, timeout)),
        ("signed predict", lambda: _predict(p, records)),
    ):
        t0 = time.monotonic()
        try:
            detail, ok = fn(), True
        except Exception as err:  # noqa: BLE001 — whatever a check raises is its failed result
            detail, ok = f"{type(err).__name__}: {err}", False
        checks.append(Check(name, ok, detail, round(time.monotonic() - t0, 2)))
        say(checks[-1])
        if not ok:
            break
    return checks


def _health(p: Any) -> str:
    status, body = p.api_request("GET", "/health")
    if status != 200 or body.get("status") not in ("ok", "partial", "no_model"):
        raise AssertionError(f"GET /health → {status} {body}")
    return f"{body.get('status')}, code {body.get('code_version')}, models {body.get('models')}"


def _pipeline_run(p: Any, batch: bytes, timeout: float) -> str:
    config = p.config()
    key = f"{config.data.prefix}smoke-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.csv"
    up = p.upload(batch, key)
    run = p.wait(p.run_for_upload(key, up["etag"], timeout=120), timeout=timeout)
    if run.get("status") != "SUCCEEDED" or not run.get("model_version"):
        raise AssertionError(f"run {run.get('run_id')} ended {run.get('status')}: {run.get('error') or run}")
    return f"run {run['run_id']} registered v{run['model_version']} in {run.get('duration_s', 0):.0f} s"


def _predict(p: Any, records: list[dict[str, Any]]) -> str:
    deadline = time.monotonic() + 120  # the serve function re-checks the champion on its cache interval
    while True:
        status, body = p.api_request("POST", f"/models/{p.model}/predict", {"records": records})
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(2)
    if status != 200:
        raise AssertionError(f"POST /models/{p.model}/predict → {status} {body}")
    return f"v{body['model_version']} answered {len(body['predictions'])} record(s)"
