"""Pool mode's pure core (jobline.core.pool): scaling, slot assignment, and pooled attempts as the state
machine sees them (their end, a lost or stopped worker, a revoked assignment), table by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobline import names
from jobline.core import pool
from jobline.core.lifecycle import World, reconcile
from jobline.core.models import QueuedJobSpec, ResolvedRetry, WorkerPool
from jobline.core.podspec import TemplateError, build_pool_pod
from jobline.core.pool import WorkerView
from jobline.core.timefmt import fmt

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
RETRY = ResolvedRetry(
    limit=1, initial_seconds=10, factor=2.0, max_seconds=60, jitter=0.0, non_retryable_exit_codes=frozenset()
)


def wp(**fields: Any) -> WorkerPool:
    return WorkerPool.model_validate({"mode": "Pool", **fields}, strict=False)


def w(name: str, busy: int = 0, **fields: Any) -> WorkerView:
    fields.setdefault("ready", True)
    fields.setdefault("created", NOW - timedelta(hours=1))
    return WorkerView(name=name, busy=busy, **fields)


# ------------------------------------------------------------------------------------ scaling
@pytest.mark.parametrize(
    ("fields", "demand", "concurrency", "expected"),
    [
        ({}, 0, None, 0),  # defaults: min 0, max 1, one slot
        ({}, 5, None, 1),
        ({"minReplicas": 2, "maxReplicas": 4}, 0, None, 2),
        ({"maxReplicas": 4, "slotsPerWorker": 2}, 5, None, 3),  # ceil(5 / 2)
        ({"maxReplicas": 4, "slotsPerWorker": 2}, 50, None, 4),  # capped by maxReplicas
        ({"maxReplicas": 10, "slotsPerWorker": 2}, 50, 3, 2),  # capped by the queue's concurrency
        ({"minReplicas": 3, "maxReplicas": 10}, 50, 1, 3),  # but never below minReplicas
        ({"minReplicas": 5}, 0, None, 5),  # maxReplicas unset: at least minReplicas
    ],
)
def test_desired_workers(fields: dict[str, Any], demand: int, concurrency: int | None, expected: int) -> None:
    assert pool.desired_workers(wp(**fields), demand, concurrency) == expected


def test_scales_up_at_once_counting_pods_not_yet_ready() -> None:
    plan = pool.plan(
        wp(maxReplicas=4),
        [w("a", 1), w("b", ready=False)],
        demand=3,
        concurrency=None,
        idle_since={},
        now=NOW,
    )
    assert (plan.desired, plan.create, plan.delete) == (3, 1, [])


def test_scales_down_only_idle_workers_after_scale_down_after_seconds() -> None:
    workers = [w("busy", 1), w("long-idle"), w("new-idle"), w("starting", ready=False)]
    idle_since = {"long-idle": NOW - timedelta(seconds=61), "new-idle": NOW - timedelta(seconds=10)}
    plan = pool.plan(
        wp(maxReplicas=4, scaleDownAfterSeconds=60),
        workers,
        demand=1,
        concurrency=None,
        idle_since=idle_since,
        now=NOW,
    )
    # desired 1: the starting pod (created an hour ago, never ready) and the long idle one go, not ready
    # first; the busy one stays; the recent idle one is looked at again when its 60 s are over.
    assert plan.delete == ["starting", "long-idle"]
    assert plan.create == 0
    assert plan.wake_at == NOW + timedelta(seconds=50)


def test_scales_to_zero_and_never_deletes_a_busy_worker() -> None:
    idle_since = {"a": NOW - timedelta(seconds=5)}
    plan = pool.plan(
        wp(maxReplicas=2, scaleDownAfterSeconds=0),
        [w("a"), w("b", 2)],
        demand=0,
        concurrency=None,
        idle_since=idle_since,
        now=NOW,
    )
    assert plan.desired == 0 and plan.delete == ["a"]


def test_ended_and_outdated_workers() -> None:
    workers = [
        w("ended", terminal=True, ready=False),
        w("old-idle", current=False, ready=False),
        w("old-busy", 1, current=False, ready=False),
        w("going", deleting=True, ready=False),
    ]
    plan = pool.plan(wp(maxReplicas=3), workers, demand=3, concurrency=None, idle_since={}, now=NOW)
    # An ended pod is deleted; an outdated idle one too; the outdated busy one finishes first; none of
    # them counts toward the desired three, so three current ones are made.
    assert plan.delete == ["ended", "old-idle"]
    assert plan.create == 3


# --------------------------------------------------------------------------------- assignment
@pytest.mark.parametrize(
    ("workers", "slots", "count", "expected"),
    [
        ([w("a"), w("b")], 2, 3, ["a", "b", "a"]),  # spread: least busy first, then by name
        ([w("a", 1), w("b")], 2, 2, ["b", "a"]),
        ([w("a", 2), w("b", 1)], 2, 3, ["b"]),  # slots run out
        ([w("a", ready=False), w("b")], 1, 2, ["b"]),  # not ready: takes nothing
        ([], 1, 1, []),
    ],
)
def test_assign(workers: list[WorkerView], slots: int, count: int, expected: list[str]) -> None:
    assert pool.assign(wp(slotsPerWorker=slots), workers, count) == expected
    assert pool.free_slots(wp(slotsPerWorker=slots), workers) >= len(expected)


def test_worker_view_reads_readiness() -> None:
    def pod(phase: str, ready: bool, deleting: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": "p", "creationTimestamp": fmt(NOW)}
        if deleting:
            meta["deletionTimestamp"] = fmt(NOW)
        state = {"running": {"startedAt": fmt(NOW)}} if phase == "Running" else {}
        cs = {"name": names.WORKER_CONTAINER, "ready": ready, "state": state}
        return {"metadata": meta, "status": {"phase": phase, "containerStatuses": [cs]}}

    assert pool.worker_view(pod("Running", True)).ready
    assert not pool.worker_view(pod("Running", False)).ready
    assert not pool.worker_view(pod("Pending", False)).ready
    view = pool.worker_view(pod("Running", True, deleting=True))
    assert not view.ready and view.deleting and not view.live
    assert pool.worker_view(pod("Failed", False)).terminal


# ------------------------------------------------------------------------ pooled attempt views
RECORD = {
    "attempt": 2,
    "pod": "q-worker-a",
    "worker": "q-worker-a",
    "startedAt": fmt(NOW - timedelta(seconds=5)),
}
LIVE_POD: dict[str, Any] = {"metadata": {"name": "q-worker-a"}, "status": {"phase": "Running"}}


def report(code: int, reason: str, message: str | None = None, attempt: int = 2) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "worker": "q-worker-a",
        "exitCode": code,
        "reason": reason,
        "message": message,
        "finishedAt": fmt(NOW),
    }


@pytest.mark.parametrize(
    ("status", "worker_pod", "phase", "exit_code", "disruption"),
    [
        ({"worker": "q-worker-a"}, LIVE_POD, "Running", None, None),
        (
            {"worker": "q-worker-a", "report": report(0, "Completed", '{"ok":1}')},
            LIVE_POD,
            "Succeeded",
            0,
            None,
        ),
        ({"worker": "q-worker-a", "report": report(1, "Error", "boom")}, LIVE_POD, "Failed", 1, None),
        ({"worker": "q-worker-a", "report": report(143, "Timeout")}, LIVE_POD, "Failed", 143, None),
        ({"worker": "q-worker-a", "report": report(143, "Terminated")}, None, "Failed", 143, "WorkerLost"),
        (
            {"worker": "q-worker-a", "report": report(137, "WorkerLost")},
            LIVE_POD,
            "Failed",
            137,
            "WorkerLost",
        ),
        # a report on an earlier attempt says nothing about this one
        (
            {"worker": "q-worker-a", "report": report(0, "Completed", attempt=1)},
            LIVE_POD,
            "Running",
            None,
            None,
        ),
        ({"worker": "q-worker-a"}, None, "Failed", None, "WorkerLost"),  # the pod is gone
        ({"worker": "q-worker-a"}, {"status": {"phase": "Failed"}}, "Failed", None, "WorkerLost"),
    ],
)
def test_attempt_view(
    status: dict[str, Any],
    worker_pod: dict[str, Any] | None,
    phase: str,
    exit_code: int | None,
    disruption: str | None,
) -> None:
    view = pool.attempt_view(RECORD, {"attempts": 2, **status}, worker_pod)
    assert view is not None
    assert (view.phase, view.exit_code, view.disruption) == (phase, exit_code, disruption)
    assert view.attempt == 2 and view.name == "q-worker-a"


def test_attempt_view_of_a_revoked_assignment_is_no_pod() -> None:
    assert pool.attempt_view(RECORD, {"attempts": 2, "worker": None}, LIVE_POD) is None


@pytest.mark.parametrize(
    ("status", "delete", "worker_after", "delete_after"),
    [
        # running on: nothing changes
        ({"phase": "Running", "attempts": 2, "worker": "w", "attemptHistory": [{"attempt": 2}]}, [], "w", []),
        # cancel / timeout / suspend ask to delete the attempt's pod: the assignment is revoked instead
        (
            {"phase": "Running", "attempts": 2, "worker": "w", "attemptHistory": [{"attempt": 2}]},
            ["w"],
            None,
            [],
        ),
        # the attempt ended: the job leaves the worker
        (
            {
                "phase": "Waiting",
                "attempts": 2,
                "worker": "w",
                "attemptHistory": [{"attempt": 2, "finishedAt": "x"}],
            },
            [],
            None,
            [],
        ),
    ],
)
def test_settle(
    status: dict[str, Any], delete: list[str], worker_after: str | None, delete_after: list[str]
) -> None:
    assert pool.settle(status, delete) == delete_after
    assert status["worker"] == worker_after


# ------------------------------------------------------- the state machine with a pooled attempt
def _reconcile(status: dict[str, Any], worker_pod: dict[str, Any] | None, **spec: Any) -> dict[str, Any]:
    history = status["attemptHistory"]
    view = pool.attempt_view(history[-1], status, worker_pod)
    out = reconcile(
        name="j",
        uid="u",
        generation=1,
        annotations={},
        spec=QueuedJobSpec.model_validate({"handler": "h", **spec}, strict=False),
        status=status,
        pods=[view] if view is not None else [],
        world=World(now=NOW, retry=RETRY),
    )
    out.delete_pods = pool.settle(out.status, out.delete_pods)
    assert out.delete_pods == []  # a worker pod is never deleted for an attempt
    return out.status


def _running(**status: Any) -> dict[str, Any]:
    return {
        "phase": "Running",
        "attempts": 2,
        "failedAttempts": 1,
        "worker": "q-worker-a",
        "podName": "q-worker-a",
        "attemptHistory": [
            {
                "attempt": 1,
                "pod": "q-worker-b",
                "worker": "q-worker-b",
                "finishedAt": fmt(NOW),
                "reason": "Error",
            },
            dict(RECORD),
        ],
        **status,
    }


def test_a_lost_worker_retries_the_attempt_without_using_a_retry() -> None:
    st = _reconcile(_running(), None)
    record = st["attemptHistory"][-1]
    assert record["reason"] == names.WORKER_LOST and record["disruption"] == names.WORKER_LOST
    assert st["failedAttempts"] == 1 and st["disruptedAttempts"] == 1  # retry.limit 1 is not used up
    assert st["phase"] == "Pending" and st["worker"] is None


def test_a_stopped_worker_gives_the_attempt_back() -> None:
    st = _reconcile(_running(report=report(143, "Terminated", "the worker pod stopped")), LIVE_POD)
    record = st["attemptHistory"][-1]
    assert record["reason"] == "WorkerLost" and "the worker pod stopped" in record["message"]
    assert st["failedAttempts"] == 1 and st["phase"] == "Pending"


def test_a_reported_success_ends_the_job_with_its_result() -> None:
    st = _reconcile(_running(report=report(0, "Completed", '{"sent":3}')), LIVE_POD)
    assert st["phase"] == "Succeeded" and st["result"] == {"sent": 3}
    assert st["worker"] is None and st["report"] is None
    assert st["attemptHistory"][-1]["reason"] == "Completed"


def test_a_reported_failure_counts_against_the_retries() -> None:
    st = _reconcile(_running(report=report(1, "Error", "ValueError: no")), LIVE_POD)
    assert st["phase"] == "Failed" and st["failedAttempts"] == 2  # limit 1: the second failure is the last
    assert "ValueError: no" in st["lastError"]


def test_a_reported_timeout_is_a_timeout() -> None:
    st = _reconcile(_running(report=report(143, "Timeout", "attempt exceeded timeoutSeconds=3")), LIVE_POD)
    assert st["attemptHistory"][-1]["reason"] == "Timeout"


def test_cancel_revokes_the_assignment_then_ends_cancelled() -> None:
    st = _reconcile(_running(), LIVE_POD, cancel=True)
    assert st["phase"] == "Running" and st["worker"] is None  # the worker's watch stops the attempt
    st = _reconcile(st, LIVE_POD, cancel=True)
    assert st["phase"] == "Cancelled" and st["attemptHistory"][-1]["reason"] == "Cancelled"


def test_the_operator_timeout_backstop_revokes_not_deletes() -> None:
    old = dict(RECORD, startedAt=fmt(NOW - timedelta(seconds=100)))
    status = _running()
    status["attemptHistory"][-1] = old
    view = pool.attempt_view(old, status, LIVE_POD)
    out = reconcile(
        name="j",
        uid="u",
        generation=1,
        annotations={},
        spec=QueuedJobSpec.model_validate({"handler": "h", "timeoutSeconds": 10}, strict=False),
        status=status,
        pods=[view] if view else [],
        world=World(now=NOW, retry=RETRY, timeout_seconds=10),
    )
    assert out.delete_pods == ["q-worker-a"]
    assert pool.settle(out.status, out.delete_pods) == []
    assert out.status["worker"] is None and out.status["attemptHistory"][-1]["reason"] == "Timeout"


# ---------------------------------------------------------------------------- the worker pod
def test_build_pool_pod() -> None:
    template = {
        "image": "example/worker:1",
        "command": ["jobline-worker", "--import", "app.handlers"],
        "env": [{"name": "A", "value": "1"}, {"name": names.ENV_SLOTS, "value": "9"}],
        "podSpecPatch": {"terminationGracePeriodSeconds": 60},
    }
    pod = build_pool_pod(queue="mail", namespace="ns", queue_uid="uid-1", template=template, slots=2)
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["generateName"] == "mail-worker-"
    assert meta["labels"][names.LABEL_POOL] == "mail" and names.LABEL_JOB not in meta["labels"]
    assert meta["ownerReferences"][0]["kind"] == "JobQueue" and meta["ownerReferences"][0]["uid"] == "uid-1"
    assert spec["restartPolicy"] == "Always" and "activeDeadlineSeconds" not in spec
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env[names.ENV_POOL]["value"] == "1" and env["A"]["value"] == "1"
    assert env[names.ENV_SLOTS]["value"] == "2"  # the contract wins over the template's env
    assert env[names.ENV_POD_NAME]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env[names.ENV_DRAIN_SECONDS]["value"] == "55"  # the grace period less a margin to report
    assert names.ENV_PAYLOAD not in env and names.ENV_JOB not in env
    container = spec["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_build_pool_pod_needs_an_image() -> None:
    with pytest.raises(TemplateError) as err:
        build_pool_pod(queue="q", namespace="ns", queue_uid="u", template={}, slots=1)
    assert err.value.reason == "NoImage"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "Pool", "minReplicas": 3, "maxReplicas": 2}, "maxReplicas must be at least minReplicas"),
        ({"mode": "Pool", "slotsPerWorker": 0}, "greater than or equal to 1"),
    ],
)
def test_worker_pool_model_refuses(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkerPool.model_validate(fields, strict=False)
