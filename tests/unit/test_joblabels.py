"""Which labels a QueuedJob gets, and when: once, when it finishes (core/joblabels.py)."""

from __future__ import annotations

from typing import Any

import pytest

from jobline.core.joblabels import label_patch

P, Q, H = "jobline.dev/phase", "jobline.dev/queue", "jobline.dev/handler"
SPEC: dict[str, Any] = {"queue": "mail", "handler": "send"}


@pytest.mark.parametrize(
    ("labels", "spec", "phase", "patch"),
    [
        # unfinished: nothing to write (the live phase is the selectable field status.phase)
        ({}, SPEC, None, {}),
        ({}, SPEC, "Pending", {}),
        ({}, SPEC, "Running", {}),
        ({"app": "shop"}, SPEC, "Running", {}),
        # finished: one write with all three
        ({}, SPEC, "Succeeded", {P: "Succeeded", Q: "mail", H: "send"}),
        ({}, SPEC, "Failed", {P: "Failed", Q: "mail", H: "send"}),
        ({}, SPEC, "Cancelled", {P: "Cancelled", Q: "mail", H: "send"}),
        ({}, SPEC, "Superseded", {P: "Superseded", Q: "mail", H: "send"}),
        ({}, {"handler": "send"}, "Succeeded", {P: "Succeeded", Q: "default", H: "send"}),
        # already labelled: nothing, or only what differs
        ({P: "Succeeded", Q: "mail", H: "send"}, SPEC, "Succeeded", {}),
        ({Q: "mail", H: "send"}, SPEC, "Failed", {P: "Failed"}),
        # a finished job run again (retry of a dead letter): its final label goes, queue and handler stay
        ({P: "Failed", Q: "mail", H: "send"}, SPEC, "Pending", {P: None}),
        ({P: "Failed", Q: "mail", H: "send"}, SPEC, "Running", {P: None}),
    ],
)
def test_labels_are_written_once_when_the_job_finishes(
    labels: dict[str, str], spec: dict[str, Any], phase: str | None, patch: dict[str, str | None]
) -> None:
    assert label_patch(labels, spec, phase) == patch


@pytest.mark.parametrize(
    ("labels", "phase", "patch"),
    [
        ({}, "Succeeded", {}),  # a pooled success is not labelled: one write less per job
        ({P: "Failed", Q: "mail", H: "send"}, "Succeeded", {P: None}),  # nor left with a stale phase
        ({}, "Failed", {P: "Failed", Q: "mail", H: "send"}),  # failures are, as in PodPerAttempt mode
        ({}, "Cancelled", {P: "Cancelled", Q: "mail", H: "send"}),
        ({}, "Running", {}),
    ],
)
def test_a_pooled_success_is_not_labelled(
    labels: dict[str, str], phase: str, patch: dict[str, str | None]
) -> None:
    assert label_patch(labels, SPEC, phase, pooled=True) == patch
