"""The Helm chart and the plain manifests, checked against the real control plane."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.chart_render import CHART, REPO, helm, install_yaml, render
from tests.conftest import ClusterHandle
from tests.kube import kubectl, kubectl_json, wait_for

pytestmark = pytest.mark.usefixtures("crds")


def _helm(cluster: ClusterHandle, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [helm(), "--kubeconfig", str(cluster.kubeconfig), *args], capture_output=True, text=True, timeout=300
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_lint_strict() -> None:
    proc = subprocess.run([helm(), "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_chart_crds_are_the_top_level_crds() -> None:
    top = {p.name: p.read_text() for p in (REPO / "crds").glob("*.yaml")}
    chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert chart == top, "charts/jobline/crds differs from crds/: run `make manifests`"


def test_install_yaml_is_up_to_date() -> None:
    assert (REPO / "manifests" / "install.yaml").read_text() == install_yaml(), "run `make manifests`"


def test_app_version_is_the_package_version() -> None:
    import jobline

    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] == jobline.__version__


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--set", "replicas=two"], "/replicas"),
        (["--set", "surprise=1"], "additional properties 'surprise' not allowed"),
        (["--set", "log.level=loud"], "/log/level"),
        (["--set", "watch.namespaces[0]=Not_A_Namespace"], "/watch/namespaces/0"),
    ],
)
def test_values_schema_refuses_bad_values(args: list[str], error: str) -> None:
    proc = subprocess.run([helm(), "template", "x", str(CHART), *args], capture_output=True, text=True)
    assert proc.returncode != 0 and error in proc.stderr, proc.stderr


@pytest.mark.parametrize("variant", ["default", "namespaced", "ha"])
def test_rendered_chart_passes_server_side_dry_run(
    cluster: ClusterHandle, namespace: str, variant: str
) -> None:
    args = {
        "default": [],
        "namespaced": ["--set", "watch.all=false", "--set", f"watch.namespaces={{{namespace}}}"],
        "ha": [
            "--set",
            "replicas=3",
            "--set",
            "dashboard.enabled=true",
            "--set",
            "defaultQueue.create=true",
            "--set",
            "defaultQueue.image=example/worker:1",
        ],
    }[variant]
    manifest = subprocess.run(
        [helm(), "template", "jl", str(CHART), "-n", namespace, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    proc = kubectl(cluster.kubeconfig, "apply", "--dry-run=server", "-f", "-", input=manifest, check=False)
    assert proc.returncode == 0, proc.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(manifest) if doc}
    if variant == "namespaced":
        assert {"Role", "RoleBinding"} <= kinds
    if variant == "ha":
        assert {"ClusterKopfPeering", "PodDisruptionBudget", "JobQueue"} <= kinds


def test_install_yaml_passes_server_side_dry_run(cluster: ClusterHandle) -> None:
    # A dry run does not create the namespace the other objects live in: create it for real first.
    kubectl(cluster.kubeconfig, "create", "namespace", "jobline-system")
    try:
        proc = kubectl(
            cluster.kubeconfig,
            "apply",
            "--server-side",
            "--dry-run=server",
            "-f",
            str(REPO / "manifests" / "install.yaml"),
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
    finally:
        kubectl(cluster.kubeconfig, "delete", "namespace", "jobline-system", "--wait=false")


def test_helm_install_and_uninstall(cluster: ClusterHandle, namespace: str) -> None:
    # The operator image cannot run here; the pod is placed on a kwok node, where it "runs" as a fake.
    values = [
        "--set",
        "nodeSelector.type=kwok",
        "--set",
        "tolerations[0].key=kwok.x-k8s.io/node",
        "--set",
        "tolerations[0].operator=Exists",
        "--set",
        "tolerations[0].effect=NoSchedule",
        "--set",
        "replicas=2",
    ]
    if not cluster.local:
        pytest.skip("needs kwok nodes")
    out = _helm(
        cluster,
        "install",
        "jl",
        str(CHART),
        "-n",
        namespace,
        "--skip-crds",
        "--wait",
        "--timeout",
        "90s",
        *values,
    ).stdout
    assert "kubectl get qj" in out  # NOTES.txt tells what to run next
    deploy = kubectl_json(cluster.kubeconfig, "get", "deploy", "jl-jobline", "-n", namespace)
    assert deploy["status"]["availableReplicas"] == 2
    assert kubectl_json(cluster.kubeconfig, "get", "clusterkopfpeering", "jl-jobline")["metadata"]["name"]
    _helm(cluster, "uninstall", "jl", "-n", namespace, "--wait")
    wait_for(
        lambda: kubectl(cluster.kubeconfig, "get", "clusterrole", "jl-jobline", check=False).returncode != 0,
        30,
        "the ClusterRole to be removed",
    )
    left = kubectl(
        cluster.kubeconfig,
        "get",
        "all,sa,secret,pdb",
        "-n",
        namespace,
        "-l",
        "app.kubernetes.io/instance=jl",
        "-o",
        "name",
    ).stdout.strip()
    assert left == ""


def test_status_policy_lets_service_accounts_write_progress_only(
    cluster: ClusterHandle, namespace: str
) -> None:
    """The chart's ValidatingAdmissionPolicy: a worker's ServiceAccount may set status.progress, not forge
    the outcome; the operator's ServiceAccount and people (RBAC decides) may write the whole status."""
    manifest = subprocess.run(
        [
            helm(),
            "template",
            "sp",
            str(CHART),
            "-n",
            namespace,
            "--show-only",
            "templates/status-policy.yaml",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    operator_sa, worker_sa = (
        f"system:serviceaccount:{namespace}:sp-jobline",
        f"system:serviceaccount:{namespace}:worker",
    )
    rbac = f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: worker}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: status-writer}}
