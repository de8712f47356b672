"""A local node: a small Python "kubelet" that runs the pods bound to it as local processes.

Usage (the launcher, :mod:`tests.cluster.controlplane`, runs it with cwd = the repository root)::

    python -m tests.cluster.localnode --kubeconfig PATH --node-name jobline-local --state-dir DIR \\
        --port PORT --tls-cert CERT.pem --tls-key KEY.pem

It runs in the foreground until SIGTERM/SIGINT and logs to stderr (UTC timestamps, one line per pod
and container transition; environment values are never logged). On SIGTERM it stops every pod
process group it started (SIGTERM, SIGKILL after 2 s) and exits 0.

What it does, like a kubelet would:

* registers Node ``<node-name>`` (labels ``kubernetes.io/hostname``, ``kubernetes.io/os``,
  ``kubernetes.io/arch``, ``jobline.dev/node-type=local``, ``jobline.dev/node=local``; tainted
  ``jobline.dev/node=local:NoSchedule``, so only pods that tolerate and select it land here; 8 CPUs, 16Gi, 110 pods; InternalIP
  127.0.0.1) with condition Ready=True, renews its Lease in ``kube-node-lease`` every 10 s and the
  Ready heartbeat every 20 s;
* lists/watches pods with ``spec.nodeName=<node-name>`` and gives each one a supervisor thread that
  runs the init containers one by one and then the containers, each as its own process group. The
  image is ignored: a container runs ``command + args`` (``$(VAR)`` expanded) with an environment
  built from ``envFrom``/``env`` (ConfigMaps, Secrets, downward API fields, resource fields) on top
  of a minimal base (``PATH`` of the node, ``HOME``, ``HOSTNAME``, ``LANG``) plus the ``kubernetes``
  service's ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``/``KUBERNETES_SERVICE_PORT_HTTPS``,
  taken from the server URL of the node's kubeconfig (``127.0.0.1:<apiserver port>``; the service's
  clusterIP is not routable here); the container's own ``env``/``envFrom`` entries win;
* sets up the pod's volumes once, before its first container starts, under
  ``<state-dir>/pods/<namespace>_<pod>_<uid>/volumes/<volume>/``, and has podexec bind-mount them at
  each ``volumeMounts[].mountPath`` (``subPath``/``subPathExpr`` honoured; ``readOnly`` gives a
  read-only remount; configMap, secret, projected and downwardAPI volumes are always read-only, like a
  kubelet's). Supported: ``configMap`` and ``secret`` (``items``, ``defaultMode``/``mode``,
  ``optional``), ``downwardAPI`` (``fieldRef`` as for env, ``resourceFieldRef``), ``projected``
  (``serviceAccountToken``, ``configMap``, ``secret``, ``downwardAPI``), ``emptyDir`` (a per-pod
  directory shared by the pod's containers) and ``hostPath`` (the host path itself; ``type`` checked,
  ``DirectoryOrCreate``/``FileOrCreate`` create it, and so does an empty ``type`` when nothing is there). A ``serviceAccountToken`` is a real bound token
  from the TokenRequest API (for ``spec.serviceAccountName``, default ``default``; ``audience``;
  ``expirationSeconds``, at least 600; bound to the pod), so the ``kube-api-access-*`` volume that the
  ServiceAccount admission plugin adds at ``/var/run/secrets/kubernetes.io/serviceaccount`` gives the
  standard in-cluster config (token, ``ca.crt`` from ConfigMap ``kube-root-ca.crt``, namespace). Files
  are plain files (no ``..data`` symlinks), default mode 0644. A missing required ConfigMap/Secret/key,
  a failed TokenRequest (or any other volume problem) leaves the containers waiting with
  ``CreateContainerConfigError`` and a message and is retried every second (``kube-root-ca.crt`` is
  published by the controller-manager shortly after a namespace is created; a real kubelet reports
  this as ``ContainerCreating`` plus a ``FailedMount`` event). **Note:** a bind mount needs a target,
  so podexec creates a missing ``mountPath`` on the host (a directory, or an empty file for a file
  source) and leaves it there, e.g. ``/var/run/secrets/kubernetes.io/serviceaccount`` is created once
  as an empty directory. The mounts exist only in each container's private mount namespace, so
  concurrent pods each see their own token. Not done: token refresh (tokens live at least 600 s, the
  admission plugin's ones an hour or more: enough for tests), updating configMap/secret volumes after
  start, ``emptyDir`` ``medium``/``sizeLimit``, ``mountPropagation``, fsGroup/ownership; other volume
  types (persistentVolumeClaim, ephemeral, csi, ...) give ``CreateContainerConfigError``;
* every container starts through the shim :mod:`tests.cluster.podexec`, which gives it a private
  mount namespace where its own ``<container>.termination-log`` is bind-mounted over its
  ``terminationMessagePath``. **Note:** a bind mount needs a target, so when that path (by default
  ``/dev/termination-log``) does not exist on the host, podexec creates an empty file there (the node
  runs as root) and leaves it;
* stdout+stderr go to ``<state-dir>/pods/<namespace>_<pod>_<uid>/<container>.log`` (the previous
  instance's log is kept as ``<container>.previous.log``) and are served for ``kubectl logs`` over
  HTTPS on 127.0.0.1:PORT (``/containerLogs/{ns}/{pod}/{container}``: ``follow``, ``tailLines``,
  ``limitBytes``, ``previous``; plus ``/healthz``). The apiserver must reach it by InternalIP:
  ``--kubelet-preferred-address-types=InternalIP`` (the Hostname address is the node name);
* reports pod status through ``pods/status`` (phases, container states, conditions, restart
  counts), honours ``restartPolicy`` (back-off 1 s, 2 s, 4 s ... 10 s), ``activeDeadlineSeconds``,
  graceful deletion (then deletes the pod with grace 0, like a kubelet) and, on start-up, marks pods
  it had been running before a restart as Failed (``ContainerStatusUnknown``).

Not supported: probes (a running container is ready), lifecycle hooks, resource limits,
exec/attach/port-forward, service links for services other than ``kubernetes`` (and its
``KUBERNETES_PORT*`` variables).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import platform
import re
import select
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import urllib3
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTClientObject

Json = dict[str, Any]

log = logging.getLogger("localnode")

PODEXEC = Path(__file__).resolve().with_name("podexec.py")
KUBELET_VERSION = "v1.35.4-jobline-local"
RUNTIME_VERSION = "local://1"
LOCAL_IP = "127.0.0.1"
CAPACITY = {"cpu": "8", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
TERMINAL = ("Succeeded", "Failed")

MSG_NO_COMMAND = "local node runs only containers with an explicit command"
MSG_UNKNOWN = "The container could not be located when the pod was terminated"
MSG_DEADLINE = "Pod was active on the node longer than the specified deadline"
TERMINATION_MESSAGE_MAX = 4096
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048
BACKOFF_CAP = 10.0
BACKOFF_RESET_AFTER = 60.0  # a container that ran this long restarts without back-off
CONFIG_RETRY = 3.0  # CreateContainerConfigError is retried this often
VOLUME_RETRY = 1.0  # ... and this often when a volume cannot be set up yet (kube-root-ca.crt not yet published)
DEFAULT_MODE = 0o644  # files of configMap/secret/projected/downwardAPI volumes without a mode
TOKEN_SECONDS = 3600  # serviceAccountToken expirationSeconds default ...
MIN_TOKEN_SECONDS = 600  # ... and minimum
API_DATA_VOLUMES = ("configMap", "secret", "projected", "downwardAPI")  # always mounted read-only
SUPPORTED_VOLUMES = (*API_DATA_VOLUMES, "emptyDir", "hostPath")
NODE_STOP_GRACE = 2.0
MIN_KILL_GRACE = 2.0  # like a kubelet: a pod removed outright still gets SIGTERM, SIGKILL 2 s later
LEASE_PERIOD = 10.0
STATUS_PERIOD = 20.0
TICK = 0.1


# --------------------------------------------------------------------------------------- helpers
def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def expand(text: str, mapping: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` like Kubernetes: unknown references stay as they are, ``$$`` is ``$``."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(text)
    while cursor < n:
        if text[cursor] == "$" and cursor + 1 < n:
            out.append(text[checkpoint:cursor])
            nxt = text[cursor + 1]
            advance = 1
            if nxt == "$":
                out.append("$")
            elif nxt == "(":
                close = text.find(")", cursor + 2)
                if close == -1:
                    out.append("$(")
                else:
                    name = text[cursor + 2 : close]
                    out.append(mapping.get(name, f"$({name})"))
                    advance = close - cursor
            else:
                out.append("$" + nxt)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?")
_SUFFIX: dict[str, Decimal] = {
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60), "n": Decimal("1e-9"), "u": Decimal("1e-6"),
    "m": Decimal("1e-3"), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
    "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18),
}


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes resource quantity ("500m", "1.5Gi", "2e3") as a number."""
    text = str(value).strip()
    m = _QUANTITY.fullmatch(text)
    if not m:
        raise ValueError(f"invalid quantity {text!r}")
    try:
        number = Decimal(m[1])
    except InvalidOperation as exc:
        raise ValueError(f"invalid quantity {text!r}") from exc
    if m[2]:
        return number * (Decimal(10) ** int(m[2][1:]))
    return number * _SUFFIX.get(m[3] or "", Decimal(1))


