"""What every fault test shares: the load it runs, the watches that see every attempt pod and every
scheduled run, the checks after the fault, and the table of results.

The checks (:meth:`Scenario.verify`), after each fault:

- every job reaches the final phase its handler implies (``expected``): a job that does not is *lost*;
- per job, ``status.attempts`` equals the number of distinct attempts (``jobline.dev/attempt``) among the
  pods a watch saw, numbered 1..attempts, and no attempt had two pods (two UIDs): a second pod for one
  attempt is *duplicated*, and so is a second QueuedJob for one instant of a JobSchedule;
- the operator recovered: ``/readyz`` ready and a probe job created after the fault succeeded, within
  :data:`RECOVERY_BOUND` seconds of the fault's end.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubernetes import client

from jobline import names
from jobline.core.cron import parse_schedule
from jobline.core.timefmt import parse
from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.e2e.workers import COMMAND, LOCAL_NODE_TOLERATION, REPO
from tests.kube import Api, Watch, Watches, create_schedule, wait_for

if TYPE_CHECKING:
    from tests.cluster.controlplane import Cluster
    from tests.faults.conftest import Profile

FINISHED = {"Succeeded", "Failed", "Cancelled", "Superseded"}
RECOVERY_BOUND = 60.0  # seconds from the end of a fault to a new job's success
FAST_RETRY = {"initialSeconds": 1, "factor": 1, "jitter": 0}
GROUP, VERSION = names.GROUP, names.VERSION


def template() -> dict[str, Any]:
    """Worker pods on the local node (processes running this checkout's test handlers)."""
    return {
        "image": "local",
        "command": COMMAND,
        "env": [{"name": "PYTHONPATH", "value": str(REPO)}],
        "nodeSelector": {"jobline.dev/node": "local"},
        "tolerations": [LOCAL_NODE_TOLERATION],
    }


# ------------------------------------------------------------------------------------------ results
@dataclass
class Row:
    fault: str
    load: str
    jobs: int
    lost: int
    duplicated: int
    recovery: float
    settle: float
    notes: str = ""


ROWS: list[Row] = []
HEADER = "| fault | load | jobs | lost | duplicated | recovery (s) | all final after (s) | notes |"


def format_row(r: Row) -> str:
    return (
        f"| {r.fault} | {r.load} | {r.jobs} | {r.lost} | {r.duplicated} | {r.recovery:.1f} "
        f"| {r.settle:.1f} | {r.notes} |"
    )


def print_table(rows: list[Row], profile: str) -> None:
    if not rows:
        return
    print(f"\nfault-injection results ({profile} profile; recovery bound {RECOVERY_BOUND:.0f}s)")
    print(HEADER)
    print("|" + "---|" * 8)
    for r in rows:
        print(format_row(r))


@dataclass
class FaultCluster:
    cp: Cluster
    handle: ClusterHandle
    api: Api
    op: OperatorProcess
    profile_name: str

    def synced_lines(self) -> int:
        """How often an operator's controller logged ``synced: N jobs, M queues`` (a full re-list), over
        the logs of every operator process this package started (the HA test runs two more)."""
        return sum(
            len(re.findall(r"\bsynced: \d+ jobs", log.read_text(errors="replace")))
            for log in self.op.log.parent.glob("operator*.log")
        )

    def apiserver_ready(self) -> bool:
        try:
            return self.api.raw("GET", "/readyz", timeout=3) == b"ok"
        except Exception:
            return False


# ------------------------------------------------------------------------------------------ watches
class Ledger:
    """Every attempt pod and every scheduled run of one namespace, as watches see them."""

    def __init__(self, api: Api, ns: str) -> None:
        self.lock = threading.Lock()
        self.pods: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.runs: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.watches = Watches()
        self.watches.add(
            Watch(
                api, f"/api/v1/namespaces/{ns}/pods", self._pod, label_selector=names.LABEL_JOB, name="pods"
            )
        )
        self.watches.add(
            Watch(
                api,
                f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{names.PLURAL_QUEUEDJOBS}",
                self._job,
                label_selector=names.LABEL_SCHEDULE,
                name="runs",
            )
        )

    def _pod(self, kind: str, obj: dict[str, Any], _: float) -> None:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        job = (meta.get("annotations") or {}).get(names.ANNOTATION_JOB_NAME) or labels.get(names.LABEL_JOB)
        attempt = labels.get(names.LABEL_ATTEMPT)
        if job and attempt and attempt.isdigit():
            with self.lock:
                self.pods[job][int(attempt)].add(meta["uid"])

    def _job(self, kind: str, obj: dict[str, Any], _: float) -> None:
        meta = obj.get("metadata") or {}
        instant = (meta.get("annotations") or {}).get(names.ANNOTATION_SCHEDULED_TIME)
        schedule = (meta.get("labels") or {}).get(names.LABEL_SCHEDULE)
        if instant and schedule:
            with self.lock:
                self.runs[(schedule, instant)].add(meta["uid"])

    def attempts_of(self, job: str) -> dict[int, int]:
        with self.lock:
            return {a: len(uids) for a, uids in self.pods.get(job, {}).items()}

    def duplicated_runs(self) -> dict[tuple[str, str], int]:
        with self.lock:
            return {k: len(v) for k, v in self.runs.items() if len(v) > 1}

    def stop(self) -> None:
        self.watches.stop()


# ------------------------------------------------------------------------------------------ the load
@dataclass
class Scenario:
    """One test's namespace: its queue, schedule, jobs (with the phase each must end in) and watches."""

    fc: FaultCluster
    ns: str
    profile: Profile
    fault: str
    seed: int = 0
    expected: dict[str, str] = field(default_factory=dict)
    schedules: list[str] = field(default_factory=list)
    probes: int = 0
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.jobs = Jobs(self.fc.handle, self.ns)
        self.rng = random.Random(self.seed)
        self.ledger = Ledger(self.fc.api, self.ns)
        self.jobs.queue(concurrency=self.profile.concurrency, template=template())
        # Probes have a queue of their own: they measure the operator, not the backlog of the load.
        self.jobs.queue("probe", concurrency=1, template=template())

    @property
    def load(self) -> str:
        return f"{self.profile.jobs} jobs, conc {self.profile.concurrency}, @every 5s schedule"

    def schedule(self, name: str = "tick", every: str = "@every 5s") -> None:
        spec = {
            "schedule": every,
            "successfulJobsHistoryLimit": 1000,
            "failedJobsHistoryLimit": 1000,
            "jobTemplate": {"spec": {"handler": "echo", "payload": {"tick": True}, "retry": {"limit": 3}}},
        }
        create_schedule(self.fc.handle.custom, self.ns, name, spec)
        self.schedules.append(name)

    def create(self, name: str, handler: str, expect: str, payload: Any = None, **spec: Any) -> None:
        """Create one job (retrying through an apiserver that is just coming back)."""

        def once() -> bool:
            try:
                self.jobs.create(name, handler, payload, **spec)
            except client.ApiException as exc:
                if exc.status != 409:  # 409: an earlier try got through
                    raise
            return True

        wait_for(once, 60, f"creating job {name}", interval=0.5)
        self.expected[name] = expect

    def create_mix(self, count: int, prefix: str = "j") -> list[str]:
        """``count`` jobs of a fixed mix (per 20: 10 echo, 3 sleep, 2 flaky, 2 fail, 1 timeout, 2 dependsOn)."""
        kinds = ["echo"] * 10 + ["sleep"] * 3 + ["flaky"] * 2 + ["fail"] * 2 + ["timeout"] + ["dep"] * 2
        made: list[str] = []
        last_echo: str | None = None
        start = len(self.expected)
        for i in range(count):
            kind = kinds[(start + i) % len(kinds)]
            name = f"{prefix}{start + i:04d}-{kind}"
            retry = {"limit": 3, "backoff": FAST_RETRY}
            if kind == "echo" or (kind == "dep" and last_echo is None):
                self.create(name, "echo", "Succeeded", {"i": i}, retry=retry)
                last_echo = name
            elif kind == "sleep":
                seconds = round(self.rng.uniform(1, 3), 1)
                self.create(name, "sleep", "Succeeded", {"seconds": seconds, "steps": 2}, retry=retry)
            elif kind == "flaky":
                self.create(name, "flaky", "Succeeded", {"succeedOn": 2}, retry=retry)
            elif kind == "fail":
                self.create(name, "fail", "Failed", retry={"limit": 1, "backoff": FAST_RETRY})
            elif kind == "timeout":
                self.create(name, "sleep", "Failed", {"seconds": 60}, timeoutSeconds=2, retry={"limit": 0})
            else:
                self.create(name, "dependencies", "Succeeded", dependsOn=[last_echo], retry=retry)
            made.append(name)
        return made

    # -------------------------------------------------------------------------------- reading
    def all_jobs(self) -> dict[str, dict[str, Any]]:
        items = self.fc.handle.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.ns, names.PLURAL_QUEUEDJOBS, _request_timeout=20
        )["items"]
        return {j["metadata"]["name"]: j for j in items}

    def running_pods(self) -> list[client.V1Pod]:
        pods = self.fc.handle.core.list_namespaced_pod(
            self.ns,
            label_selector=names.LABEL_JOB,
            field_selector="status.phase=Running",
            _request_timeout=20,
        ).items
        return [p for p in pods if p.metadata.deletion_timestamp is None]

    def hit_running(self, count: int, hit: Callable[[client.V1Pod], bool], what: str) -> None:
        """Apply ``hit`` to running attempt pods, each job's at most once, until ``count`` jobs were hit
        (``hit`` returns False when the pod had gone meanwhile: it does not count)."""
        done: set[str] = set()

        def more() -> bool:
            for pod in self.running_pods():
                job = pod.metadata.labels.get(names.LABEL_JOB)
                if job not in done and len(done) < count and hit(pod):
                    done.add(job)
            return len(done) >= count

        wait_for(more, 120, f"{count} running attempts to {what}", interval=0.3)

    def count_phase(self, phase: str, reason: str | None = None) -> int:
        return sum(
            1
            for j in self.all_jobs().values()
            if (j.get("status") or {}).get("phase") == phase
            and (reason is None or (j.get("status") or {}).get("waitingReason") == reason)
        )

    # -------------------------------------------------------------------------------- recovery
    def recover(self, fault_end: float) -> float:
        """Seconds from ``fault_end`` (monotonic) until the operator is ready and a new job succeeded."""
        wait_for(self.fc.apiserver_ready, 60, "the apiserver to answer /readyz")
        wait_for(self.fc.op.ready, RECOVERY_BOUND, "the operator's /readyz")
        self.probes += 1
        name = f"probe-{self.probes}"
        self.create(name, "echo", "Succeeded", {"probe": self.probes}, queue="probe")
        wait_for(lambda: self.ledger.attempts_of(name), RECOVERY_BOUND, f"the pod of {name}", interval=0.1)
        self.notes.append(f"probe pod created {time.monotonic() - fault_end:.1f}s after the fault")
        self.jobs.wait_phase(name, "Succeeded", timeout=RECOVERY_BOUND)
        return time.monotonic() - fault_end

    # -------------------------------------------------------------------------------- the checks
    def verify(self, fault_end: float, recovery: float, synced_before: int) -> Row:
        for name in self.schedules:  # no new runs while we count
            wait_for(
                lambda name=name: self.fc.handle.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.ns, names.PLURAL_JOBSCHEDULES, name, {"spec": {"suspend": True}}
                ),
                30,
                f"suspending schedule {name}",
            )
        deadline = time.monotonic() + self.profile.settle
        jobs: dict[str, dict[str, Any]] = {}
        settled_at: float | None = None
        while time.monotonic() < deadline:
            try:
                jobs = self.all_jobs()
            except Exception:
                time.sleep(1)
                continue
            if all((j.get("status") or {}).get("phase") in FINISHED for j in jobs.values()):
                settled_at = time.monotonic()
                break
            time.sleep(1)
        settle = (settled_at or time.monotonic()) - fault_end
        for name, job in jobs.items():
            if (job.get("metadata", {}).get("labels") or {}).get(names.LABEL_SCHEDULE):
                self.expected.setdefault(name, "Succeeded")

        def attempts_match() -> bool:
            return all(
                len(self.ledger.attempts_of(n)) == (j.get("status") or {}).get("attempts", 0)
                for n, j in jobs.items()
            )

        # The pod watch may lag the jobs' status a little: give it a few seconds to catch up.
        with contextlib.suppress(AssertionError):
            wait_for(attempts_match, 15, "the pod watch to see every attempt", interval=0.5)
        lost: dict[str, str] = {}
        dup: dict[str, Any] = {}
        mismatch: dict[str, Any] = {}
        for name, want in self.expected.items():
            job = jobs.get(name)
            status = (job or {}).get("status") or {}
            got = status.get("phase") if job else "missing"
            if got != want:
                lost[name] = f"{got} ({status.get('waitingReason') or status.get('reason')}), want {want}"
        for name, job in jobs.items():
            status = job.get("status") or {}
            seen = self.ledger.attempts_of(name)
            doubled = {a: n for a, n in seen.items() if n > 1}
            if doubled:
                dup[name] = doubled
            attempts = status.get("attempts", 0)
            if sorted(seen) != list(range(1, attempts + 1)):
                mismatch[name] = f"status.attempts={attempts}, pods seen for attempts {sorted(seen)}"
        dup_runs = self.ledger.duplicated_runs()
        with contextlib.suppress(AssertionError):  # the schedule's status may lag its last run a little
            wait_for(lambda: not self.schedule_accounting()[0], 15, "the schedules' status")
        accounting, counted = self.schedule_accounting()
        self.notes += counted
        synced = self.fc.synced_lines() - synced_before
        notes = [*self.notes, f"re-synced {synced}x"]
        if mismatch:
            notes.append(f"{len(mismatch)} attempt-count mismatches")
        row = Row(
            self.fault,
            self.load,
            len(jobs),
            len(lost),
            sum(n - 1 for d in dup.values() for n in d.values()) + sum(n - 1 for n in dup_runs.values()),
            recovery,
            settle,
            "; ".join(notes),
        )
        ROWS.append(row)
        print("\n" + HEADER + "\n" + format_row(row))
        self.ledger.stop()
        self.problems = {
            "lost": lost,
            "duplicated attempts": dup,
            "duplicated runs": dup_runs,
            "attempts vs pods": mismatch,
            "scheduled instants not accounted for": accounting,
        }
        return row

    def schedule_accounting(self) -> tuple[dict[str, str], list[str]]:
        """Per schedule, every instant it handled either ran once or was counted in ``missedRuns``:
        the instants of ``spec.schedule`` in (creation, lastScheduleTime] (the pure cron math of
        jobline.core.cron, tested against croniter's and Kubernetes' vectors) = ``runCount`` +
        ``missedRuns``, ``runCount`` = the runs the watch saw, each at one of those instants."""
        wrong: dict[str, str] = {}
        counted: list[str] = []
        for name in self.schedules:
            obj = self.fc.handle.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.ns, names.PLURAL_JOBSCHEDULES, name
            )
            spec, st = obj["spec"], obj.get("status") or {}
            created = parse(obj["metadata"]["creationTimestamp"])
            sched = parse_schedule(spec["schedule"], spec.get("timeZone"), anchor=created)
            last = parse(st["lastScheduleTime"]) if st.get("lastScheduleTime") else created
            instants = set(sched.times_between(created, last))
            with self.ledger.lock:
                seen = {parse(i) for (s, i) in self.ledger.runs if s == name}
            runs, missed = st.get("runCount", 0), st.get("missedRuns", 0)
            if len(instants) != runs + missed or len(seen) != runs or not seen <= instants:
                wrong[name] = (
                    f"{len(instants)} instants up to {st.get('lastScheduleTime')}, runCount {runs}, "
                    f"missedRuns {missed}, {len(seen)} runs seen, {len(seen - instants)} at other instants"
                )
            else:
                counted.append(f"{runs} runs + {missed} missed = {len(instants)} instants")
        return wrong, counted

    def assert_clean(self) -> None:
        problems = {k: v for k, v in self.problems.items() if v}
        assert not problems, f"{self.fault}: {problems}"
        last = ROWS[-1]
        assert last.recovery <= RECOVERY_BOUND, f"recovery {last.recovery:.1f}s > {RECOVERY_BOUND}s"


def hold(seconds: float) -> None:
    """Keep a fault in place (the one sleep these tests use: not a synchronisation)."""
    time.sleep(seconds)


__all__ = ["FaultCluster", "Ledger", "Row", "Scenario", "hold", "print_table"]
