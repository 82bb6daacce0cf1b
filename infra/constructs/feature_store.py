"""The feature store's resources: the online table (in the storage stack), the ingestion path (an EventBridge
rule on the feature sets' source prefixes in the landing bucket, the ingestion function and its dead letters), and
each set's alarms on what the monitor publishes of it (in the monitoring stack)."""

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
    METRIC_FEATURE_AGE_HOURS,
    METRIC_FEATURE_SKEW,
    METRICS_NAMESPACE,
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
        function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dead_letters),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )


class FeatureSetAlarms(Construct):
    """Per feature set, to the notifications topic, on what the monitor publishes by ``FeatureSet``:

    * **stale** (a set with ``max_staleness_hours``): its newest value is older than that. Every model's monitor
      publishes every set's age, so an upload that stops — or keeps sending old rows — shows within one monitor
      period; an hour without a datapoint keeps the alarm as it was (no monitor ran: nothing is known).
    * **skew**: a feature served by entity is further from the offline store's values than its drift threshold
      (the score above 1). A window with too few lookups publishes nothing, which is not breaching.
    """

    PERIOD = Duration.hours(1)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        feature_sets: FeatureSets,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.staleness: dict[str, cloudwatch.Alarm] = {}
        self.skew: dict[str, cloudwatch.Alarm] = {}
        above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        for fs in feature_sets:
            if fs.max_staleness_hours is not None:
                self.staleness[fs.name] = cloudwatch.Alarm(
                    self,
                    f"Stale-{fs.name}",
                    alarm_description=f"feature set {fs.name}: its newest value is more than "
                    f"{fs.max_staleness_hours} h old",
                    metric=self._metric(METRIC_FEATURE_AGE_HOURS, fs.name),
                    threshold=fs.max_staleness_hours,
                    comparison_operator=above,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
                )
            self.skew[fs.name] = cloudwatch.Alarm(
                self,
                f"Skew-{fs.name}",
                alarm_description=f"feature set {fs.name}: features served by entity differ from the offline "
                "store's values by more than their drift threshold",
                metric=self._metric(METRIC_FEATURE_SKEW, fs.name),
                threshold=1,
                comparison_operator=above,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        self.alarms = [*self.staleness.values(), *self.skew.values()]
        for alarm in self.alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))

    def _metric(self, name: str, feature_set: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"FeatureSet": feature_set},  # put by the monitor (PutMetricData), not EMF
            period=self.PERIOD,
            statistic="Maximum",
        )
