"""The install path on a real kubelet: the chart's operator pod from the image built here, handlers in the
worker image, Services, probes, HA, upgrade and uninstall — on ``jobline-node`` (containerd + runc).

On an external cluster (``JOBLINE_TEST_KUBECONFIG``) the same tests run when the images are loaded there
(``kind load docker-image jobline:<v> jobline-worker:<v>``).
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

import jobline
from tests.chart_render import CHART, REPO, helm
from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.e2e.realnode_images import node_images
from tests.kube import KUBECTL, kubectl, kubectl_json, wait_for

VERSION = jobline.__version__
OPERATOR_IMAGE = f"jobline:{VERSION}"
WORKER_IMAGE = f"jobline-worker:{VERSION}"
RESTRICTED = [
    "pod-security.kubernetes.io/enforce=restricted",
    "pod-security.kubernetes.io/enforce-version=latest",
]
PEERING_LIFETIME = 6

pytestmark = pytest.mark.usefixtures("crds", "node_images")
__all__ = ["node_images"]


@dataclass
class Release:
    cluster: ClusterHandle
    ns: str  # the operator's namespace
    apps: str  # where the jobs run
    name: str = "jl"

    @property
    def fullname(self) -> str:
        return f"{self.name}-jobline"

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [helm(), "--kubeconfig", str(self.cluster.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    def values(self, replicas: int = 1) -> list[str]:
        pull = "Never" if self.cluster.local else "IfNotPresent"  # never pulled here: imported
        return [
            "--set",
            "image.repository=jobline",
            "--set",
            f"image.tag={VERSION}",
            "--set",
            f"image.pullPolicy={pull}",
            "--set",
            "watch.all=false",
            "--set",
            f"watch.namespaces={{{self.apps}}}",
            "--set",
            "dashboard.enabled=true",
            "--set",
            f"replicas={replicas}",
            "--set",
            f"peeringLifetimeSeconds={PEERING_LIFETIME}",
        ]

    def pods(self) -> list[dict[str, Any]]:
        items = kubectl_json(
            self.cluster.kubeconfig,
            "get",
            "pods",
            "-n",
            self.ns,
            "-l",
            f"app.kubernetes.io/instance={self.name},app.kubernetes.io/name=jobline",
        )["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def logs(self, pod: str) -> str:
        return kubectl(self.cluster.kubeconfig, "logs", "-n", self.ns, pod).stdout

    def wait_available(self, replicas: int) -> None:
        kubectl(
            self.cluster.kubeconfig,
            "rollout",
            "status",
            "-n",
            self.ns,
            f"deploy/{self.fullname}",
            "--timeout=180s",
        )
        wait_for(
            lambda: (
                kubectl_json(self.cluster.kubeconfig, "get", "deploy", self.fullname, "-n", self.ns)[
                    "status"
                ].get("availableReplicas")
                == replicas
            ),
            120,
            f"{replicas} available operator replica(s)",
        )


def _namespace(cluster: ClusterHandle, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    kubectl(cluster.kubeconfig, "create", "namespace", name)
    kubectl(cluster.kubeconfig, "label", "namespace", name, "jobline.dev/test=true", *RESTRICTED)
    wait_for(
        lambda: cluster.core.read_namespaced_service_account("default", name),
        30,
        f"ServiceAccount {name}/default",
    )
    return name


def worker_queue(jobs: Jobs, name: str = "default", **spec: Any) -> None:
    template = {
        "image": WORKER_IMAGE,
        "imagePullPolicy": "Never" if jobs.cluster.local else "IfNotPresent",
        "command": ["jobline-worker", "--import", "tests.e2e.handlers"],
        "serviceAccountName": "worker",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    }
    jobs.queue(name, template=template, **spec)


@pytest.fixture(scope="module")
def release(cluster: ClusterHandle, crds: None, operator: OperatorProcess) -> Iterator[Release]:
    operator.stop()  # the session's operator process would compete; `running_operator` restarts it later
    rel = Release(cluster, _namespace(cluster, "jl-system"), _namespace(cluster, "jl-apps"))
    try:
        out = rel.helm(
            "install",
            rel.name,
            str(CHART),
            "-n",
            rel.ns,
            "--skip-crds",
            "--wait",
            "--timeout",
            "180s",
            *rel.values(),
        ).stdout
        assert "kubectl get qj" in out
        rel.wait_available(1)
        # Workers write progress with their own ServiceAccount token: bind the chart's worker role.
        kubectl(cluster.kubeconfig, "create", "serviceaccount", "worker", "-n", rel.apps)
        kubectl(
            cluster.kubeconfig,
            "create",
            "rolebinding",
            "worker",
            "-n",
            rel.apps,
            f"--clusterrole={rel.fullname}-worker",
            f"--serviceaccount={rel.apps}:worker",
        )
        worker_queue(Jobs(cluster, rel.apps))
        yield rel
    finally:
        for pod in rel.pods():  # kept with the cluster's logs when something failed
            name = pod["metadata"]["name"]
            if cluster.workdir:
                proc = kubectl(cluster.kubeconfig, "logs", "-n", rel.ns, name, check=False)
                (cluster.workdir / "logs" / f"incluster-{name}.log").write_text(proc.stdout + proc.stderr)
        rel.helm("uninstall", rel.name, "-n", rel.ns, "--wait", "--timeout", "120s", check=False)
        for ns in (rel.apps, rel.ns):
            kubectl(cluster.kubeconfig, "delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def jobs(release: Release) -> Jobs:
    return Jobs(release.cluster, release.apps)


def _operator_pod(release: Release) -> dict[str, Any]:
    pods = release.pods()
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def _exec(release: Release, pod: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return kubectl(release.cluster.kubeconfig, "exec", "-n", release.ns, pod, "--", *cmd, check=False)


def _probe_counts(cluster: ClusterHandle, node: str, pod: str) -> dict[tuple[str, str], float]:
    """The kubelet's own count of probes it ran for ``pod`` (its /metrics/probes, through the apiserver)."""
    text = kubectl(cluster.kubeconfig, "get", "--raw", f"/api/v1/nodes/{node}/proxy/metrics/probes").stdout
    counts: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("prober_probe_total{") and f'pod="{pod}"' in line:
            kind = re.search(r'probe_type="(\w+)"', line)
            result = re.search(r'result="(\w+)"', line)
            if kind and result:
                counts[(kind.group(1), result.group(1))] = float(line.rsplit(" ", 1)[1])
    return counts


def test_operator_pod_runs_restricted_with_real_probes(release: Release) -> None:
    pod = _operator_pod(release)
    name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
    if release.cluster.local:
        assert node == "jobline-node"
    status = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert status["Ready"] == "True"
    assert _exec(release, name, "id", "-u").stdout.strip() == "65532"
    touch = _exec(release, name, "touch", "/opt/jobline/x")
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr
    assert _exec(release, name, "touch", "/tmp/x").returncode == 0  # the emptyDir is writable
    # Readiness is /readyz (false until the controller has synced); both probes are run by the kubelet.
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    counts = wait_for(
        lambda: (
            (c := _probe_counts(release.cluster, node, name)).get(("Liveness", "successful"))
            and c.get(("Readiness", "successful"))
            and c
        ),
        60,
        "the kubelet to run both probes",
    )
    assert counts.get(("Liveness", "failed"), 0) == 0
    assert "synced: " in release.logs(name)


def test_job_runs_in_the_worker_image(release: Release, jobs: Jobs) -> None:
    jobs.create("hello", "echo", {"greeting": "hi"})
    jobs.create("steps", "sleep", {"seconds": 1, "steps": 4})
    jobs.create("exit7", "exit", {"code": 7}, retry={"limit": 0})
    jobs.create("perm", "permanent", None, retry={"limit": 3})
    st = jobs.wait_phase("hello", "Succeeded", "Failed", timeout=120)
    assert st["phase"] == "Succeeded" and st["result"] == {"greeting": "hi"}, st
    pod = jobs.pods("hello")[0]
    assert pod.spec.node_name == "jobline-node" or not release.cluster.local
    assert pod.spec.containers[0].image == WORKER_IMAGE
    # Progress went through the pod's own ServiceAccount token (the status policy lets it).
    st = jobs.wait_phase("steps", "Succeeded", "Failed", timeout=120)
    assert st["phase"] == "Succeeded" and st["progress"] == 100, st
    st = jobs.wait_phase("exit7", "Failed", timeout=120)
    assert st["attemptHistory"][0]["exitCode"] == 7
    st = jobs.wait_phase("perm", "Failed", timeout=120)
    first = st["attemptHistory"][0]
    assert st["attempts"] == 1 and first["exitCode"] == 66
    # The worker's termination message, read by the real kubelet from /dev/termination-log.
    assert "this input can never work" in st["lastError"]
    term = jobs.pods("perm")[0].status.container_statuses[0].state.terminated
    assert term.exit_code == 66 and "this input can never work" in (term.message or "")


def test_timeout_and_oom_kill_through_the_real_kubelet(jobs: Jobs) -> None:
    jobs.create("slow", "sleep", {"seconds": 120}, timeoutSeconds=3, retry={"limit": 0})
    jobs.create(
        "hog",
        "allocate",
        {"mb": 400},
        retry={"limit": 1, "backoff": {"initialSeconds": 1}},
        template={"resources": {"limits": {"memory": "96Mi"}}},
    )
    st = jobs.wait_phase("slow", "Failed", timeout=120)
    assert st["attemptHistory"][0]["reason"] == "Timeout", st
    st = jobs.wait_phase("hog", "Failed", timeout=180)
    history = st["attemptHistory"]
    assert [h["reason"] for h in history] == ["OOMKilled", "OOMKilled"], history  # retried once
    assert history[0]["exitCode"] == 137