rules: [{{apiGroups: [jobline.dev], resources: [queuedjobs/status], verbs: [get, patch]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: status-writer}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: status-writer}}
subjects:
  - {{kind: ServiceAccount, name: worker, namespace: {namespace}}}
  - {{kind: ServiceAccount, name: sp-jobline, namespace: {namespace}}}
---
apiVersion: jobline.dev/v1alpha1
kind: QueuedJob
metadata: {{name: guarded}}
spec: {{handler: echo, suspend: true, template: {{image: example/worker:1}}}}
"""
    kubectl(cluster.kubeconfig, "apply", "-n", namespace, "-f", "-", input=rbac)

    def patch_status(user: str | None, status: dict[str, object]) -> subprocess.CompletedProcess[str]:
        who = ["--as", user] if user else []
        return kubectl(
            cluster.kubeconfig,
            *who,
            "patch",
            "qj",
            "guarded",
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
            check=False,
        )

    kubectl(cluster.kubeconfig, "apply", "-f", "-", input=manifest)
    try:
        # The apiserver takes a moment to load a new policy: probe with a field nothing else writes, with a
        # new value each time (a write that changes nothing is allowed).
        probe = itertools.count(1)
        wait_for(
            lambda: patch_status(worker_sa, {"olderAttempts": next(probe)}).returncode != 0,
            30,
            "the policy to apply",
        )
        refused = patch_status(worker_sa, {"phase": "Succeeded", "result": {"forged": True}})
        assert refused.returncode != 0
        assert "only the Jobline operator writes the status of a QueuedJob" in refused.stderr, refused.stderr
        assert "may change status.progress only" in refused.stderr
        assert patch_status(worker_sa, {"progress": 42}).returncode == 0
        st = kubectl_json(cluster.kubeconfig, "get", "qj", "guarded", "-n", namespace)["status"]
        assert st["progress"] == 42 and st.get("phase") != "Succeeded" and "result" not in st
        for user in (operator_sa, None):  # the operator's ServiceAccount; the admin (not a ServiceAccount)
            proc = patch_status(user, {"lastError": f"written by {user or 'admin'}"})
            assert proc.returncode == 0, proc.stderr
    finally:
        kubectl(cluster.kubeconfig, "delete", "-f", "-", "--wait=false", input=manifest)


def test_chart_files_exist() -> None:
    for name in (
        "Chart.yaml",
        "values.yaml",
        "values.schema.json",
        "templates/_helpers.tpl",
        "templates/NOTES.txt",
        "templates/deployment.yaml",
        "templates/rbac.yaml",
        "templates/service.yaml",
        "templates/serviceaccount.yaml",
        "templates/servicemonitor.yaml",
    ):
        assert (Path(CHART) / name).exists(), name
    assert render("--set", "metrics.serviceMonitor.enabled=true").count("kind: ServiceMonitor") == 1
