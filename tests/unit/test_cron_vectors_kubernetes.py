"""Test vectors of the Kubernetes CronJob controller, ported to Jobline's cron module.

Origin: repository kubernetes/kubernetes, file ``pkg/controller/cronjob/utils_test.go``, the stored
snapshot at commit 8921bcdb70d8b3cc58dde1c47adfd68650219e25 (Kubernetes v1.31 or later, judging by its
imports: ``k8s.io/utils/ptr``, ``SetFeatureGateDuringTest`` without a restore function; the release tag
of that commit could not be read from the stored copy). The functions under test were read in the
matching ``pkg/controller/cronjob/utils.go`` (``mostRecentScheduleTime`` with ``missedSchedulesType``
and ``includeStartingDeadlineSeconds``, ``nextScheduleTime``, ``nextScheduleTimeDuration``). Kubernetes
uses robfig/cron v3 (``cron.ParseStandard``; ``Schedule.Next(t)`` is the first instant strictly after t).

All Kubernetes vectors are relative to ``topOfTheHour()`` = 2016-05-19T10:00:00Z, a **Thursday**; the
Go expressions (``deltaTimeAfterTopOfTheHour(...)``) are repeated in comments, the instants are written
out by hand in UTC.

Mapping from Kubernetes to ``jobline.core.cron``
------------------------------------------------
- ``cron.ParseStandard(spec)`` -> ``parse_schedule(spec, time_zone, anchor=creationTimestamp)``. An
  expression robfig parses but that never fires (``59 23 31 2 *``) is refused here with
  ``ScheduleError(InvalidSchedule)``; Kubernetes only errors later, when computing times.
- ``mostRecentScheduleTime(cj, now, sched, includeSDS)`` returns (earliestTime, mostRecentTime,
  missedSchedulesType, err). earliestTime is ``lastScheduleTime``, else ``creationTimestamp``: Jobline's
  caller passes the same instant as ``last_schedule_time`` (the window start). mostRecentTime is the
  newest instant in ``(earliest, now]`` -> ``times_between(earliest, now, 1, newest=True)`` and
  ``CatchUp.latest``. missedSchedulesType is an estimate of the number of instants in the window
  (noneMissed when now is before the second instant, i.e. at most one; fewMissed up to 100; manyMissed
  above): Jobline counts exactly (``count_between``) and the tests map the exact count to the category.
  With ``includeSDS`` Kubernetes moves the window start to ``now - startingDeadlineSeconds``; Jobline keeps
  the window and applies the deadline only to which instants may run (``plan_catch_up``), counting the
  others in ``missed``.
- ``nextScheduleTime(cj, now, ...)`` (the one instant the controller starts now, the most recent one)
  -> ``plan_catch_up(..., policy="RunLatest", starting_deadline_seconds=...)``: ``to_run`` is that instant
  or empty. Kubernetes keeps no missed counter; the rows also pin Jobline's ``missed`` (due instants not
  run). With more than 100 missed instants Kubernetes emits a ``TooManyMissedTimes`` Warning (formerly
  an error, "too many missed start times (> 100)"); Jobline has no such limit: it counts instants
  without listing them.
- ``nextScheduleTimeDuration(cj, now, sched)`` (requeue delay) -> ``CatchUp.next_time - now``.
  Kubernetes adds ``nextScheduleDelta`` (100 ms) of padding against clock skew; Jobline's ``next_time``
  is the nominal instant (``wake_at`` adds only the jitter), so the rows compare ``next_time - now + 100 ms``
  with Kubernetes' duration.
- ``getJobFromTemplate2`` (job name and scheduled-time annotation in ``spec.timeZone``) -> ``run_name``
  and the schedule's time zone; the label and annotation copying is not in ``jobline.core.cron``.

Each row names its origin (``TestFunction/case name``, also the pytest id) and has ``difference``:
None when Jobline agrees with what the Kubernetes test asserts, else why Jobline deliberately differs;
the row then asserts Jobline's value. Rows that cannot be ported are listed at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest

from jobline.core.cron import (
    REASON_INVALID_SCHEDULE,
    Schedule,
    ScheduleError,
    parse_schedule,
    plan_catch_up,
    run_name,
)

MissedKind = Literal["none", "few", "many"]

NEXT_SCHEDULE_DELTA = timedelta(milliseconds=100)
"""Kubernetes' ``nextScheduleDelta``: padding added to the requeue delay."""


