"""Pool mode (JobQueue ``spec.workers.mode: Pool``): how many worker pods, which slot takes an attempt, and
what a pooled attempt looks like to the state machine. Pure: no client, no clock (``now`` is an input).

The lease of a pooled attempt is its worker pod: while the pod lives and its worker has not reported, the
attempt runs. The state machine (:mod:`jobline.core.lifecycle`) is the same for both modes; a pooled attempt
is shown to it as the :class:`~jobline.core.lifecycle.PodView` of a pod that ran only that attempt
(:func:`attempt_view`): the worker's report is the container's end, a lost worker a disruption.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobline import names

from .lifecycle import Event, PodView
from .models import WorkerPool
from .timefmt import parse


@dataclass(frozen=True)
class WorkerView:
    """What the pool needs to know of one worker pod."""

    name: str
    ready: bool  # running, its worker container started and ready
    deleting: bool = False
    terminal: bool = False  # Succeeded or Failed: it takes nothing any more
    created: datetime | None = None
    busy: int = 0  # attempts assigned to it and not ended
    current: bool = True  # made from the queue's current template

    @property
    def live(self) -> bool:
        return not self.deleting and not self.terminal


def worker_view(pod: Mapping[str, Any], busy: int = 0) -> WorkerView:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    started = any(
        cs.get("name") == names.WORKER_CONTAINER
        and cs.get("ready")
        and (cs.get("state") or {}).get("running")
        for cs in status.get("containerStatuses") or ()
    )
    return WorkerView(
        name=str(meta.get("name", "")),
        ready=phase == "Running" and started and not meta.get("deletionTimestamp"),
        deleting=bool(meta.get("deletionTimestamp")),
        terminal=phase in ("Succeeded", "Failed"),
        created=parse(meta.get("creationTimestamp")),
        busy=busy,
    )


@dataclass
class PoolPlan:
    """What to do with the pool now."""

    desired: int
    create: int = 0
    delete: list[str] = field(default_factory=list)
    wake_at: datetime | None = None  # look again then (an idle worker's scale-down is due)


def desired_workers(pool: WorkerPool, demand: int, concurrency: int | None) -> int:
    """Workers for ``demand`` attempts (running plus runnable), within the queue's concurrency and the
    pool's bounds."""
    want = math.ceil(max(demand, 0) / pool.slots)
    if concurrency is not None:
        want = min(want, math.ceil(concurrency / pool.slots))
    return max(pool.floor, min(pool.ceiling, want))


def plan(
    pool: WorkerPool,
    workers: Sequence[WorkerView],
    *,
    demand: int,
    concurrency: int | None,
    idle_since: Mapping[str, datetime],
    now: datetime,
) -> PoolPlan:
    """Scale the pool toward :func:`desired_workers`. Up at once; down only by workers that have been idle
    for ``scaleDownAfterSeconds`` (never a busy one), those not ready first, then the longest idle. Ended
    worker pods are deleted (their attempts are lost: the state machine retries them)."""
    out = PoolPlan(desired=desired_workers(pool, demand, concurrency))
    live = [w for w in workers if w.live and w.current]
    out.delete = sorted(
        w.name for w in workers if not w.deleting and (w.terminal or (not w.current and w.busy == 0))
    )
    if len(live) < out.desired:
        out.create = out.desired - len(live)
        return out
    surplus = len(live) - out.desired
    if surplus <= 0:
        return out
    grace = timedelta(seconds=pool.idle_seconds)
    idle = [w for w in live if w.busy == 0]
    due: list[tuple[bool, datetime, str]] = []
    for w in idle:
        since = idle_since.get(w.name) or w.created or now
        if now >= since + grace:
            due.append((w.ready, since, w.name))
        elif out.wake_at is None or since + grace < out.wake_at:
            out.wake_at = since + grace
    due.sort()  # not ready first, then the longest idle
    out.delete += [name for _, _, name in due[:surplus]]
    return out


def free_slots(pool: WorkerPool, workers: Sequence[WorkerView]) -> int:
    return sum(max(0, pool.slots - w.busy) for w in workers if w.ready)


