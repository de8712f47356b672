"""The images `make images` builds, in the real node's containerd (imported at cluster start, else here).

No image is ever pulled on the test cluster: a pod's image must already be in containerd's ``k8s.io``
namespace under the name the kubelet normalises it to (``jobline:0.1.0`` -> ``docker.io/library/...``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.realnode import ctr, load_images
from tests.conftest import ClusterHandle


def _node(cluster: ClusterHandle) -> Path:
    assert cluster.workdir is not None
    return cluster.workdir / "node"


def images_in_node(cluster: ClusterHandle) -> set[str]:
    proc = ctr(_node(cluster), "images", "ls", "-q")
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def tag_in_node(cluster: ClusterHandle, src: str, dst: str) -> None:
    """Give an imported image another name, as `kind load docker-image` would load it under that name."""
    load_images(_node(cluster), [], {src: dst})


@pytest.fixture(scope="session")
def node_images(cluster: ClusterHandle) -> None:
    """The operator and worker images are on the node (on an external cluster: loaded by whoever runs it)."""
    if not cluster.local:
        return
    from tests.cluster.images import built_images

    built = built_images()
    if built is None:
        pytest.fail("the operator and worker images are not built: run `make images` (`make test` does)")
    present = images_in_node(cluster)
    load_images(_node(cluster), [i.archive for i in (built.operator, built.worker) if i.ref not in present])
