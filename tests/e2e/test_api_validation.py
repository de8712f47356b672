"""Invalid manifests are refused by `kubectl apply` with a message that names the field."""

from __future__ import annotations

import pytest

from tests.conftest import ClusterHandle
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
