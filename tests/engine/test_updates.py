"""Updates: rejected ones leave no trace; accepted ones are events."""

from __future__ import annotations

from google.protobuf.any_pb2 import Any as AnyProto
from temporalio.api.command.v1 import Command, ProtocolMessageCommandAttributes
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import CommandType
from temporalio.api.failure.v1 import Failure
from temporalio.api.protocol.v1 import Message
from temporalio.api.update.v1 import Acceptance, Input, Meta, Outcome, Rejection, Request, Response

from ablauf.engine import executions, updates
from ablauf.engine.engine import Engine
from ablauf.store.base import UPDATE_COMPLETED, UPDATE_REJECTED, WORKFLOW_TASK

from .conftest import start_request
from .test_transitions import take, types


def update_request(update_id: str) -> Request:
    return Request(meta=Meta(update_id=update_id), input=Input(name="set"))


def message(update_id: str, body: object, suffix: str) -> Message:
    packed = AnyProto()
    packed.Pack(body)  # type: ignore[arg-type]
    return Message(id=f"{update_id}/{suffix}", protocol_instance_id=update_id, body=packed)


def protocol_command(message_id: str) -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_PROTOCOL_MESSAGE,
        protocol_message_command_attributes=ProtocolMessageCommandAttributes(message_id=message_id),
    )


async def idle_run(engine: Engine) -> str:
    engine.matching.register(WORKFLOW_TASK, "q")
    run_id = executions.start(engine, start_request())[0]
    ref = await take(engine, WORKFLOW_TASK)
    engine.workflow_tasks.read(ref, 0)
    engine.workflow_tasks.complete(ref, [])
    return run_id


async def test_rejected_update_leaves_no_trace(engine: Engine) -> None:
    run_id = await idle_run(engine)
    before = types(engine, run_id)
    updates.request(engine, run_id, update_request("u1"))
    ref = await take(engine, WORKFLOW_TASK)
    task = engine.workflow_tasks.read(ref, 4)
    assert task is not None
    assert [m.protocol_instance_id for m in task.messages] == ["u1"]
    # The speculative task shows a scheduled and a started event that are not stored.
    assert [e.event_id for e in task.events] == [5, 6]
    rejection = Rejection(rejected_request_message_id="u1/request", failure=Failure(message="no"))
    assert engine.workflow_tasks.complete(ref, [], None, [message("u1", rejection, "reject")])
    assert types(engine, run_id) == before
    rec = engine.store.get_update(run_id, "u1")
    assert rec is not None and rec.state == UPDATE_REJECTED


async def test_accepted_update_is_recorded(engine: Engine) -> None:
    run_id = await idle_run(engine)
    updates.request(engine, run_id, update_request("u2"))
    ref = await take(engine, WORKFLOW_TASK)
    engine.workflow_tasks.read(ref, 4)
    accept = message("u2", Acceptance(accepted_request_message_id="u2/request"), "accept")
    outcome = Outcome(success=Payloads(payloads=[Payload(data=b"ok")]))
    respond = message("u2", Response(meta=Meta(update_id="u2"), outcome=outcome), "respond")
    assert engine.workflow_tasks.complete(
        ref,
        [protocol_command(accept.id), protocol_command(respond.id)],
        None,
        [accept, respond],
    )
    assert types(engine, run_id)[-5:] == [
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
        "WORKFLOW_EXECUTION_UPDATE_COMPLETED",
    ]
    rec = engine.store.get_update(run_id, "u2")
    assert rec is not None and rec.state == UPDATE_COMPLETED
    completed = engine.history(run_id)[-1].workflow_execution_update_completed_event_attributes
    assert completed.accepted_event_id == engine.history(run_id)[-2].event_id


async def test_signal_turns_a_speculative_task_into_a_recorded_one(engine: Engine) -> None:
    run_id = await idle_run(engine)
    updates.request(engine, run_id, update_request("u3"))
    executions.signal(engine, run_id, "sig", Payloads(), "me", None)
    assert types(engine, run_id)[-2:] == ["WORKFLOW_TASK_SCHEDULED", "WORKFLOW_EXECUTION_SIGNALED"]
