"""Child workflows and external workflow handles: commands, resolutions and replay."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import (
    ApplicationError,
    ChildWorkflowError,
    TerminatedError,
    WorkflowAlreadyStartedError,
)

from .helpers import CONVERTER, Run, kinds, payload, value


def _result(run: Run) -> object:
    command = run.outcomes[-1].commands[-1]
    return value(command.complete_workflow_execution_command_attributes.result.payloads[0])


@workflow.defn
class Kid:
    @workflow.run
    async def run(self, name: str) -> str:
        return name


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, mode: str) -> str:
        try:
            handle = await workflow.start_child_workflow(
                Kid.run,
                "kid",
                id="kid-1",
                task_queue="kids",
                memo={"m": 1},
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError as err:
            return f"already: {err.workflow_id} {err.workflow_type}"
        if mode == "signal":
            await handle.signal("poke", 7)
        if mode == "cancel":
            handle.cancel()
        try:
            result: str = await handle
        except ChildWorkflowError as err:
            return f"{err.message}/{type(err.cause).__name__}/{err.retry_state}"
        return f"{result}/{handle.first_execution_run_id}"


def test_child_start_and_result() -> None:
    run = Run(Parent, "plain")
    first = run.task()
    assert kinds(first.commands) == ["START_CHILD_WORKFLOW_EXECUTION"]
    attrs = first.commands[0].start_child_workflow_execution_command_attributes
    assert (attrs.workflow_id, attrs.workflow_type.name, attrs.task_queue.name) == (
        "kid-1",
        "Kid",
        "kids",
    )
    assert attrs.namespace == "default"
    assert attrs.parent_close_policy == 2  # ABANDON
    assert value(attrs.input.payloads[0]) == "kid"
    assert value(attrs.memo.fields["m"]) == 1
    run.child_started("kid-1", "run-9")
    assert run.task().commands == []
    run.child_closed("kid-1", "completed", result=_payloads("done"))
    run.task()
    assert _result(run) == "done/run-9"
    assert run.replay().failure is None
    run.close()


def test_child_already_started() -> None:
    run = Run(Parent, "plain")
    run.task()
    run.child_start_failed("kid-1")
    run.task()
    assert _result(run) == "already: kid-1 Kid"
    assert run.replay().failure is None
    run.close()


def test_child_failed_is_a_child_workflow_error() -> None:
    run = Run(Parent, "plain")
    run.task()
    run.child_started("kid-1")
    failure = Failure()
    CONVERTER.failure_converter.to_failure(
        ApplicationError("kid broke"), CONVERTER.payload_converter, failure
    )
    run.child_closed("kid-1", "failed", failure=failure, retry_state=5)
    run.task()
    assert _result(run) == ("Child Workflow execution failed/ApplicationError/5")
    run.close()


def test_child_terminated() -> None:
    run = Run(Parent, "plain")
    run.task()
    run.child_started("kid-1")
    run.child_closed("kid-1", "terminated")
    run.task()
    assert _result(run) == f"Child Workflow execution terminated/{TerminatedError.__name__}/2"
    run.close()


def test_signal_child() -> None:
    run = Run(Parent, "signal")
    run.task()
    run.child_started("kid-1")
    second = run.task()
    assert kinds(second.commands) == ["SIGNAL_EXTERNAL_WORKFLOW_EXECUTION"]
    attrs = second.commands[0].signal_external_workflow_execution_command_attributes
    assert (attrs.execution.workflow_id, attrs.signal_name, attrs.child_workflow_only) == (
        "kid-1",
        "poke",
        True,
    )
    run.external_signaled()
    assert run.task().commands == []
    run.child_closed("kid-1", "completed", result=_payloads("ok"))
    run.task()
    assert _result(run) == "ok/child-run"
    assert run.replay().failure is None
    run.close()


def test_cancel_started_child_waits_for_its_cancellation() -> None:
    run = Run(Parent, "cancel")
    run.task()
    run.child_started("kid-1", "run-3")
    second = run.task()
    # WAIT_CANCELLATION_COMPLETED (the default): the request goes out, the handle waits.
    assert kinds(second.commands) == ["REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION"]
    attrs = second.commands[0].request_cancel_external_workflow_execution_command_attributes
    assert (attrs.workflow_id, attrs.run_id, attrs.child_workflow_only) == (
        "kid-1",
        "run-3",
        True,
    )
    run.external_cancel_requested()
    assert run.task().commands == []
    run.child_closed("kid-1", "canceled")
    run.task()
    assert _result(run) == "Child Workflow execution cancelled/CancelledError/2"
    assert run.replay().failure is None
    run.close()


@workflow.defn
class CancelBeforeStart:
    @workflow.run
    async def run(self) -> str:
        task = asyncio.create_task(workflow.start_child_workflow(Kid.run, "x", id="kid-2"))
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except ChildWorkflowError as err:
            return f"{err.message}|{type(err.cause).__name__}"
        except asyncio.CancelledError:
            return "cancelled"
        return "started"


def test_cancel_child_before_it_is_sent() -> None:
    run = Run(CancelBeforeStart)
    first = run.task()
    # The start command never goes out.
    assert kinds(first.commands) == ["COMPLETE_WORKFLOW_EXECUTION"]
    assert str(_result(run)).startswith("Child Workflow Execution cancelled before scheduled")
    assert run.replay().failure is None
    run.close()


@workflow.defn
class External:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.get_external_workflow_handle("other", run_id="r1")
        try:
            await handle.signal("hello", "there")
        except ApplicationError as err:
            return f"signal failed: {err.message} ({err.type})"
        await handle.cancel(reason="enough")
        return "done"


def test_external_signal_and_cancel() -> None:
    run = Run(External)
    first = run.task()
    assert kinds(first.commands) == ["SIGNAL_EXTERNAL_WORKFLOW_EXECUTION"]
    attrs = first.commands[0].signal_external_workflow_execution_command_attributes
    assert (attrs.execution.workflow_id, attrs.execution.run_id) == ("other", "r1")
    assert attrs.child_workflow_only is False
    assert value(attrs.input.payloads[0]) == "there"
    run.external_signaled()
    second = run.task()
    assert kinds(second.commands) == ["REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION"]
    cancel = second.commands[0].request_cancel_external_workflow_execution_command_attributes
    assert (cancel.workflow_id, cancel.run_id, cancel.reason) == ("other", "r1", "enough")
    run.external_cancel_requested()
    run.task()
    assert _result(run) == "done"
    assert run.replay().failure is None
    run.close()


def test_external_signal_failure() -> None:
    run = Run(External)
    run.task()
    run.external_signal_failed()
    run.task()
    assert _result(run) == (
        "signal failed: Unable to signal external workflow because it was not found "
        "(ExternalWorkflowExecutionNotFound)"
    )
    assert run.replay().failure is None
    run.close()


def _payloads(result: object) -> object:
    from temporalio.api.common.v1 import Payloads

    return Payloads(payloads=[payload(result)])


def test_eviction_with_a_pending_child_and_signal() -> None:
    run = Run(Parent, "signal")
    run.task()
    run.child_started("kid-1")
    run.task()  # the signal is out, not yet delivered
    run.close()  # eviction cancels the waiting coroutines without new commands
