"""C1/C2/D1/D2: the prediction API — Powertools REST resolver, pydantic models, OpenAPI.

``POST /predict`` (records → predictions, probabilities, model version, request id; a sample captured for
the monitor), ``POST /feedback`` (ground-truth labels for earlier predictions), ``GET /model``,
``GET /health`` and ``GET /openapi.json``. A client's mistake is always a 4xx naming the problem;
never a 5xx. JSON goes straight to numpy arrays, one per ONNX input: no pandas, no scikit-learn.
"""

from __future__ import annotations

import functools
import json
import os
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from mlops import __version__
from mlops.constants import ENV_MAX_ROWS, ENV_MODEL_CACHE_SECONDS
from mlops.monitoring import capture
from mlops.serving.service import (
    LoadedModel,
    ModelCache,
    NoModelError,
    check_labels,
    check_records,
    undefined_outputs,
)

MAX_BODY_BYTES = 6 * 1024 * 1024 - 1024  # Lambda's synchronous payload limit, less the event envelope
DEFAULT_MAX_ROWS = 1000


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Values are checked against the model's own signature (service.check_records), which names each
    # bad field; a per-value union here would cost more than the prediction itself.
    records: list[dict[str, Any]] = Field(
        min_length=1,
        description="Rows to score, as JSON objects keyed by feature name; values are numbers or strings, "
        "null = missing.",
    )

    def __repr__(self) -> str:  # the framework logs its arguments: keep that cheap for big batches
        return f"PredictRequest({len(self.records)} records)"


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="The request_id of the prediction's response."
    )
    row: int | None = Field(default=None, ge=0, description="The record's position in that request (default 0).")
    id: str | int | float | None = Field(default=None, description="Or: the record's id column value.")
    label: str | int | float | bool = Field(description="The true class (classification) or value (regression).")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[Label] = Field(min_length=1, description="Ground truth for earlier predictions.")

    def __repr__(self) -> str:
        return f"FeedbackRequest({len(self.labels)} labels)"


class FeedbackResponse(BaseModel):
    model: str
    accepted: int
    request_id: str


class Prediction(BaseModel):
    id: str | int | float | None = Field(default=None, description="The record's id column, echoed back if sent.")
    prediction: float | int | str | None
    probabilities: dict[str, float] | None = None


class PredictResponse(BaseModel):
    model: str
    model_version: int
    request_id: str
    predictions: list[Prediction]
    warnings: list[str] = []


class ModelInfo(BaseModel):
    model: str
    version: int
    task: str
    metric: str | None = None
    metrics: dict[str, Any] = {}
    trained_at: str | None = None
    run_id: str | None = None
    inputs: list[dict[str, Any]]
    classes: list[Any] | None = None


class Health(BaseModel):
    status: str
    model_version: int | None = None
    code_version: str


class Problem(BaseModel):
    message: str
    errors: list[dict[str, Any]] = []


# API Gateway REST (payload 1.0, what the stacks deploy) and HTTP APIs / function URLs (payload 2.0): the same
# routes on both, so either front door gets answers rather than a KeyError.
app = APIGatewayRestResolver(enable_validation=True)
http_app = APIGatewayHttpResolver(enable_validation=True)
RESOLVERS: tuple[APIGatewayRestResolver | APIGatewayHttpResolver, ...] = (app, http_app)
for _resolver in RESOLVERS:
    _resolver.configure_openapi(
        title="serverless-mlops prediction API",
        version=__version__,
        summary="Predictions from the registry's champion model (ONNX).",
    )
_active: ContextVar[APIGatewayRestResolver | APIGatewayHttpResolver] = ContextVar("resolver", default=app)


def route(method: str, path: str, **kwargs: Any) -> Any:
    """Register a route on every resolver."""

    def decorate(fn: Any) -> Any:
        for resolver in RESOLVERS:
            getattr(resolver, method)(path, **kwargs)(fn)
        return fn

    return decorate


def on_error(error: type[Exception]) -> Any:
    def decorate(fn: Any) -> Any:
        for resolver in RESOLVERS:
            resolver.exception_handler(error)(fn)
        return fn

    return decorate


@functools.cache
def model_cache() -> ModelCache:
    from mlops.handlers import stores
    from mlops.runtime import config_from_env

    return ModelCache(
        meta=stores().meta,
        artifacts=stores().artifacts,
        model_name=config_from_env().name,
        ttl_seconds=float(os.environ.get(ENV_MODEL_CACHE_SECONDS, "30")),
        on_load_failure=_count_load_failure,
    )


_load_failures: list[int] = []


def _count_load_failure(version: int, err: Exception) -> None:
    """Counted in CloudWatch (EMF, flushed by the handler's Metrics) — alarmable — and kept for tests."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    Metrics().add_metric(name="ModelLoadFailures", unit=MetricUnit.Count, value=1)
    _load_failures.append(version)


def capture_sample() -> float:
    from mlops.runtime import config_from_env

    return config_from_env().monitoring.capture_sample


def max_rows() -> int:
    return int(os.environ.get(ENV_MAX_ROWS, DEFAULT_MAX_ROWS))


class ClientProblem(Exception):
    """A request the model cannot answer as sent: becomes a 4xx that names the problem."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or []


def problem(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"message": message, "errors": errors or []}),
    )


@on_error(ClientProblem)
def _client_problem(err: ClientProblem) -> Response[Any]:
    return problem(err.status, err.message, err.errors)


def _current() -> LoadedModel:
    return model_cache().get()


@on_error(NoModelError)
def _no_model(err: NoModelError) -> Response[Any]:
    return problem(503, str(err))


