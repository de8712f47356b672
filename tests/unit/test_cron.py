"""Cron math of JobSchedule: parsing, fire instants (with DST), catch-up, jitter and run names.

Expected instants are written out by hand in UTC. DST dates used:
- Europe/Berlin 2026-03-29: 02:00 CET (+01) -> 03:00 CEST (+02) at 01:00Z;
  2026-10-25: 03:00 CEST -> 02:00 CET at 01:00Z (02:00-02:59 local happens twice: 00:00Z-00:59Z, 01:00Z-01:59Z).
- America/New_York 2026-03-08: 02:00 EST (-05) -> 03:00 EDT (-04) at 07:00Z;
  2026-11-01: 02:00 EDT -> 01:00 EST at 06:00Z (01:00-01:59 local happens twice: 05:00Z-05:59Z, 06:00Z-06:59Z).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from jobline.core.cron import (
    REASON_INVALID_SCHEDULE,
    REASON_INVALID_TIME_ZONE,
    CatchUp,
    CronSchedule,
    EverySchedule,
    Schedule,
    ScheduleError,
    jitter_offset,
    manual_run_name,
    parse_schedule,
    plan_catch_up,
    run_name,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def z(text: str) -> datetime:
    """A UTC instant from 'YYYY-MM-DDTHH:MM[:SS[.ffffff]]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def zs(*texts: str) -> list[datetime]:
    return [z(t) for t in texts]


def between(expr: str, tz: str, a: str, b: str) -> list[datetime]:
    return parse_schedule(expr, tz).times_between(z(a), z(b))


# --- plain cron -------------------------------------------------------------------------------------


def test_daily_at_three_utc() -> None:
    s = parse_schedule("0 3 * * *")
    assert isinstance(s, CronSchedule)
    assert s.next_after(z("2026-01-01T00:00")) == z("2026-01-01T03:00")
    # strictly after: a fire instant itself is not returned
    assert s.next_after(z("2026-01-01T03:00")) == z("2026-01-02T03:00")
    assert s.next_after(z("2026-01-01T02:59:59.999999")) == z("2026-01-01T03:00")
    assert s.next_after(z("2026-01-01T03:00:00.000001")) == z("2026-01-02T03:00")
    assert s.last_at_or_before(z("2026-01-01T03:00")) == z("2026-01-01T03:00")
    assert s.last_at_or_before(z("2026-01-01T02:59")) == z("2025-12-31T03:00")


def test_result_is_utc_whatever_the_input_zone() -> None:
    s = parse_schedule("0 3 * * *")
    t = datetime(2026, 1, 1, 1, 0, tzinfo=ZoneInfo(BERLIN))  # 00:00Z
    result = s.next_after(t)
    assert result == z("2026-01-01T03:00")
    assert result.tzinfo is UTC


def test_naive_datetimes_are_refused() -> None:
    s = parse_schedule("0 3 * * *")
    with pytest.raises(ValueError, match="aware"):
        s.next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        parse_schedule("@every 1m", anchor=datetime(2026, 1, 1))


def test_every_fifteen_minutes() -> None:
    assert between("*/15 * * * *", "UTC", "2026-01-01T00:00", "2026-01-01T01:00") == zs(
        "2026-01-01T00:15", "2026-01-01T00:30", "2026-01-01T00:45", "2026-01-01T01:00"
    )


def test_times_between_limit_oldest_and_newest() -> None:
    s = parse_schedule("*/15 * * * *")
    a, b = z("2026-01-01T00:00"), z("2026-01-01T02:00")
    assert s.times_between(a, b, 2) == zs("2026-01-01T00:15", "2026-01-01T00:30")
    assert s.times_between(a, b, 2, newest=True) == zs("2026-01-01T01:45", "2026-01-01T02:00")
    assert s.times_between(a, b, 0) == []
    assert s.times_between(b, a) == []
    assert s.count_between(a, b) == 8
    assert s.count_between(a, b, cap=3) == 3
    assert s.count_between(b, a) == 0


def test_leap_day() -> None:
    s = parse_schedule("0 0 29 2 *")
    assert s.next_after(z("2026-03-01T00:00")) == z("2028-02-29T00:00")
    assert s.next_after(z("2028-02-29T00:00")) == z("2032-02-29T00:00")
    # 2100 is not a leap year
    assert s.next_after(z("2097-01-01T00:00")) == z("2104-02-29T00:00")
    assert s.last_at_or_before(z("2027-06-01T00:00")) == z("2024-02-29T00:00")


def test_day_31_skips_short_months() -> None:
    s = parse_schedule("0 0 31 * *")
    assert s.times_between(z("2026-01-01T00:00"), z("2026-12-31T23:59")) == zs(
        "2026-01-31T00:00",
        "2026-03-31T00:00",
        "2026-05-31T00:00",
        "2026-07-31T00:00",
        "2026-08-31T00:00",
        "2026-10-31T00:00",
        "2026-12-31T00:00",
    )


def test_last_day_of_month() -> None:
    s = parse_schedule("0 0 L * *")
    assert s.times_between(z("2026-01-01T00:00"), z("2026-05-01T00:00")) == zs(
        "2026-01-31T00:00", "2026-02-28T00:00", "2026-03-31T00:00", "2026-04-30T00:00"
    )
    assert s.next_after(z("2028-02-01T00:00")) == z("2028-02-29T00:00")


def test_day_of_month_or_day_of_week() -> None:
    # Both restricted: a day matching either fires (the 13th, or any Friday). 2026-02-13 is a Friday.
    s = parse_schedule("0 12 13 * fri")
    assert s.times_between(z("2026-02-01T00:00"), z("2026-02-28T23:59")) == zs(
        "2026-02-06T12:00", "2026-02-13T12:00", "2026-02-20T12:00", "2026-02-27T12:00"
    )


@pytest.mark.parametrize(
    ("macro", "after", "expected"),
    [
        ("@yearly", "2026-03-01T00:00", "2027-01-01T00:00"),
        ("@annually", "2026-03-01T00:00", "2027-01-01T00:00"),
        ("@monthly", "2026-03-01T00:00", "2026-04-01T00:00"),
        ("@weekly", "2026-01-01T00:00", "2026-01-04T00:00"),  # 2026-01-04 is a Sunday
        ("@daily", "2026-01-01T00:00", "2026-01-02T00:00"),
        ("@midnight", "2026-01-01T12:00", "2026-01-02T00:00"),
        ("@hourly", "2026-01-01T12:00", "2026-01-01T13:00"),
    ],
)
def test_macros(macro: str, after: str, expected: str) -> None:
    assert parse_schedule(macro).next_after(z(after)) == z(expected)


def test_macros_read_in_the_time_zone() -> None:
    assert parse_schedule("@daily", BERLIN).next_after(z("2026-01-01T12:00")) == z("2026-01-01T23:00")
    assert parse_schedule("@daily", BERLIN).next_after(z("2026-07-01T12:00")) == z("2026-07-01T22:00")
    assert parse_schedule("@daily", NEW_YORK).next_after(z("2026-01-01T12:00")) == z("2026-01-02T05:00")


def test_named_months_and_days() -> None:
    s = parse_schedule("0 9 * JAN MON")
    assert s.times_between(z("2026-01-01T00:00"), z("2026-01-31T00:00")) == zs(
        "2026-01-05T09:00", "2026-01-12T09:00", "2026-01-19T09:00", "2026-01-26T09:00"
    )


def test_time_zone_none_or_empty_means_utc() -> None:
    for tz in (None, ""):
        s = parse_schedule("0 3 * * *", tz)
        assert s.time_zone == "UTC"
        assert s.next_after(z("2026-07-01T00:00")) == z("2026-07-01T03:00")


# --- DST: Europe/Berlin -------------------------------------------------------------------------------


def test_berlin_normal_days() -> None:
    s = parse_schedule("30 2 * * *", BERLIN)
    assert s.next_after(z("2026-01-10T00:00")) == z("2026-01-10T01:30")  # 02:30 CET
    assert s.next_after(z("2026-07-10T00:00")) == z("2026-07-10T00:30")  # 02:30 CEST


def test_berlin_spring_forward_missing_time_fires_at_end_of_gap() -> None:
    s = parse_schedule("30 2 * * *", BERLIN)
    # 02:30 does not exist on 2026-03-29: fires at 03:00 CEST = 01:00Z
    assert s.next_after(z("2026-03-28T12:00")) == z("2026-03-29T01:00")
    assert s.next_after(z("2026-03-29T01:00")) == z("2026-03-30T00:30")
    assert s.last_at_or_before(z("2026-03-29T23:00")) == z("2026-03-29T01:00")
    assert s.times_between(z("2026-03-27T12:00"), z("2026-03-30T12:00")) == zs(
        "2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"
    )


def test_berlin_spring_forward_three_and_two_o_clock() -> None:
    # 03:00 CEST is itself the end of the gap: one run at 01:00Z.
    assert between("0 3 * * *", BERLIN, "2026-03-28T12:00", "2026-03-29T12:00") == zs("2026-03-29T01:00")
    assert between("0 2 * * *", BERLIN, "2026-03-28T12:00", "2026-03-29T12:00") == zs("2026-03-29T01:00")
    # 02:00 and 03:00 fold into one instant: exactly one run, not two.
    assert between("0 2,3 * * *", BERLIN, "2026-03-28T12:00", "2026-03-29T12:00") == zs("2026-03-29T01:00")


def test_berlin_spring_forward_every_fifteen_minutes() -> None:
    # 02:00, 02:15, 02:30, 02:45 (missing) and 03:00 CEST fold into one run at 01:00Z.
    assert between("*/15 * * * *", BERLIN, "2026-03-29T00:30", "2026-03-29T01:30") == zs(
        "2026-03-29T00:45",  # 01:45 CET
        "2026-03-29T01:00",  # 03:00 CEST, standing for 02:00..02:45 and 03:00
        "2026-03-29T01:15",  # 03:15 CEST
        "2026-03-29T01:30",
    )
    s = parse_schedule("*/15 * * * *", BERLIN)
    assert s.next_after(z("2026-03-29T00:45")) == z("2026-03-29T01:00")
    assert s.next_after(z("2026-03-29T01:00")) == z("2026-03-29T01:15")
    assert s.last_at_or_before(z("2026-03-29T01:14")) == z("2026-03-29T01:00")
    assert s.count_between(z("2026-03-29T00:30"), z("2026-03-29T01:30")) == 4


def test_berlin_spring_forward_hourly() -> None:
    assert between("0 * * * *", BERLIN, "2026-03-28T23:30", "2026-03-29T02:30") == zs(
        "2026-03-29T00:00",  # 01:00 CET
        "2026-03-29T01:00",  # 02:00 (missing) and 03:00 CEST
        "2026-03-29T02:00",  # 04:00 CEST
    )


def test_berlin_fall_back_repeated_time_fires_once_at_first_occurrence() -> None:
    s = parse_schedule("30 2 * * *", BERLIN)
    # 02:30 happens at 00:30Z (CEST) and 01:30Z (CET): fires at 00:30Z only.
    assert s.next_after(z("2026-10-24T12:00")) == z("2026-10-25T00:30")
    assert s.next_after(z("2026-10-25T00:30")) == z("2026-10-26T01:30")
    assert s.next_after(z("2026-10-25T01:00")) == z("2026-10-26T01:30")
    assert s.times_between(z("2026-10-24T00:00"), z("2026-10-26T12:00")) == zs(
        "2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"
    )
    assert s.last_at_or_before(z("2026-10-25T01:30")) == z("2026-10-25T00:30")


def test_berlin_fall_back_every_fifteen_minutes_fires_in_both_passes() -> None:
    # A frequent schedule follows the wall clock: 02:00-02:45 fire in CEST and again in CET (no hole).
    assert between("*/15 * * * *", BERLIN, "2026-10-24T23:30", "2026-10-25T02:30") == zs(
        "2026-10-24T23:45",  # 01:45 CEST
        "2026-10-25T00:00",  # 02:00 CEST
        "2026-10-25T00:15",
        "2026-10-25T00:30",
        "2026-10-25T00:45",  # 02:45 CEST
        "2026-10-25T01:00",  # 02:00 CET
        "2026-10-25T01:15",
        "2026-10-25T01:30",
        "2026-10-25T01:45",  # 02:45 CET
        "2026-10-25T02:00",  # 03:00 CET
        "2026-10-25T02:15",
        "2026-10-25T02:30",
    )
    s = parse_schedule("*/15 * * * *", BERLIN)
    assert s.next_after(z("2026-10-25T01:10")) == z("2026-10-25T01:15")
    assert s.next_after(z("2026-10-25T00:45")) == z("2026-10-25T01:00")
    assert s.last_at_or_before(z("2026-10-25T01:50")) == z("2026-10-25T01:45")
    assert s.last_at_or_before(z("2026-10-25T00:59")) == z("2026-10-25T00:45")
    assert s.count_between(z("2026-10-24T23:30"), z("2026-10-25T02:30")) == 12
    assert s.times_between(z("2026-10-24T23:30"), z("2026-10-25T02:30"), 2, newest=True) == zs(
        "2026-10-25T02:15", "2026-10-25T02:30"
    )


def test_berlin_fall_back_thirty_minutes_has_no_hole() -> None:
    # Issue 12's bug 4: once per wall time left a 90-minute hole (00:30Z, then 02:00Z).
    assert between("*/30 * * * *", BERLIN, "2026-10-25T00:00", "2026-10-25T02:00") == zs(
        "2026-10-25T00:30", "2026-10-25T01:00", "2026-10-25T01:30", "2026-10-25T02:00"
    )


def test_berlin_fall_back_hourly() -> None:
    assert between("0 * * * *", BERLIN, "2026-10-24T22:30", "2026-10-25T03:30") == zs(
        "2026-10-24T23:00",  # 01:00 CEST
        "2026-10-25T00:00",  # 02:00 CEST
        "2026-10-25T01:00",  # 02:00 CET: the repeated hour fires again
        "2026-10-25T02:00",  # 03:00 CET
        "2026-10-25T03:00",  # 04:00 CET
    )


# --- DST: America/New_York ----------------------------------------------------------------------------


def test_new_york_spring_forward() -> None:
    s = parse_schedule("30 2 * * *", NEW_YORK)
    assert s.next_after(z("2026-03-07T12:00")) == z("2026-03-08T07:00")  # 03:00 EDT
    assert s.next_after(z("2026-03-08T07:00")) == z("2026-03-09T06:30")  # 02:30 EDT
    assert s.times_between(z("2026-03-07T00:00"), z("2026-03-09T12:00")) == zs(
        "2026-03-07T07:30", "2026-03-08T07:00", "2026-03-09T06:30"
    )
    assert between("*/30 * * * *", NEW_YORK, "2026-03-08T06:00", "2026-03-08T07:30") == zs(
        "2026-03-08T06:30",  # 01:30 EST
        "2026-03-08T07:00",  # 02:00, 02:30 (missing) and 03:00 EDT
        "2026-03-08T07:30",  # 03:30 EDT
    )


def test_new_york_fall_back() -> None:
    s = parse_schedule("30 1 * * *", NEW_YORK)
    # 01:30 happens at 05:30Z (EDT) and 06:30Z (EST): once, at 05:30Z.
    assert s.times_between(z("2026-10-31T00:00"), z("2026-11-02T12:00")) == zs(
        "2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"
    )
    # 02:30 is not repeated in New York
    assert parse_schedule("30 2 * * *", NEW_YORK).next_after(z("2026-11-01T00:00")) == z("2026-11-01T07:30")
    assert between("*/30 * * * *", NEW_YORK, "2026-11-01T04:45", "2026-11-01T07:30") == zs(
        "2026-11-01T05:00",  # 01:00 EDT
        "2026-11-01T05:30",  # 01:30 EDT
        "2026-11-01T06:00",  # 01:00 EST
        "2026-11-01T06:30",  # 01:30 EST
        "2026-11-01T07:00",  # 02:00 EST
        "2026-11-01T07:30",
    )
    # Issue 12's bug 4: @hourly used to skip 06:00Z (01:00 EST).
    assert between("@hourly", NEW_YORK, "2026-11-01T04:30", "2026-11-01T07:30") == zs(
        "2026-11-01T05:00", "2026-11-01T06:00", "2026-11-01T07:00"
    )


# --- against a brute-force reference -----------------------------------------------------------------


def reference(expr: str, tz: str, a: datetime, b: datetime) -> list[datetime]:
    """Every UTC minute in (a, b] that fires, by the module's rules, checked one minute at a time.

    Frequent schedules (a `*` in the minute or hour field) fire whenever the wall clock matches;
    fixed-time ones once per wall time (first pass) and at the end of a gap for its wall times.
    """
    zone = ZoneInfo(tz)
    frequent = any(f.startswith("*") for f in expr.split()[:2])
    fired = []
    u = a.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while u <= b:
        local = u.astimezone(zone)
        wall = local.replace(tzinfo=None)
        fires = (frequent or local.fold == 0) and croniter.match(expr, wall)
        before = (u - timedelta(minutes=1)).astimezone(zone)
        jump = local.utcoffset() - before.utcoffset()  # type: ignore[operator]
        if jump > timedelta(0) and not frequent:  # u ends a gap: wall times of the gap fire here
            w = wall - jump
            while w < wall and not fires:
                fires = croniter.match(expr, w)
                w += timedelta(minutes=1)
        if fires:
            fired.append(u)
        u += timedelta(minutes=1)
    return fired


@pytest.mark.parametrize("expr", ["*/15 * * * *", "0 * * * *", "*/7 1-3 * * *", "30 2 * * *", "59 1,2 * * *"])
@pytest.mark.parametrize(
    ("tz", "a", "b"),
    [
        (BERLIN, "2026-03-28T20:00", "2026-03-29T06:00"),
        (BERLIN, "2026-10-24T20:00", "2026-10-25T06:00"),
        (NEW_YORK, "2026-03-08T02:00", "2026-03-08T12:00"),
        (NEW_YORK, "2026-11-01T02:00", "2026-11-01T12:00"),
        ("UTC", "2026-03-28T20:00", "2026-03-29T06:00"),
        ("Australia/Sydney", "2026-10-03T10:00", "2026-10-03T20:00"),
        ("Australia/Sydney", "2027-04-03T10:00", "2027-04-03T20:00"),
        ("Australia/Lord_Howe", "2026-10-03T10:00", "2026-10-03T20:00"),  # a 30-minute shift
        ("Australia/Lord_Howe", "2027-04-03T10:00", "2027-04-03T20:00"),
    ],
)
def test_matches_brute_force_reference(expr: str, tz: str, a: str, b: str) -> None:
    s = parse_schedule(expr, tz)
    expected = reference(expr, tz, z(a), z(b))
    assert s.times_between(z(a), z(b)) == expected
    assert s.count_between(z(a), z(b)) == len(expected)
    assert s.times_between(z(a), z(b), 3, newest=True) == expected[-3:]
    # next_after / last_at_or_before from every minute of the window agree with the list
    t = z(a)
    while t < z(b):
        following = [u for u in expected if u > t]
        if following:
            assert s.next_after(t) == following[0], t
        preceding = [u for u in expected if u <= t]
        if preceding:
            assert s.last_at_or_before(t) == preceding[-1], t
        t += timedelta(minutes=5)


def test_count_over_a_year_is_exact_and_fast() -> None:
    s = parse_schedule("*/15 * * * *", BERLIN)
    started = time.monotonic()
    # 365 days of 96 runs: 02:00-02:45 do not exist on 2026-03-29 (-4) and happen twice on 2026-10-25 (+4)
    assert s.count_between(z("2026-01-01T00:00"), z("2027-01-01T00:00")) == 365 * 96
    fixed = parse_schedule("30 2 * * *", BERLIN)  # once a day, also on both transition days
    assert fixed.count_between(z("2026-01-01T00:00"), z("2027-01-01T00:00")) == 365
    minutes = parse_schedule("* * * * *")
    assert minutes.count_between(z("2025-01-01T00:00"), z("2026-01-01T00:00")) == 365 * 1440
    assert time.monotonic() - started < 2


# --- @every -----------------------------------------------------------------------------------------


def test_every_two_seconds_anchored() -> None:
    s = parse_schedule("@every 2s", anchor=z("2026-01-01T00:00:01"))
    assert isinstance(s, EverySchedule)
    assert s.interval == timedelta(seconds=2)
    assert s.next_after(z("2026-01-01T00:00:01")) == z("2026-01-01T00:00:03")
    assert s.next_after(z("2026-01-01T00:00:02")) == z("2026-01-01T00:00:03")
    assert s.next_after(z("2026-01-01T00:00:03")) == z("2026-01-01T00:00:05")
    assert s.next_after(z("2026-01-01T00:00:02.999")) == z("2026-01-01T00:00:03")
    assert s.last_at_or_before(z("2026-01-01T00:00:04.5")) == z("2026-01-01T00:00:03")
    assert s.times_between(z("2026-01-01T00:00:00"), z("2026-01-01T00:00:07")) == zs(
        "2026-01-01T00:00:01", "2026-01-01T00:00:03", "2026-01-01T00:00:05", "2026-01-01T00:00:07"
    )
    assert s.count_between(z("2026-01-01T00:00:00"), z("2026-01-02T00:00:00")) == 43200
    assert s.count_between(z("2026-01-01T00:00:00"), z("2026-01-02T00:00:00"), cap=10) == 10


def test_every_is_stable_across_restarts_and_before_the_anchor() -> None:
    anchor = z("2026-01-01T00:10")
    s1 = parse_schedule("@every 1h30m", anchor=anchor)
    s2 = parse_schedule("@every 1h30m", anchor=anchor)
    assert (
        s1.next_after(z("2026-01-01T01:00")) == s2.next_after(z("2026-01-01T01:00")) == z("2026-01-01T01:40")
    )
    assert s1.next_after(z("2026-01-01T01:40")) == z("2026-01-01T03:10")
    # The lattice extends before the anchor too.
    assert s1.next_after(z("2025-12-31T23:00")) == z("2026-01-01T00:10")
    assert s1.last_at_or_before(z("2025-12-31T23:00")) == z("2025-12-31T22:40")


def test_every_anchor_is_truncated_to_the_second() -> None:
    s = parse_schedule("@every 1m", anchor=z("2026-01-01T00:00:00.750"))
    assert s.next_after(z("2026-01-01T00:00:00")) == z("2026-01-01T00:01:00")


def test_every_default_anchor_is_the_epoch() -> None:
    # 2026-01-01T00:00Z is 1767225600 s = 327264 * 5400 s after the epoch
    s = parse_schedule("@every 1h30m")
    assert s.next_after(z("2026-01-01T00:10")) == z("2026-01-01T01:30")


def test_every_ignores_the_time_zone_and_dst() -> None:
    anchor = z("2026-03-28T00:00")
    berlin = parse_schedule("@every 2h", BERLIN, anchor=anchor)
    utc = parse_schedule("@every 2h", anchor=anchor)
    window = (z("2026-03-28T23:30"), z("2026-03-29T04:00"))
    assert (
        berlin.times_between(*window)
        == utc.times_between(*window)
        == zs("2026-03-29T00:00", "2026-03-29T02:00", "2026-03-29T04:00")
    )


