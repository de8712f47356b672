"""The real node: kubelet + containerd + runc + kube-proxy, in namespaces of its own, like a kind node.

The launcher (:class:`RealNode`, used by :mod:`tests.cluster.controlplane`) starts one process tree
with ``unshare --net --mount --uts --pid``: its PID 1 is ``python -m tests.cluster.realnode init``,
which sets up the node's network namespace (loopback, ``eth0``, a dummy route for the Service
CIDR, forwarding), mounts tmpfs over the paths containerd and kubelet insist on (``/run/containerd``,
``/var/log/containers``) and starts containerd, kube-proxy (iptables mode) and the kubelet. The
node's network namespace is joined to the host by one veth pair (``jlh<slot>`` on the host,
``eth0`` in the node) with a /30 of its own and a host route for the node's pod CIDR, so the
apiserver reaches the kubelet (logs, exec, port-forward) and pod IPs (webhooks, the service proxy).

The apiserver stays on 127.0.0.1. Inside the node it is reached at ``<node IP>:<apiserver port>``
(the ``kubernetes`` Service's endpoint, so ``kubernetes.default`` works in pods) through a
forwarder, ``python -m tests.cluster.realnode forward``, whose listening socket is created inside
the node's network namespace and whose outgoing connections are made on the host's loopback: the
same shape as the port forward of a kind node's container. No port is opened on the host.

Nothing survives the node: when PID 1 exits (SIGTERM from the launcher, or the launcher dying,
even by ``kill -9``: ``unshare --kill-child``), the kernel kills every process in the node's PID
namespace, and the mount and network namespaces (mounts, bridge, veth, iptables rules) go with
them. PID 1 removes the node's cgroups (``/jobline-nodes/<slot>`` in every hierarchy) on its way
out; the launcher sweeps cgroups of dead nodes as a fallback. No image is ever pulled: images are
imported into containerd's ``k8s.io`` namespace (the sandbox image is built here from
``go/pause``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import hashlib
import io
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import procs

NODE_NAME = "jobline-node"
NODE_LABEL = "jobline.dev/node"
PAUSE_IMAGE = "docker.io/library/jobline-pause:3.10"
CGROUP_PARENT = "jobline-nodes"
CGROUP_ROOT = Path("/sys/fs/cgroup")
POD_CIDR_BASE = ipaddress.ip_network("10.244.0.0/16")  # slot k: 10.244.k.0/24
LINK_CIDR_BASE = ipaddress.ip_network("10.245.0.0/16")  # slot k: 10.245.k.0/30 (host .1, node .2)
HERE = Path(__file__).resolve().parent
# Inside the node's mount namespace only: a tmpfs with the unix sockets (containerd's, the kubelet's) at a
# path short enough for sun_path (108 bytes) whatever the workdir; the kubelet's root dir is bound here.
RUN = Path("/run/jobline-node")
SOCK = RUN / "containerd.sock"
CLONE_NEWNET = 0x40000000


class NodeError(RuntimeError):
    """The real node could not start; the message says why and what to do."""


# ---------------------------------------------------------------------------------------- network
@dataclass(frozen=True)
class Network:
    slot: int
    pod_cidr: str
    host_ip: str  # host end of the veth (jlh<slot>)
    node_ip: str  # eth0 in the node: the Node's InternalIP
    service_cidr: str

    @property
    def host_if(self) -> str:
        return f"jlh{self.slot}"

    @property
    def gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))


def _ip_json(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out or "[]"))


def host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host already routes or has an address in."""
    nets: list[ipaddress.IPv4Network] = []
    for route in _ip_json("-4", "route", "show", "table", "all"):
        dst = route.get("dst", "")
        if dst and dst not in ("default", "local", "broadcast"):
            with contextlib.suppress(ValueError):
                net = ipaddress.ip_network(dst, strict=False)
                if isinstance(net, ipaddress.IPv4Network) and not net.is_loopback and net.prefixlen > 0:
                    nets.append(net)
    for link in _ip_json("-4", "addr"):
        for addr in link.get("addr_info", []):
            with contextlib.suppress(ValueError, KeyError):
                nets.append(ipaddress.ip_network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    return nets


def _links() -> set[str]:
    return {link["ifname"] for link in _ip_json("link")}


def plan_network(slot: int, service_cidr: str, pod_cidr: str | None = None) -> Network:
    pod = ipaddress.ip_network(pod_cidr) if pod_cidr else list(POD_CIDR_BASE.subnets(new_prefix=24))[slot]
    link = list(LINK_CIDR_BASE.subnets(new_prefix=30))[slot * 64]  # 10.245.<slot>.0/30
    hosts = list(link.hosts())
    return Network(slot, str(pod), str(hosts[0]), str(hosts[1]), service_cidr)


SLOT_LOCK_DIR = Path(os.environ.get("XDG_RUNTIME_DIR") or "/run/lock") / "jobline-realnode"
_claims: dict[int, int] = {}  # slot -> the fd of its lock file, held for this process's life


def claim_slot(slot: int, lock_dir: Path | None = None) -> bool:
    """Lock `slot` for this process (flock, released when the process ends): two clusters starting at
    the same moment both see a slot free (its veth is made seconds later), but only one gets the lock."""
    if slot in _claims:
        return False  # another node of this process has it
    folder = lock_dir or SLOT_LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"slot-{slot}.lock", os.O_CREAT | os.O_RDWR, 0o600)  # O_CLOEXEC by default
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _claims[slot] = fd
    return True


