"""Start options that postpone runs: ``start_delay`` and ``cron_schedule``.

Checked against the dev server: a start delay becomes the started event's
``first_workflow_task_backoff``; signals wait with the run, while a cancel
request or a signal-with-start ends the wait. A cron run waits for its cron
time, and whatever its outcome the next run follows at the next one, until
the chain is cancelled or terminated.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import ContinueAsNewInitiator, EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError
from temporalio.service import RPCError, RPCStatusCode

from ablauf import Client, Worker

E = EventType
CRON = ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
BAD_CHILD = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_CHILD_EXECUTION_ATTRIBUTES


@workflow.defn
class Echo:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self, value: str) -> dict[str, Any]:
        last = None
        if workflow.has_last_completion_result():
            last = workflow.get_last_completion_result()
        return {
            "value": value,
            "cron": workflow.info().cron_schedule,
            "last": last,
            "signals": self.signals,
        }

    @workflow.signal
    def sig(self, value: str) -> None:
        self.signals.append(value)


@workflow.defn
class Fails:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("boom")


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(3600)


@workflow.defn
class CronParent:
    @workflow.run
    async def run(self, cron: str) -> str:
        child = await workflow.start_child_workflow(
            Echo.run, "child", id=f"{workflow.info().workflow_id}-child", cron_schedule=cron
        )
        return child.first_execution_run_id or ""


def kinds(events: list[HistoryEvent]) -> list[str]:
    return [E.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]


async def events_of(client: Client, workflow_id: str, run_id: str) -> list[HistoryEvent]:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    return list((await handle.fetch_history()).events)


async def closed_run(client: Client, workflow_id: str, run_id: str) -> list[HistoryEvent]:
    """The history of a run once it has closed (waiting up to 10 s)."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    for _ in range(100):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return list((await handle.fetch_history()).events)
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not close")


def next_run_id(closed: HistoryEvent) -> str:
    for attrs in (
        closed.workflow_execution_completed_event_attributes,
        closed.workflow_execution_failed_event_attributes,
    ):
        if attrs.new_execution_run_id:
            return attrs.new_execution_run_id
    raise AssertionError(f"no next run after {E.Name(closed.event_type)}")


# start_delay


async def test_start_delay_postpones_the_first_workflow_task(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Echo]):
        began = time.monotonic()
        handle = await client.start_workflow(
            Echo.run,
            "a",
            id=f"delay-{suffix}",
            task_queue=task_queue,
            start_delay=timedelta(seconds=2),
        )
        desc = await handle.describe()
        assert desc.execution_time is not None and desc.start_time is not None
        assert desc.execution_time - desc.start_time == timedelta(seconds=2)
        assert (await handle.result())["value"] == "a"
        assert time.monotonic() - began >= 1.8
    events = list((await handle.fetch_history()).events)
    attrs = events[0].workflow_execution_started_event_attributes
    assert attrs.first_workflow_task_backoff.ToTimedelta() == timedelta(seconds=2)
    assert not attrs.cron_schedule
    assert kinds(events)[:2] == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]
    # The first task is scheduled when the delay ends.
    waited = events[1].event_time.ToDatetime() - events[0].event_time.ToDatetime()
    assert waited >= timedelta(seconds=1.9)


async def test_signals_wait_with_a_delayed_run(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Echo]):
        began = time.monotonic()
        handle = await client.start_workflow(
            Echo.run,
            "a",
            id=f"delay-sws-{suffix}",
            task_queue=task_queue,
            start_delay=timedelta(seconds=2),
            start_signal="sig",
            start_signal_args=["with start"],
        )
        await asyncio.sleep(0.3)
        await handle.signal(Echo.sig, "plain")
        assert (await handle.result())["signals"] == ["with start", "plain"]
        assert time.monotonic() - began >= 1.8
    assert kinds(list((await handle.fetch_history()).events))[:4] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_EXECUTION_SIGNALED",
        "WORKFLOW_EXECUTION_SIGNALED",
        "WORKFLOW_TASK_SCHEDULED",
    ]


async def test_signal_with_start_to_a_delayed_run_ends_the_delay(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Echo]):
        began = time.monotonic()
        handle = await client.start_workflow(
            Echo.run,
            "a",
            id=f"delay-cut-{suffix}",
            task_queue=task_queue,
            start_delay=timedelta(seconds=30),
        )
        await client.start_workflow(
            Echo.run,
            "a",
            id=f"delay-cut-{suffix}",
            task_queue=task_queue,
            start_delay=timedelta(seconds=30),
            start_signal="sig",
            start_signal_args=["now"],
        )
        assert (await handle.result())["signals"] == ["now"]
        assert time.monotonic() - began < 10


async def test_cancel_ends_the_delay(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Sleeper]):
        began = time.monotonic()
        handle = await client.start_workflow(
            Sleeper.run,
            id=f"delay-cancel-{suffix}",
            task_queue=task_queue,
            start_delay=timedelta(seconds=30),
        )
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert isinstance(info.value.cause, CancelledError)
        assert time.monotonic() - began < 10


async def test_bad_delays_and_cron_schedules_are_refused(
    client: Client, task_queue: str, suffix: str
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"cron_schedule": "@every 2s", "start_delay": timedelta(seconds=3)},
            "CronSchedule and WorkflowStartDelay may not be used together.",
        ),
        ({"start_delay": timedelta(seconds=-1)}, "An invalid WorkflowStartDelaySeconds"),
        ({"cron_schedule": "bogus"}, "invalid CronSchedule."),
        ({"cron_schedule": "* * * * * *"}, "invalid CronSchedule."),
        ({"cron_schedule": "0 9 31 2 *"}, "no time can be found to satisfy the schedule"),
    ]
    for n, (options, message) in enumerate(cases):
        with pytest.raises(RPCError) as info:
            await client.start_workflow(
                Echo.run, "a", id=f"bad-{n}-{suffix}", task_queue=task_queue, **options
            )
        assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert message in info.value.message
        # Nothing was written.
        with pytest.raises(RPCError):
            await client.get_workflow_handle(f"bad-{n}-{suffix}").describe()