def z(text: str) -> datetime:
    """A UTC instant from 'YYYY-MM-DDTHH:MM[:SS]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


TOP_OF_THE_HOUR = z("2016-05-19T10:00")  # topOfTheHour(), a Thursday


def missed_kind(count: int) -> MissedKind:
    """Kubernetes' missedSchedulesType for ``count`` instants in the window (exact count, not its estimate)."""
    if count <= 1:
        return "none"
    return "few" if count <= 100 else "many"


def parse(expression: str, created: datetime) -> Schedule:
    """The schedule of a Kubernetes row (UTC; ``@every`` anchored at the creation time)."""
    return parse_schedule(expression, "UTC", anchor=created)


# --- TestMostRecentScheduleTime -----------------------------------------------------------------------


@dataclass(frozen=True)
class RecentRow:
    origin: str
    schedule: str
    created: datetime
    last: datetime | None  # status.lastScheduleTime
    now: datetime
    deadline: int | None  # spec.startingDeadlineSeconds
    window: datetime  # start of the due window (exclusive): lastScheduleTime, else creationTimestamp
    most_recent: datetime | None  # newest instant in (window, now]
    due: int  # exact number of instants in (window, now]
    k8s_missed: MissedKind  # expectedTooManyMissed of the Kubernetes row
    to_run: tuple[datetime, ...]  # plan_catch_up, RunLatest, the row's deadline
    next_time: datetime
    difference: str | None = None


