"""The DynamoDB tables: runs, models (registry) and lineage — key schemas from mlops.core.constants."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb

from constructs import Construct
from mlops.core.constants import LINEAGE_TABLE, MODELS_TABLE, RUNS_TABLE, TableSchema


class MetadataTables(Construct):
    """On-demand tables with point-in-time recovery and encryption at rest."""

    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)
        self._policy = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        self.runs = self._table(RUNS_TABLE)
        self.models = self._table(MODELS_TABLE)
        self.lineage = self._table(LINEAGE_TABLE)

    def _table(self, schema: TableSchema) -> dynamodb.TableV2:
        return dynamodb.TableV2(
            self,
            schema.logical_id,
            partition_key=dynamodb.Attribute(name=schema.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=schema.sort_key, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=self._policy == RemovalPolicy.RETAIN,
            removal_policy=self._policy,
        )
