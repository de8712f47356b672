"""Cron math of JobSchedule: parse and validate a schedule, list its fire instants, plan catch-up, name runs.

Pure: no kopf, no Kubernetes client. Every instant taken or returned is an aware ``datetime``; every
instant returned is in UTC and a whole second.

Schedules
---------
``spec.schedule`` is 5 cron fields (minute hour day-of-month month day-of-week), a macro
(``@yearly``/``@annually`` = ``0 0 1 1 *``, ``@monthly`` = ``0 0 1 * *``, ``@weekly`` = ``0 0 * * 0``,
``@daily``/``@midnight`` = ``0 0 * * *``, ``@hourly`` = ``0 * * * *``) or ``@every <duration>``
(``30s``, ``2h``, ``1h30m``). Fields follow croniter: names (``jan``, ``mon``), lists, ranges
(``a-b`` with ``a <= b``), steps, ``L`` (last day of month), ``xW``, ``Lx`` (last weekday x of the
month), ``x#n``; when both day-of-month and day-of-week are restricted a day matching either fires.

Wall-clock semantics and DST
----------------------------
Cron schedules (and the macros) are read as wall-clock times in ``spec.timeZone`` (IANA, default UTC).
A matching wall time is mapped to one instant:

* **Fall back (repeated hour)**: a wall time that occurs twice fires **once, at its first
  occurrence**. This holds for every schedule, including ``*/15 * * * *`` and ``@hourly``: each
  wall-clock time fires once, so nothing fires during the second pass of the repeated hour.
  Europe/Berlin 2026-10-25 (03:00 CEST -> 02:00 CET): ``*/15`` fires at 02:00, 02:15, 02:30, 02:45
  CEST (00:00Z..00:45Z), then at 03:00 CET (02:00Z); ``30 2 * * *`` fires at 00:30Z only.
  (A Kubernetes CronJob fires twice there; Jobline does not.)
* **Spring forward (skipped hour)**: a wall time that does not exist fires at the **first valid
  instant after the gap** (the transition instant, e.g. 03:00 CEST in Berlin). All wall times of
  the gap *and* the wall time at the end of the gap fold into that single instant, which fires
  **once**. Berlin 2026-03-29 (02:00 CET -> 03:00 CEST, at 01:00Z): ``30 2 * * *`` fires at 01:00Z;
  ``*/15`` fires at 01:45 CET (00:45Z), then once at 03:00 CEST (01:00Z) for 02:00..02:45 and
  03:00, then 03:15 CEST (01:15Z).
* ``@every <d>`` is a fixed interval of absolute time: it fires at ``anchor + k*d`` for every integer
  ``k``, where ``anchor`` is given by the caller (e.g. the schedule's creationTimestamp, truncated to
  the second; default the Unix epoch), so the instants are stable across restarts. The time zone
  does not affect it (it is still validated).

(Two transitions within one local day that restore the same UTC offset are not modelled; tzdata has
none in the range that matters.)
"""

from __future__ import annotations

import bisect
import hashlib
import re
import zoneinfo
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Final, Literal

from croniter import croniter

from .models.jobschedule import (
    DEFAULT_TIME_ZONE,
    EVERY_PREFIX,
    MACROS,
    SCHEDULE_PATTERN,
    TIME_ZONE_PATTERN,
    MissedRunPolicy,
    every_seconds,
)
from .naming import RUN_HASH_LENGTH, TRIGGER_HASH_LENGTH, fit, short_hash

REASON_INVALID_SCHEDULE: Final = "InvalidSchedule"
REASON_INVALID_TIME_ZONE: Final = "InvalidTimeZone"
ScheduleErrorReason = Literal["InvalidSchedule", "InvalidTimeZone"]

