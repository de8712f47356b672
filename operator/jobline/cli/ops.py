"""Operations shared by ``kubectl jobline`` and the dashboard: pure functions over raw objects.

Both front ends compute stats, positions, cleanup selections and requeue values the same way, from
QueuedJob and JobQueue objects as the API returns them (plain dicts).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from jobline.core.dispatch import Candidate
from jobline.core.models import DEFAULT_PRIORITY, DEFAULT_QUEUE, FINISHED_PHASES, PHASES
from jobline.core.timefmt import fmt, parse

COUNT_KEYS: Final = tuple(p.lower() for p in PHASES)  # pending, waiting, running, succeeded, failed, suspended
_DURATION: Final = re.compile(r"([0-9]+)(w|d|h|m|s)")
_UNITS: Final = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``1d12h``, ``30m``, ``45s``, ``2w`` -> timedelta; ValueError otherwise."""
    value = text.strip()
    parts = _DURATION.findall(value)
    if not value or not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r} is not a duration such as 7d, 12h, 1d12h, 30m or 45s")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def phase_of(job: Mapping[str, Any]) -> str:
    """The job's phase; a job the operator has not seen yet counts as Pending."""
    return str((job.get("status") or {}).get("phase") or "Pending")


def queue_of(job: Mapping[str, Any]) -> str:
    return str((job.get("spec") or {}).get("queue") or DEFAULT_QUEUE)


def handler_of(job: Mapping[str, Any]) -> str:
    return str((job.get("spec") or {}).get("handler") or "")


def ns_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


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


def requeue_value(now: datetime) -> str:
    """A fresh value for the ``jobline.dev/requeue`` / ``jobline.dev/trigger`` annotations."""
    return f"{fmt(now)}-{uuid.uuid4().hex[:6]}"


def is_finished(job: Mapping[str, Any]) -> bool:
    return phase_of(job) in FINISHED_PHASES


def is_dead_letter(job: Mapping[str, Any]) -> bool:
    status = job.get("status") or {}
    return phase_of(job) == "Failed" and bool(status.get("deadLettered"))


def finished_at(job: Mapping[str, Any]) -> datetime | None:
    status = job.get("status") or {}
    return parse(status.get("completedAt")) or parse((job.get("metadata") or {}).get("creationTimestamp"))


def cleanup_candidates(jobs: Iterable[Mapping[str, Any]], *, older_than: timedelta, now: datetime,
                       phases: Iterable[str] = ("Succeeded", "Failed"),
                       queue: str | None = None) -> list[Mapping[str, Any]]:
    """Finished jobs (in `phases`) that finished more than `older_than` ago, oldest first."""
    cutoff = now - older_than
    wanted = set(phases)
    picked = []
    for job in jobs:
        if phase_of(job) not in wanted or phase_of(job) not in FINISHED_PHASES:
            continue
        if queue is not None and queue_of(job) != queue:
            continue
        done = finished_at(job)
        if done is not None and done < cutoff:
            picked.append(job)
    return sorted(picked, key=lambda j: (finished_at(j) or now, ns_name(j)))


def priority_of(job: Mapping[str, Any], queue: Mapping[str, Any] | None) -> int:
    value = (job.get("spec") or {}).get("priority")
    if isinstance(value, int):
        return value
    defaults = ((queue or {}).get("spec") or {}).get("defaults") or {}
    queue_default = defaults.get("priority")
    return queue_default if isinstance(queue_default, int) else DEFAULT_PRIORITY


def positions(jobs: Iterable[Mapping[str, Any]],
              queues: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """Place of each Pending job in its queue (1 = next to start), in dispatch order.

    The operator does not write ``status.position`` (see docs/queuedjobs.md); this is the same
    ordering as its dispatcher: priority (higher first), creation time, name.
    """
    per_queue: dict[tuple[str, str], list[Candidate]] = {}
    for job in jobs:
        if phase_of(job) != "Pending":
            continue
        ns, name = ns_name(job)
        qkey = (ns, queue_of(job))
        created = str((job.get("metadata") or {}).get("creationTimestamp") or "")
        per_queue.setdefault(qkey, []).append(Candidate.of(name, priority_of(job, queues.get(qkey)), created))
    out: dict[tuple[str, str], int] = {}
    for (ns, _), candidates in per_queue.items():
        for i, c in enumerate(sorted(candidates), start=1):
            out[(ns, c.name)] = i
    return out


def queue_stats(jobs: Iterable[Mapping[str, Any]], queues: Iterable[Mapping[str, Any]],
                now: datetime) -> list[dict[str, Any]]:
    """One row per (namespace, queue) that has a JobQueue or jobs: counts by phase and queue settings.

    Counted from the jobs themselves (not the JobQueue status, which is written at most every 2 s).
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(ns: str, name: str) -> dict[str, Any]:
        if (ns, name) not in rows:
            rows[(ns, name)] = {"namespace": ns, "queue": name, "exists": False, "paused": False,
                                "concurrency": None, **dict.fromkeys(COUNT_KEYS, 0), "total": 0,
                                "oldestPendingSeconds": None}
        return rows[(ns, name)]

    for queue in queues:
        ns, name = ns_name(queue)
        spec = queue.get("spec") or {}
        r = row(ns, name)
        r.update(exists=True, paused=bool(spec.get("paused")), concurrency=spec.get("concurrency"))
    for job in jobs:
        ns, _ = ns_name(job)
        r = row(ns, queue_of(job))
        phase = phase_of(job)
        r[phase.lower()] = r.get(phase.lower(), 0) + 1
        r["total"] += 1
        if phase == "Pending":
            created = parse((job.get("metadata") or {}).get("creationTimestamp"))
            if created is not None:
                age = max(0, int((now - created).total_seconds()))
                if r["oldestPendingSeconds"] is None or age > r["oldestPendingSeconds"]:
                    r["oldestPendingSeconds"] = age
    return [rows[k] for k in sorted(rows)]


def totals(stats: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Sum of the per-queue counts."""
    out = dict.fromkeys((*COUNT_KEYS, "total"), 0)
    for r in stats:
        for k in out:
            out[k] += int(r.get(k) or 0)
    return out


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


def failure_reason(job: Mapping[str, Any]) -> str | None:
    """Reason of the Failed condition (RetriesExhausted, PermanentError, Duplicate ...)."""
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return str(cond.get("reason") or "") or None
    return None


__all__ = [
    "COUNT_KEYS",
    "age",
    "cleanup_candidates",
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
    "requeue_value",
    "totals",
]
