"""A workflow retry policy: failed runs are retried as new runs of the same id."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import RetryState
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from ablauf import Client, Worker


@workflow.defn
class Flaky:
    @workflow.run
    async def run(self, succeed_on: int) -> int:
        attempt = workflow.info().attempt
        if attempt < succeed_on:
            raise ApplicationError(f"attempt {attempt} failed")
        return attempt


async def test_failed_runs_are_retried(client: Client, task_queue: str, suffix: str) -> None:
    policy = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
    async with Worker(client, task_queue=task_queue, workflows=[Flaky]):
        handle = await client.start_workflow(
            Flaky.run, 2, id=f"retry-{suffix}", task_queue=task_queue, retry_policy=policy
        )
        assert await handle.result() == 2
    first = client.get_workflow_handle(f"retry-{suffix}", run_id=handle.first_execution_run_id)
    events = (await first.fetch_history()).events
    failed = events[-1].workflow_execution_failed_event_attributes
    assert failed.new_execution_run_id
    assert failed.retry_state == RetryState.RETRY_STATE_IN_PROGRESS


async def test_retries_end_at_maximum_attempts(
    client: Client, task_queue: str, suffix: str
) -> None:
    policy = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=2)
    async with Worker(client, task_queue=task_queue, workflows=[Flaky]):
        handle = await client.start_workflow(
            Flaky.run, 5, id=f"retry-max-{suffix}", task_queue=task_queue, retry_policy=policy
        )
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, ApplicationError)
    assert info.value.cause.message == "attempt 2 failed"
    last = (await handle.fetch_history()).events[-1].workflow_execution_failed_event_attributes
    assert last.retry_state == RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    assert not last.new_execution_run_id


async def test_a_huge_backoff_coefficient_retries_at_the_maximum_interval(
    client: Client, task_queue: str, suffix: str
) -> None:
    # The third interval, 1e300 ** 2 s, is past any float.
    policy = RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=1e300,
        maximum_interval=timedelta(seconds=1),
        maximum_attempts=5,
    )
    async with Worker(client, task_queue=task_queue, workflows=[Flaky]):
        handle = await client.start_workflow(
            Flaky.run, 4, id=f"retry-huge-{suffix}", task_queue=task_queue, retry_policy=policy
        )
        assert await asyncio.wait_for(handle.result(), 30) == 4
