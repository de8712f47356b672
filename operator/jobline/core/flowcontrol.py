"""A queue's flow control: which runnable jobs start now, and why each of the others waits. Pure.

Order of evaluation (docs/queuedjobs.md): the candidates are ordered by **priority** (higher first),
then by **fairness** at equal priority (FIFO: oldest first; RoundRobin: concurrency keys take turns,
the key with the fewest running jobs, then the least recently served one, first), then walked in that order. A job whose key is at
``concurrencyPerKey`` waits as ``KeyConcurrencyLimit`` and the walk goes on (other keys may still
start); once the queue's ``concurrency`` is used up the rest wait as ``ConcurrencyLimit``; once the
**rate limit**'s tokens are used up, as ``RateLimited``. A paused queue starts nothing
(``QueuePaused``).

The rate limit is a token bucket that is **rebuilt from the recent attempt starts** on every decision,
not kept as state: it is assumed empty ``4 * burst / rate`` seconds ago and refilled and drained from
there (an idle queue has a full bucket; the estimate equals the true bucket once the queue was quiet
for one fill time within that window). The estimate never exceeds the true bucket, so neither
an operator restart nor a second replica can grant a burst beyond the limit.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

REASON_QUEUE_PAUSED: Final = "QueuePaused"
REASON_KEY_LIMIT: Final = "KeyConcurrencyLimit"
REASON_CONCURRENCY: Final = "ConcurrencyLimit"
REASON_RATE_LIMITED: Final = "RateLimited"
FLOW_REASONS: Final = frozenset(
    {REASON_QUEUE_PAUSED, REASON_KEY_LIMIT, REASON_CONCURRENCY, REASON_RATE_LIMITED}
)
"""The waiting reasons the dispatcher owns (the job's plan keeps them, the dispatcher changes them)."""

NO_KEY: Final = ""
_HALF_MICROSECOND: Final = 0.5e-6
REPLAY_FILLS: Final = 4
"""Jobs without a concurrencyKey form one group."""


@dataclass(frozen=True)
class Bucket:
    """A token bucket: ``rate`` tokens a second, holding at most ``burst``."""

    rate: float
    burst: int

    @classmethod
    def of(cls, starts: int, period_seconds: float, burst: int | None) -> Bucket:
        return cls(starts / period_seconds, burst if burst is not None else starts)

    @property
    def window(self) -> timedelta:
        """How far back the bucket is rebuilt from: four times the time an empty bucket takes to fill.

        The bucket is assumed empty there, so the estimate is at most the true level, and it is
        exact once the queue was quiet for about one fill time inside the window (the true bucket
        was full then, and the estimate has caught up with it)."""
        return timedelta(seconds=REPLAY_FILLS * self.burst / self.rate)


@dataclass(frozen=True)
class Tokens:
    """Whole tokens available now; when none, ``next_at`` is when the next one is."""

    available: int
    next_at: datetime | None


def tokens(bucket: Bucket, starts: Iterable[datetime], now: datetime) -> Tokens:
    """Tokens left at ``now`` given the attempt ``starts`` (any order; older ones are ignored)."""
    begin = now - bucket.window
    level, last = 0.0, begin
    for t in sorted(s for s in starts if begin < s <= now):
        level = min(float(bucket.burst), level + bucket.rate * (t - last).total_seconds()) - 1
        last = t
    level = min(float(bucket.burst), level + bucket.rate * (now - last).total_seconds())
    # Instants are whole microseconds (the window is rounded to one): read the level half a
    # microsecond late, so that an idle bucket is full and a token due at an instant is there.
    effective = level + bucket.rate * _HALF_MICROSECOND
    if effective >= 1:
        return Tokens(min(bucket.burst, math.floor(effective)), None)
    wait_us = math.ceil((1 - level) / bucket.rate * 1_000_000 - 1e-3)
    return Tokens(0, now + timedelta(microseconds=wait_us))


@dataclass(frozen=True)
class Candidate:
    """A runnable job as flow control sees it."""

    name: str
    priority: int
    created: str  # RFC 3339 in UTC sorts as text
    key: str = NO_KEY


Fairness = Literal["FIFO", "RoundRobin"]


@dataclass(frozen=True)
class Limits:
    """A queue's limits and what runs now."""

    paused: bool = False
    concurrency: int | None = None
    active: int = 0
    per_key: int | None = None
    active_by_key: Mapping[str, int] = field(default_factory=dict)
    fairness: Fairness = "FIFO"
    tokens: int | None = None  # None: no rate limit
    last_start_by_key: Mapping[str, datetime] = field(default_factory=dict)
    """When each key last started an attempt: RoundRobin serves the least recently served key first."""


@dataclass(frozen=True)
class Decision:
    """Jobs to start now, in order, and the reason each other candidate waits."""

    start: tuple[str, ...]
    waiting: Mapping[str, str]


_Rank = tuple[int, int, datetime, str, str, Candidate]
_NEVER: Final = datetime.min.replace(tzinfo=UTC)


def _rank(candidates: Sequence[Candidate], limits: Limits) -> list[_Rank]:
    """Sort keys of the dispatch order: priority, then fairness (see the module docstring).

    RoundRobin: a key's n-th waiting job (counting its running ones first) goes in round n; within a
    round the least recently served key goes first, then the oldest job.
    """
    if limits.fairness == "FIFO":
        return [(-c.priority, 0, _NEVER, c.created, c.name, c) for c in candidates]
    groups: dict[tuple[int, str], list[Candidate]] = defaultdict(list)
    for c in candidates:
        groups[(c.priority, c.key)].append(c)
    ranked: list[_Rank] = []
    for (priority, key), group in groups.items():
        group.sort(key=lambda c: (c.created, c.name))
        running = limits.active_by_key.get(key, 0)
        served = limits.last_start_by_key.get(key, _NEVER)
        ranked += [(-priority, running + i, served, c.created, c.name, c) for i, c in enumerate(group)]
    return ranked


def order(candidates: Sequence[Candidate], limits: Limits) -> list[Candidate]:
    """All candidates in dispatch order."""
    return [r[5] for r in sorted(_rank(candidates, limits), key=lambda r: r[:5])]


def decide(candidates: Sequence[Candidate], limits: Limits, *, reasons: bool = False) -> Decision:
    """Which candidates start now and, with ``reasons``, why each other one waits.

    Without ``reasons`` (the hot path) a FIFO queue without a per-key limit selects only the next few
    (O(n log k)); otherwise the walk pops a heap until the starts are used up (O(n + k log n)).
    """
    if limits.paused:
        return Decision((), {c.name: REASON_QUEUE_PAUSED for c in candidates} if reasons else {})
    slots = None if limits.concurrency is None else max(0, limits.concurrency - limits.active)
    budget = limits.tokens
    room = min(x for x in (slots, budget, len(candidates)) if x is not None)
    ranked = _rank(candidates, limits)
    running = dict(limits.active_by_key)
    start: list[Candidate] = []
    if limits.per_key is None:
        start = [r[5] for r in heapq.nsmallest(room, ranked, key=lambda r: r[:5])]
    else:
        heap = [(r[:5], i) for i, r in enumerate(ranked)]
        heapq.heapify(heap)
        while heap and len(start) < room:
            _, i = heapq.heappop(heap)
            c = ranked[i][5]
            if running.get(c.key, 0) < limits.per_key:
                start.append(c)
                running[c.key] = running.get(c.key, 0) + 1
    waiting: dict[str, str] = {}
    if reasons:
        started = {c.name for c in start}
        stopped_by = REASON_CONCURRENCY if slots is not None and len(start) >= slots else REASON_RATE_LIMITED
        for c in candidates:
            if c.name in started:
                continue
            if limits.per_key is not None and running.get(c.key, 0) >= limits.per_key:
                waiting[c.name] = REASON_KEY_LIMIT
            else:
                waiting[c.name] = stopped_by
    return Decision(tuple(c.name for c in start), waiting)