def tail_offset(f: Any, lines: int) -> int:
    """Offset in the binary file ``f`` where its last ``lines`` lines start."""
    f.seek(0, os.SEEK_END)
    end = int(f.tell())
    if lines <= 0:
        return end
    pos = end
    seen = 0
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        for i in range(len(chunk) - 1, -1, -1):
            if chunk[i] == 10 and pos + i != end - 1:
                seen += 1
                if seen == lines:
                    return pos + i + 1
    return 0


def read_tail(path: Path, lines: int, max_bytes: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(tail_offset(f, lines))
            data = f.read()
    except OSError:
        return ""
    return data[-max_bytes:].decode("utf-8", errors="replace")


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


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


# ----------------------------------------------------------------------------------- API access
class TransientError(Exception):
    """The API server could not be reached or did not answer in time."""


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, body: bytes | str) -> None:
        self.status = status
        self.body = body.decode(errors="replace") if isinstance(body, bytes) else body
        self.reason = ""
        self.message = self.body[:500]
        with contextlib.suppress(ValueError, AttributeError):
            parsed = json.loads(self.body)
            self.reason = str(parsed.get("reason") or "")
            self.message = str(parsed.get("message") or self.message)
        super().__init__(f"HTTP {status} {self.reason}: {self.message}")


class Kube:
    """A thin JSON client over the kubernetes package's configuration and HTTP pool (dicts in, dicts out)."""

    def __init__(self, kubeconfig: str) -> None:
        cfg = kclient.Configuration()
        kconfig.load_kube_config(config_file=kubeconfig, client_configuration=cfg,  # type: ignore[no-untyped-call]
                                 persist_config=False)
        cfg.connection_pool_maxsize = 64
        self._cfg = cfg
        self._rest = RESTClientObject(cfg)
        self.host = str(cfg.host).rstrip("/")
        url = urlsplit(self.host)
        # What pods get as KUBERNETES_SERVICE_HOST/PORT: the apiserver this node talks to (the
        # "kubernetes" service's clusterIP is not routable from local processes).
        self.service_host = url.hostname or LOCAL_IP
        self.service_port = url.port or (443 if url.scheme == "https" else 80)

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"jobline-localnode/{KUBELET_VERSION}"}
        auth = self._cfg.auth_settings().get("BearerToken")
        if auth and auth.get("value"):
            headers["authorization"] = str(auth["value"])
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _url(self, path: str, query: Mapping[str, object] | None) -> str:
        return self.host + path + (("?" + urlencode(query)) if query else "")

    def request(self, method: str, path: str, *, query: Mapping[str, object] | None = None, body: Any = None,
                content_type: str | None = None, timeout: float = 30.0) -> Any:
        if body is not None and content_type is None:
            content_type = "application/json"
        try:
            resp = self._rest.request(  # type: ignore[no-untyped-call]
                method, self._url(path, query), headers=self._headers(content_type), body=body,
                _request_timeout=(5.0, timeout))
            data = resp.read()
        except (urllib3.exceptions.HTTPError, ApiException, OSError) as exc:
            raise TransientError(f"{method} {path}: {exc}") from exc
        if resp.status >= 400:
            if resp.status in (429, 500, 502, 503, 504):
                raise TransientError(f"{method} {path}: HTTP {resp.status}")
            raise ApiError(resp.status, data or b"")
        return json.loads(data) if data else None

    def get(self, path: str, **query: object) -> Any:
        return self.request("GET", path, query=query or None)

    def get_optional(self, path: str) -> Json | None:
        try:
            return dict(self.get(path))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, path: str, body: Any, kind: str = "strategic") -> Any:
        ctype = {"strategic": "application/strategic-merge-patch+json",
                 "merge": "application/merge-patch+json"}[kind]
        return self.request("PATCH", path, body=body, content_type=ctype)

    def watch(self, path: str, query: Mapping[str, object], timeout: float) -> Iterator[Json]:
        """Yield watch events (dicts) until the server ends the stream."""
        try:
            resp = self._rest.request(  # type: ignore[no-untyped-call]
                "GET", self._url(path, {**query, "watch": "true"}), headers=self._headers(None),
                _request_timeout=(5.0, timeout))
        except (urllib3.exceptions.HTTPError, ApiException, OSError) as exc:
            raise TransientError(f"watch {path}: {exc}") from exc
        raw = resp.response
        try:
            if resp.status >= 400:
                raise ApiError(resp.status, raw.read() or b"")
            buf = b""
            for chunk in raw.stream(None, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield dict(json.loads(line))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"watch {path}: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):
                raw.release_conn()
            with contextlib.suppress(Exception):
                raw.close()


def _pod_path(ns: str, name: str, sub: str = "") -> str:
    return f"/api/v1/namespaces/{quote(ns)}/pods/{quote(name)}" + (f"/{sub}" if sub else "")


def _full_state(state: Mapping[str, Any]) -> Json:
    """A container state with the keys it does not have set to null, so a strategic merge drops them."""
    return {key: state.get(key) for key in ("waiting", "running", "terminated")}


def _terminated(exit_code: int, reason: str, message: str | None, started: str | None, finished: str | None,
                container_id: str | None) -> Json:
    return {"exitCode": exit_code, "signal": None, "reason": reason, "message": message or None,
            "startedAt": started, "finishedAt": finished, "containerID": container_id}


class ConfigError(Exception):
    """The container's configuration cannot be resolved yet (CreateContainerConfigError)."""


class VolumeError(ConfigError):
    """A volume of the pod cannot be set up yet (also reported as CreateContainerConfigError)."""


def _rel_path(path: object, what: str) -> str:
    """A relative path that stays inside its volume (no absolute paths, no ``..``)."""
    text = str(path or "")
    if not text or text.startswith("/") or ".." in text.split("/"):
        raise VolumeError(f"{what}: invalid path {text!r} (must be relative and must not contain '..')")
    return text


def _mount_arg(source: str, target: str, read_only: bool) -> str:
    """podexec's ``--mount SRC:DST[:ro]`` (``:`` and ``\\`` escaped with a backslash)."""

    def esc(path: str) -> str:
        return path.replace("\\", "\\\\").replace(":", "\\:")

    return f"{esc(source)}:{esc(target)}" + (":ro" if read_only else "")


def _object_data(kind: str, obj: Json) -> dict[str, bytes]:
    """The key -> bytes content of a ConfigMap (``data`` and ``binaryData``) or Secret (``data``)."""
    if kind == "secrets":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    out = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


def _write_volume(root: Path, files: Mapping[str, tuple[bytes, int]]) -> None:
    """(Re)create directory ``root`` holding ``files`` (relative path -> (content, mode))."""
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for rel, (data, mode) in files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(path, mode & 0o7777)
    os.chmod(tmp, 0o755)
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)


