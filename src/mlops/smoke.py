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

    def check(name: str, fn: Callable[[], str]) -> bool:
        t0 = time.monotonic()
        try:
            detail, ok = fn(), True
        except Exception as err:
            detail, ok = f"{type(err).__name__}: {err}", False
        result = Check(name, ok, detail, round(time.monotonic() - t0, 2))
        checks.append(result)
        say(result)
        return ok

    def health() -> str:
        status, body = p.api_request("GET", "/health")
        if status != 200 or body.get("status") not in ("ok", "no_model"):
            raise AssertionError(f"GET /health → {status} {body}")
        return f"{body.get('status')}, code {body.get('code_version')}, models {body.get('models')}"

    def pipeline_run() -> str:
        config = p.config()
        key = f"{config.data.prefix}smoke-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.csv"
        up = p.upload(batch, key)
        run = p.wait(p.run_for_upload(key, up["etag"], timeout=120), timeout=timeout)
        if run.get("status") != "SUCCEEDED" or not run.get("model_version"):
            raise AssertionError(f"run {run.get('run_id')} ended {run.get('status')}: {run.get('error') or run}")
        return f"run {run['run_id']} registered v{run['model_version']} in {run.get('duration_s', 0):.0f} s"

    def predict() -> str:
        deadline = time.monotonic() + 120  # the serve function re-checks the champion on its cache interval
        while True:
            status, body = p.api_request("POST", f"/models/{p.model}/predict", {"records": records})
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(2)
        if status != 200:
            raise AssertionError(f"POST /models/{p.model}/predict → {status} {body}")
        return f"v{body['model_version']} answered {len(body['predictions'])} record(s)"

    for name, fn in (("health", health), ("pipeline run registers a model", pipeline_run), ("signed predict", predict)):
        if not check(name, fn):
            break
    return checks
