"""Free slots, which jobs are duplicates, which finished jobs retention removes. Pure.

Which runnable jobs start next, and in what order, is :mod:`flowcontrol`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def free_slots(concurrency: int | None, active: int, paused: bool) -> int | None:
    """How many attempts may start now (None: no limit)."""
    if paused:
        return 0
    if concurrency is None:
        return None
    return max(0, concurrency - active)


@dataclass(frozen=True)
class Unique:
    name: str
    created: str
    finished: bool
    started: bool  # has run an attempt: it keeps its place even if an older twin appears later


def originals(jobs: Sequence[Unique]) -> dict[str, str]:
    """For jobs sharing one (namespace, queue, uniqueKey): map each duplicate to its original.

    The original is the unfinished job that already started, else the oldest unfinished one
    (creation time, then name) — a deterministic choice every operator replica agrees on.
    """
    unfinished = [j for j in jobs if not j.finished]
    if len(unfinished) < 2:
        return {}
    started = sorted((j for j in unfinished if j.started), key=lambda j: (j.created, j.name))
    original = started[0] if started else min(unfinished, key=lambda j: (j.created, j.name))
    return {j.name: original.name for j in unfinished if j.name != original.name and not j.started}


@dataclass(frozen=True)
class Finished:
    name: str
    phase: str  # Succeeded | Failed | Cancelled | Superseded
    completed: str


def retention_victims(
    finished: Iterable[Finished],
    keep_succeeded: int | None,
    keep_failed: int | None,
    keep_cancelled: int | None = None,
    keep_superseded: int | None = None,
) -> list[str]:
    """Finished jobs beyond the newest ``keep_*`` per final phase, oldest first (None: keep all)."""
    finished = list(finished)
    victims: list[str] = []
    for phase, keep in (
        ("Succeeded", keep_succeeded),
        ("Failed", keep_failed),
        ("Cancelled", keep_cancelled),
        ("Superseded", keep_superseded),
    ):
        if keep is None:
            continue
        done = sorted(
            (f for f in finished if f.phase == phase), key=lambda f: (f.completed, f.name), reverse=True
        )
        victims += [f.name for f in reversed(done[keep:])]
    return victims
