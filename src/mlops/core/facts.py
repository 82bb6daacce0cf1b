"""The facts the platform publishes on EventBridge — one event per fact, after the fact is durable — so other
systems can subscribe (a Slack post on a new champion, a downstream job when a version is registered) without
polling. Each ``detail-type`` has a versioned schema, defined once here: the publishers build these models, the CDK
app publishes their JSON schemas in an EventBridge schema registry (code bindings can be generated from it), and
the README's table is checked against them.

Every detail carries ``id`` — the same for a fact published twice (a retried Lambda, a redelivered trigger), so a
subscriber deduplicates by it — the model, the environment and ``schema_version``. Details stay small: references
(``s3://`` of a report page), never data.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    detail_type: str = Field(exclude=True)  # overridden per kind (a ClassVar would not reach the schema)
    schema_version: int = SCHEMA_VERSION
    id: str = Field(description="The same for one fact published twice: subscribers deduplicate by it.")
    model: str
    environment: str = ""
    at: str = Field(description="When the fact happened (ISO-8601, UTC; the deployment's clock).")

    def detail(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def fact_id(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


class RunStateChange(Fact):
    detail_type: Literal["Run State Change"] = Field(default="Run State Change", exclude=True)
    run_id: str
    status: Literal["STARTED", "SUCCEEDED", "FAILED", "REJECTED", "WAITING_APPROVAL"]
    trigger: str | None = Field(default=None, description="Why the run started: s3_upload, schedule, alarm, …")
    version: int | None = Field(default=None, description="The version it registered, if any.")
    error: str | None = Field(default=None, description="A failed run's error: its type and message, short.")
    reasons: list[str] | None = Field(default=None, description="Why a rejected candidate was not blessed.")
    report: str | None = Field(default=None, description="s3:// of the run's page on the model's report site.")


class ModelVersionRegistered(Fact):
    detail_type: Literal["Model Version Registered"] = Field(default="Model Version Registered", exclude=True)
    version: int
    run_id: str | None = None
    status: str = Field(description="approved, or pending_approval when a person approves it")
    metric: str | None = None
    value: float | None = None
    report: str | None = None


class ChampionChanged(Fact):
    detail_type: Literal["Champion Changed"] = Field(default="Champion Changed", exclude=True)
    version: int
    previous: int | None = None
    action: Literal["promote", "rollback"]
    actor: str
    reason: str = ""


class ChallengerChanged(Fact):
    detail_type: Literal["Challenger Changed"] = Field(default="Challenger Changed", exclude=True)
    version: int
    action: Literal["canary", "shadow", "withdraw"]
    percent: float | None = None
    actor: str
    reason: str = ""


class MonitorWindowJudged(Fact):
    detail_type: Literal["Monitor Window Judged"] = Field(default="Monitor Window Judged", exclude=True)
    window_start: str
    window_end: str
    version: int | None = None
    records: int = 0
    judged: bool = Field(description="False: too few records to judge (monitoring.min_samples).")
    drifted_features: list[str] = Field(default_factory=list)
    quality: dict[str, float | None] | None = Field(default=None, description="The live metric and its shortfall.")
    report: str | None = None


KINDS: tuple[type[Fact], ...] = (
    RunStateChange,
    ModelVersionRegistered,
    ChampionChanged,
    ChallengerChanged,
    MonitorWindowJudged,
)


def detail_type_of(kind: type[Fact]) -> str:
    return str(kind.model_fields["detail_type"].default)


def json_schema(kind: type[Fact]) -> dict[str, Any]:
    """The detail's schema as EventBridge's schema registry takes it (JSON Schema draft 4): the whole event, its
    ``detail`` this model's fields."""
    detail = kind.model_json_schema()
    detail.pop("title", None)
    detail["properties"].pop("detail_type", None)
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": detail_type_of(kind),
        "type": "object",
        "required": ["detail-type", "source", "detail"],
        "properties": {
            "detail-type": {"type": "string", "enum": [detail_type_of(kind)]},
            "source": {"type": "string"},
            "detail": _draft4(detail),
        },
    }


def _draft4(schema: Any) -> Any:
    """pydantic's draft 2020-12 → draft 4: ``anyOf`` with null for optional fields stays; ``const`` → one-item enum."""
    if isinstance(schema, dict):
        out = {k: _draft4(v) for k, v in schema.items() if k not in ("title", "default")}
        if "const" in out:
            out["enum"] = [out.pop("const")]
        return out
    if isinstance(schema, list):
        return [_draft4(v) for v in schema]
    return schema
