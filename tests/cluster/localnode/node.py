"""The node itself: the Node object and its Lease, the watch of the pods bound to it, one worker per pod.

What a kubelet does around its pods: register Node ``<node-name>`` (Ready, tainted so that only pods
that ask land here), renew its Lease and Ready heartbeat, list/watch ``spec.nodeName=<node-name>``
and hand each pod to a :class:`~.podworker.PodWorker`, delete pods whose graceful deletion ended,
and on shutdown stop every process group it started.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from .api import ApiError, Json, Kube, TransientError, now_micro, now_rfc3339, pod_path
from .containers import kill_group
from .identity import CAPACITY, KUBELET_VERSION, LOCAL_IP, RUNTIME_VERSION
from .logserver import LogServer
from .podworker import NODE_STOP_GRACE, TERMINAL, PodWorker

log = logging.getLogger("localnode")

LEASE_PERIOD = 10.0
STATUS_PERIOD = 20.0


def _read_first_line(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


class LocalNode:
    """The local node: its Node object, the pods bound to it (one PodWorker each) and their processes."""

    def __init__(self, kube: Kube, name: str, state_dir: Path, port: int) -> None:
        self.kube = kube
        self.name = name
        self.state_dir = state_dir
        self.port = port
        self.stopping = threading.Event()
        self.started_at = now_rfc3339()
        self._lock = threading.Lock()
        self.workers: dict[str, PodWorker] = {}
        self.by_name: dict[tuple[str, str], PodWorker] = {}
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._deleting: set[str] = set()
        self._transitions: dict[
            str, tuple[str, str]
        ] = {}  # node condition type -> (status, lastTransitionTime)

    def service_env(self) -> dict[str, str]:
        """The ``kubernetes`` service's variables every container gets: the apiserver this node uses."""
        port = str(self.kube.service_port)
        return {
            "KUBERNETES_SERVICE_HOST": self.kube.service_host,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
        }

    # ------------------------------------------------------------------- process registry
    def register(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs[proc.pid] = proc

    def unregister(self, pid: int) -> None:
        with self._lock:
            self._procs.pop(pid, None)

    # ------------------------------------------------------------------------- node object
    def _node_info(self) -> Json:
        machine_id = _read_first_line("/etc/machine-id") or uuid.uuid5(uuid.NAMESPACE_DNS, self.name).hex
        return {
            "machineID": machine_id,
            "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.name}.jobline.dev")),
            "bootID": _read_first_line("/proc/sys/kernel/random/boot_id") or str(uuid.uuid4()),
            "kernelVersion": platform.release(),
            "osImage": _os_image(),
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        }

    def _conditions(self) -> list[Json]:
        beat = now_rfc3339()
        rows = [
            (
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]
        out = []
        for t, s, r, m in rows:
            prev = self._transitions.get(t)
            if prev is None or prev[0] != s:
                prev = (s, self.started_at)
                self._transitions[t] = prev
            out.append(
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": m,
                    "lastHeartbeatTime": beat,
                    "lastTransitionTime": prev[1],
                }
            )
        return out

    def _node_status(self) -> Json:
        return {
            "capacity": dict(CAPACITY),
            "allocatable": dict(CAPACITY),
            "addresses": [
                {"type": "InternalIP", "address": LOCAL_IP},
                {"type": "Hostname", "address": self.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": self._node_info(),
            "conditions": self._conditions(),
        }

    def register_node(self) -> None:
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "jobline.dev/node-type": "local",
            "jobline.dev/node": "local",
        }
        # Tainted: a pod lands here only when it asks to (its image is ignored); the real node
        # (jobline-node) takes every other pod, as a cluster's nodes would.
        taints = [{"key": "jobline.dev/node", "value": "local", "effect": "NoSchedule"}]
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {"taints": taints},
        }
        try:
            self.kube.request("POST", "/api/v1/nodes", body=body)
            log.info("node %s: created", self.name)
        except ApiError as exc:
            if exc.status != 409:
                raise
            node = self.kube.patch(
                f"/api/v1/nodes/{quote(self.name)}", {"metadata": {"labels": labels}}, "merge"
            )
            for cond in (node or {}).get("status", {}).get("conditions") or []:
                if cond.get("type") and cond.get(
                    "lastTransitionTime"
                ):  # keep transition times across restarts
                    self._transitions[str(cond["type"])] = (
                        str(cond.get("status")),
                        str(cond["lastTransitionTime"]),
                    )
            log.info("node %s: already registered, labels updated", self.name)
        self.kube.patch(f"/api/v1/nodes/{quote(self.name)}/status", {"status": self._node_status()})
        log.info("node %s: Ready (kubelet endpoint port %d)", self.name, self.port)

    def heartbeat(self) -> None:
        try:
            self.kube.patch(
                f"/api/v1/nodes/{quote(self.name)}/status", {"status": {"conditions": self._conditions()}}
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            log.warning("node %s: the Node object is gone; registering again", self.name)
            self.register_node()

    def renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{quote(self.name)}"
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": now_micro()}
        try:
            self.kube.patch(path, {"spec": spec}, "merge")
            return
        except ApiError as exc:
            if exc.status != 404:
                raise
        owner: list[Json] = []
        with contextlib.suppress(ApiError, TransientError):
            node = self.kube.get(f"/api/v1/nodes/{quote(self.name)}")
            owner = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": node["metadata"]["uid"]}]
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": "kube-node-lease", "ownerReferences": owner},
            "spec": spec,
        }
        try:
            self.kube.request(
                "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", body=body
            )
        except ApiError as exc:
            if exc.status == 404:  # no kube-node-lease namespace yet
                with contextlib.suppress(ApiError):
                    self.kube.request(
                        "POST",
                        "/api/v1/namespaces",
                        body={
                            "apiVersion": "v1",
                            "kind": "Namespace",
                            "metadata": {"name": "kube-node-lease"},
                        },
                    )
                self.kube.request(
                    "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", body=body
                )
            elif exc.status != 409:
                raise

    def _heartbeat_loop(self) -> None:
        last_status = time.monotonic()
        while not self.stopping.wait(LEASE_PERIOD):
            try:
                self.renew_lease()
            except (ApiError, TransientError) as exc:
                log.warning("node %s: lease renewal failed: %s", self.name, exc)
            if time.monotonic() - last_status >= STATUS_PERIOD - 1:
                try:
                    self.heartbeat()
                    last_status = time.monotonic()
                except (ApiError, TransientError) as exc:
                    log.warning("node %s: status heartbeat failed: %s", self.name, exc)

    # ------------------------------------------------------------------------------- pods
    def delete_pod(self, ns: str, name: str, uid: str) -> None:
        """Delete the pod object with grace 0 (UID precondition), in the background, once."""
        with self._lock:
            if uid in self._deleting:
                return
            self._deleting.add(uid)

        def run() -> None:
            body = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": uid},
            }
            for attempt in range(30):
                try:
                    self.kube.request("DELETE", pod_path(ns, name), body=body)
                    log.info("pod %s/%s: deleted (grace 0)", ns, name)
                    return
                except ApiError as exc:
                    if exc.status in (404, 409):
                        return
                    log.warning("pod %s/%s: delete failed: %s", ns, name, exc)
                except TransientError as exc:
                    log.warning("pod %s/%s: delete failed: %s", ns, name, exc)
                if self.stopping.wait(min(0.5 * 2**attempt, 10)):
                    return
            with self._lock:
                self._deleting.discard(uid)

        threading.Thread(target=run, name=f"delete:{ns}/{name}", daemon=True).start()

    def handle(self, etype: str, pod: Json) -> None:
        md = pod.get("metadata") or {}
        uid = str(md.get("uid") or "")
        ns, name = str(md.get("namespace") or ""), str(md.get("name") or "")
        if not uid:
            return
        if etype == "DELETED":
            with self._lock:
                worker = self.workers.pop(uid, None)
                if self.by_name.get((ns, name)) is worker:
                    self.by_name.pop((ns, name), None)
                self._deleting.discard(uid)
            if worker is not None and not worker.finished.is_set():
                log.info("pod %s/%s: removed from the API while running", ns, name)
                worker.mark_gone()
            return
        with self._lock:
            worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            if worker.finished.is_set() and md.get("deletionTimestamp"):
                self.delete_pod(ns, name, uid)
            return
        if (pod.get("status") or {}).get("phase") in TERMINAL:
            if md.get("deletionTimestamp"):
                self.delete_pod(ns, name, uid)
            return
        if self.stopping.is_set():
            return
        worker = PodWorker(self, pod)
        with self._lock:
            self.workers[uid] = worker
            self.by_name[(ns, name)] = worker
        worker.start()

    def _sync(self, items: list[Json]) -> None:
        seen = {str((p.get("metadata") or {}).get("uid")) for p in items}
        with self._lock:
            vanished = [w for uid, w in self.workers.items() if uid not in seen]
        for w in vanished:
            self.handle("DELETED", w.pod)
        for pod in items:
            self.handle("ADDED", pod)

    def _watch_loop(self) -> None:
        selector = f"spec.nodeName={self.name}"
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                listing = self.kube.get("/api/v1/pods", fieldSelector=selector)
                rv = str(listing["metadata"]["resourceVersion"])
                self._sync(list(listing.get("items") or []))
                backoff = 1.0
                relist = False
                while not relist and not self.stopping.is_set():
                    query = {
                        "fieldSelector": selector,
                        "resourceVersion": rv,
                        "allowWatchBookmarks": "true",
                        "timeoutSeconds": "300",
                    }
                    for event in self.kube.watch("/api/v1/pods", query, timeout=330):
                        etype = str(event.get("type"))
                        obj = event.get("object") or {}
                        if etype == "ERROR":
                            if obj.get("code") == 410:
                                log.info("watch: resourceVersion too old; listing again")
                            else:
                                log.warning("watch: error event %s", obj.get("message"))
                            relist = True
                            break
                        rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                        if etype != "BOOKMARK":
                            self.handle(etype, obj)
                        if self.stopping.is_set():
                            return
            except (ApiError, TransientError, ValueError, KeyError) as exc:
                log.warning("watch: %s; listing again in %.0fs", exc, backoff)
                if self.stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, 30.0)
            except Exception:
                log.exception("watch: unexpected error; listing again in %.0fs", backoff)
                if self.stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, 30.0)

    # ------------------------------------------------------------------------------- logs
    def find_log(
        self, ns: str, pod: str, ctr: str, previous: bool
    ) -> tuple[Path, threading.Event | None] | tuple[int, str]:
        with self._lock:
            worker = self.by_name.get((ns, pod))
        if worker is not None:
            c = worker.container(ctr)
            if c is None:
                return 404, f"container {ctr!r} is not valid for pod {ns}/{pod}"
            if previous:
                if not c.previous_log_path.exists():
                    return 400, f'previous terminated container "{ctr}" in pod "{pod}" not found'
                return c.previous_log_path, None
            if not c.log_path.exists():
                reason = (c.state.get("waiting") or {}).get("reason") or "ContainerCreating"
                return 400, f'container "{ctr}" in pod "{pod}" is waiting to start: {reason}'
            inst = c.inst
            return c.log_path, (inst.exited if inst is not None else None)
        dirs = sorted((self.state_dir / "pods").glob(f"{ns}_{pod}_*"), key=lambda p: p.stat().st_mtime)
        if not dirs:
            return 404, f"pod {ns}/{pod} is not known on node {self.name}"
        path = dirs[-1] / (f"{ctr}.previous.log" if previous else f"{ctr}.log")
        if not path.exists():
            return 404, f"no {'previous ' if previous else ''}log for container {ctr!r} in pod {ns}/{pod}"
        return path, None

    # ------------------------------------------------------------------------- lifecycle
    def start(self, server: LogServer) -> None:
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                self.register_node()
                self.renew_lease()
                break
            except (ApiError, TransientError) as exc:
                log.warning("node %s: registration failed (%s); retrying in %.1fs", self.name, exc, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        threading.Thread(target=self._watch_loop, name="watch", daemon=True).start()

    def shutdown(self) -> None:
        self.stopping.set()
        with self._lock:
            workers = list(self.workers.values())
            procs = dict(self._procs)
        log.info("shutting down: stopping %d process group(s)", len(procs))
        for pid in procs:
            kill_group(pid, signal.SIGTERM)
        for w in workers:
            w.wake.set()
        deadline = time.monotonic() + NODE_STOP_GRACE
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            procs = dict(self._procs)
        for pid in procs:
            kill_group(pid, signal.SIGKILL)
        for w in workers:
            w.join(max(0.0, deadline + 1.0 - time.monotonic()))
