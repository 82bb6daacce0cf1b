"""Create the stateful resources (buckets, tables) in an emulated account.

Key schemas come from :mod:`mlops.core.constants`, the same definitions the CDK storage stack uses.
"""

from __future__ import annotations

from typing import Any

from mlops.core.constants import FEATURES_TABLE, FEATURES_TTL_ATTRIBUTE, TABLES
from mlops.wiring.runtime import Resources

DEFAULT_NAMES = Resources(
    artifact_bucket="mlops-artifacts",
    landing_bucket="mlops-landing",
    runs_table="mlops-runs",
    models_table="mlops-models",
    lineage_table="mlops-lineage",
    features_table="mlops-features",
)


def create_resources(session: Any, names: Resources = DEFAULT_NAMES) -> Resources:
    s3 = session.client("s3")
    for bucket in (names.artifact_bucket, names.landing_bucket):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ddb = session.client("dynamodb")
    table_names = {
        "RunsTable": names.runs_table,
        "ModelsTable": names.models_table,
        "LineageTable": names.lineage_table,
    }
    if names.features_table:
        table_names[FEATURES_TABLE.logical_id] = names.features_table
    for schema in (*TABLES, FEATURES_TABLE) if names.features_table else TABLES:
        ddb.create_table(
            TableName=table_names[schema.logical_id],
            KeySchema=[
                {"AttributeName": schema.partition_key, "KeyType": "HASH"},
                {"AttributeName": schema.sort_key, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": schema.partition_key, "AttributeType": "S"},
                {"AttributeName": schema.sort_key, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    if names.features_table:
        ddb.update_time_to_live(
            TableName=names.features_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": FEATURES_TTL_ATTRIBUTE},
        )
    return names
