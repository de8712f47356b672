"""RFC 3339 timestamps as the Kubernetes API writes them (UTC, ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime


def fmt(t: datetime) -> str:
    """Second precision unless the time has a fraction; always UTC with ``Z``."""
    t = t.astimezone(UTC).replace(tzinfo=None)
    # isoformat, not strftime: the same text at a fifth of the cost (it was 3 % of the operator's CPU)
    return t.isoformat(timespec="microseconds" if t.microsecond else "seconds") + "Z"


def parse(text: object) -> datetime | None:
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)