MOST_RECENT: tuple[RecentRow, ...] = (
    RecentRow(
        "TestMostRecentScheduleTime/now before next schedule",
        "0 * * * *",
        created=TOP_OF_THE_HOUR,
        last=None,
        now=z("2016-05-19T10:00:30"),  # topOfTheHour + 30s
        deadline=None,
        window=z("2016-05-19T10:00"),
        most_recent=None,
        due=0,
        k8s_missed="none",
        to_run=(),
        next_time=z("2016-05-19T11:00"),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/now just after next schedule",
        "0 * * * *",
        created=TOP_OF_THE_HOUR,
        last=None,
        now=z("2016-05-19T11:01"),  # topOfTheHour + 61m
        deadline=None,
        window=z("2016-05-19T10:00"),
        most_recent=z("2016-05-19T11:00"),  # + 60m
        due=1,
        k8s_missed="none",
        to_run=(z("2016-05-19T11:00"),),
        next_time=z("2016-05-19T12:00"),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/missed 5 schedules",
        "0 * * * *",
        created=z("2016-05-19T10:00:10"),  # + 10s
        last=None,
        now=z("2016-05-19T15:01"),  # + 301m
        deadline=None,
        window=z("2016-05-19T10:00:10"),
        most_recent=z("2016-05-19T15:00"),  # + 300m
        due=5,  # 11:00, 12:00, 13:00, 14:00, 15:00
        k8s_missed="few",
        to_run=(z("2016-05-19T15:00"),),
        next_time=z("2016-05-19T16:00"),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/complex schedule",
        "30 6-16/4 * * 1-5",  # 06:30, 10:30, 14:30 on weekdays
        created=TOP_OF_THE_HOUR,
        last=z("2016-05-19T10:30"),  # + 30m
        now=z("2016-05-20T10:31"),  # + 24h31m (Friday)
        deadline=None,
        window=z("2016-05-19T10:30"),
        most_recent=z("2016-05-20T10:30"),  # + 24h30m
        due=3,  # Thu 14:30, Fri 06:30, Fri 10:30
        k8s_missed="few",
        to_run=(z("2016-05-20T10:30"),),
        next_time=z("2016-05-20T14:30"),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/another complex schedule",
        "30 10,11,12 * * 1-5",
        created=TOP_OF_THE_HOUR,
        last=z("2016-05-19T10:30"),  # + 30m
        now=z("2016-05-20T16:30"),  # + 30h30m (Friday)
        deadline=None,
        window=z("2016-05-19T10:30"),
        most_recent=z("2016-05-20T12:30"),  # Kubernetes expects nil
        due=5,  # Thu 11:30, 12:30, Fri 10:30, 11:30, 12:30
        k8s_missed="few",
        to_run=(z("2016-05-20T12:30"),),
        next_time=z("2016-05-23T10:30"),  # Monday
        difference=(
            "Kubernetes estimates the number of missed instants from the gap between the first two "
            "(Thu 11:30 and 12:30, 1h): 30, jumps to Fri 15:30, finds no instant up to now and expects "
            "nil, so it starts nothing; Jobline walks the real instants: the newest due one is Fri 12:30Z "
            "(5 due), which RunLatest runs."
        ),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/complex schedule with longer diff between executions",
        "30 6-16/4 * * 1-5",
        created=TOP_OF_THE_HOUR,
        last=z("2016-05-19T10:30"),  # + 30m
        now=z("2016-05-23T10:31"),  # + 96h31m (Monday)
        deadline=None,
        window=z("2016-05-19T10:30"),
        most_recent=z("2016-05-23T10:30"),  # + 96h30m
        due=6,  # Thu 14:30, Fri 06:30, 10:30, 14:30, Mon 06:30, 10:30
        k8s_missed="few",
        to_run=(z("2016-05-23T10:30"),),
        next_time=z("2016-05-23T14:30"),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/complex schedule with shorter diff between executions",
        "30 6-16/4 * * 1-5",
        created=TOP_OF_THE_HOUR,
        last=None,
        now=z("2016-05-20T10:31"),  # + 24h31m
        deadline=None,
        window=z("2016-05-19T10:00"),  # the creation time
        most_recent=z("2016-05-20T10:30"),  # + 24h30m
        due=4,  # Thu 10:30, 14:30, Fri 06:30, 10:30
        k8s_missed="few",
        to_run=(z("2016-05-20T10:30"),),
        next_time=z("2016-05-20T14:30"),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/@every schedule",
        "@every 1h",
        created=z("2016-05-19T09:01"),  # - 59m: the anchor, instants at hh:01
        last=z("2016-05-19T10:01"),  # + 1m
        now=z("2016-05-26T10:00"),  # + 7 days
        deadline=10,
        window=z("2016-05-19T10:01"),
        most_recent=z("2016-05-26T09:01"),  # + 6d23h1m
        due=167,  # May 19 11:01 .. May 26 09:01, hourly: 7*24 - 2 hours apart, so 167 instants
        k8s_missed="many",
        to_run=(),  # the newest is 59 min late, beyond the 10 s deadline
        next_time=z("2016-05-26T10:01"),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/earliestTime being CreationTimestamp and LastScheduleTime",
        "0 * * * *",
        created=TOP_OF_THE_HOUR,
        last=TOP_OF_THE_HOUR,
        now=z("2016-05-19T10:00:30"),  # + 30s
        deadline=None,
        window=z("2016-05-19T10:00"),
        most_recent=None,
        due=0,
        k8s_missed="none",
        to_run=(),
        next_time=z("2016-05-19T11:00"),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/earliestTime being LastScheduleTime",
        "*/5 * * * *",
        created=TOP_OF_THE_HOUR,
        last=z("2016-05-19T10:30"),  # + 30m
        now=z("2016-05-19T10:31"),  # + 31m
        deadline=None,
        window=z("2016-05-19T10:30"),
        most_recent=None,
        due=0,
        k8s_missed="none",
        to_run=(),
        next_time=z("2016-05-19T10:35"),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/earliestTime being LastScheduleTime (within StartingDeadlineSeconds)",
        "*/5 * * * *",
        created=TOP_OF_THE_HOUR,
        last=z("2016-05-19T10:30"),  # + 30m
        now=z("2016-05-19T10:31"),  # + 31m
        deadline=60,
        window=z("2016-05-19T10:30"),
        most_recent=None,
        due=0,
        k8s_missed="none",
        to_run=(),
        next_time=z("2016-05-19T10:35"),
    ),
    RecentRow(
        "TestMostRecentScheduleTime/earliestTime being LastScheduleTime (outside StartingDeadlineSeconds)",
        "*/5 * * * *",
        created=TOP_OF_THE_HOUR,
        last=z("2016-05-19T10:30"),  # + 30m
        now=z("2016-05-19T10:32"),  # + 32m
        deadline=60,
        window=z("2016-05-19T10:30"),  # Kubernetes (includeSDS): now - 60 s = 10:31
        most_recent=None,
        due=0,
        k8s_missed="none",
        to_run=(),
        next_time=z("2016-05-19T10:35"),
        difference=(
            "Kubernetes moves the window start to now - startingDeadlineSeconds (10:31Z) and forgets "
            "older instants; Jobline keeps the window at lastScheduleTime (10:30Z) and applies the deadline "
            "only to which instants may run, counting the others as missed. No instant lies in "
            "(10:30Z, 10:31Z], so nothing is due either way."
        ),
    ),
)


