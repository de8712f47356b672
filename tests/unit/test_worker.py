"""The worker SDK: registry, the jobline-worker command (pod contract, exit codes), progress."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from jobline import names, worker
from jobline.worker import Context, PermanentError, ProgressReporter, Registry


class Recorder:
    """A progress transport that records (namespace, job, pct)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.fail = fail

    def __call__(self, namespace: str, job: str, progress: int) -> None:
        self.calls.append((namespace, job, progress))
        if self.fail:
            raise PermissionError("queuedjobs/status is forbidden")

    @property
    def values(self) -> list[int]:
        return [pct for _, _, pct in self.calls]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def result_path(tmp_path: Path) -> Path:
    return tmp_path / "termination-log"


def pod_env(result_path: Path, handler: str, payload: Any = None, **extra: str) -> dict[str, str]:
    env = {
        names.ENV_JOB: "job-1",
        names.ENV_NAMESPACE: "shop",
        names.ENV_QUEUE: "default",
        names.ENV_HANDLER: handler,
        names.ENV_ATTEMPT: "2",
        names.ENV_PAYLOAD: json.dumps(payload),
        worker.ENV_RESULT_PATH: str(result_path),
    }
    env.update(extra)
    return env


def run(registry: Registry, env: dict[str, str], transport: Recorder | None = None) -> int:
    return worker.main([], registry=registry, environ=env, progress_transport=transport or Recorder())


# --- registry --------------------------------------------------------------------------------


def test_registry_registers_and_refuses_duplicates() -> None:
    reg = Registry()

    @reg.handler("send-email")
    def send(payload: Any, ctx: Context) -> None:
        return None

    assert reg.get("send-email") is send
    assert "send-email" in reg and len(reg) == 1
    with pytest.raises(ValueError, match="already registered"):
        reg.register("send-email", send)
    for bad in ("", "-x", "has space", "x" * 64):
        with pytest.raises(ValueError, match="invalid handler name"):
            reg.register(bad, send)
    worker.handler("b", registry=reg)(send)
    assert reg.names() == ["b", "send-email"]


def test_module_level_decorator_uses_the_default_registry() -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    assert worker.handler(name)(print) is print
    assert name in worker.default_registry


# --- the command -----------------------------------------------------------------------------


def test_success_writes_compact_json_result(result_path: Path) -> None:
    reg = Registry()
    seen: list[tuple[Any, Context]] = []

    @reg.handler("add")
    def add(payload: Any, ctx: Context) -> dict[str, Any]:
        seen.append((payload, ctx))
        return {"sum": payload["a"] + payload["b"], "note": "ü"}

    assert run(reg, pod_env(result_path, "add", {"a": 1, "b": 2})) == 0
    assert result_path.read_text() == '{"sum":3,"note":"ü"}'
    payload, ctx = seen[0]
    assert payload == {"a": 1, "b": 2}
    assert (ctx.job, ctx.namespace, ctx.queue, ctx.handler, ctx.attempt) == (
        "job-1",
        "shop",
        "default",
        "add",
        2,
    )
    assert ctx.logger.name == "jobline.worker.add"


