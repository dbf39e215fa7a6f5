"""The spec's long timers under ablauf's time-skipping test environment."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus

from ablauf import Worker
from ablauf.testing import WorkflowEnvironment

# No Path.resolve(): workflow sandboxes import this module again and refuse it.
sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))

import s5_3_1_delay
import s5_3_2_timeout
import s5_3_4_cancellable_timer


async def test_thirty_day_sleep_completes_in_a_moment() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        assert env.supports_time_skipping
        before = await env.get_current_time()
        started = time.monotonic()
        async with Worker(env.client, task_queue="delay", workflows=[s5_3_1_delay.DelayWorkflow]):
            result = await env.client.execute_workflow(
                s5_3_1_delay.DelayWorkflow.run, id="delay", task_queue="delay"
            )
        assert result == "Timers completed"
        assert time.monotonic() - started < 5
        skipped = (await env.get_current_time()) - before
        assert skipped >= timedelta(days=30, seconds=10)


async def test_approval_times_out_after_24_hours() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        queue = f"approvals-{uuid.uuid4().hex[:6]}"
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[s5_3_2_timeout.TimeoutWorkflow],
            activities=[s5_3_2_timeout.reject_order],
        ):
            result = await env.client.execute_workflow(
                s5_3_2_timeout.TimeoutWorkflow.run, "order-1", id="approval", task_queue=queue
            )
        assert result == {"status": "rejected_timeout", "order_id": "order-1"}


async def test_one_hour_timer_completes_normally() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        cls = s5_3_4_cancellable_timer.CancellableTimerWorkflow
        async with Worker(env.client, task_queue="timer", workflows=[cls]):
            result = await env.client.execute_workflow(cls.run, id="timer", task_queue="timer")
        assert result == "Timer completed normally"


@workflow.defn
class Waiter:
    @workflow.run
    async def run(self) -> str:
        start = workflow.now()
        await asyncio.sleep(3600)
        return str(workflow.now() - start)


async def test_time_stands_still_until_someone_waits() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue="wait", workflows=[Waiter]):
            handle = await env.client.start_workflow(Waiter.run, id="w", task_queue="wait")
            await asyncio.sleep(0.3)
            # Nobody awaited the result: the one-hour timer has not fired.
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            await env.sleep(timedelta(minutes=59))
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            await env.sleep(timedelta(minutes=2))
            elapsed = await handle.result()
        assert elapsed.startswith("1:00:0")
