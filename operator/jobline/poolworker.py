"""Pool mode of ``jobline-worker``: a long-lived worker pod running the attempts the operator assigns it.

In a JobQueue with Pool workers the operator starts no pod per attempt: it assigns an attempt to a
worker pod by writing ``status.worker=<pod>`` (with ``status.attempts`` and an open ``attemptHistory``
record) and expects the outcome back in ``status.report``, as it would read a pod's termination. This
module is that pod's side: :func:`serve` watches the jobs assigned to its pod and runs each attempt in
a child forked from the preloaded worker through the same :func:`jobline.worker.run` a per-attempt pod
uses, so a handler sees the same contract and one that hangs, crashes or leaks takes down neither the
other slots nor the worker.

Reports (``status.report``): the child's exit code (a signal N: 128+N) with reason Completed (0) or
Error; 143 Timeout past the record's ``timeoutSeconds``; 143 Terminated when the pod drains (SIGTERM)
past ``JOBLINE_DRAIN_SECONDS``; 137 WorkerLost for an attempt started before this process did (the
container restarted, so nothing runs it any more). A revoked assignment (``status.worker`` cleared, the
job gone, a later attempt) is stopped and not reported: the operator has moved on.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import functools
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, Final, Protocol, TypeVar

from jobline import names, worker
from jobline.core import timefmt

__all__ = [
    "DEFAULT_DRAIN_SECONDS",
    "ApiError",
    "Gone",
    "KubernetesTransport",
    "PoolConfig",
    "PoolWorker",
    "Transport",
    "process_start_time",
    "serve",
]

DEFAULT_DRAIN_SECONDS: Final = 25.0
STOP_GRACE_SECONDS: Final = 10.0  # SIGTERM -> SIGKILL of a timed-out or revoked attempt
DRAIN_KILL_GRACE_SECONDS: Final = 3.0  # SIGTERM -> SIGKILL of the attempts left at the drain deadline
RETRY_FOR_SECONDS: Final = 60.0  # how long a transient API failure is retried
REPORT_FLUSH_SECONDS: Final = 5.0  # on the way out: how long reports still being sent may take
MAX_MESSAGE_CHARS: Final = 4096

REASON_COMPLETED: Final = "Completed"
REASON_ERROR: Final = "Error"
REASON_TIMEOUT: Final = "Timeout"
REASON_TERMINATED: Final = "Terminated"
MESSAGE_TERMINATED: Final = "the worker pod stopped before the attempt finished"
MESSAGE_WORKER_LOST: Final = "the worker container restarted: the attempt no longer runs"

_MAX_WAIT: Final = 1.0  # the loop wakes at least this often (a child whose exit went unnoticed)
_FIRED_POLL: Final = 0.05  # a child whose sentinel closed but which waitpid does not show exited yet

log = logging.getLogger("jobline.worker.pool")

T = TypeVar("T")
_Key = tuple[str, str, int]  # (job name, job uid, attempt number)


# --- transport -------------------------------------------------------------------------------


class ApiError(Exception):
    """A transport call failed; `status` is the HTTP status, None when there was no answer."""

    def __init__(self, status: int | None, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"HTTP {status} {reason}".rstrip() if status else f"no answer ({reason})")

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, 429 or a server error."""
        return self.status is None or self.status == 429 or self.status >= 500


class Gone(ApiError):
    """The watch's resourceVersion is too old (410): list again."""

    def __init__(self, reason: str = "Gone") -> None:
        super().__init__(410, reason)


