"""One pipeline step as a Lambda function: a thin handler from functions/<name>/ over the layers."""

from __future__ import annotations

import sys
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

import mlops.functions
from constructs import Construct
from mlops.core.constants import ENV_FUNCTION, METRICS_NAMESPACE, SERVICE_NAME
from mlops.infra import nag
from mlops.infra.constructs.pipeline_layers import PipelineLayers
from mlops.infra.functions import FunctionSpec
from mlops.layers.build import check_function_size

FUNCTIONS_DIR = Path(mlops.functions.__file__).parent  # the handlers, as the installed package ships them
SERVICE = SERVICE_NAME


class PipelineFunction(Construct):
    """A Lambda function with its own log group (retention set), X-Ray tracing and Powertools settings.

    Fails synthesis if the function and its layers exceed Lambda's 250 MB unzipped limit.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        layers: PipelineLayers,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
        environment: dict[str, str],
        log_retention: logs.RetentionDays,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        code_dir = FUNCTIONS_DIR / spec.name
        built = layers.built_for(spec.bundle)
        if not any(layer.placeholder for layer in built):
            total = check_function_size(spec.name, code_dir, built)
            print(f"[size] {spec.name:<15} {total / 1e6:7.1f} MB unzipped ({spec.bundle})", file=sys.stderr)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        # Its own role, allowed to write to its own log group only (not AWSLambdaBasicExecutionRole, which may
        # write to any log group); the stacks add each function's grants to it.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"serverless-mlops {spec.name}",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=f"serverless-mlops {spec.name}: {spec.description}",
            runtime=runtime,
            architecture=architecture,
            handler="handler.handler",
            role=self.role,
            code=lambda_.Code.from_asset(str(code_dir), exclude=["__pycache__", "*.pyc"]),
            layers=layers.for_bundle(spec.bundle),
            memory_size=spec.memory_mb,
            ephemeral_storage_size=Size.mebibytes(spec.ephemeral_mb),
            timeout=Duration.seconds(spec.timeout_s),
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=reserved_concurrency,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_METRICS_FUNCTION_NAME": spec.name,
                ENV_FUNCTION: spec.name,
            },
        )
        self.spec = spec
        nag.acknowledge(self.function, "AwsSolutions-L1")
