"""Step tests of the two controller loops against an in-memory apiserver (tests/unit/fakekube.py) and a
clock moved by hand: feed objects, ``sync()``, ``step()``, look at what the apiserver holds.

Only the loops' public surface is used (constructor with kube/namespaces/clock, on_*, sync, step,
stats), so the tests hold while the loops' insides move.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from jobline import names
from jobline.controller.loop import Controller
from jobline.controller.schedules import ScheduleLoop
from jobline.core.cron import manual_run_name, run_name
from jobline.core.timefmt import fmt, parse
from jobline.kube import KubeError

from .fakekube import Clock, FakeKube

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
NS = "apps"
_T = TypeVar("_T")


def go(test: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    return asyncio.run(test())


async def settle() -> None:
    """Let the loops' background tasks (Events, deferred status writes) finish: no sleeping."""
    for _ in range(20):
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if not tasks:
            return
        await asyncio.gather(*tasks)


def queue(name: str = "q", **spec: Any) -> dict[str, Any]:
    spec.setdefault("template", {"image": "worker:1"})
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_JOBQUEUE,
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def job(name: str, queue_name: str = "q", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_QUEUEDJOB,
        "metadata": {"name": name, "namespace": NS},
        "spec": {"queue": queue_name, "handler": "echo", "payload": {"job": name}, **spec},
    }


class World:
    """One fake apiserver, one clock, one controller."""

    def __init__(self) -> None:
        self.clock = Clock(T0)
        self.kube = FakeKube(self.clock)
        self.controller = Controller(self.kube, namespaces=None, clock=self.clock)

    def put(self, *objs: dict[str, Any], spacing: float = 1.0) -> None:
        """Create objects one ``spacing`` apart (creation order decides ties in dispatch)."""
        for obj in objs:
            self.kube.put(obj)
            self.clock.advance(spacing)

    async def step(self) -> None:
        await self.controller.step()
        await settle()

    def status(self, name: str) -> dict[str, Any]:
        obj = self.kube.get("QueuedJob", NS, name)
        assert obj is not None, f"job {name} is gone"
        return dict(obj.get("status") or {})

    def pods(self) -> dict[str, dict[str, Any]]:
        return {p["metadata"]["name"]: p for p in self.kube.all("pods", NS)}

    def started(self) -> set[str]:
        return {p["metadata"]["annotations"][names.ANNOTATION_JOB_NAME] for p in self.pods().values()}

    def running_pods(self) -> set[str]:
        return {n for n, p in self.pods().items() if p["status"]["phase"] not in ("Succeeded", "Failed")}

    def end_pod(self, name: str, phase: str, exit_code: int, message: str | None = None) -> None:
        """The kubelet reports the worker container's end; the pod watch brings it to the controller."""
        finished = fmt(self.clock())

        def change(pod: dict[str, Any]) -> None:
            terminated: dict[str, Any] = {
                "exitCode": exit_code,
                "reason": "Completed" if exit_code == 0 else "Error",
                "finishedAt": finished,
            }
            if message is not None:
                terminated["message"] = message
            pod["status"] = {
                "phase": phase,
                "startTime": pod["metadata"]["creationTimestamp"],
                "containerStatuses": [{"name": names.WORKER_CONTAINER, "state": {"terminated": terminated}}],
            }

        self.controller.on_pod("MODIFIED", self.kube.update("pods", NS, name, change))

    def event_reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in self.kube.events if e["involvedObject"]["name"] == name]


