"""Effects between runs: child workflows, parent close policies, and signals or
cancel requests to other workflows.

As in Temporal's history service, the command's event is written with the
workflow task that issued it, and the effect on the other run follows as a
"transfer" step: a durable timer due at once, fired by the service in its own
transaction, so a crash in between delays the effect but never loses it.
"""

from __future__ import annotations

import temporalio.api.enums.v1.event_type_pb2 as E
import temporalio.api.enums.v1.workflow_pb2 as S
from google.protobuf.message import Message
from temporalio.api.command.v1 import (
    RequestCancelExternalWorkflowExecutionCommandAttributes,
    SignalExternalWorkflowExecutionCommandAttributes,
    StartChildWorkflowExecutionCommandAttributes,
)
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import (
    CancelExternalWorkflowExecutionFailedCause,
    ParentClosePolicy,
    SignalExternalWorkflowExecutionFailedCause,
    StartChildWorkflowExecutionFailedCause,
)
from temporalio.api.history.v1 import (
    ChildWorkflowExecutionCanceledEventAttributes,
    ChildWorkflowExecutionCompletedEventAttributes,
    ChildWorkflowExecutionFailedEventAttributes,
    ChildWorkflowExecutionStartedEventAttributes,
    ChildWorkflowExecutionTerminatedEventAttributes,
    ChildWorkflowExecutionTimedOutEventAttributes,
    ExternalWorkflowExecutionCancelRequestedEventAttributes,
    ExternalWorkflowExecutionSignaledEventAttributes,
    HistoryEvent,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    SignalExternalWorkflowExecutionFailedEventAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes,
    StartChildWorkflowExecutionFailedEventAttributes,
    StartChildWorkflowExecutionInitiatedEventAttributes,
    WorkflowExecutionCancelRequestedEventAttributes,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
)

from ablauf.engine import search_attributes
from ablauf.engine.context import EngineContext, Transition
from ablauf.engine.cron import check_cron, start_cron
from ablauf.engine.errors import InvalidArgumentError, NotFoundError
from ablauf.engine.executions import DEFAULT_WORKFLOW_TASK_TIMEOUT
from ablauf.engine.timers import TimerKind
from ablauf.history.events import seconds_of

__all__ = [
    "apply_parent_close_policies",
    "fire",
    "notify_parent",
    "request_cancel_external",
    "signal_external",
    "start_child",
]

_BY_PARENT = "by parent close policy"


def _transfer(tx: Transition, run_id: str, kind: TimerKind, ref: str) -> None:
    tx.engine.store.insert_timer(run_id, kind, ref, 0, tx.now)
    tx.after_commit.append(tx.engine.notify_timer_added)


# commands


def start_child(
    tx: Transition, cmd: StartChildWorkflowExecutionCommandAttributes, wft_id: int
) -> None:
    """StartChildWorkflowExecutionInitiated; the child starts in a transfer step.

    Raises:
        InvalidArgumentError: The command's cron schedule is invalid.
    """
    parent = tx.state
    if cmd.cron_schedule:
        try:
            check_cron(cmd.cron_schedule, tx.now)
        except InvalidArgumentError as err:
            raise InvalidArgumentError(
                "BadStartChildExecutionAttributes: invalid CronSchedule on "
                f"StartChildWorkflowExecutionCommand: {err}. WorkflowId={cmd.workflow_id} "
                f"WorkflowType={cmd.workflow_type.name} "
                f"Namespace={cmd.namespace or parent.exe.namespace}"
            ) from None
    attrs = StartChildWorkflowExecutionInitiatedEventAttributes(
        namespace=cmd.namespace or parent.exe.namespace,
        workflow_id=cmd.workflow_id,
        workflow_type=cmd.workflow_type,
        task_queue=cmd.task_queue if cmd.task_queue.name else parent.started.task_queue,
        input=cmd.input,
        workflow_execution_timeout=cmd.workflow_execution_timeout,
        workflow_run_timeout=cmd.workflow_run_timeout,
        workflow_task_timeout=cmd.workflow_task_timeout,
        parent_close_policy=cmd.parent_close_policy
        or ParentClosePolicy.PARENT_CLOSE_POLICY_TERMINATE,
        control=cmd.control,
        workflow_task_completed_event_id=wft_id,
        workflow_id_reuse_policy=cmd.workflow_id_reuse_policy,
        retry_policy=cmd.retry_policy,
        cron_schedule=cmd.cron_schedule,
        header=cmd.header,
        memo=cmd.memo,
        search_attributes=cmd.search_attributes,
        priority=cmd.priority,
    )
    search_attributes.check_command(tx.engine.store, parent.exe.namespace, cmd.search_attributes)
    event = tx.add(E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, attrs)
    _transfer(tx, parent.exe.run_id, TimerKind.TRANSFER_START_CHILD, str(event.event_id))


