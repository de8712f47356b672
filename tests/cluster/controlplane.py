"""Start and stop a real Kubernetes control plane as local processes.

etcd, kube-apiserver (RBAC, loopback only), kube-controller-manager and kube-scheduler run from
the binaries that :mod:`tests.cluster.build` makes; beside them run the local node
(:mod:`tests.cluster.localnode`, which executes pods as processes) and kwok, which fakes a few
tainted nodes for scale work. Every component logs to ``<workdir>/logs/<name>.log``; a component
that exits early or never becomes ready raises :class:`ClusterError` with its last log lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import kwok, procs
from .certs import PKI, ensure_pki, write_kubeconfig
from .realnode import NODE_NAME, NodeError, RealNode

REPO = Path(__file__).resolve().parents[2]
LOCAL_NODE = "jobline-local"
SERVICE_CIDR = "10.96.0.0/16"


class ClusterError(RuntimeError):
    """The cluster could not start; the message names the component and shows its log."""


@dataclass
class Ports:
    etcd_client: int = 0
    etcd_peer: int = 0
    apiserver: int = 0
    controller_manager: int = 0
    scheduler: int = 0
    local_node: int = 0
    kwok: int = 0

    def allocate(self) -> None:
        taken: set[int] = set()
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value:
                if procs.port_in_use(value):
                    raise ClusterError(
                        f"port {value} (for {name.replace('_', '-')}) is already in use on 127.0.0.1: "
                        "stop what listens there (`ss -ltnp 'sport = :%d'`) or choose another port" % value
                    )
            else:
                while (value := procs.free_port()) in taken:
                    pass
                setattr(self, name, value)
            taken.add(value)


@dataclass
class Cluster:
    workdir: Path
    bin_dir: Path
    local_node: bool = True
    kwok_nodes: int = 2
    ports: Ports = field(default_factory=Ports)
    real_node: bool = True
    pod_cidr: str | None = None  # the real node's; default: the first free 10.244.<k>.0/24
    images: list[Path] = field(default_factory=list)  # docker-archives imported into the real node
    image_aliases: dict[str, str] = field(default_factory=dict)  # and more names for them
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    node: RealNode | None = None
    _argv: dict[str, tuple[list[str], Path | None]] = field(default_factory=dict)  # for restart()
    _base_argv: dict[str, list[str]] = field(default_factory=dict)  # as launched, for reconfigure()

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self._procs.items()} | (self.node.pids() if self.node else {})

    # ----------------------------------------------------------------- start
    def start(self, timeout: float = 120.0) -> None:
        started = time.monotonic()
        try:
            self._start(timeout)
        except NodeError as exc:
            self.stop()
            raise ClusterError(str(exc)) from exc
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _start(self, timeout: float) -> None:
        for binary in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
            if not (self.bin_dir / binary).exists():
                raise ClusterError(f"{self.bin_dir / binary} is missing: run `python -m tests.cluster.build`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.ports.allocate()
        if self.real_node:
            self.node = RealNode(
                self.workdir,
                self.bin_dir,
                SERVICE_CIDR,
                self.pod_cidr,
                list(self.images),
                dict(self.image_aliases),
            )
            net = self.node.prepare()
            # The kubernetes Service's endpoint: the node reaches the apiserver at its own address.
            endpoint = [f"--advertise-address={net.node_ip}"]
        else:
            endpoint = [
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
            ]  # loopback is not a valid endpoint address
        pki = ensure_pki(self.workdir / "pki")
        self._write_kubeconfigs(pki)
        deadline = time.monotonic() + timeout

        data = self.workdir / "etcd-data"
        shutil.rmtree(data, ignore_errors=True)  # a fresh cluster every start
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=jobline-test",
                f"--data-dir={data}",
                f"--listen-client-urls=http://127.0.0.1:{self.ports.etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{self.ports.etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{self.ports.etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{self.ports.etcd_peer}",
                f"--initial-cluster=jobline-test=http://127.0.0.1:{self.ports.etcd_peer}",
                "--unsafe-no-fsync",  # test data only: trades durability for speed on slow disks
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )
        self._wait_http("etcd", f"http://127.0.0.1:{self.ports.etcd_client}/health", deadline)

        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.ports.etcd_client}",
                "--bind-address=127.0.0.1",
                *endpoint,
                # Webhooks and the service proxy dial endpoints (pod IPs, routed into the real node), not
                # ClusterIPs (kube-proxy's rules live in the node's network namespace only).
                "--enable-aggregator-routing=true",
                f"--secure-port={self.ports.apiserver}",
                f"--tls-cert-file={pki.apiserver.cert}",
                f"--tls-private-key-file={pki.apiserver.key}",
                f"--client-ca-file={pki.ca.cert}",
                "--authorization-mode=Node,RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--kubelet-client-certificate={pki.kubelet_client.cert}",
                f"--kubelet-client-key={pki.kubelet_client.key}",
                "--kubelet-preferred-address-types=InternalIP",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=true",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._wait_http("kube-apiserver", f"{self.server}/readyz", deadline, pki=pki)

        self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.controller_manager}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca.cert}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--controllers=*",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={self.workdir / 'scheduler.kubeconfig'}",
                f"--authentication-kubeconfig={self.workdir / 'scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={self.workdir / 'scheduler.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.scheduler}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
        )
        if self.node is not None:
            self.node.start(pki, self.ports.apiserver, self._spawn_child)
        if self.local_node:
            self._spawn(
                "localnode",
                [
                    sys.executable,
                    "-m",
                    "tests.cluster.localnode",
                    f"--kubeconfig={self.kubeconfig}",
                    f"--node-name={LOCAL_NODE}",
                    f"--state-dir={self.workdir / 'node'}",
                    f"--port={self.ports.local_node}",
                    f"--tls-cert={pki.node_serving.cert}",
                    f"--tls-key={pki.node_serving.key}",
                ],
                cwd=REPO,
            )
        if self.kwok_nodes:
            config = kwok.write_config(self.workdir / "kwok.yaml")
            self._spawn("kwok", kwok.command(self.bin_dir / "kwok", self.kubeconfig, config, self.ports.kwok))
        self._wait_http(
            "kube-controller-manager", f"https://127.0.0.1:{self.ports.controller_manager}/healthz", deadline
        )
        self._wait_http("kube-scheduler", f"https://127.0.0.1:{self.ports.scheduler}/healthz", deadline)
        if self.kwok_nodes:
            kwok.create_nodes(self.api, self.kwok_nodes)
        # The service-account controller is the last piece pods need; the default SA proves it runs.
        self._wait_api(
            "ServiceAccount default/default",
            "/api/v1/namespaces/default/serviceaccounts/default",
            deadline,
            owner="kube-controller-manager",
        )
        if self.node is not None:
            self._wait_api(
                f"Node {NODE_NAME} Ready",
                f"/api/v1/nodes/{NODE_NAME}",
                deadline,
                owner="kubelet",
                check=_node_ready,
            )
        if self.local_node:
            self._wait_api(
                "Node jobline-local Ready",
                f"/api/v1/nodes/{LOCAL_NODE}",
                deadline,
                owner="localnode",
                check=_node_ready,
            )
        for i in range(self.kwok_nodes):
            self._wait_api(
                f"Node {kwok.node_name(i)} Ready",
                f"/api/v1/nodes/{kwok.node_name(i)}",
                deadline,
                owner="kwok",
                check=_node_ready,
            )

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()  # first: the kubelet still reaches the apiserver while it stops
        order = ["localnode", "kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
        for name in order + [n for n in self._procs if n not in order]:
            proc = self._procs.pop(name, None)
            if proc is not None:
                procs.stop(proc, grace=15 if name == "localnode" else 10)

    # ---------------------------------------------------------------- faults
    # For fault injection (tests/faults/): SIGKILL, SIGSTOP/SIGCONT and restart one component of a
    # running cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, localnode, kwok),
    # with the same command line (etcd keeps its data directory: only start() wipes it).
    def component(self, name: str) -> subprocess.Popen[bytes]:
        proc = self._procs.get(name)
        if proc is None:
            raise ClusterError(f"no component {name!r} (running: {', '.join(self._procs)})")
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL the component's process group and reap it (no graceful shutdown: a crash)."""
        proc = self.component(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def pause(self, name: str) -> None:
        """SIGSTOP the component (a hung process: its sockets stay open, nothing answers)."""
        os.killpg(self.component(name).pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """SIGCONT after :meth:`pause`."""
        os.killpg(self.component(name).pid, signal.SIGCONT)

    def etcd_call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """One call of etcd's v3 JSON gateway (``/v3/kv/range``, ``/v3/kv/compaction``)."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.ports.etcd_client}/v3/{method}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return dict(json.loads(resp.read() or b"{}"))

    def etcd_revision(self) -> int:
        """etcd's current revision (the resourceVersion of the newest write)."""
        everything = {"key": "AA==", "range_end": "AA==", "count_only": True}  # "\0".."\0": all keys
        return int(self.etcd_call("kv/range", everything)["header"]["revision"])

    def etcd_compact(self) -> int:
        """Compact etcd's history up to its current revision: every older resourceVersion is gone, so a
        watch resuming from one gets 410 Gone. Returns the revision."""
        revision = self.etcd_revision()
        self.etcd_call("kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def restart(self, name: str, timeout: float = 60.0) -> float:
        """Start the component again with its command line (SIGKILL first if it still runs); wait until
        it answers its health check (etcd, kube-apiserver, controller-manager, scheduler). Returns the
        seconds that took."""
        started = time.monotonic()
        if self.component(name).poll() is None:
            self.kill(name)
        argv, cwd = self._argv[name]
        self._spawn(name, argv, cwd)
        deadline = started + timeout
        pki = ensure_pki(self.workdir / "pki")
        health = {
            "etcd": (f"http://127.0.0.1:{self.ports.etcd_client}/health", None),
            "kube-apiserver": (f"{self.server}/readyz", pki),
            "kube-controller-manager": (f"https://127.0.0.1:{self.ports.controller_manager}/healthz", None),
            "kube-scheduler": (f"https://127.0.0.1:{self.ports.scheduler}/healthz", None),
        }
        if name in health:
            url, ctx_pki = health[name]
            self._wait_http(name, url, deadline, pki=ctx_pki)
        return time.monotonic() - started

    def reconfigure(self, name: str, extra_args: list[str], timeout: float = 60.0) -> float:
        """Restart a component with its launch command line plus ``extra_args`` (a later flag wins in
        the Go components' flag parsing; ``[]`` restores the launch flags). Returns the seconds it took."""
        base = self._base_argv.setdefault(name, list(self._argv[name][0]))
        self._argv[name] = (base + list(extra_args), self._argv[name][1])
        return self.restart(name, timeout)

    # --------------------------------------------------------------- helpers
    def _spawn(self, name: str, argv: list[str], cwd: Path | None = None) -> None:
        # If the launcher dies (kill -9), the Go components get SIGKILL: a test control plane has nothing
        # to flush, and the apiserver's graceful termination can hang for good once etcd has gone first
        # (seen in CI: SIGTERM at 14:37, still waiting on etcd minutes later). The local node (Python)
        # gets SIGTERM: it stops its pods' processes on the way out.
        death_signal = signal.SIGTERM if name == "localnode" else signal.SIGKILL
        self._argv[name] = (list(argv), cwd)
        self._procs[name] = self._spawn_child(name, argv, cwd, death_signal)

    def _spawn_child(
        self, name: str, argv: list[str], cwd: Path | None = REPO, death_signal: int = signal.SIGTERM
    ) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        # Pods on the local node run with the node's PATH: put this venv first, so `jobline-worker`
        # and `python3` are the project's own even when the venv is not activated.
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(
            [venv_bin, *[p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin]]
        )
        return procs.spawn(argv, self.logs / f"{name}.log", env=env, cwd=cwd, death_signal=death_signal)

    def _check_alive(self) -> None:
        if self.node is not None:
            try:
                self.node.check_alive()
            except NodeError as exc:
                raise ClusterError(str(exc)) from exc
        for name, proc in self._procs.items():
            rc = proc.poll()
            if rc is not None:
                log = self.logs / f"{name}.log"
                raise ClusterError(
                    f"{name} exited early with code {rc}. Last lines of {log}:\n{procs.tail(log)}"
                )

    def _ssl(self, pki: PKI | None) -> ssl.SSLContext:
        if pki is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        ctx = ssl.create_default_context(cafile=str(pki.ca.cert))
        ctx.load_cert_chain(str(pki.admin.cert), str(pki.admin.key))
        return ctx

    def _wait_http(self, name: str, url: str, deadline: float, pki: PKI | None = None) -> None:
        ctx = self._ssl(pki) if url.startswith("https") else None
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        log = self.logs / f"{name}.log"
        raise ClusterError(
            f"{name} not ready at {url} in time ({last}). Last lines of {log}:\n{procs.tail(log)}"
        )

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        """A minimal admin client (the launcher needs no kubernetes package)."""
        pki = ensure_pki(self.workdir / "pki")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.server}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10, context=self._ssl(pki)) as resp:
            return json.loads(resp.read() or b"null")

    def _wait_api(self, what: str, path: str, deadline: float, owner: str, check: Any = None) -> None:
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                obj = self.api(path)
                if check is None or check(obj):
                    return
                last = "present but not ready"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.25)
        log = self.logs / f"{owner}.log"
        raise ClusterError(f"timed out waiting for {what} ({last}). Last lines of {log}:\n{procs.tail(log)}")

    def _write_kubeconfigs(self, pki: PKI) -> None:
        write_kubeconfig(self.kubeconfig, self.server, pki.ca.cert, pki.admin, "jobline-admin")
        write_kubeconfig(
            self.workdir / "controller-manager.kubeconfig",
            self.server,
            pki.ca.cert,
            pki.controller_manager,
            "system:kube-controller-manager",
        )
        write_kubeconfig(
            self.workdir / "scheduler.kubeconfig",
            self.server,
            pki.ca.cert,
            pki.scheduler,
            "system:kube-scheduler",
        )


def _node_ready(node: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions", [])
    )