def release_slot(slot: int) -> None:
    fd = _claims.pop(slot, None)
    if fd is not None:
        os.close(fd)


def allocate_network(service_cidr: str, pod_cidr: str | None = None) -> Network:
    """The first slot whose pod CIDR, link /30 and veth name nothing on this host uses, and that no other
    cluster starting at the same time has claimed."""
    taken = host_networks()
    links = _links()
    if pod_cidr:
        want = ipaddress.ip_network(pod_cidr)
        clash = [str(n) for n in taken if n.overlaps(want)]
        if clash:
            raise NodeError(
                f"pod CIDR {pod_cidr} is already taken on this machine (it overlaps {', '.join(clash)} "
                "in `ip route`/`ip addr`): choose another with --pod-cidr"
            )
    for slot in range(256):
        net = plan_network(slot, service_cidr, pod_cidr)
        mine = [ipaddress.ip_network(net.pod_cidr), ipaddress.ip_network(f"{net.host_ip}/30", strict=False)]
        if net.host_if in links or any(n.overlaps(m) for n in taken for m in mine):
            continue
        if not claim_slot(slot):
            continue
        return net
    raise NodeError(
        "no free pod CIDR in 10.244.0.0/16 (every 10.244.<k>.0/24 is routed here): pass --pod-cidr"
    )


