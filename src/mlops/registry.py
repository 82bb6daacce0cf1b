"""B6: model versions, aliases and the append-only promotion history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops.clock import utcnow_iso
from mlops.constants import CHAMPION
from mlops.context import Stores
from mlops.errors import RegistryError

APPROVED, PENDING = "approved", "pending_approval"


def register_version(stores: Stores, record: dict[str, Any]) -> dict[str, Any]:
    version = stores.meta.next_counter(record["model"], "version")
    full = {**record, "version": version, "created_at": utcnow_iso()}
    stores.meta.put_model_version(full)
    return full


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
    return {**history, "alias": alias, "version": version}


def rollback(stores: Stores, model: str, *, reason: str, actor: str, alias: str = CHAMPION) -> dict[str, Any]:
    stack = champion_stack(stores, model, alias)
    if len(stack) < 2:
        raise RegistryError(f"{model} has no earlier {alias} to roll back to")
    target = stack[-2]
    history = {"at": utcnow_iso(), "action": "rollback", "previous": stack[-1], "reason": reason, "actor": actor}
    stores.meta.set_alias(model, alias, target, history)
    return {**history, "alias": alias, "version": target}


def served_at(stores: Stores, model: str, when: str | datetime, alias: str = CHAMPION) -> int | None:
    """Which version held ``alias`` at time ``when`` (ISO-8601 or datetime)."""
    at = when if isinstance(when, str) else when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    version = None
    for h in stores.meta.alias_history(model):
        if h.get("alias") == alias and h["at"] <= at:
            version = int(h["version"])
    return version
