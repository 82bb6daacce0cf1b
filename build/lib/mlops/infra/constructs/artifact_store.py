"""The buckets: landing (data arrives, EventBridge notified) and artifacts (versioned run outputs)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3

from constructs import Construct
from mlops.core.constants import CAPTURES_PREFIX, FEEDBACK_PREFIX, MONITORING_PREFIX, RUNS_PREFIX


class ArtifactStore(Construct):
    """Encrypted, versioned, SSL-only, private buckets with access logs; runs expire by lifecycle."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        run_retention_days: int,
        retain: bool,
        capture_retention_days: dict[str, int],
    ) -> None:
        super().__init__(scope, construct_id)
        policy = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        common: dict[str, Any] = {
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "versioned": True,
            "removal_policy": policy,
            # dev (retain_data false): empty the versioned buckets on destroy, or `cdk destroy` fails on them.
            "auto_delete_objects": not retain,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        }
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=policy,
            auto_delete_objects=not retain,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        self.landing = s3.Bucket(
            self,
            "Landing",
            event_bridge_enabled=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="landing/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(90))],
            **common,
        )
        self.artifacts = s3.Bucket(
            self,
            "Artifacts",
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-runs", prefix=RUNS_PREFIX, expiration=Duration.days(run_retention_days)
                ),
                # Served traffic, labels and monitor results (D1-D3) are kept as long as each model configures
                # (monitoring.capture_retention_days): one rule per model and prefix, e.g. captures/<model>/.
                *(
                    s3.LifecycleRule(
                        id=f"expire-{prefix.rstrip('/')}-{model}",
                        prefix=f"{prefix}{model}/",
                        expiration=Duration.days(days),
                    )
                    for model, days in sorted(capture_retention_days.items())
                    for prefix in (CAPTURES_PREFIX, FEEDBACK_PREFIX, MONITORING_PREFIX)
                ),
                s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=Duration.days(30)),
            ],
            **common,
        )