# ------------------------------------------------------------------------------------ sandbox image
def pause_archive(cache: Path) -> Path:
    """A docker-archive of the sandbox image: one static Go binary, built and packed here."""
    src = HERE / "go" / "pause"
    digest = hashlib.sha256(b"".join((src / f).read_bytes() for f in ("main.go", "go.mod"))).hexdigest()[:12]
    out = cache / f"pause-{digest}.tar"
    if out.exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    binary = cache / f".pause-{os.getpid()}"
    env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=readonly")
    proc = subprocess.run(
        ["go", "build", "-ldflags", "-s -w", "-o", str(binary), "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise NodeError(f"building the sandbox image's pause binary failed:\n{proc.stdout}{proc.stderr}")
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tar.gettarinfo(str(binary), arcname="pause")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        with open(binary, "rb") as f:
            tar.addfile(info, f)
    binary.unlink()
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "tests/cluster/realnode.py pause_archive"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [PAUSE_IMAGE], "Layers": ["layer/layer.tar"]}]
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    with tarfile.open(tmp, "w") as tar:
        for name, data in (
            (config_name, config_bytes),
            ("layer/layer.tar", layer_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)
    return out


# ------------------------------------------------------------------------------ images in the node
def node_pid(node_dir: Path) -> int:
    """A process in the node's namespaces (``unshare``), written by the launcher at start."""
    try:
        return int((node_dir / "unshare.pid").read_text())
    except (FileNotFoundError, ValueError):
        raise NodeError(f"no real node runs from {node_dir} (no unshare.pid)") from None


def ctr(node_dir: Path | None, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """containerd's own client, in its ``k8s.io`` namespace (the one the CRI plugin serves); from the host
    (``node_dir``) it runs in the node's mount namespace, where the socket is."""
    enter = ["nsenter", f"--target={node_pid(node_dir)}", "--mount", "--"] if node_dir is not None else []
    return subprocess.run(
        [*enter, "ctr", "--address", str(SOCK), "-n", "k8s.io", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def normalise(ref: str) -> str:
    """The kubelet's reading of an image reference: bare names live in docker.io/library."""
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{ref}"
    return ref


def load_images(
    node_dir: Path | None, archives: list[Path], aliases: dict[str, str] | None = None
) -> list[str]:
    """Import docker-archives (``kind load`` for this node), then add ``aliases`` (name -> other name).

    ``node_dir``: the node's directory when called from the host; None inside the node."""
    done = []
    for archive in archives:
        proc = ctr(node_dir, "images", "import", str(archive))
        if proc.returncode != 0:
            raise NodeError(
                f"importing {archive} into the real node's containerd failed: {proc.stderr.strip()}"
            )
        done.append(archive.name)
    for src, dst in (aliases or {}).items():
        proc = ctr(node_dir, "images", "tag", "--force", normalise(src), normalise(dst))
        if proc.returncode != 0:
            raise NodeError(f"tagging {src} as {dst} failed: {proc.stderr.strip()}")
    return done


# ------------------------------------------------------------------------------------ node config
@dataclass(frozen=True)
class NodeConfig:
    """What PID 1 needs; written as JSON by the launcher."""

    dir: str  # <workdir>/node
    logs: str
    bin_dir: str
    network: dict[str, Any]
    apiserver_port: int
    ca_cert: str
    images: list[str]  # docker-archives to import
    aliases: dict[str, str] = field(default_factory=dict)  # more names for them (``load_images``)

    @property
    def net(self) -> Network:
        return Network(**self.network)


def containerd_config(node: Path, pause: str) -> str:
    return f"""version = 2
root = "{node}/containerd/root"
state = "{node}/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{SOCK}"
[ttrpc]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{node}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # Processes here may not lower oom_score_adj: without this every sandbox fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{shutil.which("runc") or "/usr/sbin/runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir()}"
    conf_dir = "{node}/cni/net.d"
"""


def cni_bin_dir() -> str:
    for d in ("/usr/lib/cni", "/opt/cni/bin"):
        if Path(d, "bridge").exists():
            return d
    return "/usr/lib/cni"


def cni_config(node: Path, net: Network) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "jobline",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "jl0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": net.pod_cidr, "gateway": net.gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(node / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(node: Path, cfg: NodeConfig) -> dict[str, Any]:
    pki = node / "pki"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,  # the hierarchy here is v1 (hybrid)
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_PARENT}/{cfg.net.slot}",
        "containerRuntimeEndpoint": f"unix://{SOCK}",
        "address": "0.0.0.0",  # inside the node's own network namespace
        "port": 10250,
        "readOnlyPort": 0,
        "healthzPort": 10248,
        "healthzBindAddress": "127.0.0.1",
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": cfg.ca_cert},
        },
        "authorization": {"mode": "Webhook"},
        "podLogsDir": str(node / "pod-logs"),
        "clusterDomain": "cluster.local",
        "failSwapOn": False,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        # Images cannot be pulled again here: never garbage-collect them, never evict for disk.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "serializeImagePulls": False,
        "kubeAPIQPS": 50,
        "kubeAPIBurst": 100,
        "volumePluginDir": str(node / "volume-plugins"),
        "staticPodPath": "",
        "resolvConf": "/etc/resolv.conf",
        "shutdownGracePeriod": "0s",
        "containerLogMaxSize": "10Mi",
        "maxPods": 110,
        "localStorageCapacityIsolation": True,
    }


def kube_proxy_config(node: Path, cfg: NodeConfig) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(node / "kube-proxy.kubeconfig"), "qps": 50, "burst": 100},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "bindAddress": "0.0.0.0",
        "clusterCIDR": cfg.net.pod_cidr,
        # Conntrack limits are the host's (not per namespace): leave them as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"syncPeriod": "30s", "minSyncPeriod": "0s"},
    }


