"""Invalid manifests are refused by `kubectl apply` with a message that names the field."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs
from tests.kube import kubectl, kubectl_json, wait_for

pytestmark = pytest.mark.usefixtures("running_operator")  # the payload cap is the operator's webhook


def _apply(cluster: ClusterHandle, namespace: str, spec: str) -> str:
    manifest = f"""apiVersion: jobline.dev/v1alpha1
kind: QueuedJob
metadata: {{name: bad, namespace: {namespace}}}
spec:
{spec}
"""
    proc = kubectl(cluster.kubeconfig, "apply", "-f", "-", input=manifest, check=False)
    assert proc.returncode != 0, f"accepted: {spec}"
    return proc.stderr


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ("  handler: x\n  priority: high", "spec.priority", "integer"),
        ("  handler: x\n  retry: {limit: -1}", "spec.retry.limit", "0"),
        ("  handler: x\n  runAt: tomorrow", "spec.runAt", "date-time"),
        ("  handler: x\n  retry: {limit: 1, tries: 3}", "spec.retry.tries", "unknown field"),
        ("  handler: x\n  retry: {backoff: {jitter: 1.5}}", "spec.retry.backoff.jitter", "1"),
        ("  priority: 1", "spec.handler", "Required"),
        ("  handler: x\n  cancel: maybe", "spec.cancel", "boolean"),
        (
            "  handler: x\n  retry: {rules: [{action: Retry, onExitCodes: {operator: In, values: [1]}}]}",
            "spec.retry.rules[0].action",
            "Unsupported value",
        ),
        (
            "  handler: x\n  retry: {rules: [{action: Count, onExitCodes: {operator: NotIn, values: [256]}}]}",
            "spec.retry.rules[0].onExitCodes.values[0]",
            "255",
        ),
    ],
)
def test_invalid_manifest_is_refused(
    cluster: ClusterHandle, namespace: str, spec: str, field: str, words: str
) -> None:
    message = _apply(cluster, namespace, spec)
    assert field in message, message
    assert words in message, message


def test_oversized_payload_is_refused(cluster: ClusterHandle, namespace: str) -> None:
    big = "x" * 70_000
    message = _apply(cluster, namespace, f"  handler: x\n  payload: {{blob: {big}}}")
    assert "spec.payload" in message and "65536" in message, message[-500:]


def test_second_unfinished_job_with_a_unique_key_is_refused(cluster: ClusterHandle, namespace: str) -> None:
    manifest = f"""apiVersion: jobline.dev/v1alpha1
