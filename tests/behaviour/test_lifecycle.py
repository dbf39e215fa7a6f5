"""Cancellation, termination, signal-with-start and workflow id policies."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import CancelledError, TerminatedError, WorkflowAlreadyStartedError

from ablauf import Client, Worker

cleaned: list[str] = []


@activity.defn
async def cleanup(key: str) -> None:
    cleaned.append(key)


@workflow.defn
class Cancellable:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self, key: str) -> list[str]:
        try:
            await workflow.wait_condition(lambda: "done" in self.signals)
            return self.signals
        except asyncio.CancelledError:
            await workflow.execute_activity(
                cleanup, key, start_to_close_timeout=timedelta(seconds=5)
            )
            raise

    @workflow.signal
    def note(self, value: str) -> None:
        self.signals.append(value)


async def wait_running(handle: object) -> None:
    for _ in range(200):
        history = [e async for e in handle.fetch_history_events()]  # type: ignore[attr-defined]
        if any(e.HasField("workflow_task_completed_event_attributes") for e in history):
            return
        await asyncio.sleep(0.02)


async def test_cancel_runs_cleanup_and_ends_canceled(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Cancellable], activities=[cleanup]):
        handle = await client.start_workflow(
            Cancellable.run, suffix, id=f"c-{suffix}", task_queue=task_queue
        )
        await wait_running(handle)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    assert suffix in cleaned
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED


async def test_terminate_ends_at_once(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Cancellable], activities=[cleanup]):
        handle = await client.start_workflow(
            Cancellable.run, suffix, id=f"t-{suffix}", task_queue=task_queue
        )
        await wait_running(handle)
        await handle.terminate(reason="enough")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, TerminatedError)
    assert info.value.cause.message == "enough"
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    assert suffix not in cleaned


async def test_signal_with_start(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Cancellable], activities=[cleanup]):
        first = await client.start_workflow(
            Cancellable.run,
            suffix,
            id=f"sws-{suffix}",
            task_queue=task_queue,
            start_signal="note",
            start_signal_args=["a"],
        )
        again = await client.start_workflow(
            Cancellable.run,
            suffix,
            id=f"sws-{suffix}",
            task_queue=task_queue,
            start_signal="note",
            start_signal_args=["done"],
        )
        assert again.result_run_id == first.result_run_id
        assert await first.result() == ["a", "done"]


async def test_reject_duplicate_after_completion(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Cancellable], activities=[cleanup]):
        handle = await client.start_workflow(
            Cancellable.run,
            suffix,
            id=f"r-{suffix}",
            task_queue=task_queue,
            start_signal="note",
            start_signal_args=["done"],
        )
        await handle.result()
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.start_workflow(
                Cancellable.run,
                suffix,
                id=f"r-{suffix}",
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.start_workflow(
                Cancellable.run,
                suffix,
                id=f"r-{suffix}",
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            )
        # The default allows a new run after a closed one.
        again = await client.start_workflow(
            Cancellable.run, suffix, id=f"r-{suffix}", task_queue=task_queue
        )
        assert again.result_run_id != handle.result_run_id
        await again.terminate("a detail, not a reason")
        with pytest.raises(WorkflowFailureError) as info:
            await again.result()
        assert isinstance(info.value.cause, TerminatedError)
        assert info.value.cause.message == "terminated by user via frontend"


async def test_conflict_policies(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Cancellable], activities=[cleanup]):
        first = await client.start_workflow(
            Cancellable.run, suffix, id=f"p-{suffix}", task_queue=task_queue
        )
        existing = await client.start_workflow(
            Cancellable.run,
            suffix,
            id=f"p-{suffix}",
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        assert existing.result_run_id == first.result_run_id
        replaced = await client.start_workflow(
            Cancellable.run,
            suffix,
            id=f"p-{suffix}",
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
        )
        assert replaced.result_run_id != first.result_run_id
        old = client.get_workflow_handle(f"p-{suffix}", run_id=first.result_run_id)
        assert (await old.describe()).status == WorkflowExecutionStatus.TERMINATED
        await replaced.terminate()


async def test_cancelling_a_completed_workflow_is_accepted_and_changes_nothing(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Cancellable], activities=[cleanup]):
        handle = await client.start_workflow(
            Cancellable.run, suffix, id=f"cc-{suffix}", task_queue=task_queue
        )
        await handle.signal(Cancellable.note, "done")
        assert await handle.result() == ["done"]
        await handle.cancel()
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        history = [e async for e in handle.fetch_history_events()]
        assert not [
            e for e in history if e.HasField("workflow_execution_cancel_requested_event_attributes")
        ]


async def test_a_top_level_workflow_is_its_own_root(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Cancellable], activities=[cleanup]):
        handle = await client.start_workflow(
            Cancellable.run, suffix, id=f"root-{suffix}", task_queue=task_queue
        )
        desc = await handle.describe()
        await handle.terminate()
    assert (desc.root_id, desc.root_run_id) == (handle.id, desc.run_id)
    assert (desc.parent_id, desc.parent_run_id) == (None, None)


@pytest.mark.only_engine("ablauf", "only an embedded store can be removed under a worker")
async def test_on_fatal_error_hears_of_a_lost_store_before_run_raises(
    client: Client, task_queue: str, tmp_path: object
) -> None:
    import os
    from pathlib import Path

    from ablauf.errors import StoreLostError

    heard: list[BaseException] = []

    async def on_fatal_error(err: BaseException) -> None:
        heard.append(err)

    worker = Worker(
        client, task_queue=task_queue, workflows=[Cancellable], on_fatal_error=on_fatal_error
    )
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.2)
    os.remove(Path(str(tmp_path)) / "behaviour.db")
    with pytest.raises(StoreLostError):
        await asyncio.wait_for(running, 10)
    assert len(heard) == 1 and isinstance(heard[0], StoreLostError)
