"""Worker SDK: register handlers and run one attempt of one QueuedJob (the ``jobline-worker`` command).

The pod contract: the operator starts a pod per attempt with ``JOBLINE_JOB``, ``JOBLINE_NAMESPACE``,
``JOBLINE_QUEUE``, ``JOBLINE_HANDLER``, ``JOBLINE_ATTEMPT`` and ``JOBLINE_PAYLOAD`` (JSON) set. The
worker runs the handler and leaves, as the container's termination message, the handler's return
value as compact JSON (success) or a short error text (failure); the exit code tells the operator
whether to retry::

    import jobline.worker

    @jobline.worker.handler("send-email")
    def send_email(payload, ctx):
        ctx.progress(50)
        return {"messageId": "..."}

In a queue's Pool mode (``JOBLINE_POOL=1``) the same command serves a long-lived worker pod instead:
it runs each attempt the operator assigns to the pod in a forked child through `run`, so handlers
see the same contract, and reports the outcome in the job's status (:mod:`jobline.poolworker`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final, Protocol, TypeVar

from jobline import names

__all__ = [
    "ENV_RESULT_PATH",
    "ENV_WORKER_IMPORTS",
    "EXIT_BAD_INPUT",
    "EXIT_OK",
    "EXIT_PERMANENT",
    "EXIT_RETRYABLE",
    "EXIT_TERMINATED",
    "EXIT_UNKNOWN_HANDLER",
    "Context",
    "Handler",
    "KubernetesProgress",
    "PermanentError",
    "ProgressReporter",
    "ProgressTransport",
    "Registry",
    "default_registry",
    "handler",
    "main",
]

# --- the contract ----------------------------------------------------------------------------

# Exit codes and env vars are the pod contract, named once in jobline.names (the operator reads them).
EXIT_OK: Final = names.EXIT_OK
EXIT_RETRYABLE: Final = names.EXIT_RETRYABLE
EXIT_UNKNOWN_HANDLER: Final = names.EXIT_UNKNOWN_HANDLER
EXIT_BAD_INPUT: Final = names.EXIT_BAD_INPUT
EXIT_PERMANENT: Final = names.EXIT_PERMANENT
EXIT_TERMINATED: Final = names.EXIT_TERMINATED
ENV_RESULT_PATH: Final = names.ENV_RESULT_PATH
ENV_WORKER_IMPORTS: Final = names.ENV_WORKER_IMPORTS
DEFAULT_RESULT_PATH: Final = "/dev/termination-log"
MAX_RESULT_BYTES: Final = 4096
MAX_ERROR_CHARS: Final = 1024
PROGRESS_MIN_INTERVAL_SECONDS: Final = 1.0

_HANDLER_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")  # spec.handler's pattern

log = logging.getLogger("jobline.worker")


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (bad input, refused by the peer): exit 66."""


class _Terminated(BaseException):
    """SIGTERM arrived (a BaseException, so a handler's ``except Exception`` lets it through)."""


# --- progress --------------------------------------------------------------------------------


class ProgressTransport(Protocol):
    """Writes ``status.progress`` of one QueuedJob; may raise on failure."""

    def __call__(self, namespace: str, job: str, progress: int) -> None: ...


class KubernetesProgress:
    """Merge-patches ``status.progress`` through the Kubernetes API (in-cluster config, else kubeconfig)."""

    def __init__(self, api: Any = None, *, request_timeout: float = 5.0) -> None:
        self._api = api
        self._timeout = request_timeout
        self._config_error: Exception | None = None

    def __call__(self, namespace: str, job: str, progress: int) -> None:
        if self._config_error is not None:  # no configuration now means none later either
            raise self._config_error
        if self._api is None:
            from jobline.client import custom_objects_api

            try:
                self._api = custom_objects_api()
            except Exception as exc:
                self._config_error = exc
                raise
        self._api.patch_namespaced_custom_object_status(
            names.GROUP,
            names.VERSION,
            namespace,
            names.PLURAL_QUEUEDJOBS,
            job,
            {"status": {"progress": progress}},
            _content_type="application/merge-patch+json",
            _request_timeout=self._timeout,
        )