@pytest.mark.parametrize("row", MOST_RECENT, ids=[r.origin for r in MOST_RECENT])
def test_most_recent_schedule_time(row: RecentRow) -> None:
    schedule = parse(row.schedule, row.created)
    assert row.window == (row.last or row.created)  # the row's own premise: Jobline's window start
    newest = schedule.times_between(row.window, row.now, 1, newest=True)
    assert newest == ([] if row.most_recent is None else [row.most_recent])
    count = schedule.count_between(row.window, row.now)
    assert count == row.due
    assert missed_kind(count) == row.k8s_missed
    assert len(schedule.times_between(row.window, row.now)) == row.due
    if row.most_recent is not None:
        assert schedule.last_at_or_before(row.now) == row.most_recent
    else:
        assert schedule.last_at_or_before(row.now) <= row.window
    assert schedule.next_after(row.now) == row.next_time

    plan = plan_catch_up(schedule, row.window, row.now, "RunLatest", row.deadline)
    assert plan.latest == row.most_recent
    assert plan.to_run == row.to_run
    assert plan.missed == row.due - len(row.to_run)
    assert plan.next_time == row.next_time
    assert plan.wake_at == row.next_time  # no jitter


# --- TestNextScheduleTime ------------------------------------------------------------------------------

# T1 = topOfTheHour() = 2016-05-19T10:00Z, T2 = T1 + 1h; the schedule of every case is "0 * * * ?".
HOURLY = "0 * * * ?"


@dataclass(frozen=True)
class NextRow:
    origin: str
    created: datetime
    last: datetime | None
    now: datetime
    deadline: int | None
    expected: datetime | None  # what nextScheduleTime returns: the instant to start now, or nil
    missed: int  # Jobline's count of due instants not run (Kubernetes has none)
    next_time: datetime
    difference: str | None = None