# ======================================================================================= the job loop
DISPATCH = [
    # id, queue spec, jobs (name, priority) in creation order -> jobs started
    pytest.param({}, [("a", None), ("b", None), ("c", None)], {"a", "b", "c"}, id="no-limit-starts-all"),
    pytest.param(
        {"concurrency": 2},
        [("a", None), ("b", None), ("c", None), ("d", None), ("e", None)],
        {"a", "b"},
        id="concurrency-2-oldest-first",
    ),
    pytest.param({"concurrency": 1}, [("low", 0), ("high", 10), ("mid", 5)], {"high"}, id="priority-first"),
    pytest.param(
        {"concurrency": 2},
        [("low", -1), ("old", None), ("new", None)],
        {"old", "new"},
        id="default-priority-0-beats-negative",
    ),
    pytest.param(
        {"concurrency": 2, "defaults": {"priority": 5}},
        [("a", None), ("b", 3), ("c", None)],
        {"a", "c"},
        id="queue-default-priority",
    ),
    pytest.param({"concurrency": 0}, [("a", None)], set(), id="concurrency-0"),
    pytest.param({"paused": True}, [("a", None), ("b", 9)], set(), id="paused-queue-starts-nothing"),
]


@pytest.mark.parametrize(("queue_spec", "jobs", "started"), DISPATCH)
def test_dispatch(queue_spec: dict[str, Any], jobs: list[tuple[str, int | None]], started: set[str]) -> None:
    async def test() -> None:
        w = World()
        w.put(queue(**queue_spec))
        w.put(*(job(n) if p is None else job(n, priority=p) for n, p in jobs))
        await w.controller.sync()
        await w.step()
        assert w.started() == started
        assert w.controller.stats["dispatched"] == len(started)
        for name, _ in jobs:
            st = w.status(name)
            if name in started:
                assert st["phase"] == "Running" and st["attempts"] == 1 and st["podName"] == f"{name}-1"
            else:
                assert st["phase"] == "Pending" and st.get("attempts", 0) == 0
                assert st.get("waitingReason") == ("QueuePaused" if queue_spec.get("paused") else None)
        await w.step()  # nothing changed: nothing more starts
        assert w.started() == started

    go(test)


def test_a_started_job_runs_in_a_pod_of_the_contract() -> None:
    async def test() -> None:
        w = World()
        w.put(queue(defaults={"timeoutSeconds": 120}), job("report", priority=3))
        await w.controller.sync()
        await w.step()
        uid = w.kube.get("QueuedJob", NS, "report")["metadata"]["uid"]  # type: ignore[index]
        pod = w.pods()["report-1"]
        assert pod["metadata"]["labels"][names.LABEL_JOB] == "report"
        assert pod["metadata"]["labels"][names.LABEL_ATTEMPT] == "1"
        assert pod["metadata"]["ownerReferences"][0]["uid"] == uid
        assert pod["spec"]["activeDeadlineSeconds"] == 120 and pod["spec"]["restartPolicy"] == "Never"
        env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
        assert env[names.ENV_JOB] == "report" and env[names.ENV_ATTEMPT] == "1"
        st = w.status("report")
        assert st["phase"] == "Running" and st["startedAt"] == fmt(w.clock())
        assert st["attemptHistory"] == [{"attempt": 1, "pod": "report-1", "startedAt": fmt(w.clock())}]
        # Labels are written once, when the job finishes: no label write while it runs.
        assert not (w.kube.get("QueuedJob", NS, "report") or {})["metadata"].get("labels")
        assert not [c for c in w.kube.calls_to("PATCH", "/queuedjobs/report") if c.path.endswith("/report")]
        assert w.event_reasons("report") == ["Started"]
        # The status went straight to Running: no "Pending" write for a job that started in the same step.
        phases = [
            c.body["status"].get("phase") for c in w.kube.calls_to("PATCH", "/queuedjobs/report/status")
        ]
        assert phases == ["Running"]

    go(test)


def test_concurrency_holds_while_jobs_finish_in_priority_order() -> None:
    async def test() -> None:
        w = World()
        w.put(queue(concurrency=1), job("c", priority=1), job("a", priority=3), job("b", priority=2))
        await w.controller.sync()
        await w.step()
        order = []
        for _ in range(3):
            (pod,) = w.running_pods()  # never more than one at a time
            order.append(pod.rsplit("-", 1)[0])
            w.clock.advance(5)
            w.end_pod(pod, "Succeeded", 0, '{"ok": true}')
            await w.step()
        assert order == ["a", "b", "c"]
        assert not w.running_pods()
        for name in "abc":
            st = w.status(name)
            assert st["phase"] == "Succeeded" and st["result"] == {"ok": True} and st["progress"] == 100
            assert w.event_reasons(name) == ["Started", "Succeeded"]

    go(test)


