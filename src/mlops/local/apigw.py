"""API Gateway offline: HTTP on localhost → REST proxy events → the serve handler → HTTP.

The same translation API Gateway does for a Lambda proxy integration (payload format 1.0), so
``curl`` against the local URL behaves as against the deployed API.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mlops.local.lambda_runtime import invoke

STAGE = "live"


def rest_event(
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    stage: str = STAGE,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload format 1.0), as the Lambda integration receives it."""
    headers = headers or {}
    request_id = str(uuid.uuid4())
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": {"alias": stage},
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def call(
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """One request through the serve handler, with Lambda semantics; a handler crash is a 502, as in AWS."""
    result = invoke("serve", rest_event(method, path, body, headers, query), timeout_s=30)
    if result.function_error:
        return 502, {"Content-Type": "application/json"}, json.dumps({"message": "Internal server error"})
    payload = result.payload
    out_body = payload.get("body") or ""
    if payload.get("isBase64Encoded"):
        out_body = base64.b64decode(out_body).decode()
    headers_out = {k: str(v) for k, v in (payload.get("headers") or {}).items()}
    for k, values in (payload.get("multiValueHeaders") or {}).items():
        headers_out[k] = ",".join(map(str, values))
    return int(payload.get("statusCode", 200)), headers_out, out_body


class _Handler(BaseHTTPRequestHandler):
    server_version = "mlops-local-apigw"

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", errors="replace") if length else None
        path = url.path
        if path.startswith(f"/{STAGE}/") or path == f"/{STAGE}":
            path = path[len(STAGE) + 1 :] or "/"
        status, headers, out = call(self.command, path, body, dict(self.headers.items()), dict(parse_qsl(url.query)))
        data = out.encode()
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in {"content-length", "connection"}:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet, like the emulator


class LocalApi:
    """The local API Gateway: ``http://127.0.0.1:PORT/<stage>/predict`` (the stage prefix is optional)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}/{STAGE}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="mlops-local-apigw", daemon=True)

    def start(self) -> LocalApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
