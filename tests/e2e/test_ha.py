"""Two operator processes against one cluster: one active, the other standby; SIGKILL the active one and
the standby takes over — every job finishes, none runs twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import kubectl, wait_for

PEERING = "jobline-ha-test"


@pytest.fixture
def pair(cluster: ClusterHandle, operator: OperatorProcess, tmp_path: Path):  # type: ignore[no-untyped-def]
    operator.stop()  # the session's standalone operator would compete; restarted by running_operator later
    kubectl(
        cluster.kubeconfig,
        "apply",
        "-f",
        "-",
        input=f"apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata: {{name: {PEERING}}}\n",
    )
    common = ["--peering", PEERING, "--peering-lifetime", "6"]
    high = OperatorProcess(cluster.kubeconfig, tmp_path / "high.log", [*common, "--priority", "200"])
    low = OperatorProcess(cluster.kubeconfig, tmp_path / "low.log", [*common, "--priority", "100"])
    high.start()
    wait_for(lambda: "active (peering" in high.log.read_text(), 30, "the high-priority replica to be active")
    low.start()
    yield high, low
    for op in (high, low):
        op.stop()
    kubectl(cluster.kubeconfig, "delete", "clusterkopfpeering", PEERING, "--ignore-not-found")


def test_one_active_then_failover(cluster: ClusterHandle, namespace: str, pair, shared: Path) -> None:  # type: ignore[no-untyped-def]
    high, low = pair
    jobs = Jobs(cluster, namespace)
    jobs.queue(concurrency=3)
    log = shared / "calls.log"
    for i in range(3):
        jobs.create(f"before-{i}", "slow-first", {"file": str(log), "seconds": 0})
    for i in range(3):
        jobs.wait_phase(f"before-{i}", "Succeeded", timeout=60)
    assert "standby (peering" not in high.log.read_text()
    assert "active (peering" not in low.log.read_text()  # the standby never led

    killed = time.monotonic()
    high.kill()
    for i in range(3):
        jobs.create(f"after-{i}", "slow-first", {"file": str(log), "seconds": 0})
    wait_for(lambda: "active (peering" in low.log.read_text(), 60, "the standby to take over")
    print(f"\nfailover: the standby led {time.monotonic() - killed:.1f}s after SIGKILL (peering lifetime 6s)")
    for i in range(3):
        jobs.wait_phase(f"after-{i}", "Succeeded", timeout=60)
    calls = log.read_text().split("\n")
    names = [line.split()[1] for line in calls if line]
    assert sorted(names) == sorted([f"before-{i}" for i in range(3)] + [f"after-{i}" for i in range(3)])
    for i in range(3):
        assert len(jobs.pods(f"after-{i}")) == 1
