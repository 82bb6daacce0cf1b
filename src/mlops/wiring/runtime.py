"""Wiring: resource names from the environment (read when asked, never at import) → stores."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
import yaml

from mlops.adapters.artifacts import S3ArtifactStore, S3ObjectReader
from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.executions import StepFunctionsExecutions
from mlops.adapters.metadata import DynamoMetadataStore
from mlops.adapters.online_store import DynamoOnlineStore
from mlops.adapters.parameters import SsmParameters
from mlops.core import constants as c
from mlops.core.config import ConfigError, ModelSet, ProjectConfig, load_config, parse_config, parse_config_document
from mlops.core.context import Stores
from mlops.core.errors import TransientError
from mlops.core.feature_sets import FeatureSets, load_feature_set, parse_feature_set
from mlops.core.ports import NoEvents, ObjectInfo, ParameterStore, parse_s3_uri


@dataclass(frozen=True)
class Resources:
    artifact_bucket: str
    landing_bucket: str
    runs_table: str
    models_table: str
    lineage_table: str
    features_table: str | None = None  # the online store, on the functions that use it

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
        return cls(**{k: env[v] for k, v in names.items()}, features_table=env.get(c.ENV_FEATURES_TABLE) or None)

    def as_env(self) -> dict[str, str]:
        return {
            c.ENV_ARTIFACT_BUCKET: self.artifact_bucket,
            c.ENV_LANDING_BUCKET: self.landing_bucket,
            c.ENV_RUNS_TABLE: self.runs_table,
            c.ENV_MODELS_TABLE: self.models_table,
            c.ENV_LINEAGE_TABLE: self.lineage_table,
            **({c.ENV_FEATURES_TABLE: self.features_table} if self.features_table else {}),
        }


def make_stores(
    resources: Resources,
    session: Any = None,
    endpoint_url: str | None = None,
    events: Mapping[str, str] | None = None,
) -> Stores:
    """The stores over ``resources``; with ``events`` (bus, source, environment: what :func:`event_settings` reads),
    the facts are published there."""
    session = session or boto3.session.Session()
    s3 = session.client("s3", endpoint_url=endpoint_url)
    ddb = session.resource("dynamodb", endpoint_url=endpoint_url)
    publisher: Any = NoEvents()
    if events and events.get("bus"):
        client = session.client("events", endpoint_url=endpoint_url)
        publisher = EventBridgePublisher(client, events["bus"], events["source"], events.get("environment", ""))
    return Stores(
        artifacts=S3ArtifactStore(resources.artifact_bucket, s3),
        meta=DynamoMetadataStore(ddb, resources.runs_table, resources.models_table, resources.lineage_table),
        reader=S3ObjectReader(s3),
        landing_bucket=resources.landing_bucket,
        events=publisher,
        online=online_store(resources.features_table, session, endpoint_url),
    )


def online_store(table: str | None, session: Any = None, endpoint_url: str | None = None) -> DynamoOnlineStore | None:
    """The online store over ``table`` (None without one): a low-level client, as the serve function reads it."""
    if not table:
        return None
    return DynamoOnlineStore((session or boto3.session.Session()).client("dynamodb", endpoint_url=endpoint_url), table)


def event_settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Where this function publishes its facts: set only on the functions that make one (their IAM policy allows
    ``events:PutEvents`` on that bus, for that source); empty elsewhere."""
    env = os.environ if env is None else env
    if not env.get(c.ENV_EVENT_BUS):
        return {}
    return {
        "bus": env[c.ENV_EVENT_BUS],
        "source": env.get(c.ENV_EVENT_SOURCE) or c.DEFAULT_EVENT_SOURCE,
        "environment": env.get(c.ENV_ENVIRONMENT, ""),
    }


@lru_cache(maxsize=1)
def stores_from_env() -> Stores:
    """The stores over the resources this function's environment names, built once per execution environment
    (the pipeline's handlers and the serve function share it)."""
    return make_stores(Resources.from_env(), events=event_settings())


def executions_from_env(env: Mapping[str, str] | None = None, session: Any = None) -> StepFunctionsExecutions:
    """The training state machine's executions (the trigger's port to Step Functions)."""
    env = os.environ if env is None else env
    arn = env.get(c.ENV_STATE_MACHINE_ARN)
    if not arn:
        raise RuntimeError(f"missing environment variable: {c.ENV_STATE_MACHINE_ARN}")
    return StepFunctionsExecutions((session or boto3.session.Session()).client("stepfunctions"), arn)


def scoring_executions_from_env(
    env: Mapping[str, str] | None = None, session: Any = None
) -> StepFunctionsExecutions | None:
    """The batch scoring state machine's executions (None where the function was not given one)."""
    env = os.environ if env is None else env
    arn = env.get(c.ENV_SCORING_STATE_MACHINE_ARN)
    return StepFunctionsExecutions((session or boto3.session.Session()).client("stepfunctions"), arn) if arn else None


def load_config_uri(uri: str, reader: S3ObjectReader | None = None) -> ProjectConfig:
    """A config from a local path or an ``s3://`` URI."""
    if not uri.startswith("s3://"):
        return load_config(uri)
    bucket, key = parse_s3_uri(uri)
    reader = reader or S3ObjectReader(boto3.session.Session().client("s3"))
    try:
        raw = yaml.safe_load(reader.read(ObjectInfo(bucket=bucket, key=key, size=0, etag="", version_id=None)))
    except yaml.YAMLError as err:
        raise ConfigError(f"{uri} is not valid YAML: {err}") from None
    return parse_config(raw, uri)