class Transport(Protocol):
    """What the pool worker needs of the API, for the jobs of one namespace assigned to one pod.

    Calls raise :class:`ApiError` (:class:`Gone` from a watch that must relist).
    """

    def list_assigned(self) -> tuple[list[dict[str, Any]], str]:
        """The QueuedJobs with ``status.worker`` = the pod, and the list's resourceVersion."""
        ...

    def watch_assigned(self, resource_version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, object) events from `resource_version` on; ends when the server closes the watch."""
        ...

    def patch_report(self, job: str, report: Mapping[str, Any]) -> None:
        """Merge-patch ``status.report`` of QueuedJob `job`."""
        ...

    def get_job(self, name: str) -> dict[str, Any] | None:
        """The QueuedJob `name`, None if there is none."""
        ...

    def read_secret_key(self, name: str, key: str) -> bytes:
        """The value of `key` in Secret `name` (404 when either is missing)."""
        ...

    def close(self) -> None:
        """Stop a running watch (best effort); called once, when the worker stops."""
        ...


class KubernetesTransport:
    """:class:`Transport` over the synchronous ``kubernetes`` client (the :mod:`jobline.kubeconfig` order)."""

    def __init__(
        self,
        namespace: str,
        pod: str,
        *,
        custom_api: Any = None,
        core_api: Any = None,
        request_timeout: float = 30.0,
        watch_seconds: int = 300,
    ) -> None:
        if custom_api is None:
            from jobline.client import custom_objects_api

            custom_api = custom_objects_api()
        if core_api is None:
            import kubernetes

            core_api = kubernetes.client.CoreV1Api(custom_api.api_client)
        self._custom = custom_api
        self._core = core_api
        self._namespace = namespace
        self._selector = f"status.worker={pod}"
        self._timeout = request_timeout
        self._watch_seconds = watch_seconds
        self._watch: Any = None

    def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            mapped = _api_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def list_assigned(self) -> tuple[list[dict[str, Any]], str]:
        listed = self._call(
            self._custom.list_namespaced_custom_object,
            names.GROUP,
            names.VERSION,
            self._namespace,
            names.PLURAL_QUEUEDJOBS,
            field_selector=self._selector,
            _request_timeout=self._timeout,
        )
        return list(listed.get("items") or []), str(
            (listed.get("metadata") or {}).get("resourceVersion") or ""
        )

    def watch_assigned(self, resource_version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        import kubernetes.watch

        watch_class: Any = kubernetes.watch.Watch  # untyped
        watch = watch_class()
        self._watch = watch
        try:
            # timeout_seconds: the server ends the watch (we resume from the last resourceVersion) and
            # the client raises a 410 instead of retrying it on its own; the read timeout catches a
            # connection that went silent.
            stream = watch.stream(
                self._custom.list_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                self._namespace,
                names.PLURAL_QUEUEDJOBS,
                field_selector=self._selector,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_seconds,
                _request_timeout=(self._timeout, self._watch_seconds + 30),
            )
            for event in stream:
                yield str(event.get("type")), event.get("raw_object") or {}
        except Exception as exc:
            mapped = _api_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            self._watch = None
            watch.stop()

    def patch_report(self, job: str, report: Mapping[str, Any]) -> None:
        self._call(
            self._custom.patch_namespaced_custom_object_status,
            names.GROUP,
            names.VERSION,
            self._namespace,
            names.PLURAL_QUEUEDJOBS,
            job,
            {"status": {"report": dict(report)}},
            _content_type="application/merge-patch+json",
            _request_timeout=self._timeout,
        )

    def get_job(self, name: str) -> dict[str, Any] | None:
        try:
            obj = self._call(
                self._custom.get_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                self._namespace,
                names.PLURAL_QUEUEDJOBS,
                name,
                _request_timeout=self._timeout,
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)

    def read_secret_key(self, name: str, key: str) -> bytes:
        secret = self._call(
            self._core.read_namespaced_secret, name, self._namespace, _request_timeout=self._timeout
        )
        data = secret.data or {}
        if key not in data:
            raise ApiError(404, f"the Secret has no key {key!r}")
        return base64.b64decode(data[key])

    def close(self) -> None:
        watch = self._watch
        if watch is not None:
            with contextlib.suppress(Exception):  # stop() shuts the socket down: the read returns
                watch.stop()


def _api_error(exc: Exception) -> ApiError | None:
    """An ApiException or a connection error as an ApiError (status and reason only: a body may echo
    the report, a result); None for anything else (a bug is not retried)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ApiException):
        status = exc.status or None
        reason = str(exc.reason or "")
        return Gone(reason) if status == 410 else ApiError(status, reason)
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return ApiError(None, type(exc).__name__)
    return None


def _with_retries(
    call: Callable[[], T], *, retry_for: float, initial: float, cancelled: threading.Event
) -> T:
    """`call()`, retried with backoff on transient ApiErrors for up to `retry_for` seconds."""
    deadline = time.monotonic() + retry_for
    delay = initial
    while True:
        try:
            return call()
        except ApiError as exc:
            if not exc.transient or time.monotonic() + delay > deadline:
                raise
            log.debug("transient API failure (%s); retrying in %.1fs", exc, delay)
        if cancelled.wait(delay):
            raise _Cancelled()
        delay = min(delay * 2, 10.0)


class _Cancelled(Exception):
    """The attempt being prepared was revoked or drained."""


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolConfig:
    """The pool worker pod's environment (``JOBLINE_POOL=1``)."""

    namespace: str
    queue: str
    pod: str
    slots: int = 1
    drain_seconds: float = DEFAULT_DRAIN_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PoolConfig:
        """Raises ValueError naming the missing or invalid variables."""
        required = (names.ENV_NAMESPACE, names.ENV_QUEUE, names.ENV_POD_NAME)
        missing = [key for key in required if not environ.get(key)]
        if missing:
            raise ValueError(f"missing environment variable(s): {', '.join(missing)}")
        try:
            slots = int(environ.get(names.ENV_SLOTS) or "1")
        except ValueError:
            slots = 0
        if slots < 1:
            raise ValueError(f"{names.ENV_SLOTS} must be a positive integer")
        try:
            drain = float(environ.get(names.ENV_DRAIN_SECONDS) or DEFAULT_DRAIN_SECONDS)
        except ValueError:
            drain = -1.0
        if not 0 <= drain < float("inf"):
            raise ValueError(f"{names.ENV_DRAIN_SECONDS} must be a number of seconds, 0 or more")
        return cls(
            namespace=environ[names.ENV_NAMESPACE],
            queue=environ[names.ENV_QUEUE],
            pod=environ[names.ENV_POD_NAME],
            slots=slots,
            drain_seconds=drain,
        )


def process_start_time() -> datetime:
    """When this process started (Linux ``/proc``), else now.

    The line between attempts this container may hold and attempts an earlier container of the pod
    held: the operator may assign attempts while the handler modules are still being imported.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime (after "comm")
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)
    except (OSError, ValueError, IndexError, StopIteration):
        return datetime.now(UTC)


# --- assignments -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Assignment:
    """An open attempt assigned to this pod, as the job's status shows it."""

    job: str
    uid: str
    number: int
    record: Mapping[str, Any]
    spec: Mapping[str, Any]
    reported: bool  # status.report is already about this attempt

    @property
    def key(self) -> _Key:
        return (self.job, self.uid, self.number)


def _assignment(obj: Mapping[str, Any], pod: str) -> _Assignment | None:
    """The job's open attempt if it is assigned to `pod`, else None."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if status.get("worker") != pod or status.get("phase") != "Running":
        return None
    number = status.get("attempts")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        return None
    history = status.get("attemptHistory") or []
    record = next((r for r in reversed(history) if isinstance(r, dict) and r.get("attempt") == number), None)
    if record is None or record.get("finishedAt") or record.get("worker") not in (None, pod):
        return None
    report = status.get("report") or {}
    return _Assignment(
        job=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        number=number,
        record=record,
        spec=obj.get("spec") or {},
        reported=isinstance(report, dict) and report.get("attempt") == number,
    )


@dataclass(eq=False)
class _Attempt:
    """An attempt this worker holds: being prepared, running in a child, or being stopped."""

    job: str
    uid: str
    number: int
    handler: str
    timeout: int | None
    spec: Mapping[str, Any]
    cancelled: threading.Event = field(default_factory=threading.Event)
    tmpdir: str | None = None
    env: dict[str, str] | None = None
    error: str | None = None  # why it could not be prepared
    process: BaseProcess | None = None
    began: float = 0.0  # monotonic, when the child started
    started_at: str | None = None
    stop_reason: str | None = None  # "timeout", "revoked" or "drain" once the parent stops it
    kill_at: float | None = None
    sentinel_fired: bool = False

    @property
    def key(self) -> _Key:
        return (self.job, self.uid, self.number)

    @property
    def label(self) -> str:
        return f"{self.job} attempt {self.number} ({self.handler or 'no handler'})"


class _Inbox:
    """Messages to the main loop from other threads and the SIGTERM handler, plus a pipe to wake it.

    No lock: a signal handler runs between two bytecodes of the main thread, which may hold any lock;
    deque appends are atomic.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._items: collections.deque[tuple[Any, ...]] = collections.deque()

    def __del__(self) -> None:
        # Closed only once nothing refers to it: a thread still finishing (a watch, a preparation)
        # may put a message after the loop ended, and an fd closed early may be another file by then.
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def fileno(self) -> int:
        return self._read

    def put(self, *item: Any) -> None:
        self._items.append(item)
        self.wake()

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe wakes the loop just as well
            os.write(self._write, b"\0")

    def take(self) -> list[tuple[Any, ...]]:
        with contextlib.suppress(OSError):
            while os.read(self._read, 4096):
                pass
        items = []
        while self._items:
            items.append(self._items.popleft())
        return items


class _Reporter:
    """Sends reports from threads of their own, so a slow apiserver never holds up the main loop."""

    def __init__(self, transport: Transport, *, retry_for: float, retry_initial: float) -> None:
        self._transport = transport
        self._retry_for = retry_for
        self._retry_initial = retry_initial
        self._threads: list[threading.Thread] = []

    def submit(self, job: str, report: dict[str, Any]) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        thread = threading.Thread(target=self._send, args=(job, report), name=f"report-{job}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _send(self, job: str, report: dict[str, Any]) -> None:
        number = report["attempt"]
        try:
            _with_retries(
                lambda: self._transport.patch_report(job, report),
                retry_for=self._retry_for,
                initial=self._retry_initial,
                cancelled=threading.Event(),
            )
        except ApiError as exc:
            if exc.status == 404:
                log.info("%s attempt %d: the job is gone, its report dropped", job, number)
            elif exc.status in (403, 422):
                log.warning(
                    "%s attempt %d: the report was refused (%s): the attempt is no longer assigned to "
                    "this pod; dropped",
                    job,
                    number,
                    exc,
                )
            else:
                log.error("%s attempt %d: cannot report (%s); dropped", job, number, exc)
        except Exception as exc:  # never let a report thread die with a traceback carrying the report
            log.error("%s attempt %d: cannot report (%s); dropped", job, number, type(exc).__name__)

    def flush(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the reports still being sent."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _child_main(
    registry: worker.Registry, env: dict[str, str], progress: worker.ProgressTransport | None
) -> None:
    """The forked child: one attempt through :func:`jobline.worker.run`; its return value is the exit code.

    In a process group of its own, so a SIGTERM meant for the worker (a runtime or init that signals the
    whole group) does not stop the attempts the drain lets finish: the parent stops them when it must. And
    killed with its parent (Linux's parent-death signal), so no attempt outlives a worker that died: its
    retry must never run beside it."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    _die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's drain handler is not the child's
    _unblock_sigterm(True)
    raise SystemExit(worker.run(registry, env, progress_transport=progress))


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG; a no-op off Linux)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid != os.getppid():  # it died before prctl took effect
        os._exit(names.EXIT_WORKER_LOST)


def _block_sigterm() -> bool:
    """Block SIGTERM in this thread; whether it was not blocked already."""
    return signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def _unblock_sigterm(blocked: bool) -> None:
    if blocked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


# --- the loop --------------------------------------------------------------------------------


class PoolWorker:
    """The pool worker's state and main loop; :func:`serve` builds one from the environment.

    Everything but the watch, the reads that prepare an attempt and the reports runs in the thread
    calling :meth:`run` (it forks the children and waits for them): no locks around the state.
    """

    def __init__(
        self,
        registry: worker.Registry,
        transport: Transport,
        config: PoolConfig,
        *,
        progress_transport: worker.ProgressTransport | None = None,
        started_at: datetime | None = None,
        tmp_dir: str | None = None,
        stop_grace: float = STOP_GRACE_SECONDS,
        drain_kill_grace: float = DRAIN_KILL_GRACE_SECONDS,
        retry_for: float = RETRY_FOR_SECONDS,
        retry_initial: float = 0.5,
        flush_seconds: float = REPORT_FLUSH_SECONDS,
    ) -> None:
        self._registry = registry
        self._transport = transport
        self._config = config
        self._progress = progress_transport
        self._process_started = started_at or process_start_time()
        self._tmp_dir = tmp_dir
        self._stop_grace = stop_grace
        self._drain_kill_grace = drain_kill_grace
        self._retry_for = retry_for
        self._retry_initial = retry_initial
        self._flush_seconds = flush_seconds
        self._mp = multiprocessing.get_context("fork")
        self._inbox = _Inbox()
        self._reporter = _Reporter(transport, retry_for=retry_for, retry_initial=retry_initial)
        self._stopping = threading.Event()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._slots: dict[_Key, _Attempt] = {}
        self._done: set[_Key] = set()  # reported, or decided: never run again
        self._drain_requested = False
        self._draining = False
        self._drain_deadline = 0.0
        self._view: tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]] = ((), ())

    # -- for tests and the signal handler (any thread) --

    def drain(self) -> None:
        """Stop taking attempts and let the running ones finish until the drain deadline (SIGTERM)."""
        self._drain_requested = True
        self._inbox.wake()

    @property
    def draining(self) -> bool:
        """The drain has begun: no attempt starts any more."""
        return self._draining

    def active(self) -> tuple[tuple[str, int], ...]:
        """(job, attempt) of the attempts held: being prepared, running or being stopped."""
        return self._view[0]

    def pending(self) -> tuple[tuple[str, int], ...]:
        """(job, attempt) of the assigned attempts waiting for a free slot."""
        return self._view[1]

    # -- the main loop --

    def run(self) -> int:
        """Run until drained; returns 0."""
        cfg = self._config
        log.info(
            "pool worker %s: %d slot(s), queue %s in namespace %s, drain %.0fs",
            cfg.pod,
            cfg.slots,
            cfg.queue,
            cfg.namespace,
            cfg.drain_seconds,
        )
        watcher = threading.Thread(target=self._watch_loop, name="jobline-pool-watch", daemon=True)
        watcher.start()
        try:
            while True:
                if self._drain_requested and not self._draining:
                    self._begin_drain()
                for item in self._inbox.take():
                    self._handle(item)
                self._reap()
                now = time.monotonic()
                self._enforce(now)
                self._reconcile()
                if self._draining and not self._slots:
                    break
                self._wait(now)
        finally:
            self._stopping.set()
            with contextlib.suppress(Exception):
                self._transport.close()
            self._kill_all()
            self._reporter.flush(self._flush_seconds)
        log.info("pool worker %s stopped", cfg.pod)
        return 0

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "snapshot":
            self._jobs = {
                str(obj["metadata"]["name"]): obj
                for obj in item[1]
                if (obj.get("metadata") or {}).get("name")
            }
        elif kind == "event":
            event, obj = item[1], item[2]
            name = (obj.get("metadata") or {}).get("name")
            if not name:
                return
            if event == "DELETED" or (obj.get("status") or {}).get("worker") != self._config.pod:
                self._jobs.pop(name, None)
            else:
                self._jobs[name] = obj
        elif kind == "prepared":
            self._prepared(item[1])

    def _reconcile(self) -> None:
        """Stop what is no longer assigned; start (or report at once) what is newly assigned."""
        self._done = {key for key in self._done if key[0] in self._jobs}
        wanted: dict[_Key, _Assignment] = {}
        for obj in self._jobs.values():
            found = _assignment(obj, self._config.pod)
            if found is not None:
                wanted[found.key] = found
        for key, att in list(self._slots.items()):
            if key not in wanted and att.stop_reason is None:
                self._revoke(att)
        fresh = [
            a for k, a in wanted.items() if k not in self._slots and k not in self._done and not a.reported
        ]
        fresh.sort(key=lambda a: (str(a.record.get("startedAt") or ""), a.job))
        pending = []
        for found in fresh:
            started = timefmt.parse(found.record.get("startedAt"))
            if started is not None and started < self._process_started:
                log.warning(
                    "%s attempt %d: started before this worker did; reported lost", found.job, found.number
                )
                self._done.add(found.key)
                self._report(
                    found.job,
                    found.number,
                    names.EXIT_WORKER_LOST,
                    names.WORKER_LOST,
                    MESSAGE_WORKER_LOST,
                    started_at=str(found.record.get("startedAt")),
                )
            elif self._draining:
                log.info(
                    "%s attempt %d: assigned while draining; reported terminated", found.job, found.number
                )
                self._done.add(found.key)
                self._report(
                    found.job, found.number, worker.EXIT_TERMINATED, REASON_TERMINATED, MESSAGE_TERMINATED
                )
            elif len(self._slots) < self._config.slots:
                self._begin(found)
            else:
                pending.append((found.job, found.number))
        self._view = (tuple((a.job, a.number) for a in self._slots.values()), tuple(pending))

    def _begin(self, found: _Assignment) -> None:
        timeout = found.record.get("timeoutSeconds")
        att = _Attempt(
            job=found.job,
            uid=found.uid,
            number=found.number,
            handler=str(found.spec.get("handler") or ""),
            timeout=timeout
            if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0
            else None,
            spec=found.spec,
        )
        self._slots[att.key] = att
        threading.Thread(target=self._prepare, args=(att,), name=f"prepare-{att.job}", daemon=True).start()

    def _prepare(self, att: _Attempt) -> None:
        """(A thread of its own.) The child's contract environment and files: the payload (a Secret's
        key read here, written to a 0600 file), the dependencies' results, the result file."""
        what = "the attempt's temporary directory"
        try:
            att.tmpdir = tempfile.mkdtemp(prefix="jobline-attempt-", dir=self._tmp_dir)  # 0700
            spec = att.spec
            env = {
                names.ENV_JOB: att.job,
                names.ENV_NAMESPACE: self._config.namespace,
                names.ENV_QUEUE: str(spec.get("queue") or self._config.queue),
                names.ENV_HANDLER: att.handler,
                names.ENV_ATTEMPT: str(att.number),
                names.ENV_RESULT_PATH: os.path.join(att.tmpdir, "result"),
            }
            ref = (spec.get("payloadFrom") or {}).get("secretKeyRef")
            if ref is not None:
                secret, key = str(ref.get("name") or ""), str(ref.get("key") or "")
                what = f"the payload (Secret {secret!r}, key {key!r})"
                data = self._retrying(lambda: self._transport.read_secret_key(secret, key), att)
                what = "the payload file"
                path = os.path.join(att.tmpdir, "payload.json")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                env[names.ENV_PAYLOAD_FILE] = path
            else:
                env[names.ENV_PAYLOAD] = json.dumps(
                    spec.get("payload"), separators=(",", ":"), ensure_ascii=False
                )
            deps = spec.get("dependsOn") or []
            if deps:
                what = "the results of the jobs it depends on"
                results = {}
                for dep in deps:
                    got = self._retrying(functools.partial(self._transport.get_job, str(dep)), att)
                    results[str(dep)] = ((got or {}).get("status") or {}).get("result")
                env[names.ENV_DEPENDENCIES] = json.dumps(results, separators=(",", ":"), ensure_ascii=False)
            att.env = env
        except _Cancelled:
            pass
        except ApiError as exc:
            att.error = f"cannot read {what}: {exc}"
        except Exception as exc:
            att.error = f"cannot prepare {what}: {worker.error_text(exc)}"
        finally:
            self._inbox.put("prepared", att)

    def _retrying(self, call: Callable[[], T], att: _Attempt) -> T:
        return _with_retries(
            call, retry_for=self._retry_for, initial=self._retry_initial, cancelled=att.cancelled
        )

    def _prepared(self, att: _Attempt) -> None:
        if self._slots.get(att.key) is not att:  # revoked or drained while being prepared
            self._cleanup(att)
            return
        if att.error is not None or att.env is None:
            del self._slots[att.key]
            self._done.add(att.key)
            log.error("%s: not started: %s", att.label, att.error)
            self._report(
                att.job, att.number, worker.EXIT_RETRYABLE, REASON_ERROR, att.error or "not prepared"
            )
            self._cleanup(att)
            return
        proc = self._mp.Process(
            target=_child_main,
            args=(self._registry, att.env, self._progress),
            name=f"jobline-{att.job}-{att.number}",
        )
        # SIGTERM blocked across the fork: until the child has put the default action back, it would
        # run the parent's drain handler; once unblocked there, a pending SIGTERM ends it at once.
        blocked = _block_sigterm()
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns about fork in a threaded process; the child touches nothing the
                # other threads (watch, reports) hold: its API client is created after the fork.
                warnings.filterwarnings("ignore", message=r".*fork\(\)", category=DeprecationWarning)
                proc.start()
        except OSError as exc:
            _unblock_sigterm(blocked)
            del self._slots[att.key]
            self._done.add(att.key)
            message = f"cannot start the attempt's process: {worker.error_text(exc)}"
            log.error("%s: %s", att.label, message)
            self._report(att.job, att.number, worker.EXIT_RETRYABLE, REASON_ERROR, message)
            self._cleanup(att)
            return
        _unblock_sigterm(blocked)
        att.process = proc
        att.began = time.monotonic()
        att.started_at = timefmt.fmt(timefmt.now())
        log.info("%s: started (pid %s)", att.label, proc.pid)

    def _revoke(self, att: _Attempt) -> None:
        if att.process is None:
            log.info("%s: assignment revoked before it started", att.label)
            att.cancelled.set()
            del self._slots[att.key]
        else:
            log.info("%s: assignment revoked; stopping it", att.label)
            self._stop(att, "revoked", self._stop_grace)

    def _stop(self, att: _Attempt, reason: str, grace: float) -> None:
        """SIGTERM (worker.run turns it into the handler's cleanup), SIGKILL after `grace` seconds."""
        att.stop_reason = reason
        att.kill_at = time.monotonic() + grace
        if att.process is not None:
            with contextlib.suppress(OSError):
                att.process.terminate()

    def _begin_drain(self) -> None:
        self._draining = True
        self._drain_deadline = time.monotonic() + self._config.drain_seconds
        running = sum(1 for a in self._slots.values() if a.process is not None)
        log.info("draining: %d attempt(s) running, %.0fs to finish", running, self._config.drain_seconds)
        for att in list(self._slots.values()):
            if att.process is None:  # still being prepared: it will not run
                att.cancelled.set()
                del self._slots[att.key]
                self._done.add(att.key)
                self._report(
                    att.job, att.number, worker.EXIT_TERMINATED, REASON_TERMINATED, MESSAGE_TERMINATED
                )

    def _enforce(self, now: float) -> None:
        """Timeouts, the drain deadline and the SIGKILL after a stop's grace period."""
        for att in self._slots.values():
            if att.process is None:
                continue
            if att.stop_reason is None and att.timeout is not None and now - att.began >= att.timeout:
                log.warning("%s: exceeded timeoutSeconds=%d; stopping it", att.label, att.timeout)
                self._stop(att, "timeout", self._stop_grace)
            if att.stop_reason is None and self._draining and now >= self._drain_deadline:
                log.warning("%s: still running at the drain deadline; stopping it", att.label)
                self._stop(att, "drain", self._drain_kill_grace)
            if att.kill_at is not None and now >= att.kill_at:
                log.warning("%s: still running after SIGTERM; killing it", att.label)
                att.kill_at = None
                with contextlib.suppress(OSError):
                    att.process.kill()

    def _reap(self) -> None:
        """Report the children that exited (the revoked ones excepted)."""
        for att in [a for a in self._slots.values() if a.process is not None]:
            assert att.process is not None
            code = att.process.exitcode
            if code is None:
                continue
            del self._slots[att.key]
            self._done.add(att.key)
            with contextlib.suppress(ValueError):
                att.process.close()  # its sentinel fd
            exit_code = min(255, code if code >= 0 else 128 - code)
            seconds = time.monotonic() - att.began
            if att.stop_reason == "revoked":
                log.info("%s: stopped after %.2fs (revoked, not reported)", att.label, seconds)
            elif att.stop_reason == "timeout":
                self._finish(
                    att,
                    worker.EXIT_TERMINATED,
                    REASON_TIMEOUT,
                    f"attempt exceeded timeoutSeconds={att.timeout}",
                    seconds,
                )
            elif att.stop_reason == "drain":
                self._finish(att, worker.EXIT_TERMINATED, REASON_TERMINATED, MESSAGE_TERMINATED, seconds)
            else:
                message = self._result(att)
                if exit_code == worker.EXIT_OK:
                    self._finish(att, exit_code, REASON_COMPLETED, message, seconds)
                else:
                    if not message:
                        message = (
                            f"the attempt's process was killed by signal {_signal_name(-code)}"
                            if code < 0
                            else f"the attempt's process exited with code {exit_code}"
                        )
                    self._finish(att, exit_code, REASON_ERROR, message, seconds)
            self._cleanup(att)

    def _finish(
        self, att: _Attempt, exit_code: int, reason: str, message: str | None, seconds: float
    ) -> None:
        log.info("%s: %s (exit %d) after %.2fs", att.label, reason, exit_code, seconds)
        self._report(att.job, att.number, exit_code, reason, message, started_at=att.started_at)

    def _result(self, att: _Attempt) -> str | None:
        """What worker.run left in the result file (the termination message), None if nothing."""
        if att.env is None:
            return None
        try:
            with open(att.env[names.ENV_RESULT_PATH], encoding="utf-8", errors="replace") as f:
                text = f.read(MAX_MESSAGE_CHARS)
        except OSError:
            return None
        return text or None

    def _report(
        self,
        job: str,
        number: int,
        exit_code: int,
        reason: str,
        message: str | None,
        *,
        started_at: str | None = None,
    ) -> None:
        # Every field, null ones included: a merge patch keeps any field it does not name, and the
        # previous attempt's report must not lend this one its message.
        report = {
            "attempt": number,
            "worker": self._config.pod,
            "exitCode": exit_code,
            "reason": reason,
            "message": None if message is None else message[:MAX_MESSAGE_CHARS],
            "startedAt": started_at,
            "finishedAt": timefmt.fmt(timefmt.now()),
        }
        self._reporter.submit(job, report)

    def _cleanup(self, att: _Attempt) -> None:
        if att.tmpdir is not None:
            shutil.rmtree(att.tmpdir, ignore_errors=True)
            att.tmpdir = None

    def _wait(self, now: float) -> None:
        """Until a message, a child's exit or the next deadline."""
        deadlines = [now + _MAX_WAIT]
        if self._draining and self._drain_deadline > now:
            deadlines.append(self._drain_deadline)
        sentinels: dict[int, _Attempt] = {}
        for att in self._slots.values():
            if att.process is None:
                continue
            if att.timeout is not None and att.stop_reason is None:
                deadlines.append(att.began + att.timeout)
            if att.kill_at is not None:
                deadlines.append(att.kill_at)
            if att.sentinel_fired:
                deadlines.append(now + _FIRED_POLL)
            else:
                sentinels[att.process.sentinel] = att
        timeout = max(0.0, min(deadlines) - time.monotonic())
        for ready in multiprocessing.connection.wait([self._inbox.fileno(), *sentinels], timeout):
            if isinstance(ready, int) and ready in sentinels:
                sentinels[ready].sentinel_fired = True

    def _kill_all(self) -> None:
        """Children left behind by an error in the loop: killed, not reported."""
        for att in list(self._slots.values()):
            att.cancelled.set()
            if att.process is not None and att.process.exitcode is None:
                log.error("%s: killed (the worker is stopping)", att.label)
                with contextlib.suppress(OSError):
                    att.process.kill()
                att.process.join(5)
            self._cleanup(att)
        self._slots.clear()

    # -- the watch (a thread of its own) --

    def _watch_loop(self) -> None:
        """List and watch the jobs assigned to this pod, into the inbox; relist on 410, back off on errors."""
        rv: str | None = None
        delay = initial = 0.5
        listed_at = 0.0
        while not self._stopping.is_set():
            try:
                if rv is None:
                    items, rv = self._transport.list_assigned()
                    listed_at = time.monotonic()
                    self._inbox.put("snapshot", items)
                began, events = time.monotonic(), 0
                for kind, obj in self._transport.watch_assigned(rv):
                    if self._stopping.is_set():
                        return
                    if kind == "ERROR":  # a Status object
                        code = obj.get("code")
                        if code == 410:
                            raise Gone()
                        raise ApiError(code if isinstance(code, int) else None, str(obj.get("reason") or ""))
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        events += 1
                        self._inbox.put("event", kind, obj)
                if events or time.monotonic() - began > 1.0:
                    delay = initial
                    continue  # the server ended the watch: resume from the last resourceVersion
            except Gone:
                log.info("the watch of assigned jobs expired; listing them again")
                rv = None
                if time.monotonic() - listed_at > 1.0:
                    continue
            except Exception as exc:
                log.warning(
                    "watching the jobs assigned to this pod failed (%s); retrying in %.1fs",
                    _brief(exc),
                    delay,
                )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 10.0)


