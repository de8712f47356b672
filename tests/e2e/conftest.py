from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ClusterHandle
from tests.e2e import workers
from tests.e2e.operator_fixtures import crds, operator, running_operator
from tests.e2e.realnode_images import node_images

__all__ = ["crds", "node_images", "operator", "running_operator"]


@pytest.fixture(scope="session", autouse=True)
def worker_placement(cluster: ClusterHandle, request: pytest.FixtureRequest) -> None:
    """Where worker pods run (tests/e2e/workers.py); real-node workers need the images on the node."""
    workers.configure(cluster.local)
    if workers.real():
        request.getfixturevalue("node_images")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory the test and its handlers both write to (see tests/e2e/workers.py)."""
    base = workers.shared_dir()
    if base is None:
        pytest.skip(
            "needs a directory shared by the test and its handlers (hostPath of this machine): the "
            "worker's node must share this machine's filesystem, as this repository's test cluster does"
        )
    d = base / uuid.uuid4().hex[:8]
    d.mkdir()
    d.chmod(0o777)
    yield d
