"""The fault-injection suite's own control plane, operator and load profile.

These tests SIGKILL and SIGSTOP etcd, the apiserver and the operator, so they never touch the session's
shared cluster (tests/conftest.py): this package starts a control plane of its own (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and the local node; no real node, no kwok), in its own workdir,
once for the package, with one operator process that the tests kill and restart.

``JOBLINE_SOAK=1`` (``make soak``) runs the same tests with a bigger load and longer faults
(:data:`PROFILE`); docs/reliability.md has the measured table.
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
from kubernetes import config

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import OperatorProcess
from tests.faults.harness import ROWS, FaultCluster, print_table
from tests.kube import Api, install_crds

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Profile:
    """How much load each test creates and how long each fault lasts."""

    name: str
    jobs: int  # QueuedJobs per test, besides the schedule's runs
    concurrency: int  # the queue's
    operator_kills: int  # SIGKILLs of the operator in its test
    apiserver_down: float  # seconds between SIGKILL and restart of the apiserver
    etcd_down: float  # same for etcd
    freeze: float  # seconds the apiserver stays SIGSTOPped
    quota_hold: float  # seconds the ResourceQuota refuses every pod
    deleted_pods: int  # running worker pods deleted in their test
    settle: float  # deadline for all jobs to finish after the fault


SMOKE = Profile("make test", 60, 8, 5, 5, 5, 30, 10, 8, 150)
SOAK = Profile("soak", 240, 12, 10, 20, 20, 30, 30, 30, 420)
PROFILE = SOAK if os.environ.get("JOBLINE_SOAK") == "1" else SMOKE
TEST_TIMEOUT = 1500 if PROFILE is SOAK else 600  # pytest-timeout, per test


@pytest.fixture(scope="package")
def profile() -> Profile:
    return PROFILE


@pytest.fixture(scope="package")
def fault_cluster(request: pytest.FixtureRequest) -> Iterator[FaultCluster]:
    if os.environ.get("JOBLINE_TEST_KUBECONFIG") or os.environ.get("JOBLINE_TEST_KIND"):
        pytest.skip(
            "the fault-injection suite kills etcd and the apiserver of a control plane of its own, which "
            "needs this repository's binaries (`make binaries`); it never touches an external cluster"
        )
    from tests.cluster.build import ensure_binaries
    from tests.cluster.controlplane import Cluster

    workdir = Path(tempfile.mkdtemp(prefix="jobline-faults-"))
    cp = Cluster(workdir, ensure_binaries(), kwok_nodes=0, real_node=False)
    try:
        cp.start()
    except Exception:
        print(f"\nfaults cluster logs kept in {workdir / 'logs'}")
        raise
    print(f"\nfaults cluster up in {cp.startup_seconds:.1f}s; logs in {workdir / 'logs'}")
    failed_before = request.session.testsfailed
    try:
        install_crds(cp.kubeconfig, REPO / "crds")
        handle = ClusterHandle(
            cp.kubeconfig, config.new_client_from_config(str(cp.kubeconfig)), local=True, workdir=workdir
        )
        op = OperatorProcess(cp.kubeconfig, workdir / "logs" / "operator.log")
        op.start()
        fc = FaultCluster(cp, handle, Api(cp.kubeconfig), op, PROFILE.name)
        try:
            yield fc
        finally:
            op.stop()
            print_table(ROWS, PROFILE.name)
            tracebacks = op.log.read_text(errors="replace").count("Traceback")
            if tracebacks:  # each write that fails during an apiserver/etcd outage logs one
                print(f"note: the operator logged {tracebacks} traceback(s) (kept only if a test failed)")
    finally:
        cp.stop()
        if request.session.testsfailed > failed_before:
            print(f"\nfaults cluster logs kept in {workdir / 'logs'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def fault_ns(fault_cluster: FaultCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    fault_cluster.api.ensure_namespace(name, {"jobline.dev/test": "true"})
    yield name
    fault_cluster.api.request("DELETE", f"/api/v1/namespaces/{name}")