kind: JobQueue
metadata: {{name: default, namespace: {namespace}}}
spec: {{paused: true}}
---
apiVersion: jobline.dev/v1alpha1
kind: QueuedJob
metadata: {{name: one, namespace: {namespace}}}
spec: {{handler: x, uniqueKey: invoice-7}}
"""
    kubectl(cluster.kubeconfig, "apply", "-f", "-", input=manifest)
    wait_for(
        lambda: (
            kubectl_json(cluster.kubeconfig, "get", "qj", "one", "-n", namespace)
            .get("status", {})
            .get("phase")
            == "Pending"
        ),
        30,
        "job one pending",
    )
    message = _apply(cluster, namespace, "  handler: x\n  uniqueKey: invoice-7")
    assert "spec.uniqueKey" in message and "one" in message, message


def test_kubectl_explain_shows_descriptions(cluster: ClusterHandle) -> None:
    out = kubectl(cluster.kubeconfig, "explain", "queuedjob.spec.retry").stdout
    assert "retries of failed attempts" in out.lower() or "retried" in out.lower()
    for field in ("limit", "backoff", "nonRetryableExitCodes"):
        assert field in out
    out = kubectl(cluster.kubeconfig, "explain", "queuedjob.spec.retry.backoff").stdout
    assert "initialSeconds" in out and "jitter" in out


def _jobs(cluster: ClusterHandle, namespace: str) -> Jobs:
    return Jobs(cluster, namespace)


def test_a_started_job_cannot_be_edited(cluster: ClusterHandle, namespace: str) -> None:
    """handler, payload, queue, uniqueKey and dependsOn freeze once the first attempt started (CEL
    transition rules): refused by `kubectl` with the field named. Before that they may change."""
    jobs = _jobs(cluster, namespace)
    jobs.queue()
    jobs.queue("held", paused=True)
    jobs.create("started", "echo", {"n": 1}, uniqueKey="u1")
    jobs.create("not-started", "echo", {"n": 1}, queue="held")
    jobs.wait_phase("started", "Succeeded")
    jobs.wait_phase("not-started", "Pending")
    for patch, field in [
        ({"handler": "fail"}, "spec.handler"),
        ({"payload": {"n": 2}}, "spec.payload"),
        ({"queue": "held"}, "spec.queue"),
        ({"uniqueKey": "u2"}, "spec.uniqueKey"),
        ({"dependsOn": ["x"]}, "spec.dependsOn"),
    ]:
        proc = kubectl(
            cluster.kubeconfig,
            "-n",
            namespace,
            "patch",
            "qj",
            "started",
            "--type=merge",
            "-p",
            json.dumps({"spec": patch}),
            check=False,
        )
        assert proc.returncode != 0, (patch, proc.stdout)
        assert (
            field in proc.stderr and "cannot change once the job's first attempt has started" in proc.stderr
        )
    # what is not frozen can change (priority), and a job that never started can be edited freely
    kubectl(
        cluster.kubeconfig,
        "-n",
        namespace,
        "patch",
        "qj",
        "started",
        "--type=merge",
        "-p",
        '{"spec":{"priority":3}}',
    )
    kubectl(
        cluster.kubeconfig,
        "-n",
        namespace,
        "patch",
        "qj",
        "not-started",
        "--type=merge",
        "-p",
        '{"spec":{"handler":"fail","payload":{"n":2}}}',
    )
    assert jobs.get("not-started")["spec"]["payload"] == {"n": 2}


def test_kubectl_get_shows_progress_and_the_failure_reason(cluster: ClusterHandle, namespace: str) -> None:
    jobs = _jobs(cluster, namespace)
    jobs.queue()
    jobs.create("ok", "echo", {})
    jobs.create("bad", "fail", {}, retry={"limit": 0})
    jobs.wait_phase("ok", "Succeeded")
    st = jobs.wait_phase("bad", "Failed")
    reason = {c["type"]: c for c in st["conditions"]}["Failed"]["reason"]
    assert st["reason"] == reason

    def rows() -> dict[str, list[str]] | None:
        table = kubectl(cluster.kubeconfig, "get", "qj", "-n", namespace).stdout.splitlines()
        header = table[0].split()
        got = {line.split()[0]: line.split() for line in table[1:]}
        return (
            got
            if header[:8]
            == ["NAME", "QUEUE", "HANDLER", "PRIORITY", "PHASE", "REASON", "ATTEMPTS", "PROGRESS"]
            and got
            else None
        )

    table = wait_for(rows, 10, "the table")
    assert table["bad"][:5] == ["bad", "default", "fail", "Failed", reason], table["bad"]
    assert table["ok"][:6] == ["ok", "default", "echo", "Succeeded", "1", "100"], table["ok"]


def test_a_debounce_whose_max_wait_is_below_its_quiet_spell_is_refused(
    cluster: ClusterHandle, namespace: str
) -> None:
    manifest = f"""apiVersion: jobline.dev/v1alpha1
kind: JobQueue
metadata: {{name: bad, namespace: {namespace}}}
spec: {{debounce: {{seconds: 30, maxWaitSeconds: 10}}}}
"""
    proc = kubectl(cluster.kubeconfig, "apply", "-f", "-", input=manifest, check=False)
    assert proc.returncode != 0
    assert "spec.debounce.maxWaitSeconds" in proc.stderr and "at least seconds" in proc.stderr, proc.stderr


def test_a_second_job_with_a_unique_key_is_let_in_by_a_debounce_queue(
    cluster: ClusterHandle, namespace: str
) -> None:
    manifest = f"""apiVersion: jobline.dev/v1alpha1
kind: JobQueue
metadata: {{name: debounced, namespace: {namespace}}}
spec: {{paused: true, debounce: {{seconds: 60}}}}
---
apiVersion: jobline.dev/v1alpha1
kind: QueuedJob
metadata: {{name: first, namespace: {namespace}}}
spec: {{handler: x, queue: debounced, uniqueKey: reindex-7}}
"""
    kubectl(cluster.kubeconfig, "apply", "-f", "-", input=manifest)
    wait_for(
        lambda: (
            kubectl_json(cluster.kubeconfig, "get", "qj", "first", "-n", namespace)
            .get("status", {})
            .get("phase")
        ),
        30,
        "job first seen by the operator",
    )
    second = manifest.split("---")[1].replace("name: first", "name: second")
    kubectl(cluster.kubeconfig, "apply", "-f", "-", input=second)
    first = wait_for(
        lambda: (
            st
            if (
                st := kubectl_json(cluster.kubeconfig, "get", "qj", "first", "-n", namespace).get(
                    "status", {}
                )
            ).get("phase")
            == "Superseded"
            else None
        ),
        30,
        "the first job superseded",
    )
    assert first["supersededBy"] == "second" and first.get("reason") is None, first
    st = kubectl_json(cluster.kubeconfig, "get", "qj", "second", "-n", namespace)["status"]
    assert (st["phase"], st["waitingReason"]) == ("Waiting", "Debounced") and st["nextAttemptAt"], st
