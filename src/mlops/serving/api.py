"""C1/C2/D1/D2: the prediction API — Powertools REST resolver, pydantic models, OpenAPI.

``POST /models/{name}/predict`` (records → predictions, probabilities, model version, request id; a sample
captured for the monitor), ``POST /models/{name}/feedback`` (ground-truth labels for earlier predictions),
``GET /models/{name}``, ``GET /models``, ``GET /health`` and ``GET /openapi.json``; in a deployment with one
model, ``POST /predict``, ``POST /feedback`` and ``GET /model`` answer for it. A client's mistake is always a
4xx naming the problem; never a 5xx. JSON goes straight to numpy arrays, one per ONNX input: no pandas, no scikit-learn.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from contextvars import ContextVar
from typing import Annotated, Any

import orjson
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field, ValidatorFunctionWrapHandler, WrapValidator

from mlops import __version__
from mlops.core.clock import utcnow
from mlops.core.config import UnknownModelError
from mlops.core.constants import (
    CANARY,
    CHALLENGER,
    CHAMPION,
    ENV_FEATURES_TABLE,
    ENV_MAX_ROWS,
    ENV_MODEL_CACHE_MB,
    ENV_MODEL_CACHE_SECONDS,
    METRIC_CHALLENGER_ERRORS,
    METRICS_NAMESPACE,
    SHADOW,
)
from mlops.monitoring import capture
from mlops.serving.features import EntityProblem, Lookups, Use, complete, entity_record_schema, uses_of
from mlops.serving.service import (
    LISTED_PROBLEMS,
    LoadedModel,
    ModelCache,
    NoModelError,
    ServingModels,
    as_answered,
    check_labels,
    checked_outputs,
    problem_message,
)

DIRECT_PREDICT = True  # the hot path below; the parity test turns it off to compare
MAX_BODY_BYTES = 6 * 1024 * 1024 - 1024  # Lambda's synchronous payload limit, less the event envelope
DEFAULT_MAX_ROWS = 1000


def _records_as_sent(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A non-empty list of JSON objects passes as sent: pydantic would copy every record, key and value only to
    hand back the same dicts (their values are checked against the model's own signature next, which names each
    bad field). Anything else gets pydantic's own validation, and a 400 naming each problem."""
    if type(value) is list and value and set(map(type, value)) == {dict}:
        return value
    return handler(value)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: Annotated[list[dict[str, Any]], WrapValidator(_records_as_sent)] = Field(
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
    model_version: int | None = Field(
        default=None, description="While a canary runs: the version that answered this record."
    )
    prediction: float | int | str | None
    probabilities: dict[str, float] | None = None


class PredictResponse(BaseModel):
    model: str
    model_version: int
    request_id: str
    predictions: list[Prediction]
    warnings: list[str] = []
    lookups: list[dict[str, Any]] | None = Field(
        default=None,
        description="A model taking feature sets: per record, per feature set, the entity looked up in the online "
        "store and what was found (found, with its event time; missing; expired).",
    )


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
    status: str = Field(
        description="ok: every model has a champion loaded; partial: some do (the others are null in models); "
        "no_model: none has a champion yet. The function answers in all three."
    )
    model_version: int | None = Field(default=None, description="A deployment with one model: its version.")
    models: dict[str, int | None] = Field(default_factory=dict, description="Each model's loaded version.")
    code_version: str


class ModelEntry(BaseModel):
    model: str
    version: int | None = Field(description="The champion's version; null before the first one.")


class ModelList(BaseModel):
    models: list[ModelEntry]


class Problem(BaseModel):
    message: str
    errors: list[dict[str, Any]] = []


MAX_JSON_DEPTH = 1024  # orjson's nesting limit; json, its fallback, runs out of Python stack near 1,000


def loads(body: str) -> Any:
    """orjson for request bodies (several times faster than json); a body it refuses (it is strict: ``NaN`` is not
    JSON) is read by json, so what the API accepts is unchanged. A body nested past orjson's limit would exhaust
    json's recursion too: it is refused as the JSON error it is (a 400 naming it), not left to crash the function.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            return json.loads(body)
        except RecursionError:
            raise json.JSONDecodeError(
                f"nested more than {MAX_JSON_DEPTH:,} levels deep (arrays and objects)", body, 0
            ) from None


def dumps(body: Any) -> str:
    return orjson.dumps(body).decode()


# API Gateway REST (payload 1.0, what the stacks deploy) and HTTP APIs / function URLs (payload 2.0): the same
# routes on both, so either front door gets answers rather than a KeyError.
app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=loads)
http_app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=loads)
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
def model_cache() -> ServingModels:
    """Every model's champion, loaded on first use, each re-checked on its own alias, LRU within a bound."""
    from mlops.wiring.runtime import models_from_env
    from mlops.wiring.runtime import stores_from_env as stores

    ttl = float(os.environ.get(ENV_MODEL_CACHE_SECONDS, "30"))

    def cache_for(name: str, alias: str) -> ModelCache:
        return ModelCache(
            meta=stores().meta,
            artifacts=stores().artifacts,
            model_name=name,
            ttl_seconds=ttl,
            alias=alias,
            on_load_failure=_count_load_failure,
        )

    return ServingModels(models_from_env().names, cache_for, budget_bytes=cache_budget_bytes())


def cache_budget_bytes() -> int:
    """The loaded models' bound: MLOPS_MODEL_CACHE_MB, else 40 % of the function's memory (256 MB off Lambda)."""
    explicit = os.environ.get(ENV_MODEL_CACHE_MB)
    if explicit:
        return int(float(explicit) * 1024 * 1024)
    memory_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "640"))
    return int(memory_mb * 0.4 * 1024 * 1024)