def test_a_finished_job_frees_its_slot_even_when_its_queue_mark_was_used_up() -> None:
    """A pod's end that arrives while a step awaits its writes marks its job and its queue; that step's
    dispatch consumes the queue's mark before the job is planned. The step that plans the job must still
    dispatch its queue (this left a waiting job without a start for 90 s in CI)."""

    async def test() -> None:
        w = World()
        w.put(queue(concurrency=1), job("a"), job("b"))
        await w.controller.sync()
        await w.step()
        (pod,) = w.running_pods()
        w.end_pod(pod, "Succeeded", 0, "{}")
        w.controller.dirty_queues.clear()  # as if an earlier step's dispatch had taken the mark
        await w.step()
        assert w.status("a")["phase"] == "Succeeded"
        assert w.started() == {"a", "b"}  # b started in the same step

    go(test)


def test_failed_attempt_backs_off_then_retries_when_the_clock_passes_next_attempt_at() -> None:
    async def test() -> None:
        w = World()
        retry = {"limit": 1, "backoff": {"initialSeconds": 30, "factor": 2, "jitter": 0}}
        w.put(queue(defaults={"retry": retry}), job("flaky"))
        await w.controller.sync()
        await w.step()
        w.clock.advance(5)
        failed_at = w.clock()
        w.end_pod("flaky-1", "Failed", 1, "Traceback: boom")
        await w.step()
        st = w.status("flaky")
        assert st["phase"] == "Waiting" and st["waitingReason"] == "BackingOff"
        assert parse(st["nextAttemptAt"]) == failed_at + timedelta(seconds=30)
        assert st["failedAttempts"] == 1 and "boom" in st["lastError"]
        assert w.event_reasons("flaky") == ["Started", "AttemptFailed", "Retrying"]

        w.clock.advance(29)
        await w.step()
        assert set(w.pods()) == {"flaky-1"} and w.status("flaky")["phase"] == "Waiting"

        w.clock.advance(1)  # nextAttemptAt: the timer wakes the job, the dispatcher starts attempt 2
        await w.step()
        assert set(w.pods()) == {"flaky-1", "flaky-2"}
        st = w.status("flaky")
        assert st["phase"] == "Running" and st["attempts"] == 2 and st["podName"] == "flaky-2"
        env = {e["name"]: e["value"] for e in w.pods()["flaky-2"]["spec"]["containers"][0]["env"]}
        assert env[names.ENV_ATTEMPT] == "2"

        w.clock.advance(5)
        w.end_pod("flaky-2", "Failed", 1)
        await w.step()  # retry.limit 1 used up: dead letter
        st = w.status("flaky")
        assert st["phase"] == "Failed" and st["deadLettered"] is True
        assert [c["reason"] for c in st["conditions"] if c["type"] == "Failed"] == ["RetriesExhausted"]
        assert w.kube.get("QueuedJob", NS, "flaky")["metadata"]["labels"][names.LABEL_PHASE] == "Failed"  # type: ignore[index]
        assert w.event_reasons("flaky")[-2:] == ["Failed", "DeadLettered"]
        w.clock.advance(3600)
        await w.step()
        assert set(w.pods()) == {"flaky-1", "flaky-2"}

    go(test)


def test_permanent_exit_code_fails_without_retry() -> None:
    async def test() -> None:
        w = World()
        w.put(queue(), job("bad"))
        await w.controller.sync()
        await w.step()
        w.end_pod("bad-1", "Failed", names.EXIT_PERMANENT)
        await w.step()
        st = w.status("bad")
        assert st["phase"] == "Failed" and st["failedAttempts"] == 1
        assert [c["reason"] for c in st["conditions"] if c["type"] == "Failed"] == ["PermanentError"]
        assert set(w.pods()) == {"bad-1"}

    go(test)


