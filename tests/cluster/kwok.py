"""kwok: fake nodes for scale work, tainted so only pods that tolerate them land there.

Pods on these nodes never run; the Stage rules in ``kwok-stages.yaml`` move them to Running and
then Succeeded (or Failed, when annotated) after an optional annotated delay.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

STAGES = Path(__file__).with_name("kwok-stages.yaml")
TAINT_KEY = "kwok.x-k8s.io/node"
TOLERATION = {"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
NODE_SELECTOR = {"type": "kwok"}


def node_name(i: int) -> str:
    return f"kwok-node-{i}"


def write_config(path: Path) -> Path:
    config = (
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\n"
        "kind: KwokConfiguration\n"
        "options:\n"
        "  enableCRDs: []\n"
        "  nodeLeaseDurationSeconds: 40\n"
        "---\n" + STAGES.read_text()
    )
    path.write_text(config)
    return path


def command(binary: Path, kubeconfig: Path, config: Path, port: int) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        f"--manage-nodes-with-annotation-selector={TAINT_KEY}=fake",
        "--node-ip=10.246.255.1",  # fake addresses, apart from the real node's 10.244.<k>.0/24 pod CIDRs
        "--cidr=10.246.0.0/16",
        f"--server-address=127.0.0.1:{port}",
        "--node-lease-duration-seconds=40",
    ]


def node_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {TAINT_KEY: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "type": "kwok",
                "jobline.dev/node-type": "kwok",
            },
        },
        "spec": {"taints": [{"key": TAINT_KEY, "value": "fake", "effect": "NoSchedule"}]},
        "status": {
            "allocatable": {"cpu": "1000", "memory": "4000Gi", "pods": "10000"},
            "capacity": {"cpu": "1000", "memory": "4000Gi", "pods": "10000"},
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake"},
        },
    }


def create_nodes(api: Callable[..., Any], count: int) -> None:
    """Create the fake nodes (idempotent): kwok picks them up by their annotation."""
    import urllib.error

    for i in range(count):
        try:
            api("/api/v1/nodes", "POST", node_manifest(node_name(i)))
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
