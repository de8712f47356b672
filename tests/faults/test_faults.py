"""Faults under load, each followed by the same checks (tests/faults/harness.py): no job lost, no attempt
or scheduled run duplicated, ``status.attempts`` = the attempt pods a watch saw, the operator recovered.

Each test runs in a namespace of its own on this package's own control plane (tests/faults/conftest.py),
with a load of :attr:`Profile.jobs` jobs of a fixed mix plus an ``@every 5s`` JobSchedule.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time

import pytest
from kubernetes import client

from jobline import names
from tests.e2e.operator_fixtures import OperatorProcess
from tests.faults.conftest import TEST_TIMEOUT, Profile
from tests.faults.harness import FAST_RETRY, GROUP, VERSION, FaultCluster, Scenario, hold
from tests.kube import ApiError, wait_for

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

    def delete(pod: client.V1Pod) -> bool:
        try:
            healthy.handle.core.delete_namespaced_pod(pod.metadata.name, sc.ns)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            return False
        return True

    sc.hit_running(profile.deleted_pods, delete, "delete")
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


def _worker_pid(fc: FaultCluster, ns: str, pod: str) -> int | None:
    """The pid of a pod's worker process, from the local node's log ("container worker: running, pid N")."""
    log = (fc.cp.logs / "localnode.log").read_text(errors="replace")
    found = re.findall(
        rf"pod {re.escape(ns)}/{re.escape(pod)} container {names.WORKER_CONTAINER}: running, pid (\d+)", log
    )
    return int(found[-1]) if found else None


def test_worker_processes_sigkilled_mid_attempt(
    healthy: FaultCluster, fault_ns: str, profile: Profile
) -> None:
    """SIGKILL running workers (each job's at most once), like the OOM killer: exit 137, the attempt
    fails and the job goes on with its next attempt."""
    sc = scenario(healthy, fault_ns, profile, f"{profile.deleted_pods} worker processes SIGKILLed")
    synced = healthy.synced_lines()
    sc.create_mix(profile.jobs)

    def kill(pod: client.V1Pod) -> bool:
        pid = _worker_pid(healthy, sc.ns, pod.metadata.name)
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False  # it ended on its own meanwhile
        return True

    sc.hit_running(profile.deleted_pods, kill, "SIGKILL")
    end = time.monotonic()
    recovery = sc.recover(end)
    sc.verify(end, recovery, synced)
    sc.assert_clean()
    killed = [
        r
        for j in sc.all_jobs().values()
        for r in (j.get("status") or {}).get("attemptHistory") or []
        if r.get("exitCode") == 137
    ]
    assert killed, "the SIGKILLed attempts are recorded with exit code 137"


def _expired(fc: FaultCluster, ns: str, rv: int) -> bool:
    """A watch of ``ns``'s pods from ``rv`` answers 410 Gone (as a status or as an ERROR event)."""
    path = f"/api/v1/namespaces/{ns}/pods"
    query = {"watch": "1", "resourceVersion": str(rv), "timeoutSeconds": "1"}
    try:
        body = fc.api.raw("GET", path, query=query, timeout=10)
    except ApiError as exc:
        return exc.status == 410
    first = json.loads(body.splitlines()[0]) if body.strip() else {}
    return first.get("type") == "ERROR" and (first.get("object") or {}).get("code") == 410


def test_watches_expire_410_gone_and_relist(healthy: FaultCluster, fault_ns: str, profile: Profile) -> None:
    """The operator's watches expire: it hangs (SIGSTOP), the apiserver is restarted (its connections
    drop), attempt pods and a job are deleted, etcd is compacted past every resourceVersion the operator
    saw and the apiserver restarted again (a watch cache that starts after the deletions), then it
    resumes. Its watches resume from an expired resourceVersion (410 Gone) and kopf re-lists, reporting
    nothing about what was deleted in the gap: the operator must notice that itself (a re-sync)."""
    sc = scenario(healthy, fault_ns, profile, "watches expired (410 Gone)")
    synced = healthy.synced_lines()
    # Attempts that outlast the gap: the operator must learn that their pods are gone. (The load's own
    # attempts end within seconds, and their ends reach the operator before the gap opens.)
    long = [f"long-{i}" for i in range(3)]
    for name in long:
        sc.create(name, "sleep", "Succeeded", {"seconds": 15}, retry={"limit": 3, "backoff": FAST_RETRY})
    sc.create_mix(profile.jobs)
    wait_for(
        lambda: {p.metadata.labels.get(names.LABEL_JOB) for p in sc.running_pods()} >= set(long),
        90,
        "the long attempts to run",
    )
    healthy.op.pause()
    victim: str | None = None
    try:
        before = healthy.cp.etcd_revision()
        # Restarted first: this drops the operator's connections, so what follows never reaches even its
        # sockets' buffers (a stopped process still receives into those, and would read it all on SIGCONT).
        healthy.cp.restart("kube-apiserver")
        # The attempts the operator last saw running (their pods may have ended since: it cannot know).
        running = [n for n, j in sc.all_jobs().items() if (j.get("status") or {}).get("phase") == "Running"]
        gone: list[str] = []
        for job in long + [n for n in running if n not in long][: max(2, profile.deleted_pods // 2)]:
            for pod in healthy.handle.core.list_namespaced_pod(
                sc.ns, label_selector=f"{names.LABEL_JOB}={job}"
            ).items:
                with contextlib.suppress(client.ApiException):
                    healthy.handle.core.delete_namespaced_pod(
                        pod.metadata.name, sc.ns, grace_period_seconds=0
                    )
                    gone.append(pod.metadata.name)
        jobs = sc.all_jobs()
        needed = {d for j in jobs.values() for d in (j.get("spec") or {}).get("dependsOn") or []}
        victim = next(
            (
                n
                for n, j in sorted(jobs.items())
                if n.endswith("-echo")
                and n not in needed
                and (j.get("status") or {}).get("phase") in (None, "Pending")
            ),
            None,
        )
        if victim is not None:  # deleted in the gap: it must never get an attempt afterwards
            sc.jobs.api.delete_namespaced_custom_object(
                GROUP, VERSION, sc.ns, names.PLURAL_QUEUEDJOBS, victim
            )
            del sc.expected[victim]
        compacted = healthy.cp.etcd_compact()
        # Again, so its watch cache (which outlives a compaction) starts after the deletions too.
        healthy.cp.restart("kube-apiserver")
        assert _expired(healthy, sc.ns, before), (
            f"a watch from {before} is not expired after compacting at {compacted}"
        )
    finally:
        healthy.op.resume()
    end = time.monotonic()
    sc.notes.append(f"{len(gone)} attempt pods of running jobs deleted in the gap")
    assert gone, "no attempt pod to delete in the gap"
    wait_for(
        lambda: "was re-listed" in healthy.op.log.read_text(errors="replace"),
        90,
        "the operator to notice a re-list",
    )
    recovery = sc.recover(end)
    sc.verify(end, recovery, synced)
    sc.assert_clean()
    if victim is not None:
        # Until kopf's re-list reaches the operator, it acts on its old view, where the deleted job is
        # still Pending: it may start it once (as the Job controller can from a stale informer). The
        # pod's owner is gone, so the garbage collector deletes it; there is never a second attempt.
        assert len(sc.ledger.attempts_of(victim)) <= 1, f"{victim} was deleted in the gap and got retried"
        wait_for(
            lambda: (
                not healthy.handle.core.list_namespaced_pod(
                    sc.ns, label_selector=f"{names.LABEL_JOB}={victim}"
                ).items
            ),
            60,
            f"the orphaned pod of {victim} to be collected",
        )
        sc.notes.append(f"deleted job {victim}: {len(sc.ledger.attempts_of(victim))} orphaned attempt pod")


PEERING = "jobline-faults"


def test_active_replica_of_two_sigkilled(healthy: FaultCluster, fault_ns: str, profile: Profile) -> None:
    """Two replicas (kopf peering, lifetime 6 s): SIGKILL the active one under load, jobs keep arriving;
    the standby takes over; the killed one comes back (as Kubernetes would restart it) and, with the
    higher priority, takes the lead back: two handovers under load."""
    fc = healthy
    standalone = fc.op
    standalone.stop()
    fc.api.request(
        "POST",
        "/apis/kopf.dev/v1/clusterkopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}},
    )
    common = ["--peering", PEERING, "--peering-lifetime", "6"]
    logs = standalone.log.parent
    high = OperatorProcess(fc.cp.kubeconfig, logs / "operator-high.log", [*common, "--priority", "200"])
    low = OperatorProcess(fc.cp.kubeconfig, logs / "operator-low.log", [*common, "--priority", "100"])

    def leads(op: OperatorProcess, times: int = 1) -> bool:
        return op.log.read_text(errors="replace").count("active (peering") >= times

    try:
        high.start(timeout=60)
        wait_for(lambda: leads(high), 30, "the high-priority replica to lead")
        low.start(timeout=60)
        fc.op = high
        sc = scenario(fc, fault_ns, profile, "active replica of two SIGKILLed, restarted")
        synced = fc.synced_lines()
        sc.create_mix(profile.jobs // 2)
        wait_running(sc, at_least=3)
        hold(sc.rng.uniform(0.5, 3.0))
        high.kill()
        killed = time.monotonic()
        sc.create_mix(profile.jobs // 4)  # the webhook of the dead replica may be the registered one: Ignore
        wait_for(lambda: leads(low), 60, "the standby to take over")
        took_over = time.monotonic() - killed
        fc.op = low
        sc.create_mix(profile.jobs - profile.jobs // 2 - profile.jobs // 4)
        high.start(timeout=60)  # restarted: with the higher priority it leads again, low stands by
        wait_for(lambda: leads(high), 60, "the restarted replica to lead again")
        fc.op = high
        end = time.monotonic()
        sc.notes.append(f"standby led {took_over:.1f}s after the SIGKILL (peering lifetime 6s)")
        recovery = sc.recover(end)
        sc.verify(end, recovery, synced)
        sc.assert_clean()
        assert low.alive() and high.alive()
    finally:
        for op in (high, low):
            op.stop()
        fc.op = standalone  # the next test's `healthy` starts it again
        with contextlib.suppress(ApiError):
            fc.api.request("DELETE", f"/apis/kopf.dev/v1/clusterkopfpeerings/{PEERING}")