def _count_load_failure(version: int, err: Exception) -> None:
    """Counted in CloudWatch (EMF, flushed by the handler's Metrics): alarmable."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    Metrics().add_metric(name="ModelLoadFailures", unit=MetricUnit.Count, value=1)


@functools.cache
def capture_sample(model: str) -> float:
    """The model's capture rate, read once per execution environment (a config is published by a deploy, which
    starts new environments; offline, ``reset_caches`` forgets it as a cold start would)."""
    from mlops.wiring.runtime import model_config

    return model_config(model).monitoring.capture_sample


@functools.cache
def feature_uses(model: str) -> tuple[list[Use], str | None]:
    """The feature sets the model takes features from (and its id column), read once per execution environment,
    as :func:`capture_sample` is."""
    from mlops.wiring.runtime import models_from_env

    models = models_from_env()
    config = models.get(model)
    return uses_of(config, models.feature_sets), config.id_column


def _looked_up(records: list[dict[str, Any]], uses: list[Use], id_column: str | None) -> tuple[list[Any], Lookups]:
    """The records completed from the online store (:func:`mlops.serving.features.complete`); a record it cannot
    complete is the client's problem (400: no key; 404: no live value, naming the entity)."""
    from mlops.wiring.runtime import stores_from_env

    online = stores_from_env().online
    if online is None:
        raise RuntimeError(f"the model takes feature sets but this function has no online store ({ENV_FEATURES_TABLE})")
    try:
        return complete(records, uses, id_column, online, utcnow().timestamp())
    except EntityProblem as err:
        raise ClientProblem(err.status, err.message, err.errors) from None


def max_rows() -> int:
    return int(os.environ.get(ENV_MAX_ROWS, DEFAULT_MAX_ROWS))