def test_ttl_after_finished_deletes_the_job() -> None:
    async def test() -> None:
        w = World()
        w.put(queue(), job("short", ttlSecondsAfterFinished=60))
        await w.controller.sync()
        await w.step()
        w.end_pod("short-1", "Succeeded", 0)
        await w.step()
        uid = w.kube.get("QueuedJob", NS, "short")["metadata"]["uid"]  # type: ignore[index]
        w.clock.advance(59)
        await w.step()
        assert w.kube.get("QueuedJob", NS, "short") is not None
        w.clock.advance(1)
        await w.step()
        assert w.kube.get("QueuedJob", NS, "short") is None
        (delete,) = w.kube.calls_to("DELETE", "/queuedjobs/short")
        assert delete.body["preconditions"] == {"uid": uid}
        assert w.event_reasons("short")[-1] == "Deleted"

    go(test)


@pytest.mark.parametrize(
    ("queue_obj", "job_obj", "reason", "dead_letter"),
    [
        # a retry can succeed once the queue has an image: a dead letter (docs/queuedjobs.md's rule)
        pytest.param(queue(template={}), job("j"), "NoImage", True, id="no-image-anywhere"),
        # the input itself is wrong: a new job, not a retry
        pytest.param(queue(), job("j", handler="Not A Handler!"), "InvalidSpec", False, id="unreadable-spec"),
    ],
)
def test_jobs_that_cannot_run_fail_with_a_reason(
    queue_obj: dict[str, Any], job_obj: dict[str, Any], reason: str, dead_letter: bool
) -> None:
    async def test() -> None:
        w = World()
        w.put(queue_obj, job_obj)
        await w.controller.sync()
        await w.step()
        st = w.status("j")
        assert st["phase"] == "Failed" and st["deadLettered"] is dead_letter
        assert [c["reason"] for c in st["conditions"] if c["type"] == "Failed"] == [reason]
        assert w.pods() == {}

    go(test)


def test_a_job_without_a_queue_may_not_bring_its_own_image() -> None:
    """The image is the queue owner's decision (jobOverrides): without a queue there is none to allow it."""

    async def test() -> None:
        w = World()
        w.put(job("solo", queue_name="nowhere", template={"image": "own:1"}))
        w.clock.advance(60)  # past the grace for a queue whose watch event is late
        await w.controller.sync()
        await w.step()
        st = w.status("solo")
        failed = next(c for c in st["conditions"] if c["type"] == "Failed")
        assert st["phase"] == "Failed" and failed["reason"] == "OverrideNotAllowed", st
        assert failed["message"].startswith("spec.template.image: there is no JobQueue nowhere"), failed
        assert w.pods() == {}

    go(test)


def test_the_dispatcher_judges_overrides_again_at_each_start() -> None:
    """Admission fails open, and a queue may narrow its list after the job was created."""

    async def test_narrowed() -> None:
        w = World()
        w.put(
            queue("q", template={"image": "q:1"}, jobOverrides=["env", "args", "resources"]),
            job("j", template={"securityContext": {"runAsUser": 0}, "image": "mine:1"}),
        )
        await w.controller.sync()
        await w.step()
        st = w.status("j")
        failed = next(c for c in st["conditions"] if c["type"] == "Failed")
        assert failed["reason"] == "OverrideNotAllowed" and st["deadLettered"] is True, st
        assert "spec.template.image: JobQueue q does not let its jobs set image" in failed["message"]
        assert "also spec.template.securityContext" in failed["message"]
        assert w.pods() == {}

    async def test_allowed() -> None:
        w = World()
        w.put(
            queue("q", template={"image": "q:1"}, jobOverrides=["image", "payloadFrom"]),
            job(
                "j",
                template={"image": "mine:1"},
                payload=None,
                payloadFrom={"secretKeyRef": {"name": "s", "key": "k"}},
            ),
        )
        await w.controller.sync()
        await w.step()
        p = w.pods()["j-1"]
        assert p["spec"]["containers"][0]["image"] == "mine:1"
        assert {v["name"] for v in p["spec"]["volumes"]} == {"jobline-payload"}

    go(test_narrowed)
    go(test_allowed)


