"""The write side: the JSON merge-patch bodies ``kubectl jobline`` and the dashboard send.

Requeue a finished QueuedJob, trigger a JobSchedule, suspend or resume a QueuedJob or a
JobSchedule, pause or resume a JobQueue; plus the checks both front ends make before acting.
The front ends only choose the object and send the body (the CLI through the Kubernetes client,
the dashboard through the operator's own API connection); the selections (what a cleanup or a
bulk retry touches) are in :mod:`jobline.core.readmodel`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from jobline import names
from jobline.core.models import FINISHED_PHASES
from jobline.core.readmodel import is_finished, normalize_phases, phase_of
from jobline.core.timefmt import fmt

Patch = dict[str, Any]  # a JSON merge patch (application/merge-patch+json)

# The spec field that holds an object back, per plural: a suspended job or schedule, a paused queue.
HOLD_FIELDS: Final[Mapping[str, str]] = {
    names.PLURAL_QUEUEDJOBS: "suspend",
    names.PLURAL_JOBSCHEDULES: "suspend",
    names.PLURAL_JOBQUEUES: "paused",
}
CLEANUP_PHASES: Final = ("Succeeded", "Failed", "Cancelled", "Superseded")  # unless told otherwise


def fresh_value(now: datetime) -> str:
    """A new value for the requeue / trigger annotations: the time and a random suffix.

    The operator acts on each new value once, so two clicks in the same second still differ.
    """
    return f"{fmt(now)}-{uuid.uuid4().hex[:6]}"


def _annotate(key: str, value: str) -> Patch:
    return {"metadata": {"annotations": {key: value}}}


def requeue(value: str, job: Mapping[str, Any] | None = None) -> Patch:
    """Requeue a finished QueuedJob with a fresh retry budget (``jobline.dev/requeue``). A cancelled
    `job` also gets ``spec.cancel: false`` in the same patch, or it would be cancelled again at once."""
    patch = _annotate(names.ANNOTATION_REQUEUE, value)
    if job is not None and (job.get("spec") or {}).get("cancel"):
        patch["spec"] = {"cancel": False}
    return patch


def cancel() -> Patch:
    """Cancel a QueuedJob (``spec.cancel``): a running attempt gets SIGTERM, the job ends Cancelled."""
    return {"spec": {"cancel": True}}


def cancel_refusal(job: Mapping[str, Any]) -> str | None:
    """Why `job` cannot be cancelled (None: it can): a finished job has nothing left to stop."""
    if is_finished(job):
        return f"is already {phase_of(job)}: only an unfinished job can be cancelled"
    return None


def trigger(value: str) -> Patch:
    """Run a JobSchedule now (``jobline.dev/trigger``); its run's job carries `value` as manual-trigger."""
    return _annotate(names.ANNOTATION_TRIGGER, value)


def hold_field(plural: str) -> str:
    """``suspend`` (queuedjobs, jobschedules) or ``paused`` (jobqueues); ValueError for other plurals."""
    try:
        return HOLD_FIELDS[plural]
    except KeyError:
        raise ValueError(
            f"{plural!r} cannot be suspended or paused: one of {', '.join(HOLD_FIELDS)}"
        ) from None


def hold(plural: str, on: bool) -> Patch:
    """Suspend (``on``) or resume a QueuedJob or JobSchedule, pause or resume a JobQueue."""
    return {"spec": {hold_field(plural): on}}


def suspend_job(on: bool = True) -> Patch:
    return hold(names.PLURAL_QUEUEDJOBS, on)


def resume_job() -> Patch:
    return suspend_job(False)


def suspend_schedule(on: bool = True) -> Patch:
    return hold(names.PLURAL_JOBSCHEDULES, on)


def resume_schedule() -> Patch:
    return suspend_schedule(False)


def pause_queue(on: bool = True) -> Patch:
    return hold(names.PLURAL_JOBQUEUES, on)


def resume_queue() -> Patch:
    return pause_queue(False)


def retry_refusal(job: Mapping[str, Any]) -> str | None:
    """Why `job` cannot be requeued (None: it can): finished jobs are, but a Superseded one, whose newer
    twin runs instead."""
    phase = phase_of(job)
    if phase == "Superseded":
        newer = (job.get("status") or {}).get("supersededBy")
        return f"was superseded by {newer or 'a newer job'} (the queue's debounce): that job runs instead"
    if is_finished(job):
        return None
    return f"is {phase}: only a finished job can be retried (Succeeded, Failed or Cancelled)"


def cleanup_phases(values: Iterable[str]) -> list[str]:
    """The phases a cleanup removes, as a user gave them (none given: both); ValueError for others."""
    given = list(values)
    phases = normalize_phases(given) if given else list(CLEANUP_PHASES)
    if not set(phases) <= FINISHED_PHASES:
        raise ValueError("cleanup removes only finished jobs (Succeeded, Failed, Cancelled, Superseded)")
    return phases


__all__ = [
    "CLEANUP_PHASES",
    "HOLD_FIELDS",
    "Patch",
    "cancel",
    "cancel_refusal",
    "cleanup_phases",
    "fresh_value",
    "hold",
    "hold_field",
    "pause_queue",
    "requeue",
    "resume_job",
    "resume_queue",
    "resume_schedule",
    "retry_refusal",
    "suspend_job",
    "suspend_schedule",
    "trigger",
]