class ClientProblem(Exception):
    """A request the model cannot answer as sent: becomes a 4xx that names the problem."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or []


MAX_ERRORS = LISTED_PROBLEMS


def named_problems(what: str, problems: list[Any]) -> ClientProblem:
    """A 400 for records (or labels) with problems: the first in the message, every one (up to MAX_ERRORS) in
    ``errors``, and the message says where the others are, so "(and N more)" is never a dead end."""
    errors = [p.as_dict() for p in problems[:MAX_ERRORS]]
    return ClientProblem(400, problem_message(what, problems, MAX_ERRORS), errors)


def problem(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=dumps({"message": message, "errors": errors or []}),
    )


@on_error(ClientProblem)
def _client_problem(err: ClientProblem) -> Response[Any]:
    return problem(err.status, err.message, err.errors)


@on_error(RequestValidationError)
def _invalid_body(err: RequestValidationError) -> Response[Any]:
    """A body that is not a request (not JSON, nested too deep, no records, a record that is not an object, a field
    the request does not have) is the client's mistake: a 400 naming each problem, as API Gateway's request model
    answers 400 for the same bodies before the function runs. (Powertools' default is a 422 that names only the
    error types.)"""
    problems = [_body_problem(e) for e in err.errors()]
    first = problems[0] if problems else {"field": "body", "problem": "not a valid request"}
    where = "" if first["field"] == "body" else f"{first['field']}: "
    more = f" (and {len(problems) - 1} more: errors lists all {len(problems)})" if len(problems) > 1 else ""
    return problem(400, f"invalid request body: {where}{first['problem']}{more}", problems)


def _body_problem(error: dict[str, Any]) -> dict[str, Any]:
    """One pydantic (or JSON) error as ``{"field", "problem"}``: where in the body, and what is wrong there."""
    loc = [part for part in error.get("loc", ()) if part not in ("body", "request")]
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error") or "not valid JSON"
        position = f" (at character {loc[0]})" if loc and isinstance(loc[0], int) and loc[0] else ""
        return {"field": "body", "problem": f"not valid JSON: {reason}{position}"}
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or "body"
    ctx = error.get("ctx") or {}
    reason = {
        "missing": "required",
        "extra_forbidden": "unknown field; the request has no such field",
        "too_short": f"must hold at least {ctx.get('min_length')} item(s); it holds {ctx.get('actual_length')}",
    }.get(str(error.get("type")), str(error.get("msg") or error.get("type") or "invalid"))
    return {"field": field, "problem": reason}


def _only_model() -> str:
    """The model of a one-model deployment (``/predict``, ``/feedback``, ``/model``); with several, a 400."""
    only = model_cache().only()
    if only is None:
        names = model_cache().names
        raise ClientProblem(
            400,
            f"this deployment serves {len(names)} models ({', '.join(names)}): "
            "use /models/{name}/predict, /models/{name}/feedback or GET /models/{name}",
        )
    return only


def _current(name: str) -> LoadedModel:
    return model_cache().get(name)


@on_error(UnknownModelError)
def _unknown_model(err: UnknownModelError) -> Response[Any]:
    return problem(404, str(err), [{"field": "name", "problem": f"not one of {', '.join(err.known)}"}])


@on_error(NoModelError)
def _no_model(err: NoModelError) -> Response[Any]:
    return problem(503, str(err))


BAD_RECORDS = "A record does not fit the model, or the body is not a request (each problem named)"
PREDICT_RESPONSES: dict[int | str, Any] = {
    200: {"description": "Predictions", "content": {"application/json": {"model": PredictResponse}}},
    400: {"description": BAD_RECORDS, "content": {"application/json": {"model": Problem}}},
    404: {"description": "No such model", "content": {"application/json": {"model": Problem}}},
    413: {"description": "Too many rows or too large a body", "content": {"application/json": {"model": Problem}}},
    503: {"description": "No champion yet", "content": {"application/json": {"model": Problem}}},
}


@route(
    "post", "/models/<name>/predict", summary="Score records with this model's champion", responses=PREDICT_RESPONSES
)
def predict_model(name: str, request: Annotated[PredictRequest, Body()]) -> Any:
    return _predict(name, request.records, _request_id())


@route(
    "post",
    "/predict",
    summary="Score records with the champion model (a deployment with one model)",
    responses={
        200: {"description": "Predictions", "content": {"application/json": {"model": PredictResponse}}},
        400: {"description": BAD_RECORDS, "content": {"application/json": {"model": Problem}}},
        413: {"description": "Too many rows or too large a body", "content": {"application/json": {"model": Problem}}},
        503: {"description": "No champion yet", "content": {"application/json": {"model": Problem}}},
    },
)
def predict(request: Annotated[PredictRequest, Body()]) -> Any:
    return _predict(_only_model(), request.records, _request_id())


def _request_id() -> str:
    return _active.get().current_event.request_context.request_id or ""


def _score(
    loaded: LoadedModel, records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str], capture.Answered]:
    """One model's answers for ``records`` (checked against its own signature: a 400 naming each problem): the
    rows of the response, its warnings, and the same answers as columns for capture."""
    model = loaded.model
    problems, checked = checked_outputs(model, records)
    if checked is None:
        raise named_problems("record", problems)
    warnings, predictions, probabilities = checked.warnings, checked.predictions, checked.probabilities
    rows = model.rows(predictions, probabilities)
    id_column = model.signature.id_column
    if id_column:
        for row, record in zip(rows, records, strict=True):
            if id_column in record:
                row["id"] = record[id_column]
    return rows, warnings, as_answered(model, records, checked)


def challenger_error(model: str) -> None:
    """C4: one request the challenger could not answer (an EMF metric by model: its error alarm's)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(
        name=METRIC_CHALLENGER_ERRORS,
        unit=MetricUnit.Count,
        value=1,
        namespace=METRICS_NAMESPACE,
        default_dimensions={"Model": model},
    ):
        pass


