"""Cancellation as a state (spec.cancel -> Cancelled) and the queue's debounce (-> Superseded), table by
table: the state machine's answers, and the debounce's pure verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobline import names
from jobline.core import debounce
from jobline.core.debounce import Decision, Twin
from jobline.core.lifecycle import PodView, World, reconcile, status_reason
from jobline.core.models import QueuedJobSpec
from jobline.core.models.queuedjob import ResolvedRetry

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(minutes=5)
RETRY = ResolvedRetry(
    limit=2, initial_seconds=10, factor=2.0, max_seconds=60, jitter=0.0, non_retryable_exit_codes=frozenset()
)
RUNNING = {
    "phase": "Running",
    "attempts": 1,
    "podName": "j-1",
    "startedAt": "2026-12-02T11:55:00Z",
    "attemptHistory": [{"attempt": 1, "pod": "j-1", "startedAt": "2026-12-02T11:55:00Z"}],
}
BACKING_OFF = {
    "phase": "Waiting",
    "waitingReason": "BackingOff",
    "attempts": 1,
    "failedAttempts": 1,
    "nextAttemptAt": "2026-12-02T12:10:00Z",
    "attemptHistory": [
        {
            "attempt": 1,
            "pod": "j-1",
            "startedAt": "2026-12-02T11:55:00Z",
            "finishedAt": "2026-12-02T11:56:00Z",
        }
    ],
}


def pod(phase: str = "Running", **kw: Any) -> PodView:
    return PodView(name="j-1", attempt=1, phase=phase, created=T0, started=T0, **kw)


def run(
    status: dict[str, Any] | None,
    pods: list[PodView] = (),  # type: ignore[assignment]
    *,
    cancel: bool = True,
    world: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> Any:
    return reconcile(
        name="j",
        uid="u",
        generation=2,
        annotations=annotations or {},
        spec=QueuedJobSpec(handler="h", cancel=cancel, **spec),
        status=status,
        pods=list(pods),
        world=World(now=NOW, retry=RETRY, **(world or {})),
    )


def conditions(st: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in st.get("conditions", [])}


# --- cancel ------------------------------------------------------------------------------------

DEADLINE = NOW - timedelta(seconds=10)  # the pod's deletionTimestamp: the end of its grace period


@pytest.mark.parametrize(
    ("case", "status", "pods", "phase", "deleted", "record"),
    [
        ("new job", None, [], "Cancelled", [], None),
        ("pending", {"phase": "Pending"}, [], "Cancelled", [], None),
        ("between attempts", BACKING_OFF, [], "Cancelled", [], None),
        ("suspended", {"phase": "Suspended"}, [], "Cancelled", [], None),
        ("running: the pod is stopped", RUNNING, [pod()], "Running", ["j-1"], None),
        (
            "running: the pod is terminating within its grace period",
            RUNNING,
            [pod(deleting=True, deletion_deadline=NOW + timedelta(seconds=20))],
            "Running",
            [],
            None,
        ),
        (
            "the pod stopped on SIGTERM",
            RUNNING,
            [pod("Failed", exit_code=143, reason="Error", deleting=True, deletion_deadline=DEADLINE)],
            "Cancelled",
            [],
            ("Cancelled", 143, "stopped by spec.cancel"),
        ),
        ("the pod is gone", RUNNING, [], "Cancelled", [], ("Cancelled", None, "stopped by spec.cancel")),
        (
            "the pod outlived its grace period by far (node lost)",
            RUNNING,
            [pod(deleting=True, deletion_deadline=NOW - timedelta(seconds=31))],
            "Cancelled",
            [],
            (
                "Cancelled",
                None,
                "stopped by spec.cancel; pod j-1 had not stopped by the end of its grace period",
            ),
        ),
        (
            "the attempt succeeded within its grace period: a success",
            RUNNING,
            [pod("Succeeded", exit_code=0, deleting=True, deletion_deadline=DEADLINE)],
            "Succeeded",
            [],
            ("Completed", 0, None),
        ),
    ],
)
def test_cancel(
    case: str,
    status: dict[str, Any] | None,
    pods: list[PodView],
    phase: str,
    deleted: list[str],
    record: tuple[str, int | None, str | None] | None,
) -> None:
    out = run(status, pods)
    st = out.status
    assert st["phase"] == phase, case
    assert out.delete_pods == deleted, case
    assert not out.runnable
    if record is not None:
        rec = st["attemptHistory"][-1]
        assert (rec["reason"], rec.get("exitCode"), rec.get("message")) == record, case
        assert rec["finishedAt"]
    assert st.get("failedAttempts", 0) == (status or {}).get("failedAttempts", 0), "a cancel is not a failure"
    if phase == "Cancelled":
        assert (
            conditions(st)["Cancelled"] == ("True", "SpecCancel")
            and st["completedAt"] == "2026-12-02T12:00:00Z"
        )
        assert [e.reason for e in out.events] == ["Cancelled"]
        assert st.get("nextAttemptAt") is None and st.get("waitingReason") is None
    if phase == "Running":
        assert conditions(st)["Cancelled"] == ("False", "Cancelling")
        assert status_reason(st) == "Cancelling"


def test_cancelling_asks_the_pod_to_stop_once_then_waits_for_it() -> None:
    first = run(RUNNING, [pod()])
    assert first.delete_pods == ["j-1"] and [e.reason for e in first.events] == ["Cancelling"]
    assert "SIGTERM" in first.events[0].message
    deadline = NOW + timedelta(seconds=20)
    again = run(first.status, [pod(deleting=True, deletion_deadline=deadline)])
    assert again.delete_pods == [] and again.events == []
    assert again.wake_at == deadline + timedelta(seconds=30)  # then it is cancelled, stopped or not


def test_a_finished_job_is_not_cancelled() -> None:
    done = {"phase": "Succeeded", "completedAt": "2026-12-02T11:00:00Z", "attempts": 1}
    out = run(done)
    assert (
        out.status["phase"] == "Succeeded" and out.events == [] and "Cancelled" not in conditions(out.status)
    )


def test_ttl_applies_to_a_cancelled_job() -> None:
    out = run({"phase": "Pending"}, ttl_seconds_after_finished=0, world={"ttl_seconds_after_finished": 0})
    assert out.status["phase"] == "Cancelled" and out.delete_job


def test_a_requeued_cancelled_job_runs_again() -> None:
    cancelled = run(BACKING_OFF).status
    out = run(cancelled, cancel=False, annotations={names.ANNOTATION_REQUEUE: "again"})
    st = out.status
    assert st["phase"] == "Pending" and out.runnable
    assert conditions(st)["Cancelled"] == ("False", "Requeued") and st["failedAttempts"] == 0


def test_a_dependent_of_a_cancelled_job_fails() -> None:
    out = run(None, cancel=False, depends_on=["parent"], world={"deps": {"parent": "Cancelled"}})
    assert out.status["phase"] == "Failed"
    assert conditions(out.status)["Failed"] == ("True", "DependencyFailed")
    assert out.status["lastError"] == "dependency parent was cancelled"


# --- the debounce's verdicts -------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("case", "name", "twins", "seconds", "max_wait", "decision"),
    [
        ("alone: the quiet spell", "a", [Twin("a", at(0))], 30, None, Decision(start_at=at(30))),
        (
            "an older unstarted twin is superseded by the newest",
            "a",
            [Twin("a", at(0)), Twin("b", at(5))],
            30,
            None,
            Decision(superseded_by="b"),
        ),
        (
            "the newest starts after its own quiet spell",
            "b",
            [Twin("a", at(0), phase="Superseded"), Twin("b", at(5))],
            30,
            None,
            Decision(start_at=at(35)),
        ),
        (
            "created in the same second: the later revision is the newest",
            "zz",
            [Twin("zz", at(5), revision=100), Twin("aa", at(5), revision=105)],
            30,
            None,
            Decision(superseded_by="aa"),
        ),
        (
            "maxWaitSeconds bounds the wait from the burst's first job",
            "c",
            [Twin("a", at(0), phase="Superseded"), Twin("b", at(40), phase="Superseded"), Twin("c", at(50))],
            30,
            60,
            Decision(start_at=at(60)),
        ),
        (
            "a start ends a burst: the earlier burst's jobs do not count",
            "d",
            [
                Twin("a", at(0), phase="Superseded"),
                Twin("b", at(5), phase="Succeeded", started=True, started_at=at(35), completed_at=at(40)),
                Twin("d", at(100)),
            ],
            30,
            45,
            Decision(start_at=at(130)),
        ),
        (
            "a job that finished without starting (cancelled) ends a burst too",
            "d",
            [
                Twin("a", at(0), phase="Superseded"),
                Twin("b", at(5), phase="Cancelled", completed_at=at(10)),
                Twin("d", at(20)),
            ],
            30,
            31,
            Decision(start_at=at(50)),
        ),
        (
            "a running twin: the newest waits for it",
            "b",
            [Twin("a", at(0), phase="Running", started=True, started_at=at(30)), Twin("b", at(40))],
            5,
            None,
            Decision(start_at=at(45), behind="a"),
        ),
        (
            "a started job is not debounced",
            "a",
            [Twin("a", at(0), phase="Running", started=True, started_at=at(30)), Twin("b", at(40))],
            5,
            None,
            Decision(),
        ),
        ("a finished job is not debounced", "a", [Twin("a", at(0), phase="Cancelled")], 5, None, Decision()),
        ("an unknown job is not debounced", "x", [Twin("a", at(0))], 5, None, Decision()),
    ],
)
def test_debounce_decide(
    case: str, name: str, twins: list[Twin], seconds: int, max_wait: int | None, decision: Decision
) -> None:
    assert debounce.decide(name, twins, seconds, max_wait) == decision, case


# --- the state machine under the debounce ------------------------------------------------------


def test_a_superseded_job_ends_superseded_kept_for_history() -> None:
    out = run(
        {"phase": "Waiting", "waitingReason": "Debounced"},
        cancel=False,
        unique_key="k",
        world={"superseded_by": "newer"},
    )
    st = out.status
    assert st["phase"] == "Superseded" and st["supersededBy"] == "newer" and not out.runnable
    assert conditions(st)["Superseded"] == ("True", "Debounced")
    assert [e.reason for e in out.events] == ["Superseded"] and "newer" in out.events[0].message
    assert not out.delete_job and st["completedAt"]


def test_the_newest_waits_debounced_then_runs() -> None:
    until = NOW + timedelta(seconds=30)
    out = run(None, cancel=False, unique_key="k", world={"debounce_until": until, "revision": 4711})
    st = out.status
    assert (st["phase"], st["waitingReason"], st["nextAttemptAt"]) == (
        "Waiting",
        "Debounced",
        "2026-12-02T12:00:30Z",
    )
    assert out.wake_at == until and not out.runnable and st["enqueueRevision"] == 4711
    assert status_reason(st) == "Debounced"
    later = run(st, cancel=False, unique_key="k", world={"debounce_until": NOW - timedelta(seconds=1)})
    assert later.status["phase"] == "Pending" and later.runnable and later.status["nextAttemptAt"] is None
    assert later.status["enqueueRevision"] == 4711  # kept: it orders the burst


def test_the_newest_waits_behind_a_running_twin_without_a_timer() -> None:
    out = run(None, cancel=False, unique_key="k", world={"debounce_until": NOW, "debounce_behind": "a"})
    st = out.status
    assert (st["phase"], st["waitingReason"], st["nextAttemptAt"]) == ("Waiting", "Debounced", None)
    assert out.wake_at is None and not out.runnable


def test_a_superseded_job_is_not_requeued() -> None:
    st = {"phase": "Superseded", "supersededBy": "newer", "completedAt": "2026-12-02T11:00:00Z"}
    out = run(st, cancel=False, annotations={names.ANNOTATION_REQUEUE: "x"})
    assert out.status["phase"] == "Superseded" and out.status["requeueToken"] == "x"
    assert [(e.type, e.reason) for e in out.events] == [("Warning", "RequeueRefused")]
