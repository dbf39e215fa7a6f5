"""The in-memory deadlines of attempts this process runs."""

from __future__ import annotations

from ablauf.engine.local_timers import LocalTimers
from ablauf.engine.timers import TimerKind

STC, HB = TimerKind.ACTIVITY_START_TO_CLOSE, TimerKind.ACTIVITY_HEARTBEAT


def test_due_timers_come_earliest_first_and_stay_armed_until_taken() -> None:
    timers = LocalTimers()
    timers.add_many([("run", STC, "5", 1, 30.0)])
    timers.add_many([("run", HB, "5", 1, 10.0)])
    timers.add_many([("other", STC, "7", 2, 20.0)])
    assert timers.next_at() == 10.0
    assert timers.due(5.0, 10) == []
    due = timers.due(25.0, 10)
    assert [(t.run_id, t.kind, t.fire_at) for t in due] == [("run", HB, 10.0), ("other", STC, 20.0)]
    assert timers.due(25.0, 1) == due[:1]
    assert timers.take(due[0]) and not timers.take(due[0])
    assert not timers.armed(due[0]) and timers.armed(due[1])
    assert timers.next_at() == 20.0


def test_dropping_an_activity_disarms_all_its_timers() -> None:
    timers = LocalTimers()
    timers.add_many([("run", STC, "5", 1, 30.0)])
    timers.add_many([("run", HB, "5", 1, 10.0)])
    timers.add_many([("run", STC, "6", 1, 40.0)])
    timers.drop_many([("run", "5")])
    timers.drop_many([("run", "5")])
    assert len(timers) == 1
    assert timers.next_at() == 40.0
    assert [t.ref for t in timers.due(100.0, 10)] == ["6"]


def test_many_finished_attempts_leave_nothing_behind() -> None:
    timers = LocalTimers()
    for i in range(5000):
        timers.add_many([("run", STC, str(i), 1, 1000.0 + i)])
        timers.drop_many([("run", str(i))])
    assert len(timers) == 0
    assert timers.next_at() is None
    # Stale heap entries are compacted away, not kept until their deadline.
    assert len(timers._heap) <= 2048


def test_timers_armed_together_report_the_earliest() -> None:
    timers = LocalTimers()
    earliest = timers.add_many([("run", STC, "5", 1, 30.0), ("run", HB, "5", 1, 12.0)])
    assert earliest == 12.0 == timers.next_at()
    assert len(timers) == 2


def test_activities_dropped_together_lose_all_their_timers() -> None:
    timers = LocalTimers()
    timers.add_many(
        [("run", STC, "5", 1, 30.0), ("run", HB, "5", 1, 12.0), ("b", STC, "5", 1, 9.0)]
    )
    timers.drop_many([("run", "5"), ("run", "9")])
    assert [(t.run_id, t.ref) for t in timers.due(100.0, 10)] == [("b", "5")]
