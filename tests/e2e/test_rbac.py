"""Least privilege, proven: the operator running as the chart's ServiceAccount (a real token, so the
apiserver's RBAC decides every call) completes the job and schedule flows with no 403 — cluster-wide
and namespaced. And worker pods pass Pod Security "restricted"."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.chart_render import CHART, helm
from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import GROUP, VERSION, Jobs, OperatorProcess, worker_template
from tests.kube import create_schedule, kubectl, wait_for


def _sa_kubeconfig(cluster: ClusterHandle, namespace: str, sa: str, path: Path) -> Path:
    token = kubectl(
        cluster.kubeconfig, "create", "token", sa, "-n", namespace, "--duration", "2h"
    ).stdout.strip()
    config = json.loads(cluster.kubeconfig.read_text())
    config["users"] = [{"name": sa, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = sa
    path.write_text(json.dumps(config))
    return path


def _flows(cluster: ClusterHandle, namespace: str, jobs: Jobs) -> None:
    jobs.queue(concurrency=2, retention={"succeeded": 3})
    jobs.create("ok", "echo", {"n": 1})
    jobs.create("retry", "flaky", {"succeedOn": 2}, retry={"limit": 2, "backoff": {"initialSeconds": 1}})
    jobs.create("short", "echo", {}, ttlSecondsAfterFinished=1)
    jobs.create("dead", "permanent", None)
    for name in ("ok", "retry"):
        jobs.wait_phase(name, "Succeeded", timeout=90)
    jobs.wait_phase("dead", "Failed", timeout=60)
    wait_for(lambda: not jobs.exists("short"), 60, "TTL deletion")
    wait_for(lambda: (jobs.get_queue().get("status") or {}).get("succeeded", 0) >= 2, 30, "queue status")
    # The schedule flow: an @every schedule fires runs that finish.
    create_schedule(
        cluster.custom,
        namespace,
        "tick",
        {
            "schedule": "@every 2s",
            "successfulJobsHistoryLimit": 2,
            "jobTemplate": {"spec": {"handler": "echo", "payload": {"tick": True}}},
        },
    )

    def ticks() -> int:
        items = cluster.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "queuedjobs", label_selector="jobline.dev/schedule=tick"
        )["items"]
        return sum(1 for i in items if (i.get("status") or {}).get("phase") == "Succeeded")

    wait_for(lambda: ticks() >= 2, 60, "two scheduled runs to succeed")


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_operator_as_chart_serviceaccount_has_no_403(
    cluster: ClusterHandle, namespace: str, operator: OperatorProcess, tmp_path: Path, mode: str
) -> None:
    operator.stop()  # the session's admin operator would do the work instead
    # With the status policy: it must not stand in the way of the operator's own ServiceAccount.
    args = [
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
        "--show-only",
        "templates/status-policy.yaml",
    ]
    if mode == "namespaced":
        args += ["--set", "watch.all=false", "--set", f"watch.namespaces={{{namespace}}}"]
    release = f"rbac-{mode[:2]}"
    manifest = subprocess.run(
        [helm(), "template", release, str(CHART), "-n", namespace, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kubectl(cluster.kubeconfig, "apply", "-f", "-", input=manifest)
    try:
        kubeconfig = _sa_kubeconfig(cluster, namespace, f"{release}-jobline", tmp_path / "sa.kubeconfig")
        # As the chart runs it: the chart owns the webhook's configuration (generateCertificate).
        extra = ["--webhook-configuration="] + (["--namespace", namespace] if mode == "namespaced" else [])
        logs = cluster.workdir / "logs" if cluster.workdir else tmp_path  # kept when a test fails
        op = OperatorProcess(kubeconfig, logs / f"operator-rbac-{mode}.log", extra)
        op.start()
        try:
            _flows(cluster, namespace, Jobs(cluster, namespace))
        finally:
            op.stop()
        log = op.log.read_text()
        # A 403 as a status code, not as digits of a port or a timestamp (127.0.0.1:40393 failed CI once).
        assert not re.search(r"(?<![\w.:])403(?![\w.])", log) and "orbidden" not in log, log[-3000:]
        assert re.search(r"\bsynced: \d+ jobs", log) and "schedules synced:" in log
        sa = f"system:serviceaccount:{namespace}:{release}-jobline"
        for verb in ("create", "patch", "delete"):
            for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
                can = kubectl(cluster.kubeconfig, "auth", "can-i", verb, kind, f"--as={sa}", check=False)
                assert can.stdout.strip() == "no", (verb, kind, can.stdout, can.stderr)
    finally:
        kubectl(cluster.kubeconfig, "delete", "-f", "-", "--ignore-not-found", "--wait=false", input=manifest)


def test_worker_pods_pass_pod_security_restricted(
    cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess
) -> None:
    kubectl(
        cluster.kubeconfig,
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    jobs = Jobs(cluster, namespace)
    jobs.queue(template=worker_template(shared=False))  # "restricted" refuses hostPath
    jobs.create("strict", "echo", {"ok": True})
    st = jobs.wait_phase("strict", "Succeeded", "Failed", timeout=60)
    assert st["phase"] == "Succeeded", st
    # And a pod that breaks the profile is refused there: the label is enforced.
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad"},
        "spec": {
            "containers": [
                {"name": "c", "image": "x", "command": ["true"], "securityContext": {"privileged": True}}
            ]
        },
    }
    proc = kubectl(
        cluster.kubeconfig, "apply", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False
    )
    assert proc.returncode != 0 and "restricted" in proc.stderr
