"""Feature sets: reviewed config, one YAML file per set beside the models (``feature_sets/`` in ``cdk.json``).

A feature set names an entity (its key column or columns), the column stamping each row's event time, its
features with their types, how long a value stays valid (``ttl_hours``), the prefix of the landing bucket its
uploads arrive under, and whether it is materialized into the online store. Models take features from it by
name (``feature_sets:`` in a model's config); :func:`check_uses` validates every use at synthesis, naming the
model's file and field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from mlops.core.config import ConfigError, FeatureType, _format_errors, _Strict, model_files
from mlops.core.constants import FEATURES_PREFIX

if TYPE_CHECKING:
    from mlops.core.config import ModelSet
    from mlops.core.context import Stores

# The online store's item: partition key the feature set, sort key the entity (its key values joined by this).
ENTITY_SEPARATOR = "|"


class KeyType(StrEnum):
    STRING = "string"
    INTEGER = "integer"


class EntityKey(_Strict):
    name: str = Field(min_length=1, description="A column of every upload that identifies the entity.")
    type: KeyType = KeyType.STRING


class FeatureSetConfig(_Strict):
    """One feature set (``feature_sets/<name>.yaml``)."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,47}$", description="Feature set name.")]
    description: str = ""
    entity: tuple[EntityKey, ...] = Field(min_length=1, description="The entity's key column(s).")
    event_time: str = Field(min_length=1, description="The column stamping when each row's values became true.")
    features: dict[str, FeatureType] = Field(min_length=1, description="Feature name → numeric | categorical.")
    ttl_hours: float = Field(gt=0, description="A value older than this (at a label's time, or now) is expired.")
    source: str = Field(description="Key prefix in the landing bucket its uploads arrive under, ending in '/'.")
    online: bool = Field(default=True, description="Materialize the latest value per entity into the online store.")
    min_rows: int = Field(default=1, ge=1, description="An upload with fewer rows is quarantined.")
    max_staleness_hours: int | None = Field(
        default=None,
        ge=1,
        le=24,
        description="Alarm (to the notifications topic) when the set's newest value is older than this many hours "
        "(the age the monitor publishes); unset: no staleness alarm.",
    )

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v.startswith("/") or v.startswith("s3://") or not v.endswith("/"):
            raise ValueError("give a key prefix inside the landing bucket ending in '/', e.g. 'features/customers/'")
        return v

    @model_validator(mode="after")
    def _columns_distinct(self) -> FeatureSetConfig:
        keys = [k.name for k in self.entity]
        clash = sorted((set(keys) | {self.event_time}) & set(self.features))
        if clash:
            raise ValueError(f"features: {clash} also name the entity or event_time column; rename them")
        if self.event_time in keys or len(set(keys)) != len(keys):
            raise ValueError("entity: key columns must be distinct and differ from event_time")
        return self

    @property
    def keys(self) -> list[str]:
        return [k.name for k in self.entity]

    @property
    def ttl_seconds(self) -> int:
        return int(self.ttl_hours * 3600)

    def entity_id(self, record: dict[str, Any]) -> str:
        """The entity's id in the stores: its key values, in order, as text (an integer key without a '.0')."""
        parts = []
        for key in self.entity:
            value = record[key.name]
            if key.type is KeyType.INTEGER and isinstance(value, float) and value.is_integer():
                value = int(value)
            parts.append(str(value))
        return ENTITY_SEPARATOR.join(parts)

    def definition_hash(self) -> str:
        """The set's version identity: its schema and definition, canonical JSON hashed."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class FeatureSets:
    """The feature sets of one deployment, by name, with their files: unique names, non-overlapping sources."""

    def __init__(self, sets: Sequence[tuple[str, FeatureSetConfig]] = ()) -> None:
        self.sources: dict[str, str] = {}
        self.sets: dict[str, FeatureSetConfig] = {}
        for source, fs in sets:
            if fs.name in self.sets:
                raise ConfigError(
                    f"{source}: name: feature set '{fs.name}' is also defined in {self.sources[fs.name]}; "
                    "each feature set needs a unique name"
                )
            for other in self.sets.values():
                if fs.source.startswith(other.source) or other.source.startswith(fs.source):
                    raise ConfigError(
                        f"{source}: source: '{fs.source}' overlaps '{other.source}' of feature set '{other.name}' "
                        f"({self.sources[other.name]}); give each feature set its own prefix"
                    )
            self.sources[fs.name], self.sets[fs.name] = source, fs

    def __iter__(self) -> Iterator[FeatureSetConfig]:
        return iter(self.sets.values())

    def __len__(self) -> int:
        return len(self.sets)

    def __contains__(self, name: object) -> bool:
        return name in self.sets

    @property
    def names(self) -> list[str]:
        return list(self.sets)

    def get(self, name: str) -> FeatureSetConfig:
        try:
            return self.sets[name]
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise ConfigError(f"unknown feature set '{name}'; this deployment has: {known}") from None

    def for_object(self, key: str) -> FeatureSetConfig | None:
        """The feature set whose source prefix (in the landing bucket) an upload falls under."""
        return next((fs for fs in self.sets.values() if key.startswith(fs.source)), None)


def parse_feature_set(raw: Any, source: str) -> FeatureSetConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of fields")
    try:
        return FeatureSetConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_feature_set(path: str | Path) -> FeatureSetConfig:
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"feature set file not found: {p}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{p} is not valid YAML: {err}") from None
    return parse_feature_set(raw, str(p))


def load_feature_sets(paths: Sequence[str | Path]) -> FeatureSets:
    """Every feature set of the files and folders named (none named: none)."""
    return FeatureSets([(str(f), load_feature_set(f)) for f in model_files(paths)] if paths else [])


def check_uses(models: ModelSet, sets: FeatureSets) -> None:
    """Every model's ``feature_sets`` checked against the sets: an unknown set, a feature the set lacks, a key
    column two sets type differently, a set's source overlapping a model's data prefix. The error names the
    model's file and field."""
    for config in models:
        source = models.sources[config.name]
        key_types: dict[str, tuple[KeyType, str]] = {}
        for i, use in enumerate(config.feature_sets):
            where = f"{source}: feature_sets.{i}"
            if use.name not in sets:
                known = ", ".join(sets.names) or "none"
                raise ConfigError(f"{where}.name: unknown feature set '{use.name}'; this deployment has: {known}")
            fs = sets.get(use.name)
            missing = [f for f in use.features or () if f not in fs.features]
            if missing:
                raise ConfigError(
                    f"{where}.features: {missing} not in feature set '{fs.name}' ({sets.sources[fs.name]}), whose "
                    f"features are {sorted(fs.features)}"
                )
            for key in fs.entity:
                seen = key_types.get(key.name)
                if seen is not None and seen[0] is not key.type:
                    raise ConfigError(
                        f"{where}.name: key type mismatch: feature set '{fs.name}' keys '{key.name}' as "
                        f"{key.type.value} but feature set '{seen[1]}' keys it as {seen[0].value}"
                    )
                key_types[key.name] = (key.type, fs.name)
                override = config.features.overrides.get(key.name)
                wanted = FeatureType.NUMERIC if key.type is KeyType.INTEGER else FeatureType.CATEGORICAL
                if override is not None and override.type is not None and override.type is not wanted:
                    raise ConfigError(
                        f"{source}: features.overrides.{key.name}.type: key type mismatch: feature set '{fs.name}' "
                        f"keys '{key.name}' as {key.type.value}, the model types it {override.type.value}"
                    )
            if config.time_column is None:
                raise ConfigError(
                    f"{source}: time_column: a model taking features from feature set '{fs.name}' needs its labels' "
                    "event time column (features are joined as of that time)"
                )
        for fs in sets:
            if config.data.bucket is None and (
                fs.source.startswith(config.data.prefix) or config.data.prefix.startswith(fs.source)
            ):
                raise ConfigError(
                    f"{sets.sources[fs.name]}: source: '{fs.source}' overlaps data.prefix '{config.data.prefix}' of "
                    f"model '{config.name}' ({source}): an upload there would be both; give each its own prefix"
                )


