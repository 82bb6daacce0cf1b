"""The feature store's resources: the online table (in the storage stack) and the ingestion path (an EventBridge
rule on the feature sets' source prefixes in the landing bucket, the ingestion function and its dead letters)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from constructs import Construct
from mlops.core.constants import (
    FEATURES_PREFIX,
    FEATURES_TABLE,
    FEATURES_TTL_ATTRIBUTE,
    METRIC_FEATURE_ROWS_INGESTED,
    METRICS_NAMESPACE,
    SERVICE_NAME,
)
from mlops.core.feature_sets import FeatureSets
from mlops.infra.constructs.dead_letters import DeadLetters
from mlops.infra.constructs.retraining_triggers import object_created_pattern


class OnlineFeatureTable(Construct):
    """The latest value per (feature set, entity): on-demand, encrypted, point-in-time recovery, expiring by the
    TTL attribute the ingestion sets (event time + the set's ``ttl_hours``)."""

    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)
        policy = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        self.table = dynamodb.TableV2(
            self,
            FEATURES_TABLE.logical_id,
            partition_key=dynamodb.Attribute(name=FEATURES_TABLE.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=FEATURES_TABLE.sort_key, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=FEATURES_TTL_ATTRIBUTE,
            deletion_protection=retain,
            removal_policy=policy,
        )


class FeatureIngestion(Construct):
    """Uploads under any feature set's source prefix reach the ingestion function (retried, then kept in a queue
    that raises an alarm); the function reads only those prefixes, writes only the offline store's prefix, and may
    only put items into the online table."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        feature_sets: FeatureSets,
        landing: s3.IBucket,
        artifacts: s3.IBucket,
        online: dynamodb.ITableV2,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        sources = sorted(fs.source for fs in feature_sets)
        for prefix in sources:
            landing.grant_read(function, f"{prefix}*")
        artifacts.grant_put(function, f"{FEATURES_PREFIX}*")
        artifacts.grant_read(function, f"{FEATURES_PREFIX}*")  # the receipts that make an ingestion idempotent
        online.grant(function, "dynamodb:PutItem")  # conditional puts only: never a read, a delete or a scan
        dead_letters = DeadLetters(
            self,
            "DeadLetters",
            of="the feature ingestion",
            impact="A feature set upload could not be ingested: the offline and online stores are missing it",
            topic=topic,
        )
        self.dead_letters = dead_letters.queue
        self.rule = events.Rule(
            self,
            "NewFeatureData",
            description="New data under a feature set's source prefix in the landing bucket is ingested",
            event_pattern=object_created_pattern(landing.bucket_name, sources),
            targets=[
                targets.LambdaFunction(
                    function, dead_letter_queue=self.dead_letters, retry_attempts=4, max_event_age=Duration.hours(6)
                )
            ],
        )
        # Freshness: a set that declares max_staleness_hours alarms when no row has been ingested for that long (no
        # upload, or only quarantined ones: both count as no data).
        self.staleness: dict[str, cloudwatch.Alarm] = {}
        for fs in feature_sets:
            if fs.max_staleness_hours is None:
                continue
            self.staleness[fs.name] = cloudwatch.Alarm(
                self,
                f"Stale-{fs.name}",
                alarm_description=f"feature set {fs.name}: no row ingested for {fs.max_staleness_hours} h",
                metric=cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=METRIC_FEATURE_ROWS_INGESTED,
                    dimensions_map={"FeatureSet": fs.name, "service": SERVICE_NAME},  # EMF from the ingestion
                    period=Duration.hours(1),
                    statistic="Sum",
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=fs.max_staleness_hours,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
            self.staleness[fs.name].add_alarm_action(cw_actions.SnsAction(topic))
        function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dead_letters),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )
