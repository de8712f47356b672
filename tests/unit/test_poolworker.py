"""The pool worker (jobline.poolworker): real forked children running real handlers, over a fake API.

The fake transport keeps the jobs in memory and feeds the worker's watch from a queue the test
pushes to (as the field-selector watch would: ADDED/MODIFIED while assigned to the pod, DELETED once
not). Children signal the test through multiprocessing events and values, which a fork shares.
"""

from __future__ import annotations

import contextlib
import copy
import json
import multiprocessing
import os
import queue
import re
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobline import names, poolworker, worker
from jobline.poolworker import ApiError, Gone, PoolConfig, PoolWorker
from jobline.worker import Context, PermanentError, Registry

pytestmark = pytest.mark.timeout(60)

POD = "pool-abc-0"
NS = "shop"
MP = multiprocessing.get_context("fork")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")
LONG = 30.0  # how long a blocked handler waits at most (the test stops it long before)


def now_text(delta: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_job(
    name: str,
    handler: str,
    payload: Any = None,
    *,
    attempt: int = 1,
    worker_pod: str | None = POD,
    timeout: int | None = None,
    started: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "attempt": attempt,
        "pod": worker_pod,
        "worker": worker_pod,
        "startedAt": started or now_text(),
    }
    if timeout is not None:
        record["timeoutSeconds"] = timeout
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_QUEUEDJOB,
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {"queue": "default", "handler": handler, "payload": payload, **spec},
        "status": {"phase": "Running", "worker": worker_pod, "attempts": attempt, "attemptHistory": [record]},
    }


class FakeTransport:
    """In-memory jobs and Secrets of one namespace; the watch is a queue the test pushes to."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.secrets: dict[tuple[str, str], bytes] = {}
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.patch_calls: list[str] = []
        self.patch_errors: list[ApiError] = []  # raised by the next patch_report calls, in order
        self.events: queue.Queue[tuple[str, dict[str, Any]] | Exception | None] = queue.Queue()
        self.cond = threading.Condition()
        self.rv = 0
        self.closed = False

    def _assigned(self, obj: Mapping[str, Any] | None) -> bool:
        return obj is not None and (obj.get("status") or {}).get("worker") == POD

    def put(self, obj: dict[str, Any], *, notify: bool = True) -> None:
        """Store `obj`; tell the watch as the field-selector watch would (unless `notify` is False)."""
        with self.cond:
            self.rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            name = obj["metadata"]["name"]
            before = self.jobs.get(name)
            self.jobs[name] = obj
        if notify and (self._assigned(obj) or self._assigned(before)):
            kind = "ADDED" if not self._assigned(before) else "MODIFIED" if self._assigned(obj) else "DELETED"
            self.events.put((kind, copy.deepcopy(obj)))

    def revoke(self, name: str) -> None:
        obj = copy.deepcopy(self.jobs[name])
        obj["status"]["worker"] = None
        self.put(obj)

    # -- Transport --

    def list_assigned(self) -> tuple[list[dict[str, Any]], str]:
        with self.cond:
            items = [copy.deepcopy(o) for o in self.jobs.values() if self._assigned(o)]
            return items, str(self.rv)

    def watch_assigned(self, resource_version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        while not self.closed:
            item = self.events.get()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def patch_report(self, job: str, report: Mapping[str, Any]) -> None:
        with self.cond:
            self.patch_calls.append(job)
            if self.patch_errors:
                raise self.patch_errors.pop(0)
            if job not in self.jobs:
                raise ApiError(404, "Not Found")
            self.reports.append((job, dict(report)))
            obj = copy.deepcopy(self.jobs[job])
            obj["status"]["report"] = dict(report)
            self.cond.notify_all()
        self.put(obj)

    def get_job(self, name: str) -> dict[str, Any] | None:
        with self.cond:
            return copy.deepcopy(self.jobs.get(name))

    def read_secret_key(self, name: str, key: str) -> bytes:
        try:
            return self.secrets[(name, key)]
        except KeyError:
            raise ApiError(404, "Not Found") from None

    def close(self) -> None:
        self.closed = True
        self.events.put(None)

    # -- for the test --

    def wait_reports(self, count: int, timeout: float = 15.0) -> dict[str, dict[str, Any]]:
        """The reports by job once there are `count` of them."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.reports) >= count, timeout):
                raise AssertionError(f"{len(self.reports)} report(s) after {timeout}s, not {count}")
            return {job: report for job, report in self.reports}

    def report(self, job: str, timeout: float = 15.0) -> dict[str, Any]:
        with self.cond:
            if not self.cond.wait_for(lambda: any(j == job for j, _ in self.reports), timeout):
                raise AssertionError(f"no report on {job} after {timeout}s")
            return next(r for j, r in self.reports if j == job)


