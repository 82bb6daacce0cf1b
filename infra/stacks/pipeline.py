"""The training pipeline: layers, one function per step, the state machine and failure notifications."""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_ssm as ssm

from constructs import Construct
from mlops.core import constants as c
from mlops.core.config import config_document
from mlops.core.feature_sets import FeatureSets, feature_set_document, statistics_key
from mlops.infra.constructs.fargate_training import FargateTraining
from mlops.infra.constructs.feature_store import FeatureIngestion
from mlops.infra.constructs.pipeline_function import PipelineFunction
from mlops.infra.constructs.pipeline_layers import PipelineLayers
from mlops.infra.constructs.platform_events import PlatformEvents
from mlops.infra.constructs.scoring_workflow import RESULTS_PREFIX, ScoringWorkflow
from mlops.infra.constructs.training_pipeline import TrainingPipeline
from mlops.infra.functions import INGEST_FEATURES_FUNCTION, PIPELINE_FUNCTIONS, SCORING_FUNCTIONS, FunctionSpec
from mlops.infra.settings import EnvironmentSettings
from mlops.infra.stacks.storage import StorageStack
from mlops.layers.build import build_task_context
from mlops.wiring.runtime import catalog_document, catalog_hash

# What each function may touch. Grants, not hand-written policies; object grants scoped to key prefixes.
READS_LANDING = {"extract"}
READS_TRAFFIC = {"extract"}  # an alarm-started run may train on labelled captures (monitoring.train_on_feedback)
WRITES_RUNS = {f.name for f in PIPELINE_FUNCTIONS} - {"finalize", "await_approval", "promote"}
WRITES_SCHEMAS = {"validate_data"}
WRITES_MODELS = {"register"}
# finalize publishes the model's report site (mlops.reports.site): it reads what the runs, the registry and the monitor
# wrote, and writes only under sites/.
PUBLISHES_SITE = {"finalize"}
READS_ARTIFACTS = WRITES_RUNS | {"promote"} | PUBLISHES_SITE
USES_MODELS = {"validate_data", "evaluate", "validate_model", "register", "await_approval", "promote"}
# extract checks each object against the model's stored schema, and plans a sharded snapshot's statistics in the
# champion's histogram edges: it reads the registry, never writes it.
READS_MODELS = {"extract"}
WRITES_LINEAGE = WRITES_RUNS
ARTIFACT_PREFIXES = (c.RUNS_PREFIX, c.SCHEMAS_PREFIX, c.MODELS_PREFIX)


def runtime_for(settings: EnvironmentSettings) -> lambda_.Runtime:
    return {"3.12": lambda_.Runtime.PYTHON_3_12, "3.13": lambda_.Runtime.PYTHON_3_13}[settings.python]


def architecture_for(settings: EnvironmentSettings) -> lambda_.Architecture:
    return lambda_.Architecture.ARM_64 if settings.architecture == "arm64" else lambda_.Architecture.X86_64


def config_parameter_name(settings: EnvironmentSettings, model: str) -> str:
    """The SSM parameter holding a model's validated config (the catalog names it). Not the previous release's
    ``/<prefix>/models/<model>/config``: an upgrade would create the new parameter under that name before
    deleting the old one, and fail (tests/infra/test_redeploy.py)."""
    return f"/{settings.stack_prefix}/config/{model}"


def feature_set_parameter_name(settings: EnvironmentSettings, name: str) -> str:
    """The SSM parameter holding one feature set's validated definition."""
    return f"/{settings.stack_prefix}/feature-sets/{name}"


