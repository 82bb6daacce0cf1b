"""The training pipeline: layers, one function per step, the state machine and failure notifications."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from constructs import Construct
from infra.constructs.pipeline_function import PipelineFunction
from infra.constructs.pipeline_layers import PipelineLayers
from infra.constructs.training_pipeline import TrainingPipeline
from infra.functions import ALL_FUNCTIONS, PIPELINE_FUNCTIONS, FunctionSpec
from infra.settings import EnvironmentSettings
from infra.stacks.storage import StorageStack
from mlops import constants as c

# What each function may touch, beyond reading the project config. Grants, not hand-written policies.
READS_LANDING = {"extract"}
WRITES_ARTIFACTS = {f.name for f in PIPELINE_FUNCTIONS} - {"finalize", "await_approval", "promote"}
READS_ARTIFACTS = WRITES_ARTIFACTS | {"promote"}
USES_MODELS = {"validate_data", "evaluate", "validate_model", "register", "await_approval", "promote"}
WRITES_LINEAGE = WRITES_ARTIFACTS


def runtime_for(settings: EnvironmentSettings) -> lambda_.Runtime:
    return {"3.12": lambda_.Runtime.PYTHON_3_12, "3.13": lambda_.Runtime.PYTHON_3_13}[settings.python]


def architecture_for(settings: EnvironmentSettings) -> lambda_.Architecture:
    return lambda_.Architecture.ARM_64 if settings.architecture == "arm64" else lambda_.Architecture.X86_64


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: StorageStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        project = settings.project()
        self.runtime = runtime = runtime_for(settings)
        self.architecture = architecture_for(settings)
        self.log_retention = retention = _retention(settings)
        self.layers = PipelineLayers(
            self,
            "Layers",
            bundles={f.bundle for f in ALL_FUNCTIONS},
            arch=settings.architecture,
            runtime=runtime,
            python=settings.python,
            skip_build=settings.skip_layer_build,
        )
        self.config_asset = s3_assets.Asset(self, "ProjectConfig", path=str(settings.project_config_path))
        store, tables = storage.store, storage.tables
        self.function_env = {
            c.ENV_ARTIFACT_BUCKET: store.artifacts.bucket_name,
            c.ENV_LANDING_BUCKET: store.landing.bucket_name,
            c.ENV_RUNS_TABLE: tables.runs.table_name,
            c.ENV_MODELS_TABLE: tables.models.table_name,
            c.ENV_LINEAGE_TABLE: tables.lineage.table_name,
            c.ENV_CONFIG_URI: self.config_asset.s3_object_url,
        }
        self.functions: dict[str, lambda_.Function] = {}
        for spec in PIPELINE_FUNCTIONS:
            fn = self.make_function(self, f"Fn-{spec.name}", spec=spec)
            self.functions[spec.name] = fn
            tables.runs.grant_read_write_data(fn)
            if spec.name in READS_LANDING:
                store.landing.grant_read(fn)
            if spec.name in WRITES_ARTIFACTS:
                store.artifacts.grant_read_write(fn)
            elif spec.name in READS_ARTIFACTS:
                store.artifacts.grant_read(fn)
            if spec.name in USES_MODELS:
                tables.models.grant_read_write_data(fn)
            if spec.name in WRITES_LINEAGE:
                tables.lineage.grant_read_write_data(fn)

        self.failure_topic = sns.Topic(
            self,
            "FailureTopic",
            display_name="serverless-mlops pipeline failures",
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        if settings.notification_email:
            self.failure_topic.add_subscription(subscriptions.EmailSubscription(settings.notification_email))
        self.pipeline = TrainingPipeline(
            self,
            "Training",
            functions=dict(self.functions),
            timeouts={f.name: f.timeout_s for f in PIPELINE_FUNCTIONS},
            failure_topic=self.failure_topic,
            max_concurrency=project.training.max_concurrency,
            log_retention=retention,
        )
        self.state_machine = self.pipeline.state_machine
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "FailureTopicArn", value=self.failure_topic.topic_arn)
        CfnOutput(self, "ConfigUri", value=self.config_asset.s3_object_url)
        CfnOutput(self, "ModelName", value=project.name)
        for name, fn in self.functions.items():
            CfnOutput(self, f"Function{_pascal(name)}", value=fn.function_name)

    def make_function(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        extra_env: dict[str, str] | None = None,
        reserved_concurrency: int | None = None,
    ) -> lambda_.Function:
        """A function on this pipeline's layers, runtime and environment (any stack); it may read the config."""
        fn = PipelineFunction(
            scope,
            construct_id,
            spec=spec,
            layers=self.layers,
            runtime=self.runtime,
            architecture=self.architecture,
            environment={**self.function_env, **(extra_env or {})},
            log_retention=self.log_retention,
            reserved_concurrency=reserved_concurrency,
        ).function
        self.config_asset.grant_read(fn)
        return fn


def _pascal(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


RETENTION = (
    (1, "ONE_DAY"),
    (3, "THREE_DAYS"),
    (5, "FIVE_DAYS"),
    (7, "ONE_WEEK"),
    (14, "TWO_WEEKS"),
    (30, "ONE_MONTH"),
    (60, "TWO_MONTHS"),
    (90, "THREE_MONTHS"),
    (120, "FOUR_MONTHS"),
    (150, "FIVE_MONTHS"),
    (180, "SIX_MONTHS"),
    (365, "ONE_YEAR"),
    (400, "THIRTEEN_MONTHS"),
    (545, "EIGHTEEN_MONTHS"),
    (731, "TWO_YEARS"),
    (1827, "FIVE_YEARS"),
    (3653, "TEN_YEARS"),
)


def _retention(settings: EnvironmentSettings) -> logs.RetentionDays:
    """The nearest CloudWatch retention at or above the configured number of days."""
    for days, name in RETENTION:
        if days >= settings.log_retention_days:
            return getattr(logs.RetentionDays, name)  # type: ignore[no-any-return]
    return logs.RetentionDays.TEN_YEARS
