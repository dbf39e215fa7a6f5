"""sdk-core's command state machines, in Python.

Workflow code asks for commands (schedule an activity, start a timer ...). Each
request creates a small machine that owns its command and later consumes the
history events the command produces (see ``commands.py`` for the queue that
matches them). Results that workflow code waits for (an activity completed, a
timer fired) leave the machines as :class:`Job` objects, applied at the next
activation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import ClassVar, Final

from temporalio.api.command.v1 import Command
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import TimeoutType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent, WorkflowExecutionStartedEventAttributes
from temporalio.api.update.v1 import Request

from ablauf.replay import history
from ablauf.replay.history import E

__all__ = [
    "ActivityMachine",
    "CancelWorkflow",
    "CommandEntry",
    "FireTimer",
    "InitializeWorkflow",
    "Job",
    "Machine",
    "Nondeterminism",
    "NotifyHasPatch",
    "OneShotMachine",
    "PatchMachine",
    "ResolveActivity",
    "SignalWorkflow",
    "TimerMachine",
    "UpdateRandomSeed",
]


class Nondeterminism(Exception):
    """Replay produced commands that differ from the recorded command events."""


# --- jobs: what the machines hand to workflow code --------------------------------------------

PATCH_GROUP: Final = 0
SIGNAL_GROUP: Final = 1
OTHER_GROUP: Final = 2


class Job:
    """One unit of work for an activation (sdk-core's activation job)."""

    __slots__ = ()


@dataclass(slots=True)
class InitializeWorkflow(Job):
    """Start the workflow's run method."""

    attributes: WorkflowExecutionStartedEventAttributes
    start_time: datetime


@dataclass(slots=True)
class SignalWorkflow(Job):
    """Deliver a signal."""

    name: str
    input: list[Payload]
    headers: dict[str, Payload]
    event_id: int


@dataclass(slots=True)
class CancelWorkflow(Job):
    """The workflow was asked to cancel."""

    reason: str


@dataclass(slots=True)
class FireTimer(Job):
    """A durable timer fired."""

    seq: int


@dataclass(slots=True)
class ResolveActivity(Job):
    """An activity finished: ``result`` if it completed, else ``failure``."""

    seq: int
    result: Payload | None = None
    failure: Failure | None = None


@dataclass(slots=True)
class NotifyHasPatch(Job):
    """History holds a marker for this patch."""

    patch_id: str


@dataclass(slots=True)
class UpdateRandomSeed(Job):
    """The run was reset: reseed ``workflow.random()``."""

    seed: int


# --- machines ---------------------------------------------------------------------------------


class Machine:
    """Base of the command machines."""

    __slots__ = ("cancelled_before_sent",)
    label: ClassVar[str] = "Command machine"

    def __init__(self) -> None:
        self.cancelled_before_sent = False

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        """Consume the event recorded for one of this machine's commands."""
        if event.event_type != entry.event_type:
            raise self.unexpected(event)

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        """Consume a later event; return True once the machine needs no more events."""
        raise self.unexpected(event)

    def unexpected(self, event: HistoryEvent) -> Nondeterminism:
        """The error for an event this machine cannot handle."""
        return Nondeterminism(
            f"{self.name()} does not handle this event: {history.describe_event(event)}"
        )

    def name(self) -> str:
        """How errors name this machine."""
        return self.label


class OneShotMachine(Machine):
    """A command that resolves nothing: markers, upserts, workflow completion."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    def name(self) -> str:
        return self._name


class PatchMachine(Machine):
    """The marker command of ``workflow.patched`` / ``deprecate_patch``."""

    __slots__ = ("patch_id",)
    label = "Patch machine"

    def __init__(self, patch_id: str) -> None:
        super().__init__()
        self.patch_id = patch_id

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        details = history.patch_marker_details(event)
        if details is None:
            raise Nondeterminism(
                f"Change machine cannot handle this event: {history.describe_event(event)}"
            )
        if details[0] != self.patch_id:
            raise Nondeterminism(
                f"Change id {details[0]} does not match expected id {self.patch_id}"
            )


class TimerState(IntEnum):
    CREATED = 0
    STARTED = 1
    CANCEL_REQUESTED = 2
    DONE = 3


class TimerMachine(Machine):
    """A durable timer: StartTimer, then TimerFired or CancelTimer/TimerCanceled."""

    __slots__ = ("seq", "state")
    label = "Timer machine"

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq
        self.state = TimerState.CREATED

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        super().on_command_event(entry, event)
        if event.event_type == E.TIMER_STARTED:
            timer_id = event.timer_started_event_attributes.timer_id
            if timer_id != str(self.seq):
                raise Nondeterminism(
                    f"Timer id of started event '{timer_id}' does not match "
                    f"timer id of timer command '{self.seq}'"
                )
            self.state = TimerState.STARTED
        else:
            self.state = TimerState.DONE

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        if event.event_type != E.TIMER_FIRED:
            raise self.unexpected(event)
        timer_id = event.timer_fired_event_attributes.timer_id
        if timer_id != str(self.seq):
            raise Nondeterminism(
                f"Timer fired event did not have expected timer id {self.seq}, it was {timer_id}!"
            )
        if self.state == TimerState.STARTED:
            jobs.append(FireTimer(self.seq))
        # A timer that fired while its CancelTimer command was being recorded has no
        # waiter left: the workflow already dropped it.
        self.state = TimerState.DONE
        return True


class ActivityState(IntEnum):
    CREATED = 0
    SCHEDULED = 1
    STARTED = 2
    CANCEL_REQUESTED = 3
    DONE = 4


# Cancellation types of temporalio.workflow.ActivityCancellationType.
TRY_CANCEL: Final = 0
WAIT_CANCELLATION_COMPLETED: Final = 1
ABANDON: Final = 2


class ActivityMachine(Machine):
    """An activity: schedule, start, and complete/fail/time out/cancel."""

    __slots__ = (
        "activity_id",
        "activity_type",
        "cancellation_type",
        "resolved",
        "scheduled_event_id",
        "seq",
        "started_event_id",
        "state",
    )
    label = "Activity machine"

    def __init__(
        self, seq: int, activity_id: str, activity_type: str, cancellation_type: int
    ) -> None:
        super().__init__()
        self.seq = seq
        self.activity_id = activity_id
        self.activity_type = activity_type
        self.cancellation_type = cancellation_type
        self.state = ActivityState.CREATED
        self.scheduled_event_id = 0
        self.started_event_id = 0
        self.resolved = False  # workflow code already got its result

    def check_scheduled(self, event: HistoryEvent) -> None:
        """Compare the recorded activity id and type with the command's."""
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_id != self.activity_id:
            raise Nondeterminism(
                f"Activity id of scheduled event '{attrs.activity_id}' does not match "
                f"activity id of activity command '{self.activity_id}'"
            )
        if attrs.activity_type.name != self.activity_type:
            raise Nondeterminism(
                f"Activity type of scheduled event '{attrs.activity_type.name}' does not "
                f"match activity type of activity command '{self.activity_type}'"
            )

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        super().on_command_event(entry, event)
        if event.event_type == E.ACTIVITY_TASK_SCHEDULED:
            self.scheduled_event_id = event.event_id
            self.state = ActivityState.SCHEDULED

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        event_type = event.event_type
        if event_type == E.ACTIVITY_TASK_STARTED:
            self.started_event_id = event.event_id
            if self.state == ActivityState.SCHEDULED:
                self.state = ActivityState.STARTED
            return False
        if event_type == E.ACTIVITY_TASK_COMPLETED:
            payloads = event.activity_task_completed_event_attributes.result.payloads
            job = ResolveActivity(self.seq, result=payloads[0] if payloads else None)
        elif event_type == E.ACTIVITY_TASK_FAILED:
            failure = history.activity_failed_failure(event, self.activity_id, self.activity_type)
            job = ResolveActivity(self.seq, failure=failure)
        elif event_type == E.ACTIVITY_TASK_TIMED_OUT:
            failure = history.activity_timed_out_failure(
                event, self.activity_id, self.activity_type
            )
            job = ResolveActivity(self.seq, failure=failure)
        elif event_type == E.ACTIVITY_TASK_CANCELED:
            attrs = event.activity_task_canceled_event_attributes
            failure = history.activity_cancelled_failure(
                self.activity_id,
                self.activity_type,
                self.scheduled_event_id,
                self.started_event_id,
                attrs.details,
            )
            job = ResolveActivity(self.seq, failure=failure)
        else:
            raise self.unexpected(event)
        # TRY_CANCEL and ABANDON already handed workflow code a cancellation.
        if not self.resolved:
            jobs.append(job)
            self.resolved = True
        self.state = ActivityState.DONE
        return True

    def cancelled_job(self) -> ResolveActivity:
        """The resolution sdk-core sends when it cancels on the workflow's behalf."""
        failure = history.activity_cancelled_failure(
            self.activity_id, self.activity_type, self.scheduled_event_id, self.started_event_id
        )
        return ResolveActivity(self.seq, failure=failure)


@dataclass(slots=True)
class CommandEntry:
    """A command with the machine that owns it and the event it must produce."""

    command: Command
    machine: Machine
    event_type: int
    terminal: bool = False


# --- child workflows and external workflows ---------------------------------------------------


@dataclass(slots=True)
class ResolveChildStart(Job):
    """A child workflow started (``run_id``), failed to start (``cause``) or was cancelled."""

    seq: int
    run_id: str = ""
    cause: int = 0
    failure: Failure | None = None


@dataclass(slots=True)
class ResolveChild(Job):
    """A child workflow closed: ``result`` if it completed, else ``failure``."""

    seq: int
    result: Payload | None = None
    failure: Failure | None = None


@dataclass(slots=True)
class ResolveSignalExternal(Job):
    """A signal to another workflow was delivered (``failure`` None) or not."""

    seq: int
    failure: Failure | None = None


@dataclass(slots=True)
class ResolveCancelExternal(Job):
    """A cancel request to another workflow was delivered (``failure`` None) or not."""

    seq: int
    failure: Failure | None = None


class ChildState(IntEnum):
    CREATED = 0
    INITIATED = 1
    STARTED = 2
    CANCELLED = 3
    DONE = 4


# Cancellation types of temporalio.workflow.ChildWorkflowCancellationType.
CHILD_ABANDON: Final = 0
CHILD_TRY_CANCEL: Final = 1


class ChildWorkflowMachine(Machine):
    """A child workflow: initiated, started (or failed to start), then closed."""

    __slots__ = (
        "cancel_issued",
        "cancellation_type",
        "initiated_event_id",
        "namespace",
        "run_id",
        "seq",
        "started_event_id",
        "state",
        "workflow_id",
        "workflow_type",
    )
    label = "Child workflow machine"

    def __init__(
        self, seq: int, namespace: str, workflow_id: str, workflow_type: str, cancellation_type: int
    ) -> None:
        super().__init__()
        self.seq = seq
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.cancellation_type = cancellation_type
        self.state = ChildState.CREATED
        self.initiated_event_id = 0
        self.started_event_id = 0
        self.run_id = ""
        self.cancel_issued = False

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        super().on_command_event(entry, event)
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
        self.state = ChildState.INITIATED

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
        if state == ChildState.INITIATED:
            if event_type == E.CHILD_WORKFLOW_EXECUTION_STARTED:
                attrs = event.child_workflow_execution_started_event_attributes
                self.started_event_id = event.event_id
                self.run_id = attrs.workflow_execution.run_id
                self.state = ChildState.STARTED
                jobs.append(ResolveChildStart(self.seq, run_id=self.run_id))
                return False
            if event_type == E.START_CHILD_WORKFLOW_EXECUTION_FAILED:
                cause = event.start_child_workflow_execution_failed_event_attributes.cause
                self.state = ChildState.DONE
                jobs.append(ResolveChildStart(self.seq, cause=int(cause)))
                return True
            raise self.unexpected(event)
        if state not in (ChildState.STARTED, ChildState.CANCELLED):
            raise self.unexpected(event)
        job: ResolveChild
        if event_type == E.CHILD_WORKFLOW_EXECUTION_COMPLETED:
            payloads = event.child_workflow_execution_completed_event_attributes.result.payloads
            job = ResolveChild(self.seq, result=payloads[0] if payloads else None)
        elif event_type == E.CHILD_WORKFLOW_EXECUTION_FAILED:
            failed = event.child_workflow_execution_failed_event_attributes
            job = ResolveChild(
                self.seq,
                failure=self.failure(
                    "Child Workflow execution failed",
                    int(failed.retry_state),
                    failed.failure if failed.HasField("failure") else None,
                ),
            )
        elif event_type == E.CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
            timeout = Failure(message="Timed out")
            timeout.timeout_failure_info.timeout_type = TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
            retry_state = event.child_workflow_execution_timed_out_event_attributes.retry_state
            job = ResolveChild(
                self.seq,
                failure=self.failure(
                    "Child Workflow execution timed out", int(retry_state), timeout
                ),
            )
        elif event_type == E.CHILD_WORKFLOW_EXECUTION_TERMINATED:
            terminated = Failure(message="Terminated")
            terminated.terminated_failure_info.SetInParent()
            job = ResolveChild(
                self.seq,
                failure=self.failure(
                    "Child Workflow execution terminated", _NON_RETRYABLE, terminated
                ),
            )
        elif event_type == E.CHILD_WORKFLOW_EXECUTION_CANCELED:
            job = ResolveChild(self.seq, failure=self.cancelled_failure())
        else:
            raise self.unexpected(event)
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
            jobs.append(job)
        self.state = ChildState.DONE
        return True


_NON_RETRYABLE: Final = 2  # RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE


class SignalExternalMachine(Machine):
    """A signal to a child or another workflow."""

    __slots__ = ("sent", "seq")
    label = "Signal external workflow machine"

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq
        self.sent = False

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        super().on_command_event(entry, event)
        self.sent = True

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        if event.event_type == E.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED:
            jobs.append(ResolveSignalExternal(self.seq))
        elif event.event_type == E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED:
            cause = event.signal_external_workflow_execution_failed_event_attributes.cause
            reason = {
                1: "it was not found",  # EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND
                2: "it was not found",  # NAMESPACE_NOT_FOUND
                3: "The per-workflow signal limit was exceeded",
            }.get(int(cause), "unknown")
            failure = Failure(message=f"Unable to signal external workflow because {reason}")
            failure.application_failure_info.type = history.enum_label(
                "SignalExternalWorkflowExecutionFailedCause", int(cause)
            )
            jobs.append(ResolveSignalExternal(self.seq, failure))
        else:
            raise self.unexpected(event)
        return True


class CancelExternalMachine(Machine):
    """A cancel request to a child or another workflow; ``seq`` 0 if the runtime made it."""

    __slots__ = ("seq",)
    label = "Cancel external workflow machine"

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        if event.event_type == E.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            if self.seq:
                jobs.append(ResolveCancelExternal(self.seq))
        elif event.event_type == E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED:
            attrs = event.request_cancel_external_workflow_execution_failed_event_attributes
            reason = "it was not found" if int(attrs.cause) in (1, 2) else "unknown"
            failure = Failure(message=f"Unable to cancel external workflow because {reason}")
            failure.application_failure_info.type = history.enum_label(
                "CancelExternalWorkflowExecutionFailedCause", int(attrs.cause)
            )
            if self.seq:
                jobs.append(ResolveCancelExternal(self.seq, failure))
        else:
            raise self.unexpected(event)
        return True


# --- updates ----------------------------------------------------------------------------------


@dataclass(slots=True)
class DoUpdate(Job):
    """Run an update: its validator first unless ``run_validator`` is False (replay)."""

    request: Request
    request_message_id: str
    sequencing_event_id: int
    protocol_instance_id: str
    run_validator: bool

    @property
    def update_id(self) -> str:
        """The update's id."""
        return self.request.meta.update_id

    @property
    def name(self) -> str:
        """The update's name."""
        return self.request.input.name


class UpdateMachine(Machine):
    """The protocol-message commands of one update: acceptance, then completion."""

    __slots__ = ("protocol_instance_id",)
    label = "Update machine"

    def __init__(self, protocol_instance_id: str) -> None:
        super().__init__()
        self.protocol_instance_id = protocol_instance_id

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        super().on_command_event(entry, event)
        if event.event_type == E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            recorded = event.workflow_execution_update_accepted_event_attributes
            instance_id = recorded.protocol_instance_id
        else:
            instance_id = event.workflow_execution_update_completed_event_attributes.meta.update_id
        if instance_id != self.protocol_instance_id:
            raise Nondeterminism(
                f"Update {instance_id} in history does not match update "
                f"{self.protocol_instance_id} of the command"
            )


JOB_GROUPS: Final[dict[type[Job], int]] = {
    NotifyHasPatch: PATCH_GROUP,
    SignalWorkflow: SIGNAL_GROUP,
    DoUpdate: SIGNAL_GROUP,
}
"""Order of application: patches, then signals, then everything else (OTHER_GROUP)."""