def catalog_parameter_name(settings: EnvironmentSettings) -> str:
    """The SSM parameter listing the deployment's models (name → config parameter, hash)."""
    return f"/{settings.stack_prefix}/catalog"


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
        models = settings.project()
        self.models = models
        self.settings = settings
        self.runtime = runtime_for(settings)
        self.architecture = architecture_for(settings)
        self.log_retention = retention = _retention(settings)
        self._layers: dict[str, PipelineLayers] = {}
        self._config_refs: dict[str, list[ssm.IStringParameter]] = {}
        # Each model's config ships as an SSM parameter (validated, compact JSON), and a catalog parameter names
        # them with their hashes: every function reads the catalog and the configs, and nothing reads the CDK
        # bootstrap bucket. The catalog's hash in the environment lets a function tell a stale read (a
        # deployment under way) from the configs it was deployed with.
        self.config_parameters: dict[str, ssm.StringParameter] = {}
        for config in models:
            self.config_parameters[config.name] = self._document(
                f"Config-{config.name}",
                config_parameter_name(settings, config.name),
                config_document(config),
                f"serverless-mlops: validated config of model {config.name}",
            )
        # Each feature set ships as a parameter too, listed in the catalog with its definition hash.
        self.feature_set_parameters: dict[str, ssm.StringParameter] = {}
        for fs in models.feature_sets:
            self.feature_set_parameters[fs.name] = self._document(
                f"FeatureSet-{fs.name}",
                feature_set_parameter_name(settings, fs.name),
                feature_set_document(fs),
                f"serverless-mlops: validated definition of feature set {fs.name}",
            )
        catalog = catalog_document(
            {m.name: (config_parameter_name(settings, m.name), m.config_hash()) for m in models},
            {
                fs.name: (feature_set_parameter_name(settings, fs.name), fs.definition_hash())
                for fs in models.feature_sets
            },
        )
        self.catalog_parameter_name = catalog_parameter_name(settings)
        self.catalog_parameter = self._document(
            "ModelCatalog",
            self.catalog_parameter_name,
            catalog,
            "serverless-mlops: the models of this deployment, their config parameters and hashes",
        )
        self._config_refs[self.stack_name] = [
            self.catalog_parameter,
            *self.config_parameters.values(),
            *self.feature_set_parameters.values(),
        ]
        store, tables = storage.store, storage.tables
        self.function_env = {
            c.ENV_ARTIFACT_BUCKET: store.artifacts.bucket_name,
            c.ENV_LANDING_BUCKET: store.landing.bucket_name,
            c.ENV_RUNS_TABLE: tables.runs.table_name,
            c.ENV_MODELS_TABLE: tables.models.table_name,
            c.ENV_LINEAGE_TABLE: tables.lineage.table_name,
            c.ENV_CATALOG_PARAMETER: self.catalog_parameter_name,
            c.ENV_CATALOG_HASH: catalog_hash(catalog),
        }
        self.functions: dict[str, lambda_.Function] = {}
        trial_mb = next(f.memory_mb for f in PIPELINE_FUNCTIONS if f.name == "run_trial")
        for spec in PIPELINE_FUNCTIONS:
            fn = self.make_function(self, f"Fn-{spec.name}", spec=spec)
            if spec.name == "plan_trials":  # it checks that a run's training split fits one trial's memory
                fn.add_environment(c.ENV_TRIAL_MEMORY, str(trial_mb))
            self.functions[spec.name] = fn
            _grant_step(spec.name, fn, storage, self.models.feature_sets)
        if models.feature_sets:  # a model's labels joined point-in-time: extract reads the offline store
            store.artifacts.grant_read(self.functions["extract"], f"{c.FEATURES_PREFIX}*")

        # A customer-managed key ($1 a month): CloudWatch alarms and EventBridge rules cannot publish to a topic under
        # the AWS-managed SNS key (its policy cannot grant them), and the topic carries failure reasons (README, Cost).
        self.notifications_key = kms.Key(
            self,
            "NotificationsKey",
            description="serverless-mlops: encrypts the notifications topic (pipeline failures, alarms)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY,
        )
        self.notifications_key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.failure_topic = sns.Topic(
            self,
            "FailureTopic",
            display_name="serverless-mlops pipeline failures",
            master_key=self.notifications_key,
            enforce_ssl=True,
        )
        if settings.notification_email:
            self.failure_topic.add_subscription(subscriptions.EmailSubscription(settings.notification_email))
        # The platform's facts on EventBridge; champion changes and failed runs reach the topic too.
        self.notifications_key.grant(
            iam.ServicePrincipal("events.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.events = PlatformEvents(
            self,
            "Events",
            environment=settings.name,
            bus_name=settings.event_bus,
            source=settings.event_source,
            retention=retention,
            removal=RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY,
            notifications=self.failure_topic,
        )
        for name in ("register", "await_approval", "promote", "finalize"):  # the steps that make a fact
            self.events.grant_publish(self.functions[name])
        # The refit past one Lambda: sized for the largest task any model asks for (each run asks for its own).
        largest = max((m.training.fargate for m in models), key=lambda f: (f.memory_mb, f.cpu))
        self.fargate = FargateTraining(
            self,
            "Fargate",
            context_dir=build_task_context(self.layers_for(self).code, settings.python),
            architecture=settings.architecture,
            cpu=largest.cpu,
            memory_mb=largest.memory_mb,
            ephemeral_gb=max(m.training.fargate.ephemeral_gb for m in models),
            environment=self.function_env,
            artifacts=store.artifacts,
            runs=tables.runs,
            lineage=tables.lineage,
            config_parameters=self._config_refs_in(self),
            log_retention=retention,
            removal=RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY,
        )
        self.pipeline = TrainingPipeline(
            self,
            "Training",
            functions=dict(self.functions),
            timeouts={f.name: f.timeout_s for f in PIPELINE_FUNCTIONS},
            failure_topic=self.failure_topic,
            # One state machine for every model: the tuning Map runs as many trials at once as the most
            # parallel model asks for (training.max_concurrency).
            max_concurrency=max(m.training.max_concurrency for m in models),
            log_retention=retention,
            artifacts=store.artifacts,
            fargate=self.fargate,
        )
        self.state_machine = self.pipeline.state_machine
        # Publishing to a topic under a customer-managed key needs the key too (sns:Publish alone is refused).
        self.notifications_key.grant(self.state_machine.role, "kms:Decrypt", "kms:GenerateDataKey*")
        self._scoring(storage)
        self._feature_ingestion(storage)
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "FailureTopicArn", value=self.failure_topic.topic_arn)
        CfnOutput(self, "CatalogParameter", value=self.catalog_parameter_name)
        CfnOutput(self, "EventBusName", value=settings.event_bus)
        CfnOutput(self, "EventSource", value=settings.event_source)
        CfnOutput(self, "EventLogGroup", value=self.events.log_group.log_group_name)
        CfnOutput(self, "Models", value=",".join(models.names))
        for name, fn in {**self.functions, **self.scoring_functions}.items():
            CfnOutput(self, f"Function{_pascal(name)}", value=fn.function_name)

    def _scoring(self, storage: StorageStack) -> None:
        """Batch scoring (S3 to S3): its functions, each granted what its step reads and writes, and its state
        machine (the trigger starts it). The shards read the landing bucket's scoring prefixes only."""
        store, tables = storage.store, storage.tables
        fns = {spec.name: self.make_function(self, f"Fn-{spec.name}", spec=spec) for spec in SCORING_FUNCTIONS}
        self.scoring_functions = fns
        scoring_prefixes = sorted({m.scoring_prefix for m in self.models})
        for prefix in scoring_prefixes:
            store.landing.grant_read(fns["score_plan"], f"{prefix}*")
            store.landing.grant_read(fns["score_shard"], f"{prefix}*")
        for fn in fns.values():
            tables.runs.grant_read_write_data(fn)  # the job's record (JOB#<job_id>)
            store.artifacts.grant_put(fn, f"{c.SCORED_PREFIX}*")
            store.artifacts.grant_read(fn, f"{c.SCORED_PREFIX}*")
        tables.models.grant_read_data(fns["score_shard"])  # the pinned version's record
        store.artifacts.grant_read(fns["score_shard"], f"{c.MODELS_PREFIX}*")
        store.artifacts.grant_put(fns["score_shard"], f"{c.CAPTURES_PREFIX}*")  # the sampled rows, for the monitor
        store.artifacts.grant_read(fns["score_finish"], f"{RESULTS_PREFIX}/*")  # the Map's result files
        grant_site_publishing(fns["score_finish"], storage, self.models.feature_sets)
        self.scoring = ScoringWorkflow(
            self,
            "Scoring",
            plan=fns["score_plan"],
            shard=fns["score_shard"],
            finish=fns["score_finish"],
            timeouts={f.name: f.timeout_s for f in SCORING_FUNCTIONS},
            artifacts=store.artifacts,
            max_concurrency=self.settings.scoring_max_concurrency,
            log_retention=self.log_retention,
        )
        self.scoring_state_machine = self.scoring.state_machine
        CfnOutput(self, "ScoringStateMachineArn", value=self.scoring_state_machine.state_machine_arn)

    def _feature_ingestion(self, storage: StorageStack) -> None:
        """The feature sets' ingestion function and its rule (a project with feature sets only)."""
        self.ingest_features: lambda_.Function | None = None
        if storage.features is None:
            return
        online = storage.features.table
        fn = self.make_function(
            self,
            "Fn-ingest_features",
            spec=INGEST_FEATURES_FUNCTION,
            extra_env={c.ENV_FEATURES_TABLE: online.table_name},
        )
        storage.tables.runs.grant_read_write_data(fn)  # a rejected upload's quarantine record
        storage.tables.models.grant_read_write_data(fn)  # the feature set's registry versions
        self.ingestion = FeatureIngestion(
            self,
            "FeatureIngestion",
            function=fn,
            feature_sets=self.models.feature_sets,
            landing=storage.store.landing,
            artifacts=storage.store.artifacts,
            online=online,
            topic=self.failure_topic,
        )
        self.ingest_features = fn
        CfnOutput(self, "FunctionIngestFeatures", value=fn.function_name)

    def _document(self, construct_id: str, name: str, document: str, description: str) -> ssm.StringParameter:
        """A validated JSON document as an SSM parameter (advanced tier only when it outgrows standard's 4 KB)."""
        return ssm.StringParameter(
            self,
            construct_id,
            parameter_name=name,
            string_value=document,
            tier=ssm.ParameterTier.STANDARD if len(document) <= 4096 else ssm.ParameterTier.ADVANCED,
            description=description,
        )

    def layers_for(self, scope: Construct) -> PipelineLayers:
        """The layers of the stack that holds ``scope`` (one set per stack: no layer ARN crosses stacks)."""
        stack = Stack.of(scope)
        if stack.stack_name not in self._layers:
            self._layers[stack.stack_name] = PipelineLayers(
                stack,
                "Layers",
                arch=self.settings.architecture,
                runtime=self.runtime,
                python=self.settings.python,
                skip_build=self.settings.skip_layer_build,
                components=self.settings.components_dir,
            )
        return self._layers[stack.stack_name]

    def _config_refs_in(self, scope: Construct) -> list[ssm.IStringParameter]:
        """The catalog and config parameters, as seen from ``scope``'s stack (by name: no export to pin)."""
        stack = Stack.of(scope)
        if stack.stack_name not in self._config_refs:
            names = (
                {"CatalogParameter": self.catalog_parameter_name}
                | {f"ConfigParameter-{m}": config_parameter_name(self.settings, m) for m in self.models.names}
                | {
                    f"FeatureSetParameter-{n}": feature_set_parameter_name(self.settings, n)
                    for n in self.models.feature_sets.names
                }
            )
            self._config_refs[stack.stack_name] = [
                ssm.StringParameter.from_string_parameter_name(stack, construct_id, name)
                for construct_id, name in names.items()
            ]
        return self._config_refs[stack.stack_name]

    def make_function(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        extra_env: dict[str, str] | None = None,
        reserved_concurrency: int | None = None,
    ) -> lambda_.Function:
        """A function on its stack's layers, this pipeline's runtime and environment; it may read the config."""
        fn = PipelineFunction(
            scope,
            construct_id,
            spec=spec,
            layers=self.layers_for(scope),
            runtime=self.runtime,
            architecture=self.architecture,
            environment={**self.function_env, **(extra_env or {})},
            log_retention=self.log_retention,
            reserved_concurrency=reserved_concurrency,
        ).function
        for parameter in self._config_refs_in(scope):
            parameter.grant_read(fn)
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
            retention: logs.RetentionDays = getattr(logs.RetentionDays, name)
            return retention
    return logs.RetentionDays.TEN_YEARS