def test_webhook_through_its_service_refuses_an_oversized_payload(release: Release, jobs: Jobs) -> None:
    manifest = {
        "apiVersion": "jobline.dev/v1alpha1",
        "kind": "QueuedJob",
        "metadata": {"name": "big"},
        "spec": {"handler": "echo", "payload": {"blob": "x" * 70_000}},
    }
    proc = kubectl(
        release.cluster.kubeconfig, "apply", "-n", jobs.ns, "-f", "-", input=json.dumps(manifest), check=False
    )
    assert proc.returncode != 0 and "more than the 65536 allowed" in proc.stderr, proc.stderr
    assert not jobs.exists("big")


def test_metrics_and_dashboard_through_their_service(release: Release, jobs: Jobs) -> None:
    jobs.create("counted", "echo", {})
    jobs.wait_phase("counted", "Succeeded", timeout=120)
    path = f"/api/v1/namespaces/{release.ns}/services/http:{release.fullname}:metrics/proxy/metrics"
    text = wait_for(
        lambda: (
            (t := kubectl(release.cluster.kubeconfig, "get", "--raw", path).stdout)
            and f'namespace="{jobs.ns}"' in t
            and t
        ),
        60,
        "metrics of the apps namespace",
    )
    assert "jobline_jobs_finished_total" in text
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fwd = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(release.cluster.kubeconfig),
            "port-forward",
            "-n",
            release.ns,
            f"svc/{release.fullname}",
            f"{port}:8081",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        config = wait_for(
            lambda: requests.get(f"http://127.0.0.1:{port}/api/config", timeout=5).json(),
            60,
            "the dashboard through kubectl port-forward",
        )
        assert config["auth"] == "token"
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert requests.get(f"http://127.0.0.1:{port}/api/jobs", timeout=10).status_code == 401
    finally:
        fwd.terminate()
        fwd.wait(10)


