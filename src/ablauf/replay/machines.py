"""Per-command bookkeeping: sdk-core's command state machines, in Python.

Workflow code asks for commands (schedule an activity, start a timer ...). Each
request creates a small machine that owns its command and later consumes the
history events the command produces. Replaying, the command events that follow
a WorkflowTaskCompleted are matched, in order, against the queue of commands
the workflow produced; a mismatch is a :class:`Nondeterminism`. Results that
workflow code waits for (an activity completed, a timer fired) leave the
machines as :class:`Job` objects, applied at the next activation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import ClassVar, Final

import temporalio
from temporalio.api.command.v1 import Command
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.enums.v1 import CommandType, EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import (
    HistoryEvent,
    WorkflowExecutionStartedEventAttributes,
    WorkflowTaskCompletedEventAttributes,
)
from temporalio.api.sdk.v1 import WorkflowTaskCompletedMetadata

from ablauf.replay import history

__all__ = [
    "ActivityMachine",
    "CancelWorkflow",
    "CommandMachines",
    "FireTimer",
    "InitializeWorkflow",
    "InternalFlags",
    "Job",
    "Nondeterminism",
    "NotifyHasPatch",
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


# --- internal flags ---------------------------------------------------------------------------


class CoreFlag(IntEnum):
    """sdk-core's internal flags; ablauf follows all of them on new workflow tasks."""

    ID_AND_TYPE_DETERMINISM_CHECKS = 1
    UPSERT_SEARCH_ATTRIBUTE_ON_PATCH = 2
    MOVE_TERMINAL_COMMANDS = 3
    IMPROVED_HEARTBEAT_HEURISTIC = 4


SDK_NAME: Final = "temporal-python"
# Lang flag numbers are temporal-python's, so ablauf histories name that SDK.
SDK_VERSION: Final = temporalio.__version__


@dataclass(slots=True)
class InternalFlags:
    """Flags recorded in WorkflowTaskCompleted ``sdk_metadata``, as sdk-core keeps them.

    A flag changes how commands are produced; replaying, a flag applies only if
    the history says the original task used it.
    """

    core: set[int] = field(default_factory=set)
    lang: set[int] = field(default_factory=set)
    core_used: set[int] = field(default_factory=set)
    lang_used: set[int] = field(default_factory=set)
    sdk_name: str = ""
    sdk_version: str = ""

    def add_from_completed(self, attrs: WorkflowTaskCompletedEventAttributes) -> None:
        """Learn the flags a recorded workflow task used."""
        metadata = attrs.sdk_metadata
        self.core.update(metadata.core_used_flags)
        self.lang.update(metadata.lang_used_flags)
        if metadata.sdk_name:
            self.sdk_name = metadata.sdk_name
        if metadata.sdk_version:
            self.sdk_version = metadata.sdk_version

    def try_use_core(self, flag: CoreFlag, record: bool) -> bool:
        """Whether ``flag`` applies; ``record`` (on new tasks) means yes and note it."""
        if record:
            self.core_used.add(flag)
            return True
        return flag in self.core

    def use_lang(self, flag: int) -> None:
        """Note that workflow code relied on a temporal-python flag in a new task."""
        self.lang_used.add(flag)

    def gather(self) -> WorkflowTaskCompletedMetadata:
        """Metadata for the completion of a new task: newly used flags and SDK identity."""
        self.core_used.update(CoreFlag)
        metadata = WorkflowTaskCompletedMetadata(
            core_used_flags=sorted(self.core_used - self.core),
            lang_used_flags=sorted(self.lang_used - self.lang),
        )
        if self.sdk_name != SDK_NAME:
            metadata.sdk_name = self.sdk_name = SDK_NAME
        if self.sdk_version != SDK_VERSION:
            metadata.sdk_version = self.sdk_version = SDK_VERSION
        self.core |= self.core_used
        self.lang |= self.lang_used
        self.core_used.clear()
        self.lang_used.clear()
        return metadata


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


class _TimerState(IntEnum):
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
        self.state = _TimerState.CREATED

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        super().on_command_event(entry, event)
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            timer_id = event.timer_started_event_attributes.timer_id
            if timer_id != str(self.seq):
                raise Nondeterminism(
                    f"Timer id of started event '{timer_id}' does not match "
                    f"timer id of timer command '{self.seq}'"
                )
            self.state = _TimerState.STARTED
        else:
            self.state = _TimerState.DONE

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        if event.event_type != EventType.EVENT_TYPE_TIMER_FIRED:
            raise self.unexpected(event)
        timer_id = event.timer_fired_event_attributes.timer_id
        if timer_id != str(self.seq):
            raise Nondeterminism(
                f"Timer fired event did not have expected timer id {self.seq}, it was {timer_id}!"
            )
        if self.state == _TimerState.STARTED:
            jobs.append(FireTimer(self.seq))
        # A timer that fired while its CancelTimer command was being recorded has no
        # waiter left: the workflow already dropped it.
        self.state = _TimerState.DONE
        return True


class _ActivityState(IntEnum):
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
        self.state = _ActivityState.CREATED
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
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            self.scheduled_event_id = event.event_id
            self.state = _ActivityState.SCHEDULED

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        event_type = event.event_type
        if event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            self.started_event_id = event.event_id
            if self.state == _ActivityState.SCHEDULED:
                self.state = _ActivityState.STARTED
            return False
        if event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            payloads = event.activity_task_completed_event_attributes.result.payloads
            job = ResolveActivity(self.seq, result=payloads[0] if payloads else None)
        elif event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failure = history.activity_failed_failure(event, self.activity_id, self.activity_type)
            job = ResolveActivity(self.seq, failure=failure)
        elif event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            failure = history.activity_timed_out_failure(
                event, self.activity_id, self.activity_type
            )
            job = ResolveActivity(self.seq, failure=failure)
        elif event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
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
        self.state = _ActivityState.DONE
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


_TERMINAL_EVENTS: Final = {
    CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION: (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        "Complete workflow machine",
    ),
    CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION: (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        "Fail workflow machine",
    ),
    CommandType.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION: (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        "Cancel workflow machine",
    ),
    CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION: (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        "Continue as new workflow machine",
    ),
}


