"""Workflow updates: requests delivered to workers as protocol messages, and
the workers' acceptances, rejections and responses.

As in Temporal, an update that finds no workflow task pending gets a
speculative one: its WorkflowTaskScheduled event is written only if the task
leaves a trace. A rejected update leaves none. An update still unanswered
when its run closes fails as Temporal's server fails it: an accepted one with
the server's ``AcceptedUpdateCompletedWorkflow`` failure as its outcome, one
not yet accepted goes to the run that continues it (continue-as-new, retry,
cron) or else fails with NOT_FOUND.
"""

from __future__ import annotations

import asyncio

import temporalio.api.enums.v1.event_type_pb2 as E
from google.protobuf.any_pb2 import Any as AnyProto
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.history.v1 import (
    WorkflowExecutionUpdateAcceptedEventAttributes,
    WorkflowExecutionUpdateCompletedEventAttributes,
)
from temporalio.api.protocol.v1 import Message
from temporalio.api.update.v1 import Acceptance, Outcome, Rejection, Request, Response

from ablauf.engine.context import EngineContext, Transition
from ablauf.engine.errors import (
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
)
from ablauf.engine.state import RunState
from ablauf.store.base import (
    UPDATE_ACCEPTED,
    UPDATE_COMPLETED,
    UPDATE_REJECTED,
    UPDATE_REQUESTED,
    UpdateRecord,
)

__all__ = [
    "apply_message",
    "check",
    "completed_outcome",
    "deliverable",
    "reject_unanswered",
    "request",
    "wait",
]

Stage = UpdateWorkflowExecutionLifecycleStage

# Temporal's limits: updates in flight (requested or accepted) and per run.
MAX_IN_FLIGHT = 10
MAX_PER_RUN = 2000
# Temporal's long-poll interval: an update call waits this long at most, then
# answers with the stage reached so far.
LONG_POLL = 20.0

# Temporal's server fails an accepted update whose run closes before it
# completes with this failure (its source: "Server").
_RUN_CLOSED_FIRST = Failure(
    message="Workflow Update failed because the Workflow completed before the Update completed.",
    source="Server",
    application_failure_info=ApplicationFailureInfo(
        type="AcceptedUpdateCompletedWorkflow", non_retryable=True
    ),
)


def check(req: Request) -> None:
    """Refuses an update request Temporal's frontend refuses, with its messages."""
    if not req.meta.update_id:
        raise InvalidArgumentError("Update id is not set on request.")
    if not req.input.name:
        raise InvalidArgumentError("Update name is not set on request.")


def completed_outcome(engine: EngineContext, run_id: str, update_id: str) -> Outcome | None:
    """The outcome of an update of the run that completed, or None."""
    rec = engine.store.get_update(run_id, update_id)
    if rec is None or rec.state != UPDATE_COMPLETED:
        return None
    outcome = Outcome()
    outcome.ParseFromString(rec.outcome or b"")
    return outcome


def _successor(state: RunState) -> str:
    """The run that continues a closed run, if any."""
    event = state.close_event
    if event is None:
        return ""
    kind = event.WhichOneof("attributes")
    return str(getattr(getattr(event, kind), "new_execution_run_id", "")) if kind else ""


def request(engine: EngineContext, run_id: str, req: Request) -> None:
    """Registers an update for the run (again: no-op) and makes sure a task will carry it."""
    check(req)

    def change(tx: Transition) -> None:
        state = tx.state
        if not state.running:
            raise NotFoundError("workflow execution already completed")
        update_id = req.meta.update_id
        store = engine.store
        if store.get_update(run_id, update_id) is not None:
            return
        known = store.updates_of_run(run_id)
        if len(known) >= MAX_PER_RUN:
            raise ResourceExhaustedError("limit on number of total updates has been reached (2000)")
        in_flight = sum(1 for u in known if u.state in (UPDATE_REQUESTED, UPDATE_ACCEPTED))
        if in_flight >= MAX_IN_FLIGHT:
            raise ResourceExhaustedError(
                "limit on number of concurrent in-flight updates has been reached (10)"
            )
        store.insert_update(
            UpdateRecord(
                run_id=run_id,
                update_id=update_id,
                seq=len(known) + 1,
                request=req.SerializeToString(),
                state=UPDATE_REQUESTED,
                outcome=None,
                accepted_event_id=0,
            )
        )
        state.requested_updates += 1
        if state.wft is None:
            engine.schedule_speculative_workflow_task(tx)

    engine.transition(run_id, change)


def deliverable(engine: EngineContext, run_id: str, sequencing_event_id: int) -> list[Message]:
    """The requested updates of the run, as the messages a workflow task carries."""
    messages = []
    for rec in engine.store.updates_of_run(run_id):
        if rec.state != UPDATE_REQUESTED:
            continue
        body = AnyProto()
        req = Request()
        req.ParseFromString(rec.request)
        body.Pack(req)
        messages.append(
            Message(
                id=f"{rec.update_id}/request",
                protocol_instance_id=rec.update_id,
                event_id=sequencing_event_id,
                body=body,
            )
        )
    return messages