def canary_draw(model: str, key: str) -> float:
    """A stable draw in [0, 100) for a routing key: the same key always lands on the same side of a share."""
    digest = hashlib.sha256(f"{model}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def _canary(
    name: str, champion: LoadedModel, challenger: LoadedModel, records: list[dict[str, Any]], request_id: str
) -> tuple[list[dict[str, Any]], list[str], list[tuple[LoadedModel, capture.Answered]]]:
    """C4 canary: each record to the challenger when its key's draw is under the share (the key: the record's
    id column when sent, else the request id), to the champion otherwise; each answer names its version."""
    id_column = champion.model.signature.id_column
    percent = float(challenger.alias.get("percent") or 0)

    def key(record: dict[str, Any]) -> str:
        return str(record[id_column]) if id_column and record.get(id_column) is not None else request_id

    to_challenger = [canary_draw(name, key(r)) < percent for r in records]
    rows: list[dict[str, Any]] = [{} for _ in records]
    warnings: list[str] = []
    answered = []
    for loaded, side in ((challenger, True), (champion, False)):
        index = [i for i, chosen in enumerate(to_challenger) if chosen is side]
        if not index:
            continue
        subset = [records[i] for i in index]
        try:
            answers, more, columns = _score(loaded, subset)
        except ClientProblem:
            if loaded is not challenger:
                raise
            # The challenger cannot answer what the champion can: the champion does, and it counts against
            # the challenger (its error alarm withdraws it). What the champion cannot answer is the client's.
            answers, more, columns = _score(champion, subset)
            challenger_error(name)
            loaded = champion
        for i, answer in zip(index, answers, strict=True):
            answer["model_version"] = loaded.version
            rows[i] = answer
        warnings += more
        answered.append((loaded, columns))
    return rows, warnings, answered


def _shadow(challenger: LoadedModel, records: list[dict[str, Any]]) -> dict[str, Any]:
    """C4 shadow: the challenger scores the same records; captured, never returned (nor allowed to fail the
    request)."""
    t0 = time.perf_counter()
    try:
        answers, _, _ = _score(challenger, records)
        out: dict[str, Any] = {"version": challenger.version, "predictions": answers}
    except ClientProblem as err:
        out = {"version": challenger.version, "error": err.message}
        challenger_error(str(challenger.record.get("model")))
    out["ms"] = round((time.perf_counter() - t0) * 1000, 3)
    return out


def _predict(name: str, records: list[dict[str, Any]], request_id: str) -> Response[Any]:
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=_answer(name, records, request_id)
    )


def _answer(name: str, records: list[dict[str, Any]], request_id: str) -> str:
    """The 200's body for ``records``, each scored by the model's champion (or its canary), captured as sampled."""
    limit = max_rows()
    if len(records) > limit:
        raise ClientProblem(413, f"{len(records)} records; at most {limit} per request")
    t0 = time.perf_counter()
    loaded = _current(name)
    uses, id_column = feature_uses(name)
    lookups = None
    if uses:
        records, lookups = _looked_up(records, uses, id_column)
    challenger = model_cache().challenger(name)
    mode = challenger.alias.get("mode") if challenger is not None else None
    if challenger is not None and mode == CANARY:
        rows, warnings, answered = _canary(name, loaded, challenger, records, request_id)
    else:
        rows, warnings, columns = _score(loaded, records)
        answered = [(loaded, columns)]
    version = answered[0][0].version if len(answered) == 1 else loaded.version
    body = {
        "model": loaded.record["model"],
        "model_version": version,
        "request_id": request_id,
        "predictions": rows,
        "warnings": warnings,
    }
    if lookups is not None:
        body["warnings"] = warnings + lookups.warnings()
        body["lookups"] = lookups.per_record
    elapsed = round((time.perf_counter() - t0) * 1000, 3)
    shadow = _shadow(challenger, records) if challenger is not None and mode == SHADOW else None
    if capture.sampled(capture_sample(name)):
        now, lines = utcnow(), []
        for who, columns in answered:
            extra: dict[str, Any] = {"ms": elapsed}
            if who is challenger:
                extra["role"] = CHALLENGER
            if shadow is not None:
                extra["shadow"] = shadow
            if lookups is not None:
                extra["looked_up"] = lookups.counts()
            lines += capture.capture_lines(
                model=body["model"], version=who.version, request_id=request_id, answered=columns, now=now, extra=extra
            )
        capture.emit(lines)  # one write for the request (a canary's two answers included)
    # Serialized here: the 200 schema is documented above (PredictResponse) and tested by schemathesis;
    # re-validating thousands of rows through pydantic on every response would dominate the latency.
    return dumps(body)