def _brief(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ApiError) else type(exc).__name__


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


# --- entry point -----------------------------------------------------------------------------


def serve(
    registry: worker.Registry,
    environ: Mapping[str, str],
    *,
    transport: Transport | None = None,
    progress_transport: worker.ProgressTransport | None = None,
    started_at: datetime | None = None,
    tmp_dir: str | None = None,
) -> int:
    """The pool worker (``jobline-worker`` with ``JOBLINE_POOL=1``): runs the attempts assigned to this
    pod until SIGTERM drains it; returns the exit code (0 after a drain, 65 for a bad environment).

    `started_at` overrides the process start time (:func:`process_start_time`), the line of the
    startup sweep; `transport` defaults to :class:`KubernetesTransport`.
    """
    try:
        config = PoolConfig.from_environ(environ)
    except ValueError as exc:
        log.error("jobline-worker (pool): %s", exc)
        return worker.EXIT_BAD_INPUT
    if transport is None:
        try:
            transport = KubernetesTransport(config.namespace, config.pod)
        except Exception as exc:
            log.error("jobline-worker (pool): no Kubernetes configuration: %s", worker.error_text(exc))
            return worker.EXIT_RETRYABLE
    pool = PoolWorker(
        registry,
        transport,
        config,
        progress_transport=progress_transport,
        started_at=started_at,
        tmp_dir=tmp_dir,
    )

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        pool.drain()

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (tests): drain() instead
        return pool.run()
    try:
        return pool.run()
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
