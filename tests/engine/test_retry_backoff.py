"""Retries go on at the maximum interval; a timer that fails to fire waits to be tried again."""

from __future__ import annotations

import logging

import pytest
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure

from ablauf.engine import activities, executions
from ablauf.engine.engine import Engine
from ablauf.engine.timers import TimerKind
from ablauf.history.tasks import ActivityCompleted, ActivityFailed
from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK

from .conftest import ManualClock, start_request
from .test_transitions import schedule_activity, take, types

BOOM = Failure(message="boom", application_failure_info=ApplicationFailureInfo(type="Boom"))


async def start_activity(engine: Engine) -> str:
    """Starts a run whose first task schedules activity "1" with the default retry policy."""
    run_id = executions.start(engine, start_request())[0]
    ref = await take(engine, WORKFLOW_TASK)
    engine.workflow_tasks.read(ref, 0)
    engine.workflow_tasks.complete(ref, [schedule_activity()])
    return run_id


async def test_default_policy_retries_past_attempt_1024_at_the_maximum_interval(
    local: Engine, clock: ManualClock
) -> None:
    run_id = await start_activity(local)
    act_ref = await take(local, ACTIVITY_TASK)
    # 2 ** 1024 overflows a float: attempts past 1,025 used to end in OverflowError.
    while act_ref.attempt < 1_030:
        activities.record_outcome(local, act_ref, ActivityFailed(BOOM), None)
        # The default maximum interval: 100 x the 1 s initial interval.
        clock.advance(100.0)
        local.service.tick()
        act_ref = await take(local, ACTIVITY_TASK)
    # The attempt times out (start-to-close 30 s): that is retried too, 100 s later.
    clock.advance(30.0)
    local.service.tick()
    clock.advance(99.0)
    local.service.tick()
    assert len(local.matching.local(ACTIVITY_TASK, "q") or []) == 0
    clock.advance(1.0)
    local.service.tick()
    act_ref = await take(local, ACTIVITY_TASK)
    assert act_ref.attempt == 1_031
    activities.record_outcome(local, act_ref, ActivityCompleted(None), None)
    assert types(local, run_id)[-3:] == [
        "ACTIVITY_TASK_STARTED",
        "ACTIVITY_TASK_COMPLETED",
        "WORKFLOW_TASK_SCHEDULED",
    ]
    started = local.history(run_id)[-3].activity_task_started_event_attributes
    assert started.attempt == 1_031


@pytest.mark.parametrize("kind", [TimerKind.ACTIVITY_RETRY, TimerKind.ACTIVITY_START_TO_CLOSE])
async def test_a_timer_that_fails_to_fire_is_tried_again_with_backoff(
    local: Engine,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: TimerKind,
) -> None:
    run_id = await start_activity(local)
    act_ref = await take(local, ACTIVITY_TASK)
    if kind == TimerKind.ACTIVITY_RETRY:
        # The retry timer is a row of the timers table, due 1 s after the failure.
        activities.record_outcome(local, act_ref, ActivityFailed(BOOM), None)
        clock.advance(1.0)
    else:
        # The start-to-close deadline of an attempt running here is held in memory.
        clock.advance(30.0)
    fire_timer = activities.fire_timer
    calls: list[int] = []

    def broken(tx: object, timer_kind: int, ref: str, attempt: int) -> None:
        calls.append(timer_kind)
        raise RuntimeError("handler bug")

    monkeypatch.setattr(activities, "fire_timer", broken)
    with caplog.at_level(logging.ERROR, logger="ablauf.engine.service"):
        for _ in range(100):
            local.service.tick()
        # Left due, the timer was fired (and logged) on every round.
        assert calls == [kind]
        assert len(caplog.records) == 1
        assert run_id in caplog.records[0].getMessage()
        next_at = min(
            t for t in (local.store.next_timer_at(), local.local_timers.next_at()) if t is not None
        )
        assert next_at == clock.now() + 1.0
        # Then 1 s, 2 s, 4 s, ... apart.
        clock.advance(1.0)
        local.service.tick()
        clock.advance(1.0)
        local.service.tick()
        assert calls == [kind, kind]
        clock.advance(1.0)
        local.service.tick()
        assert calls == [kind, kind, kind]
    # Once firing works again, the run goes on.
    monkeypatch.setattr(activities, "fire_timer", fire_timer)
    clock.advance(4.0)
    local.service.tick()
    if kind == TimerKind.ACTIVITY_START_TO_CLOSE:
        # The attempt timed out; its retry is due 1 s later.
        clock.advance(1.0)
        local.service.tick()
    act_ref = await take(local, ACTIVITY_TASK)
    assert act_ref.attempt == 2
    assert not local.service._fire_failures
