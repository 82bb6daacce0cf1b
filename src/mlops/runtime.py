"""Wiring: resource names from the environment (read when asked, never at import) → stores."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
import yaml

from mlops import constants as c
from mlops.adapters.artifacts import S3ArtifactStore, S3ObjectReader, parse_s3_uri
from mlops.adapters.executions import StepFunctionsExecutions
from mlops.adapters.metadata import DynamoMetadataStore
from mlops.config import ConfigError, ProjectConfig, load_config, parse_config, parse_config_document
from mlops.context import Stores
from mlops.errors import TransientError


@dataclass(frozen=True)
class Resources:
    artifact_bucket: str
    landing_bucket: str
    runs_table: str
    models_table: str
    lineage_table: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Resources:
        env = os.environ if env is None else env
        names = {
            "artifact_bucket": c.ENV_ARTIFACT_BUCKET,
            "landing_bucket": c.ENV_LANDING_BUCKET,
            "runs_table": c.ENV_RUNS_TABLE,
            "models_table": c.ENV_MODELS_TABLE,
            "lineage_table": c.ENV_LINEAGE_TABLE,
        }
        missing = [v for v in names.values() if not env.get(v)]
        if missing:
            raise RuntimeError(f"missing environment variable(s): {', '.join(missing)}")
        return cls(**{k: env[v] for k, v in names.items()})

    def as_env(self) -> dict[str, str]:
        return {
            c.ENV_ARTIFACT_BUCKET: self.artifact_bucket,
            c.ENV_LANDING_BUCKET: self.landing_bucket,
            c.ENV_RUNS_TABLE: self.runs_table,
            c.ENV_MODELS_TABLE: self.models_table,
            c.ENV_LINEAGE_TABLE: self.lineage_table,
        }


def make_stores(resources: Resources, session: Any = None) -> Stores:
    session = session or boto3.session.Session()
    s3 = session.client("s3")
    ddb = session.resource("dynamodb")
    return Stores(
        artifacts=S3ArtifactStore(resources.artifact_bucket, s3),
        meta=DynamoMetadataStore(ddb, resources.runs_table, resources.models_table, resources.lineage_table),
        reader=S3ObjectReader(s3),
        landing_bucket=resources.landing_bucket,
    )


def executions_from_env(env: Mapping[str, str] | None = None, session: Any = None) -> StepFunctionsExecutions:
    """The training state machine's executions (the trigger's port to Step Functions)."""
    env = os.environ if env is None else env
    arn = env.get(c.ENV_STATE_MACHINE_ARN)
    if not arn:
        raise RuntimeError(f"missing environment variable: {c.ENV_STATE_MACHINE_ARN}")
    return StepFunctionsExecutions((session or boto3.session.Session()).client("stepfunctions"), arn)


def load_config_uri(uri: str, s3: Any = None) -> ProjectConfig:
    """A config from a local path or an ``s3://`` URI (the deployed stack ships it as an asset)."""
    if not uri.startswith("s3://"):
        return load_config(uri)
    bucket, key = parse_s3_uri(uri)
    s3 = s3 or boto3.client("s3")
    try:
        raw = yaml.safe_load(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except yaml.YAMLError as err:
        raise ConfigError(f"{uri} is not valid YAML: {err}") from None
    return parse_config(raw, uri)


def load_config_parameter(name: str, ssm: Any = None) -> ProjectConfig:
    """The config a deployment published to SSM Parameter Store (see infra: PipelineStack)."""
    ssm = ssm or boto3.client("ssm")
    document = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    return parse_config_document(document, f"ssm:{name}")


@lru_cache(maxsize=4)
def _cached_config(uri: str) -> ProjectConfig:
    return load_config_uri(uri)


@lru_cache(maxsize=4)
def _cached_parameter(name: str, expected_hash: str) -> ProjectConfig:
    config = load_config_parameter(name)
    if expected_hash and config.config_hash() != expected_hash:
        # CloudFormation updates the parameter before the functions that reference it; a mismatch means a
        # deployment is under way: fail this invocation (retried) rather than run with the other config.
        raise TransientError(
            f"config parameter {name} holds config {config.config_hash()[:12]}, but this function was deployed "
            f"with {expected_hash[:12]}; a deployment is probably in progress"
        )
    return config


def config_from_env(env: Mapping[str, str] | None = None) -> ProjectConfig:
    """The project config: the deployed SSM parameter, or a local file / s3:// URI (tests and tools)."""
    env = os.environ if env is None else env
    parameter = env.get(c.ENV_CONFIG_PARAMETER)
    if parameter:
        return _cached_parameter(parameter, env.get(c.ENV_CONFIG_HASH, ""))
    uri = env.get(c.ENV_CONFIG_URI)
    if not uri:
        raise RuntimeError(f"missing environment variable: {c.ENV_CONFIG_PARAMETER} (or {c.ENV_CONFIG_URI})")
    return _cached_config(uri)
