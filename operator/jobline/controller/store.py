"""In-memory view of QueuedJobs, JobQueues and attempt pods, fed by watches and by our own writes.

Dispatch needs the whole queue at once (ordering, concurrency, uniqueness), so the operator keeps
this view instead of reading objects one handler call at a time. Objects are kept as the raw
dicts the API returned; parsed specs are cached per resourceVersion. Both loops read the same
store: the schedule loop follows its schedules' jobs through ``by_owner`` and a listener.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from jobline import names
from jobline.core.models import DEFAULT_QUEUE, FINISHED_PHASES, JobQueueSpec, QueuedJobSpec
from jobline.core.models.common import spec_error
from jobline.core.schedule_state import owner_uid
from jobline.kube import resource_version as _rv

Key = tuple[str, str]  # (namespace, name)
JobListener = Callable[[Key, "dict[str, Any] | None", "dict[str, Any] | None"], None]  # key, old, new


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata", {})
    return meta.get("namespace", ""), meta.get("name", "")


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without ``metadata.managedFields``, which nothing here reads and which is a large part
    of every object the operator and kubelet have written (a copy: the watch's dict is not changed)."""
    meta = obj.get("metadata")
    if meta and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


@dataclass
class Parsed:
    rv: str
    spec: QueuedJobSpec | None
    error: str | None


