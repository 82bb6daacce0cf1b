"""The one clock: every "now" that decides something (capture stamps, monitor windows, the alarm cooldown, leases,
run and registry records) comes from here, so that records written by different processes agree.

In AWS the clock is the wall clock. Offline, the emulator's clock runs ahead of it by what ``mlops local tick
--advance`` has moved it (the emulated clock): the emulator process, each Lambda execution environment it runs
and a CLI talking to it set that offset here (:func:`set_offset`), and nothing else in the package needs to know.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_offset: Callable[[], float] | None = None


def set_offset(source: float | Callable[[], float] | None) -> None:
    """Run this process's clock ``source`` seconds ahead of the wall clock (a number, or a function asked on every
    reading: the emulator's offset moves while it runs); None: the wall clock. For the emulator's tools and
    execution environments only — in AWS nothing calls it."""
    global _offset
    if source is None or callable(source):
        _offset = source
    else:
        value = float(source)
        _offset = (lambda: value) if value else None


def offset_s() -> float:
    """How far this process's clock runs ahead of the wall clock, in seconds (0 in AWS)."""
    return _offset() if _offset is not None else 0.0


def utcnow() -> datetime:
    if _offset is None:  # in AWS: the wall clock (a stamp on every captured request)
        return datetime.now(UTC)
    return datetime.now(UTC) + timedelta(seconds=_offset())


def now_s() -> float:
    """:func:`utcnow` as seconds since the epoch (leases and cooldowns keep times as numbers)."""
    return utcnow().timestamp()


def iso_ms(when: datetime) -> str:
    """``2026-11-22T14:46:00.123Z``: how records (runs, registry history) write a time."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_us(when: datetime) -> str:
    """``2026-11-22T14:46:00.123456Z``: how captured traffic is stamped (microseconds)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow_iso() -> str:
    return iso_ms(utcnow())


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, unique run id: ``20261122T144600Z-3f9a1c``."""
    now = now or utcnow()
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_period_s(expression: str | None) -> int:
    """The interval of an EventBridge ``rate(…)`` expression in seconds; cron expressions (and none): one hour."""
    m = _RATE.match((expression or "").strip())
    if not m:
        return 3600
    return int(m.group(1)) * _UNIT_S[m.group(2).rstrip("s")]
