"""QueuedJob and JobQueue end to end: real operator, real worker pods on the local node."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess, worker_template
from tests.kube import kubectl, kubectl_json, wait_for


@pytest.fixture
def jobs(cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess) -> Jobs:
    return Jobs(cluster, namespace)


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_echo_succeeds_with_result_labels_and_events(jobs: Jobs, cluster: ClusterHandle) -> None:
    jobs.queue()
    jobs.create("hello", "echo", {"greeting": "hi", "n": [1, 2]})
    st = jobs.wait_phase("hello", "Succeeded")
    assert st["result"] == {"greeting": "hi", "n": [1, 2]}
    assert st["attempts"] == 1 and st["progress"] == 100 and st["podName"] == "hello-1"
    assert {c["type"]: c["status"] for c in st["conditions"]}["Complete"] == "True"
    want = {"jobline.dev/phase": "Succeeded", "jobline.dev/queue": "default", "jobline.dev/handler": "echo"}
    wait_for(lambda: jobs.get("hello")["metadata"]["labels"] == want, 10, "the labels of a finished job")
    selected = kubectl(
        cluster.kubeconfig,
        "get",
        "qj",
        "-n",
        jobs.ns,
        "-o",
        "name",
        "--field-selector",
        "status.phase=Succeeded,spec.handler=echo",
    ).stdout.split()
    assert selected == ["queuedjob.jobline.dev/hello"], selected
    none = kubectl(
        cluster.kubeconfig,
        "get",
        "qj",
        "-n",
        jobs.ns,
        "-o",
        "name",
        "--field-selector",
        "status.phase=Running",
    )
    assert none.stdout.split() == []
    pod = jobs.pods("hello")[0]
    assert pod.metadata.owner_references[0].kind == "QueuedJob"
    assert pod.metadata.labels["jobline.dev/attempt"] == "1"
    assert pod.spec.security_context.run_as_non_root is True
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert (
        env["JOBLINE_JOB"] == "hello" and env["JOBLINE_ATTEMPT"] == "1" and env["JOBLINE_QUEUE"] == "default"
    )
    assert json.loads(env["JOBLINE_PAYLOAD"]) == {"greeting": "hi", "n": [1, 2]}
    wait_for(lambda: ("Succeeded", "attempt 1 succeeded") in jobs.events("hello"), 10, "the Succeeded event")
    proc = kubectl(
        cluster.kubeconfig, "wait", "--for=condition=Complete", "qj/hello", "-n", jobs.ns, "--timeout=5s"
    )
    assert "condition met" in proc.stdout
    table = kubectl(cluster.kubeconfig, "get", "qj", "-n", jobs.ns).stdout.splitlines()
    assert table[0].split()[:7] == ["NAME", "QUEUE", "HANDLER", "PRIORITY", "PHASE", "REASON", "ATTEMPTS"]
    assert table[1].split()[:5] == ["hello", "default", "echo", "Succeeded", "1"]


def test_priority_order_under_concurrency_one(jobs: Jobs, shared: Path) -> None:
    jobs.queue(concurrency=1, paused=True)
    log = shared / "order.log"
    for name, prio in [("low", 1), ("high-a", 5), ("mid", 3), ("high-b", 5), ("none", None)]:
        spec: dict[str, Any] = {"priority": prio} if prio is not None else {}
        jobs.create(name, "record", {"file": str(log), "seconds": 0.1}, **spec)
    wait_for(
        lambda: all(jobs.phase(n) == "Pending" for n in ["low", "high-a", "mid", "high-b", "none"]),
        30,
        "all jobs pending in the paused queue",
    )
    assert not any(jobs.pods(n) for n in ["low", "high-a"])
    jobs.patch_queue("default", {"paused": False})
    for name in ["low", "high-a", "mid", "high-b", "none"]:
        jobs.wait_phase(name, "Succeeded")
    starts = [parts[1] for parts in _lines(log) if parts[0] == "start"]
    assert starts == ["high-a", "high-b", "mid", "low", "none"]


def test_concurrency_limit_is_never_exceeded(jobs: Jobs, shared: Path) -> None:
    jobs.queue(concurrency=2)
    log = shared / "overlap.log"
    names = [f"c{i}" for i in range(6)]
    for name in names:
        jobs.create(name, "record", {"file": str(log), "seconds": 1.0})
    for name in names:
        jobs.wait_phase(name, "Succeeded", timeout=90)
    events = sorted((float(p[2]), 1 if p[0] == "start" else -1) for p in _lines(log))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2, f"peak concurrency {peak}"
    assert jobs.get_queue()["status"]["succeeded"] == 6 or wait_for(
        lambda: jobs.get_queue()["status"]["succeeded"] == 6, 10, "queue status to count 6 successes"
    )


def test_run_at_is_honoured(jobs: Jobs) -> None:
    jobs.queue()
    run_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=5)
    jobs.create("later", "echo", {}, runAt=run_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    st = jobs.wait_phase("later", "Waiting", timeout=20)
    assert st["waitingReason"] == "Delayed" and _ts(st["nextAttemptAt"]) == run_at
    st = jobs.wait_phase("later", "Succeeded", timeout=30)
    assert _ts(st["attemptHistory"][0]["startedAt"]) >= run_at


def test_retries_with_backoff_until_success(jobs: Jobs) -> None:
    jobs.queue()
    jobs.create(
        "flaky",
        "flaky",
        {"succeedOn": 3},
        retry={"limit": 3, "backoff": {"initialSeconds": 1, "factor": 2, "jitter": 0}},
    )
    st = jobs.wait_phase("flaky", "Succeeded", timeout=60)
    assert st["attempts"] == 3 and st["failedAttempts"] == 2
    history = st["attemptHistory"]
    assert [h["attempt"] for h in history] == [1, 2, 3]
    assert [h["reason"] for h in history] == ["Error", "Error", "Completed"]
    assert "flaky failure on attempt 1" in history[0]["message"]
    starts = [_ts(h["startedAt"]) for h in history]
    assert (starts[1] - starts[0]).total_seconds() >= 1
    assert (starts[2] - starts[1]).total_seconds() >= 2
    assert [p.metadata.name for p in sorted(jobs.pods("flaky"), key=lambda p: p.metadata.name)] == [
        "flaky-1",
        "flaky-2",
        "flaky-3",
    ]
    # Events are written after the status: wait for the last one before counting.
    wait_for(lambda: "Succeeded" in [r for r, _ in jobs.events("flaky")], 10, "the Succeeded event")
    reasons = [r for r, _ in jobs.events("flaky")]
    assert reasons.count("Started") == 3 and reasons.count("Retrying") == 2 and "Succeeded" in reasons


def test_exhausted_retries_dead_letter(jobs: Jobs, cluster: ClusterHandle) -> None:
    jobs.queue()
    jobs.create("doomed", "fail", None, retry={"limit": 1, "backoff": {"initialSeconds": 1, "jitter": 0}})
    st = jobs.wait_phase("doomed", "Failed", timeout=60)
    assert st["deadLettered"] is True and st["attempts"] == 2
    failed = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert failed["status"] == "True" and failed["reason"] == "RetriesExhausted"
    assert "always fails" in st["lastError"]
    wait_for(
        lambda: (
            [
                i["metadata"]["name"]
                for i in kubectl_json(
                    cluster.kubeconfig, "get", "qj", "-n", jobs.ns, "-l", "jobline.dev/phase=Failed"
                )["items"]
            ]
            == ["doomed"]
        ),
        10,
        "kubectl get -l jobline.dev/phase=Failed to list the dead letter",
    )
    wait_for(lambda: "DeadLettered" in [r for r, _ in jobs.events("doomed")], 10, "the DeadLettered event")


def test_non_retryable_exit_code_and_permanent_error_stop_at_once(jobs: Jobs) -> None:
    jobs.queue()
    jobs.create("exit7", "exit", {"code": 7}, retry={"limit": 5, "nonRetryableExitCodes": [7]})
    jobs.create("perm", "permanent", None, retry={"limit": 5})
    st = jobs.wait_phase("exit7", "Failed")
    assert st["attempts"] == 1 and st["attemptHistory"][0]["exitCode"] == 7
    assert {c["type"]: c["reason"] for c in st["conditions"]}["Failed"] == "NonRetryableExitCode"
    st = jobs.wait_phase("perm", "Failed")
    assert st["attempts"] == 1 and st["attemptHistory"][0]["exitCode"] == 66
    assert {c["type"]: c["reason"] for c in st["conditions"]}["Failed"] == "PermanentError"
    assert "this input can never work" in st["lastError"]


def test_timeout_fails_the_attempt(jobs: Jobs) -> None:
    jobs.queue()
    jobs.create("slow", "sleep", {"seconds": 60}, timeoutSeconds=2, retry={"limit": 0})
    st = jobs.wait_phase("slow", "Failed", timeout=40)
    assert st["attemptHistory"][0]["reason"] == "Timeout"
    assert "timeoutSeconds=2" in st["lastError"]


def test_depends_on(jobs: Jobs) -> None:
    jobs.queue()
    jobs.create("child", "echo", {"x": 1}, dependsOn=["parent"])
    st = jobs.wait_phase("child", "Waiting")
    assert st["waitingReason"] == "Blocked"
    jobs.create("parent", "echo", {})
    jobs.wait_phase("parent", "Succeeded")
    st = jobs.wait_phase("child", "Succeeded")
    assert _ts(st["attemptHistory"][0]["startedAt"]) >= _ts(jobs.status("parent")["completedAt"])
    jobs.create("bad-parent", "permanent", None)
    jobs.create("orphan", "echo", {}, dependsOn=["bad-parent"])
    st = jobs.wait_phase("orphan", "Failed")
    assert st.get("attempts", 0) == 0 and not jobs.pods("orphan")
    failed = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert failed["reason"] == "DependencyFailed" and "bad-parent" in failed["message"]


def test_unique_key_duplicate_that_slipped_past_admission_is_marked(
    jobs: Jobs, running_operator: OperatorProcess
) -> None:
    """Admission refuses a second unfinished job with the same key (test_api_validation); when the operator
    is down the webhook is skipped (failurePolicy Ignore), and the controller marks the newcomer Duplicate."""
    jobs.queue(paused=True)
    jobs.create("first", "echo", {}, uniqueKey="user-42")
    jobs.wait_phase("first", "Pending")
    running_operator.kill()
    jobs.create("second", "echo", {}, uniqueKey="user-42")
    running_operator.start()
    st = jobs.wait_phase("second", "Failed")
    assert st["duplicateOf"] == "first" and st["deadLettered"] is False
    assert {c["type"]: c["reason"] for c in st["conditions"]}["Failed"] == "Duplicate"
    jobs.patch_queue("default", {"paused": False})
    jobs.wait_phase("first", "Succeeded")
    jobs.create("third", "echo", {}, uniqueKey="user-42")  # the first one is finished: no conflict now
    jobs.wait_phase("third", "Succeeded")


def test_suspend_stops_the_attempt_without_counting_it(jobs: Jobs) -> None:
    jobs.queue()
    jobs.create("held", "slow-first", {"seconds": 120}, retry={"limit": 0})
    jobs.wait_phase("held", "Running")
    wait_for(lambda: any(p.status.phase == "Running" for p in jobs.pods("held")), 30, "the pod to run")
    jobs.patch("held", {"spec": {"suspend": True}})
    st = jobs.wait_phase("held", "Suspended", timeout=30)
    assert st["attemptHistory"][0]["reason"] == "Suspended"
    assert st.get("failedAttempts", 0) == 0
    wait_for(
        lambda: not [p for p in jobs.pods("held") if p.metadata.deletion_timestamp is None],
        30,
        "the attempt pod to be deleted",
    )
    jobs.patch("held", {"spec": {"suspend": False}})
    st = jobs.wait_phase("held", "Succeeded", timeout=60)
    assert st["attempts"] == 2 and st["result"] == {"attempt": 2}


def test_requeue_runs_a_dead_letter_again(jobs: Jobs) -> None:
    jobs.queue()
    jobs.create("again", "flaky", {"succeedOn": 2}, retry={"limit": 0})
    st = jobs.wait_phase("again", "Failed")
    assert st["deadLettered"] is True and st["attempts"] == 1
    jobs.patch("again", {"metadata": {"annotations": {"jobline.dev/requeue": "r1"}}})
    st = jobs.wait_phase("again", "Succeeded")
    assert st["attempts"] == 2 and st["requeueToken"] == "r1" and st["deadLettered"] is False
    assert [h["attempt"] for h in st["attemptHistory"]] == [1, 2]  # history kept


def test_ttl_after_finished_deletes_job_and_pods(jobs: Jobs) -> None:
    jobs.queue()
    jobs.create("brief", "echo", {}, ttlSecondsAfterFinished=2)
    jobs.wait_phase("brief", "Succeeded")
    wait_for(lambda: not jobs.exists("brief"), 30, "the TTL to delete the job")
    wait_for(lambda: not jobs.pods("brief"), 60, "the garbage collector to delete its pod")


def test_queue_retention_keeps_the_newest(jobs: Jobs) -> None:
    jobs.queue(concurrency=1, retention={"succeeded": 2})
    for i in range(4):
        jobs.create(f"r{i}", "echo", {"i": i})
    wait_for(lambda: jobs.exists("r3") and jobs.phase("r3") == "Succeeded", 60, "the last job")
    wait_for(
        lambda: [n for n in ("r0", "r1", "r2", "r3") if jobs.exists(n)] == ["r2", "r3"],
        30,
        "retention to keep the two newest",
    )


def test_pod_deleted_mid_run_is_a_failed_attempt_and_retried(jobs: Jobs, cluster: ClusterHandle) -> None:
    jobs.queue()
    jobs.create(
        "victim", "slow-first", {"seconds": 120}, retry={"limit": 2, "backoff": {"initialSeconds": 1}}
    )
    wait_for(
        lambda: any(p.status.phase == "Running" for p in jobs.pods("victim")), 30, "the first pod to run"
    )
    cluster.core.delete_namespaced_pod("victim-1", jobs.ns)
    st = jobs.wait_phase("victim", "Succeeded", timeout=60)
    assert st["attemptHistory"][0]["reason"] in ("PodDeleted", "Error")
    assert st["attemptHistory"][0]["reason"] == "PodDeleted", st["attemptHistory"][0]
    assert st["attempts"] == 2 and st["failedAttempts"] == 1


def test_no_image_fails_with_a_clear_reason(
    cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess
) -> None:
    jobs = Jobs(cluster, namespace)
    jobs.create("noimage", "echo", {}, queue="nowhere")  # no JobQueue: built-in defaults, no image
    st = jobs.wait_phase("noimage", "Failed")
    failed = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert failed["reason"] == "NoImage" and "spec.template.image" in failed["message"]


def test_job_template_merges_over_queue_template(jobs: Jobs) -> None:
    jobs.queue(
        template=worker_template(labels={"team": "a"}, nodeSelector={"kubernetes.io/os": "linux"}),
        jobOverrides=["labels", "env"],
    )
    jobs.create(
        "merged", "echo", {}, template={"labels": {"tier": "b"}, "env": [{"name": "EXTRA", "value": "1"}]}
    )
    jobs.wait_phase("merged", "Succeeded")
    pod = jobs.pods("merged")[0]
    assert pod.metadata.labels["team"] == "a" and pod.metadata.labels["tier"] == "b"
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env["EXTRA"] == "1" and env["PYTHONPATH"]
    assert (
        pod.spec.node_selector == worker_template(nodeSelector={"kubernetes.io/os": "linux"})["nodeSelector"]
    )
    assert pod.spec.node_selector["kubernetes.io/os"] == "linux"


def test_queue_status_counts(jobs: Jobs, cluster: ClusterHandle) -> None:
    jobs.queue(paused=True, concurrency=5)
    for i in range(3):
        jobs.create(f"q{i}", "echo", {})
    wait_for(
        lambda: (jobs.get_queue().get("status") or {}).get("pending") == 3, 20, "3 pending in the status"
    )
    jobs.patch_queue("default", {"paused": False})
    wait_for(
        lambda: (st := jobs.get_queue().get("status") or {}).get("succeeded") == 3 and st.get("pending") == 0,
        40,
        "3 succeeded in the status",
    )
    row = (
        kubectl(cluster.kubeconfig, "get", "jobqueue", "default", "-n", jobs.ns)
        .stdout.splitlines()[1]
        .split()
    )
    assert row[:8] == ["default", "5", "false", "0", "0", "0", "3", "0"]
