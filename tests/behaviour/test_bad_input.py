"""Bad input gets a clear error and leaves nothing half-stored."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError
from temporalio.service import RPCError, RPCStatusCode

from ablauf import Client, Worker


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class Shouter:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            shout, text, start_to_close_timeout=timedelta(seconds=5)
        )


@workflow.defn
class Other:
    @workflow.run
    async def run(self) -> None:
        return None


class NotSerializable:
    pass


async def test_unknown_workflow_type_waits_for_a_worker_that_knows_it(
    client: Client, task_queue: str, suffix: str
) -> None:
    handle = await client.start_workflow(
        Shouter.run, "hi", id=f"shout-1-{suffix}", task_queue=task_queue
    )
    async with Worker(client, task_queue=task_queue, workflows=[Other]):
        await asyncio.sleep(0.3)
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING
    history = [e async for e in handle.fetch_history_events()]
    failed = [e for e in history if e.HasField("workflow_task_failed_event_attributes")]
    assert failed, "the workflow task of an unknown type fails and is retried"
    assert (
        "Shouter is not registered"
        in failed[0].workflow_task_failed_event_attributes.failure.message
    )
    async with Worker(client, task_queue=task_queue, workflows=[Shouter], activities=[shout]):
        assert await asyncio.wait_for(handle.result(), 15) == "HI"


async def test_arguments_the_converter_cannot_encode(
    client: Client, task_queue: str, suffix: str
) -> None:
    with pytest.raises(TypeError):
        await client.start_workflow(
            "Shouter", NotSerializable(), id=f"shout-2-{suffix}", task_queue=task_queue
        )
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle(f"shout-2-{suffix}").describe()


async def test_payload_over_the_size_limit(client: Client, task_queue: str, suffix: str) -> None:
    with pytest.raises(RPCError, match="Blob data size exceeds limit"):
        await client.start_workflow(
            Shouter.run, "x" * (3 * 1024 * 1024), id=f"shout-3-{suffix}", task_queue=task_queue
        )
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle(f"shout-3-{suffix}").describe()


@pytest.mark.parametrize(
    ("reuse", "conflict", "message"),
    [
        (
            WorkflowIDReusePolicy.TERMINATE_IF_RUNNING,
            WorkflowIDConflictPolicy.FAIL,
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING"
            " cannot be used together with a WorkflowIDConflictPolicy",
        ),
        (
            WorkflowIDReusePolicy.REJECT_DUPLICATE,
            WorkflowIDConflictPolicy.TERMINATE_EXISTING,
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE cannot"
            " be used together with WorkflowIdConflictPolicy"
            " WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING",
        ),
    ],
)
async def test_id_policies_that_contradict_each_other(
    client: Client,
    task_queue: str,
    suffix: str,
    reuse: WorkflowIDReusePolicy,
    conflict: WorkflowIDConflictPolicy,
    message: str,
) -> None:
    with pytest.raises(RPCError) as info:
        await client.start_workflow(
            Other.run,
            id=f"other-{suffix}",
            task_queue=task_queue,
            id_reuse_policy=reuse,
            id_conflict_policy=conflict,
        )
    assert (info.value.status, info.value.message) == (RPCStatusCode.INVALID_ARGUMENT, message)


@activity.defn
async def huge() -> str:
    return "x" * (3 * 1024 * 1024)


@workflow.defn
class Huge:
    @workflow.run
    async def run(self, where: str) -> str:
        if where == "workflow":
            return "y" * (3 * 1024 * 1024)
        try:
            return await workflow.execute_activity(
                huge,
                start_to_close_timeout=timedelta(seconds=5),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            return str(err.cause)


async def test_activity_result_over_the_limit_fails_the_attempt(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Huge], activities=[huge]):
        message = await client.execute_workflow(
            Huge.run, "activity", id=f"huge-1-{suffix}", task_queue=task_queue
        )
    assert message == (
        "PayloadsTooLarge: "
        "[TMPRL1103] Attempted to upload payloads with size that exceeded the error limit."
    )


async def test_workflow_result_over_the_limit_fails_the_task_and_stores_nothing(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Huge], activities=[huge]):
        handle = await client.start_workflow(
            Huge.run, "workflow", id=f"huge-2-{suffix}", task_queue=task_queue
        )
        for _ in range(100):
            history = [e async for e in handle.fetch_history_events()]
            failed = [e for e in history if e.HasField("workflow_task_failed_event_attributes")]
            if failed:
                break
            await asyncio.sleep(0.02)
    attrs = failed[0].workflow_task_failed_event_attributes
    assert attrs.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_PAYLOADS_TOO_LARGE
    assert attrs.failure.message == (
        "[TMPRL1103] Attempted to upload payloads with size that exceeded the error limit."
    )
    assert attrs.failure.application_failure_info.type == "PayloadsTooLarge"
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


@workflow.defn
class SameActivityTwice:
    @workflow.run
    async def run(self) -> None:
        first = workflow.start_activity(
            shout, "a", activity_id="same", start_to_close_timeout=timedelta(seconds=5)
        )
        second = workflow.start_activity(
            shout, "b", activity_id="same", start_to_close_timeout=timedelta(seconds=5)
        )
        await asyncio.gather(first, second)


async def test_a_refused_command_fails_the_task_with_temporals_cause(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(
        client, task_queue=task_queue, workflows=[SameActivityTwice], activities=[shout]
    ):
        handle = await client.start_workflow(
            SameActivityTwice.run, id=f"same-{suffix}", task_queue=task_queue
        )
        for _ in range(100):
            history = [e async for e in handle.fetch_history_events()]
            failed = [e for e in history if e.HasField("workflow_task_failed_event_attributes")]
            if failed:
                break
            await asyncio.sleep(0.05)
        await handle.terminate("done looking")
    attrs = failed[0].workflow_task_failed_event_attributes
    assert attrs.cause == (
        WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_SCHEDULE_ACTIVITY_DUPLICATE_ID
    )
    # Nothing of the refused task is recorded.
    assert not [e for e in history if e.HasField("activity_task_scheduled_event_attributes")]
