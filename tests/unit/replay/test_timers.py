"""Durable timers: sleeps, cancellation, wait_condition timeouts and asyncio timeouts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

from .helpers import Run, kinds, value


def _result(run: Run) -> object:
    command = run.outcomes[-1].commands[-1]
    return value(command.complete_workflow_execution_command_attributes.result.payloads[0])


@workflow.defn
class Sleeps:
    @workflow.run
    async def run(self) -> float:
        start = workflow.time()
        await asyncio.sleep(1.5)
        await workflow.sleep(timedelta(minutes=2), summary="two minutes")
        await asyncio.sleep(0)  # no timer: asyncio just yields
        await asyncio.sleep(-1)  # no timer either
        await workflow.sleep(0)  # a zero-length timer, as the Python SDK makes
        return workflow.time() - start


def test_sleeps_become_timers_with_their_durations() -> None:
    run = Run(Sleeps)
    first = run.task()
    assert kinds(first.commands) == ["START_TIMER"]
    attrs = first.commands[0].start_timer_command_attributes
    assert (attrs.timer_id, attrs.start_to_fire_timeout.ToTimedelta()) == (
        "1",
        timedelta(seconds=1.5),
    )
    run.history.advance(1.5)
    run.fire_timer("1")
    second = run.task()
    attrs = second.commands[0].start_timer_command_attributes
    assert (attrs.timer_id, attrs.start_to_fire_timeout.ToTimedelta()) == (
        "2",
        timedelta(minutes=2),
    )
    assert value(second.commands[0].user_metadata.summary) == "two minutes"
    run.history.advance(120)
    run.fire_timer("2")
    third = run.task()
    attrs = third.commands[0].start_timer_command_attributes
    assert (attrs.timer_id, attrs.start_to_fire_timeout.ToNanoseconds()) == ("3", 0)
    run.fire_timer("3")
    run.task()
    # Workflow time is the WorkflowTaskStarted time of each task.
    assert 121.5 < _result(run) < 122  # type: ignore[operator]
    assert run.replay().failure is None
    run.close()


@workflow.defn
class NegativeSleep:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(-1)


def test_a_negative_workflow_sleep_fails_the_task() -> None:
    outcome = Run(NegativeSleep).task()
    assert outcome.failure is not None
    assert outcome.failure.message == "Attempting to schedule timer with negative delay"


@workflow.defn
class CancelsTimers:
    @workflow.run
    async def run(self) -> str:
        never_sent = asyncio.create_task(asyncio.sleep(50))
        await asyncio.sleep(0)
        never_sent.cancel()
        started = asyncio.create_task(workflow.sleep(100))
        await workflow.sleep(1)
        started.cancel()
        try:
            await started
        except asyncio.CancelledError:
            return "cancelled"
        return "fired"


def test_cancelling_a_task_that_sleeps_cancels_its_timer() -> None:
    run = Run(CancelsTimers)
    first = run.task()
    # Timer 1 was cancelled before its command was sent: dropped.
    assert kinds(first.commands) == ["START_TIMER", "START_TIMER"]
    # Timer 2 is the workflow's own 1 s sleep; the task's 100 s sleep starts after it.
    assert [c.start_timer_command_attributes.timer_id for c in first.commands] == ["2", "3"]
    run.fire_timer("2")
    second = run.task()
    assert kinds(second.commands) == ["CANCEL_TIMER", "COMPLETE_WORKFLOW_EXECUTION"]
    assert second.commands[0].cancel_timer_command_attributes.timer_id == "3"
    assert _result(run) == "cancelled"
    assert run.replay().failure is None
    run.close()


@workflow.defn
class WaitsWithTimeout:
    def __init__(self) -> None:
        self.ready = False

    @workflow.signal
    def go(self) -> None:
        self.ready = True

    @workflow.run
    async def run(self) -> list[str]:
        out = []
        try:
            await workflow.wait_condition(lambda: self.ready, timeout=10, timeout_summary="ten")
            out.append("ready")
        except TimeoutError:
            out.append("timed out")
        await workflow.wait_condition(lambda: self.ready, timeout=timedelta(seconds=30))
        out.append("ready")
        return out


def test_wait_condition_timeout_raises_timeout_error_and_cancels_its_timer() -> None:
    run = Run(WaitsWithTimeout)
    first = run.task()
    assert kinds(first.commands) == ["START_TIMER"]
    assert value(first.commands[0].user_metadata.summary) == "ten"
    run.fire_timer("1")
    second = run.task()
    assert kinds(second.commands) == ["START_TIMER"]
    assert not second.commands[0].HasField("user_metadata")
    run.signal("go")
    third = run.task()
    assert kinds(third.commands) == ["CANCEL_TIMER", "COMPLETE_WORKFLOW_EXECUTION"]
    assert _result(run) == ["timed out", "ready"]
    assert run.replay().failure is None
    run.close()


@workflow.defn
class AsyncioTimeouts:
    @workflow.run
    async def run(self) -> list[str]:
        out = []
        try:
            async with asyncio.timeout(2):
                await asyncio.Event().wait()
        except TimeoutError:
            out.append("timeout")
        try:
            await asyncio.wait_for(workflow.sleep(60), timeout=0.25)
        except TimeoutError:
            out.append("wait_for")
        done, pending = await workflow.wait(
            [asyncio.create_task(workflow.sleep(1)), asyncio.create_task(workflow.sleep(9))],
            return_when=asyncio.FIRST_COMPLETED,
        )
        out.append(f"{len(done)}/{len(pending)}")
        return out


def test_asyncio_timeouts_use_durable_timers() -> None:
    run = Run(AsyncioTimeouts)
    first = run.task()
    assert kinds(first.commands) == ["START_TIMER"]
    assert first.commands[0].start_timer_command_attributes.start_to_fire_timeout.ToTimedelta() == (
        timedelta(seconds=2)
    )
    run.fire_timer("1")
    second = run.task()
    # wait_for arms its timeout before the awaited coroutine first runs.
    durations = [
        c.start_timer_command_attributes.start_to_fire_timeout.ToTimedelta()
        for c in second.commands
    ]
    assert durations == [timedelta(milliseconds=250), timedelta(seconds=60)]
    run.fire_timer("2")
    third = run.task()
    assert kinds(third.commands) == ["CANCEL_TIMER", "START_TIMER", "START_TIMER"]
    run.fire_timer("4")
    fourth = run.task()
    assert kinds(fourth.commands) == ["COMPLETE_WORKFLOW_EXECUTION"]
    assert _result(run) == ["timeout", "wait_for", "1/1"]
    assert run.replay().failure is None
    run.close()