def test_a_pod_create_that_fails_is_tried_again() -> None:
    async def test() -> None:
        w = World()
        w.put(queue(), job("j"))
        w.kube.fail("POST", f"/api/v1/namespaces/{NS}/pods", KubeError(500, "InternalError", "etcd hiccup"))
        await w.controller.sync()
        await w.step()
        st = w.status("j")
        assert w.pods() == {} and (st["phase"], st["waitingReason"], st["reason"]) == (
            "Waiting",
            "APIUnavailable",
            "APIUnavailable",
        )
        w.clock.advance(2)
        await w.step()
        assert set(w.pods()) == {"j-1"} and w.status("j")["phase"] == "Running"

    go(test)


QUOTA = KubeError(
    403, "Forbidden", 'pods "j-1" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1'
)


def test_a_full_quota_makes_the_job_wait_with_backoff_then_it_runs() -> None:
    async def test() -> None:
        w = World()
        w.put(queue(), job("j"))
        for _ in range(3):
            w.kube.fail("POST", f"/api/v1/namespaces/{NS}/pods", QUOTA)
        await w.controller.sync()
        await w.step()
        delays = []
        for _ in range(3):
            st = w.status("j")
            assert (
                st["phase"] == "Waiting" and st["waitingReason"] == "QuotaExceeded" and not st.get("attempts")
            )
            at = datetime.fromisoformat(st["nextAttemptAt"].replace("Z", "+00:00"))
            delays.append((at - w.clock()).total_seconds())
            w.clock.advance(delays[-1])
            await w.step()
        assert delays == [1.0, 2.0, 4.0]  # doubling: the second and third refusals waited longer
        refused = [e for e in w.kube.events if e.get("reason") == "PodRefused"]
        assert len(refused) == 1 and "QuotaExceeded" in refused[0]["message"]  # one Event per spell
        st = w.status("j")
        assert set(w.pods()) == {"j-1"} and st["phase"] == "Running" and not st.get("failedAttempts")

    go(test)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            KubeError(403, "Forbidden", 'pods "j-1" is forbidden: violates PodSecurity "restricted:latest"'),
            "PodSecurityViolation",
        ),
        (
            KubeError(422, "Invalid", 'Pod "j-1" is invalid: spec.containers[0].image: Required value'),
            "InvalidPod",
        ),
    ],
)
def test_a_pod_no_retry_can_fix_fails_the_job_with_the_apiservers_message(
    error: KubeError, reason: str
) -> None:
    async def test() -> None:
        w = World()
        w.put(queue(), job("j"))
        w.kube.fail("POST", f"/api/v1/namespaces/{NS}/pods", error)
        await w.controller.sync()
        await w.step()
        st = w.status("j")
        assert st["phase"] == "Failed" and st["reason"] == reason and w.pods() == {}
        failed = {c["type"]: c for c in st["conditions"]}["Failed"]
        assert failed["reason"] == reason and failed["message"] == error.message

    go(test)


def test_jobs_created_after_sync_are_fed_by_the_watch() -> None:
    async def test() -> None:
        w = World()
        w.put(queue(concurrency=1))
        await w.controller.sync()
        await w.step()
        for name in ("x", "y"):
            w.controller.on_job("ADDED", w.kube.put(job(name)))
            w.clock.advance(1)
        await w.step()
        assert w.started() == {"x"}

    go(test)


# ======================================================================================= the schedule loop
def schedule(name: str = "tick", **spec: Any) -> dict[str, Any]:
    spec.setdefault("schedule", "@every 1m")
    spec.setdefault("jobTemplate", {"spec": {"queue": "q", "handler": "echo", "payload": {"n": 1}}})
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_JOBSCHEDULE,
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


