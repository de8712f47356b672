"""``jobline-operator`` as a child process of a test or a benchmark: started, ready, stopped.

One helper for the e2e fixtures and the benchmarks, so both run the operator the same way: the
console script of this venv with ``--kubeconfig`` and the caller's flags, cwd = the repository root,
stdout+stderr appended to a log file, in a process group of its own that dies with this process.

Ready means what the operator itself says: ``GET /readyz`` on its health port answers 200
(``{"status": "ready", "synced": true, ...}``) once its controller has listed every job, queue and
pod, 503 before (``jobline/handlers/servers.py``), not a line of its log. So the health server is
always on: on a free port of its own unless the caller's flags name one (``--health-port 0`` cannot
be waited for). ``/readyz`` says nothing about the schedule loop, which lists its JobSchedules right
after the controller's store is synced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.cluster import procs

REPO = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("jobline-operator"))
POLL = 0.05  # seconds between two /readyz requests
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP(S)_PROXY


class OperatorError(RuntimeError):
    """The operator exited, or did not get ready in time."""


def _flag(args: Sequence[str], name: str) -> str | None:
    """The value of the last ``name VALUE`` / ``name=VALUE`` in ``args`` (argparse: the last one wins)."""
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


class OperatorProcess:
    """``jobline-operator --kubeconfig KUBECONFIG [--health-port P] *args``, logging to ``log`` (appended).

    ``start()`` waits until ready (or ``start(wait=False)`` notes in the background when it is:
    :attr:`ready_at`); ``stop()`` is SIGTERM, SIGKILL after a grace period; ``kill()`` is SIGKILL.
    Each object can be started again after a stop or kill.
    """

    def __init__(
        self, kubeconfig: Path, log: Path, args: Sequence[str] = (), *, env: Mapping[str, str] | None = None
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.args = list(args)
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.health_port: int | None = None
        self.started = 0.0  # monotonic time of the last start
        self.ready_at: float | None = None  # monotonic time it was first seen ready since then
        self._watcher: threading.Thread | None = None

    # ------------------------------------------------------------------ process
    @property
    def pid(self) -> int:
        assert self.proc is not None, "the operator was not started"
        return self.proc.pid

    @property
    def health_url(self) -> str:
        host = _flag(self.args, "--health-host") or "127.0.0.1"
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.health_port}"

    def command(self) -> list[str]:
        given = _flag(self.args, "--health-port")
        if given is None:
            self.health_port = procs.free_port()
            return [
                EXE,
                "--kubeconfig",
                str(self.kubeconfig),
                "--health-port",
                str(self.health_port),
                *self.args,
            ]
        self.health_port = int(given)
        return [EXE, "--kubeconfig", str(self.kubeconfig), *self.args]

    def start(self, wait: bool = True, timeout: float = 60) -> None:
        argv = self.command()
        self.ready_at = None
        self.started = time.monotonic()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env}
        self.proc = procs.spawn(argv, self.log, env=env, cwd=REPO)
        if wait:
            self.wait_ready(timeout)
        else:
            self._watcher = threading.Thread(target=self._watch_ready, name="operator-readyz", daemon=True)
            self._watcher.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 20) -> None:
        """SIGTERM (the operator lets go of its peering and servers), SIGKILL after ``grace`` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            procs.stop(self.proc, grace=grace)

    def kill(self) -> None:
        """SIGKILL: no cleanup, like a node crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP (a hung operator: its sockets stay open, its watches fall behind); ``resume`` after."""
        assert self.proc is not None and self.proc.poll() is None, "the operator is not running"
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None, "the operator was not started"
        os.killpg(self.proc.pid, signal.SIGCONT)

    # ------------------------------------------------------------------ readiness
    def ready(self, timeout: float = 2.0) -> bool:
        """One ``GET /readyz``: True when the operator answers that it is ready."""
        if self.health_port is None:
            return False
        try:
            with _LOCAL.open(f"{self.health_url}/readyz", timeout=timeout) as resp:
                return resp.status == 200 and bool(json.loads(resp.read()).get("status") == "ready")
        except (urllib.error.URLError, OSError, ValueError):  # not listening yet, 503, busy
            return False

    def poll_ready(self) -> float | None:
        """The monotonic time it was first seen ready, checking now unless a background watch does."""
        if (
            self.ready_at is None
            and not (self._watcher is not None and self._watcher.is_alive())
            and self.ready()
        ):
            self.ready_at = time.monotonic()
        return self.ready_at

    def wait_ready(self, timeout: float) -> float:
        """Until ``/readyz`` says ready (the monotonic time it did); OperatorError when it exits or times out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.poll_ready() is not None:
                assert self.ready_at is not None
                return self.ready_at
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise OperatorError(
                    f"the operator exited ({code}) before it was ready; see {self.log}:\n"
                    f"{procs.tail(self.log)}"
                )
            if time.monotonic() > deadline:
                raise OperatorError(
                    f"the operator was not ready within {timeout}s ({self.health_url}/readyz); "
                    f"see {self.log}:\n{procs.tail(self.log)}"
                )
            time.sleep(POLL)

    def _watch_ready(self) -> None:
        """After ``start(wait=False)``: note when it is ready (within POLL seconds), until it exits."""
        proc = self.proc
        deadline = time.monotonic() + 1800
        while self.ready_at is None and time.monotonic() < deadline:
            if proc is None or proc.poll() is not None:
                return
            if self.ready(timeout=5.0):
                self.ready_at = time.monotonic()
                return
            time.sleep(POLL)
