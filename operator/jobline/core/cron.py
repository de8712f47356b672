"""Cron math of JobSchedule: parse and validate a schedule, list its fire instants, plan catch-up, name runs.

Pure: no kopf, no Kubernetes client. Every instant taken or returned is an aware ``datetime``; every
instant returned is in UTC and a whole second.

Schedules
---------
``spec.schedule`` is 5 cron fields (minute hour day-of-month month day-of-week; the grammar is in
``cronexpr``), a macro (``@yearly``/``@annually`` = ``0 0 1 1 *``, ``@monthly`` = ``0 0 1 * *``,
``@weekly`` = ``0 0 * * 0``, ``@daily``/``@midnight`` = ``0 0 * * *``, ``@hourly`` = ``0 * * * *``) or
``@every <duration>`` (``30s``, ``2h``, ``1h30m``).

Wall-clock semantics and DST (the rule of cronie and Vixie cron)
----------------------------------------------------------------
Cron schedules (and the macros) are read as wall-clock times in ``spec.timeZone`` (IANA, default UTC).

* A **fixed-time** schedule (no ``*`` item in the minute or hour field: ``30 2 * * *``, ``0 9 * * 1``,
  ``@daily``) maps each matching wall time to one instant. A wall time that occurs twice (clocks fall
  back) fires at its **first occurrence** only; a wall time that does not exist (clocks spring
  forward) fires at the **first instant after the gap**, and all such wall times of one gap fire
  there once. Berlin 2026-10-25: ``30 2 * * *`` fires at 00:30Z only; 2026-03-29: at 01:00Z (03:00
  CEST). (A Kubernetes CronJob fires such a time twice in a fold.)
* A **frequent** schedule (a ``*`` item in the minute or hour field: ``*/15 * * * *``, ``0 * * * *``,
  ``@hourly``, ``* 2 * * *``) fires at **every real instant whose wall-clock time matches**: in both
  passes of a repeated hour, and never for wall times that do not exist (no catch-up run for them).
  Berlin 2026-10-25: ``*/30`` fires at 00:00Z, 00:30Z (CEST), 01:00Z, 01:30Z (CET), 02:00Z;
  2026-03-29: 00:30Z (01:30 CET), then 01:00Z (03:00 CEST).
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
from typing import Final

from .cronexpr import REASON_INVALID_SCHEDULE as REASON_INVALID_SCHEDULE
from .cronexpr import REASON_INVALID_TIME_ZONE as REASON_INVALID_TIME_ZONE
from .cronexpr import CronExpr, invalid, parse_cron
from .cronexpr import ScheduleError as ScheduleError
from .cronexpr import ScheduleErrorReason as ScheduleErrorReason
from .models.jobschedule import (
    DEFAULT_TIME_ZONE,
    EVERY_PREFIX,
    MACROS,
    TIME_ZONE_PATTERN,
    MissedRunPolicy,
    every_seconds,
)
from .naming import RUN_HASH_LENGTH, TRIGGER_HASH_LENGTH, fit, short_hash

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
_TIME_ZONE_RE = re.compile(TIME_ZONE_PATTERN)
_invalid = invalid


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

    def __init__(self, expression: str, cron: CronExpr, time_zone: str, zone: zoneinfo.ZoneInfo) -> None:
        self.expression = expression
        self.cron = cron.text
        self.fields = cron
        self.time_zone = time_zone
        self.zone = zone
        self.fixed_time = cron.fixed_time
        """Fixed-time schedules fire once per matching wall time; others at every matching instant."""
        # Seconds after local midnight of the matching wall times of a matching day.
        self._seconds = [h * 3600 + m * 60 for h in cron.hours for m in cron.minutes]
        self._micros = [s * 1_000_000 for s in self._seconds]
        self._gap_ends: dict[datetime, datetime] = {}

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, time_zone={self.time_zone!r})"

    def _days_from(self, day: date) -> Iterator[date]:
        return self.fields.days_from(day)

    def _days_back_from(self, day: date) -> Iterator[date]:
        return self.fields.days_back_from(day)

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

    def _instants(self, wall: datetime) -> tuple[datetime, ...]:
        """The fire instants of a naive local wall time.

        Fixed-time schedules: the first occurrence if repeated, the end of the gap if skipped.
        Frequent ones: every real instant with that wall time (two if repeated, none if skipped).
        """
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if first == second:
            return (first,)
        if first < second:  # repeated: fold=0 is the first pass
            return (first,) if self.fixed_time else (first, second)
        # In a gap, fold=0 applies the offset before the transition (an instant after it) and
        # fold=1 the offset after (an instant before it): the transition lies in between.
        return (self._gap_end(second, first),) if self.fixed_time else ()

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
        """Fire instants of a local day whose UTC offset changes, ascending, each once."""
        midnight = datetime.combine(day, time())
        return sorted({u for s in self._seconds for u in self._instants(midnight + timedelta(seconds=s))})

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
                if instants and instants[0] > b:
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

    Schedules are immutable, so parses are cached: validating a cron expression (which searches for
    a matching day) costs up to a few ms, and the schedule loop plans every schedule again on each fire and change.
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
        cron = expr
    return CronSchedule(expr, parse_cron(cron), zone_name, _zone(zone_name))


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
