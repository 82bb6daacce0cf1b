"""Stateful core: buckets and tables (retained on delete outside dev)."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack

from constructs import Construct
from mlops.infra import nag
from mlops.infra.constructs.artifact_store import ArtifactStore
from mlops.infra.constructs.feature_store import OnlineFeatureTable
from mlops.infra.constructs.metadata_tables import MetadataTables
from mlops.infra.settings import EnvironmentSettings


class StorageStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.store = ArtifactStore(
            self,
            "ArtifactStore",
            run_retention_days=settings.run_retention_days,
            retain=settings.retain_data,
            capture_retention_days={m.name: m.monitoring.capture_retention_days for m in settings.project()},
        )
        self.tables = MetadataTables(self, "Metadata", retain=settings.retain_data)
        # The feature store's online table, when the project has feature sets (cdk.json: feature_sets).
        self.features: OnlineFeatureTable | None = None
        if settings.feature_sets:
            self.features = OnlineFeatureTable(self, "FeatureStore", retain=settings.retain_data)
            CfnOutput(self, "FeaturesTable", value=self.features.table.table_name)
        # CDK's singleton custom resource that turns on EventBridge notifications for the landing bucket.
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                nag.acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "CDK's BucketNotifications handler (enables EventBridge delivery on the landing bucket) runs "
                    "with the AWS-managed basic execution role for its logs; its only other grant is "
                    "s3:PutBucketNotification.",
                )
        for name, value in {
            "LandingBucket": self.store.landing.bucket_name,
            "ArtifactBucket": self.store.artifacts.bucket_name,
            "RunsTable": self.tables.runs.table_name,
            "ModelsTable": self.tables.models.table_name,
            "LineageTable": self.tables.lineage.table_name,
        }.items():
            CfnOutput(self, name, value=value)