@route(
    "post",
    "/predict",
    summary="Score records with the champion model",
    responses={
        200: {"description": "Predictions", "content": {"application/json": {"model": PredictResponse}}},
        400: {"description": "A record does not fit the model", "content": {"application/json": {"model": Problem}}},
        413: {"description": "Too many rows or too large a body", "content": {"application/json": {"model": Problem}}},
        422: {"description": "The body is not a valid request"},
        503: {"description": "No champion yet", "content": {"application/json": {"model": Problem}}},
    },
)
def predict(request: Annotated[PredictRequest, Body()]) -> Any:
    limit = max_rows()
    if len(request.records) > limit:
        raise ClientProblem(413, f"{len(request.records)} records; at most {limit} per request")
    loaded = _current()
    problems, warnings, feeds = check_records(loaded.model, request.records)
    if problems:
        shown = [p.as_dict() for p in problems[:50]]
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ClientProblem(400, f"record {first.row}, field '{first.field}': {first.problem}{more}", shown)
    rows = loaded.model.predict_columns(feeds)
    undefined = undefined_outputs(loaded.model, request.records, rows)
    if undefined:
        raise ClientProblem(
            400,
            f"record {undefined[0].row}: {undefined[0].problem}"
            + (f" (and {len(undefined) - 1} more)" if len(undefined) > 1 else ""),
            [p.as_dict() for p in undefined[:50]],
        )
    id_column = loaded.model.signature.id_column
    if id_column:
        for row, record in zip(rows, request.records, strict=True):
            if id_column in record:
                row["id"] = record[id_column]
    body = {
        "model": loaded.record["model"],
        "model_version": loaded.version,
        "request_id": _active.get().current_event.request_context.request_id or "",
        "predictions": rows,
        "warnings": warnings,
    }
    if capture.sampled(capture_sample()):
        event = _active.get().current_event
        capture.emit(
            capture.capture_lines(
                model=body["model"],
                version=loaded.version,
                request_id=body["request_id"],
                records=request.records,
                predictions=rows,
                id_column=id_column,
                now=datetime.now(UTC),
                body=None if event.is_base64_encoded else event.body,
            )
        )
    # Serialized here: the 200 schema is documented above (PredictResponse) and tested by schemathesis;
    # re-validating thousands of rows through pydantic on every response would dominate the latency.
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


@route(
    "post",
    "/feedback",
    summary="Ground-truth labels for earlier predictions (by request id and row, or by record id)",
    status_code=202,
    responses={
        202: {"description": "Labels accepted", "content": {"application/json": {"model": FeedbackResponse}}},
        400: {"description": "A label does not fit the model", "content": {"application/json": {"model": Problem}}},
        413: {"description": "Too many labels", "content": {"application/json": {"model": Problem}}},
        422: {"description": "The body is not a valid request"},
        503: {"description": "No champion yet", "content": {"application/json": {"model": Problem}}},
    },
)
def feedback(request: Annotated[FeedbackRequest, Body()]) -> Any:
    limit = max_rows()
    if len(request.labels) > limit:
        raise ClientProblem(413, f"{len(request.labels)} labels; at most {limit} per request")
    loaded = _current()
    problems, labels = check_labels(loaded.model, [item.model_dump() for item in request.labels])
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ClientProblem(
            400,
            f"label {first.row}, field '{first.field}': {first.problem}{more}",
            [p.as_dict() for p in problems[:50]],
        )
    request_id = _active.get().current_event.request_context.request_id or ""
    # Logged, like captures: CloudWatch Logs holds them durably and the capture function ships them to S3.
    capture.emit(
        capture.feedback_lines(
            model=loaded.record["model"], request_id=request_id, labels=labels, now=datetime.now(UTC)
        )
    )
    body = {"model": loaded.record["model"], "accepted": len(labels), "request_id": request_id}
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


@route(
    "get",
    "/model",
    summary="The model now serving",
    responses={
        200: {"description": "The serving model", "content": {"application/json": {"model": ModelInfo}}},
        503: {"description": "No champion yet", "content": {"application/json": {"model": Problem}}},
    },
)
def model_info() -> ModelInfo:
    loaded = _current()
    sig, record = loaded.model.signature, loaded.record
    return ModelInfo(
        model=record["model"],
        version=loaded.version,
        task=sig.task,
        metric=record.get("metric"),
        metrics=record.get("metrics", {}),
        trained_at=record.get("created_at"),
        run_id=record.get("run_id"),
        inputs=[{k: v for k, v in s.items() if k != "input"} for s in sig.inputs],
        classes=sig.classes,
    )


@route("get", "/health", summary="Liveness, and which version is loaded")
def health() -> Health:
    try:
        version: int | None = _current().version
    except NoModelError:
        version = None
    return Health(status="ok" if version is not None else "no_model", model_version=version, code_version=__version__)


@route("get", "/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
def openapi() -> dict[str, Any]:
    """The document, with the serving champion's own record schema (names, types, categories) in
    ``PredictRequest``: clients and fuzzers see which fields a record needs."""
    doc: dict[str, Any] = json.loads(_active.get().get_openapi_json_schema())
    try:
        signature = _current().model.signature
    except NoModelError:
        return doc
    request = doc.get("components", {}).get("schemas", {}).get("PredictRequest", {})
    if "records" in request.get("properties", {}):
        request["properties"]["records"]["items"] = signature.record_schema()
        request["properties"]["records"]["maxItems"] = max_rows()
    return doc


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Guard the body size before parsing, then resolve."""
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES:
        return {
            "statusCode": 413,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"message": f"body of {len(body):,} bytes; at most {MAX_BODY_BYTES:,}", "errors": []}),
        }
    resolver = http_app if event.get("version") == "2.0" else app
    token = _active.set(resolver)
    try:
        return resolver.resolve(event, context)
    finally:
        _active.reset(token)
