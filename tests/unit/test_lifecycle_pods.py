"""A worker container that cannot start fails its attempt with the kubelet's words; one that may still start waits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobline import names
from jobline.core.lifecycle import World, pod_view, reconcile
from jobline.core.models import QueuedJobSpec
from jobline.core.models.queuedjob import ResolvedRetry

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
RETRY = ResolvedRetry(
    limit=2, initial_seconds=10, factor=2.0, max_seconds=60, jitter=0.0, non_retryable_exit_codes=frozenset()
)


def _pod(waiting: dict[str, str] | None) -> dict[str, Any]:
    state = {"waiting": waiting} if waiting else {"running": {"startedAt": "2026-12-02T11:59:00Z"}}
    return {
        "metadata": {
            "name": "j-1",
            "labels": {names.LABEL_ATTEMPT: "1"},
            "creationTimestamp": "2026-12-02T11:59:00Z",
        },
        "status": {
            "phase": "Pending" if waiting else "Running",
            "containerStatuses": [{"name": names.WORKER_CONTAINER, "state": state}],
        },
    }


def _reconcile(pod: dict[str, Any]) -> Any:
    view = pod_view(pod)
    assert view is not None
    status = {
        "phase": "Running",
        "attempts": 1,
        "podName": "j-1",
        "attemptHistory": [{"attempt": 1, "pod": "j-1", "startedAt": "2026-12-02T11:59:00Z"}],
    }
    return reconcile(
        name="j",
        uid="u",
        generation=1,
        annotations={},
        spec=QueuedJobSpec(handler="h"),
        status=status,
        pods=[view],
        world=World(now=NOW, retry=RETRY),
    )


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("ErrImageNeverPull", 'Container image "jobline-worker:9" is not present with pull policy of Never'),
        ("InvalidImageName", 'Failed to apply default image tag "Bad//Name": couldn\'t parse image name'),
        (
            "RunContainerError",
            "runc create failed: unable to start container process: error setting rlimits: "
            "operation not permitted",
        ),
        ("CreateContainerError", "failed to create containerd container: cgroup: permission denied"),
    ],
)
def test_a_container_that_cannot_start_fails_the_attempt_with_the_runtimes_error(
    reason: str, message: str
) -> None:
    out = _reconcile(_pod({"reason": reason, "message": message}))
    record = out.status["attemptHistory"][0]
    assert record["reason"] == reason and record["message"] == message and record.get("finishedAt")
    assert out.delete_pods == ["j-1"]
    assert message in out.status["lastError"]
    assert out.status["phase"] == "Waiting" and out.status["waitingReason"] == "BackingOff"  # retried


@pytest.mark.parametrize(
    "waiting",
    [
        None,
        {"reason": "ContainerCreating"},
        {"reason": "ImagePullBackOff"},
        {"reason": "ErrImagePull"},
        {"reason": "CreateContainerConfigError"},
    ],
)
def test_a_container_that_may_still_start_keeps_the_attempt_running(waiting: dict[str, str] | None) -> None:
    out = _reconcile(_pod(waiting))
    assert out.status["phase"] == "Running" and not out.delete_pods
    assert not out.status["attemptHistory"][0].get("finishedAt")