class Store:
    def __init__(self) -> None:
        self.jobs: dict[Key, dict[str, Any]] = {}
        self.queues: dict[Key, dict[str, Any]] = {}
        self.pods: dict[Key, dict[str, dict[str, Any]]] = defaultdict(dict)  # job key -> pod name -> pod
        # Attempt pods deleted after they had ended (their DELETED event's last state), kept until the job
        # is final: a pod's end and its deletion can reach the store before the job's next reconcile, and
        # the reconcile must still see how the attempt ended (an exit 0 after a cancel is a success).
        self.ended: dict[Key, dict[str, dict[str, Any]]] = {}
        self.by_queue: dict[Key, set[str]] = defaultdict(set)  # (ns, queue) -> job names
        self.dependents: dict[Key, set[str]] = defaultdict(set)  # (ns, dependency) -> job names
        self.by_unique: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        # (ns, queue) -> jobs holding a slot: an unfinished pod, or phase Running. Kept up to date on
        # every change, so dispatch does not count over the whole queue (10,000 jobs) on each step.
        self.active: dict[Key, set[str]] = defaultdict(set)
        self._active_in: dict[Key, Key] = {}  # job key -> the (ns, queue) whose active set holds it
        self.by_owner: dict[str, set[Key]] = defaultdict(set)  # JobSchedule uid -> the jobs it created
        # Pool mode: (ns, queue) -> worker pod name -> pod; (ns, worker pod) -> jobs assigned to it.
        self.pool_pods: dict[Key, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.by_worker: dict[Key, set[str]] = defaultdict(set)
        self._worker_of: dict[Key, Key] = {}  # job key -> (ns, worker pod) it is assigned to
        self._job_index: dict[Key, tuple[str, tuple[str, ...], str | None, str | None]] = {}
        self._listeners: list[JobListener] = []
        self.synced = False  # the controller listed everything (again after a standby)
        self._on_synced: list[Callable[[], None]] = []
        self._parsed: dict[Key, Parsed] = {}
        self._queue_parsed: dict[Key, tuple[str, JobQueueSpec | None]] = {}

    def when_synced(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the store has been listed in full (``mark_synced``)."""
        self._on_synced.append(callback)

    def mark_synced(self) -> None:
        self.synced = True
        for callback in self._on_synced:
            callback()

    # ------------------------------------------------------------------ jobs
    def listen(self, listener: JobListener) -> None:
        """Call ``listener(key, old, new)`` after every change of a job (``new`` None: dropped)."""
        self._listeners.append(listener)

    def put_job(self, obj: dict[str, Any]) -> bool:
        """Store a job unless we hold a newer version; True when it changed."""
        obj = slim(obj)
        key = key_of(obj)
        old = self.jobs.get(key)
        if old is not None and _rv(old) >= _rv(obj) and _rv(obj):
            return False
        self.jobs[key] = obj
        if key in self.ended and (obj.get("status") or {}).get("phase") in FINISHED_PHASES:
            del self.ended[key]
        self._reindex(key, obj)
        self._refresh_active(key)
        for listener in self._listeners:
            listener(key, old, obj)
        return True

    def drop_job(self, key: Key) -> dict[str, Any] | None:
        obj = self.jobs.pop(key, None)
        self._unindex(key)
        self._parsed.pop(key, None)
        self.pods.pop(key, None)
        self.ended.pop(key, None)
        self._refresh_active(key)
        if obj is not None:
            for listener in self._listeners:
                listener(key, obj, None)
        return obj

    def stale_jobs(
        self, listed: list[dict[str, Any]], list_rv: int, namespace: str | None, owned: bool = False
    ) -> list[dict[str, Any]]:
        """Jobs held here that a list (of ``namespace``, None: all; ``owned``: only jobs of schedules)
        taken at ``list_rv`` did not return and that are not newer than it: deleted while unwatched."""
        seen = {key_of(o) for o in listed}
        return [
            obj
            for key, obj in self.jobs.items()
            if (namespace is None or key[0] == namespace)
            and key not in seen
            and _rv(obj) <= list_rv
            and (not owned or self._job_index.get(key, (None,) * 4)[3] is not None)
        ]

    def stale_pods(
        self, listed: list[dict[str, Any]], list_rv: int, namespace: str | None
    ) -> list[dict[str, Any]]:
        """Attempt pods held here that a list taken at ``list_rv`` did not return and that are not newer
        than it: deleted while unwatched (e.g. during a watch's 410 gap)."""
        seen = {key_of(o) for o in listed}
        return [
            pod
            for jkey, pods in self.pods.items()
            if namespace is None or jkey[0] == namespace
            for pod in pods.values()
            if key_of(pod) not in seen and _rv(pod) <= list_rv
        ]

    def stale_queues(
        self, listed: list[dict[str, Any]], list_rv: int, namespace: str | None
    ) -> list[dict[str, Any]]:
        """JobQueues held here that a list taken at ``list_rv`` did not return: deleted while unwatched."""
        seen = {key_of(o) for o in listed}
        return [
            obj
            for key, obj in self.queues.items()
            if (namespace is None or key[0] == namespace) and key not in seen and _rv(obj) <= list_rv
        ]

    def _refresh_worker(self, key: Key) -> None:
        held = self._worker_of.pop(key, None)
        if held is not None:
            self.by_worker[held].discard(key[1])
            if not self.by_worker[held]:
                del self.by_worker[held]
        obj = self.jobs.get(key)
        status = (obj or {}).get("status") or {}
        worker = status.get("worker")
        report = status.get("report") or {}
        if report.get("attempt") == status.get("attempts") and report.get("worker") == worker:
            worker = None  # reported: the slot is free again before the operator has written the end
        if worker:
            self._worker_of[key] = (key[0], str(worker))
            self.by_worker[(key[0], str(worker))].add(key[1])

    def _refresh_active(self, key: Key) -> None:
        self._refresh_worker(key)
        held = self._active_in.pop(key, None)
        if held is not None:
            self.active[held].discard(key[1])
        obj = self.jobs.get(key)
        if obj is None:
            return
        if self.active_pods(key) or (obj.get("status") or {}).get("phase") == "Running":
            queue = (key[0], self.queue_of(key))
            self.active[queue].add(key[1])
            self._active_in[key] = queue

    def active_count(self, ns: str, queue: str) -> int:
        """Jobs of the queue that hold a slot (an unfinished pod, or phase Running)."""
        return len(self.active.get((ns, queue), ()))

    def _reindex(self, key: Key, obj: dict[str, Any]) -> None:
        spec = obj.get("spec") or {}
        queue = spec.get("queue") or DEFAULT_QUEUE
        deps = tuple(spec.get("dependsOn") or ())
        unique = spec.get("uniqueKey")
        owner = owner_uid(obj)
        if self._job_index.get(key) == (queue, deps, unique, owner):
            return
        self._unindex(key)
        ns, name = key
        self.by_queue[(ns, queue)].add(name)
        for dep in deps:
            self.dependents[(ns, dep)].add(name)
        if unique:
            self.by_unique[(ns, queue, unique)].add(name)
        if owner:
            self.by_owner[owner].add(key)
        self._job_index[key] = (queue, deps, unique, owner)

    def _unindex(self, key: Key) -> None:
        index = self._job_index.pop(key, None)
        if index is None:
            return
        ns, name = key
        queue, deps, unique, owner = index
        self.by_queue[(ns, queue)].discard(name)
        for dep in deps:
            self.dependents[(ns, dep)].discard(name)
        if unique:
            self.by_unique[(ns, queue, unique)].discard(name)
        if owner:
            owned = self.by_owner.get(owner)
            if owned is not None:
                owned.discard(key)
                if not owned:
                    del self.by_owner[owner]

    def queue_of(self, key: Key) -> str:
        index = self._job_index.get(key)
        return index[0] if index else DEFAULT_QUEUE

    def spec(self, key: Key) -> Parsed:
        obj = self.jobs[key]
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        cached = self._parsed.get(key)
        if cached is not None and cached.rv == rv:
            return cached
        try:
            parsed = Parsed(rv, QueuedJobSpec.model_validate(obj.get("spec") or {}, strict=False), None)
        except ValidationError as exc:
            parsed = Parsed(rv, None, spec_error(exc))
        self._parsed[key] = parsed
        return parsed

    def jobs_of_schedule(self, uid: str) -> list[dict[str, Any]]:
        """The jobs a JobSchedule (by uid) created, as far as the store holds them."""
        return [obj for key in self.by_owner.get(uid, ()) if (obj := self.jobs.get(key)) is not None]

    def jobs_in_queue(self, ns: str, queue: str) -> Iterator[tuple[Key, dict[str, Any]]]:
        for name in self.by_queue.get((ns, queue), ()):
            key = (ns, name)
            obj = self.jobs.get(key)
            if obj is not None:
                yield key, obj

    # ---------------------------------------------------------------- queues
    def put_queue(self, obj: dict[str, Any]) -> bool:
        key = key_of(obj)
        old = self.queues.get(key)
        if old is not None and _rv(old) >= _rv(obj) and _rv(obj):
            return False
        changed = old is None or old.get("spec") != obj.get("spec")
        self.queues[key] = slim(obj)
        return changed

    def drop_queue(self, key: Key) -> None:
        self.queues.pop(key, None)
        self._queue_parsed.pop(key, None)

    def queue_spec(self, ns: str, queue: str) -> JobQueueSpec | None:
        """The JobQueue's spec; None when there is no such queue (built-in defaults apply)."""
        obj = self.queues.get((ns, queue))
        if obj is None:
            return None
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        cached = self._queue_parsed.get((ns, queue))
        if cached is not None and cached[0] == rv:
            return cached[1]
        try:
            spec: JobQueueSpec | None = JobQueueSpec.model_validate(obj.get("spec") or {}, strict=False)
        except ValidationError:
            spec = None
        self._queue_parsed[(ns, queue)] = (rv, spec)
        return spec

    # ------------------------------------------------------------------ pods
    @staticmethod
    def job_of_pod(obj: dict[str, Any]) -> Key | None:
        """The key of the job an attempt pod belongs to (the annotation holds the full name; the label
        may be cut); None when the pod is not ours."""
        meta = obj.get("metadata", {})
        job = meta.get("annotations", {}).get(names.ANNOTATION_JOB_NAME) or meta.get("labels", {}).get(
            names.LABEL_JOB
        )
        return (meta.get("namespace", ""), job) if job else None

    def put_pod(self, obj: dict[str, Any]) -> Key | None:
        """Store an attempt pod; returns its job's key (None when the pod is not ours)."""
        jkey = self.job_of_pod(obj)
        if jkey is None:
            return None
        meta = obj.get("metadata", {})
        old = self.pods[jkey].get(meta.get("name", ""))
        if old is not None and _rv(old) > _rv(obj) and _rv(obj):
            return jkey
        self.pods[jkey][meta.get("name", "")] = slim(obj)
        self._refresh_active(jkey)
        return jkey

    def drop_pod(self, obj: dict[str, Any]) -> Key | None:
        jkey = self.job_of_pod(obj)
        if jkey is None:
            return None
        name = obj.get("metadata", {}).get("name", "")
        self.pods.get(jkey, {}).pop(name, None)
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed") and jkey in self.jobs:
            self.ended.setdefault(jkey, {})[name] = slim(obj)
        self._refresh_active(jkey)
        return jkey

    # ------------------------------------------------------------- pool pods
    @staticmethod
    def queue_of_worker(obj: dict[str, Any]) -> Key | None:
        meta = obj.get("metadata", {})
        queue = (meta.get("labels") or {}).get(names.LABEL_POOL)
        return (meta.get("namespace", ""), queue) if queue else None

    def put_pool_pod(self, obj: dict[str, Any]) -> Key | None:
        """Store a pool worker pod; returns its queue's key (None when it is not one)."""
        qkey = self.queue_of_worker(obj)
        if qkey is None:
            return None
        name = obj.get("metadata", {}).get("name", "")
        old = self.pool_pods[qkey].get(name)
        if old is not None and _rv(old) > _rv(obj) and _rv(obj):
            return qkey
        self.pool_pods[qkey][name] = slim(obj)
        return qkey

    def drop_pool_pod(self, obj: dict[str, Any]) -> Key | None:
        qkey = self.queue_of_worker(obj)
        if qkey is not None:
            self.pool_pods.get(qkey, {}).pop(obj.get("metadata", {}).get("name", ""), None)
        return qkey

    def pool_pod(self, ns: str, name: str) -> dict[str, Any] | None:
        """A worker pod by name (any queue of the namespace: an attempt names its pod, not its queue)."""
        for (pns, _queue), pods in self.pool_pods.items():
            if pns == ns and name in pods:
                return pods[name]
        return None

    def stale_pool_pods(
        self, listed: list[dict[str, Any]], list_rv: int, namespace: str | None
    ) -> list[dict[str, Any]]:
        """Worker pods held here that a list taken at ``list_rv`` did not return: deleted while unwatched."""
        seen = {key_of(o) for o in listed}
        return [
            pod
            for qkey, pods in self.pool_pods.items()
            if namespace is None or qkey[0] == namespace
            for pod in pods.values()
            if key_of(pod) not in seen and _rv(pod) <= list_rv
        ]

    def busy(self, ns: str, worker: str) -> int:
        """Attempts assigned to a worker pod and not ended."""
        return len(self.by_worker.get((ns, worker), ()))

    def pods_for_reconcile(self, key: Key) -> list[dict[str, Any]]:
        """The job's attempt pods, with those that ended and were deleted since (see ``ended``)."""
        live = self.pods.get(key, {})
        return [*live.values(), *(p for n, p in self.ended.get(key, {}).items() if n not in live)]

    def active_pods(self, key: Key) -> int:
        return sum(
            1
            for p in self.pods.get(key, {}).values()
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )
