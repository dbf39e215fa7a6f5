"""The frontend's requests: one without a run id goes to the run current when
it is applied, not when it arrived."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from temporalio.api.command.v1 import Command, ContinueAsNewWorkflowExecutionCommandAttributes
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import CommandType, EventType, WorkflowExecutionStatus
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    RequestCancelWorkflowExecutionRequest,
    SignalWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
)
from temporalio.service import RPCError

from ablauf.engine import executions
from ablauf.engine.engine import Engine
from ablauf.engine.frontend import Frontend
from ablauf.store.base import WORKFLOW_TASK

from .conftest import start_request
from .test_transitions import take

WF = WorkflowExecution(workflow_id="wf-1")


def continue_as_new() -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
        continue_as_new_workflow_execution_command_attributes=(
            ContinueAsNewWorkflowExecutionCommandAttributes(
                workflow_type=WorkflowType(name="MyWorkflow"), task_queue=TaskQueue(name="q")
            )
        ),
    )


async def arrive_as_run_continues(engine: Engine, request: Callable[[], Awaitable[object]]) -> str:
    """The request arrives after the continue-as-new was submitted and before
    that group commits; returns the first run's id."""
    run_id = executions.start(engine, start_request())[0]
    ref = await take(engine, WORKFLOW_TASK)
    assert engine.workflow_tasks.read(ref, 0) is not None
    loop = asyncio.get_running_loop()
    continued: list[asyncio.Future[bool]] = []
    # In this order on the loop: the completion is submitted, the request
    # arrives, then the group commits both.
    loop.call_soon(
        lambda: continued.append(
            engine.submit(lambda: engine.workflow_tasks.complete(ref, [continue_as_new()]))
        )
    )
    await asyncio.ensure_future(request())
    assert await continued[0]
    return run_id


def events_of(engine: Engine, run_id: str) -> list[int]:
    return [e.event_type for e in engine.history(run_id)]


async def test_signal_without_run_id_reaches_the_continued_run(local: Engine) -> None:
    frontend = Frontend(local)
    req = SignalWorkflowExecutionRequest(
        namespace="default", workflow_execution=WF, signal_name="late"
    )
    first = await arrive_as_run_continues(
        local, lambda: frontend.call("signal_workflow_execution", req, None)
    )
    current = local.execution("default", "wf-1").run_id
    assert current != first
    signaled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    assert signaled in events_of(local, current)
    assert signaled not in events_of(local, first)


async def test_cancel_without_run_id_reaches_the_continued_run(local: Engine) -> None:
    frontend = Frontend(local)
    req = RequestCancelWorkflowExecutionRequest(namespace="default", workflow_execution=WF)
    await arrive_as_run_continues(
        local, lambda: frontend.call("request_cancel_workflow_execution", req, None)
    )
    current = local.execution("default", "wf-1").run_id
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED in events_of(local, current)


async def test_terminate_without_run_id_ends_the_continued_run(local: Engine) -> None:
    frontend = Frontend(local)
    req = TerminateWorkflowExecutionRequest(namespace="default", workflow_execution=WF)
    first = await arrive_as_run_continues(
        local, lambda: frontend.call("terminate_workflow_execution", req, None)
    )
    current = local.execution("default", "wf-1")
    assert current.run_id != first
    assert current.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED
    assert (
        local.execution("default", "wf-1", first).status
        == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW
    )


async def test_signal_to_a_closed_run_by_id_is_still_refused(local: Engine) -> None:
    frontend = Frontend(local)
    run_id = executions.start(local, start_request())[0]
    executions.terminate(local, run_id, "done", None, "me")
    req = SignalWorkflowExecutionRequest(
        namespace="default",
        workflow_execution=WorkflowExecution(workflow_id="wf-1", run_id=run_id),
        signal_name="late",
    )
    with pytest.raises(RPCError, match="workflow execution already completed"):
        await frontend.call("signal_workflow_execution", req, None)