class CommandMachines:
    """All command machines of one run and the queue of unmatched commands.

    ``jobs`` is shared with the caller, which applies them at the next
    activation. ``replaying`` must be set by the caller for every task.
    """

    def __init__(self, jobs: list[Job], flags: InternalFlags) -> None:
        self.jobs = jobs
        self.flags = flags
        self.replaying = False
        # Commands of the running activation, not yet prepared.
        self._current: list[CommandEntry] = []
        # Prepared commands waiting for their events (sdk-core's command queue).
        self._queue: deque[CommandEntry] = deque()
        self._dropped_since_prepare = False
        # Machines still expecting events, by the id of the event that started them.
        self._by_event_id: dict[int, Machine] = {}
        # Patch ids seen in history or used by the workflow -> whether a command was made.
        self._patches: dict[str, bool] = {}

    # -- commands from workflow code -------------------------------------------------------

    def _add(
        self, command_type: int, machine: Machine, event_type: int, terminal: bool = False
    ) -> Command:
        command = Command(command_type=command_type)  # type: ignore[arg-type]
        self._current.append(CommandEntry(command, machine, event_type, terminal))
        return command

    def schedule_activity(
        self, seq: int, activity_id: str, activity_type: str, cancellation_type: int
    ) -> tuple[ActivityMachine, Command]:
        """Create an activity machine; the caller fills in the returned command."""
        machine = ActivityMachine(seq, activity_id, activity_type, cancellation_type)
        command = self._add(
            CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
            machine,
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        )
        return machine, command

    def cancel_activity(self, machine: ActivityMachine) -> None:
        """Workflow code cancelled the activity; sdk-core's activity cancel rules."""
        state = machine.state
        if machine.resolved or state in (_ActivityState.DONE, _ActivityState.CANCEL_REQUESTED):
            return
        if state == _ActivityState.CREATED:
            # Never sent: drop the schedule command instead of cancelling it.
            machine.cancelled_before_sent = True
            self._dropped_since_prepare = True
            machine.state = _ActivityState.DONE
            if machine.cancellation_type != ABANDON:
                self.jobs.append(machine.cancelled_job())
                machine.resolved = True
            return
        if machine.cancellation_type == ABANDON:
            self.jobs.append(machine.cancelled_job())
            machine.resolved = True
            machine.state = _ActivityState.DONE
            return
        command = self._add(
            CommandType.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK,
            machine,
            EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
        )
        attrs = command.request_cancel_activity_task_command_attributes
        attrs.scheduled_event_id = machine.scheduled_event_id
        machine.state = _ActivityState.CANCEL_REQUESTED
        if machine.cancellation_type == TRY_CANCEL:
            self.jobs.append(machine.cancelled_job())
            machine.resolved = True

    def start_timer(self, seq: int) -> tuple[TimerMachine, Command]:
        """Create a timer machine; the caller sets the duration on the command."""
        machine = TimerMachine(seq)
        command = self._add(
            CommandType.COMMAND_TYPE_START_TIMER, machine, EventType.EVENT_TYPE_TIMER_STARTED
        )
        command.start_timer_command_attributes.timer_id = str(seq)
        return machine, command

    def cancel_timer(self, machine: TimerMachine) -> Command | None:
        """Cancel a timer: drop its command if unsent, else issue CancelTimer."""
        if machine.state == _TimerState.CREATED:
            machine.cancelled_before_sent = True
            self._dropped_since_prepare = True
            machine.state = _TimerState.DONE
            return None
        if machine.state != _TimerState.STARTED:
            return None
        machine.state = _TimerState.CANCEL_REQUESTED
        command = self._add(
            CommandType.COMMAND_TYPE_CANCEL_TIMER, machine, EventType.EVENT_TYPE_TIMER_CANCELED
        )
        command.cancel_timer_command_attributes.timer_id = str(machine.seq)
        return command

    def note_patch_marker(self, patch_id: str) -> None:
        """History (looking ahead) holds a marker for ``patch_id``."""
        self._patches[patch_id] = False
        self.jobs.append(NotifyHasPatch(patch_id))

    def set_patch_marker(self, patch_id: str, deprecated: bool) -> Command | None:
        """Record a patch marker once per patch id, plus sdk-core's version upsert."""
        if self._patches.get(patch_id):
            return None
        seen_in_history = patch_id in self._patches
        command = self._add(
            CommandType.COMMAND_TYPE_RECORD_MARKER,
            PatchMachine(patch_id),
            EventType.EVENT_TYPE_MARKER_RECORDED,
        )
        attrs = command.record_marker_command_attributes
        attrs.marker_name = history.PATCH_MARKER_NAME
        for key, payloads in history.patch_marker_payloads(patch_id, deprecated).items():
            attrs.details[key].CopyFrom(payloads)
        use_flag = self.flags.try_use_core(
            CoreFlag.UPSERT_SEARCH_ATTRIBUTE_ON_PATCH, not self.replaying
        )
        if use_flag and not (self.replaying and not seen_in_history):
            ids = sorted({*self._patches, patch_id})
            value = history.patch_search_attribute(ids)
            if len(value.data) < 2048:  # sdk-core skips values the server would refuse
                upsert = self._add(
                    CommandType.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
                    OneShotMachine("Upsert search attributes machine"),
                    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
                )
                fields = upsert.upsert_workflow_search_attributes_command_attributes
                fields.search_attributes.indexed_fields[history.VERSION_SEARCH_ATTRIBUTE].CopyFrom(
                    value
                )
        self._patches[patch_id] = True
        return command

    def upsert_search_attributes(self, attributes: SearchAttributes) -> Command:
        """Upsert search attributes (fire and forget)."""
        command = self._add(
            CommandType.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            OneShotMachine("Upsert search attributes machine"),
            EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        )
        attrs = command.upsert_workflow_search_attributes_command_attributes
        use_flag = self.flags.try_use_core(
            CoreFlag.UPSERT_SEARCH_ATTRIBUTE_ON_PATCH, not self.replaying
        )
        if not (use_flag and history.VERSION_SEARCH_ATTRIBUTE in attributes.indexed_fields):
            # The version attribute is sdk-core's own; the command stays, empty.
            attrs.search_attributes.CopyFrom(attributes)
        else:
            attrs.search_attributes.SetInParent()
        return command

    def modify_workflow_properties(self) -> Command:
        """Upsert memo (fire and forget); the caller fills in the memo."""
        return self._add(
            CommandType.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES,
            OneShotMachine("Modify workflow properties machine"),
            EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
        )

    def close_workflow(self, command_type: int) -> Command:
        """Complete, fail, cancel or continue the run; the caller fills in the command."""
        event_type, label = _TERMINAL_EVENTS[command_type]  # type: ignore[index]
        return self._add(command_type, OneShotMachine(label), event_type, terminal=True)

    # -- end of an activation ---------------------------------------------------------------

    def prepare(self) -> None:
        """Move the activation's commands to the queue, as sdk-core does after each one."""
        if self._dropped_since_prepare:
            self._queue = deque(e for e in self._queue if not e.machine.cancelled_before_sent)
            self._dropped_since_prepare = False
        current = self._current
        if not current:
            return
        self._current = []
        terminals = [e for e in current if e.terminal]
        if terminals:
            if self.flags.try_use_core(CoreFlag.MOVE_TERMINAL_COMMANDS, not self.replaying):
                # Every other command still goes out, the first terminal one last.
                current = [e for e in current if not e.terminal] + terminals[:1]
            else:
                current = current[: current.index(terminals[0]) + 1]
        queue = self._queue
        for entry in current:
            if not entry.machine.cancelled_before_sent:
                queue.append(entry)

    def outgoing(self) -> list[Command]:
        """Commands to send for the task being answered."""
        return [e.command for e in self._queue if not e.machine.cancelled_before_sent]

    def discard_current(self) -> None:
        """Forget the commands of an activation that failed."""
        self._current.clear()

    # -- events from history ----------------------------------------------------------------

    def handle_command_event(self, event: HistoryEvent, next_event: HistoryEvent | None) -> bool:
        """Match a command event against the queue; True means skip ``next_event`` too."""
        queue = self._queue
        while True:
            front = queue[0].machine if queue else None
            patch = history.patch_marker_details(event)
            if patch is not None:
                if isinstance(front, PatchMachine):
                    if front.patch_id != patch[0] and patch[1]:
                        return _skip_version_upsert(next_event)
                elif patch[1]:
                    # Deprecated markers may stay in history after the call is gone.
                    return _skip_version_upsert(next_event)
                else:
                    raise Nondeterminism(
                        f"Non-deprecated patch marker encountered for change {patch[0]}, "
                        "but there is no corresponding change command!"
                    )
            elif isinstance(front, PatchMachine):
                # Replaying code that now calls patched() where history has no marker.
                queue.popleft()
                continue
            if not queue:
                raise Nondeterminism(
                    f"No command scheduled for event {history.describe_event(event)}"
                )
            entry = queue.popleft()
            machine = entry.machine
            if machine.cancelled_before_sent:
                continue
            if event.event_type != entry.event_type:
                raise machine.unexpected(event)
            if isinstance(machine, ActivityMachine) and (
                event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                and CoreFlag.ID_AND_TYPE_DETERMINISM_CHECKS in self.flags.core
            ):
                machine.check_scheduled(event)
            elif (
                event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
                and isinstance(machine, ActivityMachine)
            ):
                recorded = event.activity_task_cancel_requested_event_attributes
                if recorded.scheduled_event_id != machine.scheduled_event_id:
                    raise machine.unexpected(event)
            machine.on_command_event(entry, event)
            if event.event_type in _STARTING_EVENTS:
                self._by_event_id[event.event_id] = machine
            return False

    def handle_event(self, event: HistoryEvent) -> None:
        """Apply a result event (activity finished, timer fired) to its machine."""
        event_type = event.event_type
        if event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            initial = event.timer_fired_event_attributes.started_event_id
        else:
            initial = _scheduled_event_id(event)
        machine = self._by_event_id.get(initial)
        if machine is None:
            raise Nondeterminism(
                "During event handling, this event had an initial command ID but we could "
                f"not find a matching command for it: {history.describe_event(event)}"
            )
        if machine.on_event(event, self.jobs):
            del self._by_event_id[initial]


_STARTING_EVENTS: Final = frozenset(
    {EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, EventType.EVENT_TYPE_TIMER_STARTED}
)


def _scheduled_event_id(event: HistoryEvent) -> int:
    event_type = event.event_type
    if event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        return event.activity_task_started_event_attributes.scheduled_event_id
    if event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        return event.activity_task_completed_event_attributes.scheduled_event_id
    if event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        return event.activity_task_failed_event_attributes.scheduled_event_id
    if event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
        return event.activity_task_timed_out_event_attributes.scheduled_event_id
    if event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
        return event.activity_task_canceled_event_attributes.scheduled_event_id
    raise Nondeterminism(f"Unexpected event {history.describe_event(event)}")


def _skip_version_upsert(next_event: HistoryEvent | None) -> bool:
    """Skip the TemporalChangeVersion upsert that follows a skipped patch marker."""
    if (
        next_event is not None
        and next_event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ):
        fields = next_event.upsert_workflow_search_attributes_event_attributes
        return history.VERSION_SEARCH_ATTRIBUTE in fields.search_attributes.indexed_fields
    return False
