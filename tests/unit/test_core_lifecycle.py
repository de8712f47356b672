"""The QueuedJob state machine (jobline.core.lifecycle): every transition of ``reconcile``, as
docs/queuedjobs.md describes them — phases, waiting reasons, conditions, Events, wake-ups, pods to delete."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobline import names
from jobline.core.lifecycle import (
    CANNOT_START,
    TIMEOUT_GRACE_SECONDS,
    Outcome,
    PodView,
    World,
    finish_failed,
    pod_view,
    reconcile,
    set_condition,
    start_attempt,
)
from jobline.core.models import MAX_ATTEMPT_HISTORY, MAX_PAYLOAD_BYTES, QueuedJobSpec, ResolvedRetry
from jobline.core.timefmt import fmt, parse

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(seconds=60)
RETRY = ResolvedRetry(limit=2, initial_seconds=10, factor=2.0, max_seconds=60, jitter=0.0,
                      non_retryable_exit_codes=frozenset({42}))


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def spec(**fields: Any) -> QueuedJobSpec:
    return QueuedJobSpec.model_validate({"handler": "h", **fields}, strict=False)


def world(**fields: Any) -> World:
    fields.setdefault("now", NOW)
    fields.setdefault("retry", RETRY)
    return World(**fields)


def closed(attempt: int, reason: str = "Error", exit_code: int | None = 1) -> dict[str, Any]:
    rec: dict[str, Any] = {"attempt": attempt, "pod": f"job-{attempt}", "startedAt": fmt(ago(3600 - attempt)),
                           "finishedAt": fmt(ago(3500 - attempt)), "reason": reason}
    if exit_code is not None:
        rec["exitCode"] = exit_code
    return rec


def running(attempt: int = 1, *, failed: int = 0, started: datetime = STARTED, **extra: Any) -> dict[str, Any]:
    """Status of a job whose ``attempt`` runs (earlier attempts failed)."""
    history = [closed(i) for i in range(1, attempt)]
    history.append({"attempt": attempt, "pod": f"job-{attempt}", "startedAt": fmt(started)})
    return {"phase": "Running", "attempts": attempt, "failedAttempts": failed, "podName": f"job-{attempt}",
            "startedAt": fmt(started), "attemptHistory": history, **extra}


def finished(phase: str = "Failed", *, completed: datetime = NOW - timedelta(seconds=100),
             **extra: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"phase": phase, "attempts": 3, "failedAttempts": 3 if phase == "Failed" else 0,
                          "deadLettered": phase == "Failed", "completedAt": fmt(completed), "podName": "job-3",
                          "lastError": "attempt 3: Error (exit code 1)" if phase == "Failed" else None,
                          "attemptHistory": [closed(1), closed(2), closed(3, *(("Completed", 0) if phase == "Succeeded"
                                                                                 else ("Error", 1)))],
                          "conditions": [
                              {"type": "Complete", "status": "True" if phase == "Succeeded" else "False",
                               "reason": "x", "message": "", "lastTransitionTime": fmt(completed)},
                              {"type": "Failed", "status": "True" if phase == "Failed" else "False",
                               "reason": "x", "message": "", "lastTransitionTime": fmt(completed)}]}
    st.update(extra)
    return st


def pod(attempt: int = 1, phase: str = "Running", **fields: Any) -> PodView:
    fields.setdefault("created", STARTED)
    fields.setdefault("started", STARTED)
    if phase in ("Succeeded", "Failed"):
        fields.setdefault("finished", ago(1))
        fields.setdefault("exit_code", 0 if phase == "Succeeded" else 1)
        fields.setdefault("reason", "Completed" if phase == "Succeeded" else "Error")
    return PodView(name=f"job-{attempt}", attempt=attempt, phase=phase, **fields)


def run(*, job: QueuedJobSpec | None = None, status: dict[str, Any] | None = None,
        pods: list[PodView] | None = None, w: World | None = None, annotations: dict[str, str] | None = None,
        generation: int | None = 3) -> Outcome:
    return reconcile(name="job", uid="uid-1", generation=generation, annotations=annotations or {},
                     spec=spec() if job is None else job, status=status, pods=pods or [], world=w or world())


def events(out: Outcome) -> list[str]:
    return [e.reason for e in out.events]


def cond(out_or_status: Outcome | dict[str, Any], type_: str) -> dict[str, Any] | None:
    st = out_or_status.status if isinstance(out_or_status, Outcome) else out_or_status
    found = [c for c in st.get("conditions", []) if c["type"] == type_]
    assert len(found) <= 1
    return dict(found[0]) if found else None


def record(out: Outcome, attempt: int) -> dict[str, Any]:
    (rec,) = [r for r in out.status["attemptHistory"] if r["attempt"] == attempt]
    return dict(rec)


# ================================================================================ a job not yet run
NEW_JOB = [
    # id, spec fields, world fields -> phase, waitingReason, runnable, wake_at, events
    pytest.param({}, {}, "Pending", None, True, None, [], id="ready"),
    pytest.param({"runAt": fmt(later(300))}, {}, "Waiting", "Delayed", False, later(300), [], id="runAt-future"),
    pytest.param({"runAt": fmt(NOW)}, {}, "Pending", None, True, None, [], id="runAt-now"),
    pytest.param({"runAt": fmt(ago(300))}, {}, "Pending", None, True, None, [], id="runAt-past"),
    pytest.param({"dependsOn": ["a", "b"]}, {"deps": {"a": "Succeeded", "b": "Running"}},
                 "Waiting", "Blocked", False, None, [], id="dependency-running"),
    pytest.param({"dependsOn": ["a"]}, {"deps": {"a": "Pending"}},
                 "Waiting", "Blocked", False, None, [], id="dependency-pending"),
    pytest.param({"dependsOn": ["a"]}, {"deps": {"a": None}},
                 "Waiting", "Blocked", False, None, [], id="dependency-not-found"),
    pytest.param({"dependsOn": ["a", "b"]}, {"deps": {"a": "Succeeded", "b": "Succeeded"}},
                 "Pending", None, True, None, [], id="dependencies-succeeded"),
    pytest.param({"dependsOn": ["a", "b"]}, {"deps": {"a": "Running", "b": "Failed"}},
                 "Failed", None, False, None, ["Failed", "DeadLettered"], id="dependency-failed"),
    pytest.param({}, {"queue_paused": True}, "Pending", "QueuePaused", False, None, [], id="queue-paused"),
    pytest.param({"suspend": True}, {}, "Suspended", None, False, None, ["Suspended"], id="suspended"),
    pytest.param({"uniqueKey": "k"}, {"duplicate_of": "orig"}, "Failed", None, False, None, ["Failed"],
                 id="duplicate"),
    pytest.param({"payload": "x" * MAX_PAYLOAD_BYTES}, {}, "Failed", None, False, None, ["Failed"],
                 id="payload-too-large"),
    pytest.param({"payload": "x" * (MAX_PAYLOAD_BYTES - 2)}, {}, "Pending", None, True, None, [],
                 id="payload-exactly-at-the-limit"),
    # precedence
    pytest.param({"suspend": True, "uniqueKey": "k"}, {"duplicate_of": "orig"}, "Suspended", None, False, None,
                 ["Suspended"], id="suspend-before-duplicate"),
    pytest.param({"uniqueKey": "k", "dependsOn": ["a"]}, {"duplicate_of": "orig", "deps": {"a": "Running"}},
                 "Failed", None, False, None, ["Failed"], id="duplicate-before-blocked"),
    pytest.param({"dependsOn": ["a"], "runAt": fmt(later(60))}, {"deps": {"a": "Running"}},
                 "Waiting", "Blocked", False, None, [], id="blocked-before-delayed"),
    pytest.param({"runAt": fmt(later(60))}, {"queue_paused": True}, "Waiting", "Delayed", False, later(60), [],
                 id="delayed-before-paused"),
]


@pytest.mark.parametrize(("fields", "world_fields", "phase", "waiting", "runnable", "wake_at", "evs"), NEW_JOB)
def test_new_job(fields: dict[str, Any], world_fields: dict[str, Any], phase: str, waiting: str | None,
                 runnable: bool, wake_at: datetime | None, evs: list[str]) -> None:
    out = run(job=spec(**fields), w=world(**world_fields))
    assert out.phase == phase
    assert out.status.get("waitingReason") == waiting
    assert out.runnable is runnable
    assert out.wake_at == wake_at
    assert events(out) == evs
    assert out.status["observedGeneration"] == 3
    assert not out.delete_pods and not out.delete_job


def test_delayed_job_says_until_when() -> None:
    out = run(job=spec(runAt=fmt(later(300))))
    assert out.status["nextAttemptAt"] == fmt(later(300))


@pytest.mark.parametrize(("deps", "message"), [
    pytest.param({"a": "Running"}, "waiting for a", id="one"),
    pytest.param({"a": None}, "waiting for a (not found)", id="missing"),
    pytest.param({"a": "Pending", "b": "Succeeded", "c": None}, "waiting for a, c (not found)", id="several"),
])
def test_blocked_condition_names_what_it_waits_for(deps: dict[str, str | None], message: str) -> None:
    out = run(job=spec(dependsOn=list(deps)), w=world(deps=deps))
    c = cond(out, "Blocked")
    assert c is not None and c["status"] == "True" and c["reason"] == "WaitingForDependencies"
    assert c["message"] == message and c["observedGeneration"] == 3


def test_blocked_condition_clears_when_the_dependencies_succeed() -> None:
    blocked = run(job=spec(dependsOn=["a"]), w=world(deps={"a": "Running"}, now=ago(30)))
    out = run(job=spec(dependsOn=["a"]), status=blocked.status, w=world(deps={"a": "Succeeded"}))
    c = cond(out, "Blocked")
    assert c is not None and c["status"] == "False" and c["reason"] == "DependenciesSucceeded"
    assert c["lastTransitionTime"] == fmt(NOW)
    assert out.phase == "Pending" and out.runnable and out.status["waitingReason"] is None


def test_no_blocked_condition_without_dependencies() -> None:
    assert cond(run(), "Blocked") is None


@pytest.mark.parametrize(("fields", "world_fields", "reason", "dead_letter", "text"), [
    pytest.param({"dependsOn": ["a"]}, {"deps": {"a": "Failed"}}, "DependencyFailed", True, "dependency a failed",
                 id="dependency"),
    pytest.param({"uniqueKey": "invoice-7", "queue": "mail"}, {"duplicate_of": "orig"}, "Duplicate", False,
                 "duplicate of orig: uniqueKey 'invoice-7' already has an unfinished job in queue mail", id="duplicate"),
    pytest.param({"payload": "x" * MAX_PAYLOAD_BYTES}, {}, "PayloadTooLarge", False,
                 f"more than the {MAX_PAYLOAD_BYTES} allowed", id="payload"),
])
def test_failing_before_any_attempt(fields: dict[str, Any], world_fields: dict[str, Any], reason: str,
                                    dead_letter: bool, text: str) -> None:
    out = run(job=spec(**fields), w=world(**world_fields))
    failed, complete = cond(out, "Failed"), cond(out, "Complete")
    assert failed is not None and failed["status"] == "True" and failed["reason"] == reason and text in failed["message"]
    assert complete is not None and complete["status"] == "False"
    assert out.status["deadLettered"] is dead_letter
    assert out.status["completedAt"] == fmt(NOW) and text in out.status["lastError"]
    assert out.status.get("attempts", 0) == 0
    assert out.events[0].type == "Warning" and reason in out.events[0].message


def test_duplicate_names_its_original() -> None:
    out = run(job=spec(uniqueKey="k"), w=world(duplicate_of="orig"))
    assert out.status["duplicateOf"] == "orig"


@pytest.mark.parametrize(("error", "message"), [
    pytest.param("spec.handler: Field required", "spec.handler: Field required", id="with-the-reason"),
    pytest.param(None, "the spec cannot be read", id="without-a-reason"),
])
def test_unreadable_spec_fails_once_with_invalid_spec(error: str | None, message: str) -> None:
    out = reconcile(name="job", uid="u", generation=1, annotations={}, spec=None, status=None, pods=[],
                    world=world(spec_error=error))
    assert out.phase == "Failed" and out.status["deadLettered"] is False
    failed = cond(out, "Failed")
    assert failed is not None and failed["reason"] == "InvalidSpec" and failed["message"] == message
    assert out.status["lastError"] == message and events(out) == ["Failed"]
    again = reconcile(name="job", uid="u", generation=1, annotations={}, spec=None, status=out.status, pods=[],
                      world=world(spec_error=error, now=later(10)))
    assert again.status == out.status and again.events == []  # once, not on every look


def test_unreadable_spec_leaves_a_finished_job_alone() -> None:
    st = finished("Succeeded")
    out = reconcile(name="job", uid="u", generation=1, annotations={}, spec=None, status=st, pods=[],
                    world=world(spec_error="bad"))
    assert out.phase == "Succeeded" and out.events == []


def test_reconcile_does_not_change_the_status_it_was_given() -> None:
    st = running()
    before = repr(st)
    run(status=st, pods=[pod(1, "Failed")])
    assert repr(st) == before


# ================================================================================ a running attempt
RUNNING = [
    # id, pod, world fields -> phase, failure reason in the record (None: still open), delete pods
    pytest.param(pod(1), {}, "Running", None, [], id="running"),
    pytest.param(pod(1, "Pending", started=None, waiting_reason="ContainerCreating"), {}, "Running", None, [],
                 id="pod-pending-container-creating"),
    pytest.param(pod(1, "Pending", waiting_reason="ImagePullBackOff"), {}, "Running", None, [],
                 id="image-pull-backoff-may-clear"),
    pytest.param(pod(1, deleting=True), {}, "Running", None, [], id="pod-deleting-not-terminal-yet"),
    pytest.param(pod(1), {"timeout_seconds": 100}, "Running", None, [], id="within-timeout"),
    pytest.param(pod(1, started=ago(100 + TIMEOUT_GRACE_SECONDS)), {"timeout_seconds": 100}, "Waiting", "Timeout",
                 ["job-1"], id="timeout-plus-grace-reached"),
    pytest.param(pod(1, started=ago(100 + TIMEOUT_GRACE_SECONDS - 1)), {"timeout_seconds": 100}, "Running", None,
                 [], id="one-second-before-the-grace-ends"),
    pytest.param(pod(1, started=None, created=ago(500)), {"timeout_seconds": 100}, "Waiting", "Timeout", ["job-1"],
                 id="timeout-counted-from-creation-when-never-started"),
    pytest.param(pod(1, "Pending", waiting_reason="ErrImageNeverPull", waiting_message="not present"), {},
                 "Waiting", "ErrImageNeverPull", ["job-1"], id="cannot-start"),
]


@pytest.mark.parametrize(("the_pod", "world_fields", "phase", "failure", "deleted"), RUNNING)
def test_running_attempt(the_pod: PodView, world_fields: dict[str, Any], phase: str, failure: str | None,
                         deleted: list[str]) -> None:
    out = run(status=running(), pods=[the_pod], w=world(**world_fields))
    assert out.phase == phase
    assert out.delete_pods == deleted
    rec = record(out, 1)
    if failure is None:
        assert "finishedAt" not in rec and events(out) == [] and out.status.get("failedAttempts", 0) == 0
    else:
        assert rec["reason"] == failure and rec["finishedAt"] == fmt(NOW)
        assert out.status["failedAttempts"] == 1 and events(out) == ["AttemptFailed", "Retrying"]
        assert out.status["waitingReason"] == "BackingOff"


def test_running_attempt_wakes_up_when_its_timeout_and_grace_end() -> None:
    out = run(status=running(), pods=[pod(1, started=ago(30))], w=world(timeout_seconds=100))
    assert out.wake_at == ago(30) + timedelta(seconds=100 + TIMEOUT_GRACE_SECONDS)
    assert run(status=running(), pods=[pod(1)]).wake_at is None  # no timeout: nothing to wait for


def test_timeout_says_which_limit() -> None:
    out = run(status=running(), pods=[pod(1, started=ago(1000))], w=world(timeout_seconds=100))
    assert out.status["lastError"] == "attempt 1: Timeout (Timeout): attempt exceeded timeoutSeconds=100"


@pytest.mark.parametrize("reason", sorted(CANNOT_START))
def test_cannot_start_uses_the_runtimes_words_or_a_default(reason: str) -> None:
    out = run(status=running(), pods=[pod(1, "Pending", waiting_reason=reason)])
    assert record(out, 1)["reason"] == reason
    assert "the worker container of job-1 cannot start" in out.status["lastError"]


def test_pod_gone_mid_attempt_is_a_failure() -> None:
    out = run(status=running(), pods=[])
    rec = record(out, 1)
    assert rec["reason"] == "PodDeleted" and "disappeared" in rec["message"] and "exitCode" not in rec
    assert out.phase == "Waiting" and out.status["waitingReason"] == "BackingOff" and out.status["failedAttempts"] == 1


def test_only_the_pod_of_the_current_attempt_counts() -> None:
    out = run(status=running(2, failed=1), pods=[pod(1, "Failed")])  # attempt 2's pod is gone
    assert record(out, 2)["reason"] == "PodDeleted" and out.status["failedAttempts"] == 2


# ================================================================================ an attempt that ended
def test_succeeded_attempt() -> None:
    out = run(status=running(), pods=[pod(1, "Succeeded", message='{"sent": true, "n": 3}', finished=ago(2))])
    assert out.phase == "Succeeded"
    assert out.status["result"] == {"sent": True, "n": 3}
    assert out.status["progress"] == 100 and out.status["completedAt"] == fmt(NOW)
    assert out.status["nextAttemptAt"] is None and out.status["waitingReason"] is None
    rec = record(out, 1)
    assert rec["reason"] == "Completed" and rec["exitCode"] == 0 and rec["finishedAt"] == fmt(ago(2))
    complete, failed = cond(out, "Complete"), cond(out, "Failed")
    assert complete is not None and complete["status"] == "True" and complete["reason"] == "Succeeded"
    assert failed is not None and failed["status"] == "False"
    assert events(out) == ["Succeeded"] and out.events[0].type == "Normal"
    assert not out.delete_pods and out.wake_at is None and not out.delete_job


@pytest.mark.parametrize(("message", "result"), [
    pytest.param('{"a": [1, 2]}', {"a": [1, 2]}, id="json-object"),
    pytest.param("42", 42, id="json-number"),
    pytest.param('"text"', "text", id="json-string"),
    pytest.param("null", None, id="json-null"),
    pytest.param("not json at all", "not json at all", id="plain-text-kept-as-text"),
    pytest.param(None, None, id="no-message"),
    pytest.param("", None, id="empty-message"),
])
def test_result_comes_from_the_termination_message(message: str | None, result: Any) -> None:
    out = run(status=running(), pods=[pod(1, "Succeeded", message=message)])
    assert out.phase == "Succeeded" and out.status["result"] == result


def test_succeeded_without_exit_code_records_0() -> None:
    out = run(status=running(), pods=[pod(1, "Succeeded", exit_code=None)])
    assert record(out, 1)["exitCode"] == 0


FAILED_ATTEMPT = [
    # id, pod fields, status -> record reason, exit code, phase, failed condition reason (None: retried)
    pytest.param({"exit_code": 1, "reason": "Error", "message": "boom"}, running(),
                 "Error", 1, "Waiting", None, id="exit-1-retryable"),
    pytest.param({"exit_code": 137, "reason": "OOMKilled", "message": None}, running(),
                 "OOMKilled", 137, "Waiting", None, id="oom-killed-retryable"),
    pytest.param({"exit_code": names.EXIT_TERMINATED, "reason": "Error"}, running(),
                 "Error", 143, "Waiting", None, id="terminated-143-retryable"),
    pytest.param({"exit_code": None, "reason": None, "pod_reason": "DeadlineExceeded"}, running(),
                 "Timeout", None, "Waiting", None, id="deadline-exceeded-is-timeout"),
    pytest.param({"exit_code": None, "reason": None, "pod_reason": "Evicted"}, running(),
                 "Evicted", None, "Waiting", None, id="evicted"),
    pytest.param({"exit_code": 137, "reason": "Error", "deleting": True}, running(),
                 "PodDeleted", 137, "Waiting", None, id="deleted-mid-run"),
    pytest.param({"exit_code": None, "reason": None}, running(),
                 "Error", None, "Waiting", None, id="no-reason-is-error"),
    pytest.param({"exit_code": names.EXIT_UNKNOWN_HANDLER}, running(),
                 "Error", 64, "Failed", "UnknownHandler", id="exit-64-unknown-handler"),
    pytest.param({"exit_code": names.EXIT_BAD_INPUT}, running(),
                 "Error", 65, "Failed", "InvalidInput", id="exit-65-invalid-input"),
    pytest.param({"exit_code": names.EXIT_PERMANENT}, running(),
                 "Error", 66, "Failed", "PermanentError", id="exit-66-permanent-error"),
    pytest.param({"exit_code": 42}, running(),
                 "Error", 42, "Failed", "NonRetryableExitCode", id="user-non-retryable-exit-code"),
    pytest.param({"exit_code": 1}, running(3, failed=2),
                 "Error", 1, "Failed", "RetriesExhausted", id="retries-exhausted"),
    pytest.param({"exit_code": 1}, running(2, failed=1),
                 "Error", 1, "Waiting", None, id="last-retry-left"),
]


@pytest.mark.parametrize(("pod_fields", "status", "reason", "exit_code", "phase", "why"), FAILED_ATTEMPT)
def test_failed_attempt(pod_fields: dict[str, Any], status: dict[str, Any], reason: str, exit_code: int | None,
                        phase: str, why: str | None) -> None:
    attempt = status["attempts"]
    out = run(status=status, pods=[pod(attempt, "Failed", **pod_fields)])
    rec = record(out, attempt)
    assert rec["reason"] == reason and rec.get("exitCode") == exit_code and rec["finishedAt"] == fmt(ago(1))
    assert out.phase == phase
    assert out.status["failedAttempts"] == status["failedAttempts"] + 1
    assert out.status["lastError"].startswith(f"attempt {attempt}: {reason}")
    assert not out.delete_pods  # a terminal pod stays (its logs); it goes with the job
    if why is None:  # retried after a backoff
        assert out.status["waitingReason"] == "BackingOff" and not out.runnable
        assert events(out) == ["AttemptFailed", "Retrying"]
        assert cond(out, "Failed") is None
    else:  # dead-lettered
        failed = cond(out, "Failed")
        assert failed is not None and failed["status"] == "True" and failed["reason"] == why
        assert out.status["deadLettered"] is True and out.status["completedAt"] == fmt(NOW)
        assert out.status["nextAttemptAt"] is None and out.wake_at is None
        assert events(out) == ["AttemptFailed", "Failed", "DeadLettered"]
        assert names.ANNOTATION_REQUEUE in out.events[-1].message


@pytest.mark.parametrize(("failed_before", "delay", "attempt_text"), [
    pytest.param(0, 10, "attempt 2 of at most 3", id="first-failure"),
    pytest.param(1, 20, "attempt 3 of at most 3", id="second-failure"),
])
def test_backoff_after_a_failure(failed_before: int, delay: int, attempt_text: str) -> None:
    attempt = failed_before + 1
    out = run(status=running(attempt, failed=failed_before), pods=[pod(attempt, "Failed")])
    assert out.status["nextAttemptAt"] == fmt(later(delay))  # counted from when the failure was seen
    assert out.wake_at == later(delay)
    retrying = out.events[-1]
    assert retrying.reason == "Retrying" and f"retrying in {delay}s" in retrying.message
    assert attempt_text in retrying.message


def test_backoff_uses_the_jitter_seed() -> None:
    jittery = ResolvedRetry(limit=3, initial_seconds=100, factor=2.0, max_seconds=1000, jitter=0.5,
                            non_retryable_exit_codes=frozenset())
    at = {seed: run(status=running(), pods=[pod(1, "Failed")], w=world(retry=jittery, seed=seed)).wake_at
          for seed in ("uid-a", "uid-b", "uid-c")}
    assert len(set(at.values())) == 3
    assert all(at_ is not None and later(50) <= at_ <= later(150) for at_ in at.values())
    again = run(status=running(), pods=[pod(1, "Failed")], w=world(retry=jittery, seed="uid-a")).wake_at
    assert again == at["uid-a"]


def test_retries_exhausted_keeps_the_attempts_error() -> None:
    out = run(status=running(3, failed=2), pods=[pod(3, "Failed", message="stack trace")])
    assert out.status["lastError"] == "attempt 3: Error (exit code 1): stack trace"
    failed = cond(out, "Failed")
    assert failed is not None and failed["message"].startswith("failed 3 times (retry.limit 2); last: attempt 3")


def test_zero_retries_fails_at_the_first_failure() -> None:
    no_retry = ResolvedRetry(limit=0, initial_seconds=10, factor=2.0, max_seconds=60, jitter=0.0,
                             non_retryable_exit_codes=frozenset())
    out = run(status=running(), pods=[pod(1, "Failed")], w=world(retry=no_retry))
    failed = cond(out, "Failed")
    assert out.phase == "Failed" and failed is not None and failed["reason"] == "RetriesExhausted"


def test_long_messages_are_cut() -> None:
    out = run(status=running(), pods=[pod(1, "Failed", message="x" * 10_000)])
    assert len(record(out, 1)["message"]) == 1024
    assert len(out.status["lastError"]) == 4096
    assert all(len(e.message) <= 1024 for e in out.events)


@pytest.mark.parametrize(("ttl", "delete", "wake_at"), [
    pytest.param(None, False, None, id="no-ttl"),
    pytest.param(0, True, None, id="ttl-0-deletes-at-once"),
    pytest.param(600, False, later(600), id="ttl-wakes-up-to-delete"),
])
def test_ttl_right_after_success(ttl: int | None, delete: bool, wake_at: datetime | None) -> None:
    out = run(status=running(), pods=[pod(1, "Succeeded")], w=world(ttl_seconds_after_finished=ttl))
    assert out.phase == "Succeeded" and out.delete_job is delete and out.wake_at == wake_at


def test_ttl_after_dead_letter() -> None:
    out = run(status=running(3, failed=2), pods=[pod(3, "Failed")], w=world(ttl_seconds_after_finished=0))
    assert out.phase == "Failed" and out.delete_job


# ================================================================================ waiting between attempts
def backing_off(until: datetime, **extra: Any) -> dict[str, Any]:
    st = running()
    st["attemptHistory"][0].update(finishedAt=fmt(ago(5)), reason="Error", exitCode=1)
    st.update(phase="Waiting", waitingReason="BackingOff", failedAttempts=1, nextAttemptAt=fmt(until), **extra)
    return st


@pytest.mark.parametrize(("until", "phase", "runnable", "wake_at"), [
    pytest.param(later(5), "Waiting", False, later(5), id="still-backing-off"),
    pytest.param(NOW, "Pending", True, None, id="backoff-just-over"),
    pytest.param(ago(5), "Pending", True, None, id="backoff-over"),
])
def test_backing_off(until: datetime, phase: str, runnable: bool, wake_at: datetime | None) -> None:
    out = run(status=backing_off(until), pods=[pod(1, "Failed")])
    assert out.phase == phase and out.runnable is runnable and out.wake_at == wake_at
    assert out.events == []
    if phase == "Pending":
        assert out.status["nextAttemptAt"] is None and out.status["waitingReason"] is None
    else:
        assert out.status["waitingReason"] == "BackingOff"


def test_run_at_only_delays_the_first_attempt() -> None:
    out = run(job=spec(runAt=fmt(later(3600))), status=backing_off(ago(1)), pods=[pod(1, "Failed")])
    assert out.phase == "Pending" and out.runnable


def test_paused_queue_after_backoff() -> None:
    out = run(status=backing_off(ago(1)), pods=[pod(1, "Failed")], w=world(queue_paused=True))
    assert out.phase == "Pending" and out.status["waitingReason"] == "QueuePaused" and not out.runnable


# ================================================================================ suspend and resume
def test_suspend_stops_the_running_attempt_without_counting_a_failure() -> None:
    out = run(job=spec(suspend=True), status=running(), pods=[pod(1)])
    assert out.phase == "Suspended" and out.delete_pods == ["job-1"]
    rec = record(out, 1)
    assert rec["reason"] == "Suspended" and rec["finishedAt"] == fmt(NOW) and "not counted" in rec["message"]
    assert out.status["failedAttempts"] == 0 and "lastError" not in out.status
    assert events(out) == ["Suspended"]
    c = cond(out, "Suspended")
    assert c is not None and c["status"] == "True" and c["reason"] == "SpecSuspend"


def test_suspended_job_stays_put_quietly() -> None:
    first = run(job=spec(suspend=True), status=running(), pods=[pod(1)])
    out = run(job=spec(suspend=True), status=first.status, pods=[pod(1, "Failed", exit_code=143, deleting=True)],
              w=world(now=later(5)))
    assert out.phase == "Suspended" and out.events == [] and not out.delete_pods
    assert out.status["failedAttempts"] == 0


def test_pod_that_ends_while_suspending_is_not_a_failure() -> None:
    out = run(job=spec(suspend=True), status=running(), pods=[pod(1, "Failed", exit_code=143)])
    assert out.phase == "Suspended" and record(out, 1)["reason"] == "Suspended"
    assert record(out, 1)["exitCode"] == 143 and out.status["failedAttempts"] == 0


def test_suspended_pod_that_succeeded_anyway_is_a_success() -> None:
    out = run(job=spec(suspend=True), status=running(), pods=[pod(1, "Succeeded")])
    assert out.phase == "Succeeded"


def suspended_status() -> dict[str, Any]:
    return run(job=spec(suspend=True), status=running(), pods=[pod(1)], w=world(now=ago(60))).status


def test_resume() -> None:
    out = run(job=spec(suspend=False), status=suspended_status(), pods=[])
    assert out.phase == "Pending" and out.runnable
    assert events(out) == ["Resumed"]
    assert out.status["failedAttempts"] == 0


def test_resume_clears_the_suspended_condition() -> None:
    out = run(job=spec(suspend=False), status=suspended_status(), pods=[])
    c = cond(out, "Suspended")
    assert c is not None and c["status"] == "False"


def test_new_job_suspended_then_resumed_starts_from_attempt_1() -> None:
    held = run(job=spec(suspend=True))
    out = run(job=spec(), status=held.status, w=world(now=later(5)))
    assert out.phase == "Pending" and out.runnable and events(out) == ["Resumed"]
    assert out.status.get("attempts", 0) == 0


# ================================================================================ requeue
def test_requeue_runs_a_dead_letter_again_with_a_fresh_budget() -> None:
    st = finished("Failed", result=None, progress=40)
    out = run(status=st, pods=[pod(3, "Failed")], annotations={names.ANNOTATION_REQUEUE: "t1"})
    assert out.phase == "Pending" and out.runnable
    assert out.status["failedAttempts"] == 0 and out.status["deadLettered"] is False
    assert out.status["completedAt"] is None and out.status["progress"] is None
    assert out.status["requeueToken"] == "t1"
    assert out.status["attempts"] == 3 and len(out.status["attemptHistory"]) == 3  # history kept, numbers go on
    for type_ in ("Complete", "Failed"):
        c = cond(out, type_)
        assert c is not None and c["status"] == "False" and c["reason"] == "Requeued" and "t1" in c["message"]
    assert events(out) == ["Requeued"]
    started, _ = start_attempt(out.status, attempt=4, pod="job-4", now=later(1), generation=3)
    assert started["attempts"] == 4 and [r["attempt"] for r in started["attemptHistory"]] == [1, 2, 3, 4]


def test_requeue_of_a_success() -> None:
    st = finished("Succeeded", result={"a": 1})
    out = run(status=st, pods=[pod(3, "Succeeded")], annotations={names.ANNOTATION_REQUEUE: "again"})
    assert out.phase == "Pending" and out.status["result"] is None and events(out) == ["Requeued"]


def test_requeued_job_has_the_whole_retry_budget() -> None:
    requeued = run(status=finished("Failed"), pods=[pod(3, "Failed")], annotations={names.ANNOTATION_REQUEUE: "t1"})
    st, _ = start_attempt(requeued.status, attempt=4, pod="job-4", now=NOW, generation=3)
    out = run(status=st, pods=[pod(3, "Failed"), pod(4, "Failed")], annotations={names.ANNOTATION_REQUEUE: "t1"},
              w=world(now=later(10)))
    assert out.phase == "Waiting" and out.status["failedAttempts"] == 1  # not dead again at once


@pytest.mark.parametrize(("status", "phase"), [
    pytest.param(finished("Failed", requeueToken="t1"), "Failed", id="same-token-on-a-dead-letter"),
    pytest.param(running(requeueToken="t0"), "Running", id="new-token-on-a-running-job"),
])
def test_requeue_token_that_does_not_requeue(status: dict[str, Any], phase: str) -> None:
    pods = [pod(3, "Failed")] if phase == "Failed" else [pod(1)]
    out = run(status=status, pods=pods, annotations={names.ANNOTATION_REQUEUE: "t1"})
    assert out.phase == phase and "Requeued" not in events(out)
    assert out.status["requeueToken"] == "t1"  # handled: a later finish does not requeue with it
    if phase == "Failed":
        assert out.status["deadLettered"] is True


def test_token_seen_while_running_does_not_requeue_after_the_finish() -> None:
    seen = run(status=running(), pods=[pod(1)], annotations={names.ANNOTATION_REQUEUE: "t1"})
    done = run(status=seen.status, pods=[pod(1, "Succeeded")], annotations={names.ANNOTATION_REQUEUE: "t1"})
    again = run(status=done.status, pods=[pod(1, "Succeeded")], annotations={names.ANNOTATION_REQUEUE: "t1"},
                w=world(now=later(5)))
    assert again.phase == "Succeeded" and again.events == []


# ================================================================================ finished jobs and TTL
@pytest.mark.parametrize(("phase", "ttl", "delete", "wake_at"), [
    pytest.param("Succeeded", None, False, None, id="no-ttl-stays"),
    pytest.param("Succeeded", 50, True, None, id="ttl-passed"),
    pytest.param("Succeeded", 100, True, None, id="ttl-exactly-now"),
    pytest.param("Succeeded", 200, False, later(100), id="ttl-ahead"),
    pytest.param("Failed", 50, True, None, id="dead-letter-ttl-passed"),
    pytest.param("Failed", 200, False, later(100), id="dead-letter-ttl-ahead"),
])
def test_finished_job_and_its_ttl(phase: str, ttl: int | None, delete: bool, wake_at: datetime | None) -> None:
    st = finished(phase, completed=ago(100))
    out = run(status=st, pods=[pod(3, phase)], w=world(ttl_seconds_after_finished=ttl))
    assert out.phase == phase and out.delete_job is delete and out.wake_at == wake_at
    assert out.events == [] and not out.delete_pods and not out.runnable
    assert {k: v for k, v in out.status.items() if k != "observedGeneration"} == \
        {k: v for k, v in st.items() if k != "observedGeneration"}


def test_finished_job_without_completion_time_is_never_deleted() -> None:
    st = finished("Succeeded")
    del st["completedAt"]
    out = run(status=st, w=world(ttl_seconds_after_finished=0))
    assert not out.delete_job and out.wake_at is None


def test_finished_job_ignores_a_stray_newer_pod() -> None:
    out = run(status=finished("Succeeded"), pods=[pod(4)])
    assert out.phase == "Succeeded" and "Adopted" not in events(out) and out.status["attempts"] == 3


# ================================================================================ adoption
def test_adopts_a_pod_the_last_operator_created_but_did_not_record() -> None:
    out = run(status=None, pods=[pod(1, created=ago(20))])
    assert out.phase == "Running" and out.status["attempts"] == 1 and out.status["podName"] == "job-1"
    assert record(out, 1)["startedAt"] == fmt(ago(20)) and out.status["startedAt"] == fmt(ago(20))
    assert events(out) == ["Adopted"]


def test_adopted_pod_that_already_succeeded() -> None:
    out = run(status={"phase": "Pending"}, pods=[pod(1, "Succeeded", message='"ok"')])
    assert events(out) == ["Adopted", "Succeeded"] and out.phase == "Succeeded" and out.status["result"] == "ok"


def test_adopts_the_next_attempt_after_a_backoff() -> None:
    out = run(status=backing_off(ago(1)), pods=[pod(1, "Failed"), pod(2, created=ago(0.5))])
    assert out.phase == "Running" and out.status["attempts"] == 2 and out.status["podName"] == "job-2"
    assert [r["attempt"] for r in out.status["attemptHistory"]] == [1, 2] and events(out) == ["Adopted"]


# ================================================================================ start_attempt and history
def test_start_attempt() -> None:
    st, ev = start_attempt({"phase": "Pending", "waitingReason": "QueuePaused", "nextAttemptAt": fmt(NOW),
                            "progress": 30}, attempt=1, pod="job-1", now=NOW, generation=4)
    assert st["phase"] == "Running" and st["attempts"] == 1 and st["podName"] == "job-1"
    assert st["waitingReason"] is None and st["nextAttemptAt"] is None and st["progress"] is None
    assert st["startedAt"] == fmt(NOW) and st["observedGeneration"] == 4
    assert st["attemptHistory"] == [{"attempt": 1, "pod": "job-1", "startedAt": fmt(NOW)}]
    assert (ev.type, ev.reason) == ("Normal", "Started") and "job-1" in ev.message and "attempt 1" in ev.message


def test_start_attempt_from_nothing_and_with_a_fraction_of_a_second() -> None:
    t = NOW + timedelta(microseconds=250_000)
    st, _ = start_attempt(None, attempt=1, pod="p", now=t, generation=None)
    assert st["startedAt"] == "2026-06-01T12:00:00.250000Z" and parse(st["startedAt"]) == t


def test_later_attempts_keep_the_first_start_time() -> None:
    st, _ = start_attempt(backing_off(ago(1)), attempt=2, pod="job-2", now=NOW, generation=1)
    assert st["startedAt"] == fmt(STARTED) and st["attempts"] == 2


def test_start_attempt_twice_records_it_once() -> None:
    st, _ = start_attempt(None, attempt=1, pod="p", now=NOW, generation=1)
    again, _ = start_attempt(st, attempt=1, pod="p", now=later(1), generation=1)
    assert len(again["attemptHistory"]) == 1


def test_start_attempt_does_not_change_its_input() -> None:
    st = backing_off(ago(1))
    before = repr(st)
    start_attempt(st, attempt=2, pod="job-2", now=NOW, generation=1)
    assert repr(st) == before


@pytest.mark.parametrize(("kept", "older_before", "first_kept", "older_after"), [
    pytest.param(MAX_ATTEMPT_HISTORY - 1, 0, 1, 0, id="filling-the-last-place"),
    pytest.param(MAX_ATTEMPT_HISTORY, 0, 2, 1, id="first-overflow"),
    pytest.param(MAX_ATTEMPT_HISTORY, 5, 2, 6, id="overflow-adds-to-older-attempts"),
])
def test_attempt_history_is_capped(kept: int, older_before: int, first_kept: int, older_after: int) -> None:
    status = {"phase": "Waiting", "attempts": kept, "attemptHistory": [closed(i) for i in range(1, kept + 1)]}
    if older_before:
        status["olderAttempts"] = older_before
    st, _ = start_attempt(status, attempt=kept + 1, pod=f"job-{kept + 1}", now=NOW, generation=1)
    history = [r["attempt"] for r in st["attemptHistory"]]
    assert len(history) == min(kept + 1, MAX_ATTEMPT_HISTORY)
    assert history[0] == first_kept and history[-1] == kept + 1
    assert st.get("olderAttempts", 0) == older_after


def test_adoption_is_capped_too() -> None:
    st = {"phase": "Waiting", "attempts": MAX_ATTEMPT_HISTORY,
          "attemptHistory": [closed(i) for i in range(1, MAX_ATTEMPT_HISTORY + 1)]}
    out = run(status=st, pods=[pod(MAX_ATTEMPT_HISTORY + 1)])
    assert len(out.status["attemptHistory"]) == MAX_ATTEMPT_HISTORY and out.status["olderAttempts"] == 1


# ================================================================================ one job's whole life
def test_a_job_that_fails_once_then_succeeds() -> None:
    first = run()
    assert first.phase == "Pending" and first.runnable
    st, _ = start_attempt(first.status, attempt=1, pod="job-1", now=NOW, generation=3)
    failed = run(status=st, pods=[pod(1, "Failed", started=NOW, finished=later(4))], w=world(now=later(5)))
    assert failed.phase == "Waiting" and failed.wake_at == later(15)
    early = run(status=failed.status, pods=[pod(1, "Failed")], w=world(now=later(10)))
    assert early.phase == "Waiting" and not early.runnable
    ready = run(status=failed.status, pods=[pod(1, "Failed")], w=world(now=later(15)))
    assert ready.phase == "Pending" and ready.runnable
    st, _ = start_attempt(ready.status, attempt=2, pod="job-2", now=later(15), generation=3)
    done = run(status=st, pods=[pod(1, "Failed"), pod(2, "Succeeded", message="7")], w=world(now=later(20)))
    assert done.phase == "Succeeded" and done.status["result"] == 7
    assert done.status["attempts"] == 2 and done.status["failedAttempts"] == 1
    assert [r["reason"] for r in done.status["attemptHistory"]] == ["Error", "Completed"]


# ================================================================================ helpers
def test_set_condition() -> None:
    st: dict[str, Any] = {}
    set_condition(st, "Ready", True, "A", "first", ago(10), 1)
    assert st["conditions"] == [{"type": "Ready", "status": "True", "reason": "A", "message": "first",
                                 "lastTransitionTime": fmt(ago(10)), "observedGeneration": 1}]
    set_condition(st, "Ready", True, "B", "same status", NOW, 2)
    c = cond(st, "Ready")
    assert c is not None and c["lastTransitionTime"] == fmt(ago(10))  # no transition
    assert c["reason"] == "B" and c["message"] == "same status" and c["observedGeneration"] == 2
    set_condition(st, "Ready", False, "C", "x" * 40_000, NOW, None)
    c = cond(st, "Ready")
    assert c is not None and c["status"] == "False" and c["lastTransitionTime"] == fmt(NOW)
    assert len(c["message"]) == 32768 and c["observedGeneration"] == 2
    set_condition(st, "Other", False, "D", "", NOW, None)
    assert [x["type"] for x in st["conditions"]] == ["Ready", "Other"]
    assert "observedGeneration" not in st["conditions"][1]


def test_finish_failed_keeps_an_earlier_error() -> None:
    out = Outcome(status={"lastError": "attempt 1: Error"})
    finish_failed(out, NOW, 1, "NoImage", "no worker image", dead_letter=False)
    assert out.status["lastError"] == "attempt 1: Error"
    assert out.phase == "Failed" and events(out) == ["Failed"]
    fresh = Outcome(status={})
    finish_failed(fresh, NOW, 1, "NoImage", "no worker image", dead_letter=True)
    assert fresh.status["lastError"] == "no worker image" and events(fresh) == ["Failed", "DeadLettered"]


def test_outcome_phase_is_text_or_none() -> None:
    assert Outcome(status={}).phase is None
    assert Outcome(status={"phase": 3}).phase is None
    assert Outcome(status={"phase": "Running"}).phase == "Running"


def raw_pod(labels: dict[str, str] | None, status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "job-2", "labels": labels or {}, **meta}, "status": status or {}}


@pytest.mark.parametrize("labels", [
    pytest.param({}, id="no-attempt-label"),
    pytest.param({names.LABEL_ATTEMPT: "two"}, id="attempt-label-not-a-number"),
])
def test_pod_view_skips_pods_that_are_not_attempts(labels: dict[str, str]) -> None:
    assert pod_view(raw_pod(labels)) is None


def test_pod_view_reads_the_worker_container() -> None:
    view = pod_view(raw_pod(
        {names.LABEL_ATTEMPT: "2"},
        {"phase": "Failed", "startTime": "2026-06-01T11:00:00Z", "reason": "Evicted",
         "containerStatuses": [
             {"name": "sidecar", "state": {"terminated": {"exitCode": 9, "reason": "Other"}}},
             {"name": names.WORKER_CONTAINER, "state": {"terminated": {
                 "exitCode": 3, "reason": "Error", "message": "tail", "finishedAt": "2026-06-01T11:01:00Z"}}}]},
        creationTimestamp="2026-06-01T10:59:59Z", deletionTimestamp="2026-06-01T11:02:00Z"))
    assert view == PodView(name="job-2", attempt=2, phase="Failed", deleting=True,
                           deletion_deadline=datetime(2026, 6, 1, 11, 2, tzinfo=UTC),
                           created=datetime(2026, 6, 1, 10, 59, 59, tzinfo=UTC),
                           started=datetime(2026, 6, 1, 11, 0, tzinfo=UTC),
                           finished=datetime(2026, 6, 1, 11, 1, tzinfo=UTC), exit_code=3, reason="Error",
                           message="tail", pod_reason="Evicted", disruption="Evicted")
    assert view.terminal


def test_pod_view_of_a_new_pod() -> None:
    view = pod_view(raw_pod({names.LABEL_ATTEMPT: "1"}, {"containerStatuses": [
        {"name": names.WORKER_CONTAINER, "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "m"}}}]}))
    assert view is not None and view.phase == "Pending" and not view.terminal and not view.deleting
    assert view.waiting_reason == "ErrImageNeverPull" and view.waiting_message == "m"
    assert view.exit_code is None and view.created is None
    bare = pod_view({"metadata": {"labels": {names.LABEL_ATTEMPT: "1"}}})
    assert bare is not None and bare.phase == "Pending" and bare.name == ""


@pytest.mark.parametrize(("pod_message", "container_message", "error"), [
    pytest.param("The node was low on resource: memory.", None, "The node was low on resource: memory.",
                 id="the-kubelet-says-why"),
    pytest.param("The node was low on resource: memory.", "worker tail", "worker tail", id="the-worker-said-last"),
    pytest.param(None, None, "the pod was evicted", id="nobody-says-why"),
])
def test_an_eviction_keeps_its_reason(pod_message: str | None, container_message: str | None, error: str) -> None:
    """Beyond retry.disruptionLimit (0 here) a kubelet eviction counts as a failure, with its reason."""
    w = world(retry=dataclasses.replace(RETRY, disruption_limit=0))
    out = run(status=running(), w=w, pods=[pod(1, "Failed", exit_code=None, reason=None, pod_reason="Evicted",
                                               disruption="Evicted", pod_message=pod_message,
                                               message=container_message)])
    assert record(out, 1)["reason"] == "Evicted" and error in out.status["lastError"]


# ================================================================================ the dispatcher's reasons
@pytest.mark.parametrize(("before", "paused", "after"), [
    pytest.param({"phase": "Pending", "waitingReason": "ConcurrencyLimit"}, False, "ConcurrencyLimit", id="kept"),
    pytest.param({"phase": "Pending", "waitingReason": "RateLimited"}, False, "RateLimited", id="rate-kept"),
    pytest.param({"phase": "Pending", "waitingReason": "KeyConcurrencyLimit"}, False, "KeyConcurrencyLimit",
                 id="key-kept"),
    pytest.param({"phase": "Pending", "waitingReason": "ConcurrencyLimit"}, True, "QueuePaused", id="paused-wins"),
    pytest.param({"phase": "Pending", "waitingReason": "QueuePaused"}, False, None, id="unpaused-clears"),
    pytest.param({"phase": "Waiting", "waitingReason": "Delayed"}, False, None, id="not-a-dispatch-reason"),
])
def test_plan_keeps_the_dispatchers_waiting_reason(before: dict[str, Any], paused: bool, after: str | None) -> None:
    """Re-planning a Pending job must not undo the reason the dispatcher wrote (no write ping-pong)."""
    out = run(status=before, w=world(queue_paused=paused))
    assert out.phase == "Pending" and out.status.get("waitingReason") == after


# ================================================================================ pod disruptions
EVICTED = {"exit_code": None, "reason": None, "pod_reason": None, "disruption": "EvictionByEvictionAPI"}


@pytest.mark.parametrize("limit", [0, 3])
def test_a_disrupted_attempt_is_retried_without_using_a_retry(limit: int) -> None:
    """An eviction, preemption or drain is not the handler's failure: even with retry.limit 0 the job
    runs again at once, and failedAttempts does not move."""
    w = world(retry=dataclasses.replace(RETRY, limit=limit))
    out = run(status=running(), pods=[pod(1, "Failed", **EVICTED)], w=w)
    assert out.phase == "Pending" and out.runnable
    assert out.status["disruptedAttempts"] == 1 and out.status.get("failedAttempts", 0) == 0
    rec = record(out, 1)
    assert rec["reason"] == "Disrupted" and rec["disruption"] == "EvictionByEvictionAPI"
    assert "not counted as a failure" in rec["message"]
    assert events(out) == ["Disrupted"] and not out.status.get("deadLettered")


def test_a_disruption_seen_while_the_pod_terminates_is_remembered_when_it_is_gone() -> None:
    terminating = run(status=running(), pods=[pod(1, "Running", deleting=True, disruption="PreemptionByScheduler")])
    assert terminating.phase == "Running" and record(terminating, 1)["disruption"] == "PreemptionByScheduler"
    gone = run(status=terminating.status, pods=[])
    assert gone.phase == "Pending" and record(gone, 1)["reason"] == "Disrupted"
    assert gone.status["disruptedAttempts"] == 1 and gone.status.get("failedAttempts", 0) == 0


def test_disruptions_beyond_the_limit_count_as_failures() -> None:
    w = world(retry=dataclasses.replace(RETRY, limit=0, disruption_limit=2))
    out = run(status=running(disruptedAttempts=2), pods=[pod(1, "Failed", **EVICTED)], w=w)
    assert out.phase == "Failed" and out.status["failedAttempts"] == 1 and out.status["deadLettered"] is True


def test_a_pod_that_succeeded_despite_a_disruption_condition_succeeded() -> None:
    out = run(status=running(), pods=[pod(1, "Succeeded", disruption="DeletionByTaintManager")])
    assert out.phase == "Succeeded" and not out.status.get("disruptedAttempts")