def apply_message(tx: Transition, message: Message) -> None:
    """Records a worker's acceptance or response (named by a protocol-message command)."""
    store = tx.engine.store
    run_id = tx.state.exe.run_id
    rec = store.get_update(run_id, message.protocol_instance_id)
    if rec is None:
        raise InvalidArgumentError(f"unknown update {message.protocol_instance_id!r}")
    if message.body.Is(Acceptance.DESCRIPTOR):
        acceptance = Acceptance()
        message.body.Unpack(acceptance)
        event = tx.add(
            E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
            WorkflowExecutionUpdateAcceptedEventAttributes(
                protocol_instance_id=rec.update_id,
                accepted_request_message_id=acceptance.accepted_request_message_id,
                accepted_request_sequencing_event_id=acceptance.accepted_request_sequencing_event_id,
                accepted_request=acceptance.accepted_request,
            ),
        )
        rec.state = UPDATE_ACCEPTED
        rec.accepted_event_id = event.event_id
        tx.state.requested_updates = max(0, tx.state.requested_updates - 1)
    elif message.body.Is(Response.DESCRIPTOR):
        response = Response()
        message.body.Unpack(response)
        tx.add(
            E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
            WorkflowExecutionUpdateCompletedEventAttributes(
                meta=response.meta,
                accepted_event_id=rec.accepted_event_id,
                outcome=response.outcome,
            ),
        )
        rec.state = UPDATE_COMPLETED
        rec.outcome = response.outcome.SerializeToString()
    else:
        raise InvalidArgumentError(f"unexpected protocol message {message.body.type_url}")
    store.save_update(rec)


def reject_unanswered(tx: Transition, messages: list[Message]) -> None:
    """Marks rejected updates; they leave no event."""
    store = tx.engine.store
    run_id = tx.state.exe.run_id
    for message in messages:
        if not message.body.Is(Rejection.DESCRIPTOR):
            continue
        rejection = Rejection()
        message.body.Unpack(rejection)
        rec = store.get_update(run_id, message.protocol_instance_id)
        if rec is None or rec.state != UPDATE_REQUESTED:
            continue
        rec.state = UPDATE_REJECTED
        rec.outcome = Outcome(failure=rejection.failure).SerializeToString()
        store.save_update(rec)
        tx.state.requested_updates = max(0, tx.state.requested_updates - 1)


async def wait(
    engine: EngineContext,
    run_id: str,
    update_id: str,
    stage: int,
    timeout: float | None,
    long_poll: float = LONG_POLL,
) -> tuple[str, int, Outcome | None]:
    """Waits until the update reaches ``stage`` (or is rejected); returns
    (the run it is in, stage, outcome): a run that continues as new before
    accepting the update hands it to its successor.

    As Temporal's history service: after ``long_poll`` seconds it returns the
    stage reached so far (the client asks again), but past the caller's own
    ``timeout`` (its RPC deadline) it raises :class:`DeadlineExceededError`,
    which the client reports as ``WorkflowUpdateRPCTimeoutOrCancelledError``.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    soft = started + long_poll
    hard = None if timeout is None else started + timeout
    while True:
        rec = engine.store.get_update(run_id, update_id)
        if rec is None:
            raise NotFoundError(f'update "{update_id}" not found')
        if rec.state in (UPDATE_COMPLETED, UPDATE_REJECTED):
            outcome = Outcome()
            outcome.ParseFromString(rec.outcome or b"")
            return run_id, Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED, outcome
        state = engine.state_of(run_id)
        if not state.running:
            if rec.state == UPDATE_ACCEPTED:
                return (
                    run_id,
                    Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED,
                    Outcome(failure=_RUN_CLOSED_FIRST),
                )
            successor = _successor(state)
            if not successor:
                raise NotFoundError("workflow update was aborted by closing workflow")
            # As Temporal's server: an update the closing run never accepted
            # goes to the run that continues it (continue-as-new, retry, cron).
            req = Request()
            req.ParseFromString(rec.request)
            request(engine, successor, req)
            run_id = successor
            continue
        if (
            rec.state == UPDATE_ACCEPTED
            and stage <= Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED
        ):
            return run_id, Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED, None
        if stage <= Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED:
            # Admitted is as far as an update row goes before a worker sees it;
            # a poll with no wait policy asks only for that.
            return run_id, Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED, None
        now = loop.time()
        if hard is not None and now >= hard:
            raise DeadlineExceededError("Timeout expired")
        if now >= soft:
            stage_now = (
                Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED
                if rec.state == UPDATE_ACCEPTED
                else Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
            )
            return run_id, stage_now, None
        left = min(soft, hard if hard is not None else soft) - now
        with engine.clock.unlocked():
            await engine.wait_run_change(run_id, min(left, 1.0))