def signal_external(
    tx: Transition, cmd: SignalExternalWorkflowExecutionCommandAttributes, wft_id: int
) -> None:
    event = tx.add(
        E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        SignalExternalWorkflowExecutionInitiatedEventAttributes(
            workflow_task_completed_event_id=wft_id,
            namespace=cmd.namespace or tx.state.exe.namespace,
            workflow_execution=cmd.execution,
            signal_name=cmd.signal_name,
            input=cmd.input,
            control=cmd.control,
            child_workflow_only=cmd.child_workflow_only,
            header=cmd.header,
        ),
    )
    _transfer(tx, tx.state.exe.run_id, TimerKind.TRANSFER_SIGNAL_EXTERNAL, str(event.event_id))


def request_cancel_external(
    tx: Transition, cmd: RequestCancelExternalWorkflowExecutionCommandAttributes, wft_id: int
) -> None:
    event = tx.add(
        E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
            workflow_task_completed_event_id=wft_id,
            namespace=cmd.namespace or tx.state.exe.namespace,
            workflow_execution=WorkflowExecution(workflow_id=cmd.workflow_id, run_id=cmd.run_id),
            control=cmd.control,
            child_workflow_only=cmd.child_workflow_only,
            reason=cmd.reason,
        ),
    )
    _transfer(tx, tx.state.exe.run_id, TimerKind.TRANSFER_CANCEL_EXTERNAL, str(event.event_id))


# closing


def notify_parent(tx: Transition) -> None:
    """A closing child (not continued-as-new) reports to its parent in a transfer step."""
    started = tx.state.started
    if not started.HasField("parent_workflow_execution"):
        return
    if tx.state.exe.status == S.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
        return
    closed = tx.state.close_event
    if closed is not None and _next_run_id(closed):
        return  # a retry or cron run goes on as the next run of the same child
    parent = started.parent_workflow_execution
    ref = f"{started.parent_initiated_event_id}:{tx.state.exe.run_id}"
    _transfer(tx, parent.run_id, TimerKind.TRANSFER_CHILD_CLOSED, ref)


def _next_run_id(closed: HistoryEvent) -> str:
    """The run a closed run continues in (a workflow retry or the next cron run)."""
    t = closed.event_type
    if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return closed.workflow_execution_completed_event_attributes.new_execution_run_id
    if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        return closed.workflow_execution_failed_event_attributes.new_execution_run_id
    if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
        return closed.workflow_execution_timed_out_event_attributes.new_execution_run_id
    return ""


def apply_parent_close_policies(tx: Transition) -> None:
    """A closing parent terminates or cancels its children, as each child's policy says."""
    store = tx.engine.store
    for child in tx.state.children.values():
        policy = child.attrs.parent_close_policy
        if not child.run_id or policy == ParentClosePolicy.PARENT_CLOSE_POLICY_ABANDON:
            continue
        current = store.current_run_id(child.attrs.namespace, child.attrs.workflow_id)
        if current is not None:
            _transfer(tx, current, TimerKind.TRANSFER_PARENT_CLOSE, str(policy))


# transfer steps


def fire(tx: Transition, kind: int, ref: str) -> None:
    """Carries out one transfer step on the run of ``tx``."""
    if kind == TimerKind.TRANSFER_START_CHILD:
        _start(tx, int(ref))
    elif kind == TimerKind.TRANSFER_CHILD_CLOSED:
        initiated_id, child_run_id = ref.split(":", 1)
        _child_closed(tx, int(initiated_id), child_run_id)
    elif kind == TimerKind.TRANSFER_PARENT_CLOSE:
        _parent_closed(tx, int(ref))
    elif kind == TimerKind.TRANSFER_SIGNAL_EXTERNAL:
        _signal(tx, int(ref))
    elif kind == TimerKind.TRANSFER_CANCEL_EXTERNAL:
        _cancel(tx, int(ref))


