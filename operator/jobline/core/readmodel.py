"""The read model: what ``kubectl jobline``, the dashboard, metrics and the JobQueue status read.

Pure functions over QueuedJob and JobQueue objects as the API returns them (plain dicts): the
phase of a job, its queue and priority, per-queue counts, positions in the dispatch order, the
jobs a cleanup or a bulk retry would touch. Every front end counts the same way because they all
count here; the write side (patch bodies) is :mod:`jobline.core.actions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from jobline.core import flowcontrol
from jobline.core.dispatch import Finished
from jobline.core.models import DEFAULT_PRIORITY, DEFAULT_QUEUE, FINISHED_PHASES, PHASES
from jobline.core.timefmt import fmt, parse

Key = tuple[str, str]  # (namespace, name)
Obj = Mapping[str, Any]  # a raw API object

COUNT_KEYS: Final = tuple(
    p.lower() for p in PHASES
)  # pending, waiting, running, succeeded, failed, suspended
_DURATION: Final = re.compile(r"([0-9]+)(w|d|h|m|s)")
_UNITS: Final = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


# --- parsing user input ----------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``1d12h``, ``30m``, ``45s``, ``2w`` -> timedelta; ValueError otherwise."""
    value = text.strip()
    parts = _DURATION.findall(value)
    if not value or not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r} is not a duration such as 7d, 12h, 1d12h, 30m or 45s")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def normalize_phases(values: Iterable[str]) -> list[str]:
    """Phase names given by a user (any case, comma lists) -> the canonical names; ValueError if unknown."""
    canonical = {p.lower(): p for p in PHASES}
    canonical["completed"] = "Succeeded"  # the old dashboard's word
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            word = part.strip().lower()
            if not word:
                continue
            if word not in canonical:
                raise ValueError(f"unknown phase {part.strip()!r}: one of {', '.join(PHASES)}")
            if canonical[word] not in out:
                out.append(canonical[word])
    return out


# --- one object ------------------------------------------------------------------------------