NEXT_SCHEDULE: tuple[NextRow, ...] = (
    NextRow(
        "TestNextScheduleTime/Case 1: no known start times, and none needed yet",
        created=z("2016-05-19T09:50"),  # T1 - 10m
        last=None,
        now=z("2016-05-19T09:53"),  # T1 - 7m
        deadline=None,
        expected=None,
        missed=0,
        next_time=z("2016-05-19T10:00"),
    ),
    NextRow(
        "TestNextScheduleTime/Case 2: no known start times, and one needed",
        created=z("2016-05-19T09:50"),
        last=None,
        now=z("2016-05-19T10:00:02"),  # T1 + 2s: on time (within the 5 s grace)
        deadline=None,
        expected=z("2016-05-19T10:00"),  # T1
        missed=0,
        next_time=z("2016-05-19T11:00"),
    ),
    NextRow(
        "TestNextScheduleTime/Case 3: known LastScheduleTime, no start needed",
        created=z("2016-05-19T09:50"),
        last=z("2016-05-19T10:00"),  # T1
        now=z("2016-05-19T10:02"),  # T1 + 2m
        deadline=None,
        expected=None,
        missed=0,
        next_time=z("2016-05-19T11:00"),
    ),
    NextRow(
        "TestNextScheduleTime/Case 4: known LastScheduleTime, a start needed",
        created=z("2016-05-19T09:50"),
        last=z("2016-05-19T10:00"),  # T1
        now=z("2016-05-19T11:05"),  # T2 + 5m
        deadline=None,
        expected=z("2016-05-19T11:00"),  # T2, 5 min late, no deadline: runs
        missed=0,
        next_time=z("2016-05-19T12:00"),
    ),
    NextRow(
        "TestNextScheduleTime/Case 5: known LastScheduleTime, two starts needed",
        created=z("2016-05-19T08:00"),  # T1 - 2h
        last=z("2016-05-19T09:00"),  # T1 - 1h
        now=z("2016-05-19T11:05"),  # T2 + 5m
        deadline=None,
        expected=z("2016-05-19T11:00"),  # T2 (the most recent); T1 is not run
        missed=1,
        next_time=z("2016-05-19T12:00"),
    ),
    NextRow(
        "TestNextScheduleTime/Case 6: now is way way ahead of last start time, and there is no deadline",
        created=z("2016-05-19T08:00"),
        last=z("2016-05-19T09:00"),
        now=z("2016-05-29T11:00"),  # T2 + 10 days
        deadline=None,
        expected=z("2016-05-29T11:00"),  # Kubernetes asserts non-nil; the most recent is now itself
        missed=241,  # 242 due: May 19 10:00 .. May 29 11:00 hourly (241 h apart); the newest runs
        next_time=z("2016-05-29T12:00"),
        difference=(
            "Kubernetes flags more than 100 missed instants as manyMissed and emits a TooManyMissedTimes "
            "Warning (older versions refused with 'too many missed start times (> 100)'); Jobline has no "
            "such limit: it runs the same instant and counts the 241 others as missed, without listing them."
        ),
    ),
    NextRow(
        "TestNextScheduleTime/Case 7: now is way way ahead of last start time, but there is a short deadline",
        created=z("2016-05-19T08:00"),
        last=z("2016-05-19T09:00"),
        now=z("2016-05-29T11:00"),  # T2 + 10 days
        deadline=2 * 60 * 60,
        expected=z("2016-05-29T11:00"),  # Kubernetes asserts non-nil
        missed=241,
        next_time=z("2016-05-29T12:00"),
    ),
)


@pytest.mark.parametrize("row", NEXT_SCHEDULE, ids=[r.origin for r in NEXT_SCHEDULE])
def test_next_schedule_time(row: NextRow) -> None:
    schedule = parse(HOURLY, row.created)
    plan = plan_catch_up(schedule, row.last or row.created, row.now, "RunLatest", row.deadline)
    assert plan.to_run == (() if row.expected is None else (row.expected,))
    assert plan.latest == row.expected
    assert plan.missed == row.missed
    assert plan.next_time == row.next_time
    assert schedule.next_after(row.now) == row.next_time


# --- TestNextScheduleTimeDuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class DurationRow:
    origin: str
    schedule: str
    created: datetime
    last: datetime | None
    now: datetime
    next_time: datetime  # the nominal next instant
    k8s_duration: timedelta  # expectedDuration: next_time - now + nextScheduleDelta
    difference: str | None = None


