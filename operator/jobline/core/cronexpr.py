"""The cron grammar of JobSchedule: 5 fields parsed into value sets, and the days they match.

Pure: no kopf, no Kubernetes client, no croniter. Our own parser because croniter, used until
issue 12, reads an equal range ``a-a`` as the whole field and intersects the two day fields as soon as
one uses ``L``, ``W`` or ``#``; both break the cron rule that docs/schedules.md promises. The grammar
here is the one ``models.jobschedule.SCHEDULE_PATTERN`` accepts (a unit test holds them together).

Grammar, per field (``minute hour day-of-month month day-of-week``), a comma-separated list of:

* ``*`` (optionally ``*/step``), ``?`` in the day fields (same as ``*``, without a step);
* a value ``a``, a range ``a-b`` (``a <= b``; ``a-a`` is the single value ``a``; no wrap-around, but
  a day-of-week range may end on Sunday as 0: ``fri-sun``),
  either with ``/step`` (``a/step`` means ``a-max/step``); names in the month (``jan``) and
  day-of-week (``sun``, 0 and 7 are both Sunday) fields, any case;
* day-of-month only: ``L`` (last day), ``LW`` (last weekday), ``xW`` (the weekday nearest to day x
  within the same month; nothing in a month without day x);
* day-of-week only: ``Lx`` (last weekday x of the month), ``x#n`` (the n-th weekday x, n 1-5).

Day fields: when either is ``*`` or ``?`` the other alone decides; when both are restricted (plain
values or special forms alike) a day matching **either** fires.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

REASON_INVALID_SCHEDULE: Final = "InvalidSchedule"
REASON_INVALID_TIME_ZONE: Final = "InvalidTimeZone"
ScheduleErrorReason = Literal["InvalidSchedule", "InvalidTimeZone"]

MONTH_NAMES: Final = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DOW_NAMES: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MAX_WEEK_NUMBER: Final = 5

SEARCH_MONTHS: Final = 400 * 12
"""The Gregorian calendar repeats every 400 years: a day spec without a match in that many
consecutive months never matches."""


class ScheduleError(ValueError):
    """An invalid schedule or time zone; ``reason`` is the Ready=False condition reason."""

    def __init__(self, reason: ScheduleErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason: ScheduleErrorReason = reason
        self.message = message


def invalid(message: str) -> ScheduleError:
    return ScheduleError(REASON_INVALID_SCHEDULE, message)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int  # the highest value a `*` or `a/step` reaches
    top: int  # the highest value that may be written (7 for Sunday in day-of-week)
    names: dict[str, int]
    day: bool  # `?` allowed


_FIELDS: Final = (
    _Field("minute", 0, 59, 59, {}, False),
    _Field("hour", 0, 23, 23, {}, False),
    _Field("day-of-month", 1, 31, 31, {}, True),
    _Field("month", 1, 12, 12, {m: i + 1 for i, m in enumerate(MONTH_NAMES)}, False),
    _Field("day-of-week", 0, 6, 7, {d: i for i, d in enumerate(DOW_NAMES)}, True),
)
_MINUTE, _HOUR, _DOM, _MONTH, _DOW = range(5)

_TOKEN = r"[0-9]+|[A-Za-z]+"
_ITEM = re.compile(rf"^(?:(?P<star>\*)|(?P<a>{_TOKEN})(?:-(?P<b>{_TOKEN}))?)(?:/(?P<step>[0-9]+))?$")
_DOM_SPECIAL = re.compile(r"^(?:(?P<last>L)|(?P<lastweekday>LW)|(?P<near>[0-9]+)W)$")
_DOW_SPECIAL = re.compile(rf"^(?:L(?P<last>{_TOKEN})|(?P<nth>{_TOKEN})#(?P<n>[0-9]))$")
MAX_STEP: Final = 999


@dataclass(frozen=True)
class _DaySpec:
    """What one day field says; ``star`` means it restricts nothing."""

    star: bool = True
    values: frozenset[int] = frozenset()
    last: bool = False  # L
    last_weekday: bool = False  # LW
    near: frozenset[int] = frozenset()  # xW
    last_of: frozenset[int] = frozenset()  # Lx
    nth: frozenset[tuple[int, int]] = frozenset()  # x#n


class CronExpr:
    """A parsed 5-field expression: minute and hour lists, months, and the day rule."""

    def __init__(
        self,
        text: str,
        minutes: tuple[int, ...],
        hours: tuple[int, ...],
        months: frozenset[int],
        dom: _DaySpec,
        dow: _DaySpec,
        fixed_time: bool,
    ) -> None:
        self.text = text
        self.minutes = minutes
        self.hours = hours
        self.months = months
        self.dom = dom
        self.dow = dow
        self.fixed_time = fixed_time
        """True unless the minute or hour field has a `*` item: decides the DST rule (cronie's)."""
        self._month_cache: dict[tuple[int, int], tuple[int, ...]] = {}

    def __repr__(self) -> str:
        return f"CronExpr({self.text!r})"

    def month_days(self, year: int, month: int) -> tuple[int, ...]:
        """The matching days of a month, ascending (empty if the month itself does not match)."""
        key = (year, month)
        cached = self._month_cache.get(key)
        if cached is not None:
            return cached
        if month not in self.months:
            days: tuple[int, ...] = ()
        else:
            first_weekday, length = calendar.monthrange(year, month)
            first = (first_weekday + 1) % 7  # cron numbering: Sunday is 0
            if self.dom.star and self.dow.star:
                days = tuple(range(1, length + 1))
            elif self.dom.star:
                days = tuple(sorted(_dow_days(self.dow, first, length)))
            elif self.dow.star:
                days = tuple(sorted(_dom_days(self.dom, first, length)))
            else:
                days = tuple(sorted(_dom_days(self.dom, first, length) | _dow_days(self.dow, first, length)))
        if len(self._month_cache) > 1024:
            self._month_cache.clear()
        self._month_cache[key] = days
        return days

    def matches(self, day: date) -> bool:
        return day.day in self.month_days(day.year, day.month)

    def days_from(self, day: date) -> Iterator[date]:
        """Matching days at or after ``day``, ascending; ends only if none is left before year 10000."""
        year, month, start = day.year, day.month, day.day
        empty = 0
        while empty < SEARCH_MONTHS and year <= 9999:
            days = self.month_days(year, month)
            found = False
            for d in days:
                if d >= start:
                    found = True
                    yield date(year, month, d)
            empty = 0 if found else empty + 1
            year, month, start = (year + 1, 1, 1) if month == 12 else (year, month + 1, 1)

    def days_back_from(self, day: date) -> Iterator[date]:
        """Matching days at or before ``day``, descending; ends only if none is left after year 1."""
        year, month, end = day.year, day.month, day.day
        empty = 0
        while empty < SEARCH_MONTHS and year >= 1:
            days = self.month_days(year, month)
            found = False
            for d in reversed(days):
                if d <= end:
                    found = True
                    yield date(year, month, d)
            empty = 0 if found else empty + 1
            year, month, end = (year - 1, 12, 31) if month == 1 else (year, month - 1, 31)


def _weekday_near(first: int, length: int, day: int) -> int:
    weekday = (first + day - 1) % 7
    if weekday == 6:  # Saturday: the Friday before, or the Monday after the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 0:  # Sunday: the Monday after, or the Friday before the last day
        return day + 1 if day < length else day - 2
    return day


def _dom_days(spec: _DaySpec, first: int, length: int) -> set[int]:
    days = {d for d in spec.values if d <= length}
    if spec.last:
        days.add(length)
    if spec.last_weekday:
        days.add(_weekday_near(first, length, length))
    days.update(_weekday_near(first, length, d) for d in spec.near if d <= length)
    return days


def _dow_days(spec: _DaySpec, first: int, length: int) -> set[int]:
    days: set[int] = set()
    for weekday in spec.values:
        days.update(range(1 + (weekday - first) % 7, length + 1, 7))
    for weekday in spec.last_of:
        last = (first + length - 1) % 7
        days.add(length - (last - weekday) % 7)
    for weekday, n in spec.nth:
        d = 1 + (weekday - first) % 7 + 7 * (n - 1)
        if d <= length:
            days.add(d)
    return days


# --- parsing ---------------------------------------------------------------------------------------


def _value(field: _Field, text: str, where: str) -> int:
    if text.isdigit():
        if len(text) > 2:
            raise invalid(f"{where}: {text!r} has more than 2 digits")
        value = int(text)
    elif text.lower() in field.names:
        value = field.names[text.lower()]
    elif field.names:
        raise invalid(f"{where}: unknown name {text!r} (use {', '.join(field.names)} or numbers)")
    else:
        raise invalid(f"{where}: {text!r} is not a number")
    if not field.low <= value <= field.top:
        raise invalid(f"{where}: {value} is out of range {field.low}-{field.top}")
    return value


def _weekday(text: str, where: str) -> int:
    return _value(_FIELDS[_DOW], text, where) % 7


def _malformed(field: _Field, where: str) -> ScheduleError:
    forms = "*, a number, a range a-b, a list a,b or a step */n"
    if field.name == "day-of-month":
        forms += ", ?, L, LW or xW"
    elif field.name == "day-of-week":
        forms += ", ?, Lx or x#n"
    return invalid(f"{where} is malformed: expected {forms}")


def _parse_field(index: int, text: str) -> tuple[set[int], _DaySpec, bool]:
    """Values of a field, its day rule (day fields) and whether it has a `*` item."""
    field = _FIELDS[index]
    where = f"{field.name} field {text!r}"
    values: set[int] = set()
    has_star = False
    star = True
    last = last_weekday = False
    near: set[int] = set()
    last_of: set[int] = set()
    nth: set[tuple[int, int]] = set()
    for item in text.split(","):
        if field.day and item == "?":
            values.update(range(field.low, field.high + 1))
            continue
        special = _DOM_SPECIAL if index == _DOM else _DOW_SPECIAL if index == _DOW else None
        match = special.match(item) if special is not None else None
        if match is not None:
            star = False
            groups = match.groupdict()
            if index == _DOM:
                if groups["last"]:
                    last = True
                elif groups["lastweekday"]:
                    last_weekday = True
                else:
                    near.add(_value(field, groups["near"], where))
            elif groups["last"] is not None:
                last_of.add(_weekday(groups["last"], where))
            else:
                n = int(groups["n"])
                if not 1 <= n <= MAX_WEEK_NUMBER:
                    raise invalid(f"{where}: #{n} must be a week of the month, 1-{MAX_WEEK_NUMBER}")
                nth.add((_weekday(groups["nth"], where), n))
            continue
        if index == _DOW and item == "L":
            raise invalid(
                f"{where}: L alone is the last day of the month and belongs in the day-of-month field; "
                "use Lx (L5, Lfri) for the last weekday x of the month"
            )
        plain = _ITEM.match(item)
        if plain is None:
            raise _malformed(field, where)
        step = int(plain["step"]) if plain["step"] is not None else 1
        if not 1 <= step <= MAX_STEP or len(plain["step"] or "") > 3:
            raise invalid(f"{where}: step {plain['step']} must be 1-{MAX_STEP}")
        if plain["star"]:
            has_star = True
            start, end = field.low, field.high
            if step != 1:
                star = False
        else:
            star = False
            start = _value(field, plain["a"], where)
            if plain["b"] is not None:
                end = _value(field, plain["b"], where)
                if index == _DOW and end == 0 < start:
                    end = 7  # fri-sun: Sunday closes the week
                if start > end:
                    raise invalid(
                        f"{where}: range {plain['a']}-{plain['b']} is reversed (start after end; "
                        "wrap-around ranges are not supported, write two ranges)"
                    )
            elif plain["step"] is not None:
                end = field.high if start <= field.high else start  # a/step: a to the end of the field
            else:
                end = start
        values.update(range(start, end + 1, step))
    if index == _DOW:
        values = {v % 7 for v in values}
    day = _DaySpec(
        star=star,
        values=frozenset(values),
        last=last,
        last_weekday=last_weekday,
        near=frozenset(near),
        last_of=frozenset(last_of),
        nth=frozenset(nth),
    )
    return values, day, has_star


def parse_cron(text: str) -> CronExpr:
    """Parse 5 cron fields; raise ScheduleError (InvalidSchedule) naming the field, or if no day matches."""
    fields = [f for f in text.split(" ") if f]  # only spaces separate fields, as in the schema
    if len(fields) != 5:
        raise invalid(
            f"schedule {text!r} has {len(fields)} field(s), expected 5 "
            "(minute hour day-of-month month day-of-week), a macro such as @daily, or @every <duration>"
        )
    minutes, _, minute_star = _parse_field(_MINUTE, fields[_MINUTE])
    hours, _, hour_star = _parse_field(_HOUR, fields[_HOUR])
    _, dom, _ = _parse_field(_DOM, fields[_DOM])
    months, _, _ = _parse_field(_MONTH, fields[_MONTH])
    _, dow, _ = _parse_field(_DOW, fields[_DOW])
    normalized = " ".join(fields)
    expr = CronExpr(
        normalized,
        tuple(sorted(minutes)),
        tuple(sorted(hours)),
        frozenset(months),
        dom,
        dow,
        fixed_time=not (minute_star or hour_star),
    )
    if next(expr.days_from(date(2000, 1, 1)), None) is None:
        raise invalid(f"schedule {text!r} never fires (no date matches it)")
    return expr