def test_kubectl_logs_and_kubectl_jobline_logs(release: Release, jobs: Jobs) -> None:
    jobs.create("chatty", "exit", {"code": 3}, retry={"limit": 0})
    jobs.wait_phase("chatty", "Failed", timeout=120)
    pod = jobs.pods("chatty")[0].metadata.name
    logs = kubectl(release.cluster.kubeconfig, "logs", "-n", jobs.ns, pod).stdout
    assert "exiting with 3" in logs
    exe = str(Path(KUBECTL).with_name("kubectl-jobline"))
    proc = subprocess.run(
        [exe, "--kubeconfig", str(release.cluster.kubeconfig), "-n", jobs.ns, "logs", "chatty"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "exiting with 3" in proc.stdout, proc.stderr


def test_two_replicas_delete_the_active_pod(release: Release, jobs: Jobs) -> None:
    release.helm(
        "upgrade",
        release.name,
        str(CHART),
        "-n",
        release.ns,
        "--wait",
        "--timeout",
        "180s",
        *release.values(replicas=2),
    )
    release.wait_available(2)
    pods = {p["metadata"]["name"] for p in release.pods()}

    def leaders() -> list[
        str
    ]:  # a replica's last word on it: the first one up leads until a higher one joins
        return [
            n for n in pods if re.findall(r"\b(active|standby) \(peering", release.logs(n))[-1:] == ["active"]
        ]

    active = wait_for(lambda: (a := leaders()) and len(a) == 1 and a, 90, "exactly one replica to lead")
    schedule = {
        "apiVersion": "jobline.dev/v1alpha1",
        "kind": "JobSchedule",
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": "@every 3s",
            "successfulJobsHistoryLimit": 100,
            "jobTemplate": {"spec": {"queue": "default", "handler": "echo", "payload": {"tick": 1}}},
        },
    }
    kubectl(release.cluster.kubeconfig, "apply", "-n", jobs.ns, "-f", "-", input=json.dumps(schedule))
    for i in range(3):
        jobs.create(f"before-{i}", "echo", {"i": i})
    for i in range(3):
        jobs.wait_phase(f"before-{i}", "Succeeded", timeout=120)

    killed = time.monotonic()
    kubectl(release.cluster.kubeconfig, "delete", "pod", "-n", release.ns, active[0], "--wait=false")
    pods = pods - set(active)  # the deleted pod's log goes with it
    for i in range(3):
        jobs.create(f"after-{i}", "echo", {"i": i})
    standby = next(iter(pods))
    wait_for(lambda: leaders() == [standby], 3 * PEERING_LIFETIME + 30, "the standby to take over")
    took = time.monotonic() - killed
    switched = time.time()
    print(
        f"\nreal node failover: the standby led {took:.1f}s after the active pod's deletion "
        f"(peering lifetime {PEERING_LIFETIME}s)"
    )
    for i in range(3):
        jobs.wait_phase(f"after-{i}", "Succeeded", timeout=120)
    for name in [f"before-{i}" for i in range(3)] + [f"after-{i}" for i in range(3)]:
        st = jobs.status(name)
        assert st["attempts"] == 1 and len(jobs.pods(name)) == 1, (name, st)
    # Every scheduled run is a QueuedJob named after its time: none twice, none skipped across the switch.
    wait_for(lambda: [t for t in _runs(jobs) if t > switched + 3], 30, "runs after the switch")
    kubectl(
        release.cluster.kubeconfig,
        "patch",
        "jobschedule",
        "tick",
        "-n",
        jobs.ns,
        "--type=merge",
        "-p",
        '{"spec": {"suspend": true}}',
    )
    runs = _runs(jobs)
    assert len(runs) >= 3 and all(b - a == 3 for a, b in itertools.pairwise(runs)), runs
    for name in (f"tick-{t}" for t in runs):
        assert jobs.wait_phase(name, "Succeeded", timeout=120)["attempts"] == 1


def _runs(jobs: Jobs) -> list[int]:
    items = kubectl_json(jobs.cluster.kubeconfig, "get", "qj", "-n", jobs.ns)["items"]
    return sorted(int(m.group(1)) for i in items if (m := re.fullmatch(r"tick-(\d+)", i["metadata"]["name"])))


def test_helm_upgrade_with_crds_first_then_uninstall_keeps_crds_and_jobs(
    release: Release, jobs: Jobs
) -> None:
    jobs.create("survivor", "echo", {"kept": True})
    jobs.wait_phase("survivor", "Succeeded", timeout=120)
    # docs/install.md: CRDs first (Helm never upgrades them), then the release.
    kubectl(
        release.cluster.kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds")
    )
    release.helm(
        "upgrade",
        release.name,
        str(CHART),
        "-n",
        release.ns,
        "--reuse-values",
        "--wait",
        "--timeout",
        "180s",
        "--set",
        "replicas=1",
        "--set",
        "log.level=debug",
    )
    release.wait_available(1)
    jobs.create("after-upgrade", "echo", {})
    assert jobs.wait_phase("after-upgrade", "Succeeded", timeout=120)["result"] == {}
    release.helm("uninstall", release.name, "-n", release.ns, "--wait", "--timeout", "120s")
    wait_for(lambda: not release.pods(), 60, "the operator pods to go")
    for crd in ("queuedjobs", "jobqueues", "jobschedules"):
        assert (
            kubectl(release.cluster.kubeconfig, "get", "crd", f"{crd}.jobline.dev", check=False).returncode
            == 0
        )
    assert jobs.status("survivor")["result"] == {"kept": True}
    assert jobs.exists("after-upgrade")


def test_install_yaml_runs_the_operator_the_same_way(
    cluster: ClusterHandle, release: Release, jobs: Jobs
) -> None:
    """`kubectl apply -f manifests/install.yaml` (the chart with defaults; its image name as published)."""
    docs = [d for d in yaml.safe_load_all((REPO / "manifests" / "install.yaml").read_text()) if d]
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    image = deploy["spec"]["template"]["spec"]["containers"][0]["image"]
    if cluster.local:
        from tests.e2e.realnode_images import tag_in_node

        tag_in_node(cluster, OPERATOR_IMAGE, image)  # as `kind load docker-image` would give it that name
    assert release.helm("status", release.name, "-n", release.ns, check=False).returncode != 0  # uninstalled
    kubectl(cluster.kubeconfig, "apply", "--server-side", "-f", str(REPO / "manifests" / "install.yaml"))
    try:
        kubectl(
            cluster.kubeconfig,
            "rollout",
            "status",
            "-n",
            "jobline-system",
            "deploy/jobline",
            "--timeout=180s",
        )
        jobs.create("via-manifest", "echo", {"m": 1})
        assert jobs.wait_phase("via-manifest", "Succeeded", timeout=120)["result"] == {"m": 1}
        labels = kubectl_json(cluster.kubeconfig, "get", "namespace", "jobline-system")["metadata"]["labels"]
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"
    finally:
        kubectl(
            cluster.kubeconfig, "delete", "-n", "jobline-system", "deploy/jobline", "--wait=true", check=False
        )
        others = [d for d in docs if d["kind"] not in ("CustomResourceDefinition", "Namespace", "Deployment")]
        kubectl(
            cluster.kubeconfig,
            "delete",
            "--ignore-not-found",
            "--wait=false",
            "-f",
            "-",
            input=yaml.safe_dump_all(others),
            check=False,
        )
        kubectl(cluster.kubeconfig, "delete", "namespace", "jobline-system", "--wait=false", check=False)
