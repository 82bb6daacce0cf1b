"""A Distributed Map's S3 reader and writer, granted on one prefix of the bucket rather than all of it.

CDK's ``S3ObjectsItemReader`` grants the state machine ``s3:ListBucket`` on the whole bucket and its
``ResultWriter`` reads and writes every object of it: with the prefix a JSONPath known only at run time, it cannot
know better. Here the caller says where the run-time prefix will always fall (``scope``, e.g. ``runs/*``), and the
grants stop there: the listing is conditioned on ``s3:prefix``, the writes (and the multipart upload's reads, which
AWS's ResultWriter needs) are on the objects under it."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn

# CDK renders ResultWriterV2 (the one not deprecated) only under this feature flag: TrainingPipeline sets it on
# itself, so an app synthesizes it whatever its cdk.json says.
RESULT_WRITER_V2_FLAG = "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2"
RESULT_WRITER_ACTIONS = ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]


class ScopedObjectsReader(sfn.S3ObjectsItemReader):
    """``s3:listObjectsV2`` over ``prefix`` (a JSONPath or a key prefix), allowed to list only keys under ``scope``."""

    def __init__(self, bucket: s3.IBucket, prefix: str, *, scope: str) -> None:
        super().__init__(bucket=bucket, prefix=prefix)
        self._grant_bucket = bucket
        self._scope = scope

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self._grant_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": self._scope}},
            )
        ]


class ScopedResultWriter(sfn.ResultWriterV2):
    """The Map Run's results written under ``prefix`` (a JSONPath or a key prefix), allowed only under ``scope``."""

    def __init__(self, bucket: s3.IBucket, prefix: str, *, scope: str) -> None:
        super().__init__(bucket=bucket, prefix=prefix)
        self._grant_bucket = bucket
        self._scope = scope

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                actions=RESULT_WRITER_ACTIONS, resources=[self._grant_bucket.arn_for_objects(self._scope)]
            )
        ]
