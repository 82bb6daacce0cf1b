"""What the thin Lambda handlers share: event models and the per-process wiring.

Handlers parse their event with one of these models (Powertools parser), build a StepContext with
:func:`step_context`, call one domain function and return its result as the state machine carries it
(``result.as_state()``). The event models are made of the steps' own result models
(:mod:`mlops.core.results`): what one step returns is what the next one parses.

Nothing here reads the environment at import time: the first invocation does, and the result is cached for the
life of the execution environment.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from mlops.core.constants import WARM_UP_EVENT
from mlops.core.context import StepContext, Stores
from mlops.core.errors import TransientError
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import (
    AnalyzeResult,
    EvaluateResult,
    ExportResult,
    ExtractResult,
    PrepareResult,
    RegisterResult,
    TrainResult,
    Trial,
    TrialResult,
    ValidateDataResult,
    ValidateModelResult,
)

F = TypeVar("F", bound=Callable[..., Any])


class StepEvent(BaseModel):
    """The state machine's state as a step receives it: the run, plus earlier steps' results."""

    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(min_length=8, max_length=64)
    model: str


class ExtractEvent(StepEvent):
    source: dict[str, Any]


class AnalyzeEvent(StepEvent):
    extract: ExtractResult


class ListedObject(BaseModel):
    """One object of a Distributed Map's ``s3:listObjectsV2`` reader, as a child receives it."""

    model_config = ConfigDict(extra="ignore")

    key: str = Field(alias="Key", min_length=1)
    etag: str | None = Field(default=None, alias="Etag")
    size: int | None = Field(default=None, alias="Size")


class AnalyzeShardEvent(StepEvent):
    """A child of the statistics' Distributed Map: the run, its shard and the plan every shard computes under."""

    shard: ListedObject
    plan: ArtifactRefDict


class ValidateDataEvent(AnalyzeEvent):
    analyze: AnalyzeResult


class PrepareEvent(ValidateDataEvent):
    validate_data: ValidateDataResult


class DatasetEvent(StepEvent):
    prepare: PrepareResult


class TrialEvent(StepEvent):
    dataset: ArtifactRefDict
    trial: Trial


class SelectEvent(DatasetEvent):
    trials: list[TrialResult]


class ModelEvent(DatasetEvent):
    train: TrainResult


class ValidateModelEvent(ModelEvent):
    export: ExportResult
    evaluate: EvaluateResult


class RegisterEvent(ValidateModelEvent, PrepareEvent):
    validate_model: ValidateModelResult


class ApprovalEvent(StepEvent):
    token: str
    version: int


class PromoteEvent(StepEvent):
    version: int
    approval: dict[str, Any] = Field(default_factory=dict)


class FinalizeEvent(StepEvent):
    outcome: str = Field(pattern="^(SUCCEEDED|FAILED|REJECTED)$")
    error: dict[str, Any] | None = None
    validate_data: ValidateDataResult | None = None
    validate_model: ValidateModelResult | None = None
    evaluate: EvaluateResult | None = None
    register_: RegisterResult | None = Field(default=None, alias="register")  # BaseModel has .register


def stores() -> Stores:
    """This execution environment's stores (built once; see :func:`mlops.wiring.runtime.stores_from_env`)."""
    from mlops.wiring.runtime import stores_from_env

    return stores_from_env()


def step_context(event: StepEvent) -> StepContext:
    from mlops.wiring.runtime import models_from_env

    # The run's input names its model; the step runs with that model's published config (and the feature sets).
    models = models_from_env()
    return StepContext(
        run_id=event.run_id, config=models.get(event.model), stores=stores(), feature_sets=models.feature_sets
    )


_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
}


def warm_up(*modules: str) -> Callable[[F], F]:
    """Answer the state machine's warm-up event (:data:`mlops.core.constants.WARM_UP_EVENT`) without running the step.

    The warm-up is sent to the steps of a run when it starts, beside the earlier steps (the state machine waits
    for the answers before the step that needs them), so each step's execution environment initializes (imports
    its bundle: the cold start) while the earlier steps work, instead of on the run's path. It also does what the
    first invocation would do that is not the run's: the clients of the stores, and ``modules`` the step imports
    only when it runs. Outermost, so a warm-up is not logged as a step."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(event: Any, context: Any) -> Any:
            if event == WARM_UP_EVENT:
                import importlib

                for name in modules:
                    importlib.import_module(name)
                stores()
                return {"warm": True}
            return fn(event, context)

        return wrapper  # type: ignore[return-value]

    return decorate


def transient_errors(fn: F) -> F:
    """Re-raise throttling and 5xx AWS errors as TransientError, the name the state machine retries."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

        try:
            return fn(*args, **kwargs)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _TRANSIENT_CODES:
                raise TransientError(str(err)) from err
            raise
        except (ConnectionError, ReadTimeoutError) as err:
            raise TransientError(str(err)) from err

    return wrapper  # type: ignore[return-value]


@functools.cache
def metrics_publisher() -> Any:
    """CloudWatch metrics (the monitor's port), built once per execution environment."""
    import boto3

    from mlops.adapters.metrics import CloudWatchMetrics

    return CloudWatchMetrics(boto3.session.Session().client("cloudwatch"))
