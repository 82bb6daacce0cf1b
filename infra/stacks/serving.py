"""Serving: the ONNX prediction function (arm64, `live` alias) behind API Gateway."""

from __future__ import annotations

import dataclasses

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_

from constructs import Construct
from infra.constructs.inference_api import InferenceApi
from infra.functions import SERVE_FUNCTION
from infra.settings import EnvironmentSettings
from infra.stacks.pipeline import PipelineStack
from infra.stacks.storage import StorageStack
from mlops.constants import ENV_MAX_ROWS, ENV_MODEL_CACHE_SECONDS, MODELS_PREFIX


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
        # Code deploys go through an alias, so they can be shifted gradually (CodeDeploy) later.
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
        )
        CfnOutput(self, "ApiUrl", value=self.api.api.url)
        CfnOutput(self, "ApiAuth", value=settings.api_auth)
        CfnOutput(self, "FunctionServe", value=self.function.function_name)
        if self.api.api_key is not None:
            CfnOutput(self, "ApiKeyId", value=self.api.api_key.key_id)
