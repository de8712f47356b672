"""The DST rule (cronie's) in three zones, both transitions, fixed-time and frequent schedules, and
catch-up across a transition after downtime. Every instant is written out by hand in UTC.

Transitions used (checked against tzdata with zoneinfo):
- Europe/Berlin    2026-03-29 01:00Z: 02:00 CET -> 03:00 CEST (02:00-02:59 local do not exist)
                   2026-10-25 01:00Z: 03:00 CEST -> 02:00 CET (02:00-02:59 local: 00:00Z-00:59Z and 01:00Z-01:59Z)
- America/New_York 2027-03-14 07:00Z: 02:00 EST -> 03:00 EDT (02:00-02:59 do not exist)
                   2026-11-01 06:00Z: 02:00 EDT -> 01:00 EST (01:00-01:59: 05:00Z-05:59Z and 06:00Z-06:59Z)
- Australia/Sydney 2026-10-03 16:00Z: 02:00 AEST -> 03:00 AEDT on 2026-10-04 (02:00-02:59 do not exist)
                   2027-04-03 16:00Z: 03:00 AEDT -> 02:00 AEST on 2027-04-04 (02:00-02:59: 15:00Z-15:59Z and
                   16:00Z-16:59Z)
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobline.core.cron import CronSchedule, MissedRunPolicy, parse_schedule, plan_catch_up

BERLIN, NEW_YORK, SYDNEY = "Europe/Berlin", "America/New_York", "Australia/Sydney"


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hm(day: str, *times: str) -> list[str]:
    return [f"{day}T{t}" for t in times]


def fired(expr: str, tz: str, a: str, b: str) -> list[str]:
    return [u.strftime("%Y-%m-%dT%H:%M") for u in parse_schedule(expr, tz).times_between(z(a), z(b))]


RULE_ROWS = [
    # zone, transition, schedule, window (a, b], expected instants (UTC)
    # --- Berlin, fall back
    (BERLIN, "fall", "30 2 * * *", "2026-10-24T12:00", "2026-10-25T12:00", hm("2026-10-25", "00:30")),
    (BERLIN, "fall", "0 2,3 * * *", "2026-10-24T12:00", "2026-10-25T12:00", hm("2026-10-25", "00:00", "02:00")),
    (BERLIN, "fall", "*/30 * * * *", "2026-10-25T00:00", "2026-10-25T02:00",
     hm("2026-10-25", "00:30", "01:00", "01:30", "02:00")),
    (BERLIN, "fall", "0 * * * *", "2026-10-24T22:30", "2026-10-25T03:30",
     ["2026-10-24T23:00", *hm("2026-10-25", "00:00", "01:00", "02:00", "03:00")]),
    # --- Berlin, spring forward
    (BERLIN, "spring", "30 2 * * *", "2026-03-28T12:00", "2026-03-29T12:00", hm("2026-03-29", "01:00")),
    (BERLIN, "spring", "0 2,3 * * *", "2026-03-28T12:00", "2026-03-29T12:00", hm("2026-03-29", "01:00")),
    (BERLIN, "spring", "*/30 * * * *", "2026-03-29T00:00", "2026-03-29T02:00",
     hm("2026-03-29", "00:30", "01:00", "01:30", "02:00")),
    (BERLIN, "spring", "15 * * * *", "2026-03-28T23:30", "2026-03-29T01:30", hm("2026-03-29", "00:15", "01:15")),
    (BERLIN, "spring", "* 2 * * *", "2026-03-28T12:00", "2026-03-29T12:00", []),
    # --- New York, fall back
    (NEW_YORK, "fall", "30 1 * * *", "2026-10-31T12:00", "2026-11-01T12:00", hm("2026-11-01", "05:30")),
    (NEW_YORK, "fall", "@hourly", "2026-11-01T04:30", "2026-11-01T07:30", hm("2026-11-01", "05:00", "06:00", "07:00")),
    (NEW_YORK, "fall", "*/20 1 * * *", "2026-11-01T04:00", "2026-11-01T08:00",
     hm("2026-11-01", "05:00", "05:20", "05:40", "06:00", "06:20", "06:40")),
    # --- New York, spring forward
    (NEW_YORK, "spring", "30 2 * * *", "2027-03-13T12:00", "2027-03-15T12:00",
     ["2027-03-14T07:00", "2027-03-15T06:30"]),
    (NEW_YORK, "spring", "30 2 14 3 *", "2026-12-01T00:00", "2027-12-01T00:00", ["2027-03-14T07:00"]),
    (NEW_YORK, "spring", "0 * * * *", "2027-03-14T05:30", "2027-03-14T08:30", hm("2027-03-14", "06:00", "07:00", "08:00")),
    (NEW_YORK, "spring", "*/30 2 * * *", "2027-03-14T00:00", "2027-03-15T12:00", hm("2027-03-15", "06:00", "06:30")),
    # --- Sydney, fall back (April)
    (SYDNEY, "fall", "30 2 * * *", "2027-04-03T00:00", "2027-04-04T12:00", hm("2027-04-03", "15:30")),
    (SYDNEY, "fall", "*/30 * * * *", "2027-04-03T14:45", "2027-04-03T16:45",
     hm("2027-04-03", "15:00", "15:30", "16:00", "16:30")),
    (SYDNEY, "fall", "0 * * * *", "2027-04-03T14:30", "2027-04-03T17:30", hm("2027-04-03", "15:00", "16:00", "17:00")),
    # --- Sydney, spring forward (October)
    (SYDNEY, "spring", "30 2 * * *", "2026-10-03T00:00", "2026-10-04T12:00", hm("2026-10-03", "16:00")),
    (SYDNEY, "spring", "*/30 * * * *", "2026-10-03T15:00", "2026-10-03T17:00",
     hm("2026-10-03", "15:30", "16:00", "16:30", "17:00")),
    (SYDNEY, "spring", "30 * * * *", "2026-10-03T15:00", "2026-10-03T17:00", hm("2026-10-03", "15:30", "16:30")),
]


@pytest.mark.parametrize(("tz", "transition", "expr", "a", "b", "expected"), RULE_ROWS,
                         ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in RULE_ROWS])
def test_dst_rule(tz: str, transition: str, expr: str, a: str, b: str, expected: list[str]) -> None:
    assert fired(expr, tz, a, b) == expected
    s = parse_schedule(expr, tz)
    assert s.count_between(z(a), z(b)) == len(expected)
    if expected:  # next_after / last_at_or_before walk the same instants
        assert s.next_after(z(a)) == z(expected[0])
        assert s.last_at_or_before(z(b)) == z(expected[-1])
        walked = [s.next_after(z(a))]
        while len(walked) < len(expected):
            walked.append(s.next_after(walked[-1]))
        assert walked == [z(e) for e in expected]


@pytest.mark.parametrize(
    ("expr", "fixed"),
    [("30 2 * * *", True), ("0 9 * * 1-5", True), ("0-59/15 0-23 * * *", True), ("@daily", True),
     ("*/15 * * * *", False), ("0 * * * *", False), ("@hourly", False), ("* 2 * * *", False), ("5,*/20 3 * * *", False)],
)
def test_fixed_or_frequent(expr: str, fixed: bool) -> None:
    s = parse_schedule(expr, BERLIN)
    assert isinstance(s, CronSchedule) and s.fixed_time is fixed


def test_a_minute_schedule_fires_every_real_minute_of_a_repeated_hour() -> None:
    # `* 2 * * *` in Berlin on the fall-back day: 60 minutes in CEST and 60 in CET.
    assert parse_schedule("* 2 * * *", BERLIN).count_between(z("2026-10-24T12:00"), z("2026-10-25T12:00")) == 120


def test_every_ignores_dst() -> None:
    s = parse_schedule("@every 1h", BERLIN, anchor=z("2026-01-01T00:00"))
    assert s.times_between(z("2026-10-24T23:30"), z("2026-10-25T02:30")) == [
        z("2026-10-25T00:00"), z("2026-10-25T01:00"), z("2026-10-25T02:00")
    ]


CATCH_UP_ROWS: list[tuple[str, str, str, str, str, MissedRunPolicy, float | None, list[str], int]] = [
    # zone, schedule, last schedule time, now, what, policy, deadline, to_run, missed
    (BERLIN, "*/30 * * * *", "2026-10-24T23:30", "2026-10-25T02:10", "down across the fold, all",
     "RunAll", None, hm("2026-10-25", "00:00", "00:30", "01:00", "01:30", "02:00"), 0),
    (BERLIN, "*/30 * * * *", "2026-10-24T23:30", "2026-10-25T02:10", "down across the fold, latest",
     "RunLatest", None, hm("2026-10-25", "02:00"), 4),
    (BERLIN, "30 2 * * *", "2026-10-24T12:00", "2026-10-25T03:00", "fixed time once",
     "RunAll", None, hm("2026-10-25", "00:30"), 0),
    (BERLIN, "*/30 * * * *", "2026-03-29T00:10", "2026-03-29T01:40", "down across the gap",
     "RunAll", None, hm("2026-03-29", "00:30", "01:00", "01:30"), 0),
    (NEW_YORK, "30 2 * * *", "2027-03-13T12:00", "2027-03-14T12:00", "fixed time in the gap",
     "RunLatest", None, hm("2027-03-14", "07:00"), 0),
    (NEW_YORK, "*/30 * * * *", "2027-03-14T06:10", "2027-03-14T07:40", "no runs for missing wall times",
     "RunAll", None, hm("2027-03-14", "06:30", "07:00", "07:30"), 0),
    (NEW_YORK, "@hourly", "2026-11-01T04:30", "2026-11-01T07:10", "both passes, deadline 90 min",
     "RunAll", 5400, hm("2026-11-01", "06:00", "07:00"), 1),
    (SYDNEY, "0 * * * *", "2027-04-03T14:30", "2027-04-03T17:10", "skip: all late",
     "Skip", None, [], 3),
    (SYDNEY, "0 2 * * *", "2026-10-03T00:00", "2026-10-04T00:00", "fixed time in the gap, past its deadline",
     "RunAll", 3600, [], 1),
]


@pytest.mark.parametrize(
    ("tz", "expr", "last", "now", "what", "policy", "deadline", "to_run", "missed"),
    CATCH_UP_ROWS,
    ids=[f"{r[0]}-{r[1]}-{r[4]}" for r in CATCH_UP_ROWS],
)
def test_catch_up_across_a_transition(
    tz: str, expr: str, last: str, now: str, what: str, policy: MissedRunPolicy, deadline: float | None,
    to_run: list[str], missed: int,
) -> None:
    plan = plan_catch_up(
        parse_schedule(expr, tz), z(last), z(now), policy, starting_deadline_seconds=deadline, max_catch_up_runs=10
    )
    assert [u.strftime("%Y-%m-%dT%H:%M") for u in plan.to_run] == to_run, what
    assert plan.missed == missed, what