# ------------------------------------------------------------------------------------ containers
@dataclass
class Instance:
    """One run of a container: a process group led by the workload's pid."""

    proc: subprocess.Popen[bytes]
    started_at: str
    started_mono: float
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return int(self.proc.pid)


class Container:
    def __init__(self, spec: Json, init: bool, pod_dir: Path) -> None:
        self.spec = spec
        self.name = str(spec["name"])
        self.init = init
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        self.log_path = pod_dir / f"{self.name}.log"
        self.previous_log_path = pod_dir / f"{self.name}.previous.log"
        self.term_file = pod_dir / f"{self.name}.termination-log"
        self.inst: Instance | None = None
        self.state: Json = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: Json = {}
        self.attempts = 0  # instances that have terminated (or failed to start)
        self.restart_count = 0
        self.exit_code: int | None = None
        self.done = False  # terminated and will not run again
        self.next_start = 0.0
        self.backoff = 0.0
        self.container_id: str | None = None

    @property
    def ever_started(self) -> bool:
        return self.inst is not None or self.attempts > 0

    def status(self) -> Json:
        image = str(self.spec.get("image") or "")
        running = self.inst is not None
        return {
            "name": self.name,
            "image": image,
            "imageID": f"local://{image}",
            "containerID": self.container_id,
            "ready": running,
            "started": running,
            "restartCount": self.restart_count,
            "state": _full_state(self.state),
            "lastState": _full_state(self.last_state),
        }


def _started_before(pod: Json) -> bool:
    """Whether some kubelet (we, before a restart) already ran containers of this pod."""
    st = pod.get("status") or {}
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        state = cs.get("state") or {}
        if state.get("running") or state.get("terminated") or cs.get("restartCount"):
            return True
        if (cs.get("lastState") or {}).get("terminated"):
            return True
    return False


