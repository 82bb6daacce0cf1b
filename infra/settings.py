"""Typed per-environment settings, read from ``cdk.json`` context; a missing or bad key fails fast."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.core.config import ModelSet, load_models
from mlops.core.project import Project

PROJECT_CONTEXT = "mlops:project"  # the project folder, as MlopsApp passes it to the stacks (a context value)


class EnvironmentSettings(BaseModel):
    """One deployment environment (dev, staging, prod)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    project_dir: Path = Field(description="The project: its cdk.json, models, components/ (see mlops.core.project).")
    account: str | None = Field(default=None, description="Defaults to the CLI's credentials (CDK_DEFAULT_ACCOUNT).")
    region: str = "us-east-1"
    models: list[str] = Field(
        min_length=1,
        description="The project's model configs: YAML files and/or folders of them, relative to the project. One "
        "deployment serves them all (shared compute, per-model schedules, alarms and throttles).",
    )
    feature_sets: list[str] = Field(
        default=[],
        description="The project's feature sets: YAML files and/or folders of them, relative to the project (see "
        "mlops.core.feature_sets). Their uploads are ingested into the offline and online stores.",
    )
    architecture: Literal["arm64", "x86_64"] = "arm64"
    python: Literal["3.12", "3.13"] = "3.12"
    log_retention_days: int = 30
    run_retention_days: int = Field(default=180, description="Lifecycle: expire runs/<run_id>/ artifacts after this.")
    notification_email: str | None = None
    retain_data: bool = Field(default=True, description="Keep buckets and tables when the stack is destroyed.")
    skip_layer_build: bool = Field(default=False, description="Tests: placeholder layers, no pip downloads.")
    serving_memory_mb: int = 1024
    serving_reserved_concurrency: int | None = Field(default=None, description="Unset: the account's pool.")
    api_auth: Literal["iam", "api_key"] = "iam"
    api_rate_limit: float = Field(default=100, gt=0, description="Steady requests per second (stage).")
    api_burst_limit: int = Field(default=200, gt=0)
    api_quota_per_day: int = Field(default=100_000, gt=0, description="Usage-plan quota (api_key auth).")
    serving_deployment: Literal[
        "all_at_once",
        "canary_10_percent_5_minutes",
        "canary_10_percent_15_minutes",
        "linear_10_percent_every_1_minute",
        "linear_10_percent_every_3_minutes",
    ] = Field(
        default="canary_10_percent_5_minutes",
        description="How CodeDeploy shifts the serve function's live alias to new code (rolled back on alarm).",
    )
    event_bus: str = Field(default="default", description="The EventBridge bus the platform's events go to.")
    event_source: str = Field(
        default="serverless-mlops", pattern=r"^[A-Za-z0-9._-]+$", description="The events' source (mlops.core.facts)."
    )
    model_cache_seconds: int = Field(default=30, ge=0, le=300, description="Champion alias re-check interval.")
    max_predict_rows: int = Field(default=1000, gt=0, le=10_000)
    scoring_max_concurrency: int = Field(
        default=20, ge=1, le=1000, description="Batch scoring: shards scored at once (the Map's MaxConcurrency)."
    )

    @property
    def model_paths(self) -> list[Path]:
        return [(self.project_dir / m).resolve() for m in self.models]

    @property
    def feature_set_paths(self) -> list[Path]:
        return [(self.project_dir / f).resolve() for f in self.feature_sets]

    @property
    def components_dir(self) -> Path | None:
        """The project's own components package, shipped in the code layer beside ``mlops``."""
        return Project(self.project_dir).components

    def project(self) -> ModelSet:
        """Every model, validated together, each component it names importable from the project; a problem names its
        file and field."""
        from mlops.components import component_problems

        models = load_models(list(self.model_paths), list(self.feature_set_paths))
        problems = component_problems(models, self.project_dir)
        if problems:
            raise ValueError("; ".join(problems))
        return models

    @property
    def stack_prefix(self) -> str:
        return f"Mlops-{self.name}"


def settings_from_context(app_context: Any, env_name: str | None = None) -> EnvironmentSettings:
    """Resolve ``-c env=<name>`` (default ``dev``) against the ``environments`` context block."""
    env_name = env_name or app_context("env") or "dev"
    environments = app_context("environments")
    if not isinstance(environments, dict):
        raise ValueError("cdk.json: context.environments is missing; it maps environment names to settings")
    if env_name not in environments:
        raise ValueError(f"cdk.json: unknown environment '{env_name}'; choose one of {sorted(environments)}")
    raw = dict(environments[env_name])
    for key in ("skip_layer_build",):
        override = app_context(f"mlops:{key}")
        if override is not None:
            raw[key] = str(override).lower() in {"1", "true", "yes"}
    project = app_context(PROJECT_CONTEXT)
    raw["project_dir"] = Path(project).resolve() if project else Project.find().root
    try:
        return EnvironmentSettings(name=env_name, **raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ValueError(f"cdk.json: environments.{env_name}: {problems}") from None


class DeliverySettings(BaseModel):
    """The CDK Pipelines stack that ships the system (E4), from ``cdk.json``'s ``delivery`` block. It is synthesized
    (``-c env=delivery``) only when a repository connection is configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection_arn: str = Field(
        pattern=r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/.+$",
        description="A CodeStar/CodeConnections connection to the repository host (created once in the console).",
    )
    repository: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name on the connected host.")
    branch: str = "main"
    account: str | None = Field(default=None, description="Where the pipeline lives; default: the CLI's account.")
    region: str = "us-east-1"
    stages: list[str] = Field(
        default=["staging", "prod"],
        min_length=1,
        description="Environments deployed in order, each followed by the smoke test; all but the first wait for "
        "a manual approval.",
    )

    @property
    def stack_name(self) -> str:
        return "Mlops-delivery"


def delivery_from_context(app_context: Any) -> DeliverySettings:
    raw = app_context("delivery")
    if not isinstance(raw, dict) or not raw.get("connection_arn"):
        raise ValueError(
            "cdk.json: context.delivery.connection_arn is not set: the delivery pipeline is deployed only once a "
            "repository connection exists (see README, 'Release flow')"
        )
    try:
        delivery = DeliverySettings(**raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ValueError(f"cdk.json: delivery: {problems}") from None
    environments = app_context("environments") or {}
    unknown = [s for s in delivery.stages if s not in environments]
    if unknown:
        raise ValueError(f"cdk.json: delivery.stages: unknown environment(s) {unknown}; have {sorted(environments)}")
    return delivery
