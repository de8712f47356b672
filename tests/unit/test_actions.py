"""The write side (jobline.core.actions): the merge-patch bodies both front ends send, table by table."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from jobline import names
from jobline.core import actions

NOW = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
QJ, QUEUES, SCHEDULES = names.PLURAL_QUEUEDJOBS, names.PLURAL_JOBQUEUES, names.PLURAL_JOBSCHEDULES


def test_fresh_values_carry_the_time_and_differ() -> None:
    values = {actions.fresh_value(NOW) for _ in range(50)}
    assert len(values) == 50
    assert all(re.fullmatch(r"2026-01-10T12:00:00Z-[0-9a-f]{6}", v) for v in values)


@pytest.mark.parametrize(
    ("make", "annotation"),
    [(actions.requeue, names.ANNOTATION_REQUEUE), (actions.trigger, names.ANNOTATION_TRIGGER)],
)
def test_annotation_patches(make: Callable[[str], actions.Patch], annotation: str) -> None:
    assert make("v1") == {"metadata": {"annotations": {annotation: "v1"}}}
    assert make("v1") is not make("v1")  # a fresh body each time: callers may change theirs


@pytest.mark.parametrize(
    ("plural", "on", "body"),
    [
        (QJ, True, {"spec": {"suspend": True}}),
        (QJ, False, {"spec": {"suspend": False}}),
        (SCHEDULES, True, {"spec": {"suspend": True}}),
        (SCHEDULES, False, {"spec": {"suspend": False}}),
        (QUEUES, True, {"spec": {"paused": True}}),
        (QUEUES, False, {"spec": {"paused": False}}),
    ],
)
def test_hold(plural: str, on: bool, body: dict[str, Any]) -> None:
    assert actions.hold(plural, on) == body
    assert actions.hold_field(plural) == next(iter(body["spec"]))


@pytest.mark.parametrize("plural", ["pods", "queuedjob", ""])
def test_hold_rejects_other_kinds(plural: str) -> None:
    with pytest.raises(ValueError, match="cannot be suspended or paused"):
        actions.hold(plural, True)


@pytest.mark.parametrize(
    ("make", "body"),
    [
        (actions.suspend_job, {"spec": {"suspend": True}}),
        (actions.resume_job, {"spec": {"suspend": False}}),
        (actions.suspend_schedule, {"spec": {"suspend": True}}),
        (actions.resume_schedule, {"spec": {"suspend": False}}),
        (actions.pause_queue, {"spec": {"paused": True}}),
        (actions.resume_queue, {"spec": {"paused": False}}),
    ],
)
def test_named_holds(make: Callable[[], actions.Patch], body: dict[str, Any]) -> None:
    assert make() == body


@pytest.mark.parametrize(
    ("phase", "refusal"),
    [
        ("Succeeded", None),
        ("Failed", None),
        ("Pending", "is Pending: only a finished job can be retried (Succeeded, Failed or Cancelled)"),
        ("Running", "is Running: only a finished job can be retried (Succeeded, Failed or Cancelled)"),
        ("Suspended", "is Suspended: only a finished job can be retried (Succeeded, Failed or Cancelled)"),
        (None, "is Pending: only a finished job can be retried (Succeeded, Failed or Cancelled)"),
    ],
)
def test_retry_refusal(phase: str | None, refusal: str | None) -> None:
    assert actions.retry_refusal({"status": {"phase": phase}}) == refusal


@pytest.mark.parametrize(
    ("given", "phases"),
    [
        ([], ["Succeeded", "Failed", "Cancelled", "Superseded"]),
        ((), ["Succeeded", "Failed", "Cancelled", "Superseded"]),
        (["cancelled"], ["Cancelled"]),
        (["failed"], ["Failed"]),
        (["Succeeded,completed"], ["Succeeded"]),
        (["failed,succeeded"], ["Failed", "Succeeded"]),
        ([""], []),  # said, but nothing: nothing is cleaned
    ],
)
def test_cleanup_phases(given: list[str], phases: list[str]) -> None:
    assert actions.cleanup_phases(given) == phases


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["Running"], r"cleanup removes only finished jobs \(Succeeded, Failed, Cancelled, Superseded\)"),
        (
            ["Failed,Pending"],
            r"cleanup removes only finished jobs \(Succeeded, Failed, Cancelled, Superseded\)",
        ),
        (["Done"], "unknown phase 'Done'"),
    ],
)
def test_cleanup_phases_rejects(given: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        actions.cleanup_phases(given)


def test_cancel_patch_and_refusal() -> None:
    assert actions.cancel() == {"spec": {"cancel": True}}
    for phase in ("Pending", "Waiting", "Running", "Suspended", None):
        assert actions.cancel_refusal({"status": {"phase": phase}}) is None
    for phase in ("Succeeded", "Failed", "Cancelled", "Superseded"):
        assert actions.cancel_refusal({"status": {"phase": phase}}) == (
            f"is already {phase}: only an unfinished job can be cancelled"
        )


def test_requeue_of_a_cancelled_job_clears_spec_cancel_in_the_same_patch() -> None:
    cancelled = {"spec": {"cancel": True}, "status": {"phase": "Cancelled"}}
    assert actions.retry_refusal(cancelled) is None
    assert actions.requeue("v", cancelled) == {
        "metadata": {"annotations": {names.ANNOTATION_REQUEUE: "v"}},
        "spec": {"cancel": False},
    }
    assert actions.requeue("v", {"status": {"phase": "Failed"}}) == {
        "metadata": {"annotations": {names.ANNOTATION_REQUEUE: "v"}}
    }


def test_a_superseded_job_is_not_retried() -> None:
    job = {"status": {"phase": "Superseded", "supersededBy": "newer"}}
    assert (
        actions.retry_refusal(job) == "was superseded by newer (the queue's debounce): that job runs instead"
    )
