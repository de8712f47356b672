"""The schedule loop: one task that fires every JobSchedule (no task or timer per schedule).

The JobSchedule watch (``handlers/jobschedule.py``) feeds the schedules; their jobs are read from
the controller's store (:class:`jobline.controller.store.Store`, one view of QueuedJobs for both
loops), whose listener marks a schedule dirty when one of its jobs appears, changes phase or goes.
A heap holds each schedule's next wake-up time. The loop skeleton is :class:`.base.Loop`.
The loop sleeps until the earliest one (or until a watch event marks a schedule dirty), asks the
pure planner (:mod:`jobline.core.schedule_state`) what to do and applies it:

1. delete the jobs a ``Replace`` run replaces;
2. create the runs' QueuedJobs: names are derived from the schedule and the instant (or the
   trigger value), so a 409 Conflict means "already created" (by a replica or before a restart);
3. write the status, guarded by the resourceVersion planned from: if another writer came first
   (409), read the schedule again and plan again, so a run is counted once;
4. delete finished jobs beyond the history limits, then post the Events.

A step does 1-2 for all its schedules before 3-4 for any: when many schedules fire in the same
second, every run is created before the first status is written.

``activate``/``deactivate`` are the HA switch: on standby nothing is planned or written, the
view is still kept current.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar

from jobline import names
from jobline.core import schedule_state
from jobline.core.timefmt import now as utcnow
from jobline.kube import Kube, KubeError, collection_path, resource_version, with_kind

from .base import Loop
from .store import Key, Store, key_of, slim

_T = TypeVar("_T")

RETRY_SECONDS = 5.0  # after a failed API call
CONFLICT_RETRY_SECONDS = 0.2  # after a 409 on the status: plan again with the fresh object
WAKE_SLACK_SECONDS = 0.002  # sleep a hair past the fire time, so the planner sees it due
MAX_PARALLEL = 32  # schedules reconciled at once in one step (their API calls mostly wait)


def _phase(obj: dict[str, Any] | None) -> Any:
    return ((obj or {}).get("status") or {}).get("phase")


class JobFeed(Protocol):
    """Who keeps the QueuedJobs: the controller (its store, fed by the QueuedJob watch)."""

    store: Store

    def on_job(self, event: str | None, obj: dict[str, Any]) -> None: ...


class _OwnJobs:
    """The schedule loop alone (tests, benchmarks of the loop): a store of its own, fed by ``on_job``."""

    def __init__(self) -> None:
        self.store = Store()

    def on_job(self, event: str | None, obj: dict[str, Any]) -> None:
        if event == "DELETED":
            self.store.drop_job(key_of(obj))
        else:
            self.store.put_job(obj)


class _Planned(NamedTuple):
    """A schedule whose runs are created and whose status is still to be written."""

    key: Key
    obj: dict[str, Any]  # the version planned from
    plan: schedule_state.Plan


class ScheduleLoop(Loop):
    name = "schedules"

    def __init__(
        self,
        kube: Kube,
        namespaces: list[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        jobs: JobFeed | None = None,
    ) -> None:
        super().__init__(kube, namespaces, clock)
        self._own_jobs = jobs is None  # then this loop lists the jobs of its schedules itself
        self.jobs: JobFeed = jobs if jobs is not None else _OwnJobs()
        self.store = self.jobs.store
        self.store.listen(self._job_changed)
        self.store.when_synced(self.wakeup.set)
        self.schedules: dict[Key, dict[str, Any]] = {}
        self.by_uid: dict[str, Key] = {}  # schedule uid -> key
        self.due: dict[Key, datetime] = {}  # schedule -> when to plan it next
        self.heap: list[tuple[datetime, Key]] = []  # (time, schedule); stale entries skipped
        self.dirty: set[Key] = set()
        self._events: list[tuple[dict[str, Any], schedule_state.Event]] = []  # posted after each step
        self._last_error: dict[Key, str] = {}
        self.stats: dict[str, float] = {"fired": 0, "triggered": 0, "conflicts": 0, "max_lateness": 0.0}

    # ------------------------------------------------------------------ feeding
    def on_schedule(self, event: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event == "DELETED":
            old = self.schedules.pop(key, None)
            uid = ((old or obj).get("metadata") or {}).get("uid")
            if uid and self.by_uid.get(uid) == key:
                del self.by_uid[uid]
            self.due.pop(key, None)
            self.dirty.discard(key)
            self._last_error.pop(key, None)
            return
        if self._put_schedule(obj):
            self.dirty.add(key)
            self.wakeup.set()

    def _put_schedule(self, obj: dict[str, Any]) -> bool:
        """Keep the newer version; True when it changed."""
        key = key_of(obj)
        old = self.schedules.get(key)
        if old is not None and resource_version(old) >= resource_version(obj) and resource_version(obj):
            return False
        with_kind(obj, names.KIND_JOBSCHEDULE)
        old_uid = ((old or {}).get("metadata") or {}).get("uid")
        uid = (obj.get("metadata") or {}).get("uid")
        if old_uid and old_uid != uid and self.by_uid.get(old_uid) == key:
            del self.by_uid[old_uid]  # deleted and created again under the same name
        self.schedules[key] = slim(obj)
        if uid:
            self.by_uid[uid] = key
        return True

    def on_job(self, event: str | None, obj: dict[str, Any]) -> None:
        """A QueuedJob event, for a loop that keeps its own jobs (with the controller's store, the
        controller is fed and the store's listener tells this loop)."""
        if self._own_jobs:
            self.jobs.on_job(event, obj)

    def _job_changed(self, key: Key, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """The store's listener: a schedule looks again when one of its jobs appears, goes or changes phase."""
        uid = schedule_state.owner_uid(new or old or {})
        if uid is None:
            return
        skey = self.by_uid.get(uid)
        if skey is not None and (old is None or new is None or _phase(old) != _phase(new)):
            self.dirty.add(skey)
            self.wakeup.set()

    # --------------------------------------------------------------------- sync
    async def sync(self) -> bool:
        """List schedules (and, alone, their jobs), so no plan is made on a partial view. Also after a
        standby: objects the list no longer has (and no watch event brought back since) are forgotten.
        With the controller's store, wait until the controller has listed the jobs."""
        for ns in self.scopes():
            schedules, rv = await self.kube.list_with_version(
                collection_path(names.PLURAL_JOBSCHEDULES, ns), kind=names.KIND_JOBSCHEDULE
            )
            for obj in schedules:
                self._put_schedule(obj)
            listed = {key_of(o) for o in schedules}
            for key, obj in list(self.schedules.items()):
                if (ns is None or key[0] == ns) and key not in listed and resource_version(obj) <= rv:
                    self.on_schedule("DELETED", obj)
            if self._own_jobs:
                jobs, rv = await self.kube.list_with_version(
                    collection_path(names.PLURAL_QUEUEDJOBS, ns),
                    names.LABEL_SCHEDULE,
                    kind=names.KIND_QUEUEDJOB,
                )
                for job in jobs:
                    self.store.put_job(job)
                for gone in self.store.stale_jobs(jobs, rv, ns, owned=True):
                    self.store.drop_job(key_of(gone))
        if self._own_jobs:
            self.store.mark_synced()
        elif not self.store.synced:
            return False
        self.dirty.update(self.schedules)
        self.log.info(
            "schedules synced: %d schedules, %d jobs",
            len(self.schedules),
            sum(len(j) for j in self.store.by_owner.values()),
        )
        self.wakeup.set()
        return True

    def activate(self) -> None:
        if self._own_jobs:
            self.store.synced = False
        super().activate()

    # --------------------------------------------------------------------- loop
    def next_timeout(self) -> float | None:
        while self.heap and self.due.get(self.heap[0][1]) != self.heap[0][0]:
            heapq.heappop(self.heap)  # superseded
        if not self.heap:
            return None
        return max(0.0, (self.heap[0][0] - self.clock()).total_seconds() + WAKE_SLACK_SECONDS)

    def wake(self, key: Key, at: datetime) -> None:
        """Plan ``key`` again at ``at`` (replaces its earlier wake-up time)."""
        if self.due.get(key) == at:
            return
        self.due[key] = at
        heapq.heappush(self.heap, (at, key))

    def retry_later(self, key: Key, seconds: float) -> None:
        self.wake(key, self.clock() + timedelta(seconds=seconds))

    async def step(self) -> None:
        # Every schedule of this step is planned as of its start: a schedule that waits for a free
        # slot behind many others that fire in the same second is not made late by the wait.
        now = self.clock()
        firing: set[Key] = set()
        while self.heap and self.heap[0][0] <= now:
            at, key = heapq.heappop(self.heap)
            if self.due.get(key) == at:
                del self.due[key]
                firing.add(key)
        keys, self.dirty = self.dirty | firing, set()
        if not keys:
            return
        limit = asyncio.Semaphore(MAX_PARALLEL)
        planned: dict[Key, _Planned] = {}

        async def create(key: Key) -> None:
            async with limit:
                done = await self._safely(key, self._create_runs(key, now))
                if done is not None:
                    planned[key] = done

        async def finish(key: Key) -> None:
            async with limit:
                await self._safely(key, self._finish(planned[key]))

        # Runs that are due now first, all runs before any status; Events after the step.
        await asyncio.gather(*(create(key) for key in sorted(keys, key=lambda k: k not in firing)))
        await asyncio.gather(*(finish(key) for key in sorted(planned, key=lambda k: k not in firing)))
        self._flush_events()

    async def _safely(self, key: Key, work: Awaitable[_T]) -> _T | None:
        """Run one schedule's work; an error re-plans the schedule later (None is returned)."""
        try:
            return await work
        except KubeError as exc:
            if exc.conflict:
                self.stats["conflicts"] += 1
                self.log.info("schedule %s/%s changed meanwhile (%s); planning again", *key, exc.message)
                try:
                    await self._refresh(key)
                except KubeError as again:
                    self.failed("schedule", key, again, RETRY_SECONDS)
                    return None
                self.retry_later(key, CONFLICT_RETRY_SECONDS)
            elif not (exc.not_found and key not in self.schedules):
                self.failed("schedule", key, exc, RETRY_SECONDS)
                self._report_error(key, f"API error: {exc}")
        except Exception as exc:
            self.failed("schedule", key, exc, RETRY_SECONDS)
            self._report_error(key, f"internal error: {exc}")
        return None

    def _report_error(self, key: Key, message: str) -> None:
        """A Warning Event, once per distinct error (the log has every one)."""
        if self._last_error.get(key) != message and key in self.schedules:
            self._last_error[key] = message
            self._queue_event(self.schedules[key], schedule_state.Event("Warning", "ReconcileError", message))

    async def _refresh(self, key: Key) -> None:
        ns, name = key
        try:
            obj = await self.kube.get_object(names.PLURAL_JOBSCHEDULES, ns, name)
        except KubeError as exc:
            if exc.not_found:
                self.on_schedule("DELETED", {"metadata": {"namespace": ns, "name": name}})
                return
            raise
        self._put_schedule(obj)

    # ---------------------------------------------------------------- reconcile
    async def _create_runs(self, key: Key, now: datetime) -> _Planned | None:
        """Phases 1-2: plan, delete what ``Replace`` replaces, create the runs."""
        obj = self.schedules.get(key)
        if obj is None:
            return None
        meta = obj["metadata"]
        plan = schedule_state.plan(obj, self.store.jobs_of_schedule(meta.get("uid", "")), now)
        ns = key[0]

        # 1. Replace: the active runs go first.
        for job in plan.stop:
            await self.kube.delete_object(names.PLURAL_QUEUEDJOBS, ns, job.name, job.uid or None)
        # 2. The runs. A 409 is a run created before (a restart) or by a replica: not created twice.
        for run in plan.runs:
            if run.exists:
                continue
            body = schedule_state.build_job(obj, run)
            try:
                job = await self.kube.create_object(names.PLURAL_QUEUEDJOBS, ns, body)
            except KubeError as exc:
                if not exc.conflict:
                    raise
                self.log.info(
                    "run %s/%s exists already (created by a replica or before a restart)", ns, run.name
                )
                with contextlib.suppress(KubeError):
                    job = await self.kube.get_object(names.PLURAL_QUEUEDJOBS, ns, run.name)
                    self.jobs.on_job(None, with_kind(job, names.KIND_QUEUEDJOB))
                continue
            created_at = self.clock()
            self.jobs.on_job(None, with_kind(job, names.KIND_QUEUEDJOB))
            if run.nominal is None:
                self.stats["triggered"] += 1
                self.log.info(
                    "triggered %s/%s: created %s (trigger %r)", ns, meta.get("name"), run.name, run.trigger
                )
            else:
                late = run.late_by(created_at)
                self.stats["fired"] += 1
                self.stats["max_lateness"] = max(self.stats["max_lateness"], late)
                self.log.info(
                    "fired %s/%s: created %s for %s, %.3fs late",
                    ns,
                    meta.get("name"),
                    run.name,
                    run.nominal.isoformat(),
                    late,
                )
            self._queue_event(obj, run.event(created_at))
        return _Planned(key, obj, plan)

    async def _finish(self, planned: _Planned) -> None:
        """Phases 3-4: the status, only over the version planned from (a 409 re-plans: counted once),
        then the history limits and the Events."""
        key, obj, plan = planned
        ns, meta = key[0], obj["metadata"]
        old = obj.get("status") or {}
        patch = {k: v for k, v in plan.status.items() if old.get(k) != v}
        patch.update({k: None for k in old if k not in plan.status})
        if patch:
            updated = await self.kube.patch_status(
                names.PLURAL_JOBSCHEDULES,
                ns,
                meta["name"],
                patch,
                resource_version=meta.get("resourceVersion"),
            )
            self._put_schedule(updated)
            obj = updated
        self._last_error.pop(key, None)
        # 4. History, then what happened.
        for job in plan.delete:
            await self.kube.delete_object(names.PLURAL_QUEUEDJOBS, ns, job.name, job.uid or None)
        for ev in plan.events:
            self._queue_event(obj, ev)
        if plan.wake_at is not None:
            self.wake(key, plan.wake_at)
        else:
            self.due.pop(key, None)

    def _queue_event(self, obj: dict[str, Any], ev: schedule_state.Event) -> None:
        self._events.append((with_kind(obj, names.KIND_JOBSCHEDULE), ev))

    def _flush_events(self) -> None:
        events, self._events = self._events, []
        for obj, ev in events:
            self.emit(obj, ev.type, ev.reason, ev.message)


__all__ = ["JobFeed", "ScheduleLoop"]