FEEDBACK_RESPONSES: dict[int | str, Any] = {
    202: {"description": "Labels accepted", "content": {"application/json": {"model": FeedbackResponse}}},
    400: {
        "description": "A label does not fit the model, or the body is not a request (each problem named)",
        "content": {"application/json": {"model": Problem}},
    },
    404: {"description": "No such model", "content": {"application/json": {"model": Problem}}},
    413: {"description": "Too many labels", "content": {"application/json": {"model": Problem}}},
    503: {"description": "No champion yet", "content": {"application/json": {"model": Problem}}},
}


@route(
    "post",
    "/models/<name>/feedback",
    summary="Ground-truth labels for this model's earlier predictions",
    status_code=202,
    responses=FEEDBACK_RESPONSES,
)
def feedback_model(name: str, request: Annotated[FeedbackRequest, Body()]) -> Any:
    return _feedback(name, request)


@route(
    "post",
    "/feedback",
    summary="Ground-truth labels for earlier predictions (by request id and row, or by record id)",
    status_code=202,
    responses=FEEDBACK_RESPONSES,
)
def feedback(request: Annotated[FeedbackRequest, Body()]) -> Any:
    return _feedback(_only_model(), request)


def _feedback(name: str, request: FeedbackRequest) -> Any:
    limit = max_rows()
    if len(request.labels) > limit:
        raise ClientProblem(413, f"{len(request.labels)} labels; at most {limit} per request")
    loaded = _current(name)
    problems, labels = check_labels(loaded.model, [item.model_dump() for item in request.labels])
    if problems:
        raise named_problems("label", problems)
    request_id = _active.get().current_event.request_context.request_id or ""
    # Logged, like captures: CloudWatch Logs holds them durably and the capture function ships them to S3.
    capture.emit(
        capture.feedback_lines(model=loaded.record["model"], request_id=request_id, labels=labels, now=utcnow())
    )
    body = {"model": loaded.record["model"], "accepted": len(labels), "request_id": request_id}
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=dumps(body))


INFO_RESPONSES: dict[int | str, Any] = {
    200: {"description": "The serving model", "content": {"application/json": {"model": ModelInfo}}},
    404: {"description": "No such model", "content": {"application/json": {"model": Problem}}},
    503: {"description": "No champion yet", "content": {"application/json": {"model": Problem}}},
}


@route("get", "/models", summary="The models this deployment serves, and each one's champion version")
def models_list() -> ModelList:
    from mlops.wiring.runtime import stores_from_env as stores

    meta = stores().meta
    return ModelList(models=[ModelEntry(model=n, version=meta.get_alias(n, CHAMPION)) for n in model_cache().names])


@route("get", "/models/<name>", summary="This model's champion", responses=INFO_RESPONSES)
def model_info_named(name: str) -> ModelInfo:
    return _model_info(name)


@route("get", "/model", summary="The model now serving (a deployment with one model)", responses=INFO_RESPONSES)
def model_info() -> ModelInfo:
    return _model_info(_only_model())


def _model_info(name: str) -> ModelInfo:
    loaded = _current(name)
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
    """Each model's champion, loaded (the first health check warms every model's session)."""
    versions: dict[str, int | None] = {}
    for name in model_cache().names:
        try:
            versions[name] = _current(name).version
        except NoModelError:
            versions[name] = None
    only = model_cache().only()
    loaded = [v for v in versions.values() if v is not None]
    return Health(
        status="ok" if len(loaded) == len(versions) else "partial" if loaded else "no_model",
        model_version=versions[only] if only else None,
        models=versions,
        code_version=__version__,
    )


