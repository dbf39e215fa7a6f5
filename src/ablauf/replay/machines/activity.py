"""The activity machine: scheduled, started, then completed, failed, timed out or cancelled.

sdk-core's ``activity_state_machine.rs``. How a cancel from workflow code ends
depends on the activity's cancellation type: TRY_CANCEL resolves it at once and
sends the request, WAIT_CANCELLATION_COMPLETED sends it and waits for the
outcome, ABANDON resolves it and sends nothing, leaving the activity to run.
"""

from __future__ import annotations

from typing import Final

from temporalio.api.history.v1 import HistoryEvent

from ablauf.history import catalog
from ablauf.replay import history
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
from ablauf.replay.machines.jobs import Job, ResolveActivity

__all__ = [
    "ABANDON",
    "TRANSITIONS",
    "TRY_CANCEL",
    "WAIT_CANCELLATION_COMPLETED",
    "ActivityMachine",
    "ActivityState",
]


class ActivityState:
    """States of an activity machine."""

    CREATED: Final = 0
    SCHEDULED: Final = 1
    STARTED: Final = 2
    CANCEL_REQUESTED: Final = 3
    DONE: Final = 4


_S = ActivityState
_CLOSED: Final = tuple(sorted(catalog.ACTIVITY_CLOSED))

TRANSITIONS: Final[Transitions] = (
    (_S.CREATED, E.ACTIVITY_TASK_SCHEDULED, _S.SCHEDULED),
    # Never sent: the schedule command is dropped, whatever the cancellation type.
    *((_S.CREATED, cancel, _S.DONE) for cancel in CANCELS),
    (_S.SCHEDULED, E.ACTIVITY_TASK_STARTED, _S.STARTED),
    *(
        row
        for state in (_S.SCHEDULED, _S.STARTED)
        for row in (
            (state, CANCEL, _S.CANCEL_REQUESTED),
            (state, CANCEL_TRY, _S.CANCEL_REQUESTED),
            (state, CANCEL_ABANDON, _S.DONE),
        )
    ),
    (_S.CANCEL_REQUESTED, E.ACTIVITY_TASK_CANCEL_REQUESTED, _S.CANCEL_REQUESTED),
    (_S.CANCEL_REQUESTED, E.ACTIVITY_TASK_STARTED, _S.CANCEL_REQUESTED),
    # Abandoned: the activity's events still arrive, and change nothing.
    (_S.DONE, E.ACTIVITY_TASK_STARTED, _S.DONE),
    *(
        (state, closed, _S.DONE)
        for state in (_S.SCHEDULED, _S.STARTED, _S.CANCEL_REQUESTED, _S.DONE)
        for closed in _CLOSED
    ),
    # Cancelling again changes nothing.
    *((state, cancel, state) for state in (_S.CANCEL_REQUESTED, _S.DONE) for cancel in CANCELS),
)

# Cancellation types of temporalio.workflow.ActivityCancellationType.
TRY_CANCEL: Final = 0
WAIT_CANCELLATION_COMPLETED: Final = 1
ABANDON: Final = 2

_CANCEL_TRIGGERS: Final = {
    TRY_CANCEL: CANCEL_TRY,
    WAIT_CANCELLATION_COMPLETED: CANCEL,
    ABANDON: CANCEL_ABANDON,
}


class ActivityMachine(Machine):
    """An activity, named by its sequence number."""

    __slots__ = (
        "activity_id",
        "activity_type",
        "cancellation_type",
        "resolved",
        "scheduled_event_id",
        "seq",
        "started_event_id",
    )
    label = "Activity machine"
    family = catalog.ACTIVITY
    commands = (C.SCHEDULE_ACTIVITY_TASK, C.REQUEST_CANCEL_ACTIVITY_TASK)
    table = TRANSITIONS
    transitions = transition_map(TRANSITIONS)
    events = table_events(TRANSITIONS)

    def __init__(
        self, seq: int, activity_id: str, activity_type: str, cancellation_type: int
    ) -> None:
        super().__init__()
        self.seq = seq
        self.activity_id = activity_id
        self.activity_type = activity_type
        self.cancellation_type = cancellation_type
        self.scheduled_event_id = 0
        self.started_event_id = 0
        self.resolved = False  # workflow code already got its result

    def cancel_trigger(self) -> int:
        """The action a cancel from workflow code takes, by cancellation type."""
        return _CANCEL_TRIGGERS.get(self.cancellation_type, CANCEL)

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
        event_type = event.event_type
        if event_type == E.ACTIVITY_TASK_SCHEDULED:
            # sdk-core checks id and type only for histories recording its flag 1;
            # ablauf always does, so a history without sdk_metadata is checked too.
            self.check_scheduled(event)
            self.scheduled_event_id = event.event_id
        elif event_type == E.ACTIVITY_TASK_CANCEL_REQUESTED:
            recorded = event.activity_task_cancel_requested_event_attributes
            if recorded.scheduled_event_id != self.scheduled_event_id:
                raise self.unexpected(event)
        super().on_command_event(entry, event)

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        event_type = event.event_type
        to = self.step(event_type, event)
        if event_type == E.ACTIVITY_TASK_STARTED:
            self.started_event_id = event.event_id
            self.state = to
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
        else:
            attrs = event.activity_task_canceled_event_attributes
            failure = history.activity_cancelled_failure(
                self.activity_id,
                self.activity_type,
                self.scheduled_event_id,
                self.started_event_id,
                attrs.details,
            )
            job = ResolveActivity(self.seq, failure=failure)
        # TRY_CANCEL and ABANDON already handed workflow code a cancellation.
        if not self.resolved:
            jobs.append(job)
            self.resolved = True
        self.state = to
        return True

    def cancelled_job(self) -> ResolveActivity:
        """The resolution sdk-core sends when it cancels on the workflow's behalf."""
        failure = history.activity_cancelled_failure(
            self.activity_id, self.activity_type, self.scheduled_event_id, self.started_event_id
        )
        return ResolveActivity(self.seq, failure=failure)
