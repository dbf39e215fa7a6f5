"""When a schedule acts: Temporal's ``ScheduleSpec``, compiled and evaluated.

On create and update the spec is brought to the form Temporal's server stores
and ``describe()`` shows: cron strings (parsed and expanded by croniter) and
calendar strings become structured calendars, ``@every`` becomes an interval,
ranges get their defaults. Evaluation follows Temporal's scheduler:

- a time matches a structured calendar when every field matches (day of month
  *and* day of week), on wall-clock time in the spec's time zone (``zoneinfo``);
  a time that a DST change skips never matches, a repeated one matches twice;
- an interval matches ``epoch + n * every + offset`` in whole seconds;
- the spec's times are the union of both, minus ``skip`` calendars, within
  ``start_at``..``end_at``; jitter delays each by a deterministic amount below
  ``jitter`` and below the gap to the following time.
"""

from __future__ import annotations

import bisect
import calendar
import hashlib
import io
import itertools
import math
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf.duration_pb2 import Duration
from temporalio.api.schedule.v1 import (
    CalendarSpec,
    IntervalSpec,
    Range,
    ScheduleSpec,
    StructuredCalendarSpec,
)

__all__ = ["MAX_YEAR", "CompiledSpec", "NextTime", "SpecError", "canonical_spec", "load_zone"]

MIN_YEAR = 2000
MAX_YEAR = 2100
# Bounds a search through a spec whose skip calendars exclude (nearly) every time.
_SEARCH_LIMIT = 10_000
# Wall-clock order and time order differ only within a few hours of a DST change.
_DST_MARGIN = timedelta(hours=3)

_FIELDS = (  # proto field, name in Temporal's messages, bounds
    ("second", "Second", 0, 59),
    ("minute", "Minute", 0, 59),
    ("hour", "Hour", 0, 23),
    ("day_of_month", "DayOfMonth", 1, 31),
    ("month", "Month", 1, 12),
    ("year", "Year", MIN_YEAR, MAX_YEAR),
    ("day_of_week", "DayOfWeek", 0, 6),
)
_PREDEFINED = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = tuple(m.lower() for m in calendar.month_name[1:])
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class SpecError(ValueError):
    """The spec cannot be compiled; the message follows Temporal's wording."""


class NextTime(NamedTuple):
    """A time the spec matches (``nominal``) and when the action is due (``next``, with jitter)."""

    nominal: int
    next: float


# compiling


def canonical_spec(spec: ScheduleSpec) -> ScheduleSpec:
    """The spec in the form Temporal stores: only structured calendars and intervals.

    Raises:
        SpecError: A cron string, calendar, interval or time zone is invalid.
    """
    out = ScheduleSpec()
    out.CopyFrom(spec)
    out.ClearField("calendar")
    out.ClearField("exclude_calendar")
    out.ClearField("cron_string")
    for cal in spec.calendar:
        out.structured_calendar.append(_calendar_string(cal))
    for cal in spec.exclude_calendar:
        out.exclude_structured_calendar.append(_calendar_string(cal))
    cron_tz: str | None = None
    for text in spec.cron_string:
        structured, interval, tz = _cron_string(text)
        if cron_tz is not None and tz != cron_tz:
            raise SpecError("conflicting timezone names")
        cron_tz = tz
        if structured is not None:
            out.structured_calendar.append(structured)
        if interval is not None:
            out.interval.append(interval)
    if cron_tz:
        if (spec.timezone_name and spec.timezone_name != cron_tz) or spec.timezone_data:
            raise SpecError("conflicting timezone names")
        out.timezone_name = cron_tz
    for structured in out.structured_calendar:
        _check_calendar(structured)
    for structured in (*out.structured_calendar, *out.exclude_structured_calendar):
        _clean_ranges(structured)
    for interval in out.interval:
        _check_interval(interval)
    load_zone(out)
    return out


