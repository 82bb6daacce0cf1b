"""Run the real handlers from ``functions/<name>/handler.py`` in-process, with Lambda semantics.

An invocation gets the event and a context object (request id, remaining time, function name and
ARN); an exception becomes a function error whose payload is Lambda's own error shape
(``errorMessage``, ``errorType``, ``stackTrace``), so Step Functions' Retry and Catch see the same
error names as in AWS.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import mlops.functions

FUNCTIONS_DIR = Path(mlops.functions.__file__).parent  # the handlers, as the installed package ships them

_modules: dict[str, ModuleType] = {}
_lock = threading.Lock()


@dataclass
class LocalContext:
    """The attributes of AWS's LambdaContext that handlers and Powertools read."""

    function_name: str
    timeout_s: int = 900
    memory_limit_in_mb: int = 1024
    region: str = "us-east-1"
    account: str = "123456789012"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_names() -> list[str]:
    return sorted(p.parent.name for p in FUNCTIONS_DIR.glob("*/handler.py"))


def load_handler(name: str) -> Callable[[dict[str, Any], Any], Any]:
    """Import ``functions/<name>/handler.py`` once (each under its own module name) and return ``handler``."""
    with _lock:
        module = _modules.get(name)
        if module is None:
            path = FUNCTIONS_DIR / name / "handler.py"
            if not path.exists():
                raise KeyError(f"no function '{name}' (expected {path}); known: {', '.join(function_names())}")
            spec = importlib.util.spec_from_file_location(f"mlops_functions.{name}.handler", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _modules[name] = module
    handler: Callable[[dict[str, Any], Any], Any] = module.handler
    return handler


@dataclass
class Invocation:
    payload: Any
    function_error: str | None = None  # "Unhandled", as Lambda reports it
    request_id: str = ""
    duration_ms: float = 0.0

    def payload_bytes(self) -> bytes:
        return json.dumps(self.payload, default=str).encode()


def invoke(name: str, event: Any, *, timeout_s: int = 900, memory_mb: int = 1024) -> Invocation:
    """Invoke a handler the way Lambda would; never raises for an error inside the handler."""
    context = LocalContext(
        function_name=name,
        timeout_s=timeout_s,
        memory_limit_in_mb=memory_mb,
        region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    handler = load_handler(name)
    t0 = time.perf_counter()
    try:
        result = handler(json.loads(json.dumps(event)), context)
        return Invocation(result, None, context.aws_request_id, (time.perf_counter() - t0) * 1000)
    except Exception as err:  # noqa: BLE001 — Lambda's contract: an unhandled error becomes a function error
        payload = {
            "errorMessage": str(err),
            "errorType": type(err).__name__,
            "requestId": context.aws_request_id,
            "stackTrace": traceback.format_exception(err)[-8:],
        }
        return Invocation(payload, "Unhandled", context.aws_request_id, (time.perf_counter() - t0) * 1000)


def reset_caches() -> None:
    """Forget per-process wiring (stores, config): call after the environment changes, as a cold start would."""
    from mlops.wiring.runtime import reset_wiring

    reset_wiring()
    api = sys.modules.get("mlops.serving.api")
    if api is not None:  # the serve function's per-environment reads of the config
        api.capture_sample.cache_clear()
        api.feature_uses.cache_clear()
