"""Timers, conditions and concurrency inside a workflow, as the history records them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ActivityError, ApplicationError

from ablauf import Client, Worker

T = EventType


@activity.defn
async def after(seconds: float, value: str) -> str:
    await asyncio.sleep(seconds)
    if value == "boom":
        raise ApplicationError("boom", non_retryable=True)
    return value


def call(seconds: float, value: str) -> Any:
    return workflow.execute_activity(
        after, args=[seconds, value], start_to_close_timeout=timedelta(seconds=10)
    )


@workflow.defn
class Clock:
    def __init__(self) -> None:
        self.flag = False

    @workflow.run
    async def run(self, kind: str) -> Any:
        start = workflow.now()

        def elapsed() -> float:
            return (workflow.now() - start).total_seconds()

        if kind == "condition_times_out":
            try:
                await workflow.wait_condition(lambda: self.flag, timeout=0.5)
            except TimeoutError as err:
                return [type(err).__name__, elapsed()]
        if kind == "condition_met_in_time":
            await workflow.wait_condition(lambda: self.flag, timeout=30)
            return "met"
        if kind == "condition_already_true":
            self.flag = True
            await workflow.wait_condition(lambda: self.flag, timeout=30)
            return "met"
        if kind == "gather":
            return await asyncio.gather(call(0.4, "slow"), call(0, "fast"), workflow.sleep(0.2))
        if kind == "gather_exceptions":
            results = await asyncio.gather(call(0.2, "ok"), call(0, "boom"), return_exceptions=True)
            return [r if isinstance(r, str) else type(r).__name__ for r in results]
        if kind == "gather_fails":
            try:
                await asyncio.gather(call(3, "ok"), call(0, "boom"))
            except ActivityError as err:
                return ["raised", type(err.cause).__name__, elapsed() < 3]
        if kind == "cancel_timer":
            timer = asyncio.create_task(workflow.sleep(3600))
            await workflow.sleep(0.1)
            timer.cancel()
            try:
                await timer
            except asyncio.CancelledError:
                return "cancelled"
        if kind == "cancel_timer_at_once":
            timer = asyncio.create_task(workflow.sleep(3600))
            await asyncio.sleep(0)  # the timer's task starts; no workflow task passes
            timer.cancel()
            try:
                await timer
            except asyncio.CancelledError:
                return "cancelled"
        if kind == "first_completed":
            slow = asyncio.create_task(workflow.sleep(30))
            fast = asyncio.create_task(call(0.1, "fast"))
            done, pending = await asyncio.wait([slow, fast], return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            return [[t.result() for t in done], len(pending), slow.cancelled() or slow in pending]
        if kind == "sleep":
            await workflow.sleep(1.5)
            return elapsed()
        if kind == "short_sleep":
            await workflow.sleep(0.1)
            return elapsed()
        if kind == "sleep_zero":
            await workflow.sleep(0)
            await asyncio.sleep(0)
            return elapsed()
        raise ApplicationError(f"unknown kind {kind}", non_retryable=True)

    @workflow.signal
    def set_flag(self) -> None:
        self.flag = True


async def run(client: Client, task_queue: str, kind: str, signal: bool = False) -> Any:
    async with Worker(client, task_queue=task_queue, workflows=[Clock], activities=[after]):
        handle = await client.start_workflow(
            Clock.run, kind, id=f"clock-{kind}-{task_queue}", task_queue=task_queue
        )
        if signal:
            while (await handle.describe()).history_length < 4:
                await asyncio.sleep(0.02)
            await handle.signal(Clock.set_flag)
        result = await handle.result()
    events = (await handle.fetch_history()).events
    return result, [e.event_type for e in events], events


def timers(types: list[Any]) -> list[Any]:
    kinds = (T.EVENT_TYPE_TIMER_STARTED, T.EVENT_TYPE_TIMER_FIRED, T.EVENT_TYPE_TIMER_CANCELED)
    return [t for t in types if t in kinds]


async def test_wait_condition_timeout_raises_timeout_error(client: Client, task_queue: str) -> None:
    (name, elapsed), types, _ = await run(client, task_queue, "condition_times_out")
    assert name == "TimeoutError"
    assert 0.5 <= elapsed < 2.0
    assert timers(types) == [T.EVENT_TYPE_TIMER_STARTED, T.EVENT_TYPE_TIMER_FIRED]


async def test_wait_condition_met_cancels_its_timer(client: Client, task_queue: str) -> None:
    result, types, _ = await run(client, task_queue, "condition_met_in_time", signal=True)
    assert result == "met"
    assert timers(types) == [T.EVENT_TYPE_TIMER_STARTED, T.EVENT_TYPE_TIMER_CANCELED]


async def test_wait_condition_already_true_starts_no_timer(client: Client, task_queue: str) -> None:
    result, types, _ = await run(client, task_queue, "condition_already_true")
    assert result == "met"
    assert timers(types) == []
    assert types.count(T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 1


async def test_gather_returns_results_in_argument_order(client: Client, task_queue: str) -> None:
    result, _, _ = await run(client, task_queue, "gather")
    assert result == ["slow", "fast", None]


async def test_gather_with_return_exceptions(client: Client, task_queue: str) -> None:
    result, _, _ = await run(client, task_queue, "gather_exceptions")
    assert result == ["ok", "ActivityError"]


async def test_gather_raises_the_first_failure_at_once(client: Client, task_queue: str) -> None:
    result, types, _ = await run(client, task_queue, "gather_fails")
    assert result == ["raised", "ApplicationError", True]
    # The other activity is not cancelled: it is left running when the workflow ends.
    assert types.count(T.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED) == 0


async def test_cancelled_timer_is_recorded_with_its_id(client: Client, task_queue: str) -> None:
    result, types, events = await run(client, task_queue, "cancel_timer")
    assert result == "cancelled"
    assert timers(types) == [
        T.EVENT_TYPE_TIMER_STARTED,
        T.EVENT_TYPE_TIMER_STARTED,
        T.EVENT_TYPE_TIMER_FIRED,
        T.EVENT_TYPE_TIMER_CANCELED,
    ]
    # The run's own 0.1 s timer is started first ("1"); the task's hour-long one is "2".
    started = {
        e.timer_started_event_attributes.timer_id: e.event_id
        for e in events
        if e.event_type == T.EVENT_TYPE_TIMER_STARTED
    }
    fired = next(e for e in events if e.event_type == T.EVENT_TYPE_TIMER_FIRED)
    canceled = next(e for e in events if e.event_type == T.EVENT_TYPE_TIMER_CANCELED)
    assert fired.timer_fired_event_attributes.timer_id == "1"
    assert canceled.timer_canceled_event_attributes.timer_id == "2"
    assert canceled.timer_canceled_event_attributes.started_event_id == started["2"]


async def test_timer_cancelled_in_the_task_that_started_it_leaves_no_trace(
    client: Client, task_queue: str
) -> None:
    result, types, _ = await run(client, task_queue, "cancel_timer_at_once")
    assert result == "cancelled"
    assert timers(types) == []


async def test_asyncio_wait_first_completed(client: Client, task_queue: str) -> None:
    result, types, _ = await run(client, task_queue, "first_completed")
    assert result == [["fast"], 1, True]
    assert timers(types) == [T.EVENT_TYPE_TIMER_STARTED, T.EVENT_TYPE_TIMER_CANCELED]


async def test_sleep_moves_the_workflow_clock(client: Client, task_queue: str) -> None:
    elapsed, types, _ = await run(client, task_queue, "sleep")
    assert 1.5 <= elapsed < 2.5
    assert timers(types) == [T.EVENT_TYPE_TIMER_STARTED, T.EVENT_TYPE_TIMER_FIRED]


async def test_a_sub_second_timer_fires_late_at_most_by_a_second(
    client: Client, task_queue: str
) -> None:
    # The dev server fires sub-second timers on its own tick: a 0.1 s timer mostly
    # after about 1 s, never before its time.
    elapsed, _, _ = await run(client, task_queue, "short_sleep")
    assert 0.1 <= elapsed < 2.0


async def test_sleep_zero_is_still_a_timer(client: Client, task_queue: str) -> None:
    # workflow.sleep(0) starts a server timer; asyncio.sleep(0) only yields.
    _, types, events = await run(client, task_queue, "sleep_zero")
    assert timers(types) == [T.EVENT_TYPE_TIMER_STARTED, T.EVENT_TYPE_TIMER_FIRED]
    started = next(e for e in events if e.event_type == T.EVENT_TYPE_TIMER_STARTED)
    assert started.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() == (
        timedelta(0)
    )