def load_catalog_parameter(name: str, parameters: ParameterStore | None = None, expected_hash: str = "") -> ModelSet:
    """Every model a deployment published to SSM Parameter Store (see infra: PipelineStack): the catalog
    parameter names each model's config parameter and hash; the configs are read in batches of ten."""
    parameters = parameters or SsmParameters()
    document = parameters.get(name)
    if expected_hash and catalog_hash(document) != expected_hash:
        # CloudFormation updates the parameters before the functions that read them; a mismatch means a
        # deployment is under way: fail this invocation (retried) rather than run with the other configs.
        raise TransientError(
            f"catalog parameter {name} holds catalog {catalog_hash(document)[:12]}, but this function was "
            f"deployed with {expected_hash[:12]}; a deployment is probably in progress"
        )
    entries: dict[str, dict[str, str]] = json.loads(document)["models"]
    by_parameter = {e["parameter"]: (model, e["hash"]) for model, e in entries.items()}
    loaded: dict[str, ProjectConfig] = {}
    for parameter, value in parameters.get_many(list(by_parameter)).items():
        model, digest = by_parameter[parameter]
        config = parse_config_document(value, f"ssm:{parameter}")
        if config.config_hash() != digest:
            raise TransientError(f"config parameter {parameter} is not the one catalogued for model '{model}'")
        loaded[model] = config
    missing = [m for m in entries if m not in loaded]
    if missing:
        raise TransientError(f"config parameter(s) of {', '.join(missing)} not found; a deployment is under way?")
    return ModelSet(
        [(f"ssm:{entries[m]['parameter']}", loaded[m]) for m in entries], _catalogued_sets(document, parameters)
    )


def _catalogued_sets(document: str, parameters: ParameterStore) -> FeatureSets:
    """The feature sets the catalog lists (``feature_sets``: name → parameter and definition hash)."""
    entries: dict[str, dict[str, str]] = json.loads(document).get("feature_sets", {})
    if not entries:
        return FeatureSets()
    values = parameters.get_many([e["parameter"] for e in entries.values()])
    sets = []
    for name, entry in entries.items():
        if entry["parameter"] not in values:
            raise TransientError(f"feature set parameter {entry['parameter']} not found; a deployment is under way?")
        fs = parse_feature_set(json.loads(values[entry["parameter"]]), f"ssm:{entry['parameter']}")
        if fs.definition_hash() != entry["hash"]:
            raise TransientError(f"feature set parameter {entry['parameter']} is not the one catalogued for '{name}'")
        sets.append((f"ssm:{entry['parameter']}", fs))
    return FeatureSets(sets)


def catalog_document(
    parameters: dict[str, tuple[str, str]], feature_sets: dict[str, tuple[str, str]] | None = None
) -> str:
    """The catalog: model → its config parameter and config hash (compact, sorted: stable across synths), and
    feature set → its parameter and definition hash (only when the deployment has feature sets)."""
    document: dict[str, Any] = {"models": {m: {"parameter": p, "hash": h} for m, (p, h) in sorted(parameters.items())}}
    if feature_sets:
        document["feature_sets"] = {n: {"parameter": p, "hash": h} for n, (p, h) in sorted(feature_sets.items())}
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def catalog_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@lru_cache(maxsize=4)
def _cached_files(uris: str, feature_set_uris: str = "") -> ModelSet:
    sets = FeatureSets([(u, load_feature_set(u)) for u in feature_set_uris.split(",") if u])
    return ModelSet([(u, load_config_uri(u)) for u in uris.split(",") if u], sets)


@lru_cache(maxsize=4)
def _cached_catalog(name: str, expected_hash: str) -> ModelSet:
    return load_catalog_parameter(name, expected_hash=expected_hash)


def models_from_env(env: Mapping[str, str] | None = None) -> ModelSet:
    """Every model of the deployment: the published catalog, or local files / s3:// URIs separated by commas
    (tests and tools). Cached for the life of the execution environment."""
    env = os.environ if env is None else env
    parameter = env.get(c.ENV_CATALOG_PARAMETER)
    if parameter:
        return _cached_catalog(parameter, env.get(c.ENV_CATALOG_HASH, ""))
    uris = env.get(c.ENV_CONFIG_URI)
    if not uris:
        raise RuntimeError(f"missing environment variable: {c.ENV_CATALOG_PARAMETER} (or {c.ENV_CONFIG_URI})")
    return _cached_files(uris, env.get(c.ENV_FEATURE_SETS_URI, ""))


def model_config(name: str, env: Mapping[str, str] | None = None) -> ProjectConfig:
    """One model's config (:class:`~mlops.core.config.UnknownModelError` names the models there are)."""
    return models_from_env(env).get(name)


def clear_config_caches() -> None:
    _cached_files.cache_clear()
    _cached_catalog.cache_clear()


def reset_wiring() -> None:
    """Forget this process's wiring (stores, configs), as a cold start would: after the environment changes."""
    stores_from_env.cache_clear()
    clear_config_caches()