def grant_site_publishing(fn: lambda_.Function, storage: StorageStack, feature_sets: FeatureSets) -> None:
    """What building a model's site reads (the runs, the registry, the monitor's windows, every JSON artifact
    a page draws, and of the feature store only each set's statistics document) and the one prefix it writes."""
    store, tables = storage.store, storage.tables
    for prefix in (*ARTIFACT_PREFIXES, c.MONITORING_PREFIX):
        store.artifacts.grant_read(fn, f"{prefix}*")
    for fs in feature_sets:
        store.artifacts.grant_read(fn, statistics_key(fs.name))
    store.artifacts.grant_put(fn, f"{c.SITES_PREFIX}*")
    tables.runs.grant_read_data(fn)
    tables.models.grant_read_data(fn)


def _grant_step(name: str, fn: lambda_.Function, storage: StorageStack, feature_sets: FeatureSets) -> None:
    """A pipeline step's grants: its run records, and only the prefixes and tables its step reads or writes."""
    store, tables = storage.store, storage.tables
    tables.runs.grant_read_write_data(fn)
    if name in READS_LANDING:
        store.landing.grant_read(fn)
    reads = [*(ARTIFACT_PREFIXES if name in READS_ARTIFACTS else ())]
    reads += [c.CAPTURES_PREFIX, c.FEEDBACK_PREFIX] if name in READS_TRAFFIC else []
    for prefix in reads:
        store.artifacts.grant_read(fn, f"{prefix}*")
    writes = ((WRITES_RUNS, c.RUNS_PREFIX), (WRITES_SCHEMAS, c.SCHEMAS_PREFIX), (WRITES_MODELS, c.MODELS_PREFIX))
    for steps, prefix in writes:
        if name in steps:
            store.artifacts.grant_put(fn, f"{prefix}*")
    if name in USES_MODELS:
        tables.models.grant_read_write_data(fn)
    if name in READS_MODELS:
        tables.models.grant_read_data(fn)
    if name in PUBLISHES_SITE:
        grant_site_publishing(fn, storage, feature_sets)
    if name in WRITES_LINEAGE:
        tables.lineage.grant_read_write_data(fn)
