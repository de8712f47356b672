"""Session fixtures: a real control plane (local processes, or an existing cluster) and a namespace per test.

- default: build/reuse the binaries and start etcd, kube-apiserver, kube-controller-manager,
  kube-scheduler, the local node and kwok nodes for this test session;
- ``JOBLINE_TEST_KUBECONFIG=/path``: use that existing cluster instead (tests that need the local
  node's process execution or kwok nodes are skipped with a reason there);
- ``JOBLINE_TEST_KIND=1``: create a kind cluster through pytest-kind (needs Docker).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.kube import wait_for


@dataclass
class ClusterHandle:
    kubeconfig: Path
    api: client.ApiClient
    local: bool  # our own control plane with the local node and kwok nodes
    workdir: Path | None = None

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def api_for(self, **headers: str) -> client.ApiClient:
        api = config.new_client_from_config(str(self.kubeconfig))
        for key, value in headers.items():
            api.set_default_header(key, value)
        return api


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[ClusterHandle]:
    external = os.environ.get("JOBLINE_TEST_KUBECONFIG")
    if external:
        path = Path(external)
        yield ClusterHandle(path, config.new_client_from_config(str(path)), local=False)
        return
    if os.environ.get("JOBLINE_TEST_KIND"):
        kind = request.getfixturevalue("kind_cluster")
        path = Path(kind.kubeconfig_path)
        yield ClusterHandle(path, config.new_client_from_config(str(path)), local=False)
        return

    from tests.cluster.build import ensure_binaries
    from tests.cluster.controlplane import Cluster
    from tests.cluster.images import built_archives

    workdir = Path(tempfile.mkdtemp(prefix="jobline-test-"))
    # `make images` ran first: the real node imports them at start.
    local = Cluster(workdir, ensure_binaries(), images=built_archives())
    try:
        local.start()
    except Exception:
        print(f"\ncluster logs kept in {workdir / 'logs'}")
        raise
    print(f"\ntest cluster up in {local.startup_seconds:.1f}s; logs in {workdir / 'logs'}")
    try:
        yield ClusterHandle(
            local.kubeconfig,
            config.new_client_from_config(str(local.kubeconfig)),
            local=True,
            workdir=workdir,
        )
    finally:
        local.stop()
        if request.session.testsfailed:
            print(f"\ncluster logs kept in {workdir / 'logs'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def local_cluster(cluster: ClusterHandle) -> ClusterHandle:
    """The cluster, when it is ours: for tests of its local node (processes as pods) and its kwok nodes."""
    if not cluster.local:
        pytest.skip(
            "tests this repository's own test nodes (tests/cluster/localnode/ runs pods as processes; "
            "kwok nodes fake them), which only its built-in test cluster has"
        )
    return cluster


@pytest.fixture
def namespace(cluster: ClusterHandle, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    core = cluster.core
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"jobline.dev/test": "true"}))
    )
    # Pods cannot be created before the controller-manager has made the default ServiceAccount.
    wait_for(
        lambda: core.read_namespaced_service_account("default", name), 30, f"ServiceAccount {name}/default"
    )
    yield name
    core.delete_namespace(name)
