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
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent, WorkflowExecutionStartedEventAttributes

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
    group: ClassVar[int] = OTHER_GROUP
    """Order of application: patches, then signals, then everything else."""


@dataclass(slots=True)
class InitializeWorkflow(Job):
    """Start the workflow's run method."""

    attributes: WorkflowExecutionStartedEventAttributes
    start_time: datetime


@dataclass(slots=True)
class SignalWorkflow(Job):
    """Deliver a signal."""

    group: ClassVar[int] = SIGNAL_GROUP
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

    group: ClassVar[int] = PATCH_GROUP
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
