"""The operator killed (SIGKILL) while attempts run and while a backoff is pending, then restarted:
every job still finishes, no attempt runs twice and none is lost."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import wait_for


def test_sigkill_during_attempts_and_backoff(
    cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess, shared: Path
) -> None:
    jobs = Jobs(cluster, namespace)
    jobs.queue(concurrency=4)
    log = shared / "attempts.log"
    # Running when the operator dies: a long first attempt.
    jobs.create("running", "slow-first", {"file": str(log), "seconds": 6}, retry={"limit": 0})
    # Backing off when the operator dies: fails once, then waits 8 s before attempt 2.
    jobs.create(
        "backoff",
        "flaky",
        {"succeedOn": 2},
        retry={"limit": 2, "backoff": {"initialSeconds": 8, "factor": 1, "jitter": 0}},
    )
    wait_for(
        lambda: jobs.phase("running") == "Running" and jobs.phase("backoff") == "Waiting",
        60,
        "one job running and one backing off",
    )
    next_attempt = jobs.status("backoff")["nextAttemptAt"]

    running_operator.kill()
    # While it is down, more work arrives and the running attempt finishes.
    for i in range(3):
        jobs.create(f"late-{i}", "slow-first", {"file": str(log), "seconds": 0})
    wait_for(
        lambda: any(p.status.phase == "Succeeded" for p in jobs.pods("running")),
        60,
        "the running attempt to finish while the operator is down",
    )
    assert jobs.phase("running") == "Running"  # nobody recorded it yet

    running_operator.start()
    st = jobs.wait_phase("running", "Succeeded", timeout=60)
    assert st["attempts"] == 1 and len(st["attemptHistory"]) == 1
    st = jobs.wait_phase("backoff", "Succeeded", timeout=60)
    assert st["attempts"] == 2 and st["failedAttempts"] == 1
    assert st["attemptHistory"][1]["startedAt"] >= next_attempt  # the backoff survived the restart
    for i in range(3):
        jobs.wait_phase(f"late-{i}", "Succeeded", timeout=60)

    # No attempt ran twice: one pod per attempt, and each handler call recorded once.
    for name in ["running", "backoff", "late-0", "late-1", "late-2"]:
        pods = [p.metadata.name for p in jobs.pods(name)]
        assert len(pods) == len(set(pods)) == jobs.status(name)["attempts"], (name, pods)
    calls = Counter(tuple(line.split()[1:]) for line in log.read_text().splitlines())
    assert all(n == 1 for n in calls.values()), calls
    assert set(calls) == {("running", "1"), ("late-0", "1"), ("late-1", "1"), ("late-2", "1")}


def test_sigkill_right_after_dispatch_adopts_the_pod(
    cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess
) -> None:
    """A pod that exists without the status knowing (the operator died between the two writes) is adopted."""
    jobs = Jobs(cluster, namespace)
    jobs.queue(paused=True)
    job = jobs.create("orphan-pod", "echo", {"x": 1})
    running_operator.kill()
    # Recreate exactly the pod the operator would have made for attempt 1, then restart it.
    from jobline.core.podspec import build_worker_pod, merge_templates
    from tests.e2e.operator_fixtures import worker_template

    pod = build_worker_pod(
        job="orphan-pod",
        namespace=namespace,
        job_uid=job["metadata"]["uid"],
        queue="default",
        handler="echo",
        payload={"x": 1},
        attempt=1,
        template=merge_templates(worker_template()),
    )
    cluster.core.create_namespaced_pod(namespace, pod)
    running_operator.start()
    st = jobs.wait_phase("orphan-pod", "Succeeded", timeout=60)
    assert st["attempts"] == 1 and [p.metadata.name for p in jobs.pods("orphan-pod")] == ["orphan-pod-1"]
    wait_for(lambda: "Adopted" in [r for r, _ in jobs.events("orphan-pod")], 15, "the Adopted event")