# ------------------------------------------------------------------------------------ pod worker
class PodWorker(threading.Thread):
    """Runs one pod from acceptance to a terminal phase (or until it is deleted)."""

    def __init__(self, node: LocalNode, pod: Json) -> None:
        md = pod["metadata"]
        self.ns = str(md["namespace"])
        self.pod_name = str(md["name"])
        self.uid = str(md["uid"])
        super().__init__(name=f"pod:{self.ns}/{self.pod_name}", daemon=True)
        self.node = node
        self.kube = node.kube
        self._pod = pod
        self._lock = threading.Lock()
        self.wake = threading.Event()
        self.finished = threading.Event()
        self.gone = False
        self.pod_dir = node.state_dir / "pods" / f"{self.ns}_{self.pod_name}_{self.uid}"
        self.volume_dir = self.pod_dir / "volumes"
        self._volumes: dict[str, Path] = {}  # volume name -> materialised directory (or host path)
        spec = pod.get("spec") or {}
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        self.inits = [Container(c, True, self.pod_dir) for c in spec.get("initContainers") or []]
        self.mains = [Container(c, False, self.pod_dir) for c in spec.get("containers") or []]
        if self.inits:
            for c in self.mains:
                c.state = {"waiting": {"reason": "PodInitializing"}}
            for c in self.inits:
                c.state = {"waiting": {"reason": "PodInitializing"}}
        self.phase = "Pending"
        self.logged_phase = ""
        self.reason: str | None = None
        self.message: str | None = None
        known_start = (pod.get("status") or {}).get("startTime")
        self.start_time = str(known_start or now_rfc3339())
        # activeDeadlineSeconds counts from startTime; keep sub-second precision when we set it ourselves
        self._start_wall = parse_time(self.start_time) if known_start else time.time()
        self.init_failed = False
        self.stopping = False  # no more (re)starts
        self._cond_times: dict[str, tuple[str, str]] = {}
        self._pushed: str | None = None
        self._push_failures = 0
        self._next_push = 0.0

    # -------------------------------------------------------------- shared with the watch thread
    @property
    def pod(self) -> Json:
        with self._lock:
            return self._pod

    def update(self, pod: Json) -> None:
        with self._lock:
            self._pod = pod
        self.wake.set()

    def mark_gone(self) -> None:
        self.gone = True
        self.wake.set()

    @property
    def containers(self) -> list[Container]:
        return self.inits + self.mains

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)

    @property
    def who(self) -> str:
        return f"{self.ns}/{self.pod_name}"

    # ----------------------------------------------------------------------------- main loop
    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            log.exception("pod %s: supervisor failed", self.who)
            self._fail_on_error(exc)
        finally:
            self.finished.set()
            for c in self.containers:
                if c.inst is not None:
                    _kill_group(c.inst.pid, signal.SIGKILL)
            if not self.gone and not self.node.stopping.is_set() and self.pod["metadata"].get("deletionTimestamp"):
                self.node.delete_pod(self.ns, self.pod_name, self.uid)

    def _run(self) -> None:
        if _started_before(self.pod):
            self._report_unknown()
            return
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        log.info("pod %s (uid %s): accepted, %d init container(s), %d container(s), restartPolicy %s",
                 self.who, self.uid, len(self.inits), len(self.mains), self.restart_policy)
        self._push()
        while True:
            self.wake.wait(TICK)
            self.wake.clear()
            if self.gone:
                self._terminate(lambda: MIN_KILL_GRACE, "the pod was removed from the API")
                return
            if self.node.stopping.is_set():
                self._terminate(lambda: NODE_STOP_GRACE, "the node is shutting down")
                return
            if self.pod["metadata"].get("deletionTimestamp"):
                self._handle_deletion()
                return
            if self._deadline_exceeded():
                self._handle_deadline()
                return
            self._reap(allow_restart=True)
            self._advance()
            self.phase = self._compute_phase()
            if self.phase in TERMINAL:
                if any(c.inst is not None for c in self.containers):  # sidecars outlive the main containers
                    self._terminate(self._pod_grace, "the pod's containers have completed")
                self._finalize_waiting()
                self._push_final()
                return
            self._push()

    # ------------------------------------------------------------------------- state machine
    def _init_complete(self) -> bool:
        for c in self.inits:
            if c.sidecar:
                if not c.ever_started:
                    return False
            elif not (c.done and c.exit_code == 0):
                return False
        return True

    def _compute_phase(self) -> str:
        if self.init_failed:
            return "Failed"
        if not self._init_complete():
            return "Pending"
        if self.mains and all(c.done for c in self.mains):
            return "Succeeded" if all(c.exit_code == 0 for c in self.mains) else "Failed"
        if any(c.ever_started for c in self.mains):
            return "Running"
        return "Pending"

    def _advance(self) -> None:
        if self.stopping or self.init_failed:
            return
        now = time.monotonic()
        if not self._init_complete():
            for c in self.inits:
                if c.sidecar:
                    if c.inst is None and not c.done and now >= c.next_start:
                        self._start(c)
                    if not c.ever_started:
                        return
                    continue
                if c.done:
                    continue
                if c.inst is None and now >= c.next_start:
                    self._start(c)
                return
            return
        for c in self.containers:
            if (c.sidecar or not c.init) and c.inst is None and not c.done and now >= c.next_start:
                self._start(c)

    def _should_restart(self, c: Container, code: int) -> bool:
        if c.sidecar:
            return True
        if c.init:
            return code != 0 and self.restart_policy != "Never"
        if self.restart_policy == "Always":
            return True
        return self.restart_policy == "OnFailure" and code != 0

    def _reap(self, allow_restart: bool) -> None:
        for c in self.containers:
            inst = c.inst
            if inst is None:
                continue
            rc = inst.proc.poll()
            if rc is None:
                continue
            code = rc if rc >= 0 else 128 - rc
            _kill_group(inst.pid, signal.SIGKILL)  # like a container's pid 1: its exit ends the rest
            self.node.unregister(inst.pid)
            message = self._termination_message(c, code)
            c.inst = None
            inst.exited.set()
            term = _terminated(code, "Completed" if code == 0 else "Error", message, inst.started_at,
                               now_rfc3339(), c.container_id)
            self._on_terminated(c, term, allow_restart, time.monotonic() - inst.started_mono)

    def _on_terminated(self, c: Container, term: Json, allow_restart: bool, ran: float) -> None:
        code = int(term["exitCode"])
        c.attempts += 1
        c.exit_code = code
        c.state = {"terminated": term}
        # The termination message may carry anything the workload wrote: log its size, not its text.
        log.info("pod %s container %s: terminated, exit code %d (%s), message of %d bytes", self.who, c.name, code,
                 term["reason"], len(term.get("message") or ""))
        if allow_restart and not self.stopping and self._should_restart(c, code):
            c.backoff = 1.0 if c.backoff == 0 or ran > BACKOFF_RESET_AFTER else min(c.backoff * 2, BACKOFF_CAP)
            c.next_start = time.monotonic() + c.backoff
            c.last_state = {"terminated": term}
            c.state = {"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {c.backoff:g}s restarting failed container={c.name} "
                           f"pod={self.pod_name}_{self.ns}({self.uid})",
            }}
            log.info("pod %s container %s: restarting in %gs (restartPolicy %s)", self.who, c.name, c.backoff,
                     self.restart_policy)
        else:
            c.done = True
            if c.init and not c.sidecar and code != 0:
                self.init_failed = True

    def _termination_message(self, c: Container, code: int) -> str:
        try:
            data = c.term_file.read_bytes()[:TERMINATION_MESSAGE_MAX]
        except OSError:
            data = b""
        message = data.decode("utf-8", errors="replace")
        if not message and code != 0 and c.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = read_tail(c.log_path, FALLBACK_LINES, FALLBACK_BYTES)
        return message

    # ---------------------------------------------------------------------------- starting
    def _start(self, c: Container) -> None:
        spec = c.spec
        command = [str(a) for a in spec.get("command") or []]
        if not command:
            t = now_rfc3339()
            log.warning("pod %s container %s: has no command", self.who, c.name)
            self._on_terminated(c, _terminated(128, "ContainerCannotRun", MSG_NO_COMMAND, t, t, None), True, 0.0)
            return
        try:
            env, k8s_env = self._build_env(c)
            mounts = self._container_mounts(c, k8s_env)
        except ConfigError as exc:
            message = str(exc)
            if (c.state.get("waiting") or {}).get("message") != message:
                log.warning("pod %s container %s: CreateContainerConfigError: %s", self.who, c.name, message)
            c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
            c.next_start = time.monotonic() + (VOLUME_RETRY if isinstance(exc, VolumeError) else CONFIG_RETRY)
            return
        argv = [expand(a, k8s_env) for a in command + [str(a) for a in spec.get("args") or []]]
        workdir = str(spec.get("workingDir") or (self.pod_dir / f"{c.name}.workdir"))
        term_path = str(spec.get("terminationMessagePath") or "/dev/termination-log")
        read_fd = write_fd = -1
        try:
            os.makedirs(workdir, exist_ok=True)
            if c.attempts > 0 and c.log_path.exists():
                os.replace(c.log_path, c.previous_log_path)
            c.term_file.write_bytes(b"")
            read_fd, write_fd = os.pipe()
            shim = [sys.executable, "-I", "-S", str(PODEXEC), "--term-file", str(c.term_file),
                    "--term-path", term_path, "--cwd", workdir, "--status-fd", str(write_fd),
                    "--parent-pid", str(os.getpid())]
            for mount in mounts:
                shim += ["--mount", mount]
            shim.append("--")
            with open(c.log_path, "ab") as out:
                proc = subprocess.Popen(shim + argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(write_fd,))
        except OSError as exc:
            for fd in (read_fd, write_fd):
                if fd >= 0:
                    os.close(fd)
            self._start_error(c, f"failed to start container {c.name!r}: {exc}")
            return
        os.close(write_fd)
        self.node.register(proc)
        started_mono = time.monotonic()
        started_at = now_rfc3339()
        failure = self._read_status(read_fd)
        if failure:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            self.node.unregister(proc.pid)
            self._start_error(c, failure)
            return
        c.restart_count = c.attempts
        c.container_id = f"local://{proc.pid}"
        c.inst = Instance(proc, started_at, started_mono)
        c.state = {"running": {"startedAt": started_at}}
        log.info("pod %s container %s: running, pid %d%s", self.who, c.name, proc.pid,
                 f", restart {c.restart_count}" if c.restart_count else "")

    @staticmethod
    def _read_status(fd: int) -> str:
        """Empty when the shim exec'd the workload; otherwise why it could not."""
        chunks: list[bytes] = []
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                data = os.read(fd, 4096)
                if not data:
                    break
                chunks.append(data)
        finally:
            os.close(fd)
        return b"".join(chunks).decode(errors="replace").strip().removeprefix("podexec: ")

    def _start_error(self, c: Container, message: str) -> None:
        log.warning("pod %s container %s: StartError: %s", self.who, c.name, message)
        t = now_rfc3339()
        self._on_terminated(c, _terminated(128, "StartError", message, t, t, None), True, 0.0)

    # -------------------------------------------------------------------------- environment
    def _build_env(self, c: Container) -> tuple[dict[str, str], dict[str, str]]:
        """(process environment, variables the container defines) or ConfigError."""
        pod = self.pod
        spec = c.spec
        cache: dict[tuple[str, str], Json | None] = {}

        def source(kind: str, name: str) -> Json | None:
            key = (kind, name)
            if key not in cache:
                try:
                    cache[key] = self.kube.get_optional(f"/api/v1/namespaces/{quote(self.ns)}/{kind}/{quote(name)}")
                except (ApiError, TransientError) as exc:
                    raise ConfigError(f"failed to get {kind[:-1]} {self.ns}/{name}: {exc}") from exc
            return cache[key]

        def data(kind: str, obj: Json) -> dict[str, str]:
            if kind == "secrets":
                return {k: base64.b64decode(v).decode("utf-8", errors="replace")
                        for k, v in (obj.get("data") or {}).items()}
            return {k: str(v) for k, v in (obj.get("data") or {}).items()}

        service = self.node.service_env()
        defined: dict[str, str] = {}
        for ef in spec.get("envFrom") or []:
            prefix = str(ef.get("prefix") or "")
            for key, kind, label in (("configMapRef", "configmaps", "configmap"), ("secretRef", "secrets", "secret")):
                ref = ef.get(key)
                if not ref:
                    continue
                name = str(ref.get("name") or "")
                obj = source(kind, name)
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise ConfigError(f'{label} "{name}" not found')
                for k, v in data(kind, obj).items():
                    if "=" not in k:
                        defined[prefix + k] = v

        for item in spec.get("env") or []:
            name = str(item["name"])
            vf = item.get("valueFrom")
            if not vf:
                defined[name] = expand(str(item.get("value") or ""), {**service, **defined})
                continue
            if vf.get("fieldRef"):
                defined[name] = self._field_value(pod, str(vf["fieldRef"].get("fieldPath") or ""))
            elif vf.get("resourceFieldRef"):
                defined[name] = self._resource_value(pod, c, vf["resourceFieldRef"])
            else:
                for key, kind, label, title in (("configMapKeyRef", "configmaps", "configmap", "ConfigMap"),
                                                ("secretKeyRef", "secrets", "secret", "Secret")):
                    ref = vf.get(key)
                    if not ref:
                        continue
                    ref_name, ref_key = str(ref.get("name") or ""), str(ref.get("key") or "")
                    obj = source(kind, ref_name)
                    if obj is None:
                        if ref.get("optional"):
                            break
                        raise ConfigError(f'{label} "{ref_name}" not found')
                    values = data(kind, obj)
                    if ref_key not in values:
                        if ref.get("optional"):
                            break
                        raise ConfigError(f"couldn't find key {ref_key} in {title} {self.ns}/{ref_name}")
                    defined[name] = values[ref_key]
                    break
                else:
                    raise ConfigError(f"env {name}: unsupported valueFrom {sorted(vf)}")

        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
               "HOME": os.environ.get("HOME") or "/root",
               "HOSTNAME": str((pod.get("spec") or {}).get("hostname") or self.pod_name)}
        if os.environ.get("LANG"):
            env["LANG"] = os.environ["LANG"]
        env.update(service)
        env.update(defined)  # the container's own variables win
        return env, {**service, **defined}

    def _field_value(self, pod: Json, path: str) -> str:
        md = pod.get("metadata") or {}
        m = re.fullmatch(r"metadata\.(labels|annotations)\[['\"](.*)['\"]\]", path)
        if m:
            return str((md.get(m[1]) or {}).get(m[2], ""))
        if path in ("metadata.labels", "metadata.annotations"):
            items = (md.get(path.split(".")[1]) or {}).items()
            return "\n".join(f'{k}="{v}"' for k, v in sorted(items))
        values = {
            "metadata.name": self.pod_name,
            "metadata.namespace": self.ns,
            "metadata.uid": self.uid,
            "spec.nodeName": self.node.name,
            "spec.serviceAccountName": str((pod.get("spec") or {}).get("serviceAccountName") or ""),
            "status.podIP": LOCAL_IP,
            "status.podIPs": LOCAL_IP,
            "status.hostIP": LOCAL_IP,
            "status.hostIPs": LOCAL_IP,
        }
        if path not in values:
            raise ConfigError(f"unsupported fieldRef {path!r}")
        return values[path]

    def _resource_value(self, pod: Json, c: Container | None, ref: Json) -> str:
        target = str(ref.get("containerName") or (c.name if c is not None else ""))
        specs = list((pod.get("spec") or {}).get("containers") or []) + list(
            (pod.get("spec") or {}).get("initContainers") or [])
        cspec = next((s for s in specs if s.get("name") == target), None)
        if cspec is None:
            raise ConfigError(f"resourceFieldRef: container {target!r} not found")
        resource = str(ref.get("resource") or "")
        kind, _, res = resource.partition(".")
        if kind not in ("limits", "requests") or not res:
            raise ConfigError(f"unsupported resourceFieldRef {resource!r}")
        value = ((cspec.get("resources") or {}).get(kind) or {}).get(res)
        if value is None and kind == "requests":
            value = ((cspec.get("resources") or {}).get("limits") or {}).get(res)
        if value is None:
            value = CAPACITY.get(res, "0") if kind == "limits" else "0"
        try:
            divisor = parse_quantity(ref.get("divisor") or "1") or Decimal(1)
            number = parse_quantity(value) / divisor
        except ValueError as exc:
            raise ConfigError(f"resourceFieldRef {resource}: {exc}") from exc
        return str(int(number.to_integral_value(rounding=ROUND_CEILING)))

    # ------------------------------------------------------------------------------ volumes
    def _container_mounts(self, c: Container, env: Mapping[str, str]) -> list[str]:
        """podexec ``--mount`` arguments for the container's volumeMounts (sets the pod's volumes up first)."""
        mounts = c.spec.get("volumeMounts") or []
        if not mounts and not (self.pod.get("spec") or {}).get("volumes"):
            return []
        self._setup_volumes()
        kinds = {str(v.get("name")): self._volume_kind(v) for v in (self.pod.get("spec") or {}).get("volumes") or []}
        out: list[str] = []
        for vm in mounts:
            name = str(vm.get("name") or "")
            target = str(vm.get("mountPath") or "")
            if name not in self._volumes:
                raise VolumeError(f"cannot find volume {name!r} to mount into container {c.name!r}")
            if not target.startswith("/"):
                raise VolumeError(f"volume {name!r}: mountPath {target!r} is not absolute")
            root = self._volumes[name]
            source = root
            sub = str(vm.get("subPath") or "")
            if vm.get("subPathExpr"):
                sub = expand(str(vm["subPathExpr"]), env)
            if sub:
                source = root / _rel_path(sub, f"volume {name!r} subPath")
                real_root = os.path.realpath(root)
                if not os.path.realpath(source).startswith(real_root.rstrip("/") + "/"):
                    raise VolumeError(f"volume {name!r}: subPath {sub!r} points outside the volume")
                if not os.path.lexists(source):
                    try:  # like a kubelet: a missing subPath is created as a directory
                        os.makedirs(source, 0o755, exist_ok=True)
                    except OSError as exc:
                        raise VolumeError(f"volume {name!r}: cannot create subPath {sub!r}: {exc}") from exc
            read_only = bool(vm.get("readOnly")) or kinds.get(name) in API_DATA_VOLUMES
            out.append(_mount_arg(str(source), target, read_only))
        return out

    @staticmethod
    def _volume_kind(volume: Json) -> str:
        return next((k for k in volume if k != "name"), "")

    def _setup_volumes(self) -> None:
        """Materialise every volume of the pod once (before its first container starts), like a kubelet."""
        for volume in (self.pod.get("spec") or {}).get("volumes") or []:
            name = str(volume.get("name") or "")
            if name in self._volumes:
                continue
            kind = self._volume_kind(volume)
            if kind not in SUPPORTED_VOLUMES:
                raise VolumeError(f"volume {name!r}: {kind or 'empty'} volumes are not supported by the local node "
                                  f"(supported: {', '.join(SUPPORTED_VOLUMES)})")
            try:
                path = self._setup_volume(name, kind, volume.get(kind) or {})
            except VolumeError as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') from exc
            except OSError as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') from exc
            self._volumes[name] = path
            log.info("pod %s: volume %s (%s) ready", self.who, name, kind)

    def _setup_volume(self, name: str, kind: str, src: Json) -> Path:
        root = self.volume_dir / name
        if kind == "emptyDir":
            root.mkdir(parents=True, exist_ok=True)
            os.chmod(root, 0o777)
            return root
        if kind == "hostPath":
            return self._host_path(src)
        mode = int(src.get("defaultMode") if src.get("defaultMode") is not None else DEFAULT_MODE)
        files: dict[str, tuple[bytes, int]] = {}
        if kind == "configMap":
            files = self._key_files("configmaps", str(src.get("name") or ""), src, mode)
        elif kind == "secret":
            files = self._key_files("secrets", str(src.get("secretName") or ""), src, mode)
        elif kind == "downwardAPI":
            files = self._downward_files(src.get("items") or [], mode)
        else:  # projected
            for source in src.get("sources") or []:
                if source.get("serviceAccountToken"):
                    token = source["serviceAccountToken"]
                    files[_rel_path(token.get("path"), "serviceAccountToken")] = (self._token(token), mode)
                elif source.get("configMap"):
                    ref = source["configMap"]
                    files.update(self._key_files("configmaps", str(ref.get("name") or ""), ref, mode))
                elif source.get("secret"):
                    ref = source["secret"]
                    files.update(self._key_files("secrets", str(ref.get("name") or ""), ref, mode))
                elif source.get("downwardAPI"):
                    files.update(self._downward_files(source["downwardAPI"].get("items") or [], mode))
                else:
                    raise VolumeError(f"projected source {sorted(source)} is not supported by the local node")
        _write_volume(root, files)
        return root

    @staticmethod
    def _host_path(src: Json) -> Path:
        path = str(src.get("path") or "")
        htype = str(src.get("type") or "")
        if not path.startswith("/"):
            raise VolumeError(f"hostPath {path!r} is not absolute")
        if htype == "DirectoryOrCreate" or (not htype and not os.path.lexists(path)):
            os.makedirs(path, 0o755, exist_ok=True)  # untyped: a missing path becomes a directory, as with containerd
        elif htype == "FileOrCreate" and not os.path.exists(path):
            os.makedirs(os.path.dirname(path) or "/", 0o755, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        checks: dict[str, tuple[Callable[[str], bool], str]] = {
            "Directory": (os.path.isdir, "a directory"),
            "DirectoryOrCreate": (os.path.isdir, "a directory"),
            "File": (os.path.isfile, "a file"),
            "FileOrCreate": (os.path.isfile, "a file"),
            "Socket": (lambda p: Path(p).is_socket(), "a socket"),
            "CharDevice": (lambda p: Path(p).is_char_device(), "a character device"),
            "BlockDevice": (lambda p: Path(p).is_block_device(), "a block device"),
        }
        if htype in checks:
            check, what = checks[htype]
            if not check(path):
                raise VolumeError(f"hostPath type check failed: {path} is not {what}")
        elif htype:
            raise VolumeError(f"hostPath type {htype!r} is not supported")
        return Path(path)

    def _key_files(self, kind: str, name: str, src: Json, mode: int) -> dict[str, tuple[bytes, int]]:
        """The files of a configMap/secret volume (or projected source): every key, or the ``items``."""
        label = "configmap" if kind == "configmaps" else "secret"
        optional = bool(src.get("optional"))
        try:
            obj = self.kube.get_optional(f"/api/v1/namespaces/{quote(self.ns)}/{kind}/{quote(name)}")
        except (ApiError, TransientError) as exc:
            raise VolumeError(f"failed to get {label} {self.ns}/{name}: {exc}") from exc
        if obj is None:
            if optional:
                return {}
            raise VolumeError(f'{label} "{name}" not found')
        data = _object_data(kind, obj)
        items = src.get("items")
        if not items:
            return {_rel_path(k, f"{label} {name} key"): (v, mode) for k, v in data.items()}
        out: dict[str, tuple[bytes, int]] = {}
        for item in items:
            key = str(item.get("key") or "")
            if key not in data:
                if optional:
                    continue
                what = "config key" if kind == "configmaps" else "secret key"
                raise VolumeError(f"{label} {name} references non-existent {what}: {key}")
            item_mode = item.get("mode")
            out[_rel_path(item.get("path"), f"{label} {name} item {key}")] = (
                data[key], int(item_mode) if item_mode is not None else mode)
        return out

    def _downward_files(self, items: list[Json], mode: int) -> dict[str, tuple[bytes, int]]:
        pod = self.pod
        out: dict[str, tuple[bytes, int]] = {}
        for item in items:
            path = _rel_path(item.get("path"), "downwardAPI item")
            try:
                if item.get("fieldRef"):
                    value = self._field_value(pod, str(item["fieldRef"].get("fieldPath") or ""))
                elif item.get("resourceFieldRef"):
                    value = self._resource_value(pod, self.mains[0] if self.mains else None, item["resourceFieldRef"])
                else:
                    raise ConfigError(f"downwardAPI item {path!r} has neither fieldRef nor resourceFieldRef")
            except VolumeError:
                raise
            except ConfigError as exc:
                raise VolumeError(str(exc)) from exc
            item_mode = item.get("mode")
            out[path] = (value.encode(), int(item_mode) if item_mode is not None else mode)
        return out

    def _token(self, src: Json) -> bytes:
        """A bound service-account token for this pod (TokenRequest API), like a kubelet gets one."""
        sa = str((self.pod.get("spec") or {}).get("serviceAccountName") or "default")
        spec: Json = {
            "expirationSeconds": max(MIN_TOKEN_SECONDS, int(src.get("expirationSeconds") or TOKEN_SECONDS)),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.pod_name, "uid": self.uid},
        }
        if src.get("audience"):
            spec["audiences"] = [str(src["audience"])]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{quote(self.ns)}/serviceaccounts/{quote(sa)}/token"
        try:
            resp = self.kube.request("POST", path, body=body)
        except (ApiError, TransientError) as exc:
            raise VolumeError(f'failed to fetch token for serviceaccount "{sa}": {exc}') from exc
        token = str(((resp or {}).get("status") or {}).get("token") or "")
        if not token:
            raise VolumeError(f'failed to fetch token for serviceaccount "{sa}": empty TokenRequest status')
        return token.encode()

    # ------------------------------------------------------------------ stopping & deleting
    def _pod_grace(self) -> float:
        g = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return float(30 if g is None else g)

    def _deletion_grace(self) -> float:
        if self.gone or self.node.stopping.is_set():
            return min(MIN_KILL_GRACE, self._pod_grace())
        g = self.pod["metadata"].get("deletionGracePeriodSeconds")
        return float(g) if g is not None else self._pod_grace()

    def _terminate(self, grace: Callable[[], float], why: str) -> None:
        """SIGTERM every running container's process group, SIGKILL when ``grace()`` seconds have passed."""
        self.stopping = True
        running = [c for c in self.containers if c.inst is not None]
        if not running:
            return
        log.info("pod %s: stopping %s (%s)", self.who, ", ".join(c.name for c in running), why)
        for c in running:
            assert c.inst is not None
            _kill_group(c.inst.pid, signal.SIGTERM)
        started = time.monotonic()
        killed = False
        while True:
            self._reap(allow_restart=False)
            alive = [c for c in self.containers if c.inst is not None]
            if not alive:
                return
            if not killed and time.monotonic() - started >= grace():
                log.info("pod %s: grace period over, SIGKILL %s", self.who, ", ".join(c.name for c in alive))
                for c in alive:
                    assert c.inst is not None
                    _kill_group(c.inst.pid, signal.SIGKILL)
                killed = True
            time.sleep(0.05)

    def _finalize_waiting(self) -> None:
        """In a terminal pod, a container waiting to be restarted reports its last termination."""
        for c in self.containers:
            if c.inst is None and "waiting" in c.state and c.last_state.get("terminated"):
                c.state = {"terminated": c.last_state["terminated"]}
                c.last_state = {}
                c.done = True

    def _handle_deletion(self) -> None:
        self._terminate(self._deletion_grace, "the pod is being deleted")
        if self.gone:
            return
        self._finalize_waiting()
        ok = bool(self.mains) and all(c.done and c.exit_code == 0 for c in self.mains) and not self.init_failed
        self.phase = "Succeeded" if ok else "Failed"
        self._push_final()
        if not self.gone:
            self.node.delete_pod(self.ns, self.pod_name, self.uid)

    def _deadline_exceeded(self) -> bool:
        ads = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
        if ads is None:
            return False
        return time.time() - self._start_wall >= float(ads)

    def _handle_deadline(self) -> None:
        log.info("pod %s: activeDeadlineSeconds exceeded", self.who)

        def grace() -> float:
            if self.gone:
                return 0.0
            if self.pod["metadata"].get("deletionTimestamp"):
                return min(self._pod_grace(), self._deletion_grace())
            return self._pod_grace()

        self._terminate(grace, "DeadlineExceeded")
        self._finalize_waiting()
        self.phase, self.reason, self.message = "Failed", "DeadlineExceeded", MSG_DEADLINE
        self._push_final()

    def _fail_on_error(self, exc: Exception) -> None:
        """The supervisor itself failed: stop the pod and say so in its status."""
        with contextlib.suppress(Exception):
            self._terminate(lambda: NODE_STOP_GRACE, "supervisor error")
        if self.gone or self.node.stopping.is_set():
            return
        t = now_rfc3339()
        for c in self.containers:
            if "terminated" not in c.state:
                c.state = {"terminated": _terminated(128, "LocalNodeError", f"local node error: {exc}"[:1000], t, t,
                                                     c.container_id)}
                c.done = True
        self.phase, self.reason, self.message = "Failed", "LocalNodeError", f"local node error: {exc}"[:1000]
        with contextlib.suppress(Exception):
            self._push_final()

    # ------------------------------------------------------------------------------- status
    def _condition(self, ctype: str, ok: bool, reason: str | None = None, message: str | None = None) -> Json:
        status = "True" if ok else "False"
        prev = self._cond_times.get(ctype)
        if prev is None or prev[0] != status:
            prev = (status, now_rfc3339())
            self._cond_times[ctype] = prev
        return {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": prev[1],
                "reason": reason, "message": message}

    def _conditions(self) -> list[Json]:
        terminal = self.phase in TERMINAL
        pending_init = [c.name for c in self.inits
                        if not ((c.sidecar and c.ever_started) or (c.done and c.exit_code == 0))]
        unready = [c.name for c in self.containers if (c.sidecar or not c.init) and c.inst is None]
        conds = [self._condition("PodReadyToStartContainers", not terminal)]
        if pending_init:
            conds.append(self._condition("Initialized", False, "ContainersNotInitialized",
                                         f"containers with incomplete status: [{' '.join(pending_init)}]"))
        else:
            conds.append(self._condition("Initialized", True, "PodCompleted" if self.phase == "Succeeded" else None))
        for ctype in ("ContainersReady", "Ready"):
            if self.phase == "Succeeded":
                conds.append(self._condition(ctype, False, "PodCompleted"))
            elif unready:
                conds.append(self._condition(ctype, False, "ContainersNotReady",
                                             f"containers with unready status: [{' '.join(unready)}]"))
            else:
                conds.append(self._condition(ctype, True))
        return conds

    def _status(self) -> Json:
        status: Json = {
            "phase": self.phase,
            "reason": self.reason,
            "message": self.message,
            "hostIP": LOCAL_IP,
            "hostIPs": [{"ip": LOCAL_IP}],
            "podIP": LOCAL_IP,
            "podIPs": [{"ip": LOCAL_IP}],
            "startTime": self.start_time,
            "conditions": self._conditions(),
            "containerStatuses": [c.status() for c in self.mains],
        }
        if self.inits:
            status["initContainerStatuses"] = [c.status() for c in self.inits]
        generation = self.pod["metadata"].get("generation")
        if generation is not None:
            status["observedGeneration"] = generation
        return status

    def _push(self, force: bool = False) -> bool:
        """Write the status if it changed; True when the server has the current status."""
        status = self._status()
        blob = json.dumps(status, sort_keys=True)
        if blob == self._pushed:
            return True
        if self.gone or (not force and time.monotonic() < self._next_push):
            return False
        try:
            self.kube.patch(_pod_path(self.ns, self.pod_name, "status"),
                            {"metadata": {"uid": self.uid}, "status": status})
        except ApiError as exc:
            if exc.status == 404:
                log.info("pod %s: gone while writing its status", self.who)
                self.gone = True
                return False
            if exc.status == 409:
                self._retry_later()
                return False
            if exc.status == 422 and "uid" in exc.message.lower():
                log.info("pod %s: replaced by a new pod of the same name", self.who)
                self.gone = True
                return False
            log.error("pod %s: status rejected (%s); not retrying this status", self.who, exc)
            self._pushed = blob
            return True
        except TransientError as exc:
            log.warning("pod %s: status update failed: %s", self.who, exc)
            self._retry_later()
            return False
        self._pushed = blob
        self._push_failures = 0
        if self.phase != self.logged_phase:
            log.info("pod %s: %s -> %s%s", self.who, self.logged_phase or "(new)", self.phase,
                     f" ({self.reason})" if self.reason else "")
            self.logged_phase = self.phase
        return True

    def _retry_later(self) -> None:
        self._push_failures += 1
        self._next_push = time.monotonic() + min(0.2 * 2 ** self._push_failures, 10.0)

    def _push_final(self) -> None:
        deadline = time.monotonic() + 300
        while not self.gone and not self.node.stopping.is_set():
            if self._push():
                return
            if time.monotonic() > deadline:
                log.error("pod %s: could not write the final status; giving up", self.who)
                return
            time.sleep(0.1)

    def _report_unknown(self) -> None:
        """Containers we ran before a node restart are gone: report them like a kubelet."""
        pod = self.pod
        st = pod.get("status") or {}
        log.info("pod %s: was running before the node restarted; marking it Failed (ContainerStatusUnknown)",
                 self.who)
        unknown = _terminated(137, "ContainerStatusUnknown", MSG_UNKNOWN, None, None, None)

        def convert(statuses: list[Json]) -> list[Json]:
            out = []
            for cs in statuses:
                cs = dict(cs)
                state = cs.get("state") or {}
                last = cs.get("lastState") or {}
                if state.get("running") or (state.get("waiting") and last.get("terminated")):
                    cs["state"] = _full_state({"terminated": unknown})
                cs["ready"] = False
                cs["started"] = False
                out.append(cs)
            return out

        t = now_rfc3339()
        conds = [{"type": ctype, "status": "False", "lastProbeTime": None, "lastTransitionTime": t,
                  "reason": None, "message": None}
                 for ctype in ("PodReadyToStartContainers", "ContainersReady", "Ready")]
        status: Json = {"phase": "Failed", "conditions": conds,
                        "containerStatuses": convert(st.get("containerStatuses") or [])}
        if st.get("initContainerStatuses"):
            status["initContainerStatuses"] = convert(st["initContainerStatuses"])
        for attempt in range(20):
            try:
                self.kube.patch(_pod_path(self.ns, self.pod_name, "status"), {"metadata": {"uid": self.uid}, "status": status})
                log.info("pod %s: -> Failed (ContainerStatusUnknown)", self.who)
                return
            except ApiError as exc:
                if exc.status in (404, 422):
                    log.warning("pod %s: cannot mark Failed: %s", self.who, exc)
                    return
            except TransientError as exc:
                log.warning("pod %s: status update failed: %s", self.who, exc)
            if self.gone or self.node.stopping.wait(min(0.5 * 2**attempt, 10)):
                return


