"""`make cluster` semantics: idempotent start, clean stop, and no orphans when the launcher is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import procs
from tests.cluster.build import ensure_binaries
from tests.cluster.realnode import PAUSE_IMAGE
from tests.kube import kubectl, wait_for

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.cluster", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def own_binaries(cluster: object) -> Path:
    if os.environ.get("JOBLINE_TEST_KUBECONFIG") or os.environ.get("JOBLINE_TEST_KIND"):
        pytest.skip("launcher tests need the locally built binaries")
    return ensure_binaries()


def _host() -> dict[str, object]:
    """What a real node could leave behind on the host, outside its own namespaces."""

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    netns = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    return {
        "links": sorted(link["ifname"] for link in json.loads(run("ip", "-j", "link"))),
        "routes": run("ip", "-4", "route", "show", "table", "all"),
        "iptables": [line for line in run("iptables-save").splitlines() if not line.startswith("#")],
        "mounts": sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()),
        "netns": netns,
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/jobline-nodes/*")),
    }


def _node_processes(work: Path) -> list[int]:
    """Every process of a real node: its own (they name the workdir) and its containers' (by cgroup)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(work) in (entry / "cmdline").read_text(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    slot = json.loads((work / "node" / "config.json").read_text())["network"]["slot"]
    for procs_file in Path("/sys/fs/cgroup/pids").glob(f"jobline-nodes/{slot}/**/cgroup.procs"):
        pids += [int(p) for p in procs_file.read_text().split()]
    return sorted(set(pids))


def _pod_on_real_node(kubeconfig: Path) -> None:
    """A running container plus a Service: mounts, a pod veth, cgroups and kube-proxy rules to clean up."""
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "sleeper", "labels": {"app": "sleeper"}},
                "spec": {
                    "containers": [{"name": "c", "image": PAUSE_IMAGE, "imagePullPolicy": "Never"}],
                    "nodeSelector": {"jobline.dev/node": "real"},
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "sleeper"},
                "spec": {"selector": {"app": "sleeper"}, "ports": [{"port": 80}]},
            },
        ],
    }
    kubectl(kubeconfig, "apply", "-f", "-", input=json.dumps(manifest))
    kubectl(kubeconfig, "wait", "--for=condition=Ready", "pod/sleeper", "--timeout=60s")


def _assert_nothing_left(before: dict[str, object], work: Path, pids: list[int]) -> None:
    wait_for(lambda: not [p for p in pids if procs.pid_alive(p)], 60, "every node process to exit")
    wait_for(
        lambda: _host() == before, 30, "the host to be as before (links, routes, iptables, mounts, cgroups)"
    )
    assert not [p for p in _node_processes(work) if procs.pid_alive(p)]


def test_up_is_idempotent_and_down_leaves_nothing(own_binaries: Path, tmp_path: Path) -> None:
    work = tmp_path / "dev"
    before = _host()
    first = _cli("up", "--workdir", str(work), "--kwok-nodes", "0")
    assert first.returncode == 0, first.stderr
    assert f"export KUBECONFIG={work / 'kubeconfig'}" in first.stdout
    state = json.loads((work / "state.json").read_text())
    pids = [state["pid"], *state["components"].values()]
    assert all(procs.pid_alive(p) for p in pids)

    second = _cli("up", "--workdir", str(work), "--kwok-nodes", "0")
    assert second.returncode == 0 and "already running" in second.stdout
    assert json.loads((work / "state.json").read_text())["pid"] == state["pid"]

    # A second cluster beside the session's: its real node takes another slot (bridge, veth, pod CIDR).
    assert "realnode" in state["components"] and _host()["links"] != before["links"]
    _pod_on_real_node(work / "kubeconfig")
    node = _node_processes(work)
    assert len(node) >= 5  # containerd, kubelet, kube-proxy, a shim, the pause containers, ...

    down = _cli("down", "--workdir", str(work))
    assert down.returncode == 0, down.stderr
    wait_for(lambda: not any(procs.pid_alive(p) for p in pids), 30, "every component to exit")
    _assert_nothing_left(before, work, node)
    assert _cli("status", "--workdir", str(work)).returncode == 1


def test_killed_launcher_leaves_no_real_node_behind(own_binaries: Path, tmp_path: Path) -> None:
    """kill -9 of the launcher: PID 1 of the node gets SIGTERM (unshare --kill-child) and cleans up; the
    kernel takes the namespaces (mounts, bridge, veth, iptables rules) with the last process."""
    work = tmp_path / "crash-real"
    work.mkdir()
    before = _host()
    sup = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.cluster",
            "serve",
            "--workdir",
            str(work),
            "--bin-dir",
            str(own_binaries),
            "--kwok-nodes",
            "0",
            "--no-localnode",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: json.loads((work / "state.json").read_text()).get("ready"), 120, "the cluster to be ready"
        )
        _pod_on_real_node(work / "kubeconfig")
        node = _node_processes(work)
        assert len(node) >= 5
        sup.send_signal(signal.SIGKILL)
        sup.wait(10)
        _assert_nothing_left(before, work, node)
    finally:
        if sup.poll() is None:
            sup.kill()


def test_killed_launcher_leaves_no_orphans(own_binaries: Path, tmp_path: Path) -> None:
    work = tmp_path / "crash"
    work.mkdir()
    sup = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.cluster",
            "serve",
            "--workdir",
            str(work),
            "--bin-dir",
            str(own_binaries),
            "--kwok-nodes",
            "0",
            "--no-localnode",
            "--no-realnode",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        state = wait_for(
            lambda: (s := json.loads((work / "state.json").read_text())).get("ready") and s,
            120,
            "the supervisor to report ready",
        )
        pids = list(state["components"].values())
        assert len(pids) == 4 and all(procs.pid_alive(p) for p in pids)
        sup.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel must do it
        sup.wait(10)
        wait_for(lambda: not any(procs.pid_alive(p) for p in pids), 30, "components to die with the launcher")
    finally:
        if sup.poll() is None:
            sup.kill()