def registry_key(name: str) -> str:
    """A feature set's partition in the registry and runs tables (its versions, its quarantined uploads): no model
    name can take it (a model's name has no '#')."""
    return f"FEATURESET#{name}"


def feature_set_document(fs: FeatureSetConfig) -> str:
    """The set as deployed: compact JSON of its validated fields that differ from their defaults."""
    return json.dumps(fs.model_dump(mode="json", exclude_defaults=True), sort_keys=True, separators=(",", ":"))


def statistics_key(name: str) -> str:
    """Where ingestion keeps a set's statistics and freshness in the artifacts bucket (what the monitor and the
    report site read: neither reads the offline rows themselves)."""
    return f"{FEATURES_PREFIX}{name}/_statistics/latest.json"


def trained_on(stores: Stores, models: ModelSet, name: str) -> list[dict[str, Any]]:
    """The models that take features from set ``name`` (their configs say so), each with its versions that
    trained on it (their lineage) and the set's registry version each used."""
    users = []
    for config in models:
        if any(u.name == name for u in config.feature_sets):
            versions = [
                {"version": v["version"], "feature_set_version": used.get("version")}
                for v in stores.meta.list_model_versions(config.name)
                for used in (v.get("lineage") or {}).get("feature_sets", [])
                if used.get("name") == name
            ]
            users.append({"model": config.name, "versions": versions})
    return users
