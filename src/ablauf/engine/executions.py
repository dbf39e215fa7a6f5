"""What clients do to workflow executions: start (with id policies and
signal-with-start), signal, request cancellation, terminate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import temporalio.api.enums.v1.event_type_pb2 as E
import temporalio.api.enums.v1.workflow_pb2 as S
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from temporalio.api.common.v1 import Header, Payloads
from temporalio.api.enums.v1 import (
    TaskQueueKind,
    WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy,
)
from temporalio.api.history.v1 import (
    WorkflowExecutionCancelRequestedEventAttributes,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    SignalWithStartWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)

from ablauf.engine import search_attributes
from ablauf.engine.context import EngineContext, Transition
from ablauf.engine.cron import check_cron, start_cron
from ablauf.engine.errors import AlreadyStartedError, InvalidArgumentError, NotFoundError
from ablauf.engine.limits import check_request
from ablauf.history.events import seconds_of

__all__ = ["check_start", "request_cancel", "signal", "start", "terminate"]

R = WorkflowIdReusePolicy
C = WorkflowIdConflictPolicy

DEFAULT_WORKFLOW_TASK_TIMEOUT = 10.0
MAX_WORKFLOW_TASK_TIMEOUT = 120.0
_FAILED_STATES = frozenset(
    {
        S.WORKFLOW_EXECUTION_STATUS_FAILED,
        S.WORKFLOW_EXECUTION_STATUS_CANCELED,
        S.WORKFLOW_EXECUTION_STATUS_TERMINATED,
        S.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
    }
)


def check_start(
    req: StartWorkflowExecutionRequest | SignalWithStartWorkflowExecutionRequest,
) -> None:
    """Refuses a start request Temporal's frontend refuses, with its messages."""
    if not req.workflow_id:
        raise InvalidArgumentError("WorkflowId is not set on request.")
    if len(req.workflow_id) > 1000:
        raise InvalidArgumentError("WorkflowId length exceeds limit.")
    if not req.workflow_type.name:
        raise InvalidArgumentError("WorkflowType is not set on request.")
    if not req.task_queue.name:
        raise InvalidArgumentError("missing task queue name")
    conflict = req.workflow_id_conflict_policy
    reuse = req.workflow_id_reuse_policy
    if reuse == R.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING and conflict:
        raise InvalidArgumentError(
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING"
            " cannot be used together with a WorkflowIDConflictPolicy"
        )
    if (
        reuse == R.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
        and conflict == C.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING
    ):
        raise InvalidArgumentError(
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE cannot"
            " be used together with WorkflowIdConflictPolicy"
            " WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING"
        )
    check_request(req.input)