# ------------------------------------------------------------------------------- the launcher side
REQUIRED_TOOLS = {  # tool -> the Debian package that has it
    "containerd": "containerd",
    "ctr": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "ip": "iproute2",
    "unshare": "util-linux",
    "conntrack": "conntrack",
}
NODE_PACKAGES = "containerd runc containernetworking-plugins iptables iproute2 conntrack"


def preflight(bin_dir: Path) -> None:
    """Fail fast, naming what is missing and how to get it."""
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if not shutil.which(tool)})
    if not Path(cni_bin_dir(), "bridge").exists():
        missing.append("containernetworking-plugins")
    if missing:
        raise NodeError(
            f"the real node needs Debian packages that are not installed: {' '.join(missing)}. "
            f"Run `make node-deps` (as root it runs `apt-get install {NODE_PACKAGES}`), or start "
            "the cluster without it (`--no-realnode`)."
        )
    for b in ("kubelet", "kube-proxy"):
        if not (bin_dir / b).exists():
            raise NodeError(f"{bin_dir / b} is missing: run `python -m tests.cluster.build`")
    if os.geteuid() != 0:
        raise NodeError(
            "the real node needs root (network and mount namespaces, cgroups): run as root or "
            "start the cluster with --no-realnode"
        )
    if not cgroup_hierarchies():
        raise NodeError("no cgroup hierarchy is mounted under /sys/fs/cgroup: the kubelet cannot run here")