def _start(tx: Transition, initiated_id: int) -> None:
    engine = tx.engine
    parent = tx.state
    child = parent.children.get(initiated_id)
    if child is None or child.run_id:
        return
    a = child.attrs
    current = engine.store.current_run_id(a.namespace, a.workflow_id)
    existing = engine.store.get_execution(current) if current else None
    if existing is not None and existing.status == S.WORKFLOW_EXECUTION_STATUS_RUNNING:
        tx.add_external(
            E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
            StartChildWorkflowExecutionFailedEventAttributes(
                namespace=a.namespace,
                workflow_id=a.workflow_id,
                workflow_type=a.workflow_type,
                cause=StartChildWorkflowExecutionFailedCause.START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS,
                control=a.control,
                initiated_event_id=initiated_id,
                workflow_task_completed_event_id=a.workflow_task_completed_event_id,
            ),
        )
        return
    me = WorkflowExecution(workflow_id=parent.exe.workflow_id, run_id=parent.exe.run_id)
    root = (
        parent.started.root_workflow_execution
        if parent.started.HasField("root_workflow_execution")
        else me
    )
    started = WorkflowExecutionStartedEventAttributes(
        workflow_type=a.workflow_type,
        parent_workflow_namespace=parent.exe.namespace,
        parent_workflow_execution=me,
        parent_initiated_event_id=initiated_id,
        task_queue=a.task_queue,
        input=a.input,
        workflow_execution_timeout=a.workflow_execution_timeout,
        workflow_run_timeout=a.workflow_run_timeout,
        attempt=1,
        identity=engine.identity,
        workflow_id=a.workflow_id,
        memo=a.memo,
        search_attributes=a.search_attributes,
        header=a.header,
        root_workflow_execution=root,
        priority=a.priority,
    )
    task_timeout = seconds_of(a.workflow_task_timeout) or DEFAULT_WORKFLOW_TASK_TIMEOUT
    started.workflow_task_timeout.FromNanoseconds(round(task_timeout * 1e9))
    if a.HasField("retry_policy"):
        started.retry_policy.CopyFrom(a.retry_policy)
    if a.cron_schedule:
        start_cron(started, a.cron_schedule, tx.now)
    child_tx = engine.create_run(
        a.namespace, a.workflow_id, started, tx.now, user_metadata=child.metadata
    )
    tx.add_external(
        E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED,
        ChildWorkflowExecutionStartedEventAttributes(
            namespace=a.namespace,
            initiated_event_id=initiated_id,
            workflow_execution=WorkflowExecution(
                workflow_id=a.workflow_id, run_id=child_tx.state.exe.run_id
            ),
            workflow_type=a.workflow_type,
            header=a.header,
        ),
    )
    # The child is written but not committed yet: hand its first task over afterwards.
    tx.after_commit.append(lambda: engine.after_create_run(child_tx))


def _child_closed(tx: Transition, initiated_id: int, child_run_id: str) -> None:
    parent = tx.state
    child = parent.children.get(initiated_id)
    if child is None:
        return
    closed = tx.engine.state_of(child_run_id).close_event
    if closed is None:
        return
    t = closed.event_type
    attrs: Message
    if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        event_type = E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED
        attrs = ChildWorkflowExecutionCompletedEventAttributes(
            result=closed.workflow_execution_completed_event_attributes.result
        )
    elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        failed = closed.workflow_execution_failed_event_attributes
        event_type = E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED
        attrs = ChildWorkflowExecutionFailedEventAttributes(
            failure=failed.failure, retry_state=failed.retry_state
        )
    elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
        event_type = E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED
        attrs = ChildWorkflowExecutionCanceledEventAttributes(
            details=closed.workflow_execution_canceled_event_attributes.details
        )
    elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
        event_type = E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT
        attrs = ChildWorkflowExecutionTimedOutEventAttributes(
            retry_state=closed.workflow_execution_timed_out_event_attributes.retry_state
        )
    elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        event_type = E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED
        attrs = ChildWorkflowExecutionTerminatedEventAttributes()
    else:
        return
    # Every child outcome names the child the same way.
    a = child.attrs
    attrs.namespace = a.namespace
    attrs.workflow_execution.CopyFrom(
        WorkflowExecution(workflow_id=a.workflow_id, run_id=child_run_id)
    )
    attrs.workflow_type.CopyFrom(a.workflow_type)
    attrs.initiated_event_id = initiated_id
    attrs.started_event_id = child.started_event_id
    tx.add_external(event_type, attrs)


