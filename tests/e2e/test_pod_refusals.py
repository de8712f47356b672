"""Pods the apiserver refuses (issue 13, part 5): a full ResourceQuota makes jobs wait and try again,
never fail; a Pod Security violation fails the job with the apiserver's message."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import kubectl, wait_for


@pytest.fixture
def jobs(cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess) -> Jobs:
    return Jobs(cluster, namespace)


def test_a_full_quota_blocks_pods_then_frees_and_every_job_succeeds(
    jobs: Jobs, cluster: ClusterHandle, shared: Path
) -> None:
    quota = (
        f"apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: one-pod, namespace: {jobs.ns}}}\n"
        "spec: {hard: {pods: '1'}}\n"
    )
    kubectl(cluster.kubeconfig, "apply", "-f", "-", input=quota)
    wait_for(
        lambda: (jobs.cluster.core.read_namespaced_resource_quota("one-pod", jobs.ns).status.hard or {}).get(
            "pods"
        ),
        30,
        "the quota controller to count the namespace's pods",
    )
    jobs.queue()
    log = shared / "quota.log"
    names = [f"q{i}" for i in range(3)]
    for name in names:
        jobs.create(name, "record", {"file": str(log), "seconds": 2})
    seen = wait_for(
        lambda: {n for n in names if jobs.status(n).get("waitingReason") == "QuotaExceeded"} or None,
        30,
        "a job waiting for the quota",
    )
    assert seen and all(jobs.phase(n) != "Failed" for n in names)
    for name in names:
        st = jobs.wait_phase(name, "Succeeded", timeout=120)
        assert st["attempts"] == 1 and st.get("failedAttempts", 0) == 0, st
    assert "PodRefused" in {r for r, _ in jobs.events(sorted(seen)[0])}, jobs.events(sorted(seen)[0])


def test_a_pod_security_violation_fails_the_job_with_the_apiservers_message(
    jobs: Jobs, cluster: ClusterHandle
) -> None:
    kubectl(
        cluster.kubeconfig,
        "label",
        "namespace",
        jobs.ns,
        "pod-security.kubernetes.io/enforce=restricted",
        "--overwrite",
    )
    jobs.queue(jobOverrides=["securityContext"])  # the queue lets jobs set it; Pod Security still refuses
    jobs.create("escalates", "echo", {}, template={"securityContext": {"allowPrivilegeEscalation": True}})
    st = jobs.wait_phase("escalates", "Failed", timeout=60)
    failed = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert st["reason"] == failed["reason"] == "PodSecurityViolation", st
    assert "violates PodSecurity" in failed["message"] and "allowPrivilegeEscalation" in failed["message"]
    assert st.get("attempts", 0) == 0 and not jobs.pods("escalates")


def test_an_evicted_pod_is_retried_without_using_a_retry(jobs: Jobs, cluster: ClusterHandle) -> None:
    """The Eviction API (what a drain uses) marks the pod DisruptionTarget: the attempt is recorded as
    Disrupted and run again, even with retry.limit 0, and failedAttempts stays 0."""
    from kubernetes import client

    jobs.queue()
    jobs.create("evicted", "slow-first", {"seconds": 120}, retry={"limit": 0})
    jobs.wait_phase("evicted", "Running", timeout=60)
    pod = wait_for(
        lambda: next((p for p in jobs.pods("evicted") if p.status.phase == "Running"), None),
        60,
        "the pod to run",
    )
    jobs.cluster.core.create_namespaced_pod_eviction(
        pod.metadata.name,
        jobs.ns,
        client.V1Eviction(metadata=client.V1ObjectMeta(name=pod.metadata.name, namespace=jobs.ns)),
    )
    st = jobs.wait_phase("evicted", "Succeeded", timeout=120)
    assert st["attempts"] == 2 and st.get("failedAttempts", 0) == 0 and st["disruptedAttempts"] == 1, st
    first = st["attemptHistory"][0]
    assert first["reason"] == "Disrupted" and first["disruption"] == "EvictionByEvictionAPI", first
    assert "Disrupted" in {r for r, _ in jobs.events("evicted")}


def test_an_exit_code_ruled_failjob_fails_at_once_and_an_ignored_one_uses_no_retry(jobs: Jobs) -> None:
    """retry.rules, batch/v1 podFailurePolicy's shape: exit code 42 ruled FailJob fails on the first
    attempt despite retry.limit 3; exit code 3 ruled Ignore is retried without using a retry, up to
    retry.disruptionLimit, and then counts."""
    jobs.queue()
    jobs.create(
        "ruled",
        "exit",
        {"code": 42},
        retry={
            "limit": 3,
            "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}],
        },
    )
    jobs.create(
        "ignored",
        "exit",
        {"code": 3},
        retry={
            "limit": 0,
            "disruptionLimit": 2,
            "backoff": {"initialSeconds": 1},
            "rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}],
        },
    )
    st = jobs.wait_phase("ruled", "Failed", timeout=90)
    failed = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert st["reason"] == failed["reason"] == "RetryRule" and st["attempts"] == 1, st
    assert failed["message"].startswith("exit code 42 matched retry.rules[0] (FailJob)"), failed
    assert st["deadLettered"] is True and st["attemptHistory"][0]["exitCode"] == 42
    st = jobs.wait_phase("ignored", "Failed", timeout=120)
    assert st["attempts"] == 3 and st["disruptedAttempts"] == 2 and st["failedAttempts"] == 1, st
    assert [a["reason"] for a in st["attemptHistory"]] == ["Ignored", "Ignored", "Error"], st
    assert st["reason"] == "RetriesExhausted"


def test_bad_retry_rules_are_refused_at_apply(jobs: Jobs) -> None:
    for rules, message in [
        ([{"action": "FailJob"}], "exactly one of onExitCodes and onPodConditions"),
        ([{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0]}}], "0 cannot be used"),
    ]:
        with pytest.raises(ApiException, match=message):
            jobs.create("bad-rules", "echo", {}, retry={"rules": rules})