def assign(pool: WorkerPool, workers: Sequence[WorkerView], count: int) -> list[str]:
    """Worker pods for ``count`` attempts, one slot each: ready ones with a free slot, the least busy
    first (spreading attempts keeps one slow handler from delaying its pod's others). Fewer when the
    slots run out."""
    busy = {w.name: w.busy for w in workers if w.ready}
    chosen: list[str] = []
    for _ in range(count):
        free = [(n, name) for name, n in busy.items() if n < pool.slots]
        if not free:
            break
        _, name = min(free)
        busy[name] += 1
        chosen.append(name)
    return chosen


def attempt_view(
    record: Mapping[str, Any], status: Mapping[str, Any], worker_pod: Mapping[str, Any] | None
) -> PodView | None:
    """The pooled attempt ``record`` (open, with a ``worker``) as the state machine's pod.

    - the worker reported: a pod whose container exited as reported; a worker that gave the attempt back
      (stopped, or restarted and no longer holding it) is a disruption: retried without using a retry;
    - the assignment was revoked (``status.worker`` cleared: cancel, timeout): no pod (None);
    - the worker pod is gone or ended before reporting: a pod disrupted as ``WorkerLost``;
    - otherwise the attempt runs.
    """
    attempt = int(record.get("attempt") or 0)
    worker = str(record.get("worker") or "")
    started = parse(record.get("startedAt"))
    report = status.get("report") or {}
    if report.get("attempt") == attempt and report.get("worker") == worker:
        code = int(report.get("exitCode") or 0)
        reason = str(report.get("reason") or ("Completed" if code == 0 else "Error"))
        disruption = None
        if reason in (names.WORKER_LOST, "Terminated"):
            # The worker no longer holds it (restarted), or stopped it when its pod went (the drain's
            # deadline): the pod's loss, as when it vanishes; the message says which.
            disruption = names.WORKER_LOST
        return PodView(
            name=worker,
            attempt=attempt,
            phase="Succeeded" if code == 0 and disruption is None else "Failed",
            created=started,
            started=parse(report.get("startedAt")) or started,
            finished=parse(report.get("finishedAt")),
            exit_code=code,
            reason=reason,
            message=report.get("message"),
            pod_reason="DeadlineExceeded" if reason == "Timeout" else None,
            pod_message=report.get("message") if disruption else None,
            disruption=disruption,
        )
    if status.get("worker") != worker:
        return None
    lost = worker_pod is None or (worker_pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    if lost:
        return PodView(
            name=worker,
            attempt=attempt,
            phase="Failed",
            created=started,
            started=started,
            reason=names.WORKER_LOST,
            pod_message=f"worker pod {worker} went away before it reported the attempt",
            disruption=names.WORKER_LOST,
        )
    return PodView(
        name=worker,
        attempt=attempt,
        phase="Running",
        created=started,
        started=started,
        deleting=bool(((worker_pod or {}).get("metadata") or {}).get("deletionTimestamp")),
    )


QUIET_EVENTS = frozenset({"Started", "Succeeded"})
"""Normal Events a pooled attempt does not post: a pool exists to make a job cost a few writes, and these two
would be a third of them; its start and end are in ``status.attemptHistory`` and the metrics. Everything
else (failures, retries, WorkerLost, dead letters, cancellation) is posted as in PodPerAttempt mode."""


def quiet(event: Event) -> bool:
    return event.type == "Normal" and event.reason in QUIET_EVENTS


def settle(status: dict[str, Any], delete_pods: list[str]) -> list[str]:
    """After the state machine decided on a pooled attempt: a worker pod is never deleted for one attempt.
    "Delete the attempt's pod" (cancel, suspend, a timeout) revokes the assignment instead
    (``status.worker`` cleared: the worker's watch stops the attempt), and so does the attempt's end.
    Returns the pods still to delete (none of them a worker)."""
    worker = status.get("worker")
    if not worker:
        return delete_pods
    history = status.get("attemptHistory") or ()
    record = history[-1] if history else {}
    closed = bool(record.get("finishedAt")) or record.get("attempt") != status.get("attempts")
    if closed or worker in delete_pods or status.get("phase") != "Running":
        status["worker"] = None
        if closed:
            status["report"] = None
    return [p for p in delete_pods if p != worker]


__all__ = [
    "QUIET_EVENTS",
    "PoolPlan",
    "WorkerView",
    "assign",
    "attempt_view",
    "desired_workers",
    "free_slots",
    "plan",
    "quiet",
    "settle",
    "worker_view",
]