def wait_until(cond: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        tick.wait(0.01)


def config(slots: int = 1, drain: float = 0.0) -> PoolConfig:
    return PoolConfig(namespace=NS, queue="default", pod=POD, slots=slots, drain_seconds=drain)


@contextlib.contextmanager
def running(
    registry: Registry, fake: FakeTransport, *, slots: int = 1, **kwargs: Any
) -> Iterator[PoolWorker]:
    """A PoolWorker running in a thread; drained (drain 0: the children left are stopped) at the end."""
    kwargs.setdefault("started_at", datetime.now(UTC) - timedelta(seconds=5))
    kwargs.setdefault("progress_transport", lambda ns, job, pct: None)
    kwargs.setdefault("drain_kill_grace", 2.0)
    kwargs.setdefault("retry_initial", 0.05)
    pool = PoolWorker(registry, fake, config(slots), **kwargs)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(pool.run()), daemon=True)
    thread.start()
    try:
        yield pool
    finally:
        pool.drain()
        thread.join(20)
        assert not thread.is_alive(), "the pool worker did not stop"
    assert codes == [0]


class Gate:
    """Handlers that block until the test lets them go, telling it they started and cleaned up."""

    def __init__(self) -> None:
        self.started = MP.Event()
        self.release = MP.Event()
        self.cleaned = MP.Event()
        self.pid = MP.Value("i", 0)

    def block(self, result: Any = "released") -> Any:
        try:  # the SIGTERM may come as soon as `started` is seen
            self.pid.value = os.getpid()
            self.started.set()
            if not self.release.wait(LONG):
                raise RuntimeError("never released")
            return result
        finally:
            self.cleaned.set()


# --- outcomes --------------------------------------------------------------------------------


