"""The schedule loop: one task that fires every JobSchedule (no task or timer per schedule).

The JobSchedule watch (``handlers/jobschedule.py``) and the QueuedJob watch (forwarded by
``handlers/queuedjob.py``) feed an in-memory view; a heap holds each schedule's next wake-up time.
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

``active`` is the HA switch: while False (a standby replica) nothing is planned or written, the
view is still kept current.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from jobline import names
from jobline.core import schedule_state
from jobline.core.timefmt import now as utcnow
from jobline.kube import Kube, KubeError, job_path

from .store import Key, key_of, slim

log = logging.getLogger("jobline.schedules")
_T = TypeVar("_T")

RETRY_SECONDS = 5.0  # after a failed API call
CONFLICT_RETRY_SECONDS = 0.2  # after a 409 on the status: plan again with the fresh object
WAKE_SLACK_SECONDS = 0.002  # sleep a hair past the fire time, so the planner sees it due
MAX_PARALLEL = 32  # schedules reconciled at once in one step (their API calls mostly wait)


def _rv(obj: dict[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion", 0))
    except (TypeError, ValueError):
        return 0


def _with_kind(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    obj.setdefault("apiVersion", names.API_VERSION)
    obj.setdefault("kind", kind)
    return obj


def _phase(obj: dict[str, Any] | None) -> Any:
    return ((obj or {}).get("status") or {}).get("phase")


class _Planned(NamedTuple):
    """A schedule whose runs are created and whose status is still to be written."""

    key: Key
    obj: dict[str, Any]  # the version planned from
    plan: schedule_state.Plan


class ScheduleLoop:
    def __init__(self, kube: Kube, namespaces: list[str] | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.kube = kube
        self.namespaces = namespaces  # None: all namespaces
        self.clock = clock
        self.schedules: dict[Key, dict[str, Any]] = {}
        self.by_uid: dict[str, Key] = {}  # schedule uid -> key
        self.jobs: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # schedule uid -> job name -> job
        self.job_owner: dict[Key, str] = {}  # job key -> schedule uid
        self.due: dict[Key, datetime] = {}  # schedule -> when to plan it next
        self.heap: list[tuple[datetime, Key]] = []  # (time, schedule); stale entries skipped
        self.dirty: set[Key] = set()
        self.wakeup = asyncio.Event()
        self.synced = False
        self._active = True
        self._background: set[asyncio.Task[Any]] = set()
        self._events: list[tuple[dict[str, Any], schedule_state.Event]] = []  # posted after each step
        self._last_error: dict[Key, str] = {}
        self.stats: dict[str, float] = {"fired": 0, "triggered": 0, "conflicts": 0, "max_lateness": 0.0}

    # ------------------------------------------------------------------ HA switch
    @property
    def active(self) -> bool:
        """False while a peer operator is active (HA standby): no schedule fires."""
        return self._active

    @active.setter
    def active(self, value: bool) -> None:
        if value and not self._active:
            self.synced = False  # re-list first: the watches may have been paused meanwhile
        self._active = value
        self.wakeup.set()

    def activate(self) -> None:
        """This replica leads (HA): re-list, then plan every schedule (time passed while standing by)."""
        self.active = True

    def deactivate(self) -> None:
        self.active = False

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
        if old is not None and _rv(old) >= _rv(obj) and _rv(obj):
            return False
        _with_kind(obj, names.KIND_JOBSCHEDULE)
        old_uid = ((old or {}).get("metadata") or {}).get("uid")
        uid = (obj.get("metadata") or {}).get("uid")
        if old_uid and old_uid != uid and self.by_uid.get(old_uid) == key:
            del self.by_uid[old_uid]  # deleted and created again under the same name
        self.schedules[key] = slim(obj)
        if uid:
            self.by_uid[uid] = key
        return True

    def on_job(self, event: str | None, obj: dict[str, Any]) -> None:
        """QueuedJob watch events (all jobs; only those a schedule controls are kept)."""
        jkey = key_of(obj)
        uid = schedule_state.owner_uid(obj) or self.job_owner.get(jkey)
        if uid is None:
            return
        jobs = self.jobs[uid]
        old = jobs.get(jkey[1])
        if event == "DELETED":
            jobs.pop(jkey[1], None)
            self.job_owner.pop(jkey, None)
            if not jobs:
                self.jobs.pop(uid, None)
            changed = old is not None
        else:
            if old is not None and _rv(old) >= _rv(obj) and _rv(obj):
                return
            jobs[jkey[1]] = slim(obj)
            self.job_owner[jkey] = uid
            changed = old is None or _phase(old) != _phase(obj)
        skey = self.by_uid.get(uid)
        if changed and skey is not None:
            self.dirty.add(skey)
            self.wakeup.set()

    # --------------------------------------------------------------------- sync
    async def _list(self, path: str, label_selector: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """All items (paged) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        query: dict[str, str] = {"limit": "500"}
        if label_selector:
            query["labelSelector"] = label_selector
        while True:
            page = await self.kube.request("GET", path, query=query)
            items += page.get("items", [])
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                return items, _rv(page)
            query["continue"] = meta["continue"]

    async def sync(self) -> None:
        """List schedules and their jobs, so no plan is made on a partial view. Also after a standby:
        objects the list no longer has (and no watch event brought back since) are forgotten."""
        scopes: list[str | None] = list(self.namespaces) if self.namespaces else [None]
        for ns in scopes:
            prefix = f"/namespaces/{ns}" if ns else ""
            base = f"/apis/{names.GROUP}/{names.VERSION}{prefix}"
            schedules, rv = await self._list(f"{base}/{names.PLURAL_JOBSCHEDULES}")
            for obj in schedules:
                self._put_schedule(_with_kind(obj, names.KIND_JOBSCHEDULE))
            listed = {key_of(o) for o in schedules}
            for key, obj in list(self.schedules.items()):
                if (ns is None or key[0] == ns) and key not in listed and _rv(obj) <= rv:
                    self.on_schedule("DELETED", obj)
            jobs, rv = await self._list(f"{base}/{names.PLURAL_QUEUEDJOBS}", names.LABEL_SCHEDULE)
            for job in jobs:
                self.on_job(None, _with_kind(job, names.KIND_QUEUEDJOB))
            listed = {key_of(j) for j in jobs}
            for by_name in list(self.jobs.values()):
                for job in list(by_name.values()):
                    jkey = key_of(job)
                    if (ns is None or jkey[0] == ns) and jkey not in listed and _rv(job) <= rv:
                        self.on_job("DELETED", job)
        self.dirty.update(self.schedules)
        self.synced = True
        log.info("schedules synced: %d schedules, %d jobs", len(self.schedules),
                 sum(len(j) for j in self.jobs.values()))
        self.wakeup.set()

    # --------------------------------------------------------------------- loop
    async def run(self) -> None:
        while not self.synced:
            try:
                await self.sync()
            except Exception:
                log.exception("schedule sync failed; retrying in 2s")
                await asyncio.sleep(2)
        while True:
            timeout = self._next_timeout()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout)
            self.wakeup.clear()
            if not self._active:
                continue
            try:
                if not self.synced:
                    await self.sync()
                await self.step()
            except Exception:  # one bad step must not stop the loop
                log.exception("schedule step failed")
                await asyncio.sleep(1)

    def _next_timeout(self) -> float | None:
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
                log.info("schedule %s/%s changed meanwhile (%s); planning again", *key, exc.message)
                try:
                    await self._refresh(key)
                except KubeError as again:
                    log.warning("reading schedule %s/%s failed: %s", *key, again)
                    self.wake(key, self.clock() + timedelta(seconds=RETRY_SECONDS))
                    return None
                self.wake(key, self.clock() + timedelta(seconds=CONFLICT_RETRY_SECONDS))
            elif exc.not_found and key not in self.schedules:
                return None
            else:
                self._report_error(key, f"API error: {exc}")
                self.wake(key, self.clock() + timedelta(seconds=RETRY_SECONDS))
        except Exception as exc:
            log.exception("schedule %s/%s failed", *key)
            self._report_error(key, f"internal error: {exc}")
            self.wake(key, self.clock() + timedelta(seconds=RETRY_SECONDS))
        return None

    def _report_error(self, key: Key, message: str) -> None:
        log.warning("schedule %s/%s: %s", *key, message)
        if self._last_error.get(key) != message and key in self.schedules:
            self._last_error[key] = message
            self._emit(self.schedules[key], schedule_state.Event("Warning", "ReconcileError", message))

    async def _refresh(self, key: Key) -> None:
        ns, name = key
        try:
            obj = await self.kube.request("GET", job_path(ns, name, names.PLURAL_JOBSCHEDULES))
        except KubeError as exc:
            if exc.not_found:
                self.on_schedule("DELETED", {"metadata": {"namespace": ns, "name": name}})
                return
            raise
        self._put_schedule(obj)

    # ---------------------------------------------------------------- reconcile
    async def reconcile(self, key: Key, now: datetime | None = None) -> None:
        """Plan one schedule and apply the plan (a step does the same in two phases over many)."""
        planned = await self._create_runs(key, now)
        if planned is not None:
            await self._finish(planned)

    async def _create_runs(self, key: Key, now: datetime | None = None) -> _Planned | None:
        """Phases 1-2: plan, delete what ``Replace`` replaces, create the runs."""
        obj = self.schedules.get(key)
        if obj is None:
            return None
        meta = obj["metadata"]
        uid = meta.get("uid", "")
        now = now or self.clock()
        plan = schedule_state.plan(obj, list(self.jobs.get(uid, {}).values()), now)
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
                job = await self.kube.request("POST", job_path(ns), body)
            except KubeError as exc:
                if not exc.conflict:
                    raise
                log.info("run %s/%s exists already (created by a replica or before a restart)", ns, run.name)
                with contextlib.suppress(KubeError):
                    job = await self.kube.request("GET", job_path(ns, run.name))
                    self.on_job(None, _with_kind(job, names.KIND_QUEUEDJOB))
                continue
            created_at = self.clock()
            self.on_job(None, _with_kind(job, names.KIND_QUEUEDJOB))
            if run.nominal is None:
                self.stats["triggered"] += 1
                log.info("triggered %s/%s: created %s (trigger %r)", ns, meta.get("name"), run.name, run.trigger)
            else:
                late = run.late_by(created_at)
                self.stats["fired"] += 1
                self.stats["max_lateness"] = max(self.stats["max_lateness"], late)
                log.info("fired %s/%s: created %s for %s, %.3fs late", ns, meta.get("name"), run.name,
                         run.nominal.isoformat(), late)
            self._emit(obj, run.event(created_at))
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
            body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": patch}
            updated = await self.kube.request(
                "PATCH", job_path(ns, meta["name"], names.PLURAL_JOBSCHEDULES) + "/status", body,
                content_type="application/merge-patch+json", query={"fieldManager": names.FIELD_MANAGER})
            self._put_schedule(updated)
            obj = updated
        self._last_error.pop(key, None)
        # 4. History, then what happened.
        for job in plan.delete:
            await self.kube.delete_object(names.PLURAL_QUEUEDJOBS, ns, job.name, job.uid or None)
        for ev in plan.events:
            self._emit(obj, ev)
        if plan.wake_at is not None:
            self.wake(key, plan.wake_at)
        else:
            self.due.pop(key, None)

    def _emit(self, obj: dict[str, Any], ev: schedule_state.Event) -> None:
        self._events.append((_with_kind(obj, names.KIND_JOBSCHEDULE), ev))

    def _flush_events(self) -> None:
        events, self._events = self._events, []
        for obj, ev in events:
            task = asyncio.create_task(self.kube.event(obj, ev.type, ev.reason, ev.message))
            self._background.add(task)
            task.add_done_callback(self._background.discard)


__all__ = ["ScheduleLoop"]
