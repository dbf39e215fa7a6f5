"""Eviction and replay: state comes back; changed code is a nondeterminism error."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.client import WorkflowExecutionStatus

from ablauf import Client, Worker


@activity.defn
async def step_a() -> str:
    return "a"


@activity.defn
async def step_b() -> str:
    return "b"


@workflow.defn(name="Versioned")
class VersionOne:
    def __init__(self) -> None:
        self.go = False
        self.seen: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        self.seen.append(
            await workflow.execute_activity(step_a, start_to_close_timeout=timedelta(seconds=5))
        )
        await workflow.wait_condition(lambda: self.go)
        self.seen.append(str(workflow.random().randint(0, 10**9)))
        return self.seen

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.query
    def state(self) -> list[str]:
        return self.seen


@workflow.defn(name="Versioned")
class VersionTwo(VersionOne):
    @workflow.run
    async def run(self) -> list[str]:
        self.seen.append(
            await workflow.execute_activity(step_b, start_to_close_timeout=timedelta(seconds=5))
        )
        await workflow.wait_condition(lambda: self.go)
        return self.seen


async def test_replay_after_eviction_restores_state(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[VersionOne], activities=[step_a]):
        handle = await client.start_workflow(
            VersionOne.run, id=f"v-1-{suffix}", task_queue=task_queue
        )
        while await handle.query(VersionOne.state) != ["a"]:
            await asyncio.sleep(0.01)
    # A new worker has an empty cache: it rebuilds the instance from the history.
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[VersionOne],
        activities=[step_a],
        max_cached_workflows=0,
    ):
        assert await handle.query(VersionOne.state) == ["a"]
        await handle.signal(VersionOne.proceed)
        result = await handle.result()
    assert result[0] == "a" and result[1].isdigit()


async def test_changed_code_is_a_nondeterminism_error(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[VersionOne], activities=[step_a]):
        handle = await client.start_workflow(
            VersionOne.run, id=f"v-2-{suffix}", task_queue=task_queue
        )
        while await handle.query(VersionOne.state) != ["a"]:
            await asyncio.sleep(0.01)
    before = [e async for e in handle.fetch_history_events()]
    async with Worker(client, task_queue=task_queue, workflows=[VersionTwo], activities=[step_b]):
        await handle.signal(VersionOne.proceed)
        for _ in range(100):
            history = [e async for e in handle.fetch_history_events()]
            failed = [e for e in history if e.HasField("workflow_task_failed_event_attributes")]
            if failed:
                break
            await asyncio.sleep(0.02)
    attrs = failed[0].workflow_task_failed_event_attributes
    assert attrs.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
    assert (
        "Nondeterminism" in attrs.failure.message
        or "nondeterminism" in attrs.failure.message.lower()
    )
    # The recorded history is untouched; the run keeps waiting for fixed code.
    assert history[: len(before)] == before
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    async with Worker(client, task_queue=task_queue, workflows=[VersionOne], activities=[step_a]):
        result = await asyncio.wait_for(handle.result(), 20)
    assert result[0] == "a"