class Schedules:
    def __init__(self, *specs: dict[str, Any]) -> None:
        self.clock = Clock(T0)
        self.kube = FakeKube(self.clock)
        for obj in specs or (schedule(),):
            self.kube.put(obj)
        self.loop = self.new_loop()

    def new_loop(self) -> ScheduleLoop:
        return ScheduleLoop(self.kube, namespaces=None, clock=self.clock)

    async def step(self, loop: ScheduleLoop | None = None) -> None:
        await (loop or self.loop).step()
        await settle()

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {j["metadata"]["name"]: j for j in self.kube.all("QueuedJob", NS)}

    def status(self, name: str = "tick") -> dict[str, Any]:
        obj = self.kube.get("JobSchedule", NS, name)
        assert obj is not None
        return dict(obj.get("status") or {})

    def job_posts(self) -> int:
        return len(self.kube.calls_to("POST", "/queuedjobs"))

    def fired_events(self) -> list[dict[str, Any]]:
        return [e for e in self.kube.events if e["reason"] == "Fired"]


def test_a_due_schedule_creates_exactly_one_job_named_for_its_instant() -> None:
    async def test() -> None:
        s = Schedules()
        await s.loop.sync()
        await s.step()  # at creation: nothing due yet
        assert s.jobs() == {} and parse(s.status()["nextScheduleTime"]) == T0 + timedelta(minutes=1)

        s.clock.set(T0 + timedelta(minutes=1))
        await s.step()
        uid = s.kube.get("JobSchedule", NS, "tick")["metadata"]["uid"]  # type: ignore[index]
        name = run_name("tick", T0 + timedelta(minutes=1))
        assert set(s.jobs()) == {name}
        created = s.jobs()[name]
        assert created["metadata"]["labels"][names.LABEL_SCHEDULE] == "tick"
        assert created["metadata"]["annotations"][names.ANNOTATION_SCHEDULED_TIME] == fmt(
            T0 + timedelta(minutes=1)
        )
        assert created["metadata"]["ownerReferences"][0]["uid"] == uid
        assert created["spec"] == {"queue": "q", "handler": "echo", "payload": {"n": 1}}
        st = s.status()
        assert st["runCount"] == 1 and st["lastJob"] == name and st["active"] == [name]
        assert st["lastScheduleTime"] == fmt(T0 + timedelta(minutes=1))
        assert s.loop.stats["fired"] == 1 and len(s.fired_events()) == 1

        await s.step()  # the same instant again: nothing is due
        await s.loop.sync()  # even planned afresh from a new list
        await s.step()
        assert set(s.jobs()) == {name} and s.job_posts() == 1
        assert s.status()["runCount"] == 1 and len(s.fired_events()) == 1

    go(test)


@pytest.mark.parametrize(
    ("spec", "after", "instants"),
    [
        pytest.param({}, 59, [], id="every-1m-not-yet"),
        pytest.param({}, 60, [60], id="every-1m-due"),
        pytest.param({}, 150, [120], id="every-1m-late-runs-the-latest-only"),
        pytest.param({"missedRunPolicy": "RunAll"}, 150, [60, 120], id="every-1m-late-run-all"),
        pytest.param({"suspend": True}, 600, [], id="suspended"),
        pytest.param({"schedule": "*/5 * * * *"}, 300, [300], id="cron-every-5-minutes"),
        pytest.param({"schedule": "*/5 * * * *"}, 299, [], id="cron-one-second-early"),
    ],
)
def test_which_runs_a_step_creates(spec: dict[str, Any], after: int, instants: list[int]) -> None:
    async def test() -> None:
        s = Schedules(schedule(**spec))
        await s.loop.sync()
        await s.step()
        s.clock.set(T0 + timedelta(seconds=after))
        await s.step()
        assert set(s.jobs()) == {run_name("tick", T0 + timedelta(seconds=t)) for t in instants}
        assert s.status().get("runCount", 0) == len(instants)

    go(test)