# cron_schedule


async def test_cron_runs_follow_each_other_and_carry_results(
    client: Client, task_queue: str, suffix: str
) -> None:
    workflow_id = f"cron-{suffix}"
    async with Worker(client, task_queue=task_queue, workflows=[Echo]):
        handle = await client.start_workflow(
            Echo.run, "a", id=workflow_id, task_queue=task_queue, cron_schedule="@every 2s"
        )
        first_run = handle.first_execution_run_id
        assert first_run is not None
        desc = await handle.describe()
        assert desc.execution_time is not None and desc.start_time is not None
        assert desc.execution_time - desc.start_time == timedelta(seconds=2)

        first = await closed_run(client, workflow_id, first_run)
        started = first[0].workflow_execution_started_event_attributes
        assert started.cron_schedule == "@every 2s"
        assert started.initiator == CRON
        assert started.first_workflow_task_backoff.ToTimedelta() == timedelta(seconds=2)
        assert first[-1].event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
        second_run = next_run_id(first[-1])

        second = await closed_run(client, workflow_id, second_run)
        started = second[0].workflow_execution_started_event_attributes
        assert started.continued_execution_run_id == first_run
        assert started.first_execution_run_id == first_run
        assert started.initiator == CRON
        # The next time of the schedule less the time the first run took, in
        # whole seconds up: 2 s, or 1 s when the first run took over a second.
        backoff = started.first_workflow_task_backoff.ToTimedelta()
        assert timedelta(seconds=1) <= backoff <= timedelta(seconds=2)
        assert started.last_completion_result == (
            first[-1].workflow_execution_completed_event_attributes.result
        )
        result = client.data_converter.payload_converter.from_payloads(
            second[-1].workflow_execution_completed_event_attributes.result.payloads
        )[0]
        assert result["cron"] == "@every 2s"
        assert result["last"] == {"value": "a", "cron": "@every 2s", "last": None, "signals": []}

        # result() follows the chain; terminate ends it.
        waiting = asyncio.create_task(handle.result())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await handle.terminate("enough")
        with pytest.raises(WorkflowFailureError) as info:
            await waiting
        assert isinstance(info.value.cause, TerminatedError)
        await asyncio.sleep(2.5)
        desc = await client.get_workflow_handle(workflow_id).describe()
        assert desc.status == WorkflowExecutionStatus.TERMINATED


async def test_failed_cron_run_is_followed_by_the_next(
    client: Client, task_queue: str, suffix: str
) -> None:
    workflow_id = f"cron-fails-{suffix}"
    async with Worker(client, task_queue=task_queue, workflows=[Fails]):
        handle = await client.start_workflow(
            Fails.run, id=workflow_id, task_queue=task_queue, cron_schedule="@every 2s"
        )
        assert handle.first_execution_run_id is not None
        first = await closed_run(client, workflow_id, handle.first_execution_run_id)
        assert first[-1].event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
        following = await events_of(client, workflow_id, next_run_id(first[-1]))
        started = following[0].workflow_execution_started_event_attributes
        assert started.initiator == CRON
        assert started.continued_failure.message == "boom"
        await handle.terminate()


async def test_cancel_ends_the_cron_chain(client: Client, task_queue: str, suffix: str) -> None:
    workflow_id = f"cron-cancel-{suffix}"
    async with Worker(client, task_queue=task_queue, workflows=[Sleeper]):
        handle = await client.start_workflow(
            Sleeper.run, id=workflow_id, task_queue=task_queue, cron_schedule="@every 1s"
        )
        # Wait until the first run sleeps.
        for _ in range(100):
            if (await handle.describe()).raw_description.workflow_execution_info.history_length > 4:
                break
            await asyncio.sleep(0.1)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert isinstance(info.value.cause, CancelledError)
        await asyncio.sleep(1.5)
        desc = await client.get_workflow_handle(workflow_id).describe()
        assert desc.run_id == handle.first_execution_run_id
        assert desc.status == WorkflowExecutionStatus.CANCELED


async def test_workflow_info_shows_the_cron_schedule_of_a_child(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[CronParent, Echo]):
        handle = await client.start_workflow(
            CronParent.run, "@every 2s", id=f"cron-parent-{suffix}", task_queue=task_queue
        )
        child_run = await handle.result()
    events = await events_of(client, f"cron-parent-{suffix}-child", child_run)
    started = events[0].workflow_execution_started_event_attributes
    assert started.cron_schedule == "@every 2s"
    assert started.initiator == CRON
    assert started.first_workflow_task_backoff.ToTimedelta() == timedelta(seconds=2)


async def test_a_child_with_a_bad_cron_schedule_fails_the_workflow_task(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[CronParent, Echo]):
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            CronParent.run, "bogus", id=f"cron-bad-child-{suffix}", task_queue=task_queue
        )
        failed = None
        for _ in range(100):
            events = list((await handle.fetch_history()).events)
            failed = next(
                (e for e in events if e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_FAILED), None
            )
            if failed is not None:
                break
            await asyncio.sleep(0.1)
        assert failed is not None
        attrs = failed.workflow_task_failed_event_attributes
        assert attrs.cause == BAD_CHILD
        assert "invalid CronSchedule" in attrs.failure.message
        await handle.terminate()
