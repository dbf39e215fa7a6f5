"""Signal handlers that await, that fail, and the run waiting for them to finish."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from ablauf import Client, Worker


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class Handlers:
    def __init__(self) -> None:
        self.log: list[str] = []

    @workflow.run
    async def run(self, expected: int) -> list[str]:
        self.log.append("run")
        await workflow.wait_condition(lambda: len(self.log) > expected)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.log

    @workflow.signal
    async def slow(self, text: str) -> None:
        self.log.append(f"slow {text} begins")
        loud = await workflow.execute_activity(
            shout, text, start_to_close_timeout=timedelta(seconds=5)
        )
        self.log.append(f"slow {loud} ends")

    @workflow.signal
    def quick(self, text: str) -> None:
        self.log.append(f"quick {text}")

    @workflow.signal
    def reject(self, text: str) -> None:
        raise ApplicationError(f"rejected {text}", type="Rejected")


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[Handlers], activities=[shout])


async def test_async_handlers_interleave_and_the_run_waits_for_them(
    client: Client, task_queue: str, suffix: str
) -> None:
    handle = await client.start_workflow(Handlers.run, 3, id=f"h-1-{suffix}", task_queue=task_queue)
    await handle.signal(Handlers.slow, "a")
    await handle.signal(Handlers.quick, "b")
    async with worker(client, task_queue):
        result = await handle.result()
    # Both signals come with the first task: the async handler runs up to its first
    # await, the sync one runs, then the run method starts.
    assert result == ["slow a begins", "quick b", "run", "slow A ends"]


async def test_application_error_in_a_signal_handler_fails_the_workflow(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            Handlers.run, 5, id=f"h-2-{suffix}", task_queue=task_queue
        )
        await handle.signal(Handlers.reject, "x")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.message, cause.type) == ("rejected x", "Rejected")
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