class ProgressReporter:
    """Sends progress to a transport: at most one write per `min_interval` (100 always goes out at once).

    A throttled value is kept and written by the next call after the interval, or by `flush`.
    Transport failures are logged once as a warning and otherwise ignored.
    """

    def __init__(
        self,
        namespace: str,
        job: str,
        transport: ProgressTransport | None,
        *,
        min_interval: float = PROGRESS_MIN_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self._namespace = namespace
        self._job = job
        self._transport = transport
        self._min_interval = min_interval
        self._clock = clock
        self._logger = logger
        self._last_sent: int | None = None
        self._last_time: float | None = None
        self._pending: int | None = None
        self._warned = False
        self._lock = threading.Lock()

    def report(self, pct: int) -> None:
        """Record progress `pct` (clamped to 0..100), writing it now unless throttled."""
        if isinstance(pct, bool) or not isinstance(pct, int | float):
            raise TypeError(f"progress must be a number, not {type(pct).__name__}")
        value = max(0, min(100, int(pct)))
        with self._lock:
            now = self._clock()
            throttled = (
                value != 100 and self._last_time is not None and now - self._last_time < self._min_interval
            )
            if throttled:
                self._pending = value
                return
            self._send(value, now)

    def flush(self) -> None:
        """Write a throttled value that has not gone out yet."""
        with self._lock:
            if self._pending is not None:
                self._send(self._pending, self._clock())

    def _send(self, value: int, now: float) -> None:
        self._pending = None
        if value == self._last_sent or self._transport is None:
            self._last_sent = value
            return
        self._last_sent = value
        self._last_time = now
        try:
            self._transport(self._namespace, self._job, value)
        except Exception as exc:
            if not self._warned:
                self._warned = True
                self._logger.warning(
                    "cannot report progress (%s: %s); the job goes on without it",
                    type(exc).__name__,
                    _one_line(str(exc), 300),
                )
            else:
                self._logger.debug("progress not reported: %s", type(exc).__name__)


# --- context ---------------------------------------------------------------------------------


class _PrefixFilter(logging.Filter):
    """Prefixes each message of a handler logger with the job and attempt."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = f"{self.prefix}{record.msg}"
        return True


def handler_logger(handler_name: str, job: str, attempt: int) -> logging.Logger:
    """The logger ``jobline.worker.<handler>``, prefixing messages with ``[<job> attempt <n>]``."""
    logger = logging.getLogger(f"jobline.worker.{handler_name}")
    for old in [f for f in logger.filters if isinstance(f, _PrefixFilter)]:
        logger.removeFilter(old)
    logger.addFilter(_PrefixFilter(f"[{job} attempt {attempt}] "))
    return logger


@dataclass
class Context:
    """What a handler knows about the attempt it runs: identity, a logger and progress reporting."""

    job: str
    namespace: str
    queue: str
    handler: str
    attempt: int
    logger: logging.Logger = field(default=log)
    reporter: ProgressReporter | None = field(default=None, repr=False)
    dependencies: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The results of the job's ``dependsOn`` jobs, by name (empty without dependsOn)."""

    def progress(self, pct: int) -> None:
        """Report progress in percent (0-100) to the job's ``status.progress``; never fails the job."""
        if self.reporter is not None:
            self.reporter.report(pct)


# --- registry --------------------------------------------------------------------------------

Handler = Callable[[Any, Context], Any]
"""A handler: ``(payload, ctx) -> result``, a plain or an ``async def`` function."""

H = TypeVar("H", bound=Handler)


class Registry:
    """Handlers by name."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, func: Handler) -> None:
        """Register `func` as handler `name`; a name may be registered once."""
        if not isinstance(name, str) or len(name) > 63 or not _HANDLER_NAME_RE.match(name):
            raise ValueError(
                f"invalid handler name {name!r}: 1-63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit"
            )
        if name in self._handlers:
            raise ValueError(f"handler {name!r} is already registered")
        if not callable(func):
            raise TypeError(f"handler {name!r} is not callable")
        self._handlers[name] = func

    def handler(self, name: str) -> Callable[[H], H]:
        """Decorator registering the function as handler `name`."""

        def decorate(func: H) -> H:
            self.register(name, func)
            return func

        return decorate

    def get(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    def names(self) -> list[str]:
        """Registered handler names, sorted."""
        return sorted(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __len__(self) -> int:
        return len(self._handlers)


default_registry = Registry()
"""The registry `handler` and the ``jobline-worker`` command use."""


def handler(name: str, *, registry: Registry | None = None) -> Callable[[H], H]:
    """Decorator: register the function as handler `name` (in the default registry)."""
    return (registry or default_registry).handler(name)


# --- running ---------------------------------------------------------------------------------


class _BadInput(Exception):
    """A contract env var is missing or invalid."""


@dataclass(frozen=True)
class _Env:
    job: str
    namespace: str
    queue: str
    handler: str
    attempt: int
    payload_text: str
    payload_source: str = names.ENV_PAYLOAD  # where the payload came from, for error messages
    dependencies_text: str | None = None


def _read_env(environ: Mapping[str, str]) -> _Env:
    required = (names.ENV_JOB, names.ENV_NAMESPACE, names.ENV_QUEUE, names.ENV_HANDLER, names.ENV_ATTEMPT)
    missing = [key for key in required if not environ.get(key)]
    payload_file = environ.get(names.ENV_PAYLOAD_FILE)
    if not payload_file and not environ.get(names.ENV_PAYLOAD):
        missing.append(names.ENV_PAYLOAD)
    if missing:
        raise _BadInput(f"missing environment variable(s): {', '.join(missing)}")
    try:
        attempt = int(environ[names.ENV_ATTEMPT])
    except ValueError:
        attempt = 0
    if attempt < 1:
        raise _BadInput(f"{names.ENV_ATTEMPT} must be a positive integer")
    payload_source = names.ENV_PAYLOAD
    if payload_file:  # payloadFrom: the Secret's key, mounted as a file
        payload_source = f"the payload file ({names.ENV_PAYLOAD_FILE})"
        try:
            payload_text = Path(payload_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _BadInput(f"cannot read {payload_source}: {type(exc).__name__}") from None
    else:
        payload_text = environ[names.ENV_PAYLOAD]
    return _Env(
        job=environ[names.ENV_JOB],
        namespace=environ[names.ENV_NAMESPACE],
        queue=environ[names.ENV_QUEUE],
        handler=environ[names.ENV_HANDLER],
        attempt=attempt,
        payload_text=payload_text,
        payload_source=payload_source,
        dependencies_text=environ.get(names.ENV_DEPENDENCIES),
    )


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_text(exc: BaseException) -> str:
    """``<ExceptionType>: <message>`` on one line, at most 1024 characters."""
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return _one_line(text, MAX_ERROR_CHARS)


def encode_result(value: Any, logger: logging.Logger = log) -> str:
    """The result as compact JSON, replaced by ``{"truncated": true, "bytes": N}`` above 4096 bytes."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        logger.warning("the handler's result is not JSON (%s); recording it as unserializable", exc)
        return json.dumps({"unserializable": True, "type": type(value).__name__}, separators=(",", ":"))
    size = len(text.encode("utf-8"))
    if size > MAX_RESULT_BYTES:
        logger.warning(
            "the result is %d bytes, more than the %d a termination message holds: recorded as truncated",
            size,
            MAX_RESULT_BYTES,
        )
        return json.dumps({"truncated": True, "bytes": size}, separators=(",", ":"))
    return text


def _write_message(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        log.warning("cannot write the termination message to %s: %s", path, exc)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises `_Terminated` in the main thread."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def _run_async(awaitable: Awaitable[Any]) -> Any:
    """Await `awaitable` as a task that SIGTERM cancels (so the handler's cleanup code runs)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(awaitable)
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    previous = signal.getsignal(signal.SIGTERM)
    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        installed = True
    try:
        return await task
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated() from None
        raise
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)  # resets to SIG_DFL: put the previous one back
            signal.signal(signal.SIGTERM, previous)


def _call(func: Handler, payload: Any, ctx: Context) -> Any:
    if inspect.iscoroutinefunction(func):
        return asyncio.run(_run_async(func(payload, ctx)))
    result = func(payload, ctx)
    if inspect.isawaitable(result):
        return asyncio.run(_run_async(result))
    return result


def run(
    registry: Registry, environ: Mapping[str, str], *, progress_transport: ProgressTransport | None = None
) -> int:
    """Run the attempt described by `environ` with `registry`'s handler; returns the exit code."""
    result_path = environ.get(ENV_RESULT_PATH) or DEFAULT_RESULT_PATH

    def fail(code: int, message: str) -> int:
        print(f"jobline-worker: {message}", file=sys.stderr)
        _write_message(result_path, _one_line(message, MAX_ERROR_CHARS))
        return code

    try:
        env = _read_env(environ)
    except _BadInput as exc:
        return fail(EXIT_BAD_INPUT, str(exc))
    func = registry.get(env.handler)
    if func is None:
        known = ", ".join(registry.names()) or "none"
        return fail(EXIT_UNKNOWN_HANDLER, f"unknown handler {env.handler!r} (registered: {known})")
    try:
        payload = json.loads(env.payload_text)
    except json.JSONDecodeError as exc:  # its msg and position only: never echo the payload
        return fail(EXIT_BAD_INPUT, f"{env.payload_source} is not valid JSON: {exc.msg} at char {exc.pos}")
    try:
        dependencies = json.loads(env.dependencies_text) if env.dependencies_text else {}
    except json.JSONDecodeError as exc:
        return fail(
            EXIT_BAD_INPUT, f"{names.ENV_DEPENDENCIES} is not valid JSON: {exc.msg} at char {exc.pos}"
        )
    if not isinstance(dependencies, dict):
        return fail(EXIT_BAD_INPUT, f"{names.ENV_DEPENDENCIES} must be a JSON object")

    logger = handler_logger(env.handler, env.job, env.attempt)
    transport = progress_transport if progress_transport is not None else KubernetesProgress()
    reporter = ProgressReporter(env.namespace, env.job, transport, logger=logger)
    ctx = Context(env.job, env.namespace, env.queue, env.handler, env.attempt, logger, reporter, dependencies)
    log.info("running handler %s for %s/%s, attempt %d", env.handler, env.namespace, env.job, env.attempt)
    started = time.monotonic()
    code = EXIT_OK
    try:
        with _sigterm_raises():
            result = _call(func, payload, ctx)
        message = encode_result(result, logger)
        log.info("handler %s succeeded in %.2fs", env.handler, time.monotonic() - started)
    except _Terminated:
        log.warning("terminated (SIGTERM) after %.2fs", time.monotonic() - started)
        code, message = EXIT_TERMINATED, "terminated (SIGTERM)"
    except PermanentError as exc:
        log.error("handler %s failed permanently: %s", env.handler, error_text(exc))
        code, message = EXIT_PERMANENT, error_text(exc)
    except Exception as exc:
        log.error("handler %s failed: %s", env.handler, error_text(exc), exc_info=True)
        code, message = EXIT_RETRYABLE, error_text(exc)
    with contextlib.suppress(Exception):
        reporter.flush()
    _write_message(result_path, message)
    return code


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobline-worker",
        description=(
            "Run one attempt of a Jobline QueuedJob: import the handler modules, then call the handler "
            f"named in ${names.ENV_HANDLER} with the payload in ${names.ENV_PAYLOAD}."
        ),
    )
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help=f"module registering handlers (repeatable; also ${ENV_WORKER_IMPORTS}, comma-separated)",
    )
    parser.add_argument("--list", action="store_true", help="print the registered handlers and exit")
    return parser


