"""Serving by entity: records that carry a feature set's entity key get the set's features from the online store.

For each feature set the model takes features from (``feature_sets:`` in its config), a record that lacks any of
the set's features is looked up by its entity (one ``BatchGetItem`` per 100 entities), and the values fill what it
lacks; a record that carries them all is scored as sent (so an answer by entity equals the answer for the same
features sent in full). The set's key columns leave the record, except the model's ``id_column`` (echoed back).
An entity the store has no live value for (never ingested, or older than the TTL) is answered as the model's config
says: ``reject`` refuses the request (404, naming the entity), ``default`` scores it with those features missing —
imputed in the graph with the training default — and the answer says so. Plain Python: the serving bundle has no
pandas or DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.core.config import ProjectConfig
from mlops.core.feature_sets import FeatureSetConfig, FeatureSets
from mlops.core.ports import OnlineStore


class EntityProblem(Exception):
    """A record the online store cannot complete: ``status`` 400 (no key sent) or 404 (no live value)."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


@dataclass
class Lookups:
    """What the online store answered for a request: per record, per feature set, the entity and what was found
    (``found`` with the value's event time, ``missing``, ``expired``); the rows scored with training defaults."""

    per_record: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    defaulted: dict[int, list[str]] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per feature set, how many lookups found a live value, none, or an expired one (what capture records
        beside the values fed)."""
        out: dict[str, dict[str, int]] = {}
        for record in self.per_record:
            for name, seen in record.items():
                by_status = out.setdefault(name, {})
                by_status[seen["status"]] = by_status.get(seen["status"], 0) + 1
        return out

    def warnings(self) -> list[str]:
        return [
            f"record {row}: no live features for entity '{entity}' of feature set '{name}'; scored with the "
            "training defaults"
            for row, names in self.defaulted.items()
            for name in names
            for entity in [self.per_record[row][name]["entity"]]
        ]


@dataclass(frozen=True)
class Use:
    fs: FeatureSetConfig
    features: list[str]
    on_missing: str


def uses_of(config: ProjectConfig, sets: FeatureSets) -> list[Use]:
    return [
        Use(sets.get(u.name), list(u.features or sets.get(u.name).features), u.on_missing) for u in config.feature_sets
    ]


def entity_record_schema(schema: dict[str, Any], uses: list[Use]) -> dict[str, Any]:
    """A model's record schema (:meth:`Signature.record_schema`) as a model taking feature sets answers: each set's
    key documented, its features no longer required (looked up when not sent)."""
    looked_up = {f for use in uses for f in use.features}
    properties = dict(schema["properties"])
    for use in uses:
        for key in use.fs.entity:
            properties[key.name] = {
                "type": "integer" if key.type.value == "integer" else "string",
                "description": f"entity key of feature set '{use.fs.name}': the features a record does not send "
                f"({', '.join(use.features)}) are looked up by it",
            }
    return {**schema, "properties": properties, "required": [r for r in schema["required"] if r not in looked_up]}


def complete(
    records: list[dict[str, Any]], uses: list[Use], id_column: str | None, online: OnlineStore, now: float
) -> tuple[list[dict[str, Any]], Lookups]:
    """``records`` with the features each lacks filled from ``online`` (see the module), and what was looked up."""
    out = [dict(r) for r in records]
    lookups = Lookups(per_record=[{} for _ in records])
    for use in uses:
        wanted = _entities(out, use)
        found = online.get_many(use.fs.name, list(wanted.values())) if wanted else {}
        refused = []
        for i, entity in wanted.items():
            value = found.get(entity)
            live = value is not None and value.live(now)
            status = "found" if live else ("expired" if value is not None else "missing")
            lookups.per_record[i][use.fs.name] = {
                "entity": entity,
                "status": status,
                **({"event_time": value.event_time} if value is not None else {}),
            }
            if live or use.on_missing == "default":
                values = value.values if live and value is not None else {}
                for name in use.features:
                    out[i].setdefault(name, values.get(name))
                if not live:
                    lookups.defaulted.setdefault(i, []).append(use.fs.name)
            else:
                refused.append((i, entity, status))
        if refused:
            raise _refusal(use, refused)
    dropped = {k for use in uses for k in use.fs.keys} - {id_column}
    for record in out:
        for key in dropped:
            record.pop(key, None)
    return out, lookups


def _entities(records: list[dict[str, Any]], use: Use) -> dict[int, str]:
    """The entity of each record that lacks some of ``use``'s features (a 400 naming a key a record lacks)."""
    wanted: dict[int, str] = {}
    for i, record in enumerate(records):
        if all(f in record for f in use.features):
            continue  # sent in full: scored as sent
        absent = [k for k in use.fs.keys if record.get(k) is None]
        if absent:
            raise EntityProblem(
                400,
                f"record {i}: '{absent[0]}' is needed to look up feature set '{use.fs.name}' (or send its "
                f"features: {', '.join(use.features)})",
                [{"row": i, "field": k, "problem": "missing entity key"} for k in absent],
            )
        wanted[i] = use.fs.entity_id(record)
    return wanted


def _refusal(use: Use, refused: list[tuple[int, str, str]]) -> EntityProblem:
    i, entity, status = refused[0]
    why = "its value is older than the feature set's TTL" if status == "expired" else "none was ingested"
    more = f" (and {len(refused) - 1} more: errors lists them)" if len(refused) > 1 else ""
    return EntityProblem(
        404,
        f"record {i}: entity '{entity}' has no live features in feature set '{use.fs.name}': {why}{more}",
        [{"row": r, "field": ",".join(use.fs.keys), "problem": f"entity '{e}': {s}"} for r, e, s in refused],
    )
