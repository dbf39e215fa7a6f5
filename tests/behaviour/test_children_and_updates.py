"""Child workflows, external workflow handles and updates, on both engines."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.update.v1 import UpdateRef
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.converter import DataConverter
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError, RPCStatusCode

from ablauf import Client, Worker

from .test_converters import Reverse

# -- workflows -------------------------------------------------------------------------------------


@workflow.defn
class Child:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self, mode: str) -> str:
        parent = workflow.info().parent
        if mode == "fail":
            raise ApplicationError("child broke", "detail", type="ChildBroke", non_retryable=True)
        if mode == "wait":
            await workflow.wait_condition(lambda: self.done)
            return ",".join(self.items)
        if mode == "forever":
            await workflow.wait_condition(lambda: False)
        assert parent is not None
        return f"{mode}:{parent.workflow_id}"

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    def finish(self) -> None:
        self.done = True


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, mode: str, child_id: str, queue: str) -> str:
        if mode == "result":
            return await workflow.execute_child_workflow(
                Child.run, "hello", id=child_id, task_queue=queue
            )
        if mode == "fail":
            try:
                await workflow.execute_child_workflow(Child.run, "fail", id=child_id)
            except ChildWorkflowError as err:
                assert isinstance(err.cause, ApplicationError)
                return f"{err.message}|{err.cause.type}|{err.cause.message}|{err.retry_state}"
            return "no error"
        if mode == "duplicate":
            first = await workflow.start_child_workflow(Child.run, "wait", id=child_id)
            try:
                await workflow.start_child_workflow(Child.run, "wait", id=child_id)
            except WorkflowAlreadyStartedError as err:
                await first.signal(Child.finish)
                await first
                return f"already started: {err.workflow_id} {err.workflow_type}"
            return "no error"
        if mode == "signal":
            handle = await workflow.start_child_workflow(Child.run, "wait", id=child_id)
            await handle.signal(Child.add, "a")
            await handle.signal(Child.add, "b")
            await handle.signal(Child.finish)
            result = await handle
            return f"{result}|{handle.first_execution_run_id is not None}"
        if mode in ("cancel", "cancel-wait"):
            cancellation_type = (
                workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
                if mode == "cancel-wait"
                else workflow.ChildWorkflowCancellationType.TRY_CANCEL
            )
            # Abandoned when the parent closes, so the child ends by its cancellation.
            handle = await workflow.start_child_workflow(
                Child.run,
                "forever",
                id=child_id,
                cancellation_type=cancellation_type,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
            await workflow.sleep(0.1)
            handle.cancel()
            try:
                await handle
            except ChildWorkflowError as err:
                # TRY_CANCEL resolves at once; a parent that closes in the same task
                # takes its cancel request with it, on Temporal too.
                await workflow.sleep(1)
                return f"{type(err.cause).__name__}"
            return "no error"
        if mode in ("terminate", "abandon"):
            policy = (
                workflow.ParentClosePolicy.TERMINATE
                if mode == "terminate"
                else workflow.ParentClosePolicy.ABANDON
            )
            await workflow.start_child_workflow(
                Child.run, "wait", id=child_id, parent_close_policy=policy
            )
            return "left"
        raise ValueError(mode)


@workflow.defn
class Messenger:
    @workflow.run
    async def run(self, mode: str, target: str) -> str:
        handle = workflow.get_external_workflow_handle(target)
        if mode == "signal":
            await handle.signal(Child.add, "external")
            await handle.signal(Child.finish)
            return "signalled"
        if mode == "cancel":
            await handle.cancel()
            return "cancel requested"
        if mode == "signal-missing":
            try:
                await handle.signal(Child.finish)
            except ApplicationError as err:
                return err.message
            return "no error"
        raise ValueError(mode)


@workflow.defn
class Counter:
    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done and workflow.all_handlers_finished())
        return self.total

    @workflow.update
    async def add(self, amount: int) -> int:
        if amount == 13:
            raise ApplicationError("unlucky", non_retryable=True)
        await workflow.sleep(0.05)
        self.total += amount
        return self.total

    @add.validator
    def check_add(self, amount: int) -> None:
        if amount < 0:
            raise ValueError(f"negative amount {amount}")

    @workflow.update
    def finish(self) -> str:
        self.done = True
        return "finishing"


@workflow.defn
class Holder:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.notes

    @workflow.update
    def note(self, text: str) -> list[str]:
        self.notes.append(text)
        self.done = text == "last"
        return self.notes

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def hold(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def seen(self) -> list[str]:
        return self.notes


# Per test: set once the local activity runs, and to let it finish.
_gates: dict[str, asyncio.Event] = {}


@activity.defn
async def hold_the_task(key: str) -> None:
    _gates[f"{key}/started"].set()
    await _gates[f"{key}/release"].wait()


@workflow.defn
class Relay:
    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self, key: str) -> list[str]:
        if key:
            await workflow.execute_local_activity(
                hold_the_task, key, start_to_close_timeout=timedelta(seconds=10)
            )
            workflow.continue_as_new("")
        await workflow.wait_condition(lambda: bool(self.notes))
        return self.notes

    @workflow.update
    def note(self, text: str) -> list[str]:
        self.notes.append(text)
        return self.notes


WORKFLOWS = [Parent, Child, Messenger, Counter, Holder]


async def until_admitted(client: Client, workflow_id: str, update_id: str) -> None:
    """Waits until the update is admitted (a poll with no wait policy finds it)."""
    req = PollWorkflowExecutionUpdateRequest(
        namespace=client.namespace,
        update_ref=UpdateRef(
            workflow_execution=WorkflowExecution(workflow_id=workflow_id), update_id=update_id
        ),
    )
    for _ in range(200):
        try:
            await client.workflow_service.poll_workflow_execution_update(req)
            return
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        await asyncio.sleep(0.05)
    raise AssertionError(f"update {update_id} never admitted")


# -- child workflows -------------------------------------------------------------------------------


async def test_child_result(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        result = await client.execute_workflow(
            Parent.run,
            args=["result", f"child-{suffix}", task_queue],
            id=f"parent-{suffix}",
            task_queue=task_queue,
        )
    assert result == f"hello:parent-{suffix}"


async def test_child_on_another_task_queue(client: Client, task_queue: str, suffix: str) -> None:
    other = f"{task_queue}-children"
    async with (
        Worker(client, task_queue=task_queue, workflows=[Parent]),
        Worker(client, task_queue=other, workflows=[Child]),
    ):
        result = await client.execute_workflow(
            Parent.run,
            args=["result", f"child-{suffix}", other],
            id=f"parent-{suffix}",
            task_queue=task_queue,
        )
    assert result == f"hello:parent-{suffix}"
    desc = await client.get_workflow_handle(f"child-{suffix}").describe()
    assert desc.task_queue == other


async def test_child_failure(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        result = await client.execute_workflow(
            Parent.run,
            args=["fail", f"child-{suffix}", task_queue],
            id=f"parent-{suffix}",
            task_queue=task_queue,
        )
    # The child has no retry policy: RETRY_STATE_RETRY_POLICY_NOT_SET.
    assert result == "Child Workflow execution failed|ChildBroke|child broke|5"


async def test_duplicate_child_id(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        result = await client.execute_workflow(
            Parent.run,
            args=["duplicate", f"child-{suffix}", task_queue],
            id=f"parent-{suffix}",
            task_queue=task_queue,
        )
    assert result == f"already started: child-{suffix} Child"


async def test_signal_child(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        result = await client.execute_workflow(
            Parent.run,
            args=["signal", f"child-{suffix}", task_queue],
            id=f"parent-{suffix}",
            task_queue=task_queue,
        )
    assert result == "a,b|True"


@pytest.mark.parametrize("mode", ["cancel", "cancel-wait"])
async def test_cancel_child(client: Client, task_queue: str, suffix: str, mode: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        result = await client.execute_workflow(
            Parent.run,
            args=[mode, f"child-{suffix}", task_queue],
            id=f"parent-{suffix}",
            task_queue=task_queue,
        )
        assert result == "CancelledError"
        child = client.get_workflow_handle(f"child-{suffix}")
        for _ in range(100):
            if (await child.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.05)
        assert (await child.describe()).status == WorkflowExecutionStatus.CANCELED


@pytest.mark.parametrize("policy", ["terminate", "abandon"])
async def test_parent_close_policy(
    client: Client, task_queue: str, suffix: str, policy: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        result = await client.execute_workflow(
            Parent.run,
            args=[policy, f"child-{suffix}", task_queue],
            id=f"parent-{suffix}",
            task_queue=task_queue,
        )
        assert result == "left"
        child = client.get_workflow_handle(f"child-{suffix}")
        expected = (
            WorkflowExecutionStatus.TERMINATED
            if policy == "terminate"
            else WorkflowExecutionStatus.RUNNING
        )
        for _ in range(100):
            if (await child.describe()).status == expected:
                break
            await asyncio.sleep(0.05)
        assert (await child.describe()).status == expected
        history = await child.fetch_history()
        parent = history.events[0].workflow_execution_started_event_attributes
        assert parent.parent_workflow_execution.workflow_id == f"parent-{suffix}"
        if policy == "abandon":
            await child.signal(Child.finish)
            assert await child.result() == ""


# -- external workflows ----------------------------------------------------------------------------


async def test_external_signal(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        target = await client.start_workflow(
            Child.run, "wait", id=f"target-{suffix}", task_queue=task_queue
        )
        result = await client.execute_workflow(
            Messenger.run,
            args=["signal", target.id],
            id=f"messenger-{suffix}",
            task_queue=task_queue,
        )
        assert result == "signalled"
        assert await target.result() == "external"


async def test_external_signal_missing(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        result = await client.execute_workflow(
            Messenger.run,
            args=["signal-missing", f"nobody-{suffix}"],
            id=f"messenger-{suffix}",
            task_queue=task_queue,
        )
    assert result == "Unable to signal external workflow because it was not found"


async def test_external_cancel(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        target = await client.start_workflow(
            Child.run, "forever", id=f"target-{suffix}", task_queue=task_queue
        )
        result = await client.execute_workflow(
            Messenger.run,
            args=["cancel", target.id],
            id=f"messenger-{suffix}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=30),
        )
        assert result == "cancel requested"
        with pytest.raises(WorkflowFailureError) as info:
            await target.result()
        assert isinstance(info.value.cause, CancelledError)


# -- updates ---------------------------------------------------------------------------------------


async def test_update_accepted_with_result(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        handle = await client.start_workflow(
            Counter.run, id=f"counter-{suffix}", task_queue=task_queue
        )
        assert await handle.execute_update(Counter.add, 5) == 5
        assert await handle.execute_update(Counter.add, 7) == 12
        assert await handle.execute_update(Counter.finish) == "finishing"
        assert await handle.result() == 12
        events = [e async for e in handle.fetch_history_events()]
    kinds = [e.event_type for e in events]
    assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 3
    assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED) == 3


async def test_update_rejected_by_validator(
    client: Client, task_queue: str, suffix: str, engine_name: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        handle = await client.start_workflow(
            Counter.run, id=f"counter-{suffix}", task_queue=task_queue
        )
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(Counter.add, -1)
        assert isinstance(info.value.cause, ApplicationError)
        assert info.value.cause.message == "negative amount -1"
        assert info.value.cause.type == "ValueError"
        # The run goes on: a valid update after the rejected one.
        assert await handle.execute_update(Counter.add, 2) == 2
        await handle.execute_update(Counter.finish)
        assert await handle.result() == 2
        events = [e async for e in handle.fetch_history_events()]
    kinds = [e.event_type for e in events]
    # A rejection leaves no event: only the two accepted updates are in history.
    assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 2
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED not in kinds


async def test_update_handler_failure(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        handle = await client.start_workflow(
            Counter.run, id=f"counter-{suffix}", task_queue=task_queue
        )
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(Counter.add, 13)
        assert isinstance(info.value.cause, ApplicationError)
        assert info.value.cause.message == "unlucky"
        await handle.execute_update(Counter.finish)
        assert await handle.result() == 0


async def test_start_update_then_result(client: Client, task_queue: str, suffix: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        handle = await client.start_workflow(
            Counter.run, id=f"counter-{suffix}", task_queue=task_queue
        )
        update = await handle.start_update(
            Counter.add, 3, wait_for_stage=WorkflowUpdateStage.ACCEPTED, id=f"upd-{suffix}"
        )
        assert update.id == f"upd-{suffix}"
        assert await update.result() == 3
        again = handle.get_update_handle_for(Counter.add, f"upd-{suffix}")
        assert await again.result() == 3
        # finish and the run's end wait for every handler: all_handlers_finished.
        slow = await handle.start_update(
            Counter.add, 4, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        await handle.execute_update(Counter.finish)
        assert await handle.result() == 7
        assert await slow.result() == 7


@pytest.mark.timeout(60)
async def test_an_update_with_no_worker_fails_at_its_rpc_timeout(
    client: Client, task_queue: str, suffix: str
) -> None:
    handle = await client.start_workflow(Counter.run, id=f"counter-{suffix}", task_queue=task_queue)
    deadline = timedelta(seconds=1)
    calls = {
        "execute": lambda: handle.execute_update(
            Counter.add, 1, id=f"first-{suffix}", rpc_timeout=deadline
        ),
        "start": lambda: handle.start_update(
            Counter.add, 2, wait_for_stage=WorkflowUpdateStage.ACCEPTED, rpc_timeout=deadline
        ),
        "poll": lambda: handle.get_update_handle_for(Counter.add, f"first-{suffix}").result(
            rpc_timeout=deadline
        ),
    }
    for name, call in calls.items():
        started = time.monotonic()
        # No worker polls the queue: the update is admitted and waits for one
        # until the call's deadline, which the client reports as its own error.
        with pytest.raises(WorkflowUpdateRPCTimeoutOrCancelledError):
            await asyncio.wait_for(call(), 15)
        assert 0.9 < time.monotonic() - started < 5, name
    # The admitted updates were kept: the first worker runs both.
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        first = handle.get_update_handle_for(Counter.add, f"first-{suffix}")
        assert await asyncio.wait_for(first.result(), 15) == 1
        await handle.execute_update(Counter.finish)
        assert await asyncio.wait_for(handle.result(), 15) == 3


async def test_updates_and_children_through_a_codec(
    target: str, task_queue: str, suffix: str
) -> None:
    converter = dataclasses.replace(DataConverter.default, payload_codec=Reverse())
    client = await Client.connect(target, data_converter=converter)
    try:
        async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
            handle = await client.start_workflow(
                Counter.run, id=f"counter-{suffix}", task_queue=task_queue
            )
            assert await handle.execute_update(Counter.add, 4) == 4
            with pytest.raises(WorkflowUpdateFailedError):
                await handle.execute_update(Counter.add, -4)
            await handle.execute_update(Counter.finish)
            assert await handle.result() == 4
            result = await client.execute_workflow(
                Parent.run,
                args=["result", f"child-{suffix}", task_queue],
                id=f"parent-{suffix}",
                task_queue=task_queue,
            )
            assert result == f"hello:parent-{suffix}"
        events = [e async for e in handle.fetch_history_events()]
        completed = next(
            e.workflow_execution_update_completed_event_attributes
            for e in events
            if e.HasField("workflow_execution_update_completed_event_attributes")
        )
        assert completed.outcome.success.payloads[0].metadata["encoding"] == b"binary/reversed"
    finally:
        await client.close()


async def test_an_update_fails_when_its_workflow_closes_first(
    client: Client, task_queue: str, suffix: str
) -> None:
    # Admitted, and no worker has seen it: aborted with the run.
    waiting = await client.start_workflow(
        Holder.run, id=f"holder-0-{suffix}", task_queue=task_queue
    )
    admitted = asyncio.create_task(waiting.execute_update(Holder.hold, id=f"early-{suffix}"))
    await until_admitted(client, waiting.id, f"early-{suffix}")
    await waiting.terminate()
    with pytest.raises(RPCError) as aborted:
        await admitted
    assert (aborted.value.status, aborted.value.message) == (
        RPCStatusCode.NOT_FOUND,
        "workflow update was aborted by closing workflow",
    )
    # Accepted: the update fails with the server's own failure, whether the
    # run completes or is terminated.
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        for n in (1, 2):
            handle = await client.start_workflow(
                Holder.run, id=f"holder-{n}-{suffix}", task_queue=task_queue
            )
            update = await handle.start_update(
                Holder.hold, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
            if n == 1:
                await handle.signal(Holder.finish)
                assert await handle.result() == []
            else:
                await handle.terminate()
            with pytest.raises(WorkflowUpdateFailedError) as failed:
                await update.result()
            cause = failed.value.cause
            assert isinstance(cause, ApplicationError)
            assert (cause.type, cause.message, cause.non_retryable) == (
                "AcceptedUpdateCompletedWorkflow",
                "Workflow Update failed because the Workflow completed before the Update"
                " completed.",
                True,
            )


async def test_a_handle_of_an_older_chain_reaches_no_newer_one(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        first = await client.start_workflow(
            Holder.run, id=f"holder-{suffix}", task_queue=task_queue
        )
        await first.signal(Holder.finish)
        await first.result()
        second = await client.start_workflow(
            Holder.run, id=f"holder-{suffix}", task_queue=task_queue
        )
        # The handle names the first run of its chain; the running run is of another.
        for call in (lambda: first.execute_update(Holder.note, "x"), first.cancel, first.terminate):
            with pytest.raises(RPCError) as info:
                await call()
            assert (info.value.status, info.value.message) == (
                RPCStatusCode.NOT_FOUND,
                "workflow execution not found",
            )
        assert (await second.describe()).status == WorkflowExecutionStatus.RUNNING
        await second.terminate()


async def test_a_query_after_completion_sees_what_an_update_changed(
    client: Client, task_queue: str, suffix: str
) -> None:
    handle = await client.start_workflow(Holder.run, id=f"holder-{suffix}", task_queue=task_queue)
    # Admitted before any worker runs: the first workflow task carries it and
    # the run completes in that task.
    early = asyncio.create_task(handle.execute_update(Holder.note, "last", id=f"last-{suffix}"))
    await until_admitted(client, handle.id, f"last-{suffix}")
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS, max_cached_workflows=0):
        assert await early == ["last"]
        assert await handle.result() == ["last"]
        # No cache: the query replays the whole history, the update included.
        assert await handle.query(Holder.seen) == ["last"]


async def test_an_update_the_run_never_saw_goes_to_its_continuation(
    client: Client, task_queue: str, suffix: str
) -> None:
    started = _gates[f"{suffix}/started"] = asyncio.Event()
    release = _gates[f"{suffix}/release"] = asyncio.Event()
    async with Worker(client, task_queue=task_queue, workflows=[Relay], activities=[hold_the_task]):
        handle = await client.start_workflow(
            Relay.run, suffix, id=f"relay-{suffix}", task_queue=task_queue
        )
        await asyncio.wait_for(started.wait(), 10)
        # Admitted while the workflow task that continues as new runs.
        update = asyncio.create_task(
            handle.execute_update(Relay.note, "moved", id=f"moved-{suffix}")
        )
        await until_admitted(client, handle.id, f"moved-{suffix}")
        release.set()
        assert await asyncio.wait_for(update, 15) == ["moved"]
        assert await handle.result() == ["moved"]
        first = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        kinds = [e.event_type for e in (await first.fetch_history()).events]
        assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED not in kinds
