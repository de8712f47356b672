"""What a JobSchedule must do now: pure decisions of the schedule loop (no Kubernetes client).

:func:`plan` takes a JobSchedule as read from the API (a dict), the QueuedJobs it owns (dicts, as
watched) and the time, and returns a :class:`Plan`:

- ``runs``: the QueuedJobs to create now (scheduled instants and a manual trigger), each named by
  :func:`~jobline.core.cron.run_name` / :func:`~jobline.core.cron.manual_run_name` so that creating
  one twice is a 409 Conflict, never a second job;
- ``stop``: unfinished jobs to delete first (``concurrencyPolicy: Replace``);
- ``delete``: finished jobs beyond the history limits;
- ``status``: the whole new status; ``events``: what to record once the status is written;
- ``wake_at``: when to plan again (the next fire time plus the jitter), None if only a change of
  the schedule or of its jobs can make something due.

The status is the schedule's memory across restarts and replicas:

- ``lastScheduleTime`` is the newest scheduled instant *handled* (run, skipped or counted missed);
  instants after it and due now are planned by :func:`~jobline.core.cron.plan_catch_up`, so it is
  written even when nothing ran (otherwise the same instants would be counted again);
- ``observedSchedule`` is the schedule and time zone that ``lastScheduleTime`` refers to: after an
  edit, the instants of the new schedule before the edit are neither run nor missed;
- ``lastTrigger`` is the last handled value of the trigger annotation;
- ``lastSuccessfulTime``/``lastFailureTime`` mark which finished jobs were already counted in
  ``consecutiveFailures`` (jobs finished after both are counted, oldest first), so deleting old
  jobs for the history limits loses nothing.

A run counts in ``runCount`` when the status recording it is written. The caller writes the
status with the resourceVersion it planned from (optimistic concurrency): of two replicas planning
the same instant, both get the same job name (one creates it, the other gets a 409) and only one
status write succeeds, so the run is counted once.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from jobline import names

from .cron import (
    DEFAULT_GRACE_SECONDS,
    Schedule,
    ScheduleError,
    jitter_offset,
    manual_run_name,
    parse_schedule,
    plan_catch_up,
    run_name,
)
from .lifecycle import set_condition
from .models.common import plain, spec_error
from .models.jobschedule import JobScheduleSpec
from .models.queuedjob import FINISHED_PHASES
from .naming import RUN_HASH_LENGTH, fit
from .timefmt import fmt, parse

CONDITION_READY: Final = "Ready"

# Ready condition reasons (InvalidSchedule / InvalidTimeZone come from cron.ScheduleError).
REASON_SCHEDULED: Final = "Scheduled"
REASON_SUSPENDED: Final = "Suspended"
REASON_INVALID_SPEC: Final = "InvalidSpec"

# Event reasons.
EVENT_FIRED: Final = "Fired"  # a scheduled run's job was created
EVENT_TRIGGERED: Final = "Triggered"  # a manual run's job was created
EVENT_TRIGGER_DONE: Final = "TriggerAlreadyRun"  # the trigger value's job exists already
EVENT_MISSED: Final = "Missed"  # instants missed (downtime, suspension, deadline) and not caught up
EVENT_SKIPPED: Final = "Skipped"  # Forbid: a run was due while one was active
EVENT_REPLACED: Final = "Replaced"  # Replace: an active job was deleted for a new run
EVENT_HISTORY: Final = "DeletedJobs"  # finished jobs beyond the history limits were deleted

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class JobInfo:
    """What the planner needs of one QueuedJob of the schedule."""

    name: str
    uid: str
    phase: str | None
    created: datetime | None
    completed: datetime | None
    nominal: datetime | None = None  # the scheduled instant it ran for (None: a manual run)

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED_PHASES

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> JobInfo:
        meta = obj.get("metadata") or {}
        st = obj.get("status") or {}
        phase = st.get("phase")
        return cls(
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            phase=phase,
            created=parse(meta.get("creationTimestamp")),
            completed=parse(st.get("completedAt")) if phase in FINISHED_PHASES else None,
            nominal=parse((meta.get("annotations") or {}).get(names.ANNOTATION_SCHEDULED_TIME)),
        )


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Run:
    """A QueuedJob to create now."""

    name: str
    nominal: datetime | None  # the scheduled instant; None for a manual run
    trigger: str | None = None  # the trigger value of a manual run
    lateness: float = 0.0  # seconds after its fire time when planned
    exists: bool = False  # the job is already in the store (created before a restart): no POST
    fire_at: datetime | None = None  # nominal + the schedule's jitter: when it should be created

    def late_by(self, created_at: datetime | None = None) -> float:
        """Seconds after its fire time at ``created_at`` (default: when planned)."""
        if created_at is None or self.fire_at is None:
            return self.lateness
        return (created_at - self.fire_at).total_seconds()

    def event(self, created_at: datetime | None = None) -> Event:
        """The Event of the run's creation; ``created_at`` (default: when planned) gives its lateness."""
        if self.nominal is None:
            return Event("Normal", EVENT_TRIGGERED, f"created job {self.name} for trigger {self.trigger!r}")
        late = self.late_by(created_at)
        return Event(
            "Normal",
            EVENT_FIRED,
            f"created job {self.name} for {fmt(self.nominal)} ({late:.3f}s after its time)",
        )


