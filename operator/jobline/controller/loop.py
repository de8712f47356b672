"""The controller loop: one task that reconciles changed jobs and dispatches every queue.

Watches (kopf ``on.event`` handlers) feed :class:`Store` and mark jobs dirty; the loop wakes up,
runs the pure state machine (:mod:`jobline.core.lifecycle`) for each dirty job, applies the
outcome, then starts attempts in priority order where a queue has free slots. Timers (runAt,
backoff, timeouts, TTLs) are one heap, not one task per object.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import hashlib
import heapq
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from jobline import metrics, names
from jobline.core import debounce, flowcontrol, joblabels, lifecycle, overrides, podrefusal, pool, readmodel
from jobline.core.dependencies import find_cycle
from jobline.core.dispatch import Unique, free_slots, originals, retention_victims
from jobline.core.models import (
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    FINISHED_PHASES,
    PERIOD_SECONDS,
    JobQueueSpec,
    QueuedJobSpec,
    resolve_retry,
)
from jobline.core.podspec import TemplateError, build_pool_pod, build_worker_pod, merge_templates
from jobline.core.timefmt import fmt, parse
from jobline.core.timefmt import now as utcnow
from jobline.kube import Kube, KubeError, collection_path, with_kind
from jobline.kube import resource_version as kube_resource_version

from .base import Loop
from .store import Key, Store, key_of

DISPATCH_BACKSTOP_SECONDS = 5.0  # a queue with runnable jobs is dispatched at least this often
POOL_RETRY_SECONDS = 5.0  # a refused worker pod is tried again this much later
QUEUE_STATUS_INTERVAL = 2.0  # seconds between two status writes of one JobQueue
QUEUE_GRACE_SECONDS = 10  # a job whose JobQueue is not (yet) known waits this long before NoImage
STEP_INTERVAL = 0.05  # seconds, at least, between two controller steps
SLOW_STEP_SECONDS = 1.0  # a step that takes longer is logged with where its time went


def template_digest(pod: dict[str, Any]) -> str:
    """A worker pod's digest: pods of an older template are replaced once idle."""
    text = json.dumps(pod.get("spec"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning ``old`` into ``new`` at the top level (lists are written whole)."""
    patch: dict[str, Any] = {}
    for k in set(old) | set(new):
        if old.get(k) != new.get(k):
            patch[k] = new.get(k)
    return patch


class Controller(Loop):
    """QueuedJobs: reconcile the changed ones, start attempts where queues have room, write queue status."""

    name = "controller"
    min_step_interval = STEP_INTERVAL

    def __init__(
        self, kube: Kube, namespaces: list[str] | None = None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        super().__init__(kube, namespaces, clock)
        self.store = Store()
        self.dirty_jobs: set[Key] = set()
        self.dirty_queues: set[Key] = set()
        self.runnable: dict[Key, set[str]] = defaultdict(set)  # (ns, queue) -> runnable job names
        self.timers: list[tuple[datetime, Key]] = []
        self.queue_status_at: dict[Key, float] = {}
        self.completions: dict[Key, deque[datetime]] = defaultdict(deque)
        self.deferred: dict[Key, lifecycle.Outcome] = {}  # "Pending" writes held back until after dispatch
        self.background_writes: set[Key] = set()  # jobs whose "Pending" is being written
        self.background_slots = asyncio.Semaphore(6)  # of the API client's 16 threads
        # job -> (resourceVersion, default priority, its place in the dispatch order), rebuilt on change
        self._candidates: dict[Key, tuple[str, int, flowcontrol.Candidate]] = {}
        self._refusals: dict[Key, int] = {}  # pod creates refused in a row, per job (for the backoff)
        self.stats = {"dispatched": 0, "reconciled": 0, "pod_refusals": 0}
        # Pool mode: when each worker pod became idle (in memory: a restart only delays a scale-down),
        # the pool's last plan per queue, and when to look at a queue again (an idle pod's scale-down).
        self.idle_since: dict[Key, datetime] = {}
        self.pool_desired: dict[Key, int] = {}
        self.queue_wake: dict[Key, datetime] = {}
        self.last_dispatch: dict[Key, float] = {}  # monotonic time each queue was last dispatched
        self.pool_digest: dict[Key, str] = {}  # the current worker pod template's digest, per queue
        self.pool_problems: dict[Key, tuple[str, str]] = {}  # why a pool cannot make its pods

    # ------------------------------------------------------------------ feeding
    def _touch_job(self, key: Key) -> None:
        self.dirty_jobs.add(key)
        self.dirty_queues.add((key[0], self.store.queue_of(key)))
        self.wakeup.set()

    def on_job(self, event: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        metrics.job_seen(event, obj)
        if event == "DELETED":
            self.store.drop_job(key)
            self._candidates.pop(key, None)
            queue = (key[0], (obj.get("spec") or {}).get("queue") or DEFAULT_QUEUE)
            self.runnable[queue].discard(key[1])
            self.dirty_queues.add(queue)
            self._touch_related(key, obj)
            self.wakeup.set()
            return
        old = self.store.jobs.get(key)
        if self.store.put_job(obj):
            self._touch_job(key)
            old_phase = (old or {}).get("status", {}).get("phase")
            if old is None or old_phase != (obj.get("status") or {}).get("phase"):
                self._touch_related(key, obj)

    def _own_write(self, obj: dict[str, Any]) -> None:
        """Store the response to our own write. It can carry a user's change made just before ours
        (spec, annotations, deletion); the watch event for that change will then look old and be
        dropped, so look at the job again now."""
        key = key_of(obj)
        old = self.store.jobs.get(key) or {}
        self.store.put_job(obj)
        before, after = old.get("metadata", {}), obj.get("metadata", {})
        if (
            old.get("spec") != obj.get("spec")
            or before.get("annotations") != after.get("annotations")
            or before.get("deletionTimestamp") != after.get("deletionTimestamp")
        ):
            self._touch_job(key)

    def _touch_related(self, key: Key, obj: dict[str, Any]) -> None:
        """Jobs that depend on this one, and its uniqueKey twins, must look again."""
        ns, name = key
        for dep in self.store.dependents.get((ns, name), ()):
            self.dirty_jobs.add((ns, dep))
        spec = obj.get("spec") or {}
        unique = spec.get("uniqueKey")
        if unique:
            for twin in self.store.by_unique.get((ns, spec.get("queue") or DEFAULT_QUEUE, unique), ()):
                self.dirty_jobs.add((ns, twin))
        self.wakeup.set()

    def on_queue(self, event: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event == "DELETED":
            self.store.drop_queue(key)
        elif not self.store.put_queue(obj):
            return
        for jkey, _ in self.store.jobs_in_queue(*key):
            self.dirty_jobs.add(jkey)
        self.dirty_queues.add(key)
        self.wakeup.set()

    def on_pod(self, event: str | None, obj: dict[str, Any]) -> None:
        jkey = self.store.drop_pod(obj) if event == "DELETED" else self.store.put_pod(obj)
        if jkey is not None:
            self._touch_job(jkey)

    def on_pool_pod(self, event: str | None, obj: dict[str, Any]) -> None:
        """A pool worker pod changed: its attempts look again (it may be lost), its queue may dispatch."""
        qkey = self.store.drop_pool_pod(obj) if event == "DELETED" else self.store.put_pool_pod(obj)
        if qkey is None:
            return
        ns, name = key_of(obj)
        for job in list(self.store.by_worker.get((ns, name), ())):
            self.dirty_jobs.add((ns, job))
        if event == "DELETED":
            self.idle_since.pop((ns, name), None)
        self.dirty_queues.add(qkey)
        self.wakeup.set()

    # --------------------------------------------------------------------- sync
    async def sync(self) -> bool:
        """List everything once, so no decision is taken on a partial view (e.g. a pod not yet seen).
        After a standby or a watch's re-list (``note_watch``), the jobs, queues and attempt pods the list no
        longer has (deleted while unwatched) are dropped, as their DELETED events would have."""
        for ns in self.scopes():
            queues, queues_rv = await self.kube.list_with_version(
                collection_path(names.PLURAL_JOBQUEUES, ns), kind=names.KIND_JOBQUEUE
            )
            for queue in queues:
                self.store.put_queue(queue)
            for gone in self.store.stale_queues(queues, queues_rv, ns):
                self.on_queue("DELETED", gone)
            jobs, rv = await self.kube.list_with_version(
                collection_path(names.PLURAL_QUEUEDJOBS, ns), kind=names.KIND_QUEUEDJOB
            )
            for job in jobs:
                self.store.put_job(job)
            for gone in self.store.stale_jobs(jobs, rv, ns):
                self.on_job("DELETED", gone)
            pods, pods_rv = await self.kube.list_with_version(
                collection_path("pods", ns), label_selector=names.LABEL_JOB
            )
            for pod in pods:
                self.store.put_pod(pod)
            for gone in self.store.stale_pods(pods, pods_rv, ns):
                self.on_pod("DELETED", gone)
            workers, workers_rv = await self.kube.list_with_version(
                collection_path("pods", ns), label_selector=names.LABEL_POOL
            )
            for worker in workers:
                self.store.put_pool_pod(worker)
            for gone in self.store.stale_pool_pods(workers, workers_rv, ns):
                self.on_pool_pod("DELETED", gone)
        self.dirty_jobs.update(self.store.jobs)
        for key in self.store.jobs:
            self.dirty_queues.add((key[0], self.store.queue_of(key)))
        self.dirty_queues.update(self.store.queues)
        self.store.mark_synced()
        self.log.info("synced: %d jobs, %d queues", len(self.store.jobs), len(self.store.queues))
        self.wakeup.set()
        return True

    def activate(self) -> None:
        self.store.synced = False  # the schedule loop waits for the store's re-list too
        super().activate()

    def retry_later(self, key: Key, seconds: float) -> None:
        self.schedule(key, self.clock() + timedelta(seconds=seconds))

    def next_timeout(self) -> float | None:
        waits: list[float] = []
        if self.timers:
            waits.append((self.timers[0][0] - self.clock()).total_seconds())
        if self.queue_status_at:
            waits.append(min(self.queue_status_at.values()) - time.monotonic())
        if self.queue_wake:
            waits.append((min(self.queue_wake.values()) - self.clock()).total_seconds())
        backstop = self._backstop_due()
        if backstop is not None:
            waits.append(backstop - time.monotonic())
        return max(0.0, min(waits)) if waits else None

    def _backstop_due(self) -> float | None:
        """When the next queue with runnable jobs is due for its backstop dispatch (monotonic), if any.
        Level-triggered: every change that can free a slot marks its queue dirty, and this catches one
        that did not (a consumed queue mark, fixed in ``step``, once left a job waiting 90 s with a free
        slot; this bounds any other such miss to a few seconds)."""
        due = [
            self.last_dispatch.get(queue, time.monotonic()) + DISPATCH_BACKSTOP_SECONDS
            for queue, waiting in self.runnable.items()
            if waiting
        ]
        return min(due) if due else None

    def schedule(self, key: Key, at: datetime) -> None:
        heapq.heappush(self.timers, (at, key))

    async def step(self) -> None:
        now = self.clock()
        while self.timers and self.timers[0][0] <= now:
            _, key = heapq.heappop(self.timers)
            if key in self.store.jobs:
                self._touch_job(key)
        for queue, at in list(self.queue_wake.items()):
            if at <= now:
                del self.queue_wake[queue]
                self.dirty_queues.add(queue)
        mono = time.monotonic()
        for queue, waiting in self.runnable.items():
            if waiting and self.last_dispatch.get(queue, mono) + DISPATCH_BACKSTOP_SECONDS <= mono:
                self.dirty_queues.add(queue)
        jobs, self.dirty_jobs = self.dirty_jobs, set()
        # Plan every dirty job first, in one go (pure, no awaits): most need no write (a new job waiting
        # for dispatch), and no task per job competes with the watch events for the loop. Then write.
        t0 = time.monotonic()
        writes = [self._apply_safely(key, *planned) for key in jobs if (planned := self._plan_safely(key))]
        t1 = time.monotonic()
        if writes:
            await asyncio.gather(*writes)
        t2 = time.monotonic()
        # The queues of the jobs planned here are dispatched after these writes, whatever marked them: an
        # event that marks a job and its queue while an earlier step awaits its writes lets that step's
        # dispatch consume the queue's mark before the job is planned, so a finished job would free its slot
        # with no dispatch to use it (a waiting job then waited for the next unrelated event).
        for key in jobs:
            self.dirty_queues.add((key[0], self.store.queue_of(key)))
        queues, self.dirty_queues = self.dirty_queues, set()
        for queue in queues:
            self.last_dispatch[queue] = time.monotonic()
            try:
                await self.dispatch(queue)
            except Exception:  # never lose the other queues' turn
                self.log.exception("dispatching queue %s/%s failed", *queue)
                self.dirty_queues.add(queue)
            self._queue_status_later(queue)
        t3 = time.monotonic()
        if t3 - t0 > SLOW_STEP_SECONDS:
            self.log.info(
                "slow step: planned %d jobs in %.2fs, %d writes took %.2fs, dispatch %.2fs",
                len(jobs),
                t1 - t0,
                len(writes),
                t2 - t1,
                t3 - t2,
            )
        deferred, self.deferred = self.deferred, {}
        for key, out in deferred.items():
            # "Pending" of jobs that got no slot: written in the background, a few at a time, so that
            # thousands of them never hold up the next dispatch. The job is hands-off meanwhile.
            if key not in self.background_writes:
                self.background_writes.add(key)
                self.spawn(self._apply_deferred(key, out))
        await self._queue_statuses()

    async def _apply_deferred(self, key: Key, out: lifecycle.Outcome) -> None:
        try:
            async with self.background_slots:
                obj = self.store.jobs.get(key)
                if obj is None or (obj.get("status") or {}).get("phase") is not None:
                    return  # started (or gone) meanwhile
                await self.apply(key, obj, out)
        except Exception as exc:
            self.failed("reconcile", key, exc, retry=1)
        finally:
            self.background_writes.discard(key)
            self.dirty_queues.add((key[0], self.store.queue_of(key)))  # it may be dispatched now
            self.wakeup.set()

    def _plan_safely(self, key: Key) -> tuple[dict[str, Any], lifecycle.Outcome] | None:
        if key in self.background_writes:  # one writer per job at a time: look again shortly
            self.schedule(key, self.clock() + timedelta(seconds=0.2))
            return None
        try:
            return self.plan(key)
        except Exception as exc:
            self.failed("reconcile", key, exc, retry=5)
            return None

    async def _apply_safely(self, key: Key, obj: dict[str, Any], out: lifecycle.Outcome) -> None:
        try:
            await self.apply(key, obj, out)
            if out.wake_at is not None:
                self.schedule(key, out.wake_at)
        except KubeError as exc:
            if exc.conflict or exc.not_found:
                self.retry_later(key, 0.5)  # again, with what the watch brings
            else:
                self.failed("reconcile", key, exc, retry=5)
        except Exception as exc:
            self.failed("reconcile", key, exc, retry=5)

    # ---------------------------------------------------------------- reconcile
    def _world(self, key: Key, spec: QueuedJobSpec, now: datetime, uid: str) -> lifecycle.World:
        ns, name = key
        qspec = self.store.queue_spec(ns, spec.queue)
        defaults = qspec.defaults if qspec else None
        deps: dict[str, str | None] = {}
        for dep in spec.depends_on or []:
            deps[dep] = self._dependency_phase(ns, dep)
        cycle = None
        if any(phase not in (None, "Succeeded") for phase in deps.values()):
            cycle = find_cycle(name, lambda n: self._blocking_deps(ns, n))
        job = self.store.jobs.get(key)
        created = parse(job["metadata"].get("creationTimestamp")) if job else None
        duplicate_of = None
        verdict = debounce.Decision()
        if spec.unique_key and qspec is not None and qspec.debounce is not None:
            verdict = debounce.decide(
                name,
                self._twins(ns, spec.queue, spec.unique_key),
                qspec.debounce.seconds,
                qspec.debounce.max_wait_seconds,
            )
        elif spec.unique_key:
            twins = []
            for twin in self.store.by_unique.get((ns, spec.queue, spec.unique_key), ()):
                tobj = self.store.jobs.get((ns, twin))
                if tobj is None:
                    continue
                tst = tobj.get("status") or {}
                twins.append(
                    Unique(
                        twin,
                        tobj["metadata"].get("creationTimestamp", ""),
                        tst.get("phase") in FINISHED_PHASES,
                        int(tst.get("attempts", 0)) > 0,
                    )
                )
            duplicate_of = originals(twins).get(name)
        return lifecycle.World(
            now=now,
            retry=resolve_retry(spec.retry, defaults.retry if defaults else None),
            timeout_seconds=spec.timeout_seconds or (defaults.timeout_seconds if defaults else None),
            ttl_seconds_after_finished=(
                spec.ttl_seconds_after_finished
                if spec.ttl_seconds_after_finished is not None
                else defaults.ttl_seconds_after_finished
                if defaults
                else None
            ),
            queue_paused=bool(qspec and qspec.paused),
            deps=deps,
            cycle=cycle,
            created=created,
            duplicate_of=duplicate_of,
            seed=uid,
            superseded_by=verdict.superseded_by,
            debounce_until=verdict.start_at,
            debounce_behind=verdict.behind,
            revision=(
                kube_resource_version(job) if job is not None and verdict.start_at is not None else None
            ),
        )

    def _dependency_phase(self, ns: str, name: str) -> str | None:
        """A dependency's phase (None: not found); a Superseded one stands for the job that replaced it."""
        for _ in range(16):
            obj = self.store.jobs.get((ns, name))
            if obj is None:
                return None
            st = obj.get("status") or {}
            phase = st.get("phase") or "Pending"
            if phase != "Superseded" or not st.get("supersededBy"):
                return str(phase)
            name = str(st["supersededBy"])
        return "Superseded"

    def _twins(self, ns: str, queue: str, unique_key: str) -> list[debounce.Twin]:
        twins = []
        for twin in self.store.by_unique.get((ns, queue, unique_key), ()):
            tobj = self.store.jobs.get((ns, twin))
            if tobj is None:
                continue
            tst = tobj.get("status") or {}
            twins.append(
                debounce.Twin(
                    twin,
                    parse(tobj["metadata"].get("creationTimestamp")),
                    int(tst.get("enqueueRevision") or kube_resource_version(tobj)),
                    tst.get("phase"),
                    int(tst.get("attempts", 0)) > 0,
                    parse(tst.get("startedAt")),
                    parse(tst.get("completedAt")),
                )
            )
        return twins

    def _blocking_deps(self, ns: str, name: str) -> list[str] | None:
        """A job's dependsOn as the cycle search follows it: none for a job that is gone or succeeded."""
        obj = self.store.jobs.get((ns, name))
        if obj is None or (obj.get("status") or {}).get("phase") == "Succeeded":
            return None
        return list((obj.get("spec") or {}).get("dependsOn") or ())

    def plan(self, key: Key) -> tuple[dict[str, Any], lifecycle.Outcome] | None:
        """Decide what the job needs (pure; no API call). -> the object and the outcome to apply, or
        None when there is nothing to write now (a new job that the dispatcher may start this step)."""
        obj = self.store.jobs.get(key)
        if obj is None:
            return None
        self.stats["reconciled"] += 1
        meta = obj["metadata"]
        parsed = self.store.spec(key)
        now = self.clock()
        pooled = self._pooled_attempt(key, obj)
        if pooled is not None:
            pods = pooled
        else:
            pods = [v for p in self.store.pods_for_reconcile(key) if (v := lifecycle.pod_view(p)) is not None]
        world = (
            self._world(key, parsed.spec, now, meta.get("uid", ""))
            if parsed.spec is not None
            else lifecycle.World(now=now, retry=resolve_retry(), spec_error=parsed.error)
        )
        out = lifecycle.reconcile(
            name=key[1],
            uid=meta.get("uid", ""),
            generation=meta.get("generation"),
            annotations=meta.get("annotations") or {},
            spec=parsed.spec,
            status=obj.get("status"),
            pods=pods,
            world=world,
        )
        if pooled is not None:
            out.delete_pods = pool.settle(out.status, out.delete_pods)
            out.events = [e for e in out.events if not pool.quiet(e)]
        queue_key = (key[0], self.store.queue_of(key))
        if out.runnable:
            self.runnable[queue_key].add(key[1])
            self.dirty_queues.add(queue_key)  # a job may have become runnable without a queue event
        else:
            self.runnable[queue_key].discard(key[1])
        if out.runnable and (obj.get("status") or {}).get("phase") is None and not out.events:
            # A new job that may start now: if the dispatcher starts it in this step, writing
            # "Pending" first would only cost two API writes. Written after dispatch otherwise.
            self.deferred[key] = out
            return None
        return obj, out

    def _pooled_attempt(self, key: Key, obj: dict[str, Any]) -> list[lifecycle.PodView] | None:
        """A job whose open attempt runs on a pool worker: that attempt as the state machine's pod list
        (empty: the assignment was revoked); None for a job without one (its attempt pods decide)."""
        status = obj.get("status") or {}
        history = status.get("attemptHistory") or ()
        record = history[-1] if history else None
        if not record or not record.get("worker") or record.get("finishedAt"):
            return None
        if record.get("attempt") != status.get("attempts"):
            return None
        worker = self.store.pool_pod(key[0], str(record["worker"]))
        view = pool.attempt_view(record, status, worker)
        return [view] if view is not None else []

    async def apply(
        self, key: Key, obj: dict[str, Any], out: lifecycle.Outcome, resource_version: str | None = None
    ) -> None:
        ns, name = key
        for pod in out.delete_pods:
            await self.kube.delete_pod(ns, pod)
        old_status = obj.get("status") or {}
        out.status["reason"] = lifecycle.status_reason(out.status)
        patch = status_patch(old_status, out.status)
        if patch:
            # One line per phase change, at debug (20 jobs/s would be 60 lines/s at info, each costing
            # CPU); a job that failed for good is worth a line at info.
            level = logging.INFO if patch.get("phase") == "Failed" else logging.DEBUG
            if "phase" in patch and self.log.isEnabledFor(level):
                self.log.log(
                    level,
                    "%s/%s: %s -> %s%s",
                    ns,
                    name,
                    old_status.get("phase") or "New",
                    patch["phase"],
                    f" ({out.status.get('waitingReason')})" if out.status.get("waitingReason") else "",
                )
            updated = await self.kube.patch_status(
                names.PLURAL_QUEUEDJOBS, ns, name, patch, resource_version=resource_version
            )
            self._own_write(with_kind(updated, names.KIND_QUEUEDJOB))
            obj = updated
            metrics.job_transition(obj, old_status, out.status)
            if out.phase in FINISHED_PHASES and old_status.get("phase") not in FINISHED_PHASES:
                self.completions[(ns, self.store.queue_of(key))].append(self.clock())
                self._touch_related(key, obj)
        await self._sync_labels(key, obj)
        for ev in out.events:
            self._emit(obj, ev)
        if out.delete_job:
            await self.kube.delete_object(names.PLURAL_QUEUEDJOBS, ns, name, obj["metadata"].get("uid"))
            self._emit(obj, lifecycle.Event("Normal", "Deleted", "ttlSecondsAfterFinished expired"))

    async def _sync_labels(self, key: Key, obj: dict[str, Any]) -> None:
        status = obj.get("status") or {}
        history = status.get("attemptHistory") or ()
        diff = joblabels.label_patch(
            obj["metadata"].get("labels") or {},
            obj.get("spec") or {},
            status.get("phase"),
            pooled=bool(history and history[-1].get("worker")),
        )
        if diff:
            updated = await self.kube.patch_meta(names.PLURAL_QUEUEDJOBS, key[0], key[1], {"labels": diff})
            self._own_write(with_kind(updated, names.KIND_QUEUEDJOB))

    def _emit(self, obj: dict[str, Any], ev: lifecycle.Event) -> None:
        self.emit(with_kind(obj, names.KIND_QUEUEDJOB), ev.type, ev.reason, ev.message)

    # ----------------------------------------------------------------- dispatch
    async def dispatch(self, queue: Key) -> None:
        ns, qname = queue
        qspec = self.store.queue_spec(ns, qname)
        if (qspec is not None and qspec.pooled) or self.store.pool_pods.get(queue):
            await self._scale_pool(queue, qspec)
        runnable = self.runnable.get(queue)
        if not runnable:
            return
        active = self.store.active_count(ns, qname)
        paused = bool(qspec and qspec.paused)
        if free_slots(qspec.concurrency if qspec else None, active, paused) == 0:
            return
        candidates = self._flow_candidates(queue, qspec)
        if not candidates:
            return
        limits, next_token = self._limits(queue, qspec, active)
        if next_token is not None:
            # Look at the queue again when the rate limit's next token is there.
            self.schedule((ns, candidates[0].name), next_token)
        if limits.tokens == 0:
            return
        chosen = flowcontrol.decide(candidates, limits).start
        workers: list[str | None] = [None] * len(chosen)
        if qspec is not None and qspec.workers is not None and qspec.pooled:
            # A free slot of a ready worker per attempt; the rest wait for the pool to grow.
            assigned = pool.assign(qspec.workers, self._worker_views(queue, qspec), len(chosen))
            chosen, workers = chosen[: len(assigned)], list(assigned)
        for name in chosen:
            runnable.discard(name)
            self._candidates.pop((ns, name), None)
        await asyncio.gather(
            *(self._start_safely((ns, name), qspec, w) for name, w in zip(chosen, workers, strict=True))
        )

    # --------------------------------------------------------------------- pool
    def _worker_views(
        self, queue: Key, qspec: JobQueueSpec, digest: str | None = None
    ) -> list[pool.WorkerView]:
        """The queue's worker pods; one made from an older template takes no new attempt (it goes once
        idle, and a current one replaces it). Tracks since when each is idle."""
        ns, _ = queue
        now = self.clock()
        digest = digest if digest is not None else self.pool_digest.get(queue)
        views = []
        for name, pod in self.store.pool_pods.get(queue, {}).items():
            view = pool.worker_view(pod, self.store.busy(ns, name))
            current = (
                digest is None
                or (pod["metadata"].get("annotations") or {}).get(names.ANNOTATION_TEMPLATE_HASH) == digest
            )
            if not current:
                view = dataclasses.replace(view, ready=False, current=False)
            if view.busy == 0:
                self.idle_since.setdefault((ns, name), now)
            else:
                self.idle_since.pop((ns, name), None)
            views.append(view)
        return views

    async def _scale_pool(self, queue: Key, qspec: JobQueueSpec | None) -> None:
        """Grow the queue's pool to what its running and runnable jobs need, shrink it by idle workers;
        without a pool (any more), idle worker pods go and busy ones finish their attempts first."""
        ns, qname = queue
        qobj = self.store.queues.get(queue)
        if qspec is None or qspec.workers is None or not qspec.pooled or qobj is None:
            for name, pod in list(self.store.pool_pods.get(queue, {}).items()):
                if self.store.busy(ns, name) == 0 and not pod["metadata"].get("deletionTimestamp"):
                    await self.kube.delete_pod(ns, name)
            self.pool_desired.pop(queue, None)
            return
        try:
            body = build_pool_pod(
                queue=qname,
                namespace=ns,
                queue_uid=qobj["metadata"].get("uid", ""),
                template=merge_templates(qspec.template),
                slots=qspec.workers.slots,
            )
        except TemplateError as exc:
            self._pool_problem(queue, qobj, exc.reason, str(exc))
            return
        digest = template_digest(body)
        body["metadata"]["annotations"][names.ANNOTATION_TEMPLATE_HASH] = digest
        self.pool_digest[queue] = digest
        views = self._worker_views(queue, qspec, digest)
        now = self.clock()
        demand = self.store.active_count(ns, qname) + (
            0 if qspec.paused else len(self.runnable.get(queue, ()))
        )
        idle = {name: at for (pns, name), at in self.idle_since.items() if pns == ns}
        decision = pool.plan(
            qspec.workers, views, demand=demand, concurrency=qspec.concurrency, idle_since=idle, now=now
        )
        self.pool_desired[queue] = decision.desired
        for name in decision.delete:
            await self.kube.delete_pod(ns, name)
        for _ in range(decision.create):
            try:
                created, _ = await self.kube.create_pod(ns, body)
            except KubeError as exc:
                self._pool_problem(queue, qobj, "WorkerPodRefused", f"{exc.reason}: {exc.message}")
                self.queue_wake[queue] = now + timedelta(seconds=POOL_RETRY_SECONDS)
                return
            self.store.put_pool_pod(created)
        self.pool_problems.pop(queue, None)
        if decision.wake_at is not None:
            self.queue_wake[queue] = min(self.queue_wake.get(queue, decision.wake_at), decision.wake_at)

    def _pool_problem(self, queue: Key, qobj: dict[str, Any], reason: str, message: str) -> None:
        """The pool cannot make its pods: the queue's Ready condition says so, with one Event per change."""
        if self.pool_problems.get(queue) != (reason, message):
            self.pool_problems[queue] = (reason, message)
            self.emit(with_kind(qobj, names.KIND_JOBQUEUE), "Warning", reason, message[:1024])
            self.log.warning("pool of JobQueue %s/%s: %s: %s", *queue, reason, message)
        self._queue_status_later(queue)

    def _flow_candidates(self, queue: Key, qspec: JobQueueSpec | None) -> list[flowcontrol.Candidate]:
        """The queue's runnable jobs as flow control sees them (parsed once per resourceVersion)."""
        ns, _ = queue
        runnable = self.runnable.get(queue, set())
        default_priority = (qspec.defaults.priority if qspec and qspec.defaults else None) or DEFAULT_PRIORITY
        candidates = []
        for name in list(runnable):
            key = (ns, name)
            if key in self.background_writes:
                continue  # its "Pending" is being written; the writer wakes the loop when done
            obj = self.store.jobs.get(key)
            if obj is None:
                runnable.discard(name)
                self._candidates.pop(key, None)
                continue
            rv = obj["metadata"].get("resourceVersion", "")
            cached = self._candidates.get(key)
            if cached is None or cached[0] != rv or cached[1] != default_priority:
                parsed = self.store.spec(key)
                if parsed.spec is None:
                    runnable.discard(name)
                    continue
                priority = parsed.spec.priority if parsed.spec.priority is not None else default_priority
                candidate = flowcontrol.Candidate(
                    name,
                    priority,
                    obj["metadata"].get("creationTimestamp", ""),
                    parsed.spec.concurrency_key or flowcontrol.NO_KEY,
                )
                cached = (rv, default_priority, candidate)
                self._candidates[key] = cached
            candidates.append(cached[2])
        return candidates

    def _limits(
        self, queue: Key, qspec: JobQueueSpec | None, active: int
    ) -> tuple[flowcontrol.Limits, datetime | None]:
        """The queue's limits now: running jobs per key (when a limit or RoundRobin needs them) and the
        rate limit's tokens, rebuilt from the attempts' start times (so a restart grants no burst);
        and, when no token is left, when the next one is."""
        ns, _ = queue
        if qspec is None:
            return flowcontrol.Limits(active=active), None
        by_key: dict[str, int] = {}
        if qspec.concurrency_per_key is not None or qspec.fairness == "RoundRobin":
            for name in self.store.active.get(queue, ()):
                ck = self._concurrency_key((ns, name))
                by_key[ck] = by_key.get(ck, 0) + 1
        served: dict[str, datetime] = {}
        if qspec.fairness == "RoundRobin":  # when each key last started an attempt (restart-safe)
            for job_key, obj in self.store.jobs_in_queue(*queue):
                history = (obj.get("status") or {}).get("attemptHistory") or ()
                started = parse(history[-1].get("startedAt")) if history else None
                if started is not None:
                    ck = self._concurrency_key(job_key)
                    if started > served.get(ck, started - timedelta(seconds=1)):
                        served[ck] = started
        available: int | None = None
        next_token: datetime | None = None
        if qspec.rate_limit is not None:
            rate = qspec.rate_limit
            bucket = flowcontrol.Bucket.of(rate.starts, PERIOD_SECONDS[rate.per], rate.burst)
            now = self.clock()
            tokens = flowcontrol.tokens(bucket, self._recent_starts(queue, now - bucket.window), now)
            available, next_token = tokens.available, tokens.next_at
        limits = flowcontrol.Limits(
            paused=qspec.paused,
            concurrency=qspec.concurrency,
            active=active,
            per_key=qspec.concurrency_per_key,
            active_by_key=by_key,
            fairness=qspec.fairness,
            tokens=available,
            last_start_by_key=served,
        )
        return limits, next_token

    def _concurrency_key(self, key: Key) -> str:
        parsed = self.store.spec(key) if key in self.store.jobs else None
        return (parsed.spec.concurrency_key if parsed and parsed.spec else None) or flowcontrol.NO_KEY

    def _recent_starts(self, queue: Key, since: datetime) -> list[datetime]:
        """Start times of the queue's attempts after ``since``, from the jobs' attempt histories."""
        starts = []
        for _key, obj in self.store.jobs_in_queue(*queue):
            for record in (obj.get("status") or {}).get("attemptHistory") or ():
                t = parse(record.get("startedAt"))
                if t is not None and t > since:
                    starts.append(t)
        return starts

    def _waiting_reasons(self, queue: Key) -> None:
        """Write why each runnable job of the queue waits (the dispatcher's reasons), where it changed.
        With the queue's status, every few seconds, not on the dispatch path."""
        ns, qname = queue
        qspec = self.store.queue_spec(ns, qname)
        candidates = self._flow_candidates(queue, qspec)
        if not candidates:
            return
        limits, _ = self._limits(queue, qspec, self.store.active_count(ns, qname))
        decision = flowcontrol.decide(candidates, limits, reasons=True)
        for name, reason in decision.waiting.items():
            key = (ns, name)
            obj = self.store.jobs.get(key)
            status = (obj or {}).get("status") or {}
            if obj is None or status.get("phase") != "Pending" or status.get("waitingReason") == reason:
                continue
            if key not in self.background_writes:
                self.background_writes.add(key)
                self.spawn(self._write_reason(key, reason))

    async def _write_reason(self, key: Key, reason: str) -> None:
        try:
            async with self.background_slots:
                obj = self.store.jobs.get(key)
                if obj is None or (obj.get("status") or {}).get("phase") != "Pending":
                    return  # started (or gone) meanwhile
                updated = await self.kube.patch_status(
                    names.PLURAL_QUEUEDJOBS, key[0], key[1], {"waitingReason": reason, "reason": reason}
                )
                self._own_write(with_kind(updated, names.KIND_QUEUEDJOB))
        except Exception as exc:
            self.failed("reconcile", key, exc, retry=1)
        finally:
            self.background_writes.discard(key)
            self.dirty_queues.add((key[0], self.store.queue_of(key)))
            self.wakeup.set()

    async def _start_safely(self, key: Key, qspec: JobQueueSpec | None, worker: str | None = None) -> None:
        try:
            await self.start(key, qspec, worker)
        except KubeError as exc:
            if exc.conflict:  # the job changed since it was chosen: look at it again
                self.retry_later(key, 0.2)
            else:
                self.failed("start", key, exc, retry=2)
        except Exception as exc:
            self.failed("start", key, exc, retry=5)

    async def start(self, key: Key, qspec: JobQueueSpec | None, worker: str | None = None) -> None:
        ns, name = key
        obj = self.store.jobs.get(key)
        if obj is None:
            # Deleted while the step ran: the starts of one step are awaited together, and a delete
            # event can drop a chosen job from the store before its turn. Nothing to start.
            return
        spec = self.store.spec(key).spec
        assert spec is not None
        meta = obj["metadata"]
        status = obj.get("status") or {}
        attempt = int(status.get("attempts", 0)) + 1
        template = merge_templates(qspec.template if qspec else None, spec.template)
        defaults = qspec.defaults if qspec else None
        timeout = spec.timeout_seconds or (defaults.timeout_seconds if defaults else None)
        now = self.clock()
        if worker is not None:
            await self._assign(key, obj, spec, qspec, worker, attempt, timeout)
            return
        payload_from = (
            spec.payload_from.model_dump(by_alias=True, exclude_none=True) if spec.payload_from else None
        )
        try:
            job_overrides = qspec.job_overrides if qspec else None
            refused = overrides.refusals(
                spec.template.manifest() if spec.template else None, payload_from, job_overrides
            )
            if refused:  # admission fails open, and a queue may narrow its list later: judged again here
                raise TemplateError(
                    overrides.REASON, overrides.message(refused, spec.queue, job_overrides, qspec is not None)
                )
            body = build_worker_pod(
                job=name,
                namespace=ns,
                job_uid=meta["uid"],
                queue=spec.queue,
                handler=spec.handler,
                payload=spec.payload,
                attempt=attempt,
                template=template,
                timeout_seconds=timeout,
                dependencies=self._dependency_results(ns, spec),
                payload_from=payload_from,
            )
        except TemplateError as exc:
            created = parse(meta.get("creationTimestamp")) or now
            if qspec is None and now < created + timedelta(seconds=QUEUE_GRACE_SECONDS):
                # The job may have been created right after its JobQueue, whose watch event has not
                # arrived yet: wait for it a little before failing for want of the queue's template.
                self.schedule(key, created + timedelta(seconds=QUEUE_GRACE_SECONDS))
                return
            out = lifecycle.Outcome(status=copy.deepcopy(status))  # conditions change in place
            lifecycle.finish_failed(out, now, meta.get("generation"), exc.reason, str(exc), dead_letter=True)
            await self.apply(key, obj, out)
            return
        try:
            pod, _created = await self.kube.create_pod(ns, body)
        except KubeError as exc:
            await self._pod_refused(key, obj, exc)
            return
        self._refusals.pop(key, None)
        self.store.put_pod(pod)
        new_status, event = lifecycle.start_attempt(
            status, attempt=attempt, pod=pod["metadata"]["name"], now=now, generation=meta.get("generation")
        )
        self.stats["dispatched"] += 1
        metrics.attempt_started(obj, attempt, now)
        out = lifecycle.Outcome(status=new_status, events=[event])
        if timeout:
            self.schedule(key, now + timedelta(seconds=timeout + lifecycle.TIMEOUT_GRACE_SECONDS))
        await self.apply(key, obj, out)

    async def _assign(
        self,
        key: Key,
        obj: dict[str, Any],
        spec: QueuedJobSpec,
        qspec: JobQueueSpec | None,
        worker: str,
        attempt: int,
        timeout: int | None,
    ) -> None:
        """Start ``attempt`` on a pool worker: one status write, only over the version the decision saw
        (a job that changed meanwhile is not assigned, so never to two workers); the worker's watch of
        ``status.worker`` picks it up."""
        meta, status, now = obj["metadata"], obj.get("status") or {}, self.clock()
        problem = None
        if spec.template is not None:
            problem = (
                "TemplateInPool",
                f"spec.template cannot apply in queue {spec.queue}: its attempts run on the pool's worker "
                "pods (spec.workers.mode Pool), which are made from the queue's template",
            )
        elif spec.payload_from is not None:
            job_overrides = qspec.job_overrides if qspec else None
            refused = overrides.refusals(
                None, spec.payload_from.model_dump(by_alias=True, exclude_none=True), job_overrides
            )
            if refused:
                problem = (
                    overrides.REASON,
                    overrides.message(refused, spec.queue, job_overrides, qspec is not None),
                )
        if problem is not None:
            out = lifecycle.Outcome(status=copy.deepcopy(status))
            lifecycle.finish_failed(out, now, meta.get("generation"), *problem, dead_letter=True)
            await self.apply(key, obj, out)
            return
        new_status, event = lifecycle.start_attempt(
            status, attempt=attempt, pod=worker, now=now, generation=meta.get("generation")
        )
        record = new_status["attemptHistory"][-1]
        record["worker"] = worker
        if timeout:
            record["timeoutSeconds"] = int(timeout)
        new_status.update(worker=worker, report=None)
        self.stats["dispatched"] += 1
        out = lifecycle.Outcome(status=new_status, events=[] if pool.quiet(event) else [event])
        await self.apply(key, obj, out, resource_version=meta.get("resourceVersion"))
        metrics.attempt_started(obj, attempt, now)
        if timeout:
            self.schedule(key, now + timedelta(seconds=timeout + lifecycle.TIMEOUT_GRACE_SECONDS))

    def _dependency_results(self, ns: str, spec: QueuedJobSpec) -> dict[str, Any] | None:
        """The dependsOn jobs' results (they all succeeded, or the job would not start), or None."""
        if not spec.depends_on:
            return None
        return {
            dep: ((self.store.jobs.get((ns, dep)) or {}).get("status") or {}).get("result")
            for dep in spec.depends_on
        }

    async def _pod_refused(self, key: Key, obj: dict[str, Any], exc: KubeError) -> None:
        """The apiserver refused the worker pod: wait and try again, or fail the job for good."""
        count = self._refusals.get(key, 0) + 1
        refusal = podrefusal.classify(exc.status, exc.reason, exc.message, count)
        now = self.clock()
        meta = obj["metadata"]
        out = lifecycle.Outcome(status=copy.deepcopy(obj.get("status") or {}))
        if not refusal.transient:
            self._refusals.pop(key, None)
            lifecycle.finish_failed(
                out, now, meta.get("generation"), refusal.reason, refusal.message, dead_letter=True
            )
            await self.apply(key, obj, out)
            return
        self._refusals[key] = count
        at = now + timedelta(seconds=refusal.delay_seconds)
        out.status.update(phase="Waiting", waitingReason=refusal.reason, nextAttemptAt=fmt(at))
        if count == 1:  # one Event per spell of refusals, not one per retry
            out.events.append(
                lifecycle.Event(
                    "Warning", "PodRefused", f"{refusal.reason}, retrying: {refusal.message}"[:1024]
                )
            )
        self.stats["pod_refusals"] += 1
        self.schedule(key, at)
        await self.apply(key, obj, out)

    # ------------------------------------------------------------- queue status
    def _queue_status_later(self, queue: Key) -> None:
        if queue in self.store.queues and queue not in self.queue_status_at:
            self.queue_status_at[queue] = time.monotonic() + QUEUE_STATUS_INTERVAL

    async def _queue_statuses(self) -> None:
        due = [q for q, at in self.queue_status_at.items() if at <= time.monotonic()]
        for queue in due:
            del self.queue_status_at[queue]
            try:
                await self._write_queue_status(queue)
            except KubeError as exc:
                self.log.warning("status of JobQueue %s/%s: %s", *queue, exc)

    async def _write_queue_status(self, queue: Key) -> None:
        ns, qname = queue
        obj = self.store.queues.get(queue)
        if obj is None:
            return
        self._waiting_reasons(queue)
        now = self.clock()
        summary = readmodel.queue_summary((job for _key, job in self.store.jobs_in_queue(ns, qname)), now)
        recent = self.completions[queue]
        while recent and recent[0] < now - timedelta(minutes=1):
            recent.popleft()
        qspec = self.store.queue_spec(ns, qname)
        new = {
            **summary.status_fields(),
            "completionsLastMinute": len(recent),
            "observedGeneration": obj["metadata"].get("generation"),
        }
        old = obj.get("status") or {}
        conditions = list(old.get("conditions") or [])
        st_for_cond: dict[str, Any] = {"conditions": conditions}
        ready_reason = "Paused" if qspec and qspec.paused else "Active"
        if qspec is None:
            lifecycle.set_condition(
                st_for_cond,
                "Ready",
                False,
                "InvalidSpec",
                "the queue's spec cannot be read",
                now,
                obj["metadata"].get("generation"),
            )
        else:
            lifecycle.set_condition(
                st_for_cond,
                "Ready",
                True,
                ready_reason,
                "paused: no new attempts start" if qspec.paused else "dispatching",
                now,
                obj["metadata"].get("generation"),
            )
        problem = self.pool_problems.get(queue)
        if qspec is not None and problem is not None:
            lifecycle.set_condition(
                st_for_cond, "Ready", False, problem[0], problem[1], now, obj["metadata"].get("generation")
            )
        new["conditions"] = st_for_cond["conditions"]
        new["workers"] = None
        if qspec is not None and qspec.workers is not None and qspec.pooled:
            ready = [v for v in self._worker_views(queue, qspec) if v.ready]
            new["workers"] = {
                "desired": self.pool_desired.get(queue, 0),
                "ready": len(ready),
                "busy": sum(1 for v in ready if v.busy),
                "idle": sum(1 for v in ready if not v.busy),
                "slots": len(ready) * qspec.workers.slots,
            }
        patch = status_patch({k: old.get(k) for k in new}, new)
        if patch:
            updated = await self.kube.patch_status(names.PLURAL_JOBQUEUES, ns, qname, patch)
            self.on_queue("MODIFIED", with_kind(updated, names.KIND_JOBQUEUE))  # may carry a spec change
        if qspec and qspec.retention:
            for victim in retention_victims(
                summary.finished,
                qspec.retention.succeeded,
                qspec.retention.failed,
                qspec.retention.cancelled,
                qspec.retention.superseded,
            ):
                vobj = self.store.jobs.get((ns, victim))
                await self.kube.delete_object(
                    names.PLURAL_QUEUEDJOBS, ns, victim, vobj["metadata"].get("uid") if vobj else None
                )


__all__ = ["Controller", "status_patch"]
