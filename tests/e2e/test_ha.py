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


def _admit(op: OperatorProcess, namespace: str, name: str, spec: dict[str, object]) -> dict[str, object]:
    """An AdmissionReview sent straight to one replica's webhook (the apiserver calls only one of them)."""
    import json
    import ssl
    import urllib.request

    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": f"test-{name}",
            "kind": {"group": "jobline.dev", "version": "v1alpha1", "kind": "QueuedJob"},
            "resource": {"group": "jobline.dev", "version": "v1alpha1", "resource": "queuedjobs"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "test"},
            "object": {
                "apiVersion": "jobline.dev/v1alpha1",
                "kind": "QueuedJob",
                "metadata": {"name": name, "namespace": namespace},
                "spec": spec,
            },
            "oldObject": None,
            "dryRun": True,
        },
    }
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # the replica's self-signed serving certificate
    req = urllib.request.Request(
        f"https://127.0.0.1:{op.webhook_port}/queuedjob",
        data=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, context=insecure, timeout=10) as resp:
        return dict(json.loads(resp.read())["response"])


def _metric(op: OperatorProcess, name: str, **labels: str) -> list[float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{op.health_url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def test_the_standby_answers_from_current_state(cluster: ClusterHandle, namespace: str, pair) -> None:  # type: ignore[no-untyped-def]
    """The standby's store froze when it stepped down (here: at its start, with job first Pending). Its
    webhook must still let a new job with first's uniqueKey in once first has finished, and its /metrics
    must say it does not lead and export no stale queue depths."""
    high, low = pair
    jobs = Jobs(cluster, namespace)
    jobs.queue(paused=True)
    jobs.create("first", "echo", {}, uniqueKey="invoice-7")
    jobs.wait_phase("first", "Pending", timeout=30)
    low.stop()
    low.start()  # its store lists first as Pending, then freezes: it is a standby
    assert "active (peering" not in low.log.read_text()
    refused = _admit(low, namespace, "second", {"handler": "echo", "uniqueKey": "invoice-7"})
    assert refused["allowed"] is False and "by the unfinished job first" in str(refused["status"]), refused
    jobs.patch_queue("default", {"paused": False})
    jobs.wait_phase("first", "Succeeded", timeout=60)
    answer = _admit(low, namespace, "second", {"handler": "echo", "uniqueKey": "invoice-7"})
    assert answer["allowed"] is True, answer
    assert _metric(high, "jobline_leader") == [1.0] and _metric(low, "jobline_leader") == [0.0]
    assert _metric(high, "jobline_queue_depth", namespace=namespace, phase="Succeeded") == [1.0]
    assert _metric(low, "jobline_queue_depth", namespace=namespace) == []