@route("get", "/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
def openapi() -> dict[str, Any]:
    """The document, with each model's own paths (``/models/<model>/…``) and record schema (names, types,
    categories) in its ``PredictRequest``: clients and fuzzers see which fields a record needs. A model with no
    champion yet keeps the generic schema."""
    doc: dict[str, Any] = json.loads(_active.get().get_openapi_json_schema())
    paths, schemas = doc.get("paths", {}), doc.get("components", {}).get("schemas", {})
    _without_422(paths, schemas)
    generic = schemas.get("PredictRequest", {})
    templated = {p: paths.pop(p) for p in list(paths) if "{name}" in p}
    only = model_cache().only()
    if only is None:  # the one-model routes answer 400 here: not documented as operations
        for p in ("/predict", "/feedback", "/model"):
            paths.pop(p, None)
    for name in model_cache().names:
        try:
            signature: Any = _current(name).model.signature
        except NoModelError:
            signature = None
        request = json.loads(json.dumps(generic))
        if signature is not None and "records" in request.get("properties", {}):
            uses = feature_uses(name)[0]
            items = signature.record_schema()
            request["properties"]["records"]["items"] = entity_record_schema(items, uses) if uses else items
            request["properties"]["records"]["maxItems"] = max_rows()
        component = f"PredictRequest-{name}"
        schemas[component] = request
        for path, item in templated.items():
            text = json.dumps(item).replace('schemas/PredictRequest"', f'schemas/{component}"')
            concrete = json.loads(text)
            for operation in concrete.values():
                operation["parameters"] = [p for p in operation.get("parameters", []) if p.get("name") != "name"]
                if not operation["parameters"]:
                    del operation["parameters"]
                operation["operationId"] = f"{operation.get('operationId', path)}-{name}"
            paths[path.replace("{name}", name)] = concrete
        if name == only:
            schemas["PredictRequest"] = request
    return doc


def _without_422(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Powertools documents a 422 for every operation; a body that is not a request is our 400 instead."""
    for item in paths.values():
        for operation in item.values():
            operation.get("responses", {}).pop("422", None)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


# The two predict routes, as API Gateway REST events carry them: ``/predict`` and ``/models/<name>/predict``.
_PREDICT_PATH = re.compile(r"^/(?:models/([^/]+)/)?predict$")


def _direct_predict(event: dict[str, Any]) -> dict[str, Any] | None:
    """The hot path: a well-formed predict request on the REST API is answered without the resolver's routing,
    middleware and request model (about as long as the prediction itself at one row). Well-formed means exactly
    what ``PredictRequest`` accepts (one key, ``records``, a non-empty list of JSON objects). Anything else — a
    malformed body, another route, an HTTP API event, an error — returns None and the resolver answers it,
    so every 4xx is the resolver's own; the parity test compares the two paths' responses."""
    if event.get("httpMethod") != "POST" or event.get("isBase64Encoded") or event.get("version") == "2.0":
        return None
    route = _PREDICT_PATH.match(event.get("path") or "")
    body = event.get("body")
    if route is None or not body:
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or doc.keys() != {"records"}:
        return None
    records = doc["records"]
    if type(records) is not list or not records or set(map(type, records)) != {dict}:
        return None
    try:
        name = route.group(1) or _only_model()
        request_id = (event.get("requestContext") or {}).get("requestId") or ""
        body = _answer(name, records, request_id)
    except (ClientProblem, UnknownModelError, NoModelError):
        return None  # answered again by the resolver, whose exception handlers shape the 4xx/5xx (no side effects)
    return {
        "statusCode": 200,
        "body": body,
        "isBase64Encoded": False,
        "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
    }


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Guard the body size before parsing; answer a well-formed predict directly, anything else by the resolver."""
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES:
        return {
            "statusCode": 413,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"message": f"body of {len(body):,} bytes; at most {MAX_BODY_BYTES:,}", "errors": []}),
        }
    direct = _direct_predict(event) if DIRECT_PREDICT else None
    if direct is not None:
        return direct
    return resolve(event, context)


def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Powertools resolver for the event's payload version (REST 1.0 or HTTP 2.0)."""
    resolver = http_app if event.get("version") == "2.0" else app
    token = _active.set(resolver)
    try:
        return resolver.resolve(event, context)
    finally:
        _active.reset(token)
