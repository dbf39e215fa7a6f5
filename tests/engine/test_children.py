"""Child workflows and requests to other workflows, as transfer steps between runs."""

from __future__ import annotations

from temporalio.api.command.v1 import (
    Command,
    SignalExternalWorkflowExecutionCommandAttributes,
    StartChildWorkflowExecutionCommandAttributes,
)
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import (
    CommandType,
    EventType,
    ParentClosePolicy,
    WorkflowExecutionStatus,
)

from ablauf.engine import executions
from ablauf.engine.engine import Engine
from ablauf.store.base import WORKFLOW_TASK

from .conftest import start_request
from .test_transitions import complete, take, types

E = EventType


def start_child(workflow_id: str, policy: int = 0) -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
        start_child_workflow_execution_command_attributes=StartChildWorkflowExecutionCommandAttributes(
            workflow_id=workflow_id,
            workflow_type=WorkflowType(name="Child"),
            parent_close_policy=policy,  # type: ignore[arg-type]
        ),
    )


async def take_all(engine: Engine) -> dict[str, object]:
    """The leased workflow tasks waiting in the local queue, by run id."""
    queue = engine.matching.local(WORKFLOW_TASK, "q")
    assert queue is not None
    refs = {}
    while len(queue):
        ref = await queue.get()
        refs[ref.run_id] = ref
    return refs


async def run_first_task(engine: Engine, commands: list[Command]) -> None:
    ref = await take(engine, WORKFLOW_TASK)
    assert engine.workflow_tasks.read(ref, 0) is not None
    assert engine.workflow_tasks.complete(ref, commands)


async def test_child_starts_and_reports_its_result(engine: Engine) -> None:
    engine.matching.register(WORKFLOW_TASK, "q")
    parent = executions.start(engine, start_request("parent"))[0]
    await run_first_task(engine, [start_child("kid")])
    engine.service.tick()
    assert types(engine, parent)[-3:] == [
        "START_CHILD_WORKFLOW_EXECUTION_INITIATED",
        "CHILD_WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
    ]
    kid = engine.execution("default", "kid")
    started = engine.history(kid.run_id)[0].workflow_execution_started_event_attributes
    assert started.parent_workflow_execution.run_id == parent
    assert started.task_queue.name == "q"
    refs = await take_all(engine)
    assert set(refs) == {parent, kid.run_id}
    engine.workflow_tasks.read(refs[parent], 0)  # type: ignore[arg-type]
    engine.workflow_tasks.complete(refs[parent], [])  # type: ignore[arg-type]
    kid_ref = refs[kid.run_id]
    engine.workflow_tasks.read(kid_ref, 0)  # type: ignore[arg-type]
    engine.workflow_tasks.complete(kid_ref, [complete(b"7")])  # type: ignore[arg-type]
    engine.service.tick()
    last = engine.history(parent)[-2]
    assert last.event_type == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED
    assert last.child_workflow_execution_completed_event_attributes.result.payloads[0].data == b"7"


async def test_duplicate_child_id_fails_the_start(engine: Engine) -> None:
    engine.matching.register(WORKFLOW_TASK, "q")
    executions.start(engine, start_request("kid"))
    await take(engine, WORKFLOW_TASK)
    parent = executions.start(engine, start_request("parent"))[0]
    await run_first_task(engine, [start_child("kid")])
    engine.service.tick()
    failed = engine.history(parent)[-2]
    assert failed.event_type == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED


async def test_parent_close_terminates_children_by_default(engine: Engine) -> None:
    engine.matching.register(WORKFLOW_TASK, "q")
    parent = executions.start(engine, start_request("parent"))[0]
    await run_first_task(
        engine,
        [start_child("kid"), start_child("free", ParentClosePolicy.PARENT_CLOSE_POLICY_ABANDON)],
    )
    engine.service.tick()
    parent_ref = (await take_all(engine))[parent]
    engine.workflow_tasks.read(parent_ref, 0)  # type: ignore[arg-type]
    engine.workflow_tasks.complete(parent_ref, [complete()])  # type: ignore[arg-type]
    engine.service.tick()
    assert (
        engine.execution("default", "kid").status
        == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED
    )
    assert (
        engine.execution("default", "free").status
        == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    )


async def test_signal_to_another_workflow(engine: Engine) -> None:
    engine.matching.register(WORKFLOW_TASK, "q")
    target = executions.start(engine, start_request("target"))[0]
    await run_first_task(engine, [])
    sender = executions.start(engine, start_request("sender"))[0]
    signal = Command(
        command_type=CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
        signal_external_workflow_execution_command_attributes=SignalExternalWorkflowExecutionCommandAttributes(
            execution=WorkflowExecution(workflow_id="target"), signal_name="hello"
        ),
    )
    missing = Command()
    missing.CopyFrom(signal)
    missing.signal_external_workflow_execution_command_attributes.execution.workflow_id = "nobody"
    await run_first_task(engine, [signal, missing])
    engine.service.tick()
    assert "WORKFLOW_EXECUTION_SIGNALED" in types(engine, target)
    names = types(engine, sender)
    assert "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED" in names
    assert "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED" in names
