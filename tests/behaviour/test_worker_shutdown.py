"""Worker shutdown with activities still running, on both engines.

As temporalio's worker: after ``graceful_shutdown_timeout`` the running
activities are cancelled, the shutdown returns once they end, and an attempt
cancelled that way fails with a WorkerShutdown failure and is retried.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from temporalio import activity, workflow

from ablauf import Client, Worker

# Set by the activity when it runs (activities run on the test's own loop).
started: dict[str, asyncio.Event] = {}


@activity.defn
async def waits_for_cancel(key: str) -> str:
    started[key].set()
    await activity.wait_for_cancelled()
    return "saw the cancel"


@activity.defn
async def heartbeats_until_cancelled(key: str) -> str:
    started[key].set()
    while True:
        activity.heartbeat()
        await asyncio.sleep(0.1)


@workflow.defn
class RunsOneActivity:
    @workflow.run
    async def run(self, name: str, key: str) -> str:
        return await workflow.execute_activity(
            name,
            key,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(minutes=1),
        )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("graceful", [0.0, 1.0])
@pytest.mark.parametrize("name", ["waits_for_cancel", "heartbeats_until_cancelled"])
async def test_shutdown_cancels_a_running_activity_after_the_grace_period(
    client: Client, task_queue: str, suffix: str, name: str, graceful: float
) -> None:
    key = f"{name}-{graceful}-{suffix}"
    started[key] = asyncio.Event()
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[RunsOneActivity],
        activities=[waits_for_cancel, heartbeats_until_cancelled],
        graceful_shutdown_timeout=timedelta(seconds=graceful),
    )
    async with worker:
        handle = await client.start_workflow(
            RunsOneActivity.run, args=[name, key], id=f"wf-{key}", task_queue=task_queue
        )
        await asyncio.wait_for(started[key].wait(), 15)
        begun = time.monotonic()
        await asyncio.wait_for(worker.shutdown(), 15)
        took = time.monotonic() - begun
    try:
        assert graceful <= took < graceful + 3
        (pending,) = (await handle.describe()).raw_description.pending_activities
        # The cancelled attempt failed as sdk-core reports it, and is retried.
        assert pending.attempt == 2
        assert pending.last_failure.message == (
            "Worker is shutting down and this activity did not complete in time"
        )
        assert pending.last_failure.application_failure_info.type == "WorkerShutdown"
    finally:
        await handle.terminate()
