"""One container of a pod: its process group behind the podexec shim, its log and termination message.

A container runs as ``podexec -- command args``: :mod:`tests.cluster.podexec` gives it a private mount
namespace with the pod's volumes and its own termination-log file bind-mounted over its
``terminationMessagePath``, then execs the workload, telling us through a pipe whether it could.
What the pod does with a container (when to start it, restart it, stop it) is the pod worker's
business (:mod:`.podworker`); this module knows how one instance starts and what it leaves behind.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .api import Json, now_rfc3339

PODEXEC = Path(__file__).resolve().parents[1] / "podexec.py"
TERMINATION_MESSAGE_MAX = 4096
FALLBACK_LINES = 80  # terminationMessagePolicy FallbackToLogsOnError: the log's last lines ...
FALLBACK_BYTES = 2048  # ... and at most this much of them


def kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# ------------------------------------------------------------------------------------- log files
def tail_offset(f: Any, lines: int) -> int:
    """Offset in the binary file ``f`` where its last ``lines`` lines start."""
    f.seek(0, os.SEEK_END)
    end = int(f.tell())
    if lines <= 0:
        return end
    pos = end
    seen = 0
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        for i in range(len(chunk) - 1, -1, -1):
            if chunk[i] == 10 and pos + i != end - 1:
                seen += 1
                if seen == lines:
                    return pos + i + 1
    return 0


def read_tail(path: Path, lines: int, max_bytes: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(tail_offset(f, lines))
            data = f.read()
    except OSError:
        return ""
    return data[-max_bytes:].decode("utf-8", errors="replace")


# -------------------------------------------------------------------------------- container state
def full_state(state: Mapping[str, Any]) -> Json:
    """A container state with the keys it does not have set to null, so a strategic merge drops them."""
    return {key: state.get(key) for key in ("waiting", "running", "terminated")}


def terminated(
    exit_code: int,
    reason: str,
    message: str | None,
    started: str | None,
    finished: str | None,
    container_id: str | None,
) -> Json:
    return {
        "exitCode": exit_code,
        "signal": None,
        "reason": reason,
        "message": message or None,
        "startedAt": started,
        "finishedAt": finished,
        "containerID": container_id,
    }


class StartError(Exception):
    """The container's process could not be started (reported as a StartError termination)."""


class Processes(Protocol):
    """Where started process groups are registered, so that the node can stop them all (LocalNode)."""

    def register(self, proc: subprocess.Popen[bytes]) -> None: ...

    def unregister(self, pid: int) -> None: ...


@dataclass
class Instance:
    """One run of a container: a process group led by the workload's pid."""

    proc: subprocess.Popen[bytes]
    started_at: str
    started_mono: float
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return int(self.proc.pid)


class Container:
    """A container of a pod: its spec, its files in the pod's directory, its state and current instance."""

    def __init__(self, spec: Json, init: bool, pod_dir: Path) -> None:
        self.spec = spec
        self.name = str(spec["name"])
        self.pod_dir = pod_dir
        self.init = init
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        self.log_path = pod_dir / f"{self.name}.log"
        self.previous_log_path = pod_dir / f"{self.name}.previous.log"
        self.term_file = pod_dir / f"{self.name}.termination-log"
        self.inst: Instance | None = None
        self.state: Json = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: Json = {}
        self.attempts = 0  # instances that have terminated (or failed to start)
        self.restart_count = 0
        self.exit_code: int | None = None
        self.done = False  # terminated and will not run again
        self.next_start = 0.0
        self.backoff = 0.0
        self.container_id: str | None = None

    @property
    def ever_started(self) -> bool:
        return self.inst is not None or self.attempts > 0

    def status(self) -> Json:
        image = str(self.spec.get("image") or "")
        running = self.inst is not None
        return {
            "name": self.name,
            "image": image,
            "imageID": f"local://{image}",
            "containerID": self.container_id,
            "ready": running,
            "started": running,
            "restartCount": self.restart_count,
            "state": full_state(self.state),
            "lastState": full_state(self.last_state),
        }

    def termination_message(self, code: int) -> str:
        """What the instance that just exited with ``code`` wrote to its termination log (or its log's tail)."""
        try:
            data = self.term_file.read_bytes()[:TERMINATION_MESSAGE_MAX]
        except OSError:
            data = b""
        message = data.decode("utf-8", errors="replace")
        if not message and code != 0 and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = read_tail(self.log_path, FALLBACK_LINES, FALLBACK_BYTES)
        return message

    def launch(
        self, argv: list[str], env: Mapping[str, str], mounts: list[str], processes: Processes
    ) -> Instance:
        """Start a new instance (``argv`` expanded, ``mounts`` as podexec ``--mount`` arguments); it is running
        once this returns. StartError when the process could not be started or the shim could not exec it."""
        spec = self.spec
        workdir = str(spec.get("workingDir") or (self.pod_dir / f"{self.name}.workdir"))
        term_path = str(spec.get("terminationMessagePath") or "/dev/termination-log")
        read_fd = write_fd = -1
        try:
            os.makedirs(workdir, exist_ok=True)
            if self.attempts > 0 and self.log_path.exists():
                os.replace(self.log_path, self.previous_log_path)
            self.term_file.write_bytes(b"")
            read_fd, write_fd = os.pipe()
            shim = [
                sys.executable,
                "-I",
                "-S",
                str(PODEXEC),
                "--term-file",
                str(self.term_file),
                "--term-path",
                term_path,
                "--cwd",
                workdir,
                "--status-fd",
                str(write_fd),
                "--parent-pid",
                str(os.getpid()),
            ]
            for mount in mounts:
                shim += ["--mount", mount]
            shim.append("--")
            with open(self.log_path, "ab") as out:
                proc = subprocess.Popen(
                    shim + argv,
                    env=env,
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=(write_fd,),
                )
        except OSError as exc:
            for fd in (read_fd, write_fd):
                if fd >= 0:
                    os.close(fd)
            raise StartError(f"failed to start container {self.name!r}: {exc}") from exc
        os.close(write_fd)
        processes.register(proc)
        started_mono = time.monotonic()
        started_at = now_rfc3339()
        failure = _read_status(read_fd)
        if failure:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            processes.unregister(proc.pid)
            raise StartError(failure)
        self.restart_count = self.attempts
        self.container_id = f"local://{proc.pid}"
        self.inst = Instance(proc, started_at, started_mono)
        self.state = {"running": {"startedAt": started_at}}
        return self.inst


def _read_status(fd: int) -> str:
    """Empty when the shim exec'd the workload; otherwise why it could not."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            data = os.read(fd, 4096)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace").strip().removeprefix("podexec: ")