# ----------------------------------------------------------------------------------- log server
class LogHandler(BaseHTTPRequestHandler):
    server: LogServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)

    def _reply(self, code: int, text: str) -> None:
        body = (text.rstrip("\n") + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") in ("/healthz", "/healthz/ping"):
            self._reply(200, "ok")
            return
        m = re.fullmatch(r"/containerLogs/([^/]+)/([^/]+)/([^/]+)/?", parts.path)
        if not m:
            self._reply(404, f"404 page not found: {parts.path}")
            return
        ns, pod, ctr = (unquote(x) for x in m.groups())
        query = parse_qs(parts.query)

        def flag(name: str) -> bool:
            return query.get(name, ["false"])[0].lower() in ("true", "1")

        def number(name: str) -> int | None:
            try:
                return int(query[name][0]) if name in query else None
            except ValueError:
                return None

        previous = flag("previous")
        found = self.server.node.find_log(ns, pod, ctr, previous)
        if isinstance(found, tuple) and isinstance(found[0], int):
            self._reply(found[0], str(found[1]))
            return
        path, exited = found
        assert isinstance(path, Path)
        follow = flag("follow") and exited is not None
        tail = number("tailLines")
        limit = number("limitBytes")
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below, possibly after a long stream
        except OSError as exc:
            self._reply(404, f"cannot read log of container {ctr!r} in pod {ns}/{pod}: {exc.strerror}")
            return
        with f:
            f.seek(tail_offset(f, tail) if tail is not None and tail >= 0 else 0)
            if not follow:
                data = f.read()
                if limit is not None and limit >= 0:
                    data = data[:limit]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Connection", "close")
            self.end_headers()
            self._stream(f, exited, limit)

    def _stream(self, f: Any, exited: threading.Event | None, limit: int | None) -> None:
        sent = 0
        stopping = self.server.node.stopping
        try:
            while True:
                chunk = f.read(65536)
                if chunk:
                    if limit is not None and limit >= 0:
                        chunk = chunk[: max(0, limit - sent)]
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    sent += len(chunk)
                    if limit is not None and 0 <= limit <= sent:
                        return
                    continue
                if exited is None or exited.is_set() or stopping.is_set():
                    rest = f.read()
                    if rest:
                        self.wfile.write(rest if limit is None or limit < 0 else rest[: max(0, limit - sent)])
                    return
                exited.wait(0.2)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            return


class LogServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, node: LocalNode, port: int, cert: str, key: str) -> None:
        self.node = node
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        self.tls.verify_mode = ssl.CERT_NONE  # the apiserver's client certificate is not checked
        super().__init__((LOCAL_IP, port), LogHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the request's own thread, not in the accept loop.
        request.settimeout(60)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("http: TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
        finally:
            with contextlib.suppress(OSError):
                conn.close()


# ----------------------------------------------------------------------------------------- node
class LocalNode:
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
        self._transitions: dict[str, tuple[str, str]] = {}  # node condition type -> (status, lastTransitionTime)

    def service_env(self) -> dict[str, str]:
        """The ``kubernetes`` service's variables every container gets: the apiserver this node uses."""
        port = str(self.kube.service_port)
        return {"KUBERNETES_SERVICE_HOST": self.kube.service_host, "KUBERNETES_SERVICE_PORT": port,
                "KUBERNETES_SERVICE_PORT_HTTPS": port}

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
            ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
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
            out.append({"type": t, "status": s, "reason": r, "message": m, "lastHeartbeatTime": beat,
                        "lastTransitionTime": prev[1]})
        return out

    def _node_status(self) -> Json:
        return {
            "capacity": dict(CAPACITY),
            "allocatable": dict(CAPACITY),
            "addresses": [{"type": "InternalIP", "address": LOCAL_IP}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": self._node_info(),
            "conditions": self._conditions(),
        }

    def register_node(self) -> None:
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "jobline.dev/node-type": "local", "jobline.dev/node": "local"}
        # Tainted: a pod lands here only when it asks to (its image is ignored); the real node
        # (jobline-node) takes every other pod, as a cluster's nodes would.
        taints = [{"key": "jobline.dev/node", "value": "local", "effect": "NoSchedule"}]
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name, "labels": labels},
                "spec": {"taints": taints}}
        try:
            self.kube.request("POST", "/api/v1/nodes", body=body)
            log.info("node %s: created", self.name)
        except ApiError as exc:
            if exc.status != 409:
                raise
            node = self.kube.patch(f"/api/v1/nodes/{quote(self.name)}", {"metadata": {"labels": labels}}, "merge")
            for cond in (node or {}).get("status", {}).get("conditions") or []:
                if cond.get("type") and cond.get("lastTransitionTime"):  # keep transition times across restarts
                    self._transitions[str(cond["type"])] = (str(cond.get("status")), str(cond["lastTransitionTime"]))
            log.info("node %s: already registered, labels updated", self.name)
        self.kube.patch(f"/api/v1/nodes/{quote(self.name)}/status", {"status": self._node_status()})
        log.info("node %s: Ready (kubelet endpoint port %d)", self.name, self.port)

    def heartbeat(self) -> None:
        try:
            self.kube.patch(f"/api/v1/nodes/{quote(self.name)}/status", {"status": {"conditions": self._conditions()}})
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
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": "kube-node-lease", "ownerReferences": owner},
                "spec": spec}
        try:
            self.kube.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", body=body)
        except ApiError as exc:
            if exc.status == 404:  # no kube-node-lease namespace yet
                with contextlib.suppress(ApiError):
                    self.kube.request("POST", "/api/v1/namespaces", body={
                        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-node-lease"}})
                self.kube.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                                  body=body)
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
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                    "preconditions": {"uid": uid}}
            for attempt in range(30):
                try:
                    self.kube.request("DELETE", _pod_path(ns, name), body=body)
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
                    query = {"fieldSelector": selector, "resourceVersion": rv, "allowWatchBookmarks": "true",
                             "timeoutSeconds": "300"}
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
    def find_log(self, ns: str, pod: str, ctr: str, previous: bool) -> tuple[Path, threading.Event | None] | tuple[int, str]:
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
            _kill_group(pid, signal.SIGTERM)
        for w in workers:
            w.wake.set()
        deadline = time.monotonic() + NODE_STOP_GRACE
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            procs = dict(self._procs)
        for pid in procs:
            _kill_group(pid, signal.SIGKILL)
        for w in workers:
            w.join(max(0.0, deadline + 1.0 - time.monotonic()))


# ----------------------------------------------------------------------------------------- main
class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UTCFormatter("%(asctime)s %(levelname)-7s %(threadName)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.cluster.localnode", description=__doc__.split("\n")[0])
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--node-name", default="jobline-local")
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument("--port", required=True, type=int, help="HTTPS port for kubectl logs (127.0.0.1)")
    p.add_argument("--tls-cert", required=True)
    p.add_argument("--tls-key", required=True)
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _setup_logging(args.verbose)
    state_dir: Path = args.state_dir.resolve()
    (state_dir / "pods").mkdir(parents=True, exist_ok=True)
    node = LocalNode(Kube(args.kubeconfig), args.node_name, state_dir, args.port)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()
        node.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = LogServer(node, args.port, args.tls_cert, args.tls_key)
    log.info("local node %s starting (state %s, logs on https://%s:%d, pid %d)", args.node_name, state_dir,
             LOCAL_IP, args.port, os.getpid())
    node.start(server)
    while not stop.wait(0.5):
        pass
    node.shutdown()
    log.info("local node %s stopped", args.node_name)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