def test_success_reports_the_result_as_compact_json(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reg = Registry()
    progress = MP.Value("i", -1)

    @reg.handler("add")
    def add(payload: Any, ctx: Context) -> Any:
        ctx.progress(100)
        return {"sum": payload["a"] + payload["b"], "who": [ctx.job, ctx.namespace, ctx.queue, ctx.attempt]}

    def record(ns: str, job: str, pct: int) -> None:
        progress.value = pct

    fake = FakeTransport()
    fake.put(make_job("add-1", "add", {"a": 1, "b": 2, "secret": "hunter2"}, attempt=3))
    caplog.set_level("DEBUG", logger="jobline.worker.pool")
    with running(reg, fake, progress_transport=record, tmp_dir=str(tmp_path)) as pool:
        report = fake.report("add-1")
        wait_until(lambda: not pool.active(), "the attempt to be let go")
    assert report == {
        "attempt": 3,
        "worker": POD,
        "exitCode": 0,
        "reason": "Completed",
        "message": '{"sum":3,"who":["add-1","shop","default",3]}',
        "startedAt": report["startedAt"],
        "finishedAt": report["finishedAt"],
    }
    assert TIME_RE.match(report["startedAt"]) and TIME_RE.match(report["finishedAt"])
    assert report["startedAt"] <= report["finishedAt"]
    assert progress.value == 100
    assert list(tmp_path.iterdir()) == []  # the attempt's files are gone
    assert "hunter2" not in caplog.text and '"sum"' not in caplog.text
    assert "add-1 attempt 3 (add): Completed (exit 0)" in caplog.text


def _fails(payload: Any, ctx: Context) -> None:
    raise ValueError("boom")


def _refuses(payload: Any, ctx: Context) -> None:
    raise PermanentError("no such user")


def _exits(payload: Any, ctx: Context) -> None:
    os._exit(3)


def _kills_itself(payload: Any, ctx: Context) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize(
    ("handler", "code", "message"),
    [
        (_fails, 1, "ValueError: boom"),
        (_refuses, 66, "PermanentError: no such user"),
        (None, 64, "unknown handler 'nope' (registered: other)"),
        (_exits, 3, "the attempt's process exited with code 3"),
        (_kills_itself, 137, "the attempt's process was killed by signal SIGKILL"),
    ],
    ids=["retryable", "permanent", "unknown-handler", "os-exit", "signal"],
)
def test_failures_are_reported_with_the_exit_code(
    handler: Callable[[Any, Context], Any] | None, code: int, message: str
) -> None:
    reg = Registry()
    reg.register("other", lambda payload, ctx: None)
    if handler is not None:
        reg.register("h", handler)
    fake = FakeTransport()
    fake.put(make_job("j", "h" if handler else "nope"))
    with running(reg, fake):
        report = fake.report("j")
    assert (report["exitCode"], report["reason"], report["message"]) == (code, "Error", message)


def test_a_timed_out_attempt_is_stopped_while_the_other_slot_goes_on() -> None:
    reg = Registry()
    hang, other = Gate(), Gate()
    reg.register("hang", lambda payload, ctx: hang.block())
    reg.register("other", lambda payload, ctx: other.block({"ok": True}))
    fake = FakeTransport()
    fake.put(make_job("slow", "hang", timeout=1))
    fake.put(make_job("fast", "other"))
    with running(reg, fake, slots=2) as pool:
        assert hang.started.wait(10) and other.started.wait(10)
        began = time.monotonic()
        report = fake.report("slow")
        assert time.monotonic() - began < 5
        assert (report["exitCode"], report["reason"], report["message"]) == (
            143,
            "Timeout",
            "attempt exceeded timeoutSeconds=1",
        )
        assert hang.cleaned.wait(5)  # SIGTERM became the handler's cleanup
        assert ("fast", 1) in pool.active()
        other.release.set()
        report = fake.report("fast")
    assert (report["exitCode"], report["reason"], report["message"]) == (0, "Completed", '{"ok":true}')


def test_a_handler_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    reg = Registry()
    started, terminated = MP.Event(), MP.Event()

    def stubborn(payload: Any, ctx: Context) -> None:
        started.set()
        deadline = time.monotonic() + LONG
        while time.monotonic() < deadline:
            try:
                threading.Event().wait(LONG)
            except BaseException:  # worker.run's SIGTERM, swallowed
                terminated.set()

    reg.register("stubborn", stubborn)
    fake = FakeTransport()
    fake.put(make_job("j", "stubborn", timeout=1))
    with running(reg, fake, stop_grace=0.5) as pool:
        assert started.wait(10)
        report = fake.report("j")
        wait_until(lambda: not pool.active(), "the attempt to be let go")
    assert terminated.is_set()
    assert (report["exitCode"], report["reason"]) == (143, "Timeout")


def test_a_revoked_attempt_is_stopped_and_not_reported() -> None:
    reg = Registry()
    gate = Gate()
    reg.register("hang", lambda payload, ctx: gate.block())
    fake = FakeTransport()
    fake.put(make_job("j", "hang"))
    with running(reg, fake) as pool:
        assert gate.started.wait(10)
        fake.revoke("j")
        wait_until(lambda: not pool.active(), "the revoked attempt to stop")
        assert gate.cleaned.is_set()
        with pytest.raises(ProcessLookupError):
            os.kill(gate.pid.value, 0)  # stopped and reaped
    assert fake.reports == [] and fake.patch_calls == []


def test_an_attempt_moved_on_is_stopped_and_the_new_one_runs() -> None:
    reg = Registry()
    gate = Gate()
    reg.register("h", lambda payload, ctx: gate.block() if ctx.attempt == 1 else f"attempt {ctx.attempt}")
    fake = FakeTransport()
    fake.put(make_job("j", "h"))
    with running(reg, fake):
        assert gate.started.wait(10)
        fake.put(make_job("j", "h", attempt=2))
        reports = fake.wait_reports(1)
        assert gate.cleaned.wait(5)
    assert [r["attempt"] for _, r in fake.reports] == [2]
    assert reports["j"]["message"] == '"attempt 2"'


# --- the worker's life -----------------------------------------------------------------------


def test_startup_reports_an_attempt_started_before_the_process_as_lost() -> None:
    reg = Registry()
    ran = MP.Event()

    def h(payload: Any, ctx: Context) -> str:
        ran.set()
        return "ran"

    reg.register("h", h)
    fake = FakeTransport()
    fake.put(make_job("old", "h", started=now_text(-3600)))
    started_at = datetime.now(UTC) - timedelta(seconds=1)
    fake.put(make_job("new", "h"))
    with running(reg, fake, started_at=started_at):
        reports = fake.wait_reports(2)
    assert reports["old"] == {
        "attempt": 1,
        "worker": POD,
        "exitCode": names.EXIT_WORKER_LOST,
        "reason": names.WORKER_LOST,
        "message": poolworker.MESSAGE_WORKER_LOST,
        "startedAt": fake.jobs["old"]["status"]["attemptHistory"][0]["startedAt"],
        "finishedAt": reports["old"]["finishedAt"],
    }
    assert (reports["new"]["exitCode"], reports["new"]["message"]) == (0, '"ran"')
    assert poolworker.process_start_time() <= datetime.now(UTC)


def test_sigterm_drains(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real signal path: serve() in the main thread, SIGTERM from another thread. The attempt that
    finishes within the drain is reported as it ended, the one past it Terminated, one assigned during
    it Terminated at once; serve returns 0 and puts the previous SIGTERM handler back."""
    reg = Registry()
    quick, slow = Gate(), Gate()
    reg.register("quick", lambda payload, ctx: quick.block("quick done"))
    reg.register("slow", lambda payload, ctx: slow.block())
    fake = FakeTransport()
    fake.put(make_job("a", "quick"))
    fake.put(make_job("b", "slow"))
    pools: list[PoolWorker] = []

    class Captured(PoolWorker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            pools.append(self)

    monkeypatch.setattr(poolworker, "PoolWorker", Captured)
    problems: list[BaseException] = []
    drain_began: list[float] = []

    def drive() -> None:
        try:
            assert quick.started.wait(10) and slow.started.wait(10)
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
            drain_began.append(time.monotonic())
            wait_until(lambda: pools[0].draining, "the drain to begin")
            fake.put(make_job("c", "quick"))
            assert fake.report("c")["reason"] == "Terminated"
            quick.release.set()
            assert fake.report("a")["reason"] == "Completed"
        except BaseException as exc:
            problems.append(exc)
            if pools:
                pools[0].drain()
            quick.release.set()
            slow.release.set()

    env = {
        names.ENV_POOL: "1",
        names.ENV_NAMESPACE: NS,
        names.ENV_QUEUE: "default",
        names.ENV_POD_NAME: POD,
        names.ENV_SLOTS: "2",
        names.ENV_DRAIN_SECONDS: "2",
    }
    previous = signal.getsignal(signal.SIGTERM)
    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    code = poolworker.serve(
        reg,
        env,
        transport=fake,
        progress_transport=lambda ns, job, pct: None,
        started_at=datetime.now(UTC) - timedelta(seconds=5),
    )
    ended = time.monotonic()
    driver.join(10)
    assert not problems, problems
    assert code == 0
    assert signal.getsignal(signal.SIGTERM) == previous
    reports = fake.wait_reports(3)
    assert reports["a"]["exitCode"] == 0 and reports["a"]["message"] == '"quick done"'
    assert (reports["b"]["exitCode"], reports["b"]["reason"], reports["b"]["message"]) == (
        143,
        "Terminated",
        "the worker pod stopped before the attempt finished",
    )
    assert reports["b"]["startedAt"] is not None
    assert (reports["c"]["exitCode"], reports["c"]["reason"], reports["c"]["startedAt"]) == (
        143,
        "Terminated",
        None,
    )
    assert slow.cleaned.wait(1)
    assert 2 <= ended - drain_began[0] < 8
    assert not pools[0].active()


def test_at_most_slots_attempts_run_at_once() -> None:
    reg = Registry()
    current, peak, lock, gate = MP.Value("i", 0), MP.Value("i", 0), MP.Lock(), MP.Semaphore(0)

    def h(payload: Any, ctx: Context) -> Any:
        with lock:
            current.value += 1
            peak.value = max(peak.value, current.value)
        try:
            if not gate.acquire(timeout=LONG):
                raise RuntimeError("never released")
        finally:
            with lock:
                current.value -= 1
        return payload

    reg.register("h", h)
    fake = FakeTransport()
    with running(reg, fake, slots=2) as pool:
        for i in range(4):
            fake.put(make_job(f"j{i}", "h", i))
        wait_until(
            lambda: len(pool.active()) == 2 and len(pool.pending()) == 2 and current.value == 2,
            "two attempts running, two waiting",
        )
        for _ in range(4):
            gate.release()
        reports = fake.wait_reports(4)
    assert peak.value == 2
    assert {job: r["message"] for job, r in reports.items()} == {f"j{i}": str(i) for i in range(4)}


# --- inputs ----------------------------------------------------------------------------------


def test_payload_from_a_secret_goes_through_a_private_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reg = Registry()

    def h(payload: Any, ctx: Context) -> Any:
        (attempt_dir,) = [d for d in tmp_path.iterdir() if (d / "payload.json").exists()]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [attempt_dir, *attempt_dir.iterdir()]}
        return {"payload": payload, "modes": modes}

    reg.register("h", h)
    fake = FakeTransport()
    fake.secrets[("creds", "payload.json")] = b'{"token": "s3cret"}'
    ref = {"secretKeyRef": {"name": "creds", "key": "payload.json"}}
    fake.put(make_job("j", "h", payloadFrom=ref))
    fake.put(make_job("missing", "h", payloadFrom={"secretKeyRef": {"name": "nope", "key": "k"}}))
    with running(reg, fake, slots=2, tmp_dir=str(tmp_path)) as pool:
        reports = fake.wait_reports(2)
        wait_until(lambda: not pool.active(), "the attempts to be let go")
    result = json.loads(reports["j"]["message"])
    assert result["payload"] == {"token": "s3cret"}
    dir_mode = next(mode for name, mode in result["modes"].items() if name.startswith("jobline-attempt-"))
    assert (dir_mode, result["modes"]["payload.json"]) == (0o700, 0o600)
    assert list(tmp_path.iterdir()) == []
    assert (reports["missing"]["exitCode"], reports["missing"]["reason"]) == (1, "Error")
    assert (
        reports["missing"]["message"]
        == "cannot read the payload (Secret 'nope', key 'k'): HTTP 404 Not Found"
    )
    assert "s3cret" not in caplog.text


def test_dependencies_are_the_results_of_the_jobs_depended_on() -> None:
    reg = Registry()
    reg.register("h", lambda payload, ctx: dict(ctx.dependencies))
    fake = FakeTransport()
    dep = make_job("dep-a", "h", worker_pod=None)
    dep["status"] = {"phase": "Succeeded", "result": {"n": 1}}
    fake.put(dep)
    fake.put(make_job("j", "h", dependsOn=["dep-a", "dep-gone"]))
    with running(reg, fake):
        report = fake.report("j")
    assert json.loads(report["message"]) == {"dep-a": {"n": 1}, "dep-gone": None}


# --- the API ---------------------------------------------------------------------------------


def test_a_refused_report_is_dropped_and_a_transient_failure_retried() -> None:
    reg = Registry()
    reg.register("h", lambda payload, ctx: ctx.job)
    fake = FakeTransport()
    fake.patch_errors = [ApiError(403, "Forbidden")]
    fake.put(make_job("refused", "h"))
    with running(reg, fake, retry_for=2.0) as pool:
        wait_until(lambda: fake.patch_calls == ["refused"] and not pool.active(), "the refused report")
        fake.patch_errors = [ApiError(503, "Service Unavailable"), ApiError(None, "ConnectionError")]
        fake.put(make_job("retried", "h"))
        report = fake.report("retried")
    assert report["message"] == '"retried"'
    assert fake.patch_calls == ["refused", "retried", "retried", "retried"]  # 403: never retried
    assert [job for job, _ in fake.reports] == ["retried"]


def test_the_watch_relists_after_410() -> None:
    reg = Registry()
    reg.register("h", lambda payload, ctx: "seen")
    fake = FakeTransport()
    with running(reg, fake):
        fake.put(make_job("j", "h"), notify=False)  # missed by the watch: only a list sees it
        fake.events.put(Gone())
        report = fake.report("j")
    assert report["message"] == '"seen"'


def test_serve_refuses_an_incomplete_environment(caplog: pytest.LogCaptureFixture) -> None:
    env = {names.ENV_POOL: "1", names.ENV_NAMESPACE: NS, names.ENV_QUEUE: "q", names.ENV_SLOTS: "0"}
    assert poolworker.serve(Registry(), env, transport=FakeTransport()) == worker.EXIT_BAD_INPUT
    assert "missing environment variable(s): JOBLINE_POD_NAME" in caplog.text
    env[names.ENV_POD_NAME] = POD
    assert poolworker.serve(Registry(), env, transport=FakeTransport()) == worker.EXIT_BAD_INPUT
    assert "JOBLINE_SLOTS must be a positive integer" in caplog.text


def test_pool_config_defaults() -> None:
    env = {names.ENV_NAMESPACE: NS, names.ENV_QUEUE: "q", names.ENV_POD_NAME: POD}
    assert PoolConfig.from_environ(env) == PoolConfig(NS, "q", POD, slots=1, drain_seconds=25.0)
    env.update({names.ENV_SLOTS: "4", names.ENV_DRAIN_SECONDS: "2.5"})
    assert PoolConfig.from_environ(env) == PoolConfig(NS, "q", POD, slots=4, drain_seconds=2.5)


def test_the_worker_command_serves_the_pool_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Registry, Mapping[str, str]]] = []

    def fake_serve(registry: Registry, environ: Mapping[str, str], **kwargs: Any) -> int:
        seen.append((registry, environ))
        return 7

    monkeypatch.setattr(poolworker, "serve", fake_serve)
    reg = Registry()
    env = {names.ENV_POOL: "1"}
    assert worker.main([], registry=reg, environ=env) == 7
    assert seen == [(reg, env)]


# --- KubernetesTransport (against stand-ins of the kubernetes client's APIs) -----------------


class _Response:
    """A streamed watch response: one JSON event per line."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.status = 200
        self._body = b"".join(json.dumps(e).encode() + b"\n" for e in events)

    def stream(self, amt: Any = None, decode_content: Any = None) -> Iterator[bytes]:
        yield self._body

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class _CustomApi:
    def __init__(self, events: list[dict[str, Any]] | None = None, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.events = events or []
        self.error = error
        self.api_client = None

    def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("list", args, kwargs))
        if kwargs.get("watch"):
            return _Response(self.events)
        return {"items": [{"metadata": {"name": "j"}}], "metadata": {"resourceVersion": "41"}}

    def patch_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("patch", args, kwargs))
        if self.error is not None:
            raise self.error

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("get", args, kwargs))
        if self.error is not None:
            raise self.error
        return {"metadata": {"name": args[-1]}}