def ns_name(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def phase_of(job: Obj) -> str:
    """The job's phase; a job the operator has not seen yet counts as Pending."""
    return str((job.get("status") or {}).get("phase") or "Pending")


def queue_of(job: Obj) -> str:
    return str((job.get("spec") or {}).get("queue") or DEFAULT_QUEUE)


def handler_of(job: Obj) -> str:
    return str((job.get("spec") or {}).get("handler") or "")


def created_at(obj: Obj) -> datetime | None:
    return parse((obj.get("metadata") or {}).get("creationTimestamp"))


def is_finished(job: Obj) -> bool:
    return phase_of(job) in FINISHED_PHASES


def is_dead_letter(job: Obj) -> bool:
    status = job.get("status") or {}
    return phase_of(job) == "Failed" and bool(status.get("deadLettered"))


def finished_at(job: Obj) -> datetime | None:
    """``status.completedAt``, else the creation time (a job finished before it was ever started)."""
    return parse((job.get("status") or {}).get("completedAt")) or created_at(job)


def priority_of(job: Obj, queue: Obj | None) -> int:
    """The job's priority, else its JobQueue's default, else the built-in default."""
    value = (job.get("spec") or {}).get("priority")
    if isinstance(value, int):
        return value
    defaults = ((queue or {}).get("spec") or {}).get("defaults") or {}
    queue_default = defaults.get("priority")
    return queue_default if isinstance(queue_default, int) else DEFAULT_PRIORITY


def effective_priority(job: Obj, queues: Mapping[Key, Obj]) -> int:
    """:func:`priority_of` with the job's JobQueue looked up in `queues` ((namespace, name) -> JobQueue)."""
    return priority_of(job, queues.get((ns_name(job)[0], queue_of(job))))


def failure_reason(job: Obj) -> str | None:
    """Reason of the Failed condition (RetriesExhausted, PermanentError, Duplicate ...)."""
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return str(cond.get("reason") or "") or None
    return None


def age(since: datetime | None, now: datetime) -> str:
    """kubectl-style age: 45s, 12m, 3h, 2d (``<unknown>`` without a time)."""
    if since is None:
        return "<unknown>"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


# --- selections ------------------------------------------------------------------------------


def cleanup_candidates(
    jobs: Iterable[Obj],
    *,
    older_than: timedelta,
    now: datetime,
    phases: Iterable[str] = FINISHED_PHASES,
    queue: str | None = None,
) -> list[Obj]:
    """Finished jobs (in `phases`) that finished more than `older_than` ago, oldest first."""
    cutoff = now - older_than
    wanted = set(phases) & FINISHED_PHASES
    picked = []
    for job in jobs:
        if phase_of(job) not in wanted or (queue is not None and queue_of(job) != queue):
            continue
        done = finished_at(job)
        if done is not None and done < cutoff:
            picked.append(job)
    return sorted(picked, key=lambda j: (finished_at(j) or now, ns_name(j)))


def dead_letters(jobs: Iterable[Obj], queue: str | None = None) -> list[Obj]:
    """The dead-lettered jobs (Failed, retries exhausted), of `queue` only when given."""
    return [j for j in jobs if is_dead_letter(j) and (queue is None or queue_of(j) == queue)]


def positions(jobs: Iterable[Obj], queues: Mapping[Key, Obj]) -> dict[Key, int]:
    """Place of each Pending job in its queue (1 = next to start), in dispatch order.

    The operator does not write ``status.position`` (see docs/queuedjobs.md); this is its
    dispatcher's ordering (:func:`flowcontrol.order`): priority (higher first), then the queue's
    fairness (FIFO: creation time, name; RoundRobin: concurrency keys take turns, counting their
    running jobs). `queues` maps (namespace, queue name) to the JobQueue, for default priorities
    and the fairness.
    """
    per_queue: dict[Key, list[flowcontrol.Candidate]] = {}
    running: dict[Key, dict[str, int]] = {}
    for job in jobs:
        phase = phase_of(job)
        if phase not in ("Pending", "Running"):
            continue
        ns, name = ns_name(job)
        qkey = (ns, queue_of(job))
        key = (job.get("spec") or {}).get("concurrencyKey") or flowcontrol.NO_KEY
        if phase == "Running":
            by_key = running.setdefault(qkey, {})
            by_key[key] = by_key.get(key, 0) + 1
            continue
        created = str((job.get("metadata") or {}).get("creationTimestamp") or "")
        candidate = flowcontrol.Candidate(name, priority_of(job, queues.get(qkey)), created, key)
        per_queue.setdefault(qkey, []).append(candidate)
    out: dict[Key, int] = {}
    for qkey, candidates in per_queue.items():
        fairness = ((queues.get(qkey) or {}).get("spec") or {}).get("fairness")
        limits = flowcontrol.Limits(
            fairness="RoundRobin" if fairness == "RoundRobin" else "FIFO", active_by_key=running.get(qkey, {})
        )
        for i, c in enumerate(flowcontrol.order(candidates, limits), start=1):
            out[(qkey[0], c.name)] = i
    return out


# --- counts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSummary:
    """What a set of jobs (usually one queue's) amounts to; made by :func:`queue_summary`.

    - ``counts``: jobs per phase under the JobQueue status keys (:data:`COUNT_KEYS`: pending,
      waiting, running, succeeded, failed, suspended), every key present, 0 included;
    - ``total``: every job, whatever its phase;
    - ``oldest_pending``: creation time of the oldest Pending job (None: no Pending job);
    - ``oldest_pending_seconds``: its age at `now`, never negative (None: no Pending job);
    - ``last_completion``: the newest ``completedAt`` of a Succeeded or Failed job (None: none);
    - ``finished``: the Succeeded and Failed jobs, for :func:`jobline.core.dispatch.retention_victims`.
    """

    counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(dict.fromkeys(COUNT_KEYS, 0)))
    total: int = 0
    oldest_pending: datetime | None = None
    oldest_pending_seconds: int | None = None
    last_completion: datetime | None = None
    finished: tuple[Finished, ...] = ()

    def status_fields(self) -> dict[str, Any]:
        """The JobQueue status fields this summary decides, as the controller writes them.

        The six counts, ``oldestPendingSeconds`` (0 without a Pending job) and
        ``lastCompletionTime`` (RFC 3339, None without a finished job).
        """
        return {
            **self.counts,
            "oldestPendingSeconds": self.oldest_pending_seconds or 0,
            "lastCompletionTime": fmt(self.last_completion) if self.last_completion else None,
        }