def load_zone(spec: ScheduleSpec) -> ZoneInfo:
    """The spec's time zone (UTC when unnamed)."""
    name = spec.timezone_name or "UTC"
    try:
        if spec.timezone_data:
            return ZoneInfo.from_file(io.BytesIO(spec.timezone_data), key=name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise SpecError(f"unknown time zone {name}") from None


def _cron_string(text: str) -> tuple[StructuredCalendarSpec | None, IntervalSpec | None, str]:
    """One cron string as Temporal reads it: ``[CRON_TZ=zone] fields [# comment]`` or ``@every``."""
    c = text.strip()
    tz = ""
    if c.startswith(("TZ=", "CRON_TZ=")):
        head, found, rest = c.partition(" ")
        if not found:
            raise SpecError("malformed expression")
        tz = head.partition("=")[2]
        c = rest.strip()
    if c.startswith("@every"):
        return None, _every(c), ""
    c, _, comment = c.partition("#")
    c = _PREDEFINED.get(c.strip(), c.strip())
    fields = c.split()
    if len(fields) == 5:
        second, fields, year = "0", fields, "*"
    elif len(fields) == 6:
        second, fields, year = "0", fields[:5], fields[5]
    elif len(fields) == 7:
        second, fields, year = fields[0], fields[1:6], fields[6]
    else:
        raise SpecError("CronString does not have 5-7 fields")
    minute, hour, day_of_month, month, day_of_week = fields
    structured = _compile_fields(
        text, second, minute, hour, day_of_month, month, day_of_week, year, comment.strip()
    )
    return structured, None, tz


def _calendar_string(cal: CalendarSpec) -> StructuredCalendarSpec:
    """A CalendarSpec (one cron-like expression per field), with Temporal's defaults."""
    return _compile_fields(
        str(cal).replace("\n", " "),
        cal.second or "0",
        cal.minute or "0",
        cal.hour or "0",
        cal.day_of_month or "*",
        cal.month or "*",
        cal.day_of_week or "*",
        cal.year or "*",
        cal.comment,
    )


def _compile_fields(
    source: str,
    second: str,
    minute: str,
    hour: str,
    day_of_month: str,
    month: str,
    day_of_week: str,
    year: str,
    comment: str,
) -> StructuredCalendarSpec:
    raw = (second, minute, hour, day_of_month, month, day_of_week, year)
    # Temporal reads plain values, ranges, steps and names; croniter's extensions
    # (L, W, ?, H, nth weekday) are refused there, so they are refused here too.
    if any("?" in f for f in raw) or re.search(r"[A-Za-z]", day_of_month):
        raise SpecError(f"cron expression {source!r}: L, W, ? and H are not supported")
    month = _names(month, _MONTHS, 3)
    day_of_week = _names(day_of_week, _DAYS, 2)
    expr = " ".join((second, minute, hour, day_of_month, month, day_of_week, year))
    # Imported here: croniter's imports are not allowed in temporalio's workflow
    # sandbox, which imports ablauf along with a user's workflow module.
    from croniter import CroniterError, croniter

    try:
        expanded, nth = croniter.expand(expr, second_at_beginning=True)
    except CroniterError as err:
        raise SpecError(f"cron expression {source!r}: {_first_line(err)}") from None
    if nth:
        raise SpecError(f"cron expression {source!r}: L, W, ? and H are not supported")
    # croniter's order: minute, hour, day of month, month, day of week, second, year.
    minutes, hours, days, months, weekdays, seconds, years = expanded
    for values in expanded:
        if any(isinstance(v, str) and v != "*" for v in values):
            raise SpecError(f"cron expression {source!r}: L, W, ? and H are not supported")
    return StructuredCalendarSpec(
        second=_ranges(seconds, 0, 59),
        minute=_ranges(minutes, 0, 59),
        hour=_ranges(hours, 0, 23),
        day_of_month=_ranges(days, 1, 31),
        month=_ranges(months, 1, 12),
        year=[] if years == ["*"] else _ranges(years, MIN_YEAR, MAX_YEAR),
        day_of_week=_ranges(weekdays, 0, 6),
        comment=comment,
    )


def _first_line(err: Exception) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def _names(field: str, names: Sequence[str], shortest: int) -> str:
    """Spells day and month names as croniter reads them (``monday`` -> ``mon``)."""

    def short(match: re.Match[str]) -> str:
        word = match.group(0).lower()
        if len(word) >= shortest:
            for name in names:
                if name.startswith(word):
                    return name[:3]
        return word

    return re.sub(r"[A-Za-z]+", short, field)


def _ranges(values: Sequence[int | str], low: int, high: int) -> list[Range]:
    """Expanded values as Temporal's ranges (``*/15`` -> ``0-59/15``)."""
    if list(values) == ["*"]:
        return [Range(start=low, end=high, step=1)]
    ints = sorted({int(v) for v in values})
    if len(ints) >= 3:
        step = ints[1] - ints[0]
        if step > 1 and all(b - a == step for a, b in itertools.pairwise(ints)):
            end = high if ints[-1] + step > high else ints[-1]
            return [Range(start=ints[0], end=end, step=step)]
    out: list[Range] = []
    for value in ints:
        if out and out[-1].end == value - 1 and out[-1].step == 1:
            out[-1].end = value
        else:
            out.append(Range(start=value, end=value, step=1))
    return out


def _every(text: str) -> IntervalSpec:
    _, found, rest = text.partition(" ")
    if not found:
        raise SpecError("malformed expression")
    every, _, phase = rest.strip().partition("/")
    spec = IntervalSpec(interval=_duration(every))
    if phase:
        spec.phase.CopyFrom(_duration(phase))
    return spec


def _duration(text: str) -> Duration:
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise SpecError(f"invalid duration {text!r}")
    out = Duration()
    out.FromNanoseconds(round(sum(int(n) * _UNITS[u] for n, u in parts) * 1e9))
    return out


def _check_calendar(cal: StructuredCalendarSpec) -> None:
    errors: list[str] = []
    for field, name, low, high in _FIELDS:
        for r in getattr(cal, field):
            if not low <= r.start <= high:
                errors.append(f"{name} Start is not in range [{low}-{high}]")
            if r.end != 0 and (r.end < r.start or r.end > high):
                errors.append(f"{name} End is before Start or not in range [{low}-{high}]")
            if r.step < 0:
                errors.append(f"{name} has invalid Step")
    if errors:
        raise SpecError("invalid calendar spec: " + ", ".join(errors))


def _clean_ranges(cal: StructuredCalendarSpec) -> None:
    for field, *_ in _FIELDS:
        for r in getattr(cal, field):
            if r.end < r.start:
                r.end = r.start
            if r.step == 0:
                r.step = 1


def _check_interval(interval: IntervalSpec) -> None:
    every = interval.interval.ToTimedelta()
    phase = interval.phase.ToTimedelta()
    if every < timedelta(seconds=1):
        raise SpecError("interval is too small")
    if phase < timedelta(0):
        raise SpecError("phase is negative")
    if phase >= every:
        raise SpecError("phase cannot be greater than Interval")


# evaluating


def _values(ranges: Sequence[Range], low: int, high: int) -> list[int]:
    out: set[int] = set()
    for r in ranges:
        end = max(r.end, r.start)
        out.update(v for v in range(r.start, end + 1, r.step or 1) if low <= v <= high)
    return sorted(out)


def _wall(ts: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts, tz).replace(tzinfo=None)


def _offset(ts: float, tz: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(ts, tz).utcoffset()


class _Calendar:
    """One structured calendar, matched on wall-clock time in a time zone."""

    def __init__(self, cal: StructuredCalendarSpec, tz: ZoneInfo) -> None:
        self.tz = tz
        self.seconds = _values(cal.second, 0, 59)
        self.minutes = _values(cal.minute, 0, 59)
        self.hours = _values(cal.hour, 0, 23)
        self.days = _values(cal.day_of_month, 1, 31)
        self.months = _values(cal.month, 1, 12)
        weekdays = set(_values(cal.day_of_week, 0, 7))
        if 7 in weekdays:  # 7 is Sunday too
            weekdays.add(0)
        self.weekdays = frozenset(weekdays)
        self.years = frozenset(_values(cal.year, 0, 9999)) if len(cal.year) else None

    def matches(self, ts: int) -> bool:
        w = _wall(ts, self.tz)
        return (
            (self.years is None or w.year in self.years)
            and w.month in self.months
            and w.day in self.days
            and (w.weekday() + 1) % 7 in self.weekdays
            and w.hour in self.hours
            and w.minute in self.minutes
            and w.second in self.seconds
        )

    def next_after(self, ts: int) -> int | None:
        """The first matching time after ``ts`` (epoch seconds), or None before 2101."""
        tz = self.tz
        calm = _offset(ts - 10800, tz) == _offset(ts + 10800, tz)
        wall = _wall(ts, tz)
        start = wall + timedelta(seconds=1) if calm else wall - _DST_MARGIN
        best: int | None = None
        horizon: datetime | None = None
        for w in self._walls_from(start):
            if horizon is not None and w > horizon:
                break
            for instant in self._instants(w):
                if instant > ts and (best is None or instant < best):
                    best = instant
            if best is not None and horizon is None:
                steady = _offset(best - 10800, tz) == _offset(best + 10800, tz)
                horizon = w if steady else w + _DST_MARGIN
        return best

    def _instants(self, w: datetime) -> list[int]:
        """The times at which the wall clock shows ``w``: none in a DST gap, two in a repeat."""
        out: list[int] = []
        for fold in (0, 1):
            instant = int(w.replace(tzinfo=self.tz, fold=fold).timestamp())
            if instant not in out and _wall(instant, self.tz) == w:
                out.append(instant)
        return sorted(out)

    def _walls_from(self, start: datetime) -> Iterator[datetime]:
        """Matching wall-clock times from ``start`` on, in wall-clock order."""
        if not (self.seconds and self.minutes and self.hours and self.days and self.months):
            return
        for y in range(max(start.year, MIN_YEAR), MAX_YEAR + 1):
            if self.years is not None and y not in self.years:
                continue
            first_y = y == start.year
            for mo in self.months[bisect.bisect_left(self.months, start.month) if first_y else 0 :]:
                first_mo = first_y and mo == start.month
                last_day = calendar.monthrange(y, mo)[1]
                for d in self.days[bisect.bisect_left(self.days, start.day) if first_mo else 0 :]:
                    if d > last_day:
                        break
                    if (calendar.weekday(y, mo, d) + 1) % 7 not in self.weekdays:
                        continue
                    first_d = first_mo and d == start.day
                    lo = bisect.bisect_left(self.hours, start.hour) if first_d else 0
                    for h in self.hours[lo:]:
                        first_h = first_d and h == start.hour
                        lo = bisect.bisect_left(self.minutes, start.minute) if first_h else 0
                        for mi in self.minutes[lo:]:
                            first_mi = first_h and mi == start.minute
                            lo = bisect.bisect_left(self.seconds, start.second) if first_mi else 0
                            for s in self.seconds[lo:]:
                                yield datetime(y, mo, d, h, mi, s)


class CompiledSpec:
    """A canonical spec, ready to answer "when next?"."""

    def __init__(self, spec: ScheduleSpec, jitter_seed: str) -> None:
        self.tz = load_zone(spec)
        self.calendars = [_Calendar(c, self.tz) for c in spec.structured_calendar]
        self.excludes = [_Calendar(c, self.tz) for c in spec.exclude_structured_calendar]
        # Temporal counts intervals in whole seconds.
        self.intervals = [
            (max(1, int(i.interval.ToTimedelta().total_seconds())), int(i.phase.seconds))
            for i in spec.interval
        ]
        self.start = spec.start_time.ToNanoseconds() / 1e9 if spec.HasField("start_time") else None
        self.end = spec.end_time.ToNanoseconds() / 1e9 if spec.HasField("end_time") else None
        self.jitter_ms = spec.jitter.ToMilliseconds() if spec.HasField("jitter") else 0
        self.seed = jitter_seed

    def next_time(self, after: float) -> NextTime | None:
        """The first time after ``after`` (epoch seconds), or None if there is none."""
        t = math.floor(after)
        if self.start is not None and after < self.start:
            t = math.floor(self.start) - 1
        for _ in range(_SEARCH_LIMIT):
            nominal = self._raw_next(t)
            if nominal is None or (self.end is not None and nominal > self.end):
                return None
            if not any(cal.matches(nominal) for cal in self.excludes):
                break
            t = nominal
        else:
            return None
        return NextTime(nominal, nominal + self._jitter(nominal))

    def times(self, after: float, count: int, until: float | None = None) -> list[NextTime]:
        """Up to ``count`` times after ``after`` (and not after ``until``)."""
        out: list[NextTime] = []
        while len(out) < count:
            nxt = self.next_time(after)
            if nxt is None or (until is not None and nxt.next > until):
                break
            out.append(nxt)
            after = nxt.next
        return out

    def _raw_next(self, t: int) -> int | None:
        best: int | None = None
        for cal in self.calendars:
            nxt = cal.next_after(t)
            if nxt is not None and (best is None or nxt < best):
                best = nxt
        for every, phase in self.intervals:
            nxt = ((t - phase) // every + 1) * every + phase
            if best is None or nxt < best:
                best = nxt
        return best

    def _jitter(self, nominal: int) -> float:
        limit = self.jitter_ms
        if limit <= 0:
            return 0.0
        following = self._raw_next(nominal)
        if following is not None:
            limit = min(limit, (following - nominal) * 1000)
        digest = hashlib.blake2b(f"{self.seed}|{nominal}".encode(), digest_size=4).digest()
        return ((int.from_bytes(digest, "big") * limit) >> 32) / 1000
