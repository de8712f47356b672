"""Bad setup gets a clear message, not a hang — checked without a cluster."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.cluster import build
from tests.cluster.build import BuildError, read_versions
from tests.cluster.controlplane import Cluster, ClusterError, Ports


def test_no_go_on_path_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BuildError, match="Go was not found") as err:
        build._go()
    assert "JOBLINE_TEST_KUBECONFIG" in str(err.value)


def test_port_in_use_is_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ClusterError, match=f"port {port} \\(for apiserver\\) is already in use"):
            Ports(apiserver=port).allocate()


def test_component_that_exits_early_shows_its_log(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
        script = bin_dir / name
        script.write_text("#!/bin/sh\necho 'starting'\necho 'fatal: member data dir is locked' >&2\nexit 2\n")
        script.chmod(0o755)
    cluster = Cluster(tmp_path / "work", bin_dir, local_node=False, kwok_nodes=0, real_node=False)
    with pytest.raises(ClusterError) as err:
        cluster.start(timeout=20)
    message = str(err.value)
    assert "etcd exited early with code 2" in message
    assert "fatal: member data dir is locked" in message


def test_missing_binary_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="kube-apiserver is missing"):
        (tmp_path / "etcd").touch()
        Cluster(tmp_path / "work", tmp_path).start(timeout=5)


def test_go_modules_require_the_pinned_versions() -> None:
    versions = read_versions()
    expected = {
        "k8s": ("k8s.io/kubernetes", versions["KUBERNETES_VERSION"]),
        "etcd": ("go.etcd.io/etcd/server/v3", versions["ETCD_VERSION"]),
        "kwok": ("sigs.k8s.io/kwok", versions["KWOK_VERSION"]),
        "helm": ("helm.sh/helm/v3", versions["HELM_VERSION"]),
    }
    for module_dir, (module, version) in expected.items():
        gomod = (build.GO_DIR / module_dir / "go.mod").read_text()
        found = re.search(rf"^\s*{re.escape(module)} (v\S+)", gomod, re.M)
        assert found, f"{module} not required in go/{module_dir}/go.mod"
        assert found.group(1) == version, (
            f"go/{module_dir}/go.mod has {module} {found.group(1)}, versions.env {version}"
        )
    # Every k8s.io staging module is replaced by the release that matches the kubernetes version.
    staging = "v0." + versions["KUBERNETES_VERSION"].split(".", 1)[1]
    gomod = (build.GO_DIR / "k8s" / "go.mod").read_text()
    replaced = re.findall(r"^\s*(k8s\.io/\S+) => \S+ (v\S+)", gomod, re.M)
    assert len(replaced) >= 30
    assert {v for _, v in replaced} == {staging}


def test_cache_key_changes_with_the_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = build.cache_key()
    assert versions_in(key)
    fake = tmp_path / "versions.env"
    fake.write_text(build.VERSIONS_FILE.read_text().replace("ETCD_VERSION=", "ETCD_VERSION=v9.9.9-"))
    monkeypatch.setattr(build, "VERSIONS_FILE", fake)
    assert build.cache_key() != key


def versions_in(key: str) -> bool:
    return all(v in key for v in read_versions().values())


def test_real_node_without_its_packages_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.cluster import realnode

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(realnode.NodeError, match="make node-deps") as err:
        realnode.preflight(tmp_path)
    assert "containerd" in str(err.value) and "runc" in str(err.value) and "--no-realnode" in str(err.value)


def test_real_node_missing_kubelet_names_the_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.cluster import realnode

    monkeypatch.setattr(realnode.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(realnode, "cni_bin_dir", lambda: str(tmp_path))
    (tmp_path / "bridge").touch()
    with pytest.raises(realnode.NodeError, match=r"kubelet is missing: run `python -m tests.cluster.build`"):
        realnode.preflight(tmp_path)


def test_pod_cidr_already_taken_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipaddress

    from tests.cluster import realnode

    monkeypatch.setattr(realnode, "host_networks", lambda: [ipaddress.ip_network("10.244.0.0/16")])
    monkeypatch.setattr(realnode, "_links", lambda: set())
    with pytest.raises(realnode.NodeError, match=r"pod CIDR 10.244.7.0/24 is already taken .*10.244.0.0/16"):
        realnode.allocate_network("10.96.0.0/16", "10.244.7.0/24")


def test_a_second_node_takes_the_next_free_slot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ipaddress

    from tests.cluster import realnode

    # slot 0's pod CIDR is routed (another cluster), slot 1's veth name exists: slot 2 it is.
    monkeypatch.setattr(realnode, "SLOT_LOCK_DIR", tmp_path)
    monkeypatch.setattr(realnode, "_claims", {})
    monkeypatch.setattr(realnode, "host_networks", lambda: [ipaddress.ip_network("10.244.0.0/24")])
    monkeypatch.setattr(realnode, "_links", lambda: {"lo", "jlh1"})
    net = realnode.allocate_network("10.96.0.0/16")
    assert (net.slot, net.pod_cidr, net.host_ip, net.node_ip, net.host_if) == (
        2,
        "10.244.2.0/24",
        "10.245.2.1",
        "10.245.2.2",
        "jlh2",
    )
    assert net.gateway == "10.244.2.1"


def test_cluster_reports_a_real_node_error_as_a_cluster_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
        (bin_dir / name).touch()
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ClusterError, match="make node-deps"):
        Cluster(tmp_path / "work", bin_dir, local_node=False, kwok_nodes=0).start(timeout=5)


def test_a_slot_claimed_by_a_cluster_starting_at_the_same_time_is_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two launchers both see slot 0 free (its veth comes seconds later): the flock decides."""
    import subprocess
    import sys

    from tests.cluster import realnode

    monkeypatch.setattr(realnode, "SLOT_LOCK_DIR", tmp_path)
    monkeypatch.setattr(realnode, "_claims", {})
    monkeypatch.setattr(realnode, "host_networks", lambda: [])
    monkeypatch.setattr(realnode, "_links", lambda: {"lo"})
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(tmp_path / 'slot-0.lock')!r}, 'w'); fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert realnode.allocate_network("10.96.0.0/16").slot == 1
        assert realnode.allocate_network("10.96.0.0/16").slot == 2  # a second node of this process
    finally:
        holder.communicate("")
    realnode.release_slot(1)
    realnode.release_slot(2)
    assert realnode.allocate_network("10.96.0.0/16").slot == 0  # the holder is gone: its lock went with it
    realnode.release_slot(0)
