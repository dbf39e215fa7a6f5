"""Continue-as-new: the chain of runs as the workflow and the client see it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowContinuedAsNewError, WorkflowExecutionStatus

from ablauf import Client, Worker


@workflow.defn
class Chain:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self, round_: int, runs: list[str], wait: bool) -> dict[str, Any]:
        info = workflow.info()
        runs = [*runs, info.run_id]
        if wait:
            await workflow.wait_condition(lambda: bool(self.signals))
        if round_ < 2:
            workflow.continue_as_new(args=[round_ + 1, runs, wait and round_ < 1])
        return {
            "round": round_,
            "runs": runs,
            "continued_run_id": info.continued_run_id,
            "first_execution_run_id": info.first_execution_run_id,
            "signals": self.signals,
        }

    @workflow.signal
    def poke(self, name: str) -> None:
        self.signals.append(name)


async def test_the_result_follows_the_chain_of_runs(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Chain]):
        handle = await client.start_workflow(
            Chain.run, args=[0, [], False], id=f"chain-{suffix}", task_queue=task_queue
        )
        result = await handle.result()
    first, second, third = result["runs"]
    assert result["round"] == 2
    assert first == handle.result_run_id == handle.first_execution_run_id
    assert result["continued_run_id"] == second
    assert result["first_execution_run_id"] == first
    with pytest.raises(WorkflowContinuedAsNewError) as info:
        await handle.result(follow_runs=False)
    assert info.value.new_execution_run_id == second
    old = client.get_workflow_handle(f"chain-{suffix}", run_id=first)
    assert (await old.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    events = (await old.fetch_history()).events
    assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    attrs = events[-1].workflow_execution_continued_as_new_event_attributes
    assert attrs.new_execution_run_id == second
    assert attrs.workflow_type.name == "Chain" and attrs.task_queue.name == task_queue
    latest = await client.get_workflow_handle(f"chain-{suffix}").describe()
    assert (latest.run_id, latest.status) == (third, WorkflowExecutionStatus.COMPLETED)
    # A handle without a run id means the latest run.
    started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id == second
    assert started.first_execution_run_id == first


async def test_signals_reach_the_latest_run_and_state_starts_fresh(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Chain]):
        handle = await client.start_workflow(
            Chain.run, args=[0, [], True], id=f"chain-s-{suffix}", task_queue=task_queue
        )
        await handle.signal(Chain.poke, "a")
        # The second run waits for a signal of its own: the first run's are gone.
        latest = client.get_workflow_handle(f"chain-s-{suffix}")
        while (await latest.describe()).run_id == handle.result_run_id:
            await asyncio.sleep(0.02)
        await latest.signal(Chain.poke, "b")
        result = await handle.result()
    assert result["round"] == 2
    assert result["signals"] == []
    second = client.get_workflow_handle(f"chain-s-{suffix}", run_id=result["runs"][1])
    signaled = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in (await second.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signaled == ["poke"]


@workflow.defn
class Later:
    @workflow.run
    async def run(self, round_: int) -> str:
        if round_ == 0:
            workflow.continue_as_new(args=[1], backoff_start_interval=timedelta(seconds=2))
        return "second run"


async def test_continue_as_new_waits_out_its_backoff_start_interval(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Later]):
        handle = await client.start_workflow(
            Later.run, 0, id=f"later-{suffix}", task_queue=task_queue
        )
        assert await handle.result() == "second run"
        first = [
            e
            async for e in client.get_workflow_handle(
                handle.id, run_id=handle.result_run_id
            ).fetch_history_events()
        ]
        second = [e async for e in client.get_workflow_handle(handle.id).fetch_history_events()]
    continued = first[-1].workflow_execution_continued_as_new_event_attributes
    assert continued.backoff_start_interval.ToTimedelta() == timedelta(seconds=2)
    started = second[0].workflow_execution_started_event_attributes
    assert started.first_workflow_task_backoff.ToTimedelta() == timedelta(seconds=2)
    # The second run's first workflow task came about two seconds after its start.
    waited = second[1].event_time.ToDatetime() - second[0].event_time.ToDatetime()
    assert waited >= timedelta(seconds=1.9)