def _parent_closed(tx: Transition, policy: int) -> None:
    state = tx.state
    if policy == ParentClosePolicy.PARENT_CLOSE_POLICY_TERMINATE:
        tx.engine.close_run(
            tx,
            E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
            WorkflowExecutionTerminatedEventAttributes(
                reason=_BY_PARENT, identity=tx.engine.identity
            ),
            S.WORKFLOW_EXECUTION_STATUS_TERMINATED,
        )
    elif (
        policy == ParentClosePolicy.PARENT_CLOSE_POLICY_REQUEST_CANCEL
        and not state.cancel_requested
    ):
        tx.add_external(
            E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
            WorkflowExecutionCancelRequestedEventAttributes(
                cause=_BY_PARENT, identity=tx.engine.identity
            ),
        )


def _target(
    engine: EngineContext, namespace: str, execution: WorkflowExecution, me: str
) -> str | None:
    """The running run a signal or cancel request goes to, or None."""
    try:
        exe = engine.execution(namespace, execution.workflow_id, execution.run_id)
    except NotFoundError:
        return None
    if exe.status != S.WORKFLOW_EXECUTION_STATUS_RUNNING or exe.run_id == me:
        return None
    return exe.run_id


def _signal(tx: Transition, initiated_id: int) -> None:
    engine = tx.engine
    event = tx.state.externals.get(initiated_id)
    if event is None:
        return
    a = event.signal_external_workflow_execution_initiated_event_attributes
    me = WorkflowExecution(workflow_id=tx.state.exe.workflow_id, run_id=tx.state.exe.run_id)
    target = _target(engine, a.namespace, a.workflow_execution, me.run_id)
    if target is None:
        tx.add_external(
            E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
            SignalExternalWorkflowExecutionFailedEventAttributes(
                cause=SignalExternalWorkflowExecutionFailedCause.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND,
                workflow_task_completed_event_id=a.workflow_task_completed_event_id,
                namespace=a.namespace,
                workflow_execution=a.workflow_execution,
                initiated_event_id=initiated_id,
                control=a.control,
            ),
        )
        return

    def deliver(target_tx: Transition) -> None:
        target_tx.add_external(
            E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
            WorkflowExecutionSignaledEventAttributes(
                signal_name=a.signal_name,
                input=a.input,
                identity=engine.identity,
                header=a.header,
                external_workflow_execution=me,
            ),
        )

    engine.transition(target, deliver)
    tx.add_external(
        E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
        ExternalWorkflowExecutionSignaledEventAttributes(
            initiated_event_id=initiated_id,
            namespace=a.namespace,
            workflow_execution=a.workflow_execution,
            control=a.control,
        ),
    )


def _cancel(tx: Transition, initiated_id: int) -> None:
    engine = tx.engine
    event = tx.state.externals.get(initiated_id)
    if event is None:
        return
    a = event.request_cancel_external_workflow_execution_initiated_event_attributes
    me = WorkflowExecution(workflow_id=tx.state.exe.workflow_id, run_id=tx.state.exe.run_id)
    target = _target(engine, a.namespace, a.workflow_execution, me.run_id)
    if target is None:
        tx.add_external(
            E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
            RequestCancelExternalWorkflowExecutionFailedEventAttributes(
                cause=CancelExternalWorkflowExecutionFailedCause.CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND,
                workflow_task_completed_event_id=a.workflow_task_completed_event_id,
                namespace=a.namespace,
                workflow_execution=a.workflow_execution,
                initiated_event_id=initiated_id,
                control=a.control,
            ),
        )
        return

    def request(target_tx: Transition) -> None:
        if target_tx.state.cancel_requested:
            return
        target_tx.add_external(
            E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
            WorkflowExecutionCancelRequestedEventAttributes(
                cause=a.reason,
                external_initiated_event_id=initiated_id,
                external_workflow_execution=me,
                identity=engine.identity,
            ),
        )

    engine.transition(target, request)
    tx.add_external(
        E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
        ExternalWorkflowExecutionCancelRequestedEventAttributes(
            initiated_event_id=initiated_id,
            namespace=a.namespace,
            workflow_execution=a.workflow_execution,
        ),
    )