def _import_modules(modules: Sequence[str]) -> str | None:
    """Import each module; the error text of the first that fails, else None."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            return f"cannot import handler module {module!r}: {error_text(exc)}"
    return None


def main(
    argv: Sequence[str] | None = None,
    *,
    registry: Registry | None = None,
    environ: Mapping[str, str] | None = None,
    progress_transport: ProgressTransport | None = None,
) -> int:
    """The ``jobline-worker`` command; returns the exit code (see the ``EXIT_*`` constants)."""
    args = _parser().parse_args(argv)
    env = os.environ if environ is None else environ
    reg = default_registry if registry is None else registry
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=os.environ.get(names.ENV_LOG_LEVEL, "INFO").upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    modules = [m.strip() for m in env.get(ENV_WORKER_IMPORTS, "").split(",") if m.strip()]
    modules += args.imports
    problem = _import_modules(list(dict.fromkeys(modules)))
    if problem is not None:
        print(f"jobline-worker: {problem}", file=sys.stderr)
        if not args.list:
            _write_message(
                env.get(ENV_RESULT_PATH) or DEFAULT_RESULT_PATH, _one_line(problem, MAX_ERROR_CHARS)
            )
        return EXIT_UNKNOWN_HANDLER
    if args.list:
        for name in reg.names():
            print(name)
        return EXIT_OK
    if env.get(names.ENV_POOL) == "1":
        from jobline import poolworker

        return poolworker.serve(reg, env, progress_transport=progress_transport)
    return run(reg, env, progress_transport=progress_transport)


if __name__ == "__main__":  # `python -m jobline.worker`: use the importable module's registry
    from jobline.worker import main as _main

    sys.exit(_main())
