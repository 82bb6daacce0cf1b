"""B6: model versions, aliases and the append-only promotion history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops.core.artifact_io import get_json, put_json
from mlops.core.clock import iso_ms, iso_us, utcnow, utcnow_iso
from mlops.core.constants import (
    CANARY,
    CHALLENGER,
    CHAMPION,
    MODELS_PREFIX,
    RUNS_PREFIX,
    SCHEMAS_PREFIX,
    SHADOW,
    SITES_PREFIX,
)
from mlops.core.context import Stores
from mlops.core.errors import RegistryError
from mlops.core.facts import ChallengerChanged, ChampionChanged, ModelVersionRegistered, fact_id
from mlops.core.ports import parse_s3_uri

APPROVED, PENDING = "approved", "pending_approval"
RETAINED_SECTIONS = ("artifacts", "lineage")


def version_prefix(model: str, version: int) -> str:
    """Where a registered version's artifacts live for as long as it is in the registry (never expired)."""
    return f"{MODELS_PREFIX}{model}/v{version:06d}/"


def _retain(stores: Stores, refs: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Copy every artifact of ``refs`` that lives in run scratch (``runs/``, expired by lifecycle) to ``prefix``."""
    out = dict(refs)
    for name, ref in refs.items():
        if not (isinstance(ref, dict) and ref.get("uri") and ref.get("sha256")):
            continue
        _, key = parse_s3_uri(ref["uri"])
        if key.startswith(RUNS_PREFIX):
            suffix = key.rsplit("/", 1)[-1].partition(".")[2]
            out[name] = {
                **stores.artifacts.copy(ref, f"{prefix}{name}.{suffix}" if suffix else f"{prefix}{name}").as_dict(),
                "run_uri": ref["uri"],
            }
    return out


def site_page(stores: Stores, model: str, page: str) -> str:
    """The ``s3://`` of a page of the model's report site (an event's link)."""
    return stores.artifacts.uri(f"{SITES_PREFIX}{model}/{page}")


def register_version(stores: Stores, record: dict[str, Any]) -> dict[str, Any]:
    """A new version; its artifacts and lineage are copied out of run scratch into the retained prefix."""
    version = stores.meta.next_counter(record["model"], "version")
    prefix = version_prefix(record["model"], version)
    full = {**record, "version": version, "created_at": utcnow_iso()}
    for section in RETAINED_SECTIONS:
        full[section] = _retain(stores, record.get(section) or {}, prefix)
    stores.meta.put_model_version(full)
    model, metric = record["model"], record.get("metric")
    value = (record.get("metrics") or {}).get(metric) if metric else None
    stores.events.publish(
        ModelVersionRegistered(
            id=fact_id(model, version, "registered"),
            model=model,
            version=version,
            run_id=record.get("run_id"),
            status=str(record.get("status") or ""),
            metric=metric,
            value=float(value) if isinstance(value, int | float) else None,
            at=full["created_at"],
            report=site_page(stores, model, f"versions/v{version}.html"),
        )
    )
    return full


def retain_version(stores: Stores, model: str, version: int) -> list[str]:
    """Upgrade path for versions registered before artifacts were retained: copy what still lives under
    ``runs/`` to the version's prefix and point the record there. Returns the names copied."""
    record = stores.meta.get_model_version(model, version)
    if record is None:
        raise RegistryError(f"{model} has no version {version}")
    prefix = version_prefix(model, version)
    update = {section: _retain(stores, record.get(section) or {}, prefix) for section in RETAINED_SECTIONS}
    moved = [n for sec in RETAINED_SECTIONS for n, r in update[sec].items() if r != (record.get(sec) or {}).get(n)]
    if moved:
        stores.meta.update_model_version(model, version, update)
    return moved


def champion_stack(stores: Stores, model: str, alias: str = CHAMPION) -> list[int]:
    """Replay the history: a promotion pushes a version, a rollback pops one."""
    stack: list[int] = []
    for h in stores.meta.alias_history(model):
        if h.get("alias") != alias:
            continue
        if h["action"] == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(int(h["version"]))
    return stack


def promote(
    stores: Stores, model: str, version: int, *, reason: str, actor: str, alias: str = CHAMPION
) -> dict[str, Any]:
    record = stores.meta.get_model_version(model, version)
    if record is None:
        raise RegistryError(f"{model} has no version {version}")
    current = stores.meta.get_alias(model, alias)
    history = {"at": utcnow_iso(), "action": "promote", "previous": current, "reason": reason, "actor": actor}
    if record.get("status") != APPROVED:
        stores.meta.update_model_version(model, version, {"status": APPROVED, "approved_by": actor})
    stores.meta.set_alias(model, alias, version, history)
    if alias == CHAMPION:
        _champion_changed(stores, model, version, history)
    challenger = stores.meta.get_alias_item(model, CHALLENGER) if alias == CHAMPION else None
    if challenger is not None and int(challenger["version"]) == version:  # the challenger won: it is champion now
        withdrawn = {**history, "action": "withdraw", "reason": f"promoted to champion: {reason}"}
        if stores.meta.clear_alias(model, CHALLENGER, version, withdrawn):
            _challenger_changed(stores, model, version, withdrawn)
    return {**history, "alias": alias, "version": version}


def _champion_changed(stores: Stores, model: str, version: int, history: dict[str, Any]) -> None:
    stores.events.publish(
        ChampionChanged(
            id=fact_id(model, "champion", history["at"], history["action"], version),
            model=model,
            version=version,
            previous=history.get("previous"),
            action=history["action"],
            actor=str(history.get("actor") or ""),
            reason=str(history.get("reason") or "")[:500],
            at=history["at"],
        )
    )


def _challenger_changed(stores: Stores, model: str, version: int, history: dict[str, Any]) -> None:
    stores.events.publish(
        ChallengerChanged(
            id=fact_id(model, "challenger", history["at"], history["action"], version),
            model=model,
            version=version,
            action=history["action"],
            percent=history.get("percent"),
            actor=str(history.get("actor") or ""),
            reason=str(history.get("reason") or "")[:500],
            at=history["at"],
        )
    )


def set_challenger(
    stores: Stores, model: str, version: int, *, mode: str, percent: float, reason: str, actor: str
) -> dict[str, Any]:
    """C4: try ``version`` beside the champion — ``canary``: it answers ``percent`` % of traffic (by a stable
    key); ``shadow``: it scores every request, captured beside the champion's answer and never returned."""
    if mode not in (CANARY, SHADOW):
        raise RegistryError(f"a challenger's mode is '{CANARY}' or '{SHADOW}', not '{mode}'")
    if mode == CANARY and not 0 < percent <= 50:
        raise RegistryError(f"a canary takes 0 < percent <= 50 of traffic (got {percent:g}); promote it to give it all")
    record = stores.meta.get_model_version(model, version)
    if record is None:
        raise RegistryError(f"{model} has no version {version}")
    champion = stores.meta.get_alias(model, CHAMPION)
    if champion is None:
        raise RegistryError(f"{model} has no champion to challenge yet")
    if champion == version:
        raise RegistryError(f"v{version} is {model}'s champion already")
    share = percent if mode == CANARY else 0.0
    current = stores.meta.get_alias(model, CHALLENGER)
    now = utcnow()
    history = {
        "at": iso_ms(now),
        "action": mode,
        "previous": current,
        "percent": share,
        "champion": champion,
        "reason": reason,
        "actor": actor,
    }
    # The stint starts now, to the microsecond as captures are stamped: the monitor judges the challenger on the
    # rows captured from here on, in this mode (mlops.monitoring.monitor.compare).
    since = iso_us(now)
    stores.meta.set_alias(model, CHALLENGER, version, history, {"mode": mode, "percent": share, "since": since})
    _challenger_changed(stores, model, version, history)
    return {**history, "alias": CHALLENGER, "version": version, "mode": mode, "since": since}


def withdraw_challenger(stores: Stores, model: str, *, reason: str, actor: str) -> dict[str, Any]:
    """Take the challenger off traffic (by hand, or on its alarm); the champion answers everything again."""
    item = stores.meta.get_alias_item(model, CHALLENGER)
    if item is None:
        raise RegistryError(f"{model} has no challenger")
    version = int(item["version"])
    history = {
        "at": utcnow_iso(),
        "action": "withdraw",
        "previous": version,
        "mode": item.get("mode"),
        "reason": reason,
        "actor": actor,
    }
    if not stores.meta.clear_alias(model, CHALLENGER, version, history):
        raise RegistryError(f"{model}'s challenger changed meanwhile; look again (`mlops models history`)")
    _challenger_changed(stores, model, version, history)
    return {**history, "alias": CHALLENGER, "version": version}


def rollback(stores: Stores, model: str, *, reason: str, actor: str, alias: str = CHAMPION) -> dict[str, Any]:
    stack = champion_stack(stores, model, alias)
    if len(stack) < 2:
        raise RegistryError(f"{model} has no earlier {alias} to roll back to")
    target = stack[-2]
    history = {"at": utcnow_iso(), "action": "rollback", "previous": stack[-1], "reason": reason, "actor": actor}
    stores.meta.set_alias(model, alias, target, history)
    if alias == CHAMPION:
        _champion_changed(stores, model, target, history)
    return {**history, "alias": alias, "version": target}


def served_at(stores: Stores, model: str, when: str | datetime, alias: str = CHAMPION) -> int | None:
    """Which version held ``alias`` at time ``when`` (ISO-8601 or datetime)."""
    at = parse_time(when) if isinstance(when, str) else when
    if at.tzinfo is None:
        raise ValueError(f"{when}: give a time zone (Z or +02:00): the history is kept in UTC")
    version = None
    for h in stores.meta.alias_history(model):
        if h.get("alias") == alias and parse_time(h["at"]) <= at:
            version = int(h["version"])
    return version


def parse_time(text: str) -> datetime:
    """An ISO-8601 time (``2026-11-22T15:00:00Z``, ``…+02:00``, fractional seconds) as an aware datetime."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time, e.g. 2026-11-22T15:00:00Z") from None


def push_schema(
    stores: Stores, model: str, schema: dict[str, Any], source: str, run_id: str | None = None
) -> dict[str, Any]:
    """Store a new schema version — inferred by a run that registers a model, or edited and pinned by a user;
    later runs check against it. A run that fails never becomes the reference."""
    current = stores.meta.latest_schema(model)
    version = (current["version"] + 1) if current else 1
    ref = put_json(
        stores.artifacts, f"{SCHEMAS_PREFIX}{model}/v{version:04d}/schema.json", {**schema, "version": version}
    )
    record = {"schema": ref.as_dict(), "source": source, "run_id": run_id, "created_at": utcnow_iso()}
    stores.meta.put_schema_version(model, version, record)
    return {"version": version, **record}


def champion_statistics(stores: Stores, model: str) -> dict[str, Any] | None:
    """The champion's training statistics (the baseline drift is measured against), or None without a champion."""
    version = stores.meta.get_alias(model, CHAMPION)
    if version is None:
        return None
    record = stores.meta.get_model_version(model, version)
    stats_ref = (record or {}).get("lineage", {}).get("statistics")
    return get_json(stores.artifacts, stats_ref["uri"]) if stats_ref else None
