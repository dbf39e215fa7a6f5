"""The child workflow machine: initiated, started (or failed to start), then closed.

sdk-core's ``child_workflow_state_machine.rs``. A cancel from workflow code
before the start command went out drops the command. Once the child started,
TRY_CANCEL and ABANDON resolve it as cancelled at once (ABANDON sends no
request); the WAIT types send the request and wait for the child to close.
"""

from __future__ import annotations

from typing import Final

from temporalio.api.enums.v1 import TimeoutType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent

from ablauf.history import catalog
from ablauf.replay.history import C, E
from ablauf.replay.machines.base import (
    CANCEL,
    CANCEL_ABANDON,
    CANCEL_TRY,
    CANCELS,
    CommandEntry,
    Machine,
    Nondeterminism,
    Transitions,
    table_events,
    transition_map,
)
from ablauf.replay.machines.jobs import Job, ResolveChild, ResolveChildStart

__all__ = [
    "CHILD_ABANDON",
    "CHILD_TRY_CANCEL",
    "TRANSITIONS",
    "ChildState",
    "ChildWorkflowMachine",
]


class ChildState:
    """States of a child workflow machine."""

    CREATED: Final = 0
    INITIATED: Final = 1
    STARTED: Final = 2
    CANCELLED: Final = 3
    """Resolved as cancelled for workflow code; the child's close is still to come."""
    DONE: Final = 4


_S = ChildState
# How a started child ends (one that never started ends with StartChildWorkflowExecutionFailed).
_CLOSED: Final = tuple(sorted(catalog.CHILD_CLOSED - {E.START_CHILD_WORKFLOW_EXECUTION_FAILED}))

TRANSITIONS: Final[Transitions] = (
    (_S.CREATED, E.START_CHILD_WORKFLOW_EXECUTION_INITIATED, _S.INITIATED),
    *((_S.CREATED, cancel, _S.DONE) for cancel in CANCELS),  # the start command is dropped
    (_S.INITIATED, E.CHILD_WORKFLOW_EXECUTION_STARTED, _S.STARTED),
    (_S.INITIATED, E.START_CHILD_WORKFLOW_EXECUTION_FAILED, _S.DONE),
    (_S.STARTED, CANCEL, _S.STARTED),  # the request goes out, the child's close decides
    (_S.STARTED, CANCEL_TRY, _S.CANCELLED),
    (_S.STARTED, CANCEL_ABANDON, _S.CANCELLED),
    *((state, closed, _S.DONE) for state in (_S.STARTED, _S.CANCELLED) for closed in _CLOSED),
    # A cancel while the start is in flight, or after the child's end, changes nothing.
    *(
        (state, cancel, state)
        for state in (_S.INITIATED, _S.CANCELLED, _S.DONE)
        for cancel in CANCELS
    ),
)

# Cancellation types of temporalio.workflow.ChildWorkflowCancellationType.
CHILD_ABANDON: Final = 0
CHILD_TRY_CANCEL: Final = 1

_NON_RETRYABLE: Final = 2  # RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE


class ChildWorkflowMachine(Machine):
    """A child workflow, named by its sequence number."""

    __slots__ = (
        "cancel_issued",
        "cancellation_type",
        "initiated_event_id",
        "namespace",
        "run_id",
        "seq",
        "started_event_id",
        "workflow_id",
        "workflow_type",
    )
    label = "Child workflow machine"
    family = catalog.CHILD
    commands = (C.START_CHILD_WORKFLOW_EXECUTION,)
    table = TRANSITIONS
    transitions = transition_map(TRANSITIONS)
    events = table_events(TRANSITIONS)

    def __init__(
        self, seq: int, namespace: str, workflow_id: str, workflow_type: str, cancellation_type: int
    ) -> None:
        super().__init__()
        self.seq = seq
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.cancellation_type = cancellation_type
        self.initiated_event_id = 0
        self.started_event_id = 0
        self.run_id = ""
        self.cancel_issued = False

    def cancel_trigger(self) -> int:
        """The action a cancel from workflow code takes, by cancellation type."""
        if self.cancellation_type == CHILD_ABANDON:
            return CANCEL_ABANDON
        if self.cancellation_type == CHILD_TRY_CANCEL:
            return CANCEL_TRY
        return CANCEL

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        attrs = event.start_child_workflow_execution_initiated_event_attributes
        if attrs.workflow_id != self.workflow_id:
            raise Nondeterminism(
                f"Child workflow id of scheduled event '{attrs.workflow_id}' does not "
                f"match child workflow id of command '{self.workflow_id}'"
            )
        if attrs.workflow_type.name != self.workflow_type:
            raise Nondeterminism(
                f"Child workflow type of scheduled event '{attrs.workflow_type.name}' does not "
                f"match child workflow type of command '{self.workflow_type}'"
            )
        self.initiated_event_id = event.event_id
        super().on_command_event(entry, event)

    def failure(self, message: str, retry_state: int, cause: Failure | None) -> Failure:
        """A failure with the child's ChildWorkflowExecutionFailureInfo, as sdk-core builds it."""
        failure = Failure(message=message)
        info = failure.child_workflow_execution_failure_info
        info.namespace = self.namespace
        info.workflow_type.name = self.workflow_type
        info.initiated_event_id = self.initiated_event_id
        info.started_event_id = self.started_event_id
        info.retry_state = retry_state  # type: ignore[assignment]
        info.workflow_execution.workflow_id = self.workflow_id
        info.workflow_execution.run_id = self.run_id
        if cause is not None:
            failure.cause.CopyFrom(cause)
        return failure

    def cancelled_failure(self) -> Failure:
        """What a cancelled child resolves with."""
        cause = Failure()
        cause.canceled_failure_info.SetInParent()
        return self.failure("Child Workflow execution cancelled", _NON_RETRYABLE, cause)

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        event_type = event.event_type
        state = self.state
        to = self.step(event_type, event)
        if event_type == E.CHILD_WORKFLOW_EXECUTION_STARTED:
            attrs = event.child_workflow_execution_started_event_attributes
            self.started_event_id = event.event_id
            self.run_id = attrs.workflow_execution.run_id
            self.state = to
            jobs.append(ResolveChildStart(self.seq, run_id=self.run_id))
            return False
        if event_type == E.START_CHILD_WORKFLOW_EXECUTION_FAILED:
            cause = event.start_child_workflow_execution_failed_event_attributes.cause
            self.state = to
            jobs.append(ResolveChildStart(self.seq, cause=int(cause)))
            return True
        if state == ChildState.CANCELLED:
            # Already resolved as cancelled; only an abandoned child may close otherwise.
            if event_type != E.CHILD_WORKFLOW_EXECUTION_CANCELED and (
                self.cancellation_type != CHILD_ABANDON
            ):
                raise Nondeterminism(
                    "Child workflows which don't have the ABANDON cancellation type cannot "
                    "complete after being cancelled."
                )
        else:
            jobs.append(self._closed_job(event))
        self.state = to
        return True

    def _closed_job(self, event: HistoryEvent) -> ResolveChild:
        """What workflow code gets when the child closes."""
        event_type = event.event_type
        if event_type == E.CHILD_WORKFLOW_EXECUTION_COMPLETED:
            payloads = event.child_workflow_execution_completed_event_attributes.result.payloads
            return ResolveChild(self.seq, result=payloads[0] if payloads else None)
        if event_type == E.CHILD_WORKFLOW_EXECUTION_FAILED:
            failed = event.child_workflow_execution_failed_event_attributes
            return ResolveChild(
                self.seq,
                failure=self.failure(
                    "Child Workflow execution failed",
                    int(failed.retry_state),
                    failed.failure if failed.HasField("failure") else None,
                ),
            )
        if event_type == E.CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
            timeout = Failure(message="Timed out")
            timeout.timeout_failure_info.timeout_type = TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
            retry_state = event.child_workflow_execution_timed_out_event_attributes.retry_state
            return ResolveChild(
                self.seq,
                failure=self.failure(
                    "Child Workflow execution timed out", int(retry_state), timeout
                ),
            )
        if event_type == E.CHILD_WORKFLOW_EXECUTION_TERMINATED:
            terminated = Failure(message="Terminated")
            terminated.terminated_failure_info.SetInParent()
            return ResolveChild(
                self.seq,
                failure=self.failure(
                    "Child Workflow execution terminated", _NON_RETRYABLE, terminated
                ),
            )
        return ResolveChild(self.seq, failure=self.cancelled_failure())
