"""Workflow code that blocks its thread: Temporal's deadlock detection.

temporalio's worker fails a workflow task whose code does not yield within two
seconds with ``[TMPRL1101]``, interrupts that code and retries the task, while
other workflows, activities and client calls go on; ``debug_mode`` turns the
detection off. Each test waits out a block of a second or more: keep them few.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.history.v1 import WorkflowTaskFailedEventAttributes
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from ablauf import Client, Worker

DEADLOCK = "[TMPRL1101] Potential deadlock detected: workflow didn't yield within 2 second(s)."


@activity.defn
async def echo(value: str) -> str:
    return value


@workflow.defn
class Blocker:
    @workflow.run
    async def run(self, seconds: float) -> int:
        """Blocks its thread in its first workflow task only (not in a replay):
        sleeps ``seconds``, or spins for good if 0. Returns the history length
        it ran at."""
        length = workflow.info().get_current_history_length()
        if length <= 3 and not workflow.unsafe.is_replaying():
            if seconds:
                with workflow.unsafe.sandbox_unrestricted():
                    time.sleep(seconds)
            else:
                while True:
                    pass
        return length


@workflow.defn
class Quick:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            echo, "quick", start_to_close_timeout=timedelta(seconds=10)
        )


async def task_failures(
    handle: WorkflowHandle[Blocker, int],
) -> list[WorkflowTaskFailedEventAttributes]:
    return [
        event.workflow_task_failed_event_attributes
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_task_failed_event_attributes")
    ]


async def quick_while_blocked(client: Client, task_queue: str, suffix: str) -> None:
    """Another workflow (with an activity) and a client call finish while a
    workflow's code blocks its thread for 1.6 s (not long enough to deadlock)."""
    blocked = await client.start_workflow(
        Blocker.run, 1.6, id=f"blocked-{suffix}", task_queue=task_queue
    )
    quick = await client.start_workflow(Quick.run, id=f"quick-{suffix}", task_queue=task_queue)
    assert await quick.result() == "quick"
    assert (await blocked.describe()).status == WorkflowExecutionStatus.RUNNING
    answered = datetime.now(UTC)
    assert await blocked.result() == 3
    [blocked_task_done] = [
        event.event_time.ToDatetime(tzinfo=UTC)
        async for event in blocked.fetch_history_events()
        if event.HasField("workflow_task_completed_event_attributes")
    ]
    quick_closed = (await quick.describe()).close_time
    assert quick_closed is not None
    assert quick_closed < blocked_task_done
    assert answered < blocked_task_done
    assert await task_failures(blocked) == []


async def test_code_that_does_not_yield_fails_its_task_and_the_rest_goes_on(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Blocker, Quick], activities=[echo]):
        spinning = await client.start_workflow(
            Blocker.run, 0, id=f"spinning-{suffix}", task_queue=task_queue
        )
        # Interrupted and retried: the retry (history length 6) does not block.
        assert await spinning.result() == 6
        [failed] = await task_failures(spinning)
        assert (
            failed.cause
            == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE
        )
        assert failed.failure.message == DEADLOCK
        assert failed.failure.application_failure_info.type == "_DeadlockError"
        assert "in run" in failed.failure.stack_trace

        # Embedded, code of a type that held the event loop runs on threads from then on.
        await quick_while_blocked(client, task_queue, suffix)


async def test_a_workflow_task_executor_keeps_the_rest_going_from_the_start(
    client: Client, task_queue: str, suffix: str
) -> None:
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[Blocker, Quick],
            activities=[echo],
            workflow_task_executor=executor,
        ):
            await quick_while_blocked(client, task_queue, suffix)


async def test_debug_mode_turns_deadlock_detection_off(
    client: Client, task_queue: str, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # temporalio's debug mode installs its breakpoint hook for the whole process.
    monkeypatch.setattr(sys, "breakpointhook", sys.breakpointhook)
    async with Worker(client, task_queue=task_queue, workflows=[Blocker], debug_mode=True):
        slow = await client.start_workflow(
            Blocker.run, 2.3, id=f"slow-{suffix}", task_queue=task_queue
        )
        assert await slow.result() == 3
        assert await task_failures(slow) == []