NEXT_DURATION: tuple[DurationRow, ...] = (
    DurationRow(
        "TestNextScheduleTimeDuration/complex schedule skipping weekend",
        "30 6-16/4 * * 1-5",
        created=TOP_OF_THE_HOUR,
        last=z("2016-05-19T10:30"),  # + 30m
        now=z("2016-05-20T10:31"),  # + 24h31m (Friday)
        next_time=z("2016-05-20T14:30"),
        k8s_duration=timedelta(hours=3, minutes=59) + NEXT_SCHEDULE_DELTA,
    ),
    DurationRow(
        "TestNextScheduleTimeDuration/another complex schedule skipping weekend",
        "30 10,11,12 * * 1-5",
        created=TOP_OF_THE_HOUR,
        last=z("2016-05-19T10:30"),
        now=z("2016-05-20T16:30"),  # + 30h30m (Friday)
        next_time=z("2016-05-23T10:30"),  # Monday
        k8s_duration=timedelta(hours=66) + NEXT_SCHEDULE_DELTA,
    ),
    DurationRow(
        "TestNextScheduleTimeDuration/once a week cronjob, missed two runs",
        "0 12 * * 4",  # Thursdays 12:00
        created=TOP_OF_THE_HOUR,
        last=z("2016-05-19T12:00"),  # + 2h
        now=z("2016-06-07T11:30"),  # + 19d1h30m (Tuesday); May 26 and Jun 2 12:00 were missed
        next_time=z("2016-06-09T12:00"),
        k8s_duration=timedelta(hours=48, minutes=30) + NEXT_SCHEDULE_DELTA,
    ),
    DurationRow(
        "TestNextScheduleTimeDuration/no previous run of a cronjob",
        "0 12 * * 5",  # Fridays 12:00
        created=TOP_OF_THE_HOUR,
        last=None,
        now=z("2016-05-19T16:00"),  # + 6h
        next_time=z("2016-05-20T12:00"),
        k8s_duration=timedelta(hours=20) + NEXT_SCHEDULE_DELTA,
    ),
)


@pytest.mark.parametrize("row", NEXT_DURATION, ids=[r.origin for r in NEXT_DURATION])
def test_next_schedule_time_duration(row: DurationRow) -> None:
    schedule = parse(row.schedule, row.created)
    plan = plan_catch_up(schedule, row.last or row.created, row.now)
    assert plan.next_time == row.next_time
    assert plan.wake_at == row.next_time
    assert plan.next_time - row.now + NEXT_SCHEDULE_DELTA == row.k8s_duration
    assert plan.next_time > row.now  # "scheduleTimeDuration should never be less than 0"


# --- schedules that never fire: TestMostRecentScheduleTime/rogue cronjob, TestNextScheduleTime/Case 8 ---

NEVER_FIRES = (
    "Kubernetes (robfig/cron) accepts the expression and only errors when computing times ('time "
    "difference between two schedules is less than 1 second'); Jobline refuses it when parsing, with "
    "ScheduleError(InvalidSchedule), so the schedule gets Ready=False and fires nothing."
)


@dataclass(frozen=True)
class InvalidRow:
    origin: str
    schedule: str
    difference: str | None = None


INVALID: tuple[InvalidRow, ...] = (
    InvalidRow("TestMostRecentScheduleTime/rogue cronjob", "59 23 31 2 *", NEVER_FIRES),
    InvalidRow(
        "TestNextScheduleTime/Case 8: ensure the error from mostRecentScheduleTime gets populated up",
        "59 23 31 2 *",
        NEVER_FIRES,
    ),
)


@pytest.mark.parametrize("row", INVALID, ids=[r.origin for r in INVALID])
def test_schedule_that_never_fires_is_refused(row: InvalidRow) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(row.schedule, "UTC")
    assert caught.value.reason == REASON_INVALID_SCHEDULE
    assert isinstance(caught.value, ValueError)
    assert caught.value.message


# --- TestGetJobFromTemplate2: the time zone and the job name --------------------------------------------

JOB_NAME_IN_SECONDS = (
    "Kubernetes names the Job <cronjob>-<minutes since the epoch> (mycronjob-24394200); Jobline names the "
    "run <schedule>-<seconds since the epoch> (mycronjob-1463652000), so that sub-minute @every schedules "
    "get distinct names. The prefix the Kubernetes test checks is the same."
)


@dataclass(frozen=True)
class TemplateRow:
    origin: str
    time_zone: str | None  # spec.timeZone; None is nil
    zone: str  # the zone the schedule is read in
    name: str
    difference: str | None = None


JOB_TEMPLATE: tuple[TemplateRow, ...] = (
    TemplateRow(
        "TestGetJobFromTemplate2/UTC timezone and one annotation",
        "UTC",
        "UTC",
        "mycronjob-1463652000",
        JOB_NAME_IN_SECONDS,
    ),
    TemplateRow(
        "TestGetJobFromTemplate2/nil timezone and one annotation",
        None,
        "UTC",
        "mycronjob-1463652000",
        JOB_NAME_IN_SECONDS,
    ),
    TemplateRow(
        "TestGetJobFromTemplate2/correct timezone and multiple annotation",
        "Europe/Rome",  # 2016-05-19T10:00Z is 12:00 CEST (+02:00), the annotation Kubernetes expects
        "Europe/Rome",
        "mycronjob-1463652000",
        JOB_NAME_IN_SECONDS,
    ),
)


