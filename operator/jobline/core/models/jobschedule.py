"""JobSchedule: creates QueuedJobs from a template on a cron schedule."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from jobline import names

from .common import (
    CelRule,
    Condition,
    Resource,
    SpecModel,
    StatusModel,
    StringMap,
    Timestamp,
    conditions_field,
    observed_generation_field,
    x_validations,
)
from .queuedjob import QueuedJobSpec

# The cron grammar of core/cronexpr.py, field by field (tests/unit/test_cron_grammar.py holds them
# together): values in range, names only where they mean something, special forms only in their field.
_STEP = r"(/(0{0,2}[1-9]|0?[1-9][0-9]|[1-9][0-9]{2}))?"
_MINUTE = r"[0-5]?[0-9]"
_HOUR = r"[01]?[0-9]|2[0-3]"
_DOM = r"0?[1-9]|[12][0-9]|3[01]"
_MONTH = r"0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
_DOW = r"0?[0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)"


def _field(value: str, *specials: str) -> str:
    plain = rf"(\*|({value})(-({value}))?){_STEP}"
    item = "|".join((plain, *specials))
    return rf"({item})(,({item}))*"


_CRON = " +".join(
    (
        _field(_MINUTE),
        _field(_HOUR),
        _field(_DOM, r"\?", "L", "LW", rf"({_DOM})W"),
        _field(_MONTH),
        _field(_DOW, r"\?", rf"L({_DOW})", rf"({_DOW})#[1-5]"),
    )
)
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MACRO = "@(" + "|".join(m[1:] for m in MACROS) + ")"
_EVERY = r"@every ([0-9]+(h|m|s))+"
CRON_PATTERN = rf"^{_CRON}$"
"""The 5-field form alone (what tests/unit/test_cron_grammar.py fuzzes against the core)."""
SCHEDULE_PATTERN = rf"^({_CRON}|{_MACRO}|{_EVERY})$"
"""Shape of spec.schedule: 5 cron fields, a macro, or ``@every <duration>`` (h, m, s units)."""

SCHEDULE_MESSAGE = (
    "schedule must be 5 cron fields (minute hour day-of-month month day-of-week), "
    "a macro such as @daily, or @every <duration> such as @every 1h30m"
)
EVERY_ZERO_MESSAGE = "the @every duration must be greater than zero"
_SCHEDULE_RE = re.compile(SCHEDULE_PATTERN)

TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
DEFAULT_TIME_ZONE = "UTC"
EVERY_PREFIX = "@every "
_DURATION_PART = re.compile(r"([0-9]+)([hms])")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}

ConcurrencyPolicy = Literal["Allow", "Forbid", "Replace"]
MissedRunPolicy = Literal["RunLatest", "Skip", "RunAll"]


def every_seconds(schedule: str) -> int | None:
    """Seconds of an ``@every <duration>`` schedule (e.g. ``@every 1h30m`` -> 5400), else None."""
    if not schedule.startswith(EVERY_PREFIX):
        return None
    duration = schedule[len(EVERY_PREFIX) :]
    parts = _DURATION_PART.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        return None
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


class JobTemplateMetadata(SpecModel):
    """Labels and annotations given to every job the schedule creates."""

    labels: StringMap | None = Field(default=None, description="Labels of the created jobs.")
    annotations: StringMap | None = Field(default=None, description="Annotations of the created jobs.")


class JobTemplate(SpecModel):
    """The QueuedJob created at each run."""

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                "!has(self.spec.runAt)",
                "jobTemplate.spec.runAt is not allowed: the schedule decides when jobs run",
                field_path=".spec.runAt",
            )
        )
    )

    metadata: JobTemplateMetadata | None = Field(
        default=None, description="Labels and annotations of the jobs."
    )
    spec: QueuedJobSpec = Field(description="Spec of the created QueuedJobs (without runAt).")

    @model_validator(mode="after")
    def _no_run_at(self) -> JobTemplate:
        if self.spec.run_at is not None:
            raise ValueError("jobTemplate.spec.runAt is not allowed: the schedule decides when jobs run")
        return self


class JobScheduleSpec(SpecModel):
    """When to create jobs (schedule, time zone, catch-up) and what to create (jobTemplate)."""

    schedule: str = Field(
        min_length=1,
        max_length=128,
        description=(
            "5-field cron expression (minute hour day-of-month month day-of-week), a macro "
            "(@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly) "
            "or @every <duration> (e.g. @every 30s, @every 1h30m)."
        ),
        # A CEL rule rather than `pattern`, for a readable error message.
        json_schema_extra=x_validations(
            CelRule(f"self.matches(r'{SCHEDULE_PATTERN}')", SCHEDULE_MESSAGE),
            CelRule(
                # Guarded by the shape, so a malformed @every gets one error, not two.
                f"!self.matches(r'^{_EVERY}$') || "
                f"duration(self.substring({len(EVERY_PREFIX)})) > duration('0s')",
                EVERY_ZERO_MESSAGE,
            ),
        ),
    )
    time_zone: str = Field(
        default=DEFAULT_TIME_ZONE,
        max_length=64,
        pattern=TIME_ZONE_PATTERN,
        description="IANA time zone the schedule is read in, e.g. Europe/Berlin.",
    )
    suspend: bool = Field(default=False, description="Create no jobs while true (running ones go on).")
    concurrency_policy: ConcurrencyPolicy = Field(
        default="Allow",
        description=(
            "When a run is due while a job of an earlier run is unfinished: Allow (create it anyway), "
            "Forbid (skip the run) or Replace (delete the unfinished job, then create)."
        ),
    )
    starting_deadline_seconds: int | None = Field(
        default=None, ge=0, description="A run not started within this many seconds of its time is missed."
    )
    missed_run_policy: MissedRunPolicy = Field(
        default="RunLatest",
        description=(
            "What to do with runs missed (e.g. while the operator was down): RunLatest (one job for "
            "the latest missed run), Skip (none) or RunAll (one per missed run, up to maxCatchUpRuns)."
        ),
    )
    max_catch_up_runs: int = Field(
        default=10, ge=1, le=1000, description="Most jobs created at once to catch up missed runs."
    )
    jitter_seconds: int = Field(
        default=0,
        ge=0,
        le=3600,
        description=(
            "Delay every run by a stable per-schedule offset in [0, jitterSeconds) seconds "
            "(a hash of namespace/name), so many schedules with the same cron do not fire at once."
        ),
    )
    successful_jobs_history_limit: int = Field(
        default=3, ge=0, le=1000, description="Succeeded jobs of this schedule to keep."
    )
    failed_jobs_history_limit: int = Field(
        default=1, ge=0, le=1000, description="Failed jobs of this schedule to keep."
    )
    job_template: JobTemplate = Field(description="The QueuedJob created at each run.")

    @field_validator("schedule")
    @classmethod
    def _schedule_shape(cls, value: str) -> str:
        if not _SCHEDULE_RE.match(value):
            raise ValueError(SCHEDULE_MESSAGE)
        if value.startswith(EVERY_PREFIX) and not every_seconds(value):
            raise ValueError(EVERY_ZERO_MESSAGE)
        return value


class JobScheduleStatus(StatusModel):
    """Observed state of the schedule, written by the operator."""

    last_schedule_time: Timestamp | None = Field(
        default=None, description="The newest scheduled instant handled (run, or counted in missedRuns)."
    )
    next_schedule_time: Timestamp | None = Field(
        default=None, description="The next scheduled instant (the job is created jitter later)."
    )
    last_successful_time: Timestamp | None = Field(
        default=None, description="When a job of this schedule last succeeded."
    )
    # JobSchedule loop (SMALL ADDITION): when a job of this schedule last failed; with
    # lastSuccessfulTime it marks which finished jobs were already counted in consecutiveFailures.
    last_failure_time: Timestamp | None = Field(
        default=None, description="When a job of this schedule last failed."
    )
    run_count: int = Field(default=0, ge=0, description="Jobs created so far.")
    missed_runs: int = Field(
        default=0,
        ge=0,
        description=(
            "Scheduled instants that got no job: missed while the operator was down or the schedule "
            "suspended and not caught up, or skipped by concurrencyPolicy Forbid/Replace."
        ),
    )
    active: list[str] = Field(
        default_factory=list,
        description="Names of the unfinished jobs of this schedule.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    active_count: int = Field(default=0, ge=0, description="Number of entries in active.")
    last_job: str | None = Field(default=None, description="Name of the job created last.")
    consecutive_failures: int = Field(
        default=0, ge=0, description="Jobs of this schedule that failed in a row."
    )
    last_trigger: str | None = Field(
        default=None, description=f"Last handled value of the {names.ANNOTATION_TRIGGER} annotation."
    )
    # JobSchedule loop (SMALL ADDITION): the schedule lastScheduleTime refers to; when spec.schedule
    # or spec.timeZone changes, the instants of the new schedule before the change are not replayed.
    observed_schedule: str | None = Field(
        default=None,
        description=(
            "spec.schedule and spec.timeZone that lastScheduleTime refers to, e.g. '0 3 * * * UTC'; "
            "after an edit, instants of the new schedule before the edit are neither run nor missed."
        ),
    )
    conditions: list[Condition] = conditions_field()
    observed_generation: int | None = observed_generation_field()


class JobSchedule(Resource):
    """Creates a QueuedJob from a template at every tick of a cron schedule."""

    KIND: ClassVar[str] = names.KIND_JOBSCHEDULE
    PLURAL: ClassVar[str] = names.PLURAL_JOBSCHEDULES

    kind: Literal["JobSchedule"] = Field(default=names.KIND_JOBSCHEDULE, description="Always JobSchedule.")
    spec: JobScheduleSpec = Field(description="Schedule and job template.")
    status: JobScheduleStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )
