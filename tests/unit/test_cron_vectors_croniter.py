"""Test vectors ported from croniter's own test suite, run against Jobline's cron module.

Origin
------
croniter 7.0.0, the version installed in Jobline's venv (PyPI wheel; the package ships its tests as
``croniter/tests/``): ``test_croniter.py``, ``test_croniter_range.py`` and
``test_croniter_dst_repetition.py``. Upstream these are ``src/croniter/tests/`` of
github.com/pallets-eco/croniter (compared with snapshot 3dd4d14e971294c03d3fb9be3f5ca03ae1c25310,
6.3.0.dev0: the ported tests are the same there, except test_dst_negative_dst_zone_ambiguous_pytz,
test_dst_gap_shift_is_not_a_fire_time, test_non_ascii_digits_rejected and
test_non_ascii_whitespace_rejected, which are new in 7.0.0).
Each row's ``origin`` names its test function; a bare name is in ``test_croniter.py``, ``range::``
is ``test_croniter_range.py``, ``dst_repetition::`` is ``test_croniter_dst_repetition.py``.

Mapping of croniter's API to Jobline's (``jobline.core.cron``)
---------------------------------------------------------------
* ``croniter(expr, start)`` -> ``parse_schedule(expr, time_zone)``; the time zone is the zone of
  croniter's start time. A naive croniter datetime is UTC. Starts are written here as instants with
  their UTC offset (``Z`` or ``+03:00``), expected values always as UTC instants (``...Z``), by hand.
* successive ``get_next()`` -> successive ``Schedule.next_after(t)`` (both: strictly after t).
* successive ``get_prev()`` -> successive ``Schedule.last_at_or_before(t - 1 microsecond)``: croniter's
  get_prev is *strictly* before t, Jobline's last_at_or_before is at or before t.
* ``croniter_range(start, stop)`` (both ends included) -> ``times_between(start - 1 microsecond, stop)``
  (Jobline's interval is ``(a, b]``).
* ``croniter.match(expr, t)`` being true -> ``next_after(t - 1 minute) == t``.
* ``CroniterBadCronError`` / ``is_valid() is False`` -> ``ScheduleError`` with reason InvalidSchedule.
* croniter's lower-case ``l`` / ``w`` specials are written ``L`` / ``W`` (the spelling of Jobline's
  grammar and docs); the case of the specials is not what these rows test.

Differences
-----------
``difference`` is None when Jobline agrees with croniter; otherwise one sentence says how and why Jobline
deliberately differs, and the row asserts Jobline's value. The kinds:

* DST. croniter 7.0.0 walks wall-clock time: in a fall-back fold it fires **every** matching wall time
  in both passes, fixed times included (Europe/Dublin row); in a spring-forward gap it skips the missing
  wall times of frequent schedules and fires a missing fixed time at the end of the gap. Jobline follows
  cronie: a fixed-time schedule (no ``*`` in the minute or hour field) fires once in a fold, at the first
  pass, and once at the first instant after a gap; a schedule with ``*`` in its minute or hour field fires
  at every real instant whose wall time matches (both passes of a fold, nothing for missing wall times).
  So the two agree everywhere here except for a fixed time in a fold.
* ``a-a`` is the single value a (croniter: the whole field); reversed / wrap-around ranges are refused
  (croniter wraps them; with ``sun`` = 0, ``Mon-Sun`` is such a range: write ``mon-7``).
* Both day fields restricted: a day matching either fires, special forms included (croniter intersects
  as soon as ``L``, ``W`` or ``#`` is used: a croniter bug that Jobline does not copy).
* ``xW`` does not match in a month without day x (croniter clamps x to the last day); only the ``xW``
  spelling (croniter also has ``Wx``); ``x#n`` takes one weekday (croniter: ``MON-FRI#1``); a field is a
  list of any items, specials included (croniter refuses some mixes).

When the rows were written, every row with ``difference=None`` was checked to give the same instants
(or the same refusal) under croniter 7.0.0 itself, and every other row to differ from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import pytest

from jobline.core.cron import REASON_INVALID_SCHEDULE, ScheduleError, parse_schedule

Op = Literal["next", "prev", "between", "invalid"]

_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Vector:
    """One ported croniter expectation (a start and the fire instants croniter walks to from it)."""

    origin: str
    op: Op
    expr: str
    tz: str
    start: str | None
    end: str | None
    want: tuple[str, ...]
    difference: str | None


def nxt(origin: str, expr: str, start: str, *want: str, tz: str = "UTC", diff: str | None = None) -> Vector:
    """Successive get_next() from ``start``."""
    return Vector(origin, "next", expr, tz, start, None, want, diff)


def prv(origin: str, expr: str, start: str, *want: str, tz: str = "UTC", diff: str | None = None) -> Vector:
    """Successive get_prev() from ``start``."""
    return Vector(origin, "prev", expr, tz, start, None, want, diff)


def rng(
    origin: str, expr: str, start: str, end: str, *want: str, tz: str = "UTC", diff: str | None = None
) -> Vector:
    """croniter_range(start, end), both ends included."""
    return Vector(origin, "between", expr, tz, start, end, want, diff)


def bad(origin: str, expr: str, diff: str | None = None) -> Vector:
    """croniter refuses the expression (CroniterBadCronError, is_valid False); so does Jobline."""
    return Vector(origin, "invalid", expr, "UTC", None, None, (), diff)


# --- the reasons of the deliberate differences ------------------------------------------------------

FOLD_FIXED = (
    "croniter fires a fixed time in both passes of a fall-back fold; Jobline (cronie's rule) fires it "
    "once, at the first pass"
)
EQUAL_RANGE = "croniter expands an equal range a-a to the whole field; Jobline reads it as the single value a"
WRAP = "croniter accepts a reversed (wrap-around) range; Jobline refuses it (write two ranges)"
OR_SPECIAL = (
    "croniter intersects the day fields when one uses L, W or # (a croniter bug); Jobline fires on a day "
    "matching either"
)
W_CLAMP = (
    "croniter clamps xW to the last day of a month without day x; Jobline's xW does not match in such a month"
)
W_PREFIX = "croniter also accepts the prefix spelling Wx; Jobline's grammar has only xW"
W_LIST = "croniter refuses xW inside a list; a Jobline field is a list of any items, xW included"
RANGE_NTH = "croniter accepts a weekday range before # (MON-FRI#1); Jobline's x#n takes a single weekday"
MIX_NTH = (
    "croniter refuses a list mixing a plain weekday with x#n or Lx; a Jobline field is the union of its items"
)
STAR_NTH = (
    "croniter drops the * item of a day-of-week list that also holds x#n; a Jobline field is the union "
    "of its items (here: every day)"
)
L_BOUND = (
    "croniter accepts L as a range bound (29-L); Jobline has L only as a whole item (29-31 names the "
    "same days)"
)
DOW7_STEP = (
    "croniter turns 7 into 0 before applying the step (7/2 = 0/2); Jobline's a/n is a to the end of the "
    "field, so 7/2 is Sunday alone"
)

# fmt: off
VECTORS: tuple[Vector, ...] = (
    # --- plain next times: minutes, hours, days, leap years -----------------------------------------
    nxt("test_minute", "*/1 * * * *", "2010-01-23 12:18Z", "2010-01-23 12:19Z"),
    nxt("test_minute", "*/1 * * * *", "2010-01-23 12:58Z", "2010-01-23 12:59Z", "2010-01-23 13:00Z"),
    nxt("test_minute", "*/5 * * * *", "2010-01-23 12:18Z", "2010-01-23 12:20Z"),
    nxt("test_minute", "*/5 * * * *", "2010-01-23 12:50Z", "2010-01-23 12:55Z", "2010-01-23 13:00Z"),
    nxt("test_hour", "0 */3 * * *", "2010-01-24 12:02Z",
        "2010-01-24 15:00Z", "2010-01-24 18:00Z", "2010-01-24 21:00Z", "2010-01-25 00:00Z"),
    nxt("test_day", "0 0 */3 * *", "2010-02-24 12:09Z", "2010-02-25 00:00Z", "2010-02-28 00:00Z",
        "2010-03-01 00:00Z"),
    nxt("test_day", "0 0 * * *", "1996-02-27 00:00Z", "1996-02-28 00:00Z", "1996-02-29 00:00Z"),
    nxt("test_day", "0 0 * * *", "2000-02-27 00:00Z", "2000-02-28 00:00Z", "2000-02-29 00:00Z"),
    nxt("test_month", "0 0 1 * *", "2010-01-25 00:00Z",
        "2010-02-01 00:00Z", "2010-03-01 00:00Z", "2010-04-01 00:00Z", "2010-05-01 00:00Z",
        "2010-06-01 00:00Z", "2010-07-01 00:00Z", "2010-08-01 00:00Z", "2010-09-01 00:00Z",
        "2010-10-01 00:00Z", "2010-11-01 00:00Z", "2010-12-01 00:00Z", "2011-01-01 00:00Z"),
    nxt("test_bug2", "0 * * 3 *", "2012-01-01 00:00Z",
        "2012-03-01 00:00Z", "2012-03-01 01:00Z", "2012-03-01 02:00Z"),
    nxt("test_bug3", "00 03 16,30 * *", "2013-03-01 12:17:34.257877Z",
        "2013-03-16 03:00Z", "2013-03-30 03:00Z", "2013-04-16 03:00Z"),
    nxt("test_bug57", "0 4/6 * * *", "2012-02-24 00:00Z", "2012-02-24 04:00Z"),
    nxt("test_bug57", "0 0/6 * * *", "2012-02-24 00:00Z", "2012-02-24 06:00Z"),
    nxt("test_multiple_months", "0 0 1 3,6,9,12 *", "2016-03-01 00:00Z", "2016-06-01 00:00Z"),
    nxt("test_multiple_months", "0 0 1 3,6,9,12 *", "2016-02-15 00:00Z", "2016-03-01 00:00Z"),
    nxt("test_multiple_months", "0 0 1 3,6,9,12 *", "2016-12-03 10:00Z", "2017-03-01 00:00Z"),
    nxt("test_range_generator", "1-9/2 0 1 * *", "2013-03-04 00:00Z",
        "2013-04-01 00:01Z", "2013-04-01 00:03Z", "2013-04-01 00:05Z", "2013-04-01 00:07Z",
        "2013-04-01 00:09Z"),
    nxt("test_first_of_march", "0 0 */10 * *", "2025-02-22 00:00Z", "2025-03-01 00:00Z"),
    nxt("test_exactly_the_same_minute", "30 7,12,17 * * *", "2018-03-05 07:30Z", "2018-03-05 12:30Z"),
    nxt("test_next_when_now_satisfies_cron", "4 * * * *", "2018-05-21 00:03Z", "2018-05-21 00:04Z"),
    nxt("test_next_when_now_satisfies_cron", "4 * * * *", "2018-05-21 00:04:20Z", "2018-05-21 01:04Z"),
    nxt("test_milliseconds", "0 10 * * *", "2018-01-02 10:00:00.000500Z", "2018-01-03 10:00Z"),
    nxt("test_milliseconds", "0 10 * * *", "2018-01-02 10:00:01Z", "2018-01-03 10:00Z"),
    nxt("test_milliseconds", "0 10 * * *", "2018-01-02 09:59:59.999999Z", "2018-01-02 10:00Z"),
    nxt("test_issue_2038y", "* * * * *", "2040-01-01 00:00Z", "2040-01-01 00:01Z"),
    nxt("test_issue156", "* * * * *,0", "2019-01-14 11:00:59.999999Z", "2019-01-14 11:01Z"),
    nxt("test_match", "0 0 * * *", "2019-01-13 23:59Z", "2019-01-14 00:00Z"),
    nxt("test_match", "31 * * * *", "2019-01-14 01:30Z", "2019-01-14 01:31Z"),
    nxt("dst_repetition::test_issue_138_dt_to_ts_n", "*/5 * * * *", "2024-01-25 04:46Z",
        "2024-01-25 04:50Z", "2024-01-25 04:55Z", "2024-01-25 05:00Z"),
    # --- plain previous times ------------------------------------------------------------------------
    prv("test_day2", "* * 29 2 *", "2024-02-28 00:00Z", "2020-02-29 23:59Z"),
    prv("test_prev_minute", "*/1 * * * *", "2010-08-25 15:56Z", "2010-08-25 15:55Z"),
    prv("test_prev_minute", "*/1 * * * *", "2010-08-25 15:00Z", "2010-08-25 14:59Z"),
    prv("test_prev_minute", "*/1 * * * *", "2010-08-25 00:00Z", "2010-08-24 23:59Z"),
    prv("test_prev_day_of_month_with_crossing", "0 0 22 * *", "2012-03-15 00:00Z", "2012-02-22 00:00Z"),
    prv("test_prev_weekday2", "10 0 * * 0", "2010-08-25 15:56Z", "2010-08-22 00:10Z"),
    prv("test_bug1", "5 0 */2 * *", "2012-02-24 00:00Z", "2012-02-23 00:05Z"),
    prv("test_bug3", "00 03 16,30 * *", "2013-04-16 03:00Z",
        "2013-03-30 03:00Z", "2013-03-16 03:00Z", "2013-02-16 03:00Z"),
    prv("test_bug57", "0 4/6 * * *", "2012-02-24 04:00Z", "2012-02-23 22:00Z"),
    prv("test_bug57", "0 0/6 * * *", "2012-02-24 06:00Z", "2012-02-24 00:00Z"),
    prv("test_multiple_months", "0 0 1 3,6,9,12 *", "2016-03-01 00:00Z", "2015-12-01 00:00Z"),
    prv("test_multiple_months", "0 0 1,15,31 * *", "2016-02-01 00:00Z", "2016-01-31 00:00Z"),
    prv("test_multiple_months", "0 0 1 3,6,9,12 *", "2016-06-01 00:00Z", "2016-03-01 00:00Z"),
    prv("test_multiple_months", "0 0 1 1,3,6,9,12 *", "2016-03-01 00:00Z", "2016-01-01 00:00Z"),
    prv("test_previous_hour", "* 10 * * *", "2012-06-23 17:41Z", "2012-06-23 10:59Z"),
    prv("test_previous_day", "* * 26 * *", "2012-06-27 00:15Z", "2012-06-26 23:59Z"),
    prv("test_previous_month", "* * * 5 *", "2012-06-18 00:15Z", "2012-05-31 23:59Z"),
    prv("test_previous_dow", "* * * * sat", "2012-05-13 18:48Z", "2012-05-12 23:59Z"),
    prv("test_exactly_the_same_minute", "30 7,12,17 * * *", "2018-03-05 12:30:50Z",
        "2018-03-05 12:30Z", "2018-03-05 07:30Z"),
    prv("test_milliseconds", "0 10 * * *", "2018-01-02 10:00:00.000500Z", "2018-01-02 10:00Z"),
    prv("test_milliseconds", "0 10 * * *", "2018-01-02 10:00:01Z", "2018-01-02 10:00Z"),
    prv("test_milliseconds", "0 10 * * *", "2018-01-02 09:59:59.999999Z", "2018-01-01 10:00Z"),
    prv("test_issue_47", "0 6 30 3 *", "2021-03-30 04:00Z", "2020-03-30 06:00Z"),
    prv("test_bug_62_leap", "15 22 29 2 *", "2024-02-29 00:00Z", "2020-02-29 22:15Z"),
    prv("test_get_prev_leap_year_feb29", "0 0 29 * *", "2024-03-02 00:00Z", "2024-02-29 00:00Z"),
    prv("test_get_prev_leap_year_feb29", "0 0 29 * *", "2024-03-15 00:00Z", "2024-02-29 00:00Z"),
    prv("test_get_prev_leap_year_feb29", "0 0 29 * *", "2024-03-28 00:00Z", "2024-02-29 00:00Z"),
    prv("test_get_prev_leap_year_feb29", "0 0 29 * *", "2024-01-15 00:00Z", "2023-12-29 00:00Z"),
    # --- ranges (croniter_range, both ends included) --------------------------------------------------
    rng("range::test_1day_step", "0 0 * * *", "2016-12-02 00:00Z", "2016-12-10 00:00Z",
        "2016-12-02 00:00Z", "2016-12-03 00:00Z", "2016-12-04 00:00Z", "2016-12-05 00:00Z",
        "2016-12-06 00:00Z", "2016-12-07 00:00Z", "2016-12-08 00:00Z", "2016-12-09 00:00Z",
        "2016-12-10 00:00Z"),
    rng("range::test_1month_step", "0 0 1 * *", "1982-01-01 00:00Z", "1983-12-31 00:00Z",
        "1982-01-01 00:00Z", "1982-02-01 00:00Z", "1982-03-01 00:00Z", "1982-04-01 00:00Z",
        "1982-05-01 00:00Z", "1982-06-01 00:00Z", "1982-07-01 00:00Z", "1982-08-01 00:00Z",
        "1982-09-01 00:00Z", "1982-10-01 00:00Z", "1982-11-01 00:00Z", "1982-12-01 00:00Z",
        "1983-01-01 00:00Z", "1983-02-01 00:00Z", "1983-03-01 00:00Z", "1983-04-01 00:00Z",
        "1983-05-01 00:00Z", "1983-06-01 00:00Z", "1983-07-01 00:00Z", "1983-08-01 00:00Z",
        "1983-09-01 00:00Z", "1983-10-01 00:00Z", "1983-11-01 00:00Z", "1983-12-01 00:00Z"),
    rng("range::test_1minute_step_float", "* * * * *", "2000-01-01 00:00Z", "2000-01-01 00:01Z",
        "2000-01-01 00:00Z", "2000-01-01 00:01Z"),
    # --- steps and ranges at the field maximum, equal ranges (start 2024-07-11 10:07, Thursday) -------
    nxt("test_step_from_field_max", "59/15 * * * *", "2024-07-11 10:07Z", "2024-07-11 10:59Z",
        "2024-07-11 11:59Z"),
    nxt("test_step_from_field_max", "* 23/6 * * *", "2024-07-11 10:07Z", "2024-07-11 23:00Z",
        "2024-07-11 23:01Z"),
    nxt("test_step_from_field_max", "* * 31/5 * *", "2024-07-11 10:07Z", "2024-07-31 00:00Z",
        "2024-07-31 00:01Z"),
    nxt("test_step_from_field_max", "* * * DEC/3 *", "2024-07-11 10:07Z", "2024-12-01 00:00Z"),
    nxt("test_step_from_field_max", "* * * * SAT/2", "2024-07-11 10:07Z", "2024-07-13 00:00Z"),
    nxt("test_step_from_field_max", "45/15 * * * *", "2024-07-11 10:07Z", "2024-07-11 10:45Z",
        "2024-07-11 11:45Z"),
    nxt("test_step_from_field_max", "58/15 * * * *", "2024-07-11 10:07Z", "2024-07-11 10:58Z",
        "2024-07-11 11:58Z"),
    nxt("test_step_from_field_max", "44/15 * * * *", "2024-07-11 10:07Z", "2024-07-11 10:44Z",
        "2024-07-11 10:59Z", "2024-07-11 11:44Z"),
    nxt("test_step_from_field_max", "5/15 * * * *", "2024-07-11 10:07Z", "2024-07-11 10:20Z",
        "2024-07-11 10:35Z", "2024-07-11 10:50Z", "2024-07-11 11:05Z"),
    nxt("test_step_from_field_max", "*/15 * * * *", "2024-07-11 10:07Z", "2024-07-11 10:15Z",
        "2024-07-11 10:30Z"),
    nxt("test_step_from_field_max", "5-5 * * * *", "2024-07-11 10:07Z", "2024-07-11 11:05Z",
        "2024-07-11 12:05Z", diff=EQUAL_RANGE),
    nxt("test_step_from_field_max", "59-59/15 * * * *", "2024-07-11 10:07Z", "2024-07-11 10:59Z",
        "2024-07-11 11:59Z", diff=EQUAL_RANGE),
    nxt("test_step_from_field_max", "0 0 1 1-1 0", "2024-07-11 10:07Z", "2025-01-01 00:00Z",
        "2025-01-05 00:00Z", diff=EQUAL_RANGE),
    nxt("test_step_from_field_max", "0 0 * JAN-JAN *", "2024-07-11 10:07Z", "2025-01-01 00:00Z",
        "2025-01-02 00:00Z", diff=EQUAL_RANGE),
    nxt("test_step_from_field_max", "* * * * 7/2", "2024-07-11 10:07Z", "2024-07-14 00:00Z",
        "2024-07-14 00:01Z", diff=DOW7_STEP),
    nxt("test_step_from_field_max_does_not_leak_across_a_list", "1-1,59/15,55-59/2 * * * *",
        "2024-07-11 10:07Z", "2024-07-11 10:55Z", "2024-07-11 10:57Z", "2024-07-11 10:59Z",
        "2024-07-11 11:01Z", diff=EQUAL_RANGE),
    nxt("test_step_from_field_max_does_not_leak_across_a_list", "* * * 1-1,12/6,11-12/1 *",
        "2024-07-11 10:07Z", "2024-11-01 00:00Z", diff=EQUAL_RANGE),
    # day-of-week "6/1" is Saturday alone (the end of the field is 6; 7 is only a spelling of Sunday)
    nxt("test_step_of_one_from_field_max", "* * * * 6/1", "2024-07-13 23:59Z", "2024-07-20 00:00Z"),
    nxt("test_step_of_one_from_field_max", "59/1 * * * *", "2024-07-11 10:07Z", "2024-07-11 10:59Z",
        "2024-07-11 11:59Z"),
    nxt("test_step_of_one_from_field_max", "* * * * */1", "2024-07-11 10:07Z", "2024-07-11 10:08Z"),
    # --- names, day-of-week 0/7, named and numbered weekday ranges (start 2024-01-01, Monday) ---------
    nxt("test_weekday", "0 0 * * sat", "2010-02-25 00:00Z", "2010-02-27 00:00Z", "2010-03-06 00:00Z"),
    nxt("test_iso_weekday", "0 0 * * 6", "2010-02-25 00:00Z", "2010-02-27 00:00Z", "2010-03-06 00:00Z"),
    nxt("test_sunday_to_thursday_with_alpha_conversion", "30 22 * * sun-thu", "2010-08-25 15:56Z",
        "2010-08-25 22:30Z"),
    prv("test_prev_weekday", "0 0 * * sat,sun", "2010-08-25 15:56Z",
        "2010-08-22 00:00Z", "2010-08-21 00:00Z", "2010-08-15 00:00Z"),
    nxt("test_revert_issue_90_aka_support_dow7", "* * * * 1-7", "2024-01-01 00:00Z", "2024-01-01 00:01Z"),
    nxt("test_revert_issue_90_aka_support_dow7", "0 0 * * 7", "2024-01-01 00:00Z", "2024-01-07 00:00Z"),
    nxt("test_sunday_ranges_to", "0 0 * * Sun-Sun", "2024-01-01 00:00Z",
        "2024-01-07 00:00Z", "2024-01-14 00:00Z", "2024-01-21 00:00Z", diff=EQUAL_RANGE),
    nxt("test_sunday_ranges_to", "0 0 * * 7-7", "2024-01-01 00:00Z",
        "2024-01-07 00:00Z", "2024-01-14 00:00Z", "2024-01-21 00:00Z", diff=EQUAL_RANGE),
    nxt("test_sunday_ranges_to", "0 0 * * Mon-Sun", "2024-01-01 00:00Z",
        "2024-01-02 00:00Z", "2024-01-03 00:00Z", "2024-01-04 00:00Z"),
    nxt("test_sunday_ranges_to", "0 0 * * mon-7", "2024-01-01 00:00Z",
        "2024-01-02 00:00Z", "2024-01-03 00:00Z", "2024-01-04 00:00Z"),
    nxt("test_sunday_ranges_to", "0 0 * * Tue-Sun", "2024-01-01 00:00Z",
        "2024-01-02 00:00Z", "2024-01-03 00:00Z", "2024-01-04 00:00Z", "2024-01-05 00:00Z",
        "2024-01-06 00:00Z", "2024-01-07 00:00Z", "2024-01-09 00:00Z"),
    nxt("test_sunday_ranges_to", "0 0 * * tue-7", "2024-01-01 00:00Z",
        "2024-01-02 00:00Z", "2024-01-03 00:00Z", "2024-01-04 00:00Z", "2024-01-05 00:00Z",
        "2024-01-06 00:00Z", "2024-01-07 00:00Z", "2024-01-09 00:00Z"),
    nxt("test_sunday_ranges_to", "0 0 * * wed-7", "2024-01-01 00:00Z",
        "2024-01-03 00:00Z", "2024-01-04 00:00Z", "2024-01-05 00:00Z", "2024-01-06 00:00Z",
        "2024-01-07 00:00Z", "2024-01-10 00:00Z"),
    nxt("test_sunday_ranges_to", "0 0 * * thu-7", "2024-01-01 00:00Z",
        "2024-01-04 00:00Z", "2024-01-05 00:00Z", "2024-01-06 00:00Z", "2024-01-07 00:00Z",
        "2024-01-11 00:00Z"),
    nxt("test_sunday_ranges_to", "0 0 * * fri-7", "2024-01-01 00:00Z",
        "2024-01-05 00:00Z", "2024-01-06 00:00Z", "2024-01-07 00:00Z", "2024-01-12 00:00Z"),
    nxt("test_sunday_ranges_to", "0 0 * * sat-7", "2024-01-01 00:00Z",
        "2024-01-06 00:00Z", "2024-01-07 00:00Z", "2024-01-13 00:00Z", "2024-01-14 00:00Z"),
    nxt("test_sunday_ranges_to", "0 0 * * Sat-Sun", "2024-01-01 00:00Z",
        "2024-01-06 00:00Z", "2024-01-07 00:00Z", "2024-01-13 00:00Z", "2024-01-14 00:00Z"),
    nxt("test_sunday_ranges_from", "0 0 * * Sun-Mon", "2024-01-01 00:00Z",
        "2024-01-07 00:00Z", "2024-01-08 00:00Z", "2024-01-14 00:00Z", "2024-01-15 00:00Z"),
    bad("test_sunday_ranges_from", "0 0 * * 7-mon", diff=WRAP),
    nxt("test_sunday_ranges_from", "0 0 * * Sun-Tue", "2024-01-01 00:00Z",
        "2024-01-02 00:00Z", "2024-01-07 00:00Z", "2024-01-08 00:00Z", "2024-01-09 00:00Z"),
    nxt("test_sunday_ranges_from", "0 0 * * Sun-Wed", "2024-01-01 00:00Z",
        "2024-01-02 00:00Z", "2024-01-03 00:00Z", "2024-01-07 00:00Z", "2024-01-08 00:00Z"),
    nxt("test_sunday_ranges_from", "0 0 * * Sun-Thu", "2024-01-01 00:00Z",
        "2024-01-02 00:00Z", "2024-01-03 00:00Z", "2024-01-04 00:00Z", "2024-01-07 00:00Z"),
    nxt("test_sunday_ranges_from", "0 0 * * Sun-Fri", "2024-01-01 00:00Z",
        "2024-01-02 00:00Z", "2024-01-03 00:00Z", "2024-01-04 00:00Z", "2024-01-05 00:00Z",
        "2024-01-07 00:00Z"),
    nxt("test_sunday_ranges_from", "0 0 * * Sun-Sat", "2024-01-01 00:00Z",
        "2024-01-02 00:00Z", "2024-01-03 00:00Z", "2024-01-04 00:00Z", "2024-01-05 00:00Z",
        "2024-01-06 00:00Z", "2024-01-07 00:00Z", "2024-01-08 00:00Z"),
    bad("test_sunday_ranges_from", "0 0 * * Thu-Tue/2", diff=WRAP),
    bad("test_sunday_ranges_from", "0 0 * * Thu-Tue/3", diff=WRAP),
    nxt("test_mth_ranges_from", "0 0 1 Jan-Dec *", "2024-01-01 00:00Z",
        "2024-02-01 00:00Z", "2024-03-01 00:00Z", "2024-04-01 00:00Z", "2024-05-01 00:00Z"),
    bad("test_mth_ranges_from", "0 0 1 Nov-Mar *", diff=WRAP),
    bad("test_mth_ranges_from", "0 0 1 Apr-Feb *", diff=WRAP),
    bad("test_mth_ranges_from", "0 0 1 Apr-Mar/3 *", diff=WRAP),
    bad("test_mth_ranges_from", "0 0 1 Apr-Mar/2 *", diff=WRAP),
    nxt("test_mth_ranges_from", "0 0 1 Jan-Aug/2 *", "2024-01-01 00:00Z",
        "2024-03-01 00:00Z", "2024-05-01 00:00Z", "2024-07-01 00:00Z", "2025-01-01 00:00Z"),
    nxt("test_mth_ranges_from", "0 0 1 Jan-Aug/4 *", "2024-01-01 00:00Z",
        "2024-05-01 00:00Z", "2025-01-01 00:00Z", "2025-05-01 00:00Z"),
    # --- L: last day of the month (croniter writes "l"), month ends, leap years ------------------------
    nxt("test_last_day_of_month", "0 0 L * *", "2015-09-04 00:00Z",
        "2015-09-30 00:00Z", "2015-10-31 00:00Z", "2015-11-30 00:00Z", "2015-12-31 00:00Z"),
    nxt("test_last_day_of_month_with_leap_year", "0 0 L * *", "2020-02-01 00:00Z",
        "2020-02-29 00:00Z", "2020-03-31 00:00Z"),
    nxt("test_last_day_of_month_with_leap_year_century_exception", "0 0 L * *", "2100-02-01 00:00Z",
        "2100-02-28 00:00Z", "2100-03-31 00:00Z"),
    nxt("test_last_day_of_month_with_leap_year_century_exception", "0 0 L * *", "2400-02-01 00:00Z",
        "2400-02-29 00:00Z", "2400-03-31 00:00Z"),
    bad("test_range_with_uppercase_last_day_of_month", "0 0 29-L * *", diff=L_BOUND),
    nxt("test_range_with_uppercase_last_day_of_month", "0 0 29-31 * *", "2015-09-04 00:00Z",
        "2015-09-29 00:00Z", "2015-09-30 00:00Z"),
    prv("test_prev_last_day_of_month", "0 0 L * *", "2009-12-31 20:00Z", "2009-12-31 00:00Z"),
    prv("test_prev_last_day_of_month", "0 0 L * *", "2009-12-31 00:00Z", "2009-11-30 00:00Z"),
    prv("test_prev_last_day_of_month", "0 0 L * *", "2010-01-05 00:00Z",
        "2009-12-31 00:00Z", "2009-11-30 00:00Z", "2009-10-31 00:00Z", "2009-09-30 00:00Z"),
    prv("test_prev_last_day_of_month", "* * L * *", "2010-01-31 00:02Z",
        "2010-01-31 00:01Z", "2010-01-31 00:00Z", "2009-12-31 23:59Z", "2009-12-31 23:58Z"),
    nxt("test_mixdow", "1 1 7,14,21,L * *", "2018-10-01 00:00Z",
        "2018-10-07 01:01Z", "2018-10-14 01:01Z", "2018-10-21 01:01Z", "2018-10-31 01:01Z"),
    # croniter writes the day-of-month "1-l/8" (= 1,9,17,25)
    nxt("test_issue_142_dow", "35 * 1-31/8 * *", "2020-01-01 00:00Z", "2020-01-01 00:35Z"),
    nxt("test_issue_142_dow", "35 * 1-31/8 * *", "2020-01-02 00:00Z", "2020-01-09 00:35Z"),
    nxt("test_issue_142_dow", "35 * 1-31/8 * *", "2020-01-09 00:00Z", "2020-01-09 00:35Z"),
    nxt("test_issue_142_dow", "35 * 1-31/8 * *", "2020-01-10 00:00Z", "2020-01-17 00:35Z"),
    nxt("test_issue_142_dow", "35 * 1-31/8 * *", "2020-01-18 00:00Z", "2020-01-25 00:35Z"),
    nxt("test_issue_142_dow", "35 * 1-31/8 * *", "2020-01-26 00:00Z", "2020-02-01 00:35Z"),
    nxt("test_issue_142_dow", "35 * 1-31/8 * *", "2020-01-30 00:00Z", "2020-02-01 00:35Z"),
    # --- Lx: last weekday x of the month -----------------------------------------------------------------
    nxt("test_lwom_friday", "0 0 * * L5", "1987-01-15 00:00Z",
        "1987-01-30 00:00Z", "1987-02-27 00:00Z", "1987-03-27 00:00Z", "1987-04-24 00:00Z",
        "1987-05-29 00:00Z", "1987-06-26 00:00Z", "1987-07-31 00:00Z", "1987-08-28 00:00Z",
        "1987-09-25 00:00Z", "1987-10-30 00:00Z", "1987-11-27 00:00Z", "1987-12-25 00:00Z"),
    nxt("test_lwom_friday_2hours", "0 1,5 * * L5", "1987-01-15 00:00Z",
        "1987-01-30 01:00Z", "1987-01-30 05:00Z", "1987-02-27 01:00Z", "1987-02-27 05:00Z",
        "1987-03-27 01:00Z", "1987-03-27 05:00Z", "1987-04-24 01:00Z", "1987-04-24 05:00Z",
        "1987-05-29 01:00Z", "1987-05-29 05:00Z", "1987-06-26 01:00Z", "1987-06-26 05:00Z"),
    nxt("test_lwom_friday_2xh_2xm", "0,30 1,5 * * L5", "1987-01-15 00:00Z",
        "1987-01-30 01:00Z", "1987-01-30 01:30Z", "1987-01-30 05:00Z", "1987-01-30 05:30Z",
        "1987-02-27 01:00Z", "1987-02-27 01:30Z", "1987-02-27 05:00Z", "1987-02-27 05:30Z",
        "1987-03-27 01:00Z", "1987-03-27 01:30Z", "1987-03-27 05:00Z", "1987-03-27 05:30Z"),
    prv("test_lwom_saturday_rev", "0 0 * * L6", "2017-12-31 00:00Z",
        "2017-12-30 00:00Z", "2017-11-25 00:00Z", "2017-10-28 00:00Z", "2017-09-30 00:00Z",
        "2017-08-26 00:00Z", "2017-07-29 00:00Z", "2017-06-24 00:00Z", "2017-05-27 00:00Z",
        "2017-04-29 00:00Z", "2017-03-25 00:00Z", "2017-02-25 00:00Z", "2017-01-28 00:00Z"),
    nxt("test_lwom_tue_thu", "0 0 * * L2,L4", "2016-06-01 00:00Z",
        "2016-06-28 00:00Z", "2016-06-30 00:00Z", "2016-07-26 00:00Z", "2016-07-28 00:00Z",
        "2016-08-25 00:00Z", "2016-08-30 00:00Z", "2016-09-27 00:00Z", "2016-09-29 00:00Z",
        "2016-10-25 00:00Z", "2016-10-27 00:00Z"),
    nxt("test_nth_as_last_wday_simple", "0 0 * * L2", "2000-02-01 00:00Z", "2000-02-29 00:00Z"),
    nxt("test_nth_as_last_wday_simple", "0 0 * * L0", "2000-02-01 00:00Z", "2000-02-27 00:00Z"),
    nxt("test_nth_as_last_wday_simple", "0 0 * * L1", "2000-02-01 00:00Z", "2000-02-28 00:00Z"),
    nxt("test_nth_as_last_wday_simple", "0 0 * * L3", "2000-02-01 00:00Z", "2000-02-23 00:00Z"),
    nxt("test_nth_as_last_wday_simple", "0 0 * * L4", "2000-02-01 00:00Z", "2000-02-24 00:00Z"),
    nxt("test_nth_as_last_wday_simple", "0 0 * * L5", "2000-02-01 00:00Z", "2000-02-25 00:00Z"),
    nxt("test_nth_as_last_wday_simple", "0 0 * * L6", "2000-02-01 00:00Z", "2000-02-26 00:00Z"),
    nxt("test_lwom_mixup_all_fri_last_sat", "0 0 * * L6", "2021-03-01 00:00Z", "2021-03-27 00:00Z"),
    nxt("test_lwom_mixup_all_fri_last_sat", "0 0 * * 5", "2021-03-01 00:00Z",
        "2021-03-05 00:00Z", "2021-03-12 00:00Z", "2021-03-19 00:00Z", "2021-03-26 00:00Z"),
    nxt("test_lwom_mixup_all_fri_last_sat", "0 0 * * 5,L6", "2021-03-01 00:00Z",
        "2021-03-05 00:00Z", "2021-03-12 00:00Z", "2021-03-19 00:00Z", "2021-03-26 00:00Z",
        "2021-03-27 00:00Z", diff=MIX_NTH),
    nxt("test_lwom_mixup_firstlast_sat", "0 0 * * L6", "2021-03-01 00:00Z",
        "2021-03-27 00:00Z", "2021-04-24 00:00Z", "2021-05-29 00:00Z"),
    nxt("test_lwom_mixup_4th_and_last", "0 0 * * L1", "2021-11-01 00:00Z",
        "2021-11-29 00:00Z", "2021-12-27 00:00Z", "2022-01-31 00:00Z"),
    bad("test_last_out_of_range", "0 0 * * L-1"),
    bad("test_last_out_of_range", "0 0 * * L8"),
    # --- x#n: n-th weekday x of the month ------------------------------------------------------------
    nxt("test_nth_weekday", "0 0 * * sat#1", "2010-02-25 00:00Z", "2010-03-06 00:00Z", "2010-04-03 00:00Z"),
    nxt("test_nth_weekday", "0 0 * * wed#5", "2010-01-25 00:00Z",
        "2010-03-31 00:00Z", "2010-06-30 00:00Z", "2010-09-29 00:00Z"),
    prv("test_prev_nth_weekday", "0 0 * * sat#1,sun#2", "2010-08-25 15:56Z",
        "2010-08-08 00:00Z", "2010-08-07 00:00Z", "2010-07-11 00:00Z"),
    nxt("test_nth_wday_simple", "0 0 * * 1#5", "2000-01-01 00:00Z", "2000-01-31 00:00Z"),
    nxt("test_nth_wday_simple", "0 0 * * 2#5", "2000-02-01 00:00Z", "2000-02-29 00:00Z"),
    nxt("test_nth_wday_simple", "0 0 * * 3#5", "2000-03-01 00:00Z", "2000-03-29 00:00Z"),
    nxt("test_nth_wday_simple", "0 0 * * 4#4", "2000-04-01 00:00Z", "2000-04-27 00:00Z"),
    nxt("test_nth_wday_simple", "0 0 * * 5#4", "2000-02-01 00:00Z", "2000-02-25 00:00Z"),
    nxt("test_nth_wday_simple", "0 0 * * 6#4", "2000-02-01 00:00Z", "2000-02-26 00:00Z"),
    nxt("test_hash_mixup_all_fri_3rd_sat", "0 0 * * 6#3", "2021-03-01 00:00Z", "2021-03-20 00:00Z"),
    nxt("test_hash_mixup_all_fri_3rd_sat", "0 0 * * 5,6#3", "2021-03-01 00:00Z",
        "2021-03-05 00:00Z", "2021-03-12 00:00Z", "2021-03-19 00:00Z", "2021-03-20 00:00Z",
        "2021-03-26 00:00Z", diff=MIX_NTH),
    nxt("test_lwom_mixup_firstlast_sat", "0 0 * * 6#1", "2021-03-01 00:00Z",
        "2021-03-06 00:00Z", "2021-04-03 00:00Z", "2021-05-01 00:00Z"),
    nxt("test_lwom_mixup_firstlast_sat", "0 0 * * L6,6#1", "2021-03-01 00:00Z",
        "2021-03-06 00:00Z", "2021-03-27 00:00Z", "2021-04-03 00:00Z", "2021-04-24 00:00Z",
        "2021-05-01 00:00Z", "2021-05-29 00:00Z"),
    nxt("test_lwom_mixup_4th_and_last", "0 0 * * 1#4", "2021-11-01 00:00Z",
        "2021-11-22 00:00Z", "2021-12-27 00:00Z", "2022-01-24 00:00Z"),
    nxt("test_lwom_mixup_4th_and_last", "0 0 * * 1#4,L1", "2021-11-01 00:00Z",
        "2021-11-22 00:00Z", "2021-11-29 00:00Z", "2021-12-27 00:00Z", "2022-01-24 00:00Z",
        "2022-01-31 00:00Z"),
    nxt("test_issue156", "0 0 * * *,sat#3", "2019-01-14 11:00:59.999999Z", "2019-01-15 00:00Z",
        diff=STAR_NTH),
    bad("test_nth_out_of_range", "0 0 * * 1#7"),
    bad("test_nth_out_of_range", "0 0 * * 1#0"),
    bad("test_issue_k33", "30 23 1-7 JAN MON-FRI#1", diff=RANGE_NTH),
    nxt("test_issue_k33", "30 6 1-7 MAY MON#1", "2024-01-01 00:00Z",
        "2024-05-01 06:30Z", "2024-05-02 06:30Z", "2024-05-03 06:30Z", "2024-05-04 06:30Z",
        "2024-05-05 06:30Z", "2024-05-06 06:30Z", "2024-05-07 06:30Z", "2025-05-01 06:30Z",
        diff=OR_SPECIAL),
    # --- xW: nearest weekday (Mon-Fri) to day x, within the month ------------------------------------
    nxt("test_nearest_weekday_basic", "0 9 15W * *", "2024-01-01 00:00Z",
        "2024-01-15 09:00Z", "2024-02-15 09:00Z", "2024-03-15 09:00Z"),
    nxt("test_nearest_weekday_saturday", "0 9 15W * *", "2024-06-01 00:00Z", "2024-06-14 09:00Z"),
    nxt("test_nearest_weekday_sunday", "0 9 15W * *", "2024-09-01 00:00Z", "2024-09-16 09:00Z"),
    nxt("test_nearest_weekday_first_saturday", "0 9 1W * *", "2024-05-31 00:00Z", "2024-06-03 09:00Z"),
    nxt("test_nearest_weekday_last_day_sunday", "0 9 31W * *", "2025-03-01 00:00Z", "2025-03-31 09:00Z"),
    nxt("test_nearest_weekday_end_of_month_boundary", "0 9 30W * *", "2024-11-01 00:00Z",
        "2024-11-29 09:00Z"),
    nxt("test_nearest_weekday_end_of_month_boundary", "0 9 31W * *", "2024-11-01 00:00Z",
        "2024-12-31 09:00Z", diff=W_CLAMP),
    bad("test_nearest_weekday_wn_format", "0 9 W15 * *", diff=W_PREFIX),
    prv("test_nearest_weekday_get_prev", "0 9 15W * *", "2024-06-30 00:00Z", "2024-06-14 09:00Z"),
    nxt("test_nearest_weekday_is_valid", "0 9 15W,16 * *", "2024-06-01 00:00Z",
        "2024-06-14 09:00Z", "2024-06-16 09:00Z", diff=W_LIST),
    nxt("test_nearest_weekday_is_valid", "0 9 1,15W * *", "2024-06-01 00:00Z",
        "2024-06-01 09:00Z", "2024-06-14 09:00Z", diff=W_LIST),
    bad("test_nearest_weekday_is_valid", "0 9 0W * *"),
    bad("test_nearest_weekday_is_valid", "0 9 32W * *"),
    nxt("test_nearest_weekday_iteration", "0 0 1W * *", "2023-12-31 00:00Z",
        "2024-01-01 00:00Z", "2024-02-01 00:00Z", "2024-03-01 00:00Z", "2024-04-01 00:00Z",
        "2024-05-01 00:00Z", "2024-06-03 00:00Z"),
    # --- day-of-month OR day-of-week -------------------------------------------------------------------
    nxt("test_weekday", "0 0 1 * wed", "2010-01-25 00:00Z",
        "2010-01-27 00:00Z", "2010-02-01 00:00Z", "2010-02-03 00:00Z"),
    nxt("test_dom_dow_vixie_cron_bug", "0 16 */2 * sat", "2023-05-02 00:00Z",
        "2023-05-03 16:00Z", "2023-05-05 16:00Z", "2023-05-06 16:00Z", "2023-05-07 16:00Z"),
    nxt("test_match", "0 0 10 * wed", "2020-06-09 23:59Z", "2020-06-10 00:00Z"),
    nxt("test_match", "0 0 10 * fri", "2020-06-09 23:59Z", "2020-06-10 00:00Z", "2020-06-12 00:00Z"),
    nxt("test_weekday_day_or_with_impossible_day_of_month", "0 0 31 2 0", "2026-01-01 00:00Z",
        "2026-02-01 00:00Z", "2026-02-08 00:00Z", "2026-02-15 00:00Z"),
    nxt("test_weekday_day_or_with_impossible_day_of_month", "0 0 30 2 0", "2026-01-01 00:00Z",
        "2026-02-01 00:00Z", "2026-02-08 00:00Z", "2026-02-15 00:00Z"),
    nxt("test_weekday_day_or_with_impossible_day_of_month", "0 0 31 4 0", "2026-01-01 00:00Z",
        "2026-04-05 00:00Z", "2026-04-12 00:00Z", "2026-04-19 00:00Z"),
    prv("test_weekday_day_or_with_impossible_day_of_month_prev", "0 0 31 2 0", "2026-03-01 00:00Z",
        "2026-02-22 00:00Z", "2026-02-15 00:00Z", "2026-02-08 00:00Z"),
    rng("range::test_impossible_day_of_month_does_not_empty_the_range", "0 0 31 2 0",
        "2026-02-01 00:00Z", "2026-03-01 00:00Z",
        "2026-02-01 00:00Z", "2026-02-08 00:00Z", "2026-02-15 00:00Z", "2026-02-22 00:00Z"),
    bad("test_nth_weekday_with_restricted_day_of_month_still_raises", "30 23 8-9 JAN MON-FRI#1",
        diff=RANGE_NTH),
    nxt("test_nth_weekday_with_restricted_day_of_month_still_raises", "0 0 1 2 fri#2", "2026-01-01 00:00Z",
        "2026-02-01 00:00Z", "2026-02-13 00:00Z", "2027-02-01 00:00Z", diff=OR_SPECIAL),
    nxt("test_nth_weekday_with_restricted_day_of_month_still_raises", "0 0 15 * fri#2", "2026-01-01 00:00Z",
        "2026-01-09 00:00Z", "2026-01-15 00:00Z", "2026-02-13 00:00Z", "2026-02-15 00:00Z",
        diff=OR_SPECIAL),
    # croniter writes "31w"
    nxt("test_nearest_weekday_with_restricted_day_of_week_still_raises", "0 0 31W 2 0",
        "2026-01-01 00:00Z", "2026-02-01 00:00Z", "2026-02-08 00:00Z", "2026-02-15 00:00Z",
        diff=OR_SPECIAL),
    nxt("test_question_mark", "0 0 1 * ?", "2010-08-25 15:56Z", "2010-09-01 00:00Z"),
    # --- time zones and DST ----------------------------------------------------------------------------
    nxt("test_timezone", "* * * * *", "2013-03-04 12:15+09:00", "2013-03-04 03:16Z", tz="Asia/Tokyo"),
    nxt("test_issue_k11", "* * * * *", "2019-01-14 11:00:59-05:00", "2019-01-14 16:01Z",
        tz="America/New_York"),
    nxt("test_issue_k12", "* * * * *", "2010-01-23 12:18+02:00", "2010-01-23 10:19Z", tz="Europe/Athens"),
    # Europe/Athens 2013-10-27: 04:00 EEST (+03) -> 03:00 EET (+02) at 01:00Z; 03:00-03:59 happens twice.
    nxt("test_timezone_winter_time", "*/30 * * * *", "2013-10-27 02:00+03:00",
        "2013-10-26 23:30Z", "2013-10-27 00:00Z", "2013-10-27 00:30Z", "2013-10-27 01:00Z",
        "2013-10-27 01:30Z", "2013-10-27 02:00Z", "2013-10-27 02:30Z", tz="Europe/Athens"),
    prv("test_timezone_winter_time", "*/30 * * * *", "2013-10-27 05:00+02:00",
        "2013-10-27 02:30Z", "2013-10-27 02:00Z", "2013-10-27 01:30Z", "2013-10-27 01:00Z",
        "2013-10-27 00:30Z", "2013-10-27 00:00Z", "2013-10-26 23:30Z", tz="Europe/Athens"),
    # Europe/Athens 2013-03-31: 03:00 EET (+02) -> 04:00 EEST (+03) at 01:00Z; 03:00-03:59 does not exist.
    nxt("test_timezone_summer_time", "*/30 * * * *", "2013-03-31 01:00+02:00",
        "2013-03-30 23:30Z", "2013-03-31 00:00Z", "2013-03-31 00:30Z", "2013-03-31 01:00Z",
        "2013-03-31 01:30Z", tz="Europe/Athens"),
    prv("test_timezone_summer_time", "*/30 * * * *", "2013-03-31 05:00+03:00",
        "2013-03-31 01:30Z", "2013-03-31 01:00Z", "2013-03-31 00:30Z", "2013-03-31 00:00Z",
        "2013-03-30 23:30Z", tz="Europe/Athens"),
    # Europe/Warsaw 2017-03-26: 02:00 CET -> 03:00 CEST at 01:00Z;
    # 2017-10-29: 03:00 CEST -> 02:00 CET at 01:00Z.
    nxt("test_std_dst", "0 0 * * *", "2017-03-26 00:00+01:00", "2017-03-26 22:00Z", tz="Europe/Warsaw"),
    nxt("test_std_dst", "0 * * * *", "2017-03-26 01:00+01:00", "2017-03-26 01:00Z", tz="Europe/Warsaw"),
    nxt("test_std_dst", "0 0 * * *", "2017-10-29 00:00+02:00", "2017-10-29 23:00Z", tz="Europe/Warsaw"),
    nxt("test_std_dst", "0 * * * *", "2017-10-29 01:59+02:00",
        "2017-10-29 00:00Z", "2017-10-29 01:00Z", "2017-10-29 02:00Z", "2017-10-29 03:00Z",
        tz="Europe/Warsaw"),
    # America/Sao_Paulo 2018-02-18: 00:00 -02 -> 2018-02-17 23:00 -03 at 02:00Z (23:00-23:59 twice).
    nxt("test_std_dst2", "0 0 * * *", "2018-02-17 21:00-02:00", "2018-02-18 03:00Z", tz="America/Sao_Paulo"),
    nxt("test_std_dst2", "0 0 * * *", "2018-02-17 22:00-02:00", "2018-02-18 03:00Z", tz="America/Sao_Paulo"),
    nxt("test_std_dst2", "0 0 * * *", "2018-02-17 23:00-02:00", "2018-02-18 03:00Z", tz="America/Sao_Paulo"),
    nxt("test_std_dst2", "0 0 * * *", "2018-02-18 00:00-03:00", "2018-02-19 03:00Z", tz="America/Sao_Paulo"),
    nxt("test_std_dst2", "0 0 * * *", "2018-02-17 21:05-02:00", "2018-02-18 03:00Z", tz="America/Sao_Paulo"),
    nxt("test_std_dst2", "0 0 * * *", "2018-02-17 22:05-02:00", "2018-02-18 03:00Z", tz="America/Sao_Paulo"),
    nxt("test_std_dst2", "0 0 * * *", "2018-02-17 23:05-02:00", "2018-02-18 03:00Z", tz="America/Sao_Paulo"),
    nxt("test_std_dst2", "0 0 * * *", "2018-02-18 00:05-03:00", "2018-02-19 03:00Z", tz="America/Sao_Paulo"),
    # Australia/Adelaide 2020-04-05: 03:00 ACDT (+10:30) -> 02:00 ACST (+09:30).
    prv("test_std_dst3", "0 0 24 * *", "2020-04-15 00:00+09:30", "2020-03-23 13:30Z",
        tz="Australia/Adelaide"),
    nxt("test_std_dst3", "0 0 24 * *", "2020-03-24 00:00+10:30", "2020-04-23 14:30Z",
        tz="Australia/Adelaide"),
    # Europe/London 2025-03-30: 01:00 GMT -> 02:00 BST at 01:00Z; 01:00-01:59 does not exist.
    nxt("test_dst_daily", "7 0 * * *", "2025-03-30 00:00+00:00",
        "2025-03-30 00:07Z", "2025-03-30 23:07Z", "2025-03-31 23:07Z", tz="Europe/London"),
    nxt("test_dst_hourly", "7 * * * *", "2025-03-30 00:00+00:00",
        "2025-03-30 00:07Z", "2025-03-30 01:07Z", "2025-03-30 02:07Z", tz="Europe/London"),
    # Europe/Paris 2020-03-29: 02:00 CET -> 03:00 CEST at 01:00Z; 02:01 does not exist that day.
    nxt("test_dst_issue90_st31ny", "1 2 * * *", "2020-03-29 01:59:55+01:00",
        "2020-03-29 01:00Z", "2020-03-30 00:01Z", "2020-03-31 00:01Z", tz="Europe/Paris"),
    prv("test_dst_issue90_st31ny", "1 2 * * *", "2020-03-31 02:01+02:00",
        "2020-03-30 00:01Z", "2020-03-29 01:00Z", "2020-03-28 01:01Z", tz="Europe/Paris"),
    # Asia/Hebron 2022-03-27: 00:00 EET (+02) -> 01:00 EEST (+03) at 2022-03-26 22:00Z (no midnight).
    nxt("test_dst_iter", "0 0 * * *", "2022-03-25 00:00+02:00",
        "2022-03-25 22:00Z", "2022-03-26 22:00Z", "2022-03-27 21:00Z", tz="Asia/Hebron"),
    # Europe/Dublin 2019-10-27: 02:00 IST (+01) -> 01:00 GMT at 01:00Z; 01:00-01:59 happens twice.
    nxt("test_dst_negative_dst_zone_ambiguous_pytz", "0 1 * * *", "2019-10-26 12:00+01:00",
        "2019-10-27 00:00Z", "2019-10-28 01:00Z", tz="Europe/Dublin", diff=FOLD_FIXED),
    # Australia/Lord_Howe 2019-10-06: 02:00 (+10:30) -> 02:30 (+11:00) at 2019-10-05 15:30Z.
    nxt("test_dst_gap_shift_is_not_a_fire_time", "0 * * * *", "2019-10-06 01:43+10:30", "2019-10-05 16:00Z",
        tz="Australia/Lord_Howe"),
    nxt("test_dst_gap_shift_is_not_a_fire_time", "0 * * * *", "2019-10-06 01:03+10:30", "2019-10-05 16:00Z",
        tz="Australia/Lord_Howe"),
    prv("test_dst_gap_shift_is_not_a_fire_time", "0 * * * *", "2019-10-06 03:00+11:00", "2019-10-05 14:30Z",
        tz="Australia/Lord_Howe"),
    nxt("test_dst_gap_shift_is_not_a_fire_time", "0,30 * * * *", "2019-10-06 01:59+10:30",
        "2019-10-05 15:30Z", "2019-10-05 16:00Z", tz="Australia/Lord_Howe"),
    rng("test_dst_gap_shift_is_not_a_fire_time", "0 * * * *", "2019-10-06 00:00+10:30",
        "2019-10-06 05:00+11:00", "2019-10-05 13:30Z", "2019-10-05 14:30Z", "2019-10-05 16:00Z",
        "2019-10-05 17:00Z", "2019-10-05 18:00Z", tz="Australia/Lord_Howe"),
    # America/New_York 2020-11-01: 02:00 EDT -> 01:00 EST at 06:00Z;
    # 2020-03-08: 02:00 EST -> 03:00 EDT at 07:00Z.
    rng("range::test_timezone_dst_pytz", "0 0 * * *", "2020-10-30 00:00-04:00", "2020-11-10 00:00-05:00",
        "2020-10-30 04:00Z", "2020-10-31 04:00Z", "2020-11-01 04:00Z", "2020-11-02 05:00Z",
        "2020-11-03 05:00Z", "2020-11-04 05:00Z", "2020-11-05 05:00Z", "2020-11-06 05:00Z",
        "2020-11-07 05:00Z", "2020-11-08 05:00Z", "2020-11-09 05:00Z", "2020-11-10 05:00Z",
        tz="America/New_York"),
    rng("range::test_extra_hour_day_prio", "0 3 * * *", "2020-03-07 00:00-05:00", "2020-03-11 00:00-04:00",
        "2020-03-07 08:00Z", "2020-03-08 07:00Z", "2020-03-09 07:00Z", "2020-03-10 07:00Z",
        tz="America/New_York"),
    # --- refused expressions ---------------------------------------------------------------------------
    bad("test_error", "* * * *"),
    bad("test_error", "-90 * * * *"),
    bad("test_error", "a * * * *"),
    bad("test_error", "* * * janu-jun *"),
    bad("test_error", "1-1_0 * * * *"),
    bad("test_error", "0-10/error * * * *"),
    bad("test_error", "0-10/ * * * *"),
    bad("test_error", "0-1& * * * *"),
    bad("test_error", "* * 5-100 * *"),
    bad("test_error_bad_cron", "* * * * * * * *"),
    bad("test_is_valid", "0 * *"),
    bad("test_invalid_zerorepeat", "*/0 * * * *"),
    bad("test_invalid_question_mark", "? * * * *"),
    bad("test_invalid_question_mark", "* ? * * *"),
    bad("test_overflow", "0-10000000 * * * *"),
    bad("test_issue156", "* * * * *,b"),
    bad("test_issue_k6", "0 0 0 0 0"),
    bad("test_issue_k6", "0 0 0 1 0"),
    bad("test_issue_k34", "4 0 L/2 2 0"),
    bad("test_non_ascii_digits_rejected", "\u0665 * * * *"),
    bad("test_non_ascii_digits_rejected", "\uff10 \uff10 * * *"),
    bad("test_non_ascii_digits_rejected", "*/\u0661\u0665 * * * *"),
    bad("test_non_ascii_digits_rejected", "0 0 \u0661\u0665W * *"),
    bad("test_non_ascii_whitespace_rejected", "0\u00a00 * * *"),
)
# fmt: on

# Totals (kept true by test_row_counts): 256 rows ported (from 109 croniter test functions), 31 of them
# deliberate differences; 88 croniter test functions left out (listed at the end of the module).
PORTED = 256
DIFFERENCES = 31
PORTED_FUNCTIONS = 109
LEFT_OUT = 88
CRONITER_TEST_FUNCTIONS = 197
"""Test functions in croniter 7.0.0's test_croniter.py, test_croniter_range.py and
test_croniter_dst_repetition.py."""


def _id(index: int) -> str:
    origin = VECTORS[index].origin
    k = sum(v.origin == origin for v in VECTORS[: index + 1])
    return f"{origin}-{k}"


IDS = tuple(_id(i) for i in range(len(VECTORS)))


def _params(op: Op) -> list[object]:
    return [pytest.param(v, id=i) for v, i in zip(VECTORS, IDS, strict=True) if v.op == op]


def _instant(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    assert t.tzinfo is not None, f"{text!r}: a start or end needs an offset (Z for UTC)"
    return t


def _wanted(v: Vector) -> list[datetime]:
    assert all(w.endswith("Z") for w in v.want), f"{v.origin}: expected instants are written in UTC"
    return [datetime.fromisoformat(w) for w in v.want]


def _explain(v: Vector) -> str:
    return f"{v.origin} {v.expr!r} in {v.tz}: " + (v.difference or "Jobline agrees with croniter here")


def _check_utc(got: list[datetime]) -> None:
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in got), got


@pytest.mark.parametrize("v", _params("next"))
def test_next_after(v: Vector) -> None:
    schedule = parse_schedule(v.expr, v.tz)
    assert v.start is not None
    got: list[datetime] = []
    t = _instant(v.start)
    for _ in v.want:
        t = schedule.next_after(t)
        got.append(t)
    assert got == _wanted(v), _explain(v)
    _check_utc(got)


@pytest.mark.parametrize("v", _params("prev"))
def test_previous(v: Vector) -> None:
    """croniter's get_prev is strictly before its start: last_at_or_before(t - 1 microsecond)."""
    schedule = parse_schedule(v.expr, v.tz)
    assert v.start is not None
    got: list[datetime] = []
    t = _instant(v.start)
    for _ in v.want:
        t = schedule.last_at_or_before(t - _MICROSECOND)
        got.append(t)
    assert got == _wanted(v), _explain(v)
    _check_utc(got)


@pytest.mark.parametrize("v", _params("between"))
def test_times_between(v: Vector) -> None:
    """croniter_range includes its start: times_between(start - 1 microsecond, end), in (a, b]."""
    schedule = parse_schedule(v.expr, v.tz)
    assert v.start is not None and v.end is not None
    got = schedule.times_between(_instant(v.start) - _MICROSECOND, _instant(v.end))
    assert got == _wanted(v), _explain(v)
    _check_utc(got)


@pytest.mark.parametrize("v", _params("invalid"))
def test_refused(v: Vector) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(v.expr, v.tz)
    assert caught.value.reason == REASON_INVALID_SCHEDULE, _explain(v)


def test_row_counts() -> None:
    assert len(VECTORS) == PORTED
    assert sum(v.difference is not None for v in VECTORS) == DIFFERENCES
    assert len(set(IDS)) == len(IDS)
    assert len({v.origin for v in VECTORS}) == PORTED_FUNCTIONS
    assert PORTED_FUNCTIONS + LEFT_OUT == CRONITER_TEST_FUNCTIONS
    assert all(v.want for v in VECTORS if v.op != "invalid")
    assert all(v.op in ("next", "prev", "between", "invalid") for v in VECTORS)


# Left out (LEFT_OUT = 88 croniter test functions), and why:
# * Seconds field (6-field / second_at_beginning), not in Jobline's 5-field grammar: test_second_sec,
#   test_second, test_second_repeat, test_configure_second_location, test_weekday_range,
#   test_issue_monsun_117, test_get_next_update_current, test_dow7_sunday_in_second_and_year_forms,
#   test_step_from_field_max_optional_fields, test_issue280, range::test_configure_second_location. (11)
# * Year field (7-field): test_year, test_year_with_other_field, test_year_get_prev, test_year_match,
#   test_year_bad_date_error, test_year_with_second_at_beginning, test_invalid_year,
#   test_is_valid_strict_with_year, test_is_valid_strict_year_parameter,
#   test_both_union_sides_unsatisfiable_reports_direction, test_match_handle_bad_cron,
#   range::test_year_range. (12)
# * croniter-only options Jobline has no counterpart for (day_or=False, implement_cron_bug,
#   max_years_between_matches, expand_from_start_time, strict): test_weekday_day_and,
#   test_issue145_getnext, test_max_years_between_matches_validation, test_explicit_year_forward,
#   test_is_valid_strict, range::test_issue145_getnext, range::test_issue145_range,
#   test_get_next_fails_with_expand_from_start_time_true, test_step_from_field_max_expand_from_start_time
#   and the 24 test_expand_from_start_time_* functions (minute, hour, date, month, month_divisible,
#   day_of_week, day_of_week_sunday, uses_the_start_times_own_timezone,
#   naive_start_is_unaffected_by_timezone_handling, timezone_invariants, second, year,
#   second_and_year_no_longer_raise, seconds_and_years_invariants, seconds_phase_matches_minutes,
#   issue_252, respects_declared_bounds, respects_declared_bounds_in_seconds_and_years,
#   does_not_change_a_range_into_another_kind, at_the_unix_epoch, with_hashed_divisor,
#   never_leaves_the_declared_range, never_adds_fires, fuzz). (33)
#   (The implement_cron_bug half of test_dom_dow_vixie_cron_bug is left out too; its union half is ported.)
# * Schedules that never fire (CroniterBadDateError): what Jobline does then is not part of the
#   semantics under test: test_bug34, test_impossible_day_of_month_alone_still_raises. (2)
# * match()/match_range() plumbing (precision, swallowed errors): test_match_precision,
#   test_match_range, test_match_range_precision, test_impossible_day_of_month_still_matches,
#   test_issue151. The true test_match assertions are ported as next_after rows. (5)
# * Return types, iterator state and API plumbing: test_get_current, test_init_no_start_time,
#   test_timezone_pytz, test_timezone_dateutil, range::test_auto_ret_type,
#   range::test_input_type_exceptions, range::test_dt_types, range::test_1day_step_no_ends (exclude_ends),
#   range::test_croniter_range_derived_class, test_nth_out_of_range_without_asserts (python -O),
#   dst_repetition::test_issue_138_dt_to_ts_32b (32-bit timestamp mode; its vector is ported once under
#   dst_repetition::test_issue_138_dt_to_ts_n). (11)
# * croniter's internal expansion lists, no instants: test_optimize_cron_expressions,
#   test_block_dup_ranges, test_confirm_sort, test_error_alpha_cron (same expression as test_error). (4)
# * pytz copies of ported zoneinfo tests (same instants): test_timezone_winter_time_pytz,
#   test_timezone_summer_time_pytz, test_std_dst_pytz, test_std_dst2_pytz, test_std_dst3_pytz,
#   test_dst_issue90_st31ny_pytz, test_dst_iter_pytz, test_dst_gap_shift_is_not_a_fire_time_pytz,
#   range::test_extra_hour_day_prio_pytz. (9)
# * Duplicate of a ported test: test_wdom_core_leap_year (= test_nth_as_last_wday_simple). (1)
# Whole modules left out (not counted above): test_croniter_hash.py (H), test_croniter_random.py (R),
# test_croniter_speed.py (timings).
# Parts of ported tests left out: the tz-type assertions of test_timezone / test_issue_k11; croniter's
# 30- and 16-long loops of test_sunday_ranges_* / test_mth_ranges_from (first few instants kept, and the
# "7" / "0" respellings only where they differ); 7 of the 30 start days of test_issue_142_dow; the
# reversed croniter_range of test_dst_gap_shift_is_not_a_fire_time (same instants); test_match's false
# assertions and its day_or=False ones; the positive is_valid assertions (covered by next rows);
# "* * ?,* * *" of test_invalid_question_mark and the ASCII-whitespace half of
# test_non_ascii_whitespace_rejected (Jobline's rules for those are not specified); the process-TZ and
# 32-bit modes of dst_repetition (same vector).