def test_a_manual_trigger_creates_one_run_per_value() -> None:
    async def test() -> None:
        s = Schedules(schedule(suspend=True))  # a trigger runs even a suspended schedule
        await s.loop.sync()
        await s.step()

        def trigger(value: str) -> None:
            def change(obj: dict[str, Any]) -> None:
                obj["metadata"].setdefault("annotations", {})[names.ANNOTATION_TRIGGER] = value

            s.loop.on_schedule("MODIFIED", s.kube.update("JobSchedule", NS, "tick", change))

        trigger("go-1")
        await s.step()
        first = manual_run_name("tick", "go-1")
        assert set(s.jobs()) == {first}
        assert s.jobs()[first]["metadata"]["annotations"][names.ANNOTATION_MANUAL_TRIGGER] == "go-1"
        assert s.status()["lastTrigger"] == "go-1" and s.status()["runCount"] == 1
        assert s.loop.stats["triggered"] == 1 and [e["reason"] for e in s.kube.events] == ["Triggered"]

        await s.loop.sync()  # the same value, planned again: no second run
        await s.step()
        assert set(s.jobs()) == {first} and s.job_posts() == 1

        trigger("go-2")
        await s.step()
        assert set(s.jobs()) == {first, manual_run_name("tick", "go-2")}
        assert s.status()["runCount"] == 2

    go(test)


@pytest.mark.parametrize("rival", ["replica", "another-writer"])
def test_a_run_is_counted_once_when_the_status_write_meets_a_409(rival: str) -> None:
    async def test() -> None:
        s = Schedules()
        await s.loop.sync()
        await s.step()
        due = T0 + timedelta(minutes=1)
        name = run_name("tick", due)
        if rival == "replica":
            # A second operator replica that saw the same schedule version fires the same instant first.
            other = s.new_loop()
            await other.sync()
            s.clock.set(due)
            await s.step(other)
            assert set(s.jobs()) == {name} and s.status()["runCount"] == 1
        else:
            # Somebody changes the schedule (a label) after the loop read it: its rv is stale.
            s.kube.update(
                "JobSchedule", NS, "tick", lambda o: o["metadata"].setdefault("labels", {}).update(x="y")
            )
            s.clock.set(due)
        status_writes = len(s.kube.calls_to("PATCH", "/jobschedules/tick/status"))
        await s.step()  # the status write is refused (409): the loop reads the schedule again
        assert len(s.kube.calls_to("PATCH", "/jobschedules/tick/status")) == status_writes + 1
        assert s.loop.stats["conflicts"] == 1
        s.clock.advance(1)  # it plans again shortly after
        await s.step()
        assert set(s.jobs()) == {name}
        assert s.status()["runCount"] == 1 and s.status()["lastScheduleTime"] == fmt(due)
        assert len(s.fired_events()) == 1
        assert s.job_posts() == (
            2 if rival == "replica" else 1
        )  # the replica's POST met a 409: not created twice

    go(test)


def test_a_start_that_fails_writes_its_failed_condition_next_to_earlier_ones() -> None:
    """Regression (found by tests/e2e/test_security.py): the failure was set on a shallow copy, so a job
    that already had a condition (it had been suspended) ended Failed with no Failed condition."""

    async def test() -> None:
        w = World()
        resumed = job("j", template={"image": "mine:1"})
        resumed["status"] = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "Suspended",
                    "status": "False",
                    "reason": "Resumed",
                    "message": "spec.suspend is false",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        }
        w.put(queue("q"), resumed)
        await w.controller.sync()
        await w.step()
        st = w.status("j")
        conditions = {c["type"]: c for c in st["conditions"]}
        assert st["phase"] == "Failed" and conditions["Failed"]["reason"] == "OverrideNotAllowed", st
        assert conditions["Suspended"]["reason"] == "Resumed"

    go(test)


# ======================================================================================= watch re-lists
RELISTS = [
    # id, (stream kind, event type) in order -> re-lists noticed
    pytest.param([("pods", None), ("pods", None)], 0, id="first-listing-is-not-a-relist"),
    pytest.param(
        [("pods", None), ("pods", "ADDED"), ("pods", None), ("pods", None)], 1, id="list-watch-list"
    ),
    pytest.param([("pods", "MODIFIED"), ("queuedjobs", None)], 0, id="streams-are-told-apart"),
    pytest.param(
        [("pods", "ADDED"), ("pods", None), ("pods", "MODIFIED"), ("pods", None)], 2, id="two-relists"
    ),
]


