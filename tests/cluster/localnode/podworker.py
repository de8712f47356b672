"""The pod worker: one thread per pod bound to the node, from acceptance to a terminal phase.

The kubelet's pod lifecycle in one place, because its rules interlock: init containers (and
restartable sidecars) before the containers, ``restartPolicy`` with back-off, graceful deletion,
``activeDeadlineSeconds``, the phase and conditions computed from the containers' states, and the
status written through ``pods/status`` (only when it changed, retried with back-off). How a container
is started is :mod:`.containers`, its environment :mod:`.environment`, the pod's volumes :mod:`.volumes`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .api import ApiError, Json, TransientError, now_rfc3339, parse_time, pod_path
from .containers import Container, StartError, full_state, kill_group, terminated
from .environment import ConfigError, build_env, expand
from .identity import LOCAL_IP
from .volumes import PodVolumes, VolumeError

if TYPE_CHECKING:
    from .node import LocalNode

log = logging.getLogger("localnode")

TERMINAL = ("Succeeded", "Failed")
MSG_NO_COMMAND = "local node runs only containers with an explicit command"
MSG_UNKNOWN = "The container could not be located when the pod was terminated"
MSG_DEADLINE = "Pod was active on the node longer than the specified deadline"
BACKOFF_CAP = 10.0
BACKOFF_RESET_AFTER = 60.0  # a container that ran this long restarts without back-off
CONFIG_RETRY = 3.0  # CreateContainerConfigError is retried this often
VOLUME_RETRY = (
    1.0  # ... and this often when a volume cannot be set up yet (kube-root-ca.crt not yet published)
)
NODE_STOP_GRACE = 2.0
MIN_KILL_GRACE = 2.0  # like a kubelet: a pod removed outright still gets SIGTERM, SIGKILL 2 s later
TICK = 0.1


def started_before(pod: Json) -> bool:
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
        self.volumes = PodVolumes(self.kube, self.pod_dir / "volumes", node.name)
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
                    kill_group(c.inst.pid, signal.SIGKILL)
            if (
                not self.gone
                and not self.node.stopping.is_set()
                and self.pod["metadata"].get("deletionTimestamp")
            ):
                self.node.delete_pod(self.ns, self.pod_name, self.uid)

    def _run(self) -> None:
        if started_before(self.pod):
            self._report_unknown()
            return
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        log.info(
            "pod %s (uid %s): accepted, %d init container(s), %d container(s), restartPolicy %s",
            self.who,
            self.uid,
            len(self.inits),
            len(self.mains),
            self.restart_policy,
        )
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
            kill_group(inst.pid, signal.SIGKILL)  # like a container's pid 1: its exit ends the rest
            self.node.unregister(inst.pid)
            message = c.termination_message(code)
            c.inst = None
            inst.exited.set()
            term = terminated(
                code,
                "Completed" if code == 0 else "Error",
                message,
                inst.started_at,
                now_rfc3339(),
                c.container_id,
            )
            self._on_terminated(c, term, allow_restart, time.monotonic() - inst.started_mono)

    def _on_terminated(self, c: Container, term: Json, allow_restart: bool, ran: float) -> None:
        code = int(term["exitCode"])
        c.attempts += 1
        c.exit_code = code
        c.state = {"terminated": term}
        # The termination message may carry anything the workload wrote: log its size, not its text.
        log.info(
            "pod %s container %s: terminated, exit code %d (%s), message of %d bytes",
            self.who,
            c.name,
            code,
            term["reason"],
            len(term.get("message") or ""),
        )
        if allow_restart and not self.stopping and self._should_restart(c, code):
            c.backoff = (
                1.0 if c.backoff == 0 or ran > BACKOFF_RESET_AFTER else min(c.backoff * 2, BACKOFF_CAP)
            )
            c.next_start = time.monotonic() + c.backoff
            c.last_state = {"terminated": term}
            c.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {c.backoff:g}s restarting failed container={c.name} "
                    f"pod={self.pod_name}_{self.ns}({self.uid})",
                }
            }
            log.info(
                "pod %s container %s: restarting in %gs (restartPolicy %s)",
                self.who,
                c.name,
                c.backoff,
                self.restart_policy,
            )
        else:
            c.done = True
            if c.init and not c.sidecar and code != 0:
                self.init_failed = True

    # ---------------------------------------------------------------------------- starting
    def _start(self, c: Container) -> None:
        spec = c.spec
        command = [str(a) for a in spec.get("command") or []]
        if not command:
            t = now_rfc3339()
            log.warning("pod %s container %s: has no command", self.who, c.name)
            self._on_terminated(
                c, terminated(128, "ContainerCannotRun", MSG_NO_COMMAND, t, t, None), True, 0.0
            )
            return
        pod = self.pod
        try:
            env, k8s_env = build_env(self.kube, pod, spec, self.node.name, self.node.service_env())
            mounts = self.volumes.mounts(pod, spec, k8s_env)
        except ConfigError as exc:
            message = str(exc)
            if (c.state.get("waiting") or {}).get("message") != message:
                log.warning("pod %s container %s: CreateContainerConfigError: %s", self.who, c.name, message)
            c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
            c.next_start = time.monotonic() + (VOLUME_RETRY if isinstance(exc, VolumeError) else CONFIG_RETRY)
            return
        argv = [expand(a, k8s_env) for a in command + [str(a) for a in spec.get("args") or []]]
        try:
            inst = c.launch(argv, env, mounts, self.node)
        except StartError as exc:
            self._start_error(c, str(exc))
            return
        log.info(
            "pod %s container %s: running, pid %d%s",
            self.who,
            c.name,
            inst.pid,
            f", restart {c.restart_count}" if c.restart_count else "",
        )

    def _start_error(self, c: Container, message: str) -> None:
        log.warning("pod %s container %s: StartError: %s", self.who, c.name, message)
        t = now_rfc3339()
        self._on_terminated(c, terminated(128, "StartError", message, t, t, None), True, 0.0)

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
            kill_group(c.inst.pid, signal.SIGTERM)
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
                    kill_group(c.inst.pid, signal.SIGKILL)
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
        ok = (
            bool(self.mains) and all(c.done and c.exit_code == 0 for c in self.mains) and not self.init_failed
        )
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
                c.state = {
                    "terminated": terminated(
                        128, "LocalNodeError", f"local node error: {exc}"[:1000], t, t, c.container_id
                    )
                }
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
        return {
            "type": ctype,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": prev[1],
            "reason": reason,
            "message": message,
        }

    def _conditions(self) -> list[Json]:
        terminal = self.phase in TERMINAL
        pending_init = [
            c.name
            for c in self.inits
            if not ((c.sidecar and c.ever_started) or (c.done and c.exit_code == 0))
        ]
        unready = [c.name for c in self.containers if (c.sidecar or not c.init) and c.inst is None]
        conds = [self._condition("PodReadyToStartContainers", not terminal)]
        if pending_init:
            conds.append(
                self._condition(
                    "Initialized",
                    False,
                    "ContainersNotInitialized",
                    f"containers with incomplete status: [{' '.join(pending_init)}]",
                )
            )
        else:
            conds.append(
                self._condition("Initialized", True, "PodCompleted" if self.phase == "Succeeded" else None)
            )
        for ctype in ("ContainersReady", "Ready"):
            if self.phase == "Succeeded":
                conds.append(self._condition(ctype, False, "PodCompleted"))
            elif unready:
                conds.append(
                    self._condition(
                        ctype,
                        False,
                        "ContainersNotReady",
                        f"containers with unready status: [{' '.join(unready)}]",
                    )
                )
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
            self.kube.patch(
                pod_path(self.ns, self.pod_name, "status"), {"metadata": {"uid": self.uid}, "status": status}
            )
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
            log.info(
                "pod %s: %s -> %s%s",
                self.who,
                self.logged_phase or "(new)",
                self.phase,
                f" ({self.reason})" if self.reason else "",
            )
            self.logged_phase = self.phase
        return True

    def _retry_later(self) -> None:
        self._push_failures += 1
        self._next_push = time.monotonic() + min(0.2 * 2**self._push_failures, 10.0)

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
        log.info(
            "pod %s: was running before the node restarted; marking it Failed (ContainerStatusUnknown)",
            self.who,
        )
        unknown = terminated(137, "ContainerStatusUnknown", MSG_UNKNOWN, None, None, None)

        def convert(statuses: list[Json]) -> list[Json]:
            out = []
            for cs in statuses:
                cs = dict(cs)
                state = cs.get("state") or {}
                last = cs.get("lastState") or {}
                if state.get("running") or (state.get("waiting") and last.get("terminated")):
                    cs["state"] = full_state({"terminated": unknown})
                cs["ready"] = False
                cs["started"] = False
                out.append(cs)
            return out

        t = now_rfc3339()
        conds = [
            {
                "type": ctype,
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": t,
                "reason": None,
                "message": None,
            }
            for ctype in ("PodReadyToStartContainers", "ContainersReady", "Ready")
        ]
        status: Json = {
            "phase": "Failed",
            "conditions": conds,
            "containerStatuses": convert(st.get("containerStatuses") or []),
        }
        if st.get("initContainerStatuses"):
            status["initContainerStatuses"] = convert(st["initContainerStatuses"])
        for attempt in range(20):
            try:
                self.kube.patch(
                    pod_path(self.ns, self.pod_name, "status"),
                    {"metadata": {"uid": self.uid}, "status": status},
                )
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
