"""The images `make images` builds, in the real node's containerd (imported at cluster start, else here).

No image is ever pulled on the test cluster: a pod's image must already be in containerd's ``k8s.io``
namespace under the name the kubelet normalises it to (``jobline:0.1.0`` -> ``docker.io/library/...``).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import ClusterHandle


def normalise(ref: str) -> str:
    """The kubelet's reading of an image reference (docker.io/library for bare names)."""
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{ref}"
    return ref


def ctr(cluster: ClusterHandle, *args: str) -> subprocess.CompletedProcess[str]:
    assert cluster.workdir is not None
    sock = cluster.workdir / "node" / "containerd.sock"
    return subprocess.run(["ctr", "--address", str(sock), "-n", "k8s.io", *args], capture_output=True, text=True,
                          timeout=300)


def images_in_node(cluster: ClusterHandle) -> set[str]:
    proc = ctr(cluster, "images", "ls", "-q")
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def tag_in_node(cluster: ClusterHandle, src: str, dst: str) -> None:
    """Give an imported image another name, as `kind load docker-image` would load it under that name."""
    proc = ctr(cluster, "images", "tag", "--force", normalise(src), normalise(dst))
    assert proc.returncode == 0, proc.stderr


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
    for image in (built.operator, built.worker):
        if image.ref not in present:
            proc = ctr(cluster, "images", "import", str(image.archive))
            assert proc.returncode == 0, f"importing {image.archive}: {proc.stderr}"
