"""Promotion history: rollbacks walk back, and the history answers which version served at time T."""

from __future__ import annotations

import time

import pytest

from mlops.core.clock import utcnow_iso
from mlops.core.errors import RegistryError
from mlops.core.registry import champion_stack, promote, register_version, rollback, served_at

pytestmark = pytest.mark.functional


def _versions(account, n: int) -> None:
    for _ in range(n):
        register_version(account.stores, {"model": "m", "status": "approved", "metrics": {"roc_auc": 0.9}})


def test_given_three_promotions_when_rolled_back_twice_then_history_walks_back(account):
    stores = account.stores
    _versions(account, 3)
    marks = []
    for v in (1, 2, 3):
        promote(stores, "m", v, reason=f"ship v{v}", actor="alice")
        time.sleep(0.005)
        marks.append(utcnow_iso())
        time.sleep(0.005)
    assert stores.meta.get_alias("m", "champion") == 3
    first = rollback(stores, "m", reason="latency regression", actor="bob")
    assert first["version"] == 2 and first["previous"] == 3
    second = rollback(stores, "m", reason="still bad", actor="bob")
    assert second["version"] == 1
    assert stores.meta.get_alias("m", "champion") == 1
    with pytest.raises(RegistryError, match="no earlier champion"):
        rollback(stores, "m", reason="again", actor="bob")
    history = stores.meta.alias_history("m")
    assert [(h["action"], h["version"], h["actor"]) for h in history] == [
        ("promote", 1, "alice"),
        ("promote", 2, "alice"),
        ("promote", 3, "alice"),
        ("rollback", 2, "bob"),
        ("rollback", 1, "bob"),
    ]
    assert [served_at(stores, "m", t) for t in marks] == [1, 2, 3]
    assert served_at(stores, "m", "2000-01-01T00:00:00Z") is None
    assert served_at(stores, "m", utcnow_iso()) == 1
    assert champion_stack(stores, "m") == [1]


def test_given_an_unknown_version_when_promoted_then_it_fails_and_nothing_changes(account):
    _versions(account, 1)
    promote(account.stores, "m", 1, reason="first", actor="ci")
    with pytest.raises(RegistryError, match="no version 7"):
        promote(account.stores, "m", 7, reason="typo", actor="ci")
    assert account.stores.meta.get_alias("m", "champion") == 1


def test_given_a_pending_version_when_promoted_then_it_becomes_approved(account):
    register_version(account.stores, {"model": "m", "status": "pending_approval"})
    promote(account.stores, "m", 1, reason="reviewed", actor="carol")
    assert account.stores.meta.get_model_version("m", 1)["status"] == "approved"


def test_given_promotions_at_fractional_seconds_then_served_at_compares_times_not_strings(account, monkeypatch):
    import mlops.core.registry as registry

    _versions(account, 2)
    for version, at in ((1, "2026-11-22T15:00:00.500Z"), (2, "2026-11-22T16:00:00.000Z")):
        monkeypatch.setattr(registry, "utcnow_iso", lambda at=at: at)
        promote(account.stores, "m", version, reason="ship", actor="alice")
    assert served_at(account.stores, "m", "2026-11-22T15:00:00Z") is None  # half a second before v1
    assert served_at(account.stores, "m", "2026-11-22T15:00:01Z") == 1
    assert served_at(account.stores, "m", "2026-11-22T17:30:00+02:00") == 1  # 15:30 UTC
    assert served_at(account.stores, "m", "2026-11-22T18:00:00+02:00") == 2  # 16:00 UTC, the moment of v2
    with pytest.raises(ValueError, match="not an ISO-8601 time"):
        served_at(account.stores, "m", "yesterday at noon")
    with pytest.raises(ValueError, match="give a time zone"):
        served_at(account.stores, "m", "2026-11-22T15:00:01")