# --- invalid schedules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "tz", "reason", "message"),
    [
        ("61 * * * *", "UTC", REASON_INVALID_SCHEDULE, r"minute field '61': 61 is out of range 0-59"),
        ("0 24 * * *", "UTC", REASON_INVALID_SCHEDULE, r"hour field '24': 24 is out of range 0-23"),
        ("0 0 0 * *", "UTC", REASON_INVALID_SCHEDULE, r"day-of-month field '0'.*out of range 1-31"),
        ("0 0 * 13 *", "UTC", REASON_INVALID_SCHEDULE, r"month field '13'.*out of range 1-12"),
        ("0 0 * * 8", "UTC", REASON_INVALID_SCHEDULE, r"day-of-week field '8'.*out of range 0-7"),
        ("0 0 * foo *", "UTC", REASON_INVALID_SCHEDULE, r"month field 'foo': unknown name"),
        ("5-1 * * * *", "UTC", REASON_INVALID_SCHEDULE, r"minute field '5-1'.*reversed"),
        ("*/0 * * * *", "UTC", REASON_INVALID_SCHEDULE, r"minute field '\*/0'.*step"),
        ("? * * * *", "UTC", REASON_INVALID_SCHEDULE, r"minute field '\?'"),
        ("0 0 1 1 * 2026", "UTC", REASON_INVALID_SCHEDULE, r"has 6 field\(s\), expected 5"),
        ("* * *", "UTC", REASON_INVALID_SCHEDULE, r"has 3 field\(s\), expected 5"),
        ("H * * * *", "UTC", REASON_INVALID_SCHEDULE, r"minute field 'H': 'H' is not a number"),
        ("0 0 30 2 *", "UTC", REASON_INVALID_SCHEDULE, r"never fires"),
        ("", "UTC", REASON_INVALID_SCHEDULE, r"empty"),
        ("@every 0s", "UTC", REASON_INVALID_SCHEDULE, r"greater than zero"),
        ("@every banana", "UTC", REASON_INVALID_SCHEDULE, r"units h, m, s"),
        ("@every 1d", "UTC", REASON_INVALID_SCHEDULE, r"units h, m, s"),
        ("@every 9999999h", "UTC", REASON_INVALID_SCHEDULE, r"at most"),
        ("@fortnightly", "UTC", REASON_INVALID_SCHEDULE, r"unknown macro"),
        ("@DAILY", "UTC", REASON_INVALID_SCHEDULE, r"unknown macro"),
        ("0 0 * * *", "Mars/Base", REASON_INVALID_TIME_ZONE, r"unknown time zone 'Mars/Base'"),
        ("0 0 * * *", "Europe", REASON_INVALID_TIME_ZONE, r"unknown time zone"),
        ("0 0 * * *", "utc", REASON_INVALID_TIME_ZONE, r"unknown time zone"),
        ("0 0 * * *", "../etc/passwd", REASON_INVALID_TIME_ZONE, r"unknown time zone"),
        ("0 0 * * *", "localtime", REASON_INVALID_TIME_ZONE, r"unknown time zone"),
        ("@every 1h", "Mars/Base", REASON_INVALID_TIME_ZONE, r"unknown time zone"),
    ],
)
def test_invalid_schedules(expr: str, tz: str, reason: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message) as err:
        parse_schedule(expr, tz)
    assert err.value.reason == reason
    assert err.value.message == str(err.value)


@pytest.mark.parametrize(
    "expr",
    [
        "0 3 * * *",
        "0  3 * * *",
        "*/5 9-17 * * mon-fri",
        "0 0 1,15 * *",
        "0 0 ? * 1",
        "0 0 L * *",
        "0 0 15W * *",
        "0 0 * * L5",
        "0 0 * * 1#2",
        "0 0 * * 7",
        "@every 30s",
        "@every 2h",
        "@every 1h30m",
    ],
)
def test_valid_schedules(expr: str) -> None:
    s = parse_schedule(expr, BERLIN)
    assert isinstance(s, Schedule)
    assert s.next_after(z("2026-01-01T00:00")) > z("2026-01-01T00:00")


# --- jitter -------------------------------------------------------------------------------------------