@dataclass
class RealNode:
    """Starts and stops the node's process tree and its half of the plumbing on the host."""

    workdir: Path
    bin_dir: Path
    service_cidr: str
    pod_cidr: str | None = None
    images: list[Path] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    net: Network | None = None
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.workdir / "node"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    def prepare(self) -> Network:
        """Checks and address planning, before the apiserver starts (it advertises the node's side)."""
        preflight(self.bin_dir)
        sweep_stale_cgroups()
        self.net = allocate_network(self.service_cidr, self.pod_cidr)
        return self.net

    def start(self, pki: Any, apiserver_port: int, spawn: Any) -> None:
        """``spawn(name, argv, death_signal=...)`` starts a child the way the launcher starts every component."""
        from .certs import issue_pair, write_kubeconfig

        assert self.net is not None, "prepare() first"
        net = self.net
        shutil.rmtree(self.dir, ignore_errors=True)
        (self.dir / "pki").mkdir(parents=True)
        server = f"https://{net.node_ip}:{apiserver_port}"
        kubelet = issue_pair(
            pki, "kubelet-client", f"system:node:{NODE_NAME}", org="system:nodes", client=True
        )
        proxy = issue_pair(pki, "kube-proxy-client", "system:kube-proxy", client=True)
        serving = issue_pair(pki, "kubelet-serving", NODE_NAME, server=True, sans=(net.node_ip, NODE_NAME))
        for src, stem in ((serving, "kubelet-serving"),):
            shutil.copy(src.cert, self.dir / "pki" / f"{stem}.crt")
            shutil.copy(src.key, self.dir / "pki" / f"{stem}.key")
        # The apiserver's certificate names "kubernetes"; the node reaches it at its own IP.
        write_kubeconfig(
            self.dir / "kubelet.kubeconfig",
            server,
            pki.ca.cert,
            kubelet,
            f"system:node:{NODE_NAME}",
            tls_server_name="kubernetes",
        )
        write_kubeconfig(
            self.dir / "kube-proxy.kubeconfig",
            server,
            pki.ca.cert,
            proxy,
            "system:kube-proxy",
            tls_server_name="kubernetes",
        )
        images = [pause_archive(self.bin_dir.parent / "images"), *self.images]
        cfg = NodeConfig(
            dir=str(self.dir),
            logs=str(self.logs),
            bin_dir=str(self.bin_dir),
            network=asdict(net),
            apiserver_port=apiserver_port,
            ca_cert=str(pki.ca.cert),
            images=[str(i) for i in images],
            aliases=self.aliases,
        )
        conf = self.dir / "config.json"
        conf.write_text(json.dumps(asdict(cfg), indent=2))
        # unshare blocks SIGTERM while it waits for its child, so it must die of SIGKILL with the launcher;
        # --kill-child then hands PID 1 a SIGTERM, and PID 1 cleans up.
        self._procs["realnode"] = spawn(
            "realnode",
            [
                "unshare",
                "--net",
                "--mount",
                "--uts",
                "--pid",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
                "--kill-child=SIGTERM",
                sys.executable,
                "-m",
                "tests.cluster.realnode",
                "init",
                f"--config={conf}",
            ],
            death_signal=signal.SIGKILL,
        )
        unshare = self._procs["realnode"].pid
        (self.dir / "unshare.pid").write_text(str(unshare))
        deadline = time.monotonic() + 20
        own = os.readlink("/proc/self/ns/net")
        while True:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{unshare}/ns/net") != own:
                    break
            if self._procs["realnode"].poll() is not None or time.monotonic() > deadline:
                raise NodeError(
                    "the node's namespaces could not be made (`unshare --net --mount --pid` failed); "
                    f"see {self.logs / 'realnode.log'}:\n{procs.tail(self.logs / 'realnode.log')}"
                )
            time.sleep(0.02)
        try:
            _run(
                "ip",
                "link",
                "add",
                net.host_if,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                str(unshare),
            )
        except NodeError as exc:
            raise NodeError(f"cannot create the node's veth pair {net.host_if}: {exc}") from exc
        _run("ip", "addr", "add", f"{net.host_ip}/30", "dev", net.host_if)
        _run("ip", "link", "set", net.host_if, "up")
        try:
            _run("ip", "route", "add", net.pod_cidr, "via", net.node_ip, "dev", net.host_if)
        except NodeError as exc:
            raise NodeError(f"pod CIDR {net.pod_cidr} is already taken on this machine: {exc}") from exc
        self._procs["node-forwarder"] = spawn(
            "node-forwarder",
            [
                sys.executable,
                "-m",
                "tests.cluster.realnode",
                "forward",
                f"--pid={unshare}",
                f"--port={apiserver_port}",
            ],
        )

    def check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                log = self.logs / f"{name}.log"
                raise NodeError(
                    f"{name} exited early with code {proc.returncode}. Last lines of {log}:\n{procs.tail(log)}"
                )

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self._procs.items()}

    def init_pid(self) -> int | None:
        """The node's PID 1, seen from the host (the child of unshare)."""
        proc = self._procs.get("realnode")
        if proc is None or proc.poll() is not None:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
        return None

    def stop(self, grace: float = 30.0) -> None:
        init = self.init_pid()
        proc = self._procs.pop("realnode", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init or proc.pid, signal.SIGTERM)  # PID 1 stops the node; unshare exits after it
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    if init:
                        os.kill(init, signal.SIGKILL)  # the kernel then kills the whole PID namespace
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        fwd = self._procs.pop("node-forwarder", None)
        if fwd is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(fwd.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                fwd.wait(5)
            if fwd.poll() is None:
                os.killpg(fwd.pid, signal.SIGKILL)
                fwd.wait(5)
        if self.net is not None:
            # The veth went with the namespace; the cgroups too, unless PID 1 was killed first.
            deadline = time.monotonic() + 10
            while self.net.host_if in _links() and time.monotonic() < deadline:
                time.sleep(0.1)
            remove_node_cgroups(self.net.slot)
            release_slot(self.net.slot)


# ---------------------------------------------------------------------------------- the node's PID 1
def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NodeError(
            f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def _log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} realnode: {msg}", flush=True)


def _write_sysctl(name: str, value: str) -> None:
    path = Path("/proc/sys") / name.replace(".", "/")
    try:
        path.write_text(value)
    except OSError as exc:
        raise NodeError(f"sysctl {name}={value} refused in the node's namespace: {exc}") from exc


def cgroup_hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, name=systemd, the v2 'unified' one)."""
    out: list[Path] = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0] if right else ""
            if fstype in ("cgroup", "cgroup2"):
                mnt = Path(left.split()[4])
                if mnt.is_relative_to(CGROUP_ROOT):
                    out.append(mnt)
    return sorted(set(out))


def make_cgroup_root(slot: int) -> None:
    for h in cgroup_hierarchies():
        parent = h / CGROUP_PARENT
        for d in (parent, parent / str(slot)):
            try:
                d.mkdir(exist_ok=True)
            except OSError as exc:
                raise NodeError(
                    f"cannot create cgroup {d}: {exc} (the kubelet needs its cgroup root in every hierarchy)"
                ) from exc
            for knob in ("cpuset.cpus", "cpuset.mems"):  # a new cpuset is empty: inherit the parent's
                if (d / knob).exists() and not (d / knob).read_text().strip():
                    (d / knob).write_text((d.parent / knob).read_text())


def remove_cgroup_tree(root: Path, timeout: float = 10.0) -> list[str]:
    """rmdir ``root`` and everything below it, deepest first; returns what could not be removed."""
    deadline = time.monotonic() + timeout
    while True:
        left: list[str] = []
        if root.exists():
            for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(dirpath)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    left.append(f"{dirpath}: {exc.strerror}")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def remove_node_cgroups(slot: int) -> list[str]:
    left: list[str] = []
    for h in cgroup_hierarchies():
        left += remove_cgroup_tree(h / CGROUP_PARENT / str(slot))
        with contextlib.suppress(OSError):
            (h / CGROUP_PARENT).rmdir()  # only when no other node uses it
    return left


def sweep_stale_cgroups() -> None:
    """Remove cgroups of nodes that are gone: a slot whose veth no longer exists."""
    links = _links()
    for h in cgroup_hierarchies():
        parent = h / CGROUP_PARENT
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            if child.is_dir() and child.name.isdigit() and f"jlh{child.name}" not in links:
                remove_cgroup_tree(child, timeout=2)


class Init:
    """PID 1 of the node: set up, start containerd / kube-proxy / kubelet, supervise, clean up."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.node = Path(cfg.dir)
        self.logs = Path(cfg.logs)
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            out.close()
        self.children[name] = proc
        _log(f"started {name} (pid {proc.pid} in the node)")
        return proc

    def _check_children(self) -> None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                log = self.logs / f"{name}.log"
                raise NodeError(
                    f"{name} exited with {proc.returncode}. Last lines of {log}:\n{procs.tail(log, 15)}"
                )

    def setup_network(self) -> None:
        net = self.cfg.net
        socket.sethostname(NODE_NAME)
        _run("ip", "link", "set", "lo", "up")
        deadline = time.monotonic() + 30
        while _run("ip", "link", "show", "eth0", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise NodeError("the launcher did not move eth0 into the node's network namespace in 30 s")
            time.sleep(0.05)
        _run("ip", "addr", "add", f"{net.node_ip}/30", "dev", "eth0")
        _run("ip", "link", "set", "eth0", "up")
        # ClusterIPs are DNATed by kube-proxy; the node's own processes need a route before OUTPUT's
        # DNAT, and whatever is not DNATed must go nowhere (not to the host): loopback drops it.
        _run("ip", "route", "add", net.service_cidr, "dev", "lo")
        _write_sysctl("net.ipv4.ip_forward", "1")
        if Path("/proc/sys/net/bridge").exists():
            _write_sysctl("net.bridge.bridge-nf-call-iptables", "1")
        else:
            _log(
                "br_netfilter is not loaded: Service traffic between pods on the bridge relies on hairpin mode"
            )

    def setup_mounts(self) -> None:
        # containerd puts its shims' sockets under /run/containerd whatever its state dir; the kubelet
        # links container logs in /var/log/containers. Both are tmpfs of this mount namespace only.
        for path in ("/run/containerd", "/var/log/containers", str(self.node / "run"), str(RUN)):
            Path(path).mkdir(parents=True, exist_ok=True)
            _run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", path)
        for d in ("containerd", "cni/net.d", "cni/ipam", "pod-logs", "kubelet", "volume-plugins"):
            (self.node / d).mkdir(parents=True, exist_ok=True)
        # The kubelet's root dir (pod volumes, its sockets) on disk, seen at a short path.
        (RUN / "kubelet").mkdir()
        _run("mount", "--bind", str(self.node / "kubelet"), str(RUN / "kubelet"))

    def start_containerd(self) -> None:
        conf = self.node / "containerd.toml"
        conf.write_text(containerd_config(self.node, PAUSE_IMAGE))
        (self.node / "cni" / "net.d" / "10-jobline.conflist").write_text(
            json.dumps(cni_config(self.node, self.cfg.net), indent=2)
        )
        sock = SOCK
        self._spawn("containerd", ["containerd", "--config", str(conf)])
        deadline = time.monotonic() + 60
        while True:
            self._check_children()
            if sock.exists() and _run("ctr", "--address", str(sock), "version", check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise NodeError(
                    f"containerd did not answer on {sock} in 60 s; see {self.logs / 'containerd.log'}"
                )
            time.sleep(0.1)

    def import_images(self) -> None:
        for archive in self.cfg.images:
            started = time.monotonic()
            load_images(None, [Path(archive)])
            _log(f"imported {Path(archive).name} in {time.monotonic() - started:.1f}s")
        if self.cfg.images[1:] and self.cfg.aliases:
            load_images(None, [], self.cfg.aliases)

    def start_kube(self) -> None:
        bin_dir = Path(self.cfg.bin_dir)
        kubelet_conf = self.node / "kubelet.yaml"
        kubelet_conf.write_text(json.dumps(kubelet_config(self.node, self.cfg), indent=2))
        proxy_conf = self.node / "kube-proxy.yaml"
        proxy_conf.write_text(json.dumps(kube_proxy_config(self.node, self.cfg), indent=2))
        make_cgroup_root(self.cfg.net.slot)
        self._spawn("kube-proxy", [str(bin_dir / "kube-proxy"), f"--config={proxy_conf}", "--v=1"])
        self._spawn(
            "kubelet",
            [
                str(bin_dir / "kubelet"),
                f"--config={kubelet_conf}",
                f"--kubeconfig={self.node / 'kubelet.kubeconfig'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={self.cfg.net.node_ip}",
                f"--root-dir={RUN / 'kubelet'}",
                f"--cert-dir={RUN / 'kubelet' / 'pki'}",
                f"--node-labels={NODE_LABEL}=real",
                "--v=1",
            ],
        )

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        code = 0
        try:
            self.setup_network()
            self.setup_mounts()
            self.start_containerd()
            self.import_images()
            self.start_kube()
            (self.node / "run" / "ready").write_text("ok")
            _log("node processes started")
            while not self.stopping:
                self._reap()
                self._check_children()
                time.sleep(0.2)
        except NodeError as exc:
            _log(f"error: {exc}")
            code = 1
        except Exception as exc:
            _log(f"error: {type(exc).__name__}: {exc}")
            code = 1
        finally:
            self.shutdown()
        return code

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _reap(self) -> None:
        # PID 1 inherits every orphan of the node (container processes whose shim died, ...).
        with contextlib.suppress(ChildProcessError):
            while True:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    return
                for proc in self.children.values():
                    if proc.pid == pid and proc.returncode is None:
                        proc.returncode = -1

    def shutdown(self) -> None:
        _log("stopping")
        for name in ("kubelet", "kube-proxy"):
            proc = self.children.get(name)
            if proc and proc.poll() is None:
                proc.terminate()
        for name in ("kubelet", "kube-proxy"):
            proc = self.children.get(name)
            if proc:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        # Everything else (containerd, shims, the containers) goes at once: the node is a test node.
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    time.sleep(0.05)
            except ChildProcessError:
                break
        left = remove_node_cgroups(self.cfg.net.slot)
        if left:
            _log("could not remove cgroups: " + "; ".join(left))
        _log("stopped")


# ------------------------------------------------------------------------------------- the forwarder
def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listen_in_netns(pid: int, port: int) -> socket.socket:
    """A listening socket inside the network namespace of ``pid``; this process stays in its own."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        _setns(target)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            sock.listen(512)
            sock.setblocking(False)
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def forward(sock: socket.socket, target: tuple[str, int]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, sock=sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


# ------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.cluster.realnode")
    sub = p.add_subparsers(dest="cmd", required=True)
    init = sub.add_parser("init", help="PID 1 of the node (run under unshare by the launcher)")
    init.add_argument("--config", type=Path, required=True)
    fwd = sub.add_parser("forward", help="the apiserver, inside the node's network namespace")
    fwd.add_argument("--pid", type=int, required=True, help="a process in the node's network namespace")
    fwd.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    if args.cmd == "init":
        cfg = NodeConfig(**json.loads(args.config.read_text()))
        return Init(cfg).run()
    sock = listen_in_netns(args.pid, args.port)
    print(f"forwarding node :{args.port} -> 127.0.0.1:{args.port}", flush=True)
    asyncio.run(forward(sock, ("127.0.0.1", args.port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