def queue_summary(jobs: Iterable[Obj], now: datetime) -> QueueSummary:
    """Count `jobs` (raw QueuedJobs, typically one queue's) by phase; see :class:`QueueSummary`.

    A job without a phase counts as Pending; a phase outside :data:`PHASES` counts in ``total`` only.
    """
    counts = dict.fromkeys(COUNT_KEYS, 0)
    total = 0
    oldest: datetime | None = None
    last_done: datetime | None = None
    finished: list[Finished] = []
    for job in jobs:
        total += 1
        phase = phase_of(job)
        if phase.lower() in counts:
            counts[phase.lower()] += 1
        if phase == "Pending":
            created = created_at(job)
            if created is not None and (oldest is None or created < oldest):
                oldest = created
        elif phase in FINISHED_PHASES:
            completed = (job.get("status") or {}).get("completedAt")
            done = parse(completed)
            if done is not None and (last_done is None or done > last_done):
                last_done = done
            finished.append(Finished(ns_name(job)[1], phase, str(completed or "")))
    return QueueSummary(
        counts=MappingProxyType(counts),
        total=total,
        oldest_pending=oldest,
        oldest_pending_seconds=None if oldest is None else max(0, int((now - oldest).total_seconds())),
        last_completion=last_done,
        finished=tuple(finished),
    )


def by_queue(jobs: Iterable[Obj]) -> dict[Key, list[Obj]]:
    """Jobs grouped by (namespace, queue name)."""
    out: dict[Key, list[Obj]] = {}
    for job in jobs:
        out.setdefault((ns_name(job)[0], queue_of(job)), []).append(job)
    return out


def queue_summaries(jobs: Iterable[Obj], now: datetime) -> dict[Key, QueueSummary]:
    """One :class:`QueueSummary` per (namespace, queue name) that has jobs, sorted by that key."""
    return {key: queue_summary(held, now) for key, held in sorted(by_queue(jobs).items())}


def queue_stats(jobs: Iterable[Obj], queues: Iterable[Obj], now: datetime) -> list[dict[str, Any]]:
    """One row per (namespace, queue) that has a JobQueue or jobs: counts by phase and queue settings.

    Counted from the jobs themselves (not the JobQueue status, which is written at most every 2 s).
    Keys: namespace, queue, exists (a JobQueue object exists), paused, concurrency, the six
    :data:`COUNT_KEYS`, total, oldestPendingSeconds (None without a Pending job).
    """
    settings = {ns_name(q): q.get("spec") or {} for q in queues}
    summaries = queue_summaries(jobs, now)
    rows = []
    for ns, name in sorted(set(settings) | set(summaries)):
        spec = settings.get((ns, name))
        summary = summaries.get((ns, name)) or QueueSummary()
        rows.append(
            {
                "namespace": ns,
                "queue": name,
                "exists": spec is not None,
                "paused": bool((spec or {}).get("paused")),
                "concurrency": (spec or {}).get("concurrency"),
                **summary.counts,
                "total": summary.total,
                "oldestPendingSeconds": summary.oldest_pending_seconds,
            }
        )
    return rows


def totals(stats: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Sum of the per-queue counts (rows of :func:`queue_stats`)."""
    out = dict.fromkeys((*COUNT_KEYS, "total"), 0)
    for r in stats:
        for k in out:
            out[k] += int(r.get(k) or 0)
    return out


__all__ = [
    "COUNT_KEYS",
    "Key",
    "QueueSummary",
    "age",
    "by_queue",
    "cleanup_candidates",
    "created_at",
    "dead_letters",
    "effective_priority",
    "failure_reason",
    "finished_at",
    "handler_of",
    "is_dead_letter",
    "is_finished",
    "normalize_phases",
    "ns_name",
    "parse_duration",
    "phase_of",
    "positions",
    "priority_of",
    "queue_of",
    "queue_stats",
    "queue_summaries",
    "queue_summary",
    "totals",
]
