"""Schedule-level timeouts and cancellation of a running activity."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError, TimeoutError
from temporalio.workflow import ActivityCancellationType

from ablauf import Client, Worker


@activity.defn
async def always_fails() -> None:
    raise RuntimeError("still broken")


@activity.defn
async def fail_then_hang() -> None:
    if activity.info().attempt == 1:
        raise RuntimeError("first attempt fails fast")
    await asyncio.sleep(30)


@activity.defn
async def wait_for_cancel() -> str:
    while True:
        activity.heartbeat()
        await asyncio.sleep(0.05)


@workflow.defn
class Timeouts:
    @workflow.run
    async def run(self, kind: str) -> dict[str, Any]:
        try:
            if kind == "schedule_to_start":
                await workflow.execute_activity(
                    "nobody_runs_this",
                    task_queue="no-worker-here",
                    schedule_to_start_timeout=timedelta(milliseconds=300),
                    start_to_close_timeout=timedelta(seconds=5),
                )
            elif kind == "schedule_to_close":
                await workflow.execute_activity(
                    fail_then_hang,
                    schedule_to_close_timeout=timedelta(seconds=2.5),
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1)),
                )
            elif kind == "retries_past_deadline":
                await workflow.execute_activity(
                    always_fails,
                    schedule_to_close_timeout=timedelta(seconds=2.5),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=1), backoff_coefficient=1
                    ),
                )
            elif kind == "cancel":
                handle = workflow.start_activity(
                    wait_for_cancel,
                    start_to_close_timeout=timedelta(seconds=30),
                    heartbeat_timeout=timedelta(seconds=5),
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
                await workflow.sleep(0.3)
                handle.cancel()
                await handle
        except ActivityError as err:
            cause = err.cause
            return {
                "cause": type(cause).__name__,
                "timeout_type": cause.type.name if isinstance(cause, TimeoutError) else None,
                "retry_state": err.retry_state.name if err.retry_state else None,
                "cancelled": isinstance(cause, CancelledError),
            }
        return {}


async def run(client: Client, task_queue: str, kind: str) -> dict[str, Any]:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[Timeouts],
        activities=[always_fails, fail_then_hang, wait_for_cancel],
    ):
        return await client.execute_workflow(
            Timeouts.run, kind, id=f"t-{kind}-{task_queue}", task_queue=task_queue
        )


async def test_schedule_to_start_timeout(client: Client, task_queue: str) -> None:
    assert await run(client, task_queue, "schedule_to_start") == {
        "cause": "TimeoutError",
        "timeout_type": "SCHEDULE_TO_START",
        "retry_state": "TIMEOUT",
        "cancelled": False,
    }


async def test_schedule_to_close_timeout_ends_a_running_attempt(
    client: Client, task_queue: str
) -> None:
    assert await run(client, task_queue, "schedule_to_close") == {
        "cause": "TimeoutError",
        "timeout_type": "SCHEDULE_TO_CLOSE",
        "retry_state": "TIMEOUT",
        "cancelled": False,
    }


async def test_no_retry_past_the_schedule_to_close_deadline(
    client: Client, task_queue: str
) -> None:
    # The next attempt would start after the deadline: the last failure is final.
    assert await run(client, task_queue, "retries_past_deadline") == {
        "cause": "ApplicationError",
        "timeout_type": None,
        "retry_state": "TIMEOUT",
        "cancelled": False,
    }


async def test_cancelling_a_running_activity(client: Client, task_queue: str) -> None:
    result = await run(client, task_queue, "cancel")
    assert result["cancelled"] is True
    assert result["cause"] == "CancelledError"