def test_logger_prefixes_job_and_attempt(result_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reg = Registry()
    reg.register("talk", lambda payload, ctx: ctx.logger.info("hello %s", "there"))
    with caplog.at_level(logging.INFO):
        assert run(reg, pod_env(result_path, "talk")) == 0
    assert "[job-1 attempt 2] hello there" in caplog.messages


def test_large_result_is_replaced(result_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reg = Registry()
    reg.register("big", lambda payload, ctx: "x" * 5000)
    assert run(reg, pod_env(result_path, "big")) == 0
    assert json.loads(result_path.read_text()) == {"truncated": True, "bytes": 5002}
    assert "truncated" in caplog.text


def test_exception_is_retryable_with_error_text(result_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reg = Registry()

    def boom(payload: Any, ctx: Context) -> None:
        raise RuntimeError("database unavailable\n" + "y" * 2000)

    reg.register("boom", boom)
    secret_payload = {"password": "hunter2"}
    assert run(reg, pod_env(result_path, "boom", secret_payload)) == worker.EXIT_RETRYABLE == 1
    text = result_path.read_text()
    assert text.startswith("RuntimeError: database unavailable y")
    assert len(text) <= 1024 and "\n" not in text
    assert "hunter2" not in caplog.text and "hunter2" not in text


def test_permanent_error_exits_66(result_path: Path) -> None:
    reg = Registry()

    def refuse(payload: Any, ctx: Context) -> None:
        raise PermanentError("no such user")

    reg.register("refuse", refuse)
    assert run(reg, pod_env(result_path, "refuse")) == worker.EXIT_PERMANENT == 66
    assert result_path.read_text() == "PermanentError: no such user"


def test_unknown_handler_exits_64_listing_registered(
    result_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = Registry()
    reg.register("a", print)
    reg.register("b", print)
    assert run(reg, pod_env(result_path, "nope")) == worker.EXIT_UNKNOWN_HANDLER == 64
    err = capsys.readouterr().err.strip()
    assert err == "jobline-worker: unknown handler 'nope' (registered: a, b)"
    assert "registered: a, b" in result_path.read_text()


def test_bad_payload_exits_65_without_echoing_it(
    result_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = Registry()
    reg.register("a", print)
    env = pod_env(result_path, "a")
    env[names.ENV_PAYLOAD] = "{secret-token-123"
    assert run(reg, env) == worker.EXIT_BAD_INPUT == 65
    err = capsys.readouterr().err
    assert "JOBLINE_PAYLOAD is not valid JSON" in err and err.count("\n") == 1
    assert "secret-token-123" not in err + result_path.read_text()


@pytest.mark.parametrize("missing", [names.ENV_JOB, names.ENV_HANDLER, names.ENV_PAYLOAD])
def test_missing_env_exits_65(result_path: Path, capsys: pytest.CaptureFixture[str], missing: str) -> None:
    reg = Registry()
    reg.register("a", print)
    env = pod_env(result_path, "a")
    del env[missing]
    assert run(reg, env) == 65
    assert f"missing environment variable(s): {missing}" in capsys.readouterr().err


def test_bad_attempt_exits_65(result_path: Path) -> None:
    reg = Registry()
    reg.register("a", print)
    assert run(reg, pod_env(result_path, "a", **{names.ENV_ATTEMPT: "zero"})) == 65


def test_async_handler(result_path: Path) -> None:
    reg = Registry()

    @reg.handler("later")
    async def later(payload: Any, ctx: Context) -> list[int]:
        await asyncio.sleep(0)
        ctx.progress(100)
        return [payload, ctx.attempt]

    transport = Recorder()
    assert run(reg, pod_env(result_path, "later", 7), transport) == 0
    assert result_path.read_text() == "[7,2]"
    assert transport.calls == [("shop", "job-1", 100)]


def test_async_handler_exception(result_path: Path) -> None:
    reg = Registry()

    async def fails(payload: Any, ctx: Context) -> None:
        raise PermanentError("bad")

    reg.register("fails", fails)
    assert run(reg, pod_env(result_path, "fails")) == 66


def test_sigterm_in_sync_handler_exits_143(result_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reg = Registry()
    cleaned: list[bool] = []

    def slow(payload: Any, ctx: Context) -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()  # not reached: the signal handler raises first
        except Exception:  # a handler's broad except must not swallow termination
            cleaned.append(False)
        finally:
            cleaned.append(True)

    before = signal.getsignal(signal.SIGTERM)
    reg.register("slow", slow)
    assert run(reg, pod_env(result_path, "slow")) == worker.EXIT_TERMINATED == 143
    assert cleaned == [True]
    assert "terminated" in caplog.text and "terminated" in result_path.read_text()
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_cancels_async_handler(result_path: Path) -> None:
    reg = Registry()
    cancelled: list[bool] = []

    async def forever(payload: Any, ctx: Context) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    before = signal.getsignal(signal.SIGTERM)
    reg.register("forever", forever)
    assert run(reg, pod_env(result_path, "forever")) == 143
    assert cancelled == [True]
    assert signal.getsignal(signal.SIGTERM) is before


def test_imports_from_flag_and_env(
    result_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "myhandlers_flag.py").write_text(
        "from jobline.worker import handler\n@handler('from-flag')\ndef f(payload, ctx):\n    return 'flag'\n"
    )
    (tmp_path / "myhandlers_env.py").write_text(
        "from jobline.worker import handler\n@handler('from-env')\ndef f(payload, ctx):\n    return 'env'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    env = {worker.ENV_WORKER_IMPORTS: " myhandlers_env , "}
    assert worker.main(["--import", "myhandlers_flag", "--list"], environ=env) == 0
    listed = capsys.readouterr().out.split()
    assert {"from-flag", "from-env"} <= set(listed) and listed == sorted(listed)
    env = pod_env(result_path, "from-env", **{worker.ENV_WORKER_IMPORTS: "myhandlers_env"})
    assert worker.main(["--import", "myhandlers_flag"], environ=env, progress_transport=Recorder()) == 0
    assert result_path.read_text() == '"env"'


def test_import_failure_is_reported(result_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = pod_env(result_path, "x")
    assert worker.main(["--import", "no_such_module_xyz"], environ=env) == 64
    assert "cannot import handler module 'no_such_module_xyz'" in capsys.readouterr().err
    assert "no_such_module_xyz" in result_path.read_text()


def test_list_of_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert worker.main(["--import", "jobline.examples", "--list"], environ={}) == 0
    listed = capsys.readouterr().out.split()
    assert {"send-email", "generate-report", "deliver-webhook", "cleanup"} <= set(listed)


def test_unwritable_result_path_does_not_fail(tmp_path: Path) -> None:
    reg = Registry()
    reg.register("a", lambda payload, ctx: 1)
    assert run(reg, pod_env(tmp_path / "missing-dir" / "log", "a")) == 0


def test_unserializable_result_still_succeeds(result_path: Path) -> None:
    reg = Registry()
    reg.register("a", lambda payload, ctx: {1, 2})
    assert run(reg, pod_env(result_path, "a")) == 0
    assert json.loads(result_path.read_text()) == {"unserializable": True, "type": "set"}


def test_console_entry_point_runs() -> None:
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "jobline.worker", "--import", "jobline.examples", "--list"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert "deliver-webhook" in out.stdout.split()


# --- progress --------------------------------------------------------------------------------


def test_progress_reaches_transport_and_is_rate_limited(result_path: Path) -> None:
    reg = Registry()

    @reg.handler("steps")
    def steps(payload: Any, ctx: Context) -> None:
        for pct in (10, 20, 30, 100):
            ctx.progress(pct)

    transport = Recorder()
    assert run(reg, pod_env(result_path, "steps"), transport) == 0
    assert transport.calls[0] == ("shop", "job-1", 10)
    assert transport.values[-1] == 100
    assert len(transport.calls) <= 3  # 20 and 30 fall within a second of 10 (unless this machine stalls)


def test_progress_reporter_throttles_with_a_clock() -> None:
    clock, transport = Clock(), Recorder()
    reporter = ProgressReporter("ns", "job", transport, clock=clock)
    reporter.report(5)
    clock.now += 0.5
    reporter.report(10)  # throttled, kept
    reporter.report(15)  # throttled, replaces 10
    assert transport.values == [5]
    clock.now += 0.6
    reporter.report(20)  # a second after 5: written
    clock.now += 0.1
    reporter.report(25)  # throttled
    reporter.report(100)  # 100 is never throttled
    reporter.report(100)  # unchanged: not written again
    assert transport.values == [5, 20, 100]
    clock.now += 2
    reporter.report(-3)  # clamped to 0
    reporter.report(250)  # clamped to 100, never throttled
    assert transport.values == [5, 20, 100, 0, 100]
    with pytest.raises(TypeError):
        reporter.report("50")  # type: ignore[arg-type]


def test_progress_flush_writes_the_last_throttled_value() -> None:
    clock, transport = Clock(), Recorder()
    reporter = ProgressReporter("ns", "job", transport, clock=clock)
    reporter.report(40)
    reporter.report(60)
    reporter.flush()
    reporter.flush()
    assert transport.values == [40, 60]


def test_progress_is_flushed_when_the_handler_ends(result_path: Path) -> None:
    reg = Registry()
    reg.register("two", lambda payload, ctx: [ctx.progress(40), ctx.progress(60)])
    transport = Recorder()
    assert run(reg, pod_env(result_path, "two"), transport) == 0
    assert transport.values[-1] == 60


def test_progress_failure_warns_once_and_never_fails(
    result_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reg = Registry()

    @reg.handler("p")
    def p(payload: Any, ctx: Context) -> str:
        for pct in (10, 50, 100):
            ctx.progress(pct)
        return "ok"

    transport = Recorder(fail=True)
    with caplog.at_level(logging.INFO):
        assert run(reg, pod_env(result_path, "p"), transport) == 0
    assert result_path.read_text() == '"ok"'
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "progress" in r.getMessage()]
    assert len(warnings) == 1 and "PermissionError" in warnings[0].getMessage()
    assert len(transport.calls) >= 2


def test_kubernetes_progress_merge_patches_status() -> None:
    class FakeApi:
        def __init__(self) -> None:
            self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def patch_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> None:
            self.calls.append((args, kwargs))

    api = FakeApi()
    worker.KubernetesProgress(api)("shop", "job-1", 42)
    ((args, kwargs),) = api.calls
    assert args == (names.GROUP, names.VERSION, "shop", "queuedjobs", "job-1", {"status": {"progress": 42}})
    assert kwargs["_content_type"] == "application/merge-patch+json"


def test_kubernetes_progress_without_cluster_is_harmless(
    result_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    reg = Registry()
    reg.register("p", lambda payload, ctx: ctx.progress(100))
    assert worker.main([], registry=reg, environ=pod_env(result_path, "p")) == 0
    assert "cannot report progress" in caplog.text


def test_a_handler_reads_its_dependencies_results(result_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    reg = Registry()
    reg.register(
        "join", lambda payload, ctx: seen.append(dict(ctx.dependencies)) or {"n": len(ctx.dependencies)}
    )
    env = pod_env(result_path, "join", {})
    env[names.ENV_DEPENDENCIES] = json.dumps({"parent": {"rows": 3}, "other": None})
    assert run(reg, env) == 0
    assert seen == [{"parent": {"rows": 3}, "other": None}]
    del env[names.ENV_DEPENDENCIES]
    assert run(reg, env) == 0 and seen[-1] == {}  # no dependsOn: empty


@pytest.mark.parametrize("text", ["{broken", "[1, 2]"])
def test_unreadable_dependencies_exit_65(result_path: Path, text: str) -> None:
    reg = Registry()
    reg.register("a", print)
    env = pod_env(result_path, "a")
    env[names.ENV_DEPENDENCIES] = text
    assert run(reg, env) == worker.EXIT_BAD_INPUT


# --- payloadFrom: the payload is a mounted Secret key, not env --------------------------------------


def test_payload_from_a_file(result_path: Path, tmp_path: Path) -> None:
    secret = tmp_path / "payload.json"
    secret.write_text('{"token": "s3cret", "n": 2}')
    reg = Registry()
    reg.register("a", lambda payload, ctx: {"n": payload["n"], "has_token": "token" in payload})
    env = pod_env(result_path, "a")
    del env[names.ENV_PAYLOAD]
    env[names.ENV_PAYLOAD_FILE] = str(secret)
    assert run(reg, env) == 0
    assert json.loads(result_path.read_text()) == {"n": 2, "has_token": True}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"token": "s3cret"', "the payload file (JOBLINE_PAYLOAD_FILE) is not valid JSON"),
        (None, "cannot read the payload file (JOBLINE_PAYLOAD_FILE): FileNotFoundError"),
    ],
)
def test_a_bad_payload_file_exits_65_without_echoing_it(
    result_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    secret = tmp_path / "payload.json"
    if content is not None:
        secret.write_text(content)
    reg = Registry()
    reg.register("a", print)
    env = pod_env(result_path, "a")
    del env[names.ENV_PAYLOAD]
    env[names.ENV_PAYLOAD_FILE] = str(secret)
    assert run(reg, env) == 65
    err = capsys.readouterr().err
    assert message in err and "s3cret" not in err + result_path.read_text()
