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
from tests.kube import wait_for

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.cluster", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def own_binaries(cluster: object) -> Path:
    if os.environ.get("JOBLINE_TEST_KUBECONFIG") or os.environ.get("JOBLINE_TEST_KIND"):
        pytest.skip("launcher tests need the locally built binaries")
    return ensure_binaries()


def test_up_is_idempotent_and_down_leaves_nothing(own_binaries: Path, tmp_path: Path) -> None:
    work = tmp_path / "dev"
    first = _cli("up", "--workdir", str(work), "--kwok-nodes", "0")
    assert first.returncode == 0, first.stderr
    assert f"export KUBECONFIG={work / 'kubeconfig'}" in first.stdout
    state = json.loads((work / "state.json").read_text())
    pids = [state["pid"], *state["components"].values()]
    assert all(procs.pid_alive(p) for p in pids)

    second = _cli("up", "--workdir", str(work), "--kwok-nodes", "0")
    assert second.returncode == 0 and "already running" in second.stdout
    assert json.loads((work / "state.json").read_text())["pid"] == state["pid"]

    down = _cli("down", "--workdir", str(work))
    assert down.returncode == 0, down.stderr
    wait_for(lambda: not any(procs.pid_alive(p) for p in pids), 30, "every component to exit")
    assert _cli("status", "--workdir", str(work)).returncode == 1


def test_killed_launcher_leaves_no_orphans(own_binaries: Path, tmp_path: Path) -> None:
    work = tmp_path / "crash"
    work.mkdir()
    sup = subprocess.Popen(
        [sys.executable, "-m", "tests.cluster", "serve", "--workdir", str(work), "--bin-dir", str(own_binaries),
         "--kwok-nodes", "0", "--no-localnode"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        state = wait_for(lambda: (s := json.loads((work / "state.json").read_text())).get("ready") and s, 120,
                         "the supervisor to report ready")
        pids = list(state["components"].values())
        assert len(pids) == 4 and all(procs.pid_alive(p) for p in pids)
        sup.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel must do it
        sup.wait(10)
        wait_for(lambda: not any(procs.pid_alive(p) for p in pids), 30, "components to die with the launcher")
    finally:
        if sup.poll() is None:
            sup.kill()
