"""Debounce: in a queue with ``spec.debounce``, the newest unstarted job of a uniqueKey replaces the
older unstarted ones and starts after a quiet spell. Pure.

A burst is the run of jobs of one key since the key's last start (or since a job of the key finished
without starting, e.g. cancelled): the newest job starts ``seconds`` after its creation, but no later
than ``maxWaitSeconds`` after the burst's first job. The older ones end Superseded. A job of the key
that is running keeps the newest one waiting until it finishes, so one key never runs twice at once.

"Newest" is by creation time, then by the revision the operator first saw the job at (creation times
have one-second resolution; a burst of enqueues lands within one second), then by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .models import FINISHED_PHASES

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Twin:
    """One job of the (namespace, queue, uniqueKey), as the debounce needs it."""

    name: str
    created: datetime | None
    revision: int = 0  # status.enqueueRevision, else metadata.resourceVersion
    phase: str | None = None
    started: bool = False  # has run an attempt
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED_PHASES

    @property
    def waiting(self) -> bool:
        return not self.started and not self.finished


@dataclass(frozen=True)
class Decision:
    superseded_by: str | None = None  # a newer unstarted twin replaces this job
    start_at: datetime | None = None  # the end of the quiet spell (None: not debounced)
    behind: str | None = None  # a running twin this job waits for


def _order(t: Twin) -> tuple[datetime, int, str]:
    return (t.created or _EPOCH, t.revision, t.name)


def decide(name: str, twins: Sequence[Twin], seconds: int, max_wait_seconds: int | None) -> Decision:
    """The debounce's verdict on job `name` among `twins` (its key's jobs, itself included)."""
    me = next((t for t in twins if t.name == name), None)
    if me is None or not me.waiting:
        return Decision()
    newest = max((t for t in twins if t.waiting), key=_order)
    if newest.name != name:
        return Decision(superseded_by=newest.name)
    breaks = [t.started_at for t in twins if t.started and t.started_at is not None]
    breaks += [
        t.completed_at
        for t in twins
        if t.finished and not t.started and t.phase != "Superseded" and t.completed_at is not None
    ]
    last_break = max(breaks, default=None)
    burst = [
        t.created
        for t in twins
        if (t.waiting or t.phase == "Superseded")
        and t.created is not None
        and (last_break is None or t.created > last_break)
    ]
    created = me.created or _EPOCH
    start = created + timedelta(seconds=seconds)
    if max_wait_seconds is not None:
        first = min([*burst, created])
        start = min(start, first + timedelta(seconds=max_wait_seconds))
    running = sorted(t.name for t in twins if t.started and not t.finished)
    return Decision(start_at=start, behind=running[0] if running else None)
