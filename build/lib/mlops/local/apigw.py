"""API Gateway offline: HTTP on localhost → REST proxy events → the serve handler → HTTP.

The same translation API Gateway does for a Lambda proxy integration (payload format 1.0), so
``curl`` against the local URL behaves as against the deployed API — including what API Gateway decides
before Lambda runs: a body that fails the method's request model is a 400 with the API's BAD_REQUEST_BODY
gateway response (the models and that response are read from the synthesized template), and a request whose
event exceeds Lambda's 6 MB synchronous payload is a 413 "Request Too Long".
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

STAGE = "live"
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's limit on a synchronous invocation's event

RequestModels = dict[tuple[str, str], dict[str, Any]]


def request_models(template: dict[str, Any]) -> RequestModels:
    """(method, path) → JSON schema of every method whose validator checks the body, from a stack template."""
    resources = template.get("Resources", {})

    def full_path(logical: str) -> str:  # PathPart under its parent's path (nested: /models/<name>/predict)
        props = resources[logical]["Properties"]
        parent = (props.get("ParentId") or {}).get("Ref")
        return (full_path(str(parent)) if parent in resources else "") + "/" + props["PathPart"]

    paths = {k: full_path(k) for k, r in resources.items() if r["Type"] == "AWS::ApiGateway::Resource"}
    validates = {
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::ApiGateway::RequestValidator" and r["Properties"].get("ValidateRequestBody")
    }
    out: RequestModels = {}
    for res in resources.values():
        props = res.get("Properties", {})
        if res["Type"] != "AWS::ApiGateway::Method" or props.get("RequestValidatorId", {}).get("Ref") not in validates:
            continue
        model = (props.get("RequestModels") or {}).get("application/json")
        resource = props.get("ResourceId", {}).get("Ref")
        if model and resource in paths:
            out[(props["HttpMethod"], paths[resource])] = resources[model["Ref"]]["Properties"]["Schema"]
    return out


INVALID_BODY = json.dumps({"message": "Invalid request body"})  # API Gateway's default BAD_REQUEST_BODY answer


def bad_request_body(template: dict[str, Any]) -> str:
    """The body API Gateway answers a request that fails its model with: the API's BAD_REQUEST_BODY gateway
    response (its application/json template, static text), or AWS's default."""
    for res in template.get("Resources", {}).values():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::ApiGateway::GatewayResponse" and props.get("ResponseType") == "BAD_REQUEST_BODY":
            return str((props.get("ResponseTemplates") or {}).get("application/json") or INVALID_BODY)
    return INVALID_BODY


def gateway_check(
    method: str, path: str, body: str | None, models: RequestModels, invalid: str = INVALID_BODY
) -> tuple[int, str] | None:
    """What API Gateway itself answers before invoking the function, or None to invoke it. A body too deeply
    nested for Python's parser is no more a valid body than a malformed one (and must not kill the thread)."""
    schema = models.get((method, path))
    if schema is not None:
        from jsonschema import Draft4Validator

        try:
            document = json.loads(body or "")
        except (ValueError, RecursionError):
            return 400, invalid
        try:
            valid = Draft4Validator(schema).is_valid(document)
        except RecursionError:
            valid = False
        if not valid:
            return 400, invalid
    return None


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


_metrics: list[Any] = []  # [MetricsBuffer, api name] while the emulator publishes API Gateway's metrics


def call(
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """One request, and API Gateway's metrics for it (Count, 4XXError, 5XXError, Latency by ApiName)."""
    t0 = time.perf_counter()
    status, headers_out, out = _call(method, path, body, headers, query)
    if _metrics:
        buffer, name = _metrics
        dims = {"ApiName": name}
        buffer.add("AWS/ApiGateway", "Count", 1, dims, "Count")
        buffer.add("AWS/ApiGateway", "4XXError", int(400 <= status < 500), dims, "Count")
        buffer.add("AWS/ApiGateway", "5XXError", int(status >= 500), dims, "Count")
        buffer.add("AWS/ApiGateway", "Latency", (time.perf_counter() - t0) * 1000, dims, "Milliseconds")
    return status, headers_out, out


def _call(
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """One request through the serve handler, with Lambda semantics; a handler crash is a 502, as in AWS."""
    refused = gateway_check(method, path, body, _models, _invalid_body[0])
    if refused is not None:
        return refused[0], {"Content-Type": "application/json"}, refused[1]
    event = rest_event(method, path, body, headers, query)
    if len(json.dumps(event)) > LAMBDA_SYNC_PAYLOAD_BYTES:
        return 413, {"Content-Type": "application/json"}, json.dumps({"message": "Request Too Long"})
    from mlops.local import seams

    payload, errored = seams.invoke_handler("serve", event)
    if errored:
        return 502, {"Content-Type": "application/json"}, json.dumps({"message": "Internal server error"})
    out_body = payload.get("body") or ""
    if payload.get("isBase64Encoded"):
        out_body = base64.b64decode(out_body).decode()
    headers_out = {k: str(v) for k, v in (payload.get("headers") or {}).items()}
    for k, values in (payload.get("multiValueHeaders") or {}).items():
        headers_out[k] = ",".join(map(str, values))
    return int(payload.get("statusCode", 200)), headers_out, out_body


_models: RequestModels = {}
_invalid_body: list[str] = [INVALID_BODY]  # the deployed API's BAD_REQUEST_BODY answer, once a template is applied


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
        try:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in {"content-length", "connection"}:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client stopped waiting (its own timeout, say while the function cold-started) and closed the
            # connection: there is no one to answer. As API Gateway does, the request still ran and was counted.
            self.close_connection = True
            log.info("%s %s: the client closed the connection before the %d answer", self.command, path, status)

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

    def use_template(self, template: dict[str, Any]) -> None:
        """Apply the deployed API's request models and its answer to a body that fails them (from the Serving
        stack's template)."""
        _models.clear()
        _models.update(request_models(template))
        _invalid_body[0] = bad_request_body(template)

    def publish_metrics(self, buffer: Any, api_name: str) -> None:
        """Publish each request's metrics to CloudWatch (through ``buffer``) under ``api_name``."""
        _metrics[:] = [buffer, api_name]

    def stop(self) -> None:
        _metrics.clear()
        _invalid_body[0] = INVALID_BODY
        self._server.shutdown()
        self._server.server_close()
