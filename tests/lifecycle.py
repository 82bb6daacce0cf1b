"""What S3 does over time to a versioned bucket under its lifecycle rules — moto never applies them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops.local.assembly import synthesize
from mlops.local.template import load_templates, resources_of_type
from mlops.tools.samples import example_config_path


def synthesized_rules(logical_prefix: str = "ArtifactStoreArtifacts", env: str = "dev") -> list[dict[str, Any]]:
    """The lifecycle rules of a bucket as the CDK app synthesizes them (the Storage stack's template)."""
    templates = load_templates(synthesize([example_config_path()], env))
    buckets = resources_of_type(templates[f"Mlops-{env}-Storage"], "AWS::S3::Bucket")
    (bucket,) = [b for k, b in buckets.items() if k.startswith(logical_prefix)]
    return list(bucket["Properties"]["LifecycleConfiguration"]["Rules"])


def _prefix(rule: dict[str, Any]) -> str:
    return str(rule.get("Prefix") or (rule.get("Filter") or {}).get("Prefix") or "")


def apply_lifecycle(s3: Any, bucket: str, rules: list[dict[str, Any]], now: datetime) -> list[str]:
    """Apply ``rules`` as S3 would by ``now``: expire current versions older than ``ExpirationInDays``
    (a delete marker in a versioned bucket), then delete noncurrent versions whose ``NoncurrentDays``
    have passed (counted, as a model, from their object's last write). Returns the keys affected."""
    affected: list[str] = []
    versions = [
        v for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket) for v in page.get("Versions", [])
    ]
    for rule in (r for r in rules if r.get("Status") == "Enabled"):
        prefix = _prefix(rule)
        days = rule.get("ExpirationInDays")
        if days is not None:
            for v in versions:
                if v["IsLatest"] and v["Key"].startswith(prefix) and (now - v["LastModified"]).days >= days:
                    s3.delete_object(Bucket=bucket, Key=v["Key"])
                    affected.append(v["Key"])
    versions = [
        v for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket) for v in page.get("Versions", [])
    ]
    for rule in (r for r in rules if r.get("Status") == "Enabled"):
        prefix = _prefix(rule)
        noncurrent = (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays")
        if noncurrent is not None:
            for v in versions:
                if not v["IsLatest"] and v["Key"].startswith(prefix) and (now - v["LastModified"]).days >= noncurrent:
                    s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
                    affected.append(v["Key"])
    return affected