@dataclass
class Plan:
    runs: list[Run] = field(default_factory=list)
    stop: list[JobInfo] = field(default_factory=list)
    delete: list[JobInfo] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    wake_at: datetime | None = None
    spec: JobScheduleSpec | None = None


# --- ownership, labels, the job manifest ------------------------------------------------------------


def owner_uid(job: Mapping[str, Any]) -> str | None:
    """UID of the JobSchedule that controls this job (its controller ownerReference), else None."""
    for ref in (job.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == names.KIND_JOBSCHEDULE and str(ref.get("apiVersion", "")).startswith(
            names.GROUP + "/"
        ):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


def schedule_label_value(schedule_name: str) -> str:
    """Value of the ``jobline.dev/schedule`` label: the schedule's name, cut and hashed when longer
    than a label value may be (63 characters)."""
    return fit(
        schedule_name, hash_length=RUN_HASH_LENGTH, strip="-._", always=not _LABEL_VALUE.match(schedule_name)
    )


def build_job(schedule: Mapping[str, Any], run: Run) -> dict[str, Any]:
    """The QueuedJob manifest of ``run``: the jobTemplate, our label and annotations, an owner
    reference to the schedule (so deleting the schedule garbage-collects its jobs)."""
    meta = schedule.get("metadata") or {}
    template = copy.deepcopy((schedule.get("spec") or {}).get("jobTemplate") or {})
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels[names.LABEL_SCHEDULE] = schedule_label_value(str(meta.get("name", "")))
    annotations = dict(tmeta.get("annotations") or {})
    if run.nominal is not None:
        annotations[names.ANNOTATION_SCHEDULED_TIME] = fmt(run.nominal)
    if run.trigger is not None:
        annotations[names.ANNOTATION_MANUAL_TRIGGER] = run.trigger
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_QUEUEDJOB,
        "metadata": {
            "name": run.name,
            "namespace": meta.get("namespace"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": names.API_VERSION,
                    "kind": names.KIND_JOBSCHEDULE,
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template.get("spec") or {},
    }


# --- planning ---------------------------------------------------------------------------------------


def fingerprint(schedule: str, time_zone: str) -> str:
    """``status.observedSchedule``: the schedule and the time zone it is read in."""
    return f"{schedule} {time_zone}"


def _account_finished(st: dict[str, Any], jobs: list[JobInfo]) -> None:
    """Count jobs finished since the last count into lastSuccessfulTime / consecutiveFailures."""
    marks = [t for t in (parse(st.get("lastSuccessfulTime")), parse(st.get("lastFailureTime"))) if t]
    watermark = max(marks) if marks else None
    done = sorted(
        (j for j in jobs if j.finished and j.completed is not None), key=lambda j: (j.completed, j.name)
    )
    for job in done:
        assert job.completed is not None
        if watermark is not None and job.completed <= watermark:
            continue
        if job.phase == "Succeeded":
            st["consecutiveFailures"] = 0
            st["lastSuccessfulTime"] = fmt(job.completed)
        elif job.phase == "Failed":  # a Cancelled or Superseded run is neither
            st["consecutiveFailures"] = int(st.get("consecutiveFailures") or 0) + 1
            st["lastFailureTime"] = fmt(job.completed)


def history_victims(jobs: Iterable[JobInfo], succeeded_limit: int, failed_limit: int) -> list[JobInfo]:
    """Finished jobs beyond the limits: all but the newest ``limit`` of each outcome (by completion).
    Cancelled and Superseded runs count with the failed ones (CronJob has only the two limits)."""
    jobs = list(jobs)
    victims: list[JobInfo] = []
    for phases, limit in (
        (("Succeeded",), succeeded_limit),
        (("Failed", "Cancelled", "Superseded"), failed_limit),
    ):
        done = sorted(
            (j for j in jobs if j.phase in phases),
            key=lambda j: (j.completed or j.created or datetime.min.replace(tzinfo=UTC), j.name),
            reverse=True,
        )
        victims += done[max(0, limit) :]
    return victims


def _ready(
    st: dict[str, Any], ok: bool, reason: str, message: str, now: datetime, generation: int | None
) -> None:
    set_condition(st, CONDITION_READY, ok, reason, message, now, generation)


def _condition(st: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in st.get("conditions") or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None


def plan(
    schedule: Mapping[str, Any],
    jobs: Iterable[Mapping[str, Any]],
    now: datetime,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> Plan:
    """Decide what the schedule must do at ``now`` (see the module docstring).

    ``jobs`` may hold any QueuedJobs: only those whose controller ownerReference is this schedule
    (by uid) count.
    """
    meta = schedule.get("metadata") or {}
    name = str(meta.get("name", ""))
    namespace = str(meta.get("namespace", ""))
    uid = str(meta.get("uid", ""))
    generation = meta.get("generation")
    annotations = meta.get("annotations") or {}
    created = parse(meta.get("creationTimestamp")) or now
    old = schedule.get("status") or {}
    st: dict[str, Any] = copy.deepcopy(dict(old))
    out = Plan(status=st)
    owned = [JobInfo.of(j) for j in jobs if owner_uid(j) == uid]
    by_name = {j.name: j for j in owned}
    old_ready = _condition(old, CONDITION_READY)

    _account_finished(st, owned)
    active = {j.name for j in owned if not j.finished}

    try:
        spec = JobScheduleSpec.model_validate(plain(schedule.get("spec") or {}), strict=False)
    except ValidationError as exc:
        message = spec_error(exc)
        _ready(st, False, REASON_INVALID_SPEC, message, now, generation)
        if (
            old_ready is None
            or old_ready.get("reason") != REASON_INVALID_SPEC
            or old_ready.get("message") != message
        ):
            out.events.append(Event("Warning", REASON_INVALID_SPEC, message))
        st["nextScheduleTime"] = None
        _finish_status(st, active, generation)
        return out
    out.spec = spec

    # A manual trigger: one run per new value of the annotation, whatever the schedule's state.
    trigger = annotations.get(names.ANNOTATION_TRIGGER)
    if trigger and trigger != old.get("lastTrigger"):
        job_name = manual_run_name(name, trigger)
        if job_name in by_name:
            out.events.append(
                Event(
                    "Normal",
                    EVENT_TRIGGER_DONE,
                    f"trigger {trigger!r} already ran as job {job_name}: nothing to do",
                )
            )
        else:
            out.runs.append(Run(job_name, None, trigger))
            active.add(job_name)
        st["lastTrigger"] = trigger

    missed = 0
    unrecorded = 0  # runs an earlier plan created whose status write was lost
    try:
        sched = parse_schedule(spec.schedule, spec.time_zone, anchor=created)
    except ScheduleError as err:
        _ready(st, False, err.reason, err.message, now, generation)
        if (
            old_ready is None
            or old_ready.get("reason") != err.reason
            or old_ready.get("message") != err.message
        ):
            out.events.append(Event("Warning", err.reason, err.message))
        st["nextScheduleTime"] = None
    else:
        jitter = jitter_offset(namespace, name, spec.jitter_seconds)
        last = _rebase(st, sched, spec, created, now, jitter)
        # Runs an earlier plan created whose status write was lost (apiserver down, a replica killed
        # between the create and the write): their jobs exist past lastScheduleTime. Adopted: they count
        # as runs, lastScheduleTime moves to the newest, and the instants skipped before it are missed.
        adopted = sorted(j.nominal for j in owned if j.nominal is not None and last < j.nominal <= now)
        if adopted:
            unrecorded += len(adopted)
            missed += max(0, sched.count_between(last, adopted[-1]) - len(adopted))
            last = adopted[-1]
            st["lastScheduleTime"] = fmt(last)
            st["lastJob"] = next(j.name for j in owned if j.nominal == last)
        if spec.suspend:
            _ready(
                st,
                False,
                REASON_SUSPENDED,
                "spec.suspend is true: no scheduled runs are created",
                now,
                generation,
            )
            st["nextScheduleTime"] = None
        else:
            cu = plan_catch_up(
                sched,
                last,
                now,
                spec.missed_run_policy,
                spec.starting_deadline_seconds,
                spec.max_catch_up_runs,
                jitter_seconds=jitter,
                grace_seconds=grace_seconds,
            )
            if cu.latest is not None and cu.latest > last:
                st["lastScheduleTime"] = fmt(cu.latest)
            if cu.missed:
                missed += cu.missed
                out.events.append(
                    Event(
                        "Warning",
                        EVENT_MISSED,
                        f"{cu.missed} run(s) between {fmt(last)} and {fmt(cu.latest or now)} were missed "
                        f"(operator down, schedule suspended or past startingDeadlineSeconds); "
                        f"missedRunPolicy {spec.missed_run_policy} runs {len(cu.to_run)} of them",
                    )
                )
            due = list(cu.to_run)
            # Jobs of other runs still active (a due run's own job exists after a restart: not "other").
            others = active - {run_name(name, t) for t in due}
            if due and spec.concurrency_policy != "Allow":
                newest = due[-1]
                if spec.concurrency_policy == "Forbid" and others:
                    out.events.append(
                        Event(
                            "Normal",
                            EVENT_SKIPPED,
                            f"run for {fmt(newest)} skipped: concurrencyPolicy Forbid and job(s) "
                            f"{', '.join(sorted(others))} still active"
                            + (f" ({len(due)} runs)" if len(due) > 1 else ""),
                        )
                    )
                    missed += len(due)
                    due = []
                else:
                    if spec.concurrency_policy == "Replace":
                        # Jobs created in this very plan (a manual run) are not replaced.
                        out.stop = sorted((by_name[n] for n in others if n in by_name), key=lambda j: j.name)
                        for job in out.stop:
                            active.discard(job.name)
                            out.events.append(
                                Event(
                                    "Normal",
                                    EVENT_REPLACED,
                                    f"deleted active job {job.name}: concurrencyPolicy "
                                    f"Replace, run for {fmt(newest)} replaces it",
                                )
                            )
                    missed += len(due) - 1  # one run at a time: only the newest
                    due = [newest]
            for t in due:
                job_name = run_name(name, t)
                fire_at = t + timedelta(seconds=jitter)
                existing = by_name.get(job_name)
                out.runs.append(
                    Run(
                        job_name,
                        t,
                        None,
                        (now - fire_at).total_seconds(),
                        exists=existing is not None,
                        fire_at=fire_at,
                    )
                )
                if existing is None or not existing.finished:
                    active.add(job_name)
            st["nextScheduleTime"] = fmt(cu.next_time)
            out.wake_at = cu.wake_at
            _ready(
                st, True, REASON_SCHEDULED, f"schedule {spec.schedule!r} in {spec.time_zone}", now, generation
            )

    st["runCount"] = int(old.get("runCount") or 0) + len(out.runs) + unrecorded
    st["missedRuns"] = int(old.get("missedRuns") or 0) + missed
    if out.runs:
        st["lastJob"] = out.runs[-1].name
    stopped = {j.name for j in out.stop}
    out.delete = history_victims(
        (j for j in owned if j.name not in stopped),
        spec.successful_jobs_history_limit,
        spec.failed_jobs_history_limit,
    )
    if out.delete:
        out.events.append(
            Event(
                "Normal",
                EVENT_HISTORY,
                f"deleted finished job(s) {', '.join(j.name for j in out.delete)} "
                f"(keeping {spec.successful_jobs_history_limit} succeeded, "
                f"{spec.failed_jobs_history_limit} failed)",
            )
        )
    _finish_status(st, active, generation)
    return out


def _rebase(
    st: dict[str, Any],
    sched: Schedule,
    spec: JobScheduleSpec,
    created: datetime,
    now: datetime,
    jitter: float,
) -> datetime:
    """The instant scheduled runs are counted from; after an edit of the schedule or time zone, the
    newest instant of the new schedule up to now (so its past is neither run nor missed)."""
    last = parse(st.get("lastScheduleTime")) or created
    current = fingerprint(spec.schedule, spec.time_zone)
    seen = st.get("observedSchedule")
    st["observedSchedule"] = current
    if seen is None or seen == current:
        return last
    horizon = now.astimezone(UTC) - timedelta(seconds=jitter)
    rebased = max(last, sched.last_at_or_before(horizon))
    if rebased != last:
        st["lastScheduleTime"] = fmt(rebased)
    return rebased


def _finish_status(st: dict[str, Any], active: set[str], generation: int | None) -> None:
    st["active"] = sorted(active)
    st["activeCount"] = len(active)
    if generation is not None:
        st["observedGeneration"] = generation