class _CoreApi:
    def read_namespaced_secret(self, name: str, namespace: str, **kwargs: Any) -> Any:
        import base64
        from types import SimpleNamespace

        return SimpleNamespace(data={"k": base64.b64encode(b'{"x": 1}').decode()})


def test_kubernetes_transport_lists_watches_and_patches_what_the_operator_expects() -> None:
    from kubernetes.client.exceptions import ApiException

    events = [
        {"type": "ADDED", "object": {"metadata": {"name": "j", "resourceVersion": "42"}}},
        {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "old"}},
    ]
    custom = _CustomApi(events)
    transport = poolworker.KubernetesTransport(NS, POD, custom_api=custom, core_api=_CoreApi())
    assert transport.list_assigned() == ([{"metadata": {"name": "j"}}], "41")
    assert custom.calls[0][1] == (names.GROUP, names.VERSION, NS, names.PLURAL_QUEUEDJOBS)
    assert custom.calls[0][2]["field_selector"] == f"status.worker={POD}"
    seen = []
    with pytest.raises(Gone):
        for event in transport.watch_assigned("41"):
            seen.append(event)
    assert seen == [("ADDED", {"metadata": {"name": "j", "resourceVersion": "42"}})]
    watch_kwargs = custom.calls[1][2]
    assert (watch_kwargs["watch"], watch_kwargs["resource_version"]) == (True, "41")
    assert watch_kwargs["field_selector"] == f"status.worker={POD}"

    transport.patch_report("j", {"attempt": 1, "exitCode": 0})
    name, args, kwargs = custom.calls[-1]
    assert (name, args[4:]) == ("patch", ("j", {"status": {"report": {"attempt": 1, "exitCode": 0}}}))
    assert kwargs["_content_type"] == "application/merge-patch+json"
    assert transport.read_secret_key("creds", "k") == b'{"x": 1}'
    with pytest.raises(ApiError) as missing:
        transport.read_secret_key("creds", "other")
    assert missing.value.status == 404

    custom.error = ApiException(status=403, reason="Forbidden")
    with pytest.raises(ApiError) as refused:
        transport.patch_report("j", {})
    assert (refused.value.status, refused.value.transient) == (403, False)
    custom.error = ApiException(status=404, reason="Not Found")
    assert transport.get_job("gone") is None
    custom.error = ConnectionResetError()
    with pytest.raises(ApiError) as dropped:
        transport.get_job("j")
    assert (dropped.value.status, dropped.value.transient) == (None, True)
    custom.error = ApiException(status=503, reason="Service Unavailable")
    with pytest.raises(ApiError) as busy:
        transport.patch_report("j", {})
    assert busy.value.transient
