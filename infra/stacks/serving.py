"""Serving: the ONNX prediction function (arm64, `live` alias) behind API Gateway, and the capture path
(D1/D2): the serve log's subscription filter hands captured predictions and labels to the capture function,
which writes them to S3; what it cannot ship lands in a dead-letter queue that raises an alarm."""

from __future__ import annotations

import dataclasses

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations

from constructs import Construct
from mlops.core.config import ModelSet
from mlops.core.constants import (
    CAPTURE_FIELD,
    CAPTURE_KIND,
    CAPTURES_PREFIX,
    ENV_FEATURES_TABLE,
    ENV_MAX_ROWS,
    ENV_MODEL_CACHE_SECONDS,
    FEEDBACK_KIND,
    FEEDBACK_PREFIX,
    MODELS_PREFIX,
)
from mlops.infra.constructs.dead_letters import DeadLetters
from mlops.infra.constructs.inference_api import InferenceApi, ModelRoute
from mlops.infra.constructs.serving_alarms import ServingAlarms
from mlops.infra.functions import CAPTURE_FUNCTION, SERVE_FUNCTION
from mlops.infra.settings import EnvironmentSettings
from mlops.infra.stacks.pipeline import PipelineStack
from mlops.infra.stacks.storage import StorageStack


def capture_filter_pattern() -> logs.IFilterPattern:
    """The serve log's lines that are captures or labels (``{"mlops": "capture" | "feedback", …}``)."""
    return logs.FilterPattern.any(
        logs.FilterPattern.string_value(f"$.{CAPTURE_FIELD}", "=", CAPTURE_KIND),
        logs.FilterPattern.string_value(f"$.{CAPTURE_FIELD}", "=", FEEDBACK_KIND),
    )


def model_routes(models: ModelSet, settings: EnvironmentSettings) -> list[ModelRoute]:
    """Each model's throttle: its own (``serving:`` in its config), or an even share of the stage's."""
    n = len(models)
    return [
        ModelRoute(
            m.name,
            m.serving.rate_limit or settings.api_rate_limit / n,
            m.serving.burst_limit or max(1, settings.api_burst_limit // n),
        )
        for m in models
    ]


class ServingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: StorageStack,
        pipeline: PipelineStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.function = pipeline.make_function(
            self,
            "Serve",
            spec=dataclasses.replace(SERVE_FUNCTION, memory_mb=settings.serving_memory_mb),
            extra_env={
                ENV_MODEL_CACHE_SECONDS: str(settings.model_cache_seconds),
                ENV_MAX_ROWS: str(settings.max_predict_rows),
            },
            reserved_concurrency=settings.serving_reserved_concurrency,
        )
        # Reads only: the champion alias and version records, and the registered models' artifacts.
        storage.tables.models.grant_read_data(self.function)
        storage.store.artifacts.grant_read(self.function, f"{MODELS_PREFIX}*")
        if storage.features is not None:  # records by entity: the online store, read by key only
            storage.features.table.grant(self.function, "dynamodb:BatchGetItem", "dynamodb:GetItem")
            self.function.add_environment(ENV_FEATURES_TABLE, storage.features.table.table_name)
        # Code deploys go through an alias, shifted gradually by CodeDeploy (ServingAlarms' deployment group).
        self.alias = lambda_.Alias(self, "Live", alias_name="live", version=self.function.current_version)
        self.api = InferenceApi(
            self,
            "Inference",
            alias=self.alias,
            auth=settings.api_auth,
            rate_limit=settings.api_rate_limit,
            burst_limit=settings.api_burst_limit,
            max_rows=settings.max_predict_rows,
            quota_per_day=settings.api_quota_per_day,
            log_retention=pipeline.log_retention,
            models=model_routes(pipeline.models, settings),
        )
        self._capture_path(pipeline, storage)
        self.alarms = ServingAlarms(
            self,
            "ServingAlarms",
            models=pipeline.models,
            api=self.api.api,
            alias=self.alias,
            topic=pipeline.failure_topic,
            deployment=settings.serving_deployment,
        )
        CfnOutput(self, "ApiUrl", value=self.api.api.url)
        CfnOutput(self, "FunctionCapture", value=self.capture.function_name)
        CfnOutput(self, "ApiAuth", value=settings.api_auth)
        CfnOutput(self, "FunctionServe", value=self.function.function_name)
        if self.api.api_key is not None:
            CfnOutput(self, "ApiKeyId", value=self.api.api_key.key_id)

    def _capture_path(self, pipeline: PipelineStack, storage: StorageStack) -> None:
        self.capture = pipeline.make_function(self, "Capture", spec=CAPTURE_FUNCTION)
        for prefix in (CAPTURES_PREFIX, FEEDBACK_PREFIX):  # writes only; it reads nothing
            storage.store.artifacts.grant_put(self.capture, f"{prefix}*")
        dead_letters = DeadLetters(
            self,
            "CaptureDeadLetters",
            of="the capture function",
            impact="Captured predictions or labels could not be shipped to S3: the monitor is missing traffic",
            topic=pipeline.failure_topic,
        )
        self.capture_dead_letters, self.capture_dead_letter_alarm = dead_letters.queue, dead_letters.alarm
        # CloudWatch Logs invokes the function asynchronously: Lambda retries twice, then the delivery (with
        # its log lines) goes to the queue rather than being dropped.
        self.capture.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.capture_dead_letters),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )
        log_group = self.function.log_group
        self.capture_subscription = logs.SubscriptionFilter(
            self,
            "CaptureSubscription",
            log_group=log_group,
            destination=log_destinations.LambdaDestination(self.capture),
            filter_pattern=capture_filter_pattern(),
        )
