"""Who is active among operator replicas: kopf's peering rule, evaluated on the peering object.

kopf pauses its own handlers when another live peer has a higher priority, or the same priority
(then everybody freezes, so replicas must use distinct priorities). Our dispatcher and cron loop
are not kopf handlers, so they apply the same rule to the same data to pause with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .timefmt import parse


def is_active(status: Mapping[str, Any], identity: str, priority: int, now: datetime) -> bool:
    """True when this replica (``identity``) is registered and no live peer blocks it."""
    if identity not in status:
        return False  # kopf has not announced us yet: it is still paused too
    for peer, info in status.items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        seen = parse(info.get("lastseen"))
        lifetime, peer_priority = _number(info.get("lifetime"), 60), _number(info.get("priority"), 0)
        if seen is None or seen + timedelta(seconds=lifetime) <= now:
            continue  # dead peer
        if peer_priority >= priority:
            return False
    return True


def _number(value: Any, default: int) -> int:
    """A peer's number as kopf writes it; a missing or malformed one is kopf's default, so one bad
    entry cannot keep every replica on standby."""
    if isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
