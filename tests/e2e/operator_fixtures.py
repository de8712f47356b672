"""Run the real operator (``jobline-operator``) as a process against the test cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster import operator_process
from tests.cluster.procs import free_port
from tests.conftest import ClusterHandle
from tests.e2e.workers import worker_template
from tests.kube import install_crds, wait_for

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "jobline.dev", "v1alpha1"
__all__ = ["Jobs", "OperatorProcess", "worker_template"]


class OperatorProcess(operator_process.OperatorProcess):
    """The operator as the e2e tests run it: its admission webhook on a port of its own (the same one
    across restarts), no dashboard unless ``extra`` asks for one; ready when its ``/readyz`` says so."""

    def __init__(self, kubeconfig: Path, log: Path, extra: list[str] | None = None) -> None:
        self.extra = extra or []
        self.webhook_port = free_port()
        super().__init__(
            kubeconfig, log, ["--webhook-port", str(self.webhook_port), "--dashboard-port", "0", *self.extra]
        )


@pytest.fixture(scope="session")
def crds(cluster: ClusterHandle) -> None:
    install_crds(cluster.kubeconfig, REPO / "crds")


@pytest.fixture(scope="session")
def operator(
    cluster: ClusterHandle, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    # Next to the cluster's component logs when the cluster is ours: kept when a test fails.
    log = (
        cluster.workdir / "logs" if cluster.workdir else tmp_path_factory.mktemp("operator")
    ) / "operator.log"
    op = OperatorProcess(cluster.kubeconfig, log)
    op.start()
    yield op
    op.stop()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, f"the operator logged a traceback; see {log}"


@pytest.fixture
def running_operator(operator: OperatorProcess) -> OperatorProcess:
    """The session's operator, restarted first if an earlier test killed it."""
    if not operator.alive():
        operator.start()
    return operator


class Jobs:
    """Create and read QueuedJobs and JobQueues in one namespace."""

    def __init__(self, cluster: ClusterHandle, namespace: str) -> None:
        self.cluster = cluster
        self.ns = namespace
        self.api = cluster.custom

    def queue(self, name: str = "default", **spec: Any) -> dict[str, Any]:
        spec.setdefault("template", worker_template())
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "JobQueue",
            "metadata": {"name": name},
            "spec": spec,
        }
        return dict(self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, "jobqueues", body))

    def patch_queue(self, name: str, spec: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.ns, "jobqueues", name, {"spec": spec})

    def create(self, name: str, handler: str, payload: Any = None, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "QueuedJob",
            "metadata": {"name": name},
            "spec": {"handler": handler, "payload": payload, **spec},
        }
        return dict(self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, "queuedjobs", body))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.api.get_namespaced_custom_object(GROUP, VERSION, self.ns, "queuedjobs", name))

    def get_queue(self, name: str = "default") -> dict[str, Any]:
        return dict(self.api.get_namespaced_custom_object(GROUP, VERSION, self.ns, "jobqueues", name))

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.ns, "queuedjobs", name, body)

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def phase(self, name: str) -> str | None:
        return self.status(name).get("phase")

    def wait_phase(self, name: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            st = self.status(name)
            return st if st.get("phase") in phases else None

        return wait_for(check, timeout, f"job {name} to reach {'/'.join(phases)}")

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def pods(self, job: str) -> list[client.V1Pod]:
        return list(
            self.cluster.core.list_namespaced_pod(self.ns, label_selector=f"jobline.dev/job={job}").items
        )

    def events(self, name: str) -> list[tuple[str, str]]:
        evs = self.cluster.core.list_namespaced_event(
            self.ns, field_selector=f"involvedObject.name={name}"
        ).items
        return [(e.reason, e.message) for e in sorted(evs, key=lambda e: e.metadata.creation_timestamp)]

    def wait_events(self, name: str, *wanted: str, timeout: float = 30) -> list[str]:
        """The reasons of a job's Events once all of `wanted` are among them: an Event is posted after
        the status write that a test waits for, so reading them at once races the operator."""

        def seen() -> list[str] | None:
            got = [r for r, _ in self.events(name)]
            return got if all(w in got for w in wanted) else None

        return wait_for(seen, timeout, f"events {wanted} of {name}")


def now() -> float:
    return time.time()
