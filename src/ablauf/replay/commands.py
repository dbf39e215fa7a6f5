"""The queue of commands and its matching against recorded command events.

As in sdk-core, commands an activation produced are "prepared" into one queue
when the activation ends; replaying, each command event that follows a
WorkflowTaskCompleted must match the command at the front of that queue (patch
markers have their own rules). Commands not matched yet are what a new
workflow task sends.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from google.protobuf.message import Message as ProtoMessage
from temporalio.api.command.v1 import Command
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.protocol.v1 import Message
from temporalio.api.update.v1 import Acceptance, Outcome, Rejection, Response

from ablauf.history import catalog
from ablauf.history.events import ATTRIBUTE_FIELDS
from ablauf.replay import history
from ablauf.replay.history import C, CoreFlag, E, InternalFlags
from ablauf.replay.machines import (
    CANCEL,
    CANCEL_ABANDON,
    CANCEL_TRY,
    LOCAL_ACTIVITY_MARKER_NAME,
    ActivityMachine,
    ActivityState,
    CancelExternalMachine,
    ChildState,
    ChildWorkflowMachine,
    CloseWorkflowMachine,
    CommandEntry,
    DoUpdate,
    Job,
    LocalActivityMachine,
    LocalActivityRequest,
    LocalActivityResult,
    LocalActivityState,
    LocalMarker,
    Machine,
    ModifyPropertiesMachine,
    Nondeterminism,
    NotifyHasPatch,
    PatchMachine,
    ResolveChild,
    ResolveChildStart,
    ResolveSignalExternal,
    SignalExternalMachine,
    SignalExternalState,
    TimerMachine,
    TimerState,
    UpdateMachine,
    UpsertSearchAttributesMachine,
    local_marker,
)
from ablauf.replay.machines.base import (
    RESOLVE,
    RUN_NOW,
    SCHEDULE,
    SCHEDULE_REPLAYING,
    SCHEDULE_RESOLVED,
)

__all__ = ["CommandMachines"]


_TERMINAL_EVENTS: Final = {
    C.COMPLETE_WORKFLOW_EXECUTION: E.WORKFLOW_EXECUTION_COMPLETED,
    C.FAIL_WORKFLOW_EXECUTION: E.WORKFLOW_EXECUTION_FAILED,
    C.CANCEL_WORKFLOW_EXECUTION: E.WORKFLOW_EXECUTION_CANCELED,
    C.CONTINUE_AS_NEW_WORKFLOW_EXECUTION: E.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
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
        # Protocol messages (update acceptances, rejections, responses) of the new task.
        self.messages: list[Message] = []
        # Patch ids seen in history or used by the workflow -> whether a command was made.
        self._patches: dict[str, bool] = {}
        # Local activities by seq until their marker is recorded, markers read ahead
        # before their activity was asked for, and what the worker is to do next.
        self._locals: dict[int, LocalActivityMachine] = {}
        self._peeked_locals: dict[int, LocalMarker] = {}
        self.local_requests: list[LocalActivityRequest] = []
        self.local_cancels: list[int] = []
        # Local activities the worker runs and the task waits for (sdk-core's outstanding LAs).
        self._executing: set[int] = set()
        # Workflow time a resolved local activity moves the clock to (sdk-core's UpdateWFTime).
        self.time_ns = 0

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
            C.SCHEDULE_ACTIVITY_TASK,
            machine,
            E.ACTIVITY_TASK_SCHEDULED,
        )
        return machine, command

    def cancel_activity(self, machine: ActivityMachine) -> None:
        """Workflow code cancelled the activity; sdk-core's activity cancel rules."""
        trigger = machine.cancel_trigger()
        previous = machine.state
        machine.state = machine.step(trigger)
        if previous in (ActivityState.DONE, ActivityState.CANCEL_REQUESTED):
            return
        if previous == ActivityState.CREATED:
            # Never sent: drop the schedule command instead of cancelling it.
            machine.cancelled_before_sent = True
            self._dropped_since_prepare = True
            if trigger != CANCEL_ABANDON:
                self.jobs.append(machine.cancelled_job())
                machine.resolved = True
            return
        if trigger == CANCEL_ABANDON:
            self.jobs.append(machine.cancelled_job())
            machine.resolved = True
            return
        command = self._add(
            C.REQUEST_CANCEL_ACTIVITY_TASK,
            machine,
            E.ACTIVITY_TASK_CANCEL_REQUESTED,
        )
        attrs = command.request_cancel_activity_task_command_attributes
        attrs.scheduled_event_id = machine.scheduled_event_id
        if trigger == CANCEL_TRY:
            self.jobs.append(machine.cancelled_job())
            machine.resolved = True

    def schedule_local_activity(self, request: LocalActivityRequest) -> LocalActivityMachine:
        """Ask for a local activity: run it, or (replaying) wait for its marker."""
        machine = LocalActivityMachine(request, self.replaying, self.time_ns)
        seq = request.seq
        self._locals[seq] = machine
        if not self.replaying:
            machine.state = machine.step(SCHEDULE)
            self.local_requests.append(request)
            self._executing.add(seq)
            return machine
        peeked = self._peeked_locals.pop(seq, None)
        if peeked is None:
            machine.state = machine.step(SCHEDULE_REPLAYING)
            return machine
        machine.state = machine.step(SCHEDULE_RESOLVED)
        self._resolve_from_marker(machine, peeked)
        return machine

    def cancel_local_activity(self, machine: LocalActivityMachine) -> None:
        """Workflow code cancelled a local activity; sdk-core's rules by cancellation type."""
        trigger = machine.cancel_trigger()
        previous = machine.state
        machine.state = machine.step(trigger)
        if previous != LocalActivityState.REQUEST_SENT:
            return
        seq = machine.seq
        queued = next((r for r in self.local_requests if r.seq == seq), None)
        if queued is not None and trigger != CANCEL_ABANDON:
            # Not handed to the worker yet: it never runs, and ends cancelled now
            # (an abandoned one still runs, as in sdk-core, and nobody waits for it).
            self.local_requests.remove(queued)
            self._executing.discard(seq)
            result = machine.no_wait_cancel()
            if trigger == CANCEL:
                machine.state = machine.step(RESOLVE)
                result.runtime_ns = 0
            self._resolved(machine, result)
            return
        if trigger == CANCEL:
            self.local_cancels.append(seq)
            return
        if trigger == CANCEL_TRY:
            self.local_cancels.append(seq)
        else:
            self._executing.discard(seq)  # nobody waits for an abandoned activity
        self._resolved(machine, machine.no_wait_cancel())

    def local_activity_result(self, result: LocalActivityResult) -> None:
        """The worker's outcome of a local activity: resolve it and record its marker."""
        self._executing.discard(result.seq)
        machine = self._locals.get(result.seq)
        if machine is None:
            return  # abandoned, or cancelled and already resolved
        previous = machine.state
        machine.state = machine.step(RESOLVE)
        if previous == LocalActivityState.REQUEST_SENT:
            self._resolved(machine, result)

    def _resolved(self, machine: LocalActivityMachine, result: LocalActivityResult) -> None:
        self.jobs.append(machine.resolution(result))
        complete_ns = machine.complete_time_ns(result)
        if complete_ns is not None and complete_ns > self.time_ns:
            self.time_ns = complete_ns
        machine.outcome = result.status
        marker = machine.marker(result, complete_ns)
        command = self._add(C.RECORD_MARKER, machine, E.MARKER_RECORDED)
        attrs = command.record_marker_command_attributes
        attrs.marker_name = LOCAL_ACTIVITY_MARKER_NAME
        for key, payloads in marker.details().items():
            attrs.details[key].CopyFrom(payloads)
        if marker.failure is not None:
            attrs.failure.CopyFrom(marker.failure)
        if machine.request.summary is not None:
            command.user_metadata.summary.CopyFrom(machine.request.summary)

    def _resolve_from_marker(self, machine: LocalActivityMachine, marker: LocalMarker) -> None:
        # Checked against the activity when the marker event itself is handled.
        self.jobs.append(machine.resolution(marker.as_result()))
        if marker.complete_time_ns is not None and marker.complete_time_ns > self.time_ns:
            self.time_ns = marker.complete_time_ns

    def note_local_marker(self, marker: LocalMarker) -> None:
        """History (looking ahead) holds the marker of a local activity."""
        machine = self._locals.get(marker.seq)
        if machine is None or machine.state != LocalActivityState.WAITING_MARKER:
            self._peeked_locals[marker.seq] = marker
            return
        if machine.already_resolved:
            return
        machine.state = machine.step(RESOLVE)
        machine.already_resolved = True
        self._resolve_from_marker(machine, marker)

    def start_new_task(self) -> None:
        """A task that is not replayed begins: local activities whose marker never came run."""
        for machine in self._locals.values():
            if machine.state == LocalActivityState.WAITING_MARKER:
                machine.state = machine.step(RUN_NOW)
                machine.replaying_when_invoked = False
                self.local_requests.append(machine.request)
                self._executing.add(machine.seq)

    def waiting_for_local_activities(self) -> bool:
        """Whether a local activity runs whose result the task must wait for."""
        return bool(self._executing)

    def start_timer(self, seq: int) -> tuple[TimerMachine, Command]:
        """Create a timer machine; the caller sets the duration on the command."""
        machine = TimerMachine(seq)
        command = self._add(C.START_TIMER, machine, E.TIMER_STARTED)
        command.start_timer_command_attributes.timer_id = str(seq)
        return machine, command

    def cancel_timer(self, machine: TimerMachine) -> Command | None:
        """Cancel a timer: drop its command if unsent, else issue CancelTimer."""
        previous = machine.state
        machine.state = machine.step(CANCEL)
        if previous == TimerState.CREATED:
            machine.cancelled_before_sent = True
            self._dropped_since_prepare = True
            return None
        if previous != TimerState.STARTED:
            return None
        command = self._add(C.CANCEL_TIMER, machine, E.TIMER_CANCELED)
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
            C.RECORD_MARKER,
            PatchMachine(patch_id),
            E.MARKER_RECORDED,
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
                    C.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
                    UpsertSearchAttributesMachine(),
                    E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
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
            C.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            UpsertSearchAttributesMachine(),
            E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
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
            C.MODIFY_WORKFLOW_PROPERTIES,
            ModifyPropertiesMachine(),
            E.WORKFLOW_PROPERTIES_MODIFIED,
        )

    def start_child(
        self, seq: int, namespace: str, workflow_id: str, workflow_type: str, cancellation_type: int
    ) -> tuple[ChildWorkflowMachine, Command]:
        """Create a child workflow machine; the caller fills in the returned command."""
        machine = ChildWorkflowMachine(
            seq, namespace, workflow_id, workflow_type, cancellation_type
        )
        command = self._add(
            C.START_CHILD_WORKFLOW_EXECUTION, machine, E.START_CHILD_WORKFLOW_EXECUTION_INITIATED
        )
        return machine, command

    def cancel_child(self, machine: ChildWorkflowMachine, reason: str) -> Command | None:
        """Workflow code cancelled a child; sdk-core's child cancel rules."""
        previous = machine.state
        if previous == ChildState.STARTED and machine.cancel_issued:
            return None
        trigger = machine.cancel_trigger()
        machine.state = machine.step(trigger)
        if previous == ChildState.CREATED:
            machine.cancelled_before_sent = True
            self._dropped_since_prepare = True
            cause = Failure()
            cause.canceled_failure_info.SetInParent()
            failure = machine.failure(
                f"Child Workflow Execution cancelled before scheduled: {reason}", 2, cause
            )
            self.jobs.append(ResolveChildStart(machine.seq, failure=failure))
            return None
        if previous != ChildState.STARTED:
            return None
        machine.cancel_issued = True
        command = None
        if trigger != CANCEL_ABANDON:
            command = self._add(
                C.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION,
                CancelExternalMachine(0),
                E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
            )
            attrs = command.request_cancel_external_workflow_execution_command_attributes
            attrs.namespace = machine.namespace
            attrs.workflow_id = machine.workflow_id
            attrs.run_id = machine.run_id
            attrs.child_workflow_only = True
            attrs.reason = reason
        if machine.state == ChildState.CANCELLED:
            self.jobs.append(ResolveChild(machine.seq, failure=machine.cancelled_failure()))
        return command

    def signal_external(self, seq: int) -> tuple[SignalExternalMachine, Command]:
        """Signal a child or another workflow; the caller fills in the command."""
        machine = SignalExternalMachine(seq)
        command = self._add(
            C.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
            machine,
            E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        )
        return machine, command

    def cancel_signal(self, machine: SignalExternalMachine) -> None:
        """Workflow code gave up on a signal: drop it if unsent, else nothing."""
        previous = machine.state
        machine.state = machine.step(CANCEL)
        if previous != SignalExternalState.CREATED:
            return
        machine.cancelled_before_sent = True
        self._dropped_since_prepare = True
        failure = Failure(message="Signal was cancelled before being sent")
        failure.canceled_failure_info.SetInParent()
        self.jobs.append(ResolveSignalExternal(machine.seq, failure))

    def cancel_external(self, seq: int) -> Command:
        """Ask another workflow to cancel; the caller fills in the command."""
        return self._add(
            C.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION,
            CancelExternalMachine(seq),
            E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        )

    def _message(self, job: DoUpdate, suffix: str, body: ProtoMessage) -> str:
        message_id = f"{job.request_message_id}/{suffix}"
        if not self.replaying:
            message = Message(id=message_id, protocol_instance_id=job.protocol_instance_id)
            message.body.Pack(body)
            self.messages.append(message)
        return message_id

    def update_accepted(self, job: DoUpdate) -> Command:
        """Accept an update: an Acceptance message and the command that names it."""
        message_id = self._message(
            job,
            "accept",
            Acceptance(
                accepted_request_message_id=job.request_message_id,
                accepted_request_sequencing_event_id=job.sequencing_event_id,
                accepted_request=job.request,
            ),
        )
        command = self._add(
            C.PROTOCOL_MESSAGE,
            UpdateMachine(job.protocol_instance_id),
            E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        )
        command.protocol_message_command_attributes.message_id = message_id
        return command

    def update_rejected(self, job: DoUpdate, failure: Failure) -> None:
        """Reject an update: a Rejection message, no command and no event."""
        self._message(
            job,
            "reject",
            Rejection(
                rejected_request_message_id=job.request_message_id,
                rejected_request_sequencing_event_id=job.sequencing_event_id,
                rejected_request=job.request,
                failure=failure,
            ),
        )

    def update_completed(
        self, job: DoUpdate, result: Payload | None, failure: Failure | None
    ) -> Command:
        """Complete an accepted update with its result or failure."""
        outcome = Outcome()
        if failure is not None:
            outcome.failure.CopyFrom(failure)
        else:
            outcome.success.payloads.append(result or Payload())
        message_id = self._message(
            job, "complete", Response(meta=job.request.meta, outcome=outcome)
        )
        command = self._add(
            C.PROTOCOL_MESSAGE,
            UpdateMachine(job.protocol_instance_id),
            E.WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        )
        command.protocol_message_command_attributes.message_id = message_id
        return command

    def close_workflow(self, command_type: int) -> Command:
        """Complete, fail, cancel or continue the run; the caller fills in the command."""
        machine = CloseWorkflowMachine(command_type)
        return self._add(command_type, machine, _TERMINAL_EVENTS[command_type], terminal=True)

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
        event_type = event.event_type
        if event_type == E.MARKER_RECORDED and (
            event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER_NAME
        ):
            marker = local_marker(event)
            assert marker is not None
            local = self._locals.get(marker.seq)
            if local is None:
                raise Nondeterminism(
                    f"No local activity with sequence number {marker.seq} for event "
                    f"{history.describe_event(event)}"
                )
            if local.state in _REPLAYED_MARKER_STATES:
                # Replayed activities make no command: the marker applies directly.
                job = local.on_replayed_marker(event, marker)
                if job is not None:
                    self.jobs.append(job)
                    complete_ns = marker.complete_time_ns
                    if complete_ns is not None and complete_ns > self.time_ns:
                        self.time_ns = complete_ns
                del self._locals[marker.seq]
                return False
        while True:
            front = queue[0].machine if queue else None
            patch = history.patch_marker_details(event) if event_type == E.MARKER_RECORDED else None
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
            elif event_type == E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES and (
                self._unflagged_version_upsert(event, queue[0] if queue else None)
            ):
                return False
            if not queue:
                raise Nondeterminism(
                    f"No command scheduled for event {history.describe_event(event)}"
                )
            entry = queue.popleft()
            machine = entry.machine
            if machine.cancelled_before_sent:
                continue
            if event_type != entry.event_type:
                raise machine.unexpected(event)
            machine.on_command_event(entry, event)
            if isinstance(machine, LocalActivityMachine):
                del self._locals[machine.seq]
            if event_type in _STARTING_EVENTS:
                self._by_event_id[event.event_id] = machine
            return False

    def _unflagged_version_upsert(self, event: HistoryEvent, front: CommandEntry | None) -> bool:
        """Whether ``event`` is a patch's version upsert that replay would not produce.

        Without sdk-core's flag 2 in the history, replay makes no version upsert for a
        patch. Histories whose writer left out ``sdk_metadata`` still hold the upsert
        ablauf made, and it is sdk-core's own bookkeeping: skip it.
        """
        if (
            event.event_type != E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
            or CoreFlag.UPSERT_SEARCH_ATTRIBUTE_ON_PATCH in self.flags.core
            or (front is not None and front.event_type == E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
        ):
            return False
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        return list(fields.indexed_fields) == [history.VERSION_SEARCH_ATTRIBUTE]

    def handle_event(self, event: HistoryEvent) -> None:
        """Apply a result event (activity finished, timer fired) to its machine."""
        event_type = event.event_type
        if event_type == E.TIMER_FIRED:
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


_STARTING_EVENTS: Final = catalog.INITIATING_EVENTS
_REPLAYED_MARKER_STATES: Final = (
    LocalActivityState.WAITING_MARKER,
    LocalActivityState.WAITING_MARKER_RESOLVED,
)

# Events that name the command event they answer by ``initiated_event_id``.
_INITIATED_BY: Final = {
    t: ATTRIBUTE_FIELDS[t]
    for t, field in catalog.ANSWERED_BY.items()
    if field == "initiated_event_id"
}


def _scheduled_event_id(event: HistoryEvent) -> int:
    event_type = event.event_type
    field = _INITIATED_BY.get(event_type)
    if field is not None:
        return int(getattr(event, field).initiated_event_id)
    if event_type == E.ACTIVITY_TASK_STARTED:
        return event.activity_task_started_event_attributes.scheduled_event_id
    if event_type == E.ACTIVITY_TASK_COMPLETED:
        return event.activity_task_completed_event_attributes.scheduled_event_id
    if event_type == E.ACTIVITY_TASK_FAILED:
        return event.activity_task_failed_event_attributes.scheduled_event_id
    if event_type == E.ACTIVITY_TASK_TIMED_OUT:
        return event.activity_task_timed_out_event_attributes.scheduled_event_id
    if event_type == E.ACTIVITY_TASK_CANCELED:
        return event.activity_task_canceled_event_attributes.scheduled_event_id
    raise Nondeterminism(f"Unexpected event {history.describe_event(event)}")


def _skip_version_upsert(next_event: HistoryEvent | None) -> bool:
    """Skip the TemporalChangeVersion upsert that follows a skipped patch marker."""
    if next_event is not None and next_event.event_type == E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        fields = next_event.upsert_workflow_search_attributes_event_attributes
        return history.VERSION_SEARCH_ATTRIBUTE in fields.search_attributes.indexed_fields
    return False
