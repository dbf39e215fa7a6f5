"""Workflow features through the client: signals, queries, timers, conditions, describe."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from ablauf import Client, Worker


@dataclasses.dataclass
class Order:
    order_id: str
    amount: float


@activity.defn
async def echo(value: str) -> str:
    return value


@workflow.defn
class Approval:
    def __init__(self) -> None:
        self.approved_by: str | None = None
        self.events: list[str] = []

    @workflow.run
    async def run(self, order: Order) -> dict[str, Any]:
        self.events.append(f"start {order.order_id}")
        try:
            await workflow.wait_condition(
                lambda: self.approved_by is not None, timeout=timedelta(seconds=1)
            )
        except TimeoutError:
            return {"status": "timeout", "events": self.events}
        first, second = await asyncio.gather(
            workflow.execute_activity(echo, "one", start_to_close_timeout=timedelta(seconds=5)),
            workflow.execute_activity(echo, "two", start_to_close_timeout=timedelta(seconds=5)),
        )
        return {
            "status": "approved",
            "by": self.approved_by,
            "results": [first, second],
            "events": self.events,
        }

    @workflow.signal
    def approve(self, who: str) -> None:
        self.events.append(f"approve {who}")
        self.approved_by = who

    @workflow.query
    def state(self) -> list[str]:
        return self.events


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        start = workflow.now()
        timer = asyncio.create_task(asyncio.sleep(3600))
        await workflow.sleep(0.2)
        timer.cancel()
        try:
            await timer
            cancelled = False
        except asyncio.CancelledError:
            cancelled = True
        return {
            "cancelled": cancelled,
            "elapsed_ok": (workflow.now() - start).total_seconds() >= 0.2,
            "uuid": str(workflow.uuid4()),
            "history_length": workflow.info().get_current_history_length(),
        }


async def test_signal_query_gather_and_result(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Approval], activities=[echo]):
        handle = await client.start_workflow(
            Approval.run, Order("o-1", 10), id=f"approve-1-{suffix}", task_queue=task_queue
        )
        await handle.signal(Approval.approve, "ann")
        result = await handle.result()
        assert result["status"] == "approved"
        assert result["by"] == "ann"
        assert result["results"] == ["one", "two"]
        # A completed workflow still answers queries (by replay).
        # The signal may arrive before or after the first workflow task.
        assert sorted(await handle.query(Approval.state)) == ["approve ann", "start o-1"]
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.COMPLETED
        assert desc.history_length > 10


async def test_signal_before_first_task_is_seen_before_first_await(
    client: Client, task_queue: str, suffix: str
) -> None:
    handle = await client.start_workflow(
        Approval.run, Order("o-2", 5), id=f"approve-2-{suffix}", task_queue=task_queue
    )
    await handle.signal(Approval.approve, "bob")
    async with Worker(client, task_queue=task_queue, workflows=[Approval], activities=[echo]):
        result = await handle.result()
    # Temporal applies the signal before the run method starts.
    assert result["events"] == ["approve bob", "start o-2"]
    assert result["status"] == "approved"


async def test_wait_condition_timeout(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Approval], activities=[echo]):
        result = await client.execute_workflow(
            Approval.run, Order("o-3", 1), id=f"approve-3-{suffix}", task_queue=task_queue
        )
    assert result == {"status": "timeout", "events": ["start o-3"]}


async def test_cancelled_timer_and_deterministic_helpers(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Sleeper]):
        handle = await client.start_workflow(
            Sleeper.run, id=f"sleeper-{suffix}", task_queue=task_queue
        )
        result = await handle.result()
    assert result["cancelled"] is True
    assert result["elapsed_ok"] is True
    history = [e async for e in handle.fetch_history_events()]
    assert any(e.HasField("timer_canceled_event_attributes") for e in history)


async def test_query_of_unknown_name_fails_the_query_only(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Approval], activities=[echo]):
        handle = await client.start_workflow(
            Approval.run, Order("o-4", 1), id=f"approve-4-{suffix}", task_queue=task_queue
        )
        assert await handle.query(Approval.state) == ["start o-4"]
        with pytest.raises(WorkflowQueryFailedError, match="nope"):
            await handle.query("nope")
        await handle.signal(Approval.approve, "cy")
        assert (await handle.result())["status"] == "approved"


async def test_starting_a_running_id_raises_already_started(
    client: Client, task_queue: str, suffix: str
) -> None:
    await client.start_workflow(
        Approval.run, Order("o-5", 1), id=f"dup-{suffix}", task_queue=task_queue
    )
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(
            Approval.run, Order("o-5", 1), id=f"dup-{suffix}", task_queue=task_queue
        )


async def test_signal_to_unknown_workflow_is_not_found(client: Client, suffix: str) -> None:
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle(f"nobody-{suffix}").signal("x")


@workflow.defn
class Forever:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def test_run_timeout_ends_the_run_as_timed_out(
    client: Client, task_queue: str, suffix: str
) -> None:
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import TimeoutError, TimeoutType

    async with Worker(client, task_queue=task_queue, workflows=[Forever]):
        handle = await client.start_workflow(
            Forever.run,
            id=f"forever-{suffix}",
            task_queue=task_queue,
            run_timeout=timedelta(seconds=1),
        )
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, TimeoutError)
    assert info.value.cause.type == TimeoutType.START_TO_CLOSE
    assert (await handle.describe()).status == WorkflowExecutionStatus.TIMED_OUT
