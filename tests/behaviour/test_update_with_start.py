"""Update-with-start (ExecuteMultiOperation), on both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ablauf import Client, Worker


@workflow.defn
class Cart:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.closed = False

    @workflow.run
    async def run(self, mode: str) -> list[str]:
        if mode == "wait":
            await workflow.wait_condition(lambda: self.closed)
        return self.items

    @workflow.update
    async def add(self, item: str) -> list[str]:
        if item == "broken":
            raise ApplicationError("cannot add", non_retryable=True)
        self.items.append(item)
        return self.items

    @add.validator
    def check_add(self, item: str) -> None:
        if not item:
            raise ValueError("empty item")

    @workflow.signal
    def close(self) -> None:
        self.closed = True


def start_op(
    workflow_id: str,
    task_queue: str,
    conflict: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.USE_EXISTING,
    mode: str = "wait",
    **options: object,
) -> WithStartWorkflowOperation[Cart, list[str]]:
    return WithStartWorkflowOperation(
        Cart.run,
        mode,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=conflict,
        **options,  # type: ignore[arg-type]
    )


async def test_update_with_start_starts_or_uses_the_running_workflow(
    client: Client, task_queue: str, suffix: str
) -> None:
    workflow_id = f"cart-{suffix}"
    async with Worker(client, task_queue=task_queue, workflows=[Cart]) as worker:
        first = start_op(workflow_id, worker.task_queue)
        assert await client.execute_update_with_start_workflow(
            Cart.add, "apple", start_workflow_operation=first
        ) == ["apple"]
        started = await first.workflow_handle()
        assert started.first_execution_run_id is not None

        # USE_EXISTING: the update goes to the running workflow.
        again = start_op(workflow_id, task_queue)
        update = await client.start_update_with_start_workflow(
            Cart.add,
            "pear",
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            start_workflow_operation=again,
        )
        assert await update.result() == ["apple", "pear"]
        assert (await again.workflow_handle()).result_run_id == started.result_run_id

        # FAIL: the call and the operation's handle both raise.
        refused = start_op(workflow_id, task_queue, WorkflowIDConflictPolicy.FAIL)
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.execute_update_with_start_workflow(
                Cart.add, "plum", start_workflow_operation=refused
            )
        with pytest.raises(WorkflowAlreadyStartedError):
            await refused.workflow_handle()

        # TERMINATE_EXISTING: a new run gets the update.
        fresh = start_op(workflow_id, task_queue, WorkflowIDConflictPolicy.TERMINATE_EXISTING)
        assert await client.execute_update_with_start_workflow(
            Cart.add, "fig", start_workflow_operation=fresh
        ) == ["fig"]
        replaced = await fresh.workflow_handle()
        assert replaced.result_run_id != started.result_run_id
        old = client.get_workflow_handle(workflow_id, run_id=started.result_run_id)
        assert (await old.describe()).status == WorkflowExecutionStatus.TERMINATED
        await replaced.signal(Cart.close)
        assert await replaced.result() == ["fig"]


async def test_update_with_start_failing_update_still_starts_the_workflow(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Cart]):
        rejected = start_op(f"cart-{suffix}", task_queue)
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await client.execute_update_with_start_workflow(
                Cart.add, "", start_workflow_operation=rejected
            )
        assert isinstance(info.value.cause, ApplicationError)
        assert (info.value.cause.type, info.value.cause.message) == ("ValueError", "empty item")
        handle = await rejected.workflow_handle()
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        kinds = [e.event_type for e in (await handle.fetch_history()).events]
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED not in kinds

        failing = start_op(f"cart2-{suffix}", task_queue)
        update = await client.start_update_with_start_workflow(
            Cart.add,
            "broken",
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            start_workflow_operation=failing,
        )
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await update.result()
        assert isinstance(failed.value.cause, ApplicationError)
        assert failed.value.cause.message == "cannot add"
        for started in (handle, await failing.workflow_handle()):
            await started.signal(Cart.close)
            assert await started.result() == []


async def test_update_with_start_after_the_workflow_closed(
    client: Client, task_queue: str, suffix: str
) -> None:
    workflow_id = f"cart-{suffix}"
    async with Worker(client, task_queue=task_queue, workflows=[Cart]):
        quick = start_op(workflow_id, task_queue, mode="quick")
        assert await client.execute_update_with_start_workflow(
            Cart.add, "apple", id=f"upd-{suffix}", start_workflow_operation=quick
        ) == ["apple"]
        closed = await quick.workflow_handle()
        assert await closed.result() == ["apple"]

        # The closed run completed this update id: its result, nothing started.
        same = start_op(workflow_id, task_queue)
        assert await client.execute_update_with_start_workflow(
            Cart.add, "other", id=f"upd-{suffix}", start_workflow_operation=same
        ) == ["apple"]
        assert (await same.workflow_handle()).result_run_id == closed.result_run_id

        # A new update id: the id reuse policy decides whether a new run starts.
        rejected = start_op(
            workflow_id, task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE
        )
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.execute_update_with_start_workflow(
                Cart.add, "pear", start_workflow_operation=rejected
            )
        with pytest.raises(WorkflowAlreadyStartedError):
            await rejected.workflow_handle()
        allowed = start_op(workflow_id, task_queue, mode="quick")
        assert await client.execute_update_with_start_workflow(
            Cart.add, "pear", start_workflow_operation=allowed
        ) == ["pear"]
        assert (await allowed.workflow_handle()).result_run_id != closed.result_run_id


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron_schedule": "* * * * *"}, "CronSchedule is not allowed."),
        ({"start_delay": timedelta(seconds=1)}, "WorkflowStartDelay is not supported."),
        (
            {"id_reuse_policy": WorkflowIDReusePolicy.TERMINATE_IF_RUNNING},
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING"
            " cannot be used together with a WorkflowIDConflictPolicy",
        ),
    ],
)
async def test_update_with_start_refuses_start_options(
    client: Client, task_queue: str, suffix: str, options: dict[str, object], message: str
) -> None:
    op = start_op(f"cart-{suffix}", task_queue, **options)
    with pytest.raises(RPCError) as info:
        await client.execute_update_with_start_workflow(Cart.add, "x", start_workflow_operation=op)
    assert (info.value.status, info.value.message) == (RPCStatusCode.INVALID_ARGUMENT, message)
    with pytest.raises(RPCError):
        await op.workflow_handle()
