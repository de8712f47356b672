"""Faults under load, each followed by the same checks (tests/faults/harness.py): no job lost, no attempt
or scheduled run duplicated, ``status.attempts`` = the attempt pods a watch saw, the operator recovered.

Each test runs in a namespace of its own on this package's own control plane (tests/faults/conftest.py),
with a load of :attr:`Profile.jobs` jobs of a fixed mix plus an ``@every 5s`` JobSchedule.
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from tests.faults.conftest import TEST_TIMEOUT, Profile
from tests.faults.harness import FaultCluster, Scenario, hold
from tests.kube import wait_for

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)


@pytest.fixture
def healthy(fault_cluster: FaultCluster) -> FaultCluster:
    """The cluster and the operator as an earlier test may have left them: back up and ready."""
    wait_for(fault_cluster.apiserver_ready, 60, "the apiserver to be ready")
    if not fault_cluster.op.alive():
        fault_cluster.op.start()
    fault_cluster.op.wait_ready(60)
    return fault_cluster


def scenario(fc: FaultCluster, ns: str, profile: Profile, fault: str, seed: int = 0) -> Scenario:
    sc = Scenario(fc, ns, profile, fault, seed=seed)
    sc.schedule()
    return sc


def wait_running(sc: Scenario, at_least: int = 2, timeout: float = 60) -> None:
    """Load is on: at least ``at_least`` attempts running now."""
    wait_for(lambda: len(sc.running_pods()) >= at_least, timeout, f"{at_least} running attempts")


def test_operator_sigkilled_under_load(healthy: FaultCluster, fault_ns: str, profile: Profile) -> None:
    """SIGKILL the operator at random moments, restart it each time; jobs keep arriving meanwhile."""
    seed = int(time.time())
    sc = scenario(healthy, fault_ns, profile, f"operator SIGKILL x{profile.operator_kills}", seed)
    print(f"\nrandom seed {seed}")
    synced = healthy.synced_lines()
    sc.create_mix(profile.jobs // 2)
    wait_running(sc)
    worst = 0.0
    per_kill = (profile.jobs - profile.jobs // 2) // profile.operator_kills
    for _ in range(profile.operator_kills):
        hold(sc.rng.uniform(0.5, 4.0))  # a random moment under load
        healthy.op.kill()
        sc.create_mix(per_kill)  # created while it is down (the webhook's failurePolicy is Ignore)
        killed = time.monotonic()
        healthy.op.start(timeout=60)
        assert healthy.op.ready_at is not None
        worst = max(worst, healthy.op.ready_at - killed)
    end = time.monotonic()
    sc.notes.append(f"restart-to-ready max {worst:.1f}s")
    recovery = sc.recover(end)
    sc.verify(end, recovery, synced)
    assert healthy.synced_lines() - synced >= profile.operator_kills
    sc.assert_clean()


def test_jobs_created_while_operator_down(healthy: FaultCluster, fault_ns: str, profile: Profile) -> None:
    """The test operator runs its admission webhook (failurePolicy Ignore): with the operator down, jobs are
    still admitted, and they all run once it is back."""
    sc = scenario(healthy, fault_ns, profile, "operator down, jobs created")
    synced = healthy.synced_lines()
    healthy.op.kill()
    started = time.monotonic()
    sc.create_mix(profile.jobs)
    created = time.monotonic() - started
    sc.notes.append(f"{profile.jobs} created in {created:.1f}s with the webhook down")
    healthy.op.start(timeout=60)
    end = time.monotonic()
    recovery = sc.recover(end)
    sc.verify(end, recovery, synced)
    sc.assert_clean()


def test_apiserver_sigkilled_and_restarted(healthy: FaultCluster, fault_ns: str, profile: Profile) -> None:
    sc = scenario(healthy, fault_ns, profile, f"apiserver SIGKILL, down {profile.apiserver_down:.0f}s")
    synced = healthy.synced_lines()
    sc.create_mix(profile.jobs)
    wait_running(sc)
    healthy.cp.kill("kube-apiserver")
    hold(profile.apiserver_down)
    took = healthy.cp.restart("kube-apiserver")
    end = time.monotonic()
    sc.notes.append(f"apiserver ready {took:.1f}s after restart")
    recovery = sc.recover(end)
    sc.verify(end, recovery, synced)
    sc.assert_clean()


def test_etcd_sigkilled_and_restarted(healthy: FaultCluster, fault_ns: str, profile: Profile) -> None:
    sc = scenario(healthy, fault_ns, profile, f"etcd SIGKILL, down {profile.etcd_down:.0f}s")
    synced = healthy.synced_lines()
    sc.create_mix(profile.jobs)
    wait_running(sc)
    healthy.cp.kill("etcd")
    hold(profile.etcd_down)
    healthy.cp.restart("etcd")
    wait_for(healthy.apiserver_ready, 60, "the apiserver to be ready on the restarted etcd")
    end = time.monotonic()
    recovery = sc.recover(end)
    sc.verify(end, recovery, synced)
    sc.assert_clean()


def test_apiserver_frozen(healthy: FaultCluster, fault_ns: str, profile: Profile) -> None:
    """SIGSTOP the apiserver (connections stay open, nothing answers), SIGCONT after ``profile.freeze``."""
    sc = scenario(healthy, fault_ns, profile, f"apiserver SIGSTOP {profile.freeze:.0f}s")
    synced = healthy.synced_lines()
    sc.create_mix(profile.jobs)
    wait_running(sc)
    healthy.cp.pause("kube-apiserver")
    try:
        hold(profile.freeze)
    finally:
        healthy.cp.resume("kube-apiserver")
    end = time.monotonic()
    recovery = sc.recover(end)
    sc.verify(end, recovery, synced)
    sc.assert_clean()


def test_worker_pods_deleted_mid_attempt(healthy: FaultCluster, fault_ns: str, profile: Profile) -> None:
    """Delete running attempt pods (each job's at most once): the job goes on with another attempt."""
    sc = scenario(healthy, fault_ns, profile, f"{profile.deleted_pods} running pods deleted")
    synced = healthy.synced_lines()
    sc.create_mix(profile.jobs)
    hit: set[str] = set()

    def delete_some() -> bool:
        for pod in sc.running_pods():
            job = pod.metadata.labels.get("jobline.dev/job")
            if job in hit or len(hit) >= profile.deleted_pods:
                continue
            try:
                healthy.handle.core.delete_namespaced_pod(pod.metadata.name, sc.ns)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
                continue
            hit.add(job)
        return len(hit) >= profile.deleted_pods

    wait_for(delete_some, 120, f"{profile.deleted_pods} running attempts to delete", interval=0.3)
    end = time.monotonic()
    recovery = sc.recover(end)
    sc.verify(end, recovery, synced)
    sc.assert_clean()


def test_resource_quota_exhausted_then_freed(healthy: FaultCluster, fault_ns: str, profile: Profile) -> None:
    """A ResourceQuota of 0 pods refuses every attempt pod: jobs wait (QuotaExceeded), then run once freed."""
    sc = scenario(healthy, fault_ns, profile, f"pod quota 0 for {profile.quota_hold:.0f}s")
    synced = healthy.synced_lines()
    core = healthy.handle.core
    quota = client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="no-pods"), spec=client.V1ResourceQuotaSpec(hard={"pods": "0"})
    )
    core.create_namespaced_resource_quota(sc.ns, quota)
    wait_for(
        lambda: (core.read_namespaced_resource_quota("no-pods", sc.ns).status.hard or {}).get("pods"),
        30,
        "the quota's status",
    )
    sc.create_mix(profile.jobs)
    wait_for(lambda: sc.count_phase("Waiting", "QuotaExceeded") >= 3, 60, "jobs waiting with QuotaExceeded")
    hold(profile.quota_hold)
    waiting = sc.count_phase("Waiting", "QuotaExceeded")
    core.delete_namespaced_resource_quota("no-pods", sc.ns)
    end = time.monotonic()
    sc.notes.append(f"{waiting} jobs waiting on the quota when freed")
    assert not sc.ledger.pods, "no attempt pod can exist while the quota is 0"
    recovery = sc.recover(end)
    sc.verify(end, recovery, synced)
    sc.assert_clean()
