"""The benchmark environment: the machine, the control plane with kwok nodes, the operator process, py-spy."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.cluster import procs
from tests.cluster.operator_process import OperatorProcess
from tests.kube import KUBECTL

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
KWOK_SELECTOR = {"type": "kwok"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The Job and CronJob controllers with their client limits raised (issue 15): at the defaults
# (--kube-api-qps=20 --kube-api-burst=30) the Job controller is held to about 3.4 jobs/s by its own
# rate limiter, so a comparison at the defaults alone says little about the controllers themselves.
RAISED_LIMITS = [
    "--kube-api-qps=500",
    "--kube-api-burst=1000",
    "--concurrent-job-syncs=50",
    "--concurrent-cron-job-syncs=50",
]
PEERS = {"default": ["job"], "raised": ["job-raised"], "both": ["job", "job-raised"]}


# ------------------------------------------------------------------------------------------ machine
def machine() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": cpu_model or platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def versions(bin_dir: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    env_file = REPO / "tests" / "cluster" / "versions.env"
    with contextlib.suppress(OSError):
        for line in env_file.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out[k.strip().lower()] = v.strip()
    for dist in ("jobline", "kopf", "kubernetes"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[f"py_{dist}"] = metadata.version(dist)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    if bin_dir is not None:
        out["controller_manager_defaults"] = controller_manager_defaults(bin_dir)
    return out


def controller_manager_defaults(bin_dir: Path) -> dict[str, str]:
    """The flag defaults the peers run with (the launcher sets none of these)."""
    try:
        text = subprocess.run(
            [str(bin_dir / "kube-controller-manager"), "--help"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found = {}
    for flag in (
        "kube-api-qps",
        "kube-api-burst",
        "concurrent-job-syncs",
        "concurrent-cron-job-syncs",
        "concurrent-gc-syncs",
    ):
        m = re.search(rf"--{flag} \S+\s+.*?\(default ([^)]+)\)", text)
        if m:
            found[flag] = m.group(1)
    return found


# ------------------------------------------------------------------------------------------ processes
def proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_memory_mb(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


class ClusterEnv:
    """The test cluster's launcher with kwok nodes and no local node, in a temp workdir."""

    def __init__(self, kwok_nodes: int = 4, workdir: Path | None = None, real_node: bool = False) -> None:
        import tempfile

        from tests.cluster.build import ensure_binaries
        from tests.cluster.controlplane import Cluster

        self.bin_dir = ensure_binaries(verbose=False)
        self.own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="jobline-bench-"))
        # Pods of both sides land on kwok nodes: no local node, no real node (its kubelet would share the 2
        # cores), except for benchmarks.pool, whose workers must run code.
        self.cluster = Cluster(
            self.workdir, self.bin_dir, local_node=False, kwok_nodes=kwok_nodes, real_node=real_node
        )
        self.kwok_nodes = kwok_nodes
        self.raised = False  # kube-controller-manager runs with RAISED_LIMITS

    def peer_limits(self, raised: bool) -> float:
        """Restart kube-controller-manager with its limits raised (or back at its defaults) unless it
        already runs that way. Returns the seconds the restart took (0 when none was needed)."""
        if raised == self.raised:
            return 0.0
        seconds = self.cluster.reconfigure("kube-controller-manager", RAISED_LIMITS if raised else [])
        self.raised = raised
        return seconds

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.kubeconfig

    def start(self) -> float:
        started = time.monotonic()
        self.cluster.start()
        return time.monotonic() - started

    def pids(self) -> dict[str, int]:
        return self.cluster.pids()

    def stop(self, keep_logs: bool = False) -> None:
        self.cluster.stop()
        if self.own_workdir and not keep_logs:
            shutil.rmtree(self.workdir, ignore_errors=True)


class Operator(OperatorProcess):
    """``jobline-operator`` watching one namespace (webhook and dashboard off), with what it costs."""

    def __init__(self, kubeconfig: Path, log: Path, namespace: str) -> None:
        super().__init__(
            kubeconfig,
            log,
            ["--dashboard-port", "0", "--webhook-port", "0", "--namespace", namespace, "--log-level", "info"],
        )

    def start(self, wait: bool = True, timeout: float = 120) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        super().start(wait, timeout)

    def memory(self) -> dict[str, float]:
        return proc_memory_mb(self.pid) if self.proc else {}

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid) if self.proc else 0.0

    def tracebacks(self) -> int:
        return self.log.read_text(errors="replace").count("Traceback")


class Profiler:
    """``py-spy record --gil`` attached to a process (raw collapsed stacks); a no-op when py-spy is missing.

    ``--gil``: only samples of the thread holding the GIL, i.e. where the interpreter spends its CPU
    (threads blocked in a socket read or the event loop's select() are left out).
    """

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None
        exe = Path(sys.executable).with_name("py-spy")
        binary = str(exe) if exe.exists() else shutil.which("py-spy")
        if binary is None:
            self.error = "py-spy not installed (pip install py-spy)"
            return
        self.log = out.with_suffix(".log")
        self.proc = procs.spawn(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                "--gil",
            ],
            self.log,
        )

    def stop(self) -> Path | None:
        if self.proc is None:
            return None
        procs.stop(self.proc, grace=60, sig=signal.SIGINT)  # SIGINT: py-spy writes what it sampled
        if not self.out.exists():
            self.error = f"py-spy wrote nothing: {self.log.read_text(errors='replace')[-300:]}"
            return None
        return self.out


def kubectl_seconds(kubeconfig: Path, *args: str, timeout: float = 300) -> tuple[float, int]:
    """Wall time of one kubectl call (output discarded) and its exit code."""
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    started = time.monotonic()
    proc = subprocess.run(
        [KUBECTL, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout
    )
    return time.monotonic() - started, proc.returncode