@pytest.mark.parametrize(("events", "relists"), RELISTS)
def test_a_listing_after_live_events_is_noticed_as_a_relist(
    events: list[tuple[str, str | None]], relists: int
) -> None:
    async def test() -> None:
        c = Controller(FakeKube(Clock(T0)), namespaces=None, clock=Clock(T0))
        for kind, event in events:
            c.note_watch(kind, event, {"metadata": {"namespace": NS, "name": "x"}})
        assert c.relists == relists
        assert (c.resync_at is not None) == bool(relists)

    go(test)


def test_what_was_deleted_while_a_watch_had_expired_is_forgotten_by_the_next_sync() -> None:
    """kopf re-lists after a 410 and reports only what the list returned: an attempt pod and a JobQueue
    deleted in the gap would stay in the store, holding a slot and a template, without the re-sync."""

    async def test() -> None:
        w = World()
        w.put(queue(concurrency=2), queue("gone"), job("a"), job("b"), job("later"))
        await w.controller.sync()
        await w.step()
        assert w.started() == {"a", "b"}
        pods = w.pods()
        for pod in pods.values():
            w.controller.note_watch("pods", "ADDED", pod)
            w.controller.on_pod("ADDED", pod)
        (pod_a,) = [
            n for n, p in pods.items() if p["metadata"]["annotations"][names.ANNOTATION_JOB_NAME] == "a"
        ]
        # The gap: the pod of a and the queue "gone" are deleted; no watch reports it.
        await w.kube.request("DELETE", w.kube.path_of("pods", NS, pod_a))
        await w.kube.request("DELETE", w.kube.path_of("JobQueue", NS, "gone"))
        for pod in w.kube.all("pods", NS):  # kopf's re-list: what is left, as type-None events
            w.controller.note_watch("pods", None, pod)
            w.controller.on_pod(None, pod)
        assert w.controller.relists == 1 and w.controller.resync_at is not None
        await w.step()
        assert not any(k == (NS, "later") for k in w.controller.store.active), (
            "nothing changed without a sync"
        )
        await w.controller.sync()
        assert (NS, "gone") not in w.controller.store.queues
        assert pod_a not in w.controller.store.pods.get((NS, "a"), {})
        await w.step()
        assert "later" in w.started(), "the slot of the vanished pod is free again"

    go(test)


def test_an_attempt_that_ends_0_and_whose_pod_is_deleted_before_the_next_step_still_succeeds() -> None:
    """Cancel: the pod is deleted (SIGTERM), the handler finishes and exits 0, and the pod's end and its
    deletion both arrive before the next step: the job is Succeeded, as if the step had seen the end."""

    async def test() -> None:
        w = World()
        w.put(queue(), job("tidy"))
        await w.controller.sync()
        await w.step()
        (pod,) = w.running_pods()
        final = copy.deepcopy(w.kube.get("pods", NS, pod))
        assert final is not None
        w.controller.on_job(
            "MODIFIED", w.kube.update("QueuedJob", NS, "tidy", lambda j: j["spec"].update(cancel=True))
        )
        await w.step()
        assert w.status("tidy")["phase"] == "Running"  # cancelling: its pod was asked to stop
        assert w.kube.calls_to("DELETE", f"/pods/{pod}")
        w.clock.advance(2)
        final["metadata"]["resourceVersion"] = "999999"
        final["metadata"]["deletionTimestamp"] = fmt(w.clock())
        terminated = {
            "exitCode": 0,
            "reason": "Completed",
            "message": '{"finished": "on SIGTERM"}',
            "finishedAt": fmt(w.clock()),
        }
        final["status"] = {
            "phase": "Succeeded",
            "containerStatuses": [{"name": names.WORKER_CONTAINER, "state": {"terminated": terminated}}],
        }
        w.controller.on_pod("MODIFIED", final)  # the kubelet's last status, then the deletion
        w.controller.on_pod("DELETED", final)
        await w.step()
        st = w.status("tidy")
        assert st["phase"] == "Succeeded" and st["result"] == {"finished": "on SIGTERM"}, st
        assert (NS, "tidy") not in w.controller.store.ended  # dropped once the job is final

    go(test)
