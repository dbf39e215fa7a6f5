"""A failing workflow task under time skipping: retried in real time, never a frozen loop.

As on Temporal's time-skipping test server, a workflow task holds time until it
completes, so one that keeps failing does not let the clock jump from one retry
to the next (that was a loop with no await in it: 100 % CPU, the clock two
days ahead in seconds and a caller's ``asyncio.wait_for`` never firing).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.worker import UnsandboxedWorkflowRunner

from ablauf import Worker
from ablauf.testing import WorkflowEnvironment

# Workflow tasks run in this process, unsandboxed (so workflow code shares this
# module with the test): a module global counts them.
_attempts: dict[str, int] = {}


@workflow.defn
class AlwaysFails:
    @workflow.run
    async def run(self) -> str:
        raise RuntimeError("a bug in workflow code")


@workflow.defn
class FailsOnceThenSleeps:
    @workflow.run
    async def run(self) -> str:
        key = workflow.info().workflow_id
        _attempts[key] = _attempts.get(key, 0) + 1
        if _attempts[key] == 1:
            raise RuntimeError("fails the first workflow task only")
        await workflow.sleep(timedelta(days=1))
        return "slept"


@pytest.mark.timeout(30)
async def test_wait_for_fires_on_time_while_a_workflow_task_keeps_failing() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        queue = f"failing-{uuid.uuid4().hex[:6]}"
        async with Worker(env.client, task_queue=queue, workflows=[AlwaysFails]):
            handle = await env.client.start_workflow(
                AlwaysFails.run, id="always-fails", task_queue=queue
            )
            before = await env.get_current_time()
            started, cpu = time.monotonic(), time.process_time()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(handle.result(), 2)
            elapsed, busy = time.monotonic() - started, time.process_time() - cpu
            skipped = (await env.get_current_time()) - before
            description = await handle.describe()
            history = await handle.fetch_history()
    assert elapsed < 4
    # The loop idles between retries instead of spinning.
    assert busy < 1.2
    # Time moved with the wall clock, not from retry to retry.
    assert skipped < timedelta(seconds=10)
    # The task was retried (attempt 2 after 1 s, attempt 3 after 2 s more).
    assert description.raw_description.pending_workflow_task.attempt >= 2
    failed = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]
    # Later attempts of a failing task stay out of the history, as in Temporal.
    assert len(failed) == 1


@pytest.mark.timeout(30)
async def test_a_workflow_task_that_failed_once_is_retried_and_time_skips_again() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        queue = f"fails-once-{uuid.uuid4().hex[:6]}"
        workflow_id = f"fails-once-{uuid.uuid4().hex[:6]}"
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[FailsOnceThenSleeps],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            before = await env.get_current_time()
            started = time.monotonic()
            result = await asyncio.wait_for(
                env.client.execute_workflow(
                    FailsOnceThenSleeps.run, id=workflow_id, task_queue=queue
                ),
                15,
            )
            skipped = (await env.get_current_time()) - before
    assert result == "slept"
    assert _attempts[workflow_id] == 2
    # The retry came after about a second of real time; the day-long timer skipped.
    assert time.monotonic() - started < 10
    assert skipped >= timedelta(days=1)
