"""Schedule specs: cron strings compiled as Temporal compiles them, times as croniter reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.schedule.v1 import (
    CalendarSpec,
    IntervalSpec,
    Range,
    ScheduleSpec,
    StructuredCalendarSpec,
)

from ablauf.engine.schedule_spec import CompiledSpec, SpecError, canonical_spec

START = datetime(2026, 1, 1, tzinfo=UTC)


def compiled(*crons: str, tz: str = "", **fields: object) -> CompiledSpec:
    spec = ScheduleSpec(cron_string=list(crons), timezone_name=tz, **fields)  # type: ignore[arg-type]
    return CompiledSpec(canonical_spec(spec), "seed")


def times(spec: CompiledSpec, count: int, start: datetime = START) -> list[datetime]:
    return [datetime.fromtimestamp(t.nominal, UTC) for t in spec.times(start.timestamp(), count)]


def ranges(cal: StructuredCalendarSpec, field: str) -> list[tuple[int, int, int]]:
    return [(r.start, r.end, r.step) for r in getattr(cal, field)]


EXPRESSIONS = [
    "* * * * *",
    "0 0 * * *",
    "0 9 * * *",
    "0 12 * * MON-FRI",
    "0 8 * * MON",
    "0 0 1 * *",
    "*/15 * * * *",
    "5/20 1-5 * jan,jul *",
    "30 2 29 2 *",
    "0 9 * * sat,sun",
]
# In a DST gap croniter moves the time while Temporal skips it (tested below), so
# expressions that land in a gap are compared in UTC only.
CASES = [
    (expr, tz)
    for expr in EXPRESSIONS
    for tz in ("UTC", "Europe/Berlin", "America/New_York")
    if tz == "UTC" or not expr.startswith("30 2")
]


@pytest.mark.parametrize(("expr", "tz"), CASES)
def test_times_match_croniter(expr: str, tz: str) -> None:
    zone = ZoneInfo(tz)
    it = croniter(expr, START.astimezone(zone), day_or=False)
    expected = [it.get_next(datetime).astimezone(UTC) for _ in range(300)]
    # Temporal's calendars end with the year 2100.
    expected = [t for t in expected if t.year <= 2100]
    assert times(compiled(expr, tz=tz), 300) == expected


def test_cron_strings_compile_to_structured_calendars() -> None:
    spec = canonical_spec(
        ScheduleSpec(cron_string=["0 9 * * MON-FRI", "*/15 * * * *", "0 0 * * 0-7 # all week"])
    )
    assert list(spec.cron_string) == []
    weekdays, quarters, week = spec.structured_calendar
    assert ranges(weekdays, "second") == [(0, 0, 1)]
    assert ranges(weekdays, "hour") == [(9, 9, 1)]
    assert ranges(weekdays, "day_of_month") == [(1, 31, 1)]
    assert ranges(weekdays, "month") == [(1, 12, 1)]
    assert ranges(weekdays, "year") == []
    assert ranges(weekdays, "day_of_week") == [(1, 5, 1)]
    assert ranges(quarters, "minute") == [(0, 59, 15)]
    assert ranges(week, "day_of_week") == [(0, 6, 1)]
    assert week.comment == "all week"


def test_cron_forms_temporal_accepts() -> None:
    seven = canonical_spec(ScheduleSpec(cron_string=["30 0 9 * * * 2030"])).structured_calendar[0]
    assert (ranges(seven, "second"), ranges(seven, "year")) == ([(30, 30, 1)], [(2030, 2030, 1)])
    six = canonical_spec(ScheduleSpec(cron_string=["0 9 * * * 2031"])).structured_calendar[0]
    assert ranges(six, "year") == [(2031, 2031, 1)]
    daily = canonical_spec(ScheduleSpec(cron_string=["@daily"])).structured_calendar[0]
    assert ranges(daily, "hour") == [(0, 0, 1)]
    names = canonical_spec(ScheduleSpec(cron_string=["0 9 * January-march sunday"]))
    assert ranges(names.structured_calendar[0], "month") == [(1, 3, 1)]
    assert ranges(names.structured_calendar[0], "day_of_week") == [(0, 0, 1)]
    lists = canonical_spec(ScheduleSpec(cron_string=["0 9 1,15 * *"])).structured_calendar[0]
    assert ranges(lists, "day_of_month") == [(1, 1, 1), (15, 15, 1)]
    every = canonical_spec(ScheduleSpec(cron_string=["@every 90m/5m"]))
    assert list(every.structured_calendar) == []
    assert every.interval[0].interval.seconds == 5400
    assert every.interval[0].phase.seconds == 300
    zoned = canonical_spec(ScheduleSpec(cron_string=["CRON_TZ=Asia/Tokyo 0 9 * * *"]))
    assert zoned.timezone_name == "Asia/Tokyo"
    calendar = canonical_spec(ScheduleSpec(calendar=[CalendarSpec(hour="9-17/4", day_of_week="1")]))
    assert ranges(calendar.structured_calendar[0], "hour") == [(9, 17, 4)]
    assert ranges(calendar.structured_calendar[0], "minute") == [(0, 0, 1)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ScheduleSpec(cron_string=["0 25 * * *"]), "out of range"),
        (ScheduleSpec(cron_string=["0 9 * *"]), "5-7 fields"),
        (ScheduleSpec(cron_string=["0 0 L * *"]), "not supported"),
        (ScheduleSpec(cron_string=["0 0 15W * *"]), "not supported"),
        (ScheduleSpec(cron_string=["0 0 ? * *"]), "not supported"),
        (ScheduleSpec(cron_string=["H 0 * * *"]), "hash"),
        (ScheduleSpec(cron_string=["*/0 * * * *"]), "step"),
        (ScheduleSpec(cron_string=["@every soon"]), "invalid duration"),
        (ScheduleSpec(timezone_name="Mars/Olympus_Mons"), "unknown time zone Mars/Olympus_Mons"),
        (ScheduleSpec(timezone_name="../../etc/passwd"), "unknown time zone"),
        (
            ScheduleSpec(cron_string=["CRON_TZ=Asia/Tokyo 0 9 * * *"], timezone_name="UTC"),
            "conflicting timezone names",
        ),
        (ScheduleSpec(interval=[IntervalSpec(interval=Duration())]), "interval is too small"),
        (
            ScheduleSpec(
                interval=[IntervalSpec(interval=Duration(seconds=60), phase=Duration(seconds=60))]
            ),
            "phase cannot be greater than Interval",
        ),
        (
            ScheduleSpec(structured_calendar=[StructuredCalendarSpec(hour=[Range(start=24)])]),
            "Hour Start is not in range [0-23]",
        ),
    ],
)
def test_bad_specs(spec: ScheduleSpec, message: str) -> None:
    with pytest.raises(SpecError) as err:
        canonical_spec(spec)
    assert message in str(err.value)


def test_dst_gap_is_skipped_and_repeated_hour_taken_twice() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spring = times(compiled("30 2 * * *", tz="Europe/Berlin"), 3, datetime(2026, 3, 28, tzinfo=UTC))
    assert [t.astimezone(berlin).day for t in spring] == [28, 30, 31]  # no 2:30 on the 29th
    autumn = times(
        compiled("30 2 * * *", tz="Europe/Berlin"), 4, datetime(2026, 10, 24, tzinfo=UTC)
    )
    assert [t.astimezone(berlin).isoformat() for t in autumn] == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_intervals_skip_start_end() -> None:
    spec = CompiledSpec(
        canonical_spec(
            ScheduleSpec(
                interval=[
                    IntervalSpec(interval=Duration(seconds=3600), phase=Duration(seconds=300))
                ],
                exclude_structured_calendar=[
                    StructuredCalendarSpec(
                        second=[Range(start=0)],
                        minute=[Range(start=5)],
                        hour=[Range(start=2)],
                        day_of_month=[Range(start=1, end=31)],
                        month=[Range(start=1, end=12)],
                        day_of_week=[Range(start=0, end=6)],
                    )
                ],
                start_time=Timestamp(seconds=int((START + timedelta(hours=1)).timestamp())),
                end_time=Timestamp(seconds=int((START + timedelta(hours=5)).timestamp())),
            )
        ),
        "seed",
    )
    got = [(t.hour, t.minute) for t in times(spec, 10)]
    assert got == [(1, 5), (3, 5), (4, 5)]  # 0:05 before start, 2:05 skipped, 5:05 after end


def test_jitter_is_deterministic_and_bounded() -> None:
    spec = compiled("*/10 * * * *", jitter=Duration(seconds=120))
    first = spec.times(START.timestamp(), 50)
    again = spec.times(START.timestamp(), 50)
    assert first == again
    delays = [t.next - t.nominal for t in first]
    assert all(0 <= d < 120 for d in delays)
    assert len(set(delays)) > 10
    capped = compiled("* * * * *", jitter=Duration(seconds=3600))
    for t in capped.times(START.timestamp(), 50):
        assert t.next - t.nominal < 60  # never past the following time


def test_a_spec_that_never_matches_ends() -> None:
    assert times(compiled("0 0 30 2 *"), 5) == []
    everything = StructuredCalendarSpec(
        second=[Range(start=0, end=59)],
        minute=[Range(start=0, end=59)],
        hour=[Range(start=0, end=23)],
        day_of_month=[Range(start=1, end=31)],
        month=[Range(start=1, end=12)],
        day_of_week=[Range(start=0, end=6)],
    )
    excluded = compiled("* * * * *", exclude_structured_calendar=[everything])
    assert times(excluded, 1) == []