MACRO_EXPANSIONS: Final[dict[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
assert set(MACRO_EXPANSIONS) == set(MACROS)

MAX_EVERY_SECONDS: Final = 2562047 * 3600
"""Longest ``@every`` interval (about 292 years, the limit of a Kubernetes/Go duration)."""

DEFAULT_GRACE_SECONDS: Final = 5.0
"""A run at most this late (after its nominal instant plus jitter) is on time, not missed."""

MAX_NAME_LENGTH: Final = 63
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND: Final = timedelta(seconds=1)
_MICROSECOND: Final = timedelta(microseconds=1)
_DAY: Final = timedelta(days=1)
_SCHEDULE_RE = re.compile(SCHEDULE_PATTERN)
_TIME_ZONE_RE = re.compile(TIME_ZONE_PATTERN)


class ScheduleError(ValueError):
    """An invalid schedule or time zone; ``reason`` is the Ready=False condition reason."""

    def __init__(self, reason: ScheduleErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason: ScheduleErrorReason = reason
        self.message = message


# --- validation of cron fields -------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAMES = {m: i + 1 for i, m in enumerate(_MONTHS)}
_DOW_NAMES = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS: Final = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 7, _DOW_NAMES),
)
_RANGE = re.compile(r"^([0-9]+|[A-Za-z]+)(?:-([0-9]+|[A-Za-z]+))?$")
_SPECIAL = re.compile(r"^(?:L|L([0-9]+)|([0-9]+)W|([0-9]+)#([0-9]+))$")


def _invalid(message: str) -> ScheduleError:
    return ScheduleError(REASON_INVALID_SCHEDULE, message)


def _field_value(field: _Field, text: str, where: str) -> int:
    if text.isdigit():
        value = int(text)
    elif text.lower() in field.names:
        value = field.names[text.lower()]
    elif field.names:
        raise _invalid(f"{where}: unknown name {text!r} (use {', '.join(field.names)} or numbers)")
    else:
        raise _invalid(f"{where}: {text!r} is not a number")
    if not field.low <= value <= field.high:
        raise _invalid(f"{where}: {value} is out of range {field.low}-{field.high}")
    return value


def _check_field(index: int, text: str) -> None:
    """Raise a ScheduleError naming the field if ``text`` is not a valid value of field ``index``."""
    field = _FIELDS[index]
    where = f"{field.name} field {text!r}"
    probe = " ".join(text if i == index else "*" for i in range(5))
    if not _SCHEDULE_RE.match(probe):
        raise _invalid(f"{where} is malformed: expected *, a number, a range a-b, a list a,b or a step */n")
    for item in text.split(","):
        base, _, step = item.partition("/")
        if step and int(step) < 1:
            raise _invalid(f"{where}: step {step} must be at least 1")
        if base in ("*", "?"):
            continue
        special = _SPECIAL.match(base)
        if special:
            if special.group(1) is not None:
                _field_value(_FIELDS[4], special.group(1), where)
            elif special.group(2) is not None:
                _field_value(_FIELDS[2], special.group(2), where)
            elif special.group(3) is not None:
                _field_value(_FIELDS[4], special.group(3), where)
            continue
        match = _RANGE.match(base)
        if not match:
            raise _invalid(f"{where} is malformed")
        start = _field_value(field, match.group(1), where)
        if match.group(2) is not None:
            end = _field_value(field, match.group(2), where)
            if start > end:
                raise _invalid(f"{where}: range {base} is reversed (start after end)")
    try:
        croniter(probe)
    except (ValueError, KeyError, TypeError) as err:  # croniter's errors are ValueErrors
        raise _invalid(f"{where} is invalid: {err}") from err


def _check_cron(expr: str) -> None:
    fields = expr.split()
    if len(fields) != 5:
        raise _invalid(
            f"schedule {expr!r} has {len(fields)} field(s), expected 5 "
            "(minute hour day-of-month month day-of-week), a macro such as @daily, or @every <duration>"
        )
    for index, text in enumerate(fields):
        _check_field(index, text)
    normalized = " ".join(fields)
    try:
        croniter(normalized)
        # Must fire at least once: `0 0 30 2 *` (February 30) never does.
        croniter(normalized, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except (ValueError, KeyError, TypeError) as err:
        raise _invalid(f"schedule {expr!r} never fires (no date matches it)") from err


def _check_every(expr: str) -> timedelta:
    seconds = every_seconds(expr)
    if seconds is None:
        raise _invalid(
            f"schedule {expr!r}: the @every duration must be numbers with units h, m, s, "
            "such as @every 30s or @every 1h30m"
        )
    if seconds <= 0:
        raise _invalid(f"schedule {expr!r}: the @every duration must be greater than zero")
    if seconds > MAX_EVERY_SECONDS:
        raise _invalid(f"schedule {expr!r}: the @every duration must be at most 2562047h")
    return timedelta(seconds=seconds)


@cache
def _available_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone(name: str) -> zoneinfo.ZoneInfo:
    message = f"unknown time zone {name!r}: expected an IANA time zone name such as Europe/Berlin or UTC"
    if not _TIME_ZONE_RE.match(name) or name == "localtime":
        raise ScheduleError(REASON_INVALID_TIME_ZONE, message)
    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ScheduleError(REASON_INVALID_TIME_ZONE, message) from err
    if name not in _available_time_zones():
        raise ScheduleError(REASON_INVALID_TIME_ZONE, message)
    return zone


# --- schedules ------------------------------------------------------------------------------------


def _utc(t: datetime, what: str = "time") -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {t!r}")
    return t.astimezone(UTC)


def _whole_seconds(t: datetime) -> int:
    return (t - _EPOCH) // _SECOND


class Schedule(ABC):
    """A parsed, valid schedule. Instants in: aware datetimes; instants out: aware UTC datetimes."""

    expression: str
    time_zone: str

    @abstractmethod
    def _forward(self, t: datetime) -> Iterator[datetime]:
        """Fire instants strictly after ``t`` (UTC), ascending, without end."""

    @abstractmethod
    def _backward(self, t: datetime) -> Iterator[datetime]:
        """Fire instants at or before ``t`` (UTC), descending."""

    @abstractmethod
    def _count(self, a: datetime, b: datetime, cap: int | None) -> int: ...

    def next_after(self, t: datetime) -> datetime:
        """The first fire instant strictly after ``t``."""
        return next(self._forward(_utc(t)))

    def last_at_or_before(self, t: datetime) -> datetime:
        """The last fire instant at or before ``t``."""
        return next(self._backward(_utc(t)))

    def times_between(
        self, a: datetime, b: datetime, limit: int | None = None, *, newest: bool = False
    ) -> list[datetime]:
        """Fire instants in ``(a, b]``, oldest first; at most ``limit`` of them.

        With ``limit``, the oldest ``limit`` instants, or the newest ones if ``newest``.
        """
        a, b = _utc(a, "a"), _utc(b, "b")
        if limit is not None and limit <= 0:
            return []
        found: list[datetime] = []
        if newest:
            for u in self._backward(b):
                if u <= a or (limit is not None and len(found) >= limit):
                    break
                found.append(u)
            found.reverse()
        else:
            for u in self._forward(a):
                if u > b or (limit is not None and len(found) >= limit):
                    break
                found.append(u)
        return found

    def count_between(self, a: datetime, b: datetime, cap: int | None = None) -> int:
        """How many fire instants are in ``(a, b]`` (at most ``cap``), without listing them."""
        a, b = _utc(a, "a"), _utc(b, "b")
        if b <= a or (cap is not None and cap <= 0):
            return 0
        return self._count(a, b, cap)


class CronSchedule(Schedule):
    """A 5-field cron expression (or macro) read in a time zone, with the DST rules of the module."""

    def __init__(self, expression: str, cron: str, time_zone: str, zone: zoneinfo.ZoneInfo) -> None:
        self.expression = expression
        self.cron = cron
        self.time_zone = time_zone
        self.zone = zone
        expanded = croniter(cron).expanded
        minutes = range(60) if expanded[0] == ["*"] else sorted(set(expanded[0]))
        hours = range(24) if expanded[1] == ["*"] else sorted(set(expanded[1]))
        # Seconds after local midnight of the matching wall times of a matching day.
        self._seconds = [h * 3600 + m * 60 for h in hours for m in minutes]
        self._micros = [s * 1_000_000 for s in self._seconds]
        self._day_cron = "0 0 " + " ".join(cron.split()[2:])
        self._every_day = all(f in ("*", "?") for f in cron.split()[2:])
        self._gap_ends: dict[datetime, datetime] = {}

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, time_zone={self.time_zone!r})"

    # Matching local days, as iterated by croniter on naive wall dates (passed as UTC so that
    # croniter does no time zone arithmetic of its own).
    def _days_from(self, day: date) -> Iterator[date]:
        if self._every_day:
            while True:
                yield day
                day += _DAY
        start = datetime.combine(day, time(), tzinfo=UTC) - _SECOND
        it = croniter(self._day_cron, start)
        while True:
            yield it.get_next(datetime).date()

    def _days_back_from(self, day: date) -> Iterator[date]:
        if self._every_day:
            while True:
                yield day
                day -= _DAY
        it = croniter(self._day_cron, datetime.combine(day + _DAY, time(), tzinfo=UTC))
        while True:
            yield it.get_prev(datetime).date()

    def _local(self, t: datetime) -> datetime:
        return t.astimezone(self.zone).replace(tzinfo=None)

    def _simple_base(self, day: date) -> datetime | None:
        """UTC instant of local midnight of ``day`` if the UTC offset is constant over the whole day
        (and did not change exactly at its start), else None: then each wall time is mapped alone."""
        offset = datetime.combine(day, time(), tzinfo=self.zone).utcoffset()
        assert offset is not None
        base = datetime.combine(day, time(), tzinfo=UTC) - offset
        for probe in (base - _SECOND, base, base + _DAY - _SECOND):
            if probe.astimezone(self.zone).utcoffset() != offset:
                return None
        return base

    def _instant(self, wall: datetime) -> datetime:
        """The fire instant of a naive local wall time: first occurrence if repeated, end of the gap
        if skipped."""
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if first <= second:
            return first
        # In a gap, fold=0 applies the offset before the transition (an instant after it) and
        # fold=1 the offset after (an instant before it): the transition lies in between.
        return self._gap_end(second, first)

    def _gap_end(self, before: datetime, after: datetime) -> datetime:
        cached = self._gap_ends.get(after)
        if cached is not None:
            return cached
        new_offset = after.astimezone(self.zone).utcoffset()
        lo, hi = _whole_seconds(before), _whole_seconds(after)
        while hi - lo > 1:  # offset(lo) is the old one, offset(hi) the new one
            mid = (lo + hi) // 2
            if (_EPOCH + mid * _SECOND).astimezone(self.zone).utcoffset() == new_offset:
                hi = mid
            else:
                lo = mid
        end = _EPOCH + hi * _SECOND
        self._gap_ends[after] = end
        return end

    def _day_instants(self, day: date) -> list[datetime]:
        midnight = datetime.combine(day, time())
        return [self._instant(midnight + timedelta(seconds=s)) for s in self._seconds]

    def _forward(self, t: datetime) -> Iterator[datetime]:
        # Wall times up to the local wall time of t map to instants <= t: start on its day.
        last = t
        for day in self._days_from(self._local(t).date()):
            base = self._simple_base(day)
            if base is not None:
                i = bisect.bisect_right(self._micros, (last - base) // _MICROSECOND)
                for s in self._seconds[i:]:
                    last = base + timedelta(seconds=s)
                    yield last
            else:
                for u in self._day_instants(day):
                    if u > last:
                        last = u
                        yield u

    def _backward(self, t: datetime) -> Iterator[datetime]:
        # Wall times a little after t's wall time map before t when t is in a repeated hour.
        upper: datetime | None = None
        for day in self._days_back_from(self._local(t).date() + _DAY):
            base = self._simple_base(day)
            if base is not None:
                i = bisect.bisect_right(self._micros, (t - base) // _MICROSECOND)
                if upper is not None:
                    i = min(i, bisect.bisect_left(self._micros, (upper - base) // _MICROSECOND))
                for s in reversed(self._seconds[:i]):
                    upper = base + timedelta(seconds=s)
                    yield upper
            else:
                for u in reversed(self._day_instants(day)):
                    if u <= t and (upper is None or u < upper):
                        upper = u
                        yield u

    def _count(self, a: datetime, b: datetime, cap: int | None) -> int:
        count = 0
        last = a
        for day in self._days_from(self._local(a).date()):
            base = self._simple_base(day)
            if base is not None:
                if base + timedelta(seconds=self._seconds[0]) > b:
                    break
                lo = bisect.bisect_right(self._micros, (last - base) // _MICROSECOND)
                hi = bisect.bisect_right(self._micros, (b - base) // _MICROSECOND)
                if hi > lo:
                    count += hi - lo
                    last = base + timedelta(seconds=self._seconds[hi - 1])
            else:
                instants = self._day_instants(day)
                if instants[0] > b:
                    break
                for u in instants:
                    if last < u <= b:
                        count += 1
                        last = u
            if cap is not None and count >= cap:
                return cap
        return count


class EverySchedule(Schedule):
    """``@every <d>``: instants ``anchor + k*d`` for every integer k, in absolute time."""

    def __init__(self, expression: str, interval: timedelta, anchor: datetime, time_zone: str) -> None:
        self.expression = expression
        self.interval = interval
        self.anchor = anchor
        self.time_zone = time_zone

    def __repr__(self) -> str:
        return f"EverySchedule({self.expression!r}, anchor={self.anchor.isoformat()})"

    def _index(self, t: datetime) -> int:
        """k of the last instant at or before t."""
        return (t - self.anchor) // self.interval

    def _forward(self, t: datetime) -> Iterator[datetime]:
        k = self._index(t) + 1
        while True:
            yield self.anchor + k * self.interval
            k += 1

    def _backward(self, t: datetime) -> Iterator[datetime]:
        k = self._index(t)
        while True:
            yield self.anchor + k * self.interval
            k -= 1

    def _count(self, a: datetime, b: datetime, cap: int | None) -> int:
        count = self._index(b) - self._index(a)
        return count if cap is None else min(count, cap)


def parse_schedule(
    expression: str, time_zone: str | None = DEFAULT_TIME_ZONE, *, anchor: datetime | None = None
) -> Schedule:
    """Parse and validate ``spec.schedule`` read in ``spec.timeZone`` (None or "" mean UTC).

    ``anchor`` is the reference instant of ``@every`` schedules (use the schedule's
    creationTimestamp; truncated to the second; default the Unix epoch). Ignored for cron schedules.
    Raises ScheduleError with ``reason`` InvalidSchedule or InvalidTimeZone.

    Schedules are immutable, so parses are cached: validating a cron expression through croniter
    costs about 1.5 ms, and the schedule loop plans every schedule again on each fire and change.
    """
    if expression.strip().startswith(EVERY_PREFIX.rstrip()):
        anchor = None if anchor is None else _utc(anchor, "anchor").replace(microsecond=0)
    else:
        anchor = None  # ignored: one cache entry per cron expression and zone
    return _parse_cached(expression, time_zone, anchor)


@lru_cache(maxsize=4096)
def _parse_cached(expression: str, time_zone: str | None, anchor: datetime | None) -> Schedule:
    """parse_schedule's work; ``anchor`` is already UTC, whole seconds, and None for cron schedules."""
    zone_name = time_zone or DEFAULT_TIME_ZONE
    expr = expression.strip()
    if not expr:
        raise _invalid("schedule is empty")
    if expr.startswith("@"):
        if expr.startswith(EVERY_PREFIX.rstrip()):
            interval = _check_every(expr)
            _zone(zone_name)
            return EverySchedule(expr, interval, _EPOCH if anchor is None else anchor, zone_name)
        cron = MACRO_EXPANSIONS.get(expr)
        if cron is None:
            raise _invalid(f"unknown macro {expr!r}: use one of {', '.join(MACROS)} or @every <duration>")
    else:
        _check_cron(expr)
        cron = " ".join(expr.split())
    return CronSchedule(expr, cron, zone_name, _zone(zone_name))


# --- jitter, catch-up, names ----------------------------------------------------------------------


def jitter_offset(namespace: str, name: str, jitter_seconds: float) -> float:
    """Stable per-schedule delay in ``[0, jitter_seconds)`` seconds, from sha256 of ``namespace/name``.

    The caller runs the job at ``nominal + offset`` and keeps the nominal instant for naming.
    """
    if jitter_seconds <= 0:
        return 0.0
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    fraction = (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53)  # in [0, 1)
    return fraction * jitter_seconds


@dataclass(frozen=True)
class CatchUp:
    """What to do now.

    - ``to_run``: nominal instants to create jobs for now, oldest first;
    - ``missed``: due instants in ``(last_schedule_time, now]`` that will never be run;
    - ``latest``: the newest due instant (run or not), None if none is due: record it (e.g. as
      lastScheduleTime) so that the same instants are not counted again;
    - ``next_time``: the next nominal instant after the due ones; ``wake_at`` = it plus the jitter.
    """

    to_run: tuple[datetime, ...]
    missed: int
    latest: datetime | None
    next_time: datetime
    wake_at: datetime


def plan_catch_up(
    schedule: Schedule,
    last_schedule_time: datetime,
    now: datetime,
    policy: MissedRunPolicy = "RunLatest",
    starting_deadline_seconds: float | None = None,
    max_catch_up_runs: int = 10,
    *,
    jitter_seconds: float = 0.0,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> CatchUp:
    """Plan the runs due at ``now`` since ``last_schedule_time`` (the creationTimestamp if never run).

    An instant n is due if ``n + jitter_seconds <= now`` (pass the schedule's ``jitter_offset``); its
    lateness is ``now - (n + jitter_seconds)``. Only the newest due instant can be on time (lateness
    <= ``grace_seconds``): it always runs and is not missed, whatever the policy. Older ones are
    late; a late instant is runnable unless its lateness exceeds ``starting_deadline_seconds``
    (deadlines shorter than the grace count as the grace). Then, among the runnable ones:

    - ``RunLatest``: only the newest;
    - ``Skip``: none (only an on-time run);
    - ``RunAll``: the newest ``max_catch_up_runs`` of them, oldest first (so RunAll with 1 is RunLatest).

    Every due instant not run is counted in ``missed``.
    """
    if max_catch_up_runs < 1:
        raise ValueError("max_catch_up_runs must be at least 1")
    if starting_deadline_seconds is not None and starting_deadline_seconds < 0:
        raise ValueError("starting_deadline_seconds must not be negative")
    last = _utc(last_schedule_time, "last_schedule_time")
    jitter = timedelta(seconds=max(0.0, jitter_seconds))
    horizon = _utc(now, "now") - jitter  # due instants are at or before this
    next_time = schedule.next_after(max(horizon, last))
    nothing = CatchUp((), 0, None, next_time, next_time + jitter)
    if horizon <= last:
        return nothing
    latest = schedule.last_at_or_before(horizon)
    if latest <= last:
        return nothing
    due = schedule.count_between(last, horizon)
    grace = timedelta(seconds=max(0.0, grace_seconds))
    on_time = horizon - latest <= grace
    oldest_runnable = last
    if starting_deadline_seconds is not None:
        # Never shorter than the grace, so the on-time instant is always runnable.
        deadline = max(timedelta(seconds=starting_deadline_seconds), grace)
        # Runnable: horizon - n <= deadline, i.e. n >= horizon - deadline, i.e. n > that minus 1µs.
        oldest_runnable = max(last, horizon - deadline - _MICROSECOND)
    to_run: list[datetime]
    if policy == "Skip":
        to_run = [latest] if on_time else []
    elif policy == "RunLatest":
        to_run = [latest] if latest > oldest_runnable else []
    elif policy == "RunAll":
        to_run = schedule.times_between(oldest_runnable, horizon, max_catch_up_runs, newest=True)
    else:
        raise ValueError(f"unknown missed run policy {policy!r}")
    return CatchUp(tuple(to_run), due - len(to_run), latest, next_time, next_time + jitter)


def _check_name(schedule_name: str) -> None:
    if not _DNS1123_SUBDOMAIN.match(schedule_name) or len(schedule_name) > 253:
        raise ValueError(f"schedule name {schedule_name!r} is not a valid Kubernetes object name")


def _with_suffix(schedule_name: str, suffix: str) -> str:
    name = fit(schedule_name, suffix, limit=MAX_NAME_LENGTH, hash_length=RUN_HASH_LENGTH)
    assert len(name) <= MAX_NAME_LENGTH and _DNS1123_SUBDOMAIN.match(name), name
    return name


def run_name(schedule_name: str, nominal: datetime) -> str:
    """Name of the QueuedJob of the scheduled run at ``nominal``: ``<schedule>-<unix seconds>``.

    Deterministic (a restart or a second replica computes the same name, so the run is created at
    most once), a DNS-1123 subdomain of at most 63 characters: a long schedule name is cut and
    followed by a hash of the full name.
    """
    _check_name(schedule_name)
    seconds = _whole_seconds(_utc(nominal, "nominal"))
    if seconds < 0:
        raise ValueError(f"nominal instant {nominal.isoformat()} is before 1970")
    return _with_suffix(schedule_name, f"-{seconds}")


def manual_run_name(schedule_name: str, trigger_value: str) -> str:
    """Name of the QueuedJob of a manual trigger: ``<schedule>-manual-<hash of the trigger value>``,
    so the same trigger value never creates two runs. At most 63 characters."""
    _check_name(schedule_name)
    return _with_suffix(schedule_name, f"-manual-{short_hash(trigger_value, TRIGGER_HASH_LENGTH)}")
