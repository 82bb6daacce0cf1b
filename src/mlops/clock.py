"""Time helpers; one place so tests and records agree on format."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def utcnow_iso() -> str:
    return utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