@pytest.mark.parametrize("row", JOB_TEMPLATE, ids=[r.origin for r in JOB_TEMPLATE])
def test_job_from_template_time_zone_and_name(row: TemplateRow) -> None:
    # The Kubernetes CronJob of these rows: schedule "* * * * ?", scheduledTime = topOfTheHour().
    schedule = parse_schedule("* * * * ?", row.time_zone)
    assert schedule.time_zone == row.zone
    # The scheduled instant is the same in every zone (every minute fires; the offsets are whole minutes).
    assert schedule.last_at_or_before(TOP_OF_THE_HOUR) == TOP_OF_THE_HOUR
    assert schedule.next_after(TOP_OF_THE_HOUR) == z("2016-05-19T10:01")
    name = run_name("mycronjob", TOP_OF_THE_HOUR)
    assert name.startswith("mycronjob-")
    assert name == row.name
    # The name is of the instant, not of its wall time in the zone.
    assert run_name("mycronjob", TOP_OF_THE_HOUR.astimezone(ZoneInfo(row.zone))) == row.name


# --- totals --------------------------------------------------------------------------------------------

# Totals: 28 rows ported (12 TestMostRecentScheduleTime + 1 of its rows in INVALID, 7 TestNextScheduleTime +
# 1 in INVALID, 4 TestNextScheduleTimeDuration, 3 TestGetJobFromTemplate2), 8 of them deliberate
# differences (another complex schedule, outside StartingDeadlineSeconds, rogue cronjob, Case 6, Case 8,
# the 3 job-name rows), 5 rows not portable (TestByJobStartTime, below).

ALL_ROWS: tuple[RecentRow | NextRow | DurationRow | InvalidRow | TemplateRow, ...] = (
    *MOST_RECENT,
    *NEXT_SCHEDULE,
    *NEXT_DURATION,
    *INVALID,
    *JOB_TEMPLATE,
)


def test_row_totals() -> None:
    origins = [r.origin for r in ALL_ROWS]
    assert len(origins) == len(set(origins)) == 28
    by_function = {f: sum(o.startswith(f + "/") for o in origins) for f in {o.split("/")[0] for o in origins}}
    assert by_function == {
        "TestMostRecentScheduleTime": 13,
        "TestNextScheduleTime": 8,
        "TestNextScheduleTimeDuration": 4,
        "TestGetJobFromTemplate2": 3,
    }
    assert sum(r.difference is not None for r in ALL_ROWS) == 8
    assert all(r.difference is None or r.difference.endswith(".") for r in ALL_ROWS)
    assert len(NOT_PORTABLE) == 5


# --- not portable --------------------------------------------------------------------------------------
#
# TestByJobStartTime (5 rows: "both have nil start times", "only the first has a nil start time", "only the
# second has a nil start time", "both have non-nil, equal start time", "both have non-nil, different start
# time"): it sorts batchv1.Job objects by status.startTime with the name as tie breaker, Go controller
# plumbing for history cleanup, not cron math; Jobline's history cleanup orders by completion time and
# lives outside jobline.core.cron.
#
# Parts of ported rows that are not portable: TestGetJobFromTemplate2's label and annotation counts and
# its scheduled-timestamp annotation (job construction, done outside jobline.core.cron); the
# TooManyMissedTimes Event and log line of nextScheduleTime (Jobline has no such limit, see Case 6).
NOT_PORTABLE: tuple[str, ...] = (
    "TestByJobStartTime/both have nil start times",
    "TestByJobStartTime/only the first has a nil start time",
    "TestByJobStartTime/only the second has a nil start time",
    "TestByJobStartTime/both have non-nil, equal start time",
    "TestByJobStartTime/both have non-nil, different start time",
)