def _started_attributes(
    req: StartWorkflowExecutionRequest | SignalWithStartWorkflowExecutionRequest, now: float
) -> WorkflowExecutionStartedEventAttributes:
    """The first run's started event; refuses a bad cron schedule or start delay.

    Raises:
        InvalidArgumentError: As Temporal's frontend, with its messages.
    """
    delay = 0.0
    if req.HasField("workflow_start_delay"):
        delay = seconds_of(req.workflow_start_delay)
        if delay < 0:
            raise InvalidArgumentError(
                "An invalid WorkflowStartDelaySeconds is set on request. cause: negative duration"
            )
    if req.cron_schedule and delay > 0:
        raise InvalidArgumentError("CronSchedule and WorkflowStartDelay may not be used together.")
    if req.cron_schedule:
        check_cron(req.cron_schedule, now)
    task_timeout = DEFAULT_WORKFLOW_TASK_TIMEOUT
    if req.HasField("workflow_task_timeout"):
        given = seconds_of(req.workflow_task_timeout)
        task_timeout = min(given or task_timeout, MAX_WORKFLOW_TASK_TIMEOUT)
    timeout = Duration()
    timeout.FromNanoseconds(round(task_timeout * 1e9))
    attrs = WorkflowExecutionStartedEventAttributes(
        workflow_type=req.workflow_type,
        task_queue=TaskQueue(name=req.task_queue.name, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
        input=req.input,
        workflow_task_timeout=timeout,
        identity=req.identity,
        attempt=1,
        memo=req.memo,
        search_attributes=req.search_attributes,
        header=req.header,
        workflow_id=req.workflow_id,
    )
    for name in ("workflow_execution_timeout", "workflow_run_timeout", "retry_policy", "priority"):
        if req.HasField(name):
            getattr(attrs, name).CopyFrom(getattr(req, name))
    if req.cron_schedule:
        start_cron(attrs, req.cron_schedule, now)
    elif delay > 0:
        attrs.first_workflow_task_backoff.CopyFrom(req.workflow_start_delay)
    return attrs


def _refuse_reuse(policy: int, workflow_id: str, run_id: str, status: int) -> bool:
    """Whether the id reuse policy forbids a new run after a closed one."""
    if policy == R.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE:
        return True
    return policy == R.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY and (
        status not in _FAILED_STATES
    )


def start(
    engine: EngineContext,
    req: StartWorkflowExecutionRequest | SignalWithStartWorkflowExecutionRequest,
) -> tuple[str, bool]:
    """Starts a run as the request's id policies allow; returns (run id, started).

    A signal-with-start request signals the running run, or starts one whose
    history holds the signal before its first workflow task.
    """
    namespace = req.namespace or "default"
    now = engine.clock.now()
    attrs = _started_attributes(req, now)
    search_attributes.check_request(engine.store, namespace, req.search_attributes)
    first_events: list[tuple[int, Message]] = []
    if isinstance(req, SignalWithStartWorkflowExecutionRequest):
        first_events.append(
            (
                E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
                WorkflowExecutionSignaledEventAttributes(
                    signal_name=req.signal_name,
                    input=req.signal_input,
                    identity=req.identity,
                    header=req.header,
                ),
            )
        )
    conflict = req.workflow_id_conflict_policy
    reuse = req.workflow_id_reuse_policy
    if reuse == R.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING:
        conflict = C.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING
    with engine.store.transaction():
        current = engine.store.current_run_id(namespace, req.workflow_id)
        exe = engine.store.get_execution(current) if current is not None else None
        if exe is not None and exe.status == S.WORKFLOW_EXECUTION_STATUS_RUNNING:
            if isinstance(req, SignalWithStartWorkflowExecutionRequest):
                # As on Temporal, a signal-with-start ends the run's start delay;
                # a plain signal does not.
                sig = Signal(req.signal_name, req.signal_input, req.identity, req.header)
                signal_many(engine, exe.run_id, [sig], end_backoff=True)
                return exe.run_id, False
            if conflict == C.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING:
                return exe.run_id, False
            if conflict != C.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING:
                raise AlreadyStartedError(req.workflow_id, exe.run_id)
            terminate(engine, exe.run_id, "terminated by id conflict policy", None, req.identity)
        elif exe is not None and _refuse_reuse(reuse, req.workflow_id, exe.run_id, exe.status):
            raise AlreadyStartedError(req.workflow_id, exe.run_id)
        metadata = req.user_metadata if req.HasField("user_metadata") else None
        tx = engine.create_run(
            namespace,
            req.workflow_id,
            attrs,
            now,
            first_events=first_events,
            user_metadata=metadata,
        )
    engine.after_create_run(tx)
    return tx.state.exe.run_id, True


def signal(
    engine: EngineContext,
    run_id: str,
    name: str,
    input: Payloads,
    identity: str,
    header: Header | None,
) -> None:
    """Delivers a signal to a running run."""
    signal_many(engine, run_id, [Signal(name, input, identity, header)])


@dataclass(frozen=True, slots=True)
class Signal:
    """One signal for :func:`signal_many`."""

    name: str
    input: Payloads
    identity: str
    header: Header | None


def signal_many(
    engine: EngineContext, run_id: str, signals: Sequence[Signal], end_backoff: bool = False
) -> None:
    """Delivers signals to a running run, in order, in one transition.

    A run waiting out its first workflow task backoff keeps waiting, unless
    ``end_backoff`` (signal-with-start).
    """

    def change(tx: Transition) -> None:
        if not tx.state.running:
            raise NotFoundError("workflow execution already completed")
        tx.end_backoff = end_backoff
        for sig in signals:
            attrs = WorkflowExecutionSignaledEventAttributes(
                signal_name=sig.name, input=sig.input, identity=sig.identity
            )
            if sig.header is not None:
                attrs.header.CopyFrom(sig.header)
            tx.add_external(E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, attrs)

    engine.transition(run_id, change)


def request_cancel(engine: EngineContext, run_id: str, reason: str, identity: str) -> None:
    """Asks a running run to cancel; the workflow code decides what that means."""

    def change(tx: Transition) -> None:
        if not tx.state.running or tx.state.cancel_requested:
            # Temporal accepts a request to a closed run, or a repeated one,
            # and records nothing.
            return
        # A run still waiting out its start delay or cron time sees the request at once.
        tx.end_backoff = True
        tx.add_external(
            E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
            WorkflowExecutionCancelRequestedEventAttributes(cause=reason, identity=identity),
        )

    engine.transition(run_id, change)


def terminate(
    engine: EngineContext, run_id: str, reason: str, details: Payloads | None, identity: str
) -> None:
    """Ends a running run at once."""

    def change(tx: Transition) -> None:
        if not tx.state.running:
            raise NotFoundError("workflow execution already completed")
        attrs = WorkflowExecutionTerminatedEventAttributes(reason=reason, identity=identity)
        if details is not None:
            attrs.details.CopyFrom(details)
        engine.close_run(
            tx,
            E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
            attrs,
            S.WORKFLOW_EXECUTION_STATUS_TERMINATED,
        )

    engine.transition(run_id, change)
