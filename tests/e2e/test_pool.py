"""Pool mode (issue 16): a JobQueue with ``spec.workers.mode: Pool`` runs its jobs on long-lived worker pods
that take attempts one after another. The pool scales up to maxReplicas under load and down to zero when
idle; a worker pod that goes away loses its attempts (``WorkerLost``), which are retried once each without
using a retry; no job runs twice at once; a timeout in one slot leaves the other slot's attempt running;
SIGTERM drains; only the pod an attempt is assigned to may report on it."""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.e2e.test_chart import CHART, helm
from tests.kube import kubectl, kubectl_json, wait_for

POOL_LABEL = "jobline.dev/pool"


@pytest.fixture(scope="module", autouse=True)
def status_policy(cluster: ClusterHandle) -> Iterator[None]:
    """The chart's status policy, for every test here: each pool worker's report goes through it with the
    worker pod's own bound token (the policy checks the pod it names), not only the impersonated ones."""
    manifest = subprocess.run(
        [
            helm(),
            "template",
            "pool",
            str(CHART),
            "-n",
            "default",
            "--show-only",
            "templates/status-policy.yaml",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kubectl(cluster.kubeconfig, "apply", "-f", "-", input=manifest)
    yield
    kubectl(cluster.kubeconfig, "delete", "-f", "-", "--wait=false", input=manifest)


@pytest.fixture(scope="module")
def worker_role(cluster: ClusterHandle) -> Iterator[str]:
    """The chart's worker ClusterRole (rbac.workerClusterRole), as docs/pools.md tells users to bind it."""
    rendered = subprocess.run(
        [helm(), "template", "pool", str(CHART), "-n", "default", "--show-only", "templates/rbac.yaml"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (role,) = [
        d
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-worker")
    ]
    manifest = yaml.safe_dump(role)
    kubectl(cluster.kubeconfig, "apply", "-f", "-", input=manifest)
    yield str(role["metadata"]["name"])
    kubectl(cluster.kubeconfig, "delete", "-f", "-", "--wait=false", input=manifest)


@pytest.fixture
def jobs(cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess, worker_role: str) -> Jobs:
    """Jobs in a namespace whose default ServiceAccount is bound to the chart's worker ClusterRole: what a
    pool worker needs (watch its assignments, report on them) and no more."""
    binding = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: pool-worker}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {worker_role}}}
subjects: [{{kind: ServiceAccount, name: default, namespace: {namespace}}}]
"""
    kubectl(cluster.kubeconfig, "apply", "-n", namespace, "-f", "-", input=binding)
    return Jobs(cluster, namespace)


def workers(jobs: Jobs, queue: str) -> list[Any]:
    pods = jobs.cluster.core.list_namespaced_pod(jobs.ns, label_selector=f"{POOL_LABEL}={queue}").items
    return [p for p in pods if not p.metadata.deletion_timestamp]


def busy_worker(jobs: Jobs, names: list[str]) -> str:
    """The worker pod running every one of the jobs `names` (they all run on one)."""

    def same() -> str | None:
        on = {jobs.status(n).get("worker") for n in names}
        return on.pop() if len(on) == 1 and None not in on else None

    return wait_for(same, 90, f"jobs {names} to run on one worker")


class PeakWorkers(threading.Thread):
    """Polls the queue's worker pods and records the most seen at once."""

    def __init__(self, jobs: Jobs, queue: str) -> None:
        super().__init__(daemon=True)
        self.jobs, self.queue, self.peak = jobs, queue, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.peak = max(self.peak, len(workers(self.jobs, self.queue)))


def starts(log: Path) -> Counter[str]:
    return Counter(line.split()[1] for line in log.read_text().splitlines() if line.startswith("start "))


def overlaps(log: Path) -> list[str]:
    """Jobs whose handler ran twice at once: the ``record`` handler holds a lock per job while it runs (a
    killed run's lock goes with its process) and notes a start that found it held."""
    return [line.split()[1] for line in log.read_text().splitlines() if line.startswith("twice ")]


def test_pool_runs_200_jobs_scales_to_max_and_back_to_zero(jobs: Jobs, shared: Path) -> None:
    log = shared / "runs.log"
    jobs.queue(
        "pool",
        workers={
            "mode": "Pool",
            "minReplicas": 0,
            "maxReplicas": 2,
            "slotsPerWorker": 2,
            "scaleDownAfterSeconds": 3,
        },
    )
    peak = PeakWorkers(jobs, "pool")
    peak.start()
    began = time.monotonic()
    names = [f"p{i:03d}" for i in range(200)]
    for name in names:
        jobs.create(name, "record", {"file": str(log), "seconds": 0.05}, queue="pool")

    def finished() -> int | None:
        q = jobs.get_queue("pool").get("status") or {}
        return q.get("succeeded") if q.get("succeeded", 0) + q.get("failed", 0) >= 200 else None

    assert wait_for(finished, 600, "200 pooled jobs to finish", interval=1) == 200
    took = time.monotonic() - began
    print(f"\npool: 200 jobs on 2 workers x 2 slots in {took:.1f}s ({200 / took:.1f} jobs/s)")
    for name in names[:20]:
        st = jobs.status(name)
        assert st["phase"] == "Succeeded" and st["attempts"] == 1, st
        assert st["attemptHistory"][0]["worker"].startswith("pool-worker-")
        assert st.get("worker") is None  # the job left its worker
    assert all(c == 1 for c in starts(log).values()) and len(starts(log)) == 200
    assert overlaps(log) == []
    assert not [n for n in names if jobs.pods(n)]  # no pod per attempt
    # Scaled up to maxReplicas under load, then down to zero once idle.
    wait_for(lambda: not workers(jobs, "pool"), 60, "the idle pool to scale to zero")
    peak.done.set()
    peak.join()
    assert peak.peak == 2, peak.peak
    status = wait_for(
        lambda: s if (s := jobs.get_queue("pool")["status"]).get("workers", {}).get("ready") == 0 else None,
        30,
        "the queue status to count no worker",
    )
    assert status["workers"]["desired"] == 0
    # And back: a new job scales it from zero again.
    jobs.create("again", "echo", {"n": 1}, queue="pool")
    st = jobs.wait_phase("again", "Succeeded", timeout=90)
    assert st["result"] == {"n": 1}


def test_a_lost_worker_retries_its_attempts_once_each(jobs: Jobs, shared: Path) -> None:
    log = shared / "runs.log"
    jobs.queue("pool", workers={"mode": "Pool", "maxReplicas": 1, "slotsPerWorker": 2})
    for name in ("a", "b"):
        jobs.create(name, "record", {"file": str(log), "seconds": 20}, queue="pool", retry={"limit": 0})
    wait_for(
        lambda: all(starts(log).get(n) == 1 for n in "ab") if log.exists() else None, 90, "both to start"
    )
    worker = busy_worker(jobs, ["a", "b"])
    # Deleted with a grace period far too short to finish or even report (1 s, then SIGKILL): the pod goes
    # with its attempts unreported, which end as WorkerLost and are retried on a new worker.
    kubectl(jobs.cluster.kubeconfig, "delete", "pod", worker, "-n", jobs.ns, "--grace-period=1")
    for name in ("a", "b"):
        st = jobs.wait_phase(name, "Succeeded", timeout=120)
        assert st["attempts"] == 2 and st.get("failedAttempts", 0) == 0, st  # retry.limit 0 is not used
        first, second = st["attemptHistory"]
        assert first["reason"] == "WorkerLost" and first["worker"] == worker, first
        assert second["worker"] != worker and second["reason"] == "Completed"
        assert st["disruptedAttempts"] == 1
    assert starts(log) == Counter({"a": 2, "b": 2})  # once each on the lost worker, once on the new one
    assert overlaps(log) == []  # the retry starts only once the lost worker's attempt is gone


def test_a_timeout_in_one_slot_leaves_the_other_running(jobs: Jobs, shared: Path) -> None:
    log = shared / "runs.log"
    jobs.queue("pool", workers={"mode": "Pool", "maxReplicas": 1, "slotsPerWorker": 2})
    jobs.create(
        "slow",
        "graceful",
        {"file": str(log), "seconds": 300},
        queue="pool",
        timeoutSeconds=3,
        retry={"limit": 0},
    )
    jobs.create("steady", "sleep", {"seconds": 8}, queue="pool")
    busy_worker(jobs, ["slow", "steady"])
    st = jobs.wait_phase("slow", "Failed", timeout=90)
    record = st["attemptHistory"][-1]
    assert record["reason"] == "Timeout" and "timeoutSeconds=3" in record.get("message", ""), record
    assert "cleanup slow 1" in log.read_text()  # stopped with SIGTERM: the handler's cleanup ran
    assert jobs.phase("steady") == "Running"  # the other slot's attempt goes on
    st = jobs.wait_phase("steady", "Succeeded", timeout=60)
    assert st["attempts"] == 1 and st["result"] == {"slept": 8.0}


def test_sigterm_drains_the_worker(jobs: Jobs, shared: Path) -> None:
    log = shared / "runs.log"
    jobs.queue(
        "pool",
        workers={"mode": "Pool", "maxReplicas": 1, "slotsPerWorker": 2},
        template={**jobs_template(), "podSpecPatch": {"terminationGracePeriodSeconds": 10}},
    )
    jobs.create("short", "record", {"file": str(log), "seconds": 3}, queue="pool")
    jobs.create("long", "record", {"file": str(log), "seconds": 60}, queue="pool", retry={"limit": 0})
    worker = busy_worker(jobs, ["short", "long"])
    wait_for(lambda: log.exists() and set(starts(log)) == {"short", "long"}, 90, "both handlers to start")
    kubectl(jobs.cluster.kubeconfig, "delete", "pod", worker, "-n", jobs.ns, "--wait=false")
    # The running short attempt finishes within the drain; the long one is given back before the grace
    # period ends and retried on a new worker without using a retry.
    st = jobs.wait_phase("short", "Succeeded", timeout=60)
    assert st["attempts"] == 1, st
    st = jobs.wait_phase("long", "Running", "Succeeded", timeout=60)
    st = wait_for(
        lambda: s if (s := jobs.status("long")).get("attempts") == 2 else None, 60, "a second attempt"
    )
    first = st["attemptHistory"][0]
    assert first["reason"] == "WorkerLost" and st.get("failedAttempts", 0) == 0, st
    assert "the worker pod stopped before the attempt finished" in first["message"], first
    assert overlaps(log) == []  # stopped before it was given back: never twice at once


def jobs_template() -> dict[str, Any]:
    from tests.e2e.workers import worker_template

    return worker_template()


def test_only_the_assigned_worker_may_report(cluster: ClusterHandle, jobs: Jobs, namespace: str) -> None:
    """The chart's status policy: a report is accepted from the pod the attempt is assigned to (its bound
    token's pod name), refused from any other pod of the same ServiceAccount."""
    jobs.queue("held", paused=True)
    jobs.create("assigned", "echo", {}, queue="held")
    jobs.wait_phase("assigned", "Pending", timeout=30)
    # As the operator would assign it (the queue is paused, so it leaves the job alone).
    jobs.api.patch_namespaced_custom_object_status(
        "jobline.dev",
        "v1alpha1",
        namespace,
        "queuedjobs",
        "assigned",
        {"status": {"phase": "Running", "attempts": 1, "worker": "held-worker-a"}},
    )
    sa = f"system:serviceaccount:{namespace}:default"

    def report(
        pod: str, attempt: int = 1, worker: str | None = None, n: int = 0
    ) -> subprocess.CompletedProcess[str]:
        body = {
            "report": {
                "attempt": attempt,
                "worker": worker or pod,
                "exitCode": 0,
                "reason": "Completed",
                "message": json.dumps({"n": n}),
            }
        }
        return kubectl(
            cluster.kubeconfig,
            "--as",
            sa,
            "--as-user-extra",
            f"authentication.kubernetes.io/pod-name={pod}",
            "patch",
            "qj",
            "assigned",
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": body}),
            check=False,
        )

    probe = itertools.count(1)
    wait_for(lambda: report("held-worker-b", n=next(probe)).returncode != 0, 30, "the policy to apply")
    refused = report("held-worker-b")
    assert "only the worker pod the attempt is assigned to" in refused.stderr, refused.stderr
    assert report("held-worker-b", worker="held-worker-a").returncode != 0  # naming another pod
    assert report("held-worker-a", attempt=2).returncode != 0  # another attempt
    accepted = report("held-worker-a", n=7)
    assert accepted.returncode == 0, accepted.stderr
    st = kubectl_json(cluster.kubeconfig, "get", "qj", "assigned", "-n", namespace)["status"]
    assert st["report"]["worker"] == "held-worker-a"


def test_a_job_cannot_bring_its_own_template_into_a_pool(jobs: Jobs) -> None:
    """Refused at apply time by the webhook, or, when admission let it in (failurePolicy Ignore), failed
    by the controller's backstop as TemplateInPool: never run on a worker it did not configure."""
    from kubernetes.client import ApiException

    jobs.queue("pool", workers={"mode": "Pool", "maxReplicas": 1})
    try:
        jobs.create("own", "echo", {}, queue="pool", template={"env": [{"name": "A", "value": "1"}]})
    except ApiException as exc:
        assert exc.status == 422 and "runs its jobs on a pool of worker pods" in str(exc.body), exc.body
        return
    st = jobs.wait_phase("own", "Failed", timeout=60)
    failed = {c["type"]: c for c in st["conditions"]}["Failed"]
    assert failed["reason"] == "TemplateInPool" and st.get("attempts", 0) == 0, st