def test_jitter_offset_is_stable_and_in_range() -> None:
    first = jitter_offset("team-a", "nightly", 300)
    assert first == jitter_offset("team-a", "nightly", 300)
    assert 0 <= first < 300
    assert jitter_offset("team-a", "nightly", 0) == 0.0
    assert jitter_offset("team-b", "nightly", 300) != first
    offsets = [jitter_offset("default", f"report-{i}", 3600) for i in range(1000)]
    assert all(0 <= o < 3600 for o in offsets)
    assert len(set(offsets)) == 1000
    # spread out: every 6-minute slot of the hour gets some
    assert {int(o // 360) for o in offsets} == set(range(10))


# --- catch-up -----------------------------------------------------------------------------------------

HOURLY = parse_schedule("0 * * * *")


def plan(
    last: str,
    now: str,
    policy: str,
    deadline: float | None = None,
    max_runs: int = 10,
    schedule: Schedule = HOURLY,
    **kwargs: float,
) -> CatchUp:
    return plan_catch_up(schedule, z(last), z(now), policy, deadline, max_runs, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["RunLatest", "Skip", "RunAll"])
@pytest.mark.parametrize("deadline", [None, 0, 60])
def test_on_time_run(policy: str, deadline: float | None) -> None:
    result = plan("2026-01-01T09:00", "2026-01-01T10:00:00.500", policy, deadline)
    assert result.to_run == (z("2026-01-01T10:00"),)
    assert result.missed == 0
    assert result.latest == z("2026-01-01T10:00")
    assert result.next_time == result.wake_at == z("2026-01-01T11:00")


@pytest.mark.parametrize("policy", ["RunLatest", "Skip", "RunAll"])
def test_nothing_due(policy: str) -> None:
    result = plan("2026-01-01T09:00", "2026-01-01T09:59:59", policy)
    assert result == CatchUp((), 0, None, z("2026-01-01T10:00"), z("2026-01-01T10:00"))
    # now before last (clock skew): nothing either
    assert plan("2026-01-01T09:00", "2026-01-01T08:00", policy).to_run == ()


def test_catch_up_after_downtime() -> None:
    # due: 07:00, 08:00, 09:00, 10:00 (20 minutes late)
    latest = plan("2026-01-01T06:00", "2026-01-01T10:20", "RunLatest")
    assert (latest.to_run, latest.missed) == ((z("2026-01-01T10:00"),), 3)
    assert latest.latest == z("2026-01-01T10:00")
    assert latest.next_time == z("2026-01-01T11:00")
    skip = plan("2026-01-01T06:00", "2026-01-01T10:20", "Skip")
    assert (skip.to_run, skip.missed, skip.latest) == ((), 4, z("2026-01-01T10:00"))
    run_all = plan("2026-01-01T06:00", "2026-01-01T10:20", "RunAll")
    assert run_all.to_run == tuple(
        zs("2026-01-01T07:00", "2026-01-01T08:00", "2026-01-01T09:00", "2026-01-01T10:00")
    )
    assert run_all.missed == 0
    # at most max_catch_up_runs, the newest ones, oldest first; the rest are missed
    capped = plan("2026-01-01T06:00", "2026-01-01T10:20", "RunAll", max_runs=2)
    assert (capped.to_run, capped.missed) == (tuple(zs("2026-01-01T09:00", "2026-01-01T10:00")), 2)
    one = plan("2026-01-01T06:00", "2026-01-01T10:20", "RunAll", max_runs=1)
    assert (one.to_run, one.missed) == (latest.to_run, latest.missed)


def test_starting_deadline() -> None:
    # deadline 1h: at 10:20 only 10:00 (20 min late) may start; 07:00-09:00 are missed
    run_all = plan("2026-01-01T06:00", "2026-01-01T10:20", "RunAll", deadline=3600)
    assert (run_all.to_run, run_all.missed) == ((z("2026-01-01T10:00"),), 3)
    # deadline 2h: 08:20 <= n, so 09:00 and 10:00
    run_all = plan("2026-01-01T06:00", "2026-01-01T10:20", "RunAll", deadline=7200)
    assert (run_all.to_run, run_all.missed) == (tuple(zs("2026-01-01T09:00", "2026-01-01T10:00")), 2)
    # deadline 10 min: even 10:00 is too late
    for policy in ("RunLatest", "RunAll", "Skip"):
        late = plan("2026-01-01T06:00", "2026-01-01T10:20", policy, deadline=600)
        assert (late.to_run, late.missed, late.latest) == ((), 4, z("2026-01-01T10:00"))
    # exactly at the deadline is still in time
    edge = plan("2026-01-01T09:00", "2026-01-01T10:10", "RunLatest", deadline=600)
    assert (edge.to_run, edge.missed) == ((z("2026-01-01T10:00"),), 0)
    just_late = plan("2026-01-01T09:00", "2026-01-01T10:10:00.001", "RunLatest", deadline=600)
    assert (just_late.to_run, just_late.missed) == ((), 1)


def test_late_within_deadline_is_not_on_time_for_skip() -> None:
    skip = plan("2026-01-01T09:00", "2026-01-01T10:00:30", "Skip", deadline=3600)
    assert (skip.to_run, skip.missed) == ((), 1)
    latest = plan("2026-01-01T09:00", "2026-01-01T10:00:30", "RunLatest", deadline=3600)
    assert (latest.to_run, latest.missed) == ((z("2026-01-01T10:00"),), 0)


def test_catch_up_with_jitter() -> None:
    # jittered by 30 s: 10:00 is due at 10:00:30
    early = plan("2026-01-01T09:00", "2026-01-01T10:00:10", "Skip", jitter_seconds=30)
    assert (early.to_run, early.missed, early.latest) == ((), 0, None)
    assert early.next_time == z("2026-01-01T10:00")
    assert early.wake_at == z("2026-01-01T10:00:30")
    on_time = plan("2026-01-01T09:00", "2026-01-01T10:00:30.200", "Skip", jitter_seconds=30)
    assert (on_time.to_run, on_time.missed) == ((z("2026-01-01T10:00"),), 0)
    assert on_time.wake_at == z("2026-01-01T11:00:30")


def test_catch_up_every_two_seconds() -> None:
    s = parse_schedule("@every 2s", anchor=z("2026-01-01T00:00"))
    # due: :12 :14 :16 :18 :20
    result = plan("2026-01-01T00:00:10", "2026-01-01T00:00:20.5", "RunAll", max_runs=3, schedule=s)
    assert result.to_run == tuple(zs("2026-01-01T00:00:16", "2026-01-01T00:00:18", "2026-01-01T00:00:20"))
    assert result.missed == 2
    assert result.next_time == z("2026-01-01T00:00:22")


def test_catch_up_over_a_long_outage_counts_without_listing() -> None:
    s = parse_schedule("* * * * *")
    result = plan("2025-01-01T00:00", "2026-01-01T00:00:00.2", "RunLatest", schedule=s)
    assert result.to_run == (z("2026-01-01T00:00"),)
    assert result.missed == 365 * 1440 - 1


def test_catch_up_across_fall_back_counts_every_real_instant() -> None:
    s = parse_schedule("*/15 * * * *", BERLIN)
    result = plan("2026-10-24T23:30", "2026-10-25T02:30", "RunAll", max_runs=100, schedule=s)
    assert len(result.to_run) == 12 and result.missed == 0


def test_catch_up_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_catch_up_runs"):
        plan("2026-01-01T09:00", "2026-01-01T10:00", "RunAll", max_runs=0)
    with pytest.raises(ValueError, match="starting_deadline_seconds"):
        plan("2026-01-01T09:00", "2026-01-01T10:00", "RunAll", deadline=-1)
    with pytest.raises(ValueError, match="policy"):
        plan("2026-01-01T09:00", "2026-01-01T10:00", "Sometimes")


# --- run names ----------------------------------------------------------------------------------------


def valid_name(name: str) -> bool:
    return len(name) <= 63 and DNS1123_SUBDOMAIN.match(name) is not None


def test_run_name_is_deterministic() -> None:
    nominal = z("2026-01-01T00:00")  # 1767225600
    assert run_name("nightly", nominal) == "nightly-1767225600"
    assert run_name("nightly", nominal) == run_name("nightly", nominal.astimezone(ZoneInfo(BERLIN)))
    assert run_name("nightly", z("2026-01-01T00:00:02")) == "nightly-1767225602"


def test_run_names_differ_per_second() -> None:
    s = parse_schedule("@every 2s", anchor=z("2026-01-01T00:00"))
    times = s.times_between(z("2026-01-01T00:00"), z("2026-01-01T00:01"))
    names = {run_name("fast", t) for t in times}
    assert len(names) == len(times) == 30


def test_long_schedule_names_are_cut_and_hashed() -> None:
    nominal = z("2026-01-01T00:00")
    long_a = "a" * 60
    long_b = "a" * 59 + "b"
    name_a, name_b = run_name(long_a, nominal), run_name(long_b, nominal)
    assert valid_name(name_a) and valid_name(name_b)
    assert name_a != name_b
    assert name_a.endswith("-1767225600") and name_a.startswith("aaaa")
    assert name_a == run_name(long_a, nominal)
    # exactly 63 is kept as is
    fits = "c" * (63 - len("-1767225600"))
    assert run_name(fits, nominal) == fits + "-1767225600"
    # a cut that lands on '-' or '.' does not leave it dangling
    dashed = "x" * 42 + "--" + "y" * 40
    assert valid_name(run_name(dashed, nominal))
    assert run_name(dashed, nominal).startswith("x" * 42 + "-")
    dot_at_cut = "x" * 42 + ".y" + "y" * 40
    assert valid_name(run_name(dot_at_cut, nominal))
    dotted = "team.reports." + "z" * 100
    assert valid_name(run_name(dotted, nominal))


def test_run_name_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="not a valid"):
        run_name("Nightly", z("2026-01-01T00:00"))
    with pytest.raises(ValueError, match="before 1970"):
        run_name("old", z("1969-12-31T23:59"))


def test_manual_run_name() -> None:
    first = manual_run_name("nightly", "2026-01-01T10:00:00Z")
    assert first == manual_run_name("nightly", "2026-01-01T10:00:00Z")
    assert re.fullmatch(r"nightly-manual-[0-9a-f]{10}", first)
    assert manual_run_name("nightly", "again") != first
    assert manual_run_name("weekly", "2026-01-01T10:00:00Z") != first
    long_name = manual_run_name("m" * 253, "x")
    assert valid_name(long_name)
    assert long_name != manual_run_name("m" * 252, "x")
    assert manual_run_name("nightly", "x") != run_name("nightly", z("2026-01-01T00:00"))
