"""Activities completed from outside their worker: raise_complete_async and async handles."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import AsyncActivityCancelledError, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.service import RPCError, RPCStatusCode

from ablauf import Client, Worker

tokens: dict[str, bytes] = {}


@activity.defn
async def by_hand(text: str) -> str:
    tokens[activity.info().workflow_id] = activity.info().task_token
    activity.raise_complete_async()


async def token_of(workflow_id: str) -> bytes:
    for _ in range(200):
        if workflow_id in tokens:
            return tokens.pop(workflow_id)
        await asyncio.sleep(0.05)
    raise AssertionError(f"the activity of {workflow_id} never ran")


@workflow.defn
class Waits:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            by_hand,
            text,
            activity_id="by-hand",
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


@workflow.defn
class CancelsIt:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            by_hand,
            "x",
            activity_id="by-hand",
            start_to_close_timeout=timedelta(seconds=30),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.sleep(0.1)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            return type(err.cause).__name__
        return "completed"


async def test_completed_by_task_token(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Waits], activities=[by_hand]):
        handle = await client.start_workflow(
            Waits.run, "hi", id=f"async-1-{suffix}", task_queue=task_queue
        )
        token = await token_of(handle.id)
        await client.get_async_activity_handle(task_token=token).complete("done by hand")
        assert await asyncio.wait_for(handle.result(), 10) == "done by hand"
        # The attempt is over: a second report finds nothing to complete.
        with pytest.raises(RPCError) as gone:
            await client.get_async_activity_handle(task_token=token).complete("again")
        assert gone.value.status == RPCStatusCode.NOT_FOUND


async def test_heartbeat_and_fail_by_ids(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Waits], activities=[by_hand]):
        handle = await client.start_workflow(
            Waits.run, "hi", id=f"async-2-{suffix}", task_queue=task_queue
        )
        await token_of(handle.id)
        by_ids = client.get_async_activity_handle(
            workflow_id=handle.id, run_id=handle.result_run_id, activity_id="by-hand"
        )
        await by_ids.heartbeat("halfway")
        await by_ids.fail(ApplicationError("could not", type="ByHand", non_retryable=True))
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), 10)
    cause = failed.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert (cause.cause.message, cause.cause.type) == ("could not", "ByHand")


async def test_cancellation_reaches_the_handle_and_is_reported(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[CancelsIt], activities=[by_hand]):
        handle = await client.start_workflow(
            CancelsIt.run, id=f"async-3-{suffix}", task_queue=task_queue
        )
        token = await token_of(handle.id)
        by_token = client.get_async_activity_handle(task_token=token)
        for _ in range(100):
            try:
                await by_token.heartbeat()
            except AsyncActivityCancelledError:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the cancellation never reached the async handle")
        await by_token.report_cancellation()
        assert await asyncio.wait_for(handle.result(), 10) == CancelledError.__name__


async def test_an_unknown_activity_id_is_not_found(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Waits], activities=[by_hand]):
        handle = await client.start_workflow(
            Waits.run, "hi", id=f"async-4-{suffix}", task_queue=task_queue
        )
        token = await token_of(handle.id)
        other = client.get_async_activity_handle(
            workflow_id=handle.id, run_id=handle.result_run_id, activity_id="no-such"
        )
        with pytest.raises(RPCError) as gone:
            await other.complete("x")
        assert gone.value.status == RPCStatusCode.NOT_FOUND
        await client.get_async_activity_handle(task_token=token).complete("ok")
        assert await asyncio.wait_for(handle.result(), 10) == "ok"
