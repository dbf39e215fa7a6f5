"""The catalogue of Temporal's event and command kinds as ablauf uses them.

Every set of event or command types the engine, the run-state fold and the
replay machines classify by is derived from the two tables below; a new
command kind is one row in each (and its engine handler and replay machine,
which a test checks against these tables).

Families group the kinds one state machine follows: an activity's scheduled,
started and closing events, a timer's, a child's, a signal or cancel request
to another workflow's, an update's.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from temporalio.api.enums.v1 import CommandType, EventType, WorkflowTaskFailedCause

__all__ = [
    "ACTIVITY",
    "ACTIVITY_CLOSED",
    "ANSWERED_BY",
    "CANCEL_EXTERNAL",
    "CHILD",
    "CHILD_CLOSED",
    "CLOSE_EVENTS",
    "CLOSING_COMMANDS",
    "COMMANDS",
    "COMMAND_EVENT_TYPES",
    "EVENTS",
    "EXTERNAL_DONE",
    "FOLDED",
    "IGNORED_BY_WORKFLOWS",
    "INITIATING_EVENTS",
    "MARKER_NAMES",
    "RESULT_EVENTS",
    "SIGNAL_EXTERNAL",
    "SUPPORTED_COMMANDS",
    "TIMER",
    "UNSUPPORTED_COMMAND_EVENTS",
    "CommandKind",
    "EventKind",
    "answered_field",
]

# Families
WORKFLOW: Final = "workflow"
WORKFLOW_TASK: Final = "workflow task"
ACTIVITY: Final = "activity"
TIMER: Final = "timer"
CHILD: Final = "child workflow"
SIGNAL_EXTERNAL: Final = "signal external"
CANCEL_EXTERNAL: Final = "cancel external"
MARKER: Final = "marker"
SEARCH_ATTRIBUTES: Final = "search attributes"
PROPERTIES: Final = "workflow properties"
UPDATE: Final = "update"
NEXUS: Final = "nexus operation"
OPERATOR: Final = "operator"


class EventKind(NamedTuple):
    """What one event type means to ablauf."""

    type: int
    family: str
    command: int = 0
    """The command whose acceptance records it (0: none does)."""
    initiates: bool = False
    """It opens one operation of its family that later events answer."""
    answers: str = ""
    """The attribute naming the event it answers (``scheduled_event_id``, ...)."""
    closes: bool = False
    """It ends what it answers, or, without ``answers``, the run."""
    folded: bool = False
    """The run's mutable state changes with it (``RunState.apply``)."""
    ignored_by_workflows: bool = False
    """Workflow code never sees it and no replay machine follows it."""
    supported: bool = True
    """ablauf records and replays it (else a history holding it is refused)."""


class CommandKind(NamedTuple):
    """What one command type asks of the engine."""

    type: int
    family: str
    event: int
    """The event its acceptance records (0: none of its own)."""
    cause: int
    """Temporal's ``WorkflowTaskFailedCause`` when its attributes are refused."""
    supported: bool = True
    closes: bool = False
    """It closes the run (and ends the list of commands)."""


_E = EventType
_C = CommandType
_F = WorkflowTaskFailedCause

_SCHEDULED = "scheduled_event_id"
_STARTED = "started_event_id"
_INITIATED = "initiated_event_id"

EVENTS: Final[dict[int, EventKind]] = {
    kind.type: kind
    for kind in (
        # The run
        EventKind(_E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, WORKFLOW, folded=True),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
            WORKFLOW,
            command=_C.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
            closes=True,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            WORKFLOW,
            command=_C.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
            closes=True,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
            WORKFLOW,
            command=_C.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION,
            closes=True,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
            WORKFLOW,
            command=_C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
            closes=True,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
            WORKFLOW,
            closes=True,
            folded=True,
            ignored_by_workflows=True,
        ),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
            WORKFLOW,
            closes=True,
            folded=True,
            ignored_by_workflows=True,
        ),
        EventKind(_E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED, WORKFLOW, folded=True),
        EventKind(_E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, WORKFLOW),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED, OPERATOR, ignored_by_workflows=True
        ),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED_EXTERNALLY,
            OPERATOR,
            ignored_by_workflows=True,
        ),
        EventKind(
            _E.EVENT_TYPE_ACTIVITY_PROPERTIES_MODIFIED_EXTERNALLY,
            OPERATOR,
            ignored_by_workflows=True,
        ),
        EventKind(_E.EVENT_TYPE_WORKFLOW_EXECUTION_PAUSED, OPERATOR, ignored_by_workflows=True),
        EventKind(_E.EVENT_TYPE_WORKFLOW_EXECUTION_UNPAUSED, OPERATOR, ignored_by_workflows=True),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_TIME_SKIPPING_TRANSITIONED,
            OPERATOR,
            ignored_by_workflows=True,
        ),
        # Workflow tasks
        EventKind(_E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, WORKFLOW_TASK, ignored_by_workflows=True),
        EventKind(_E.EVENT_TYPE_WORKFLOW_TASK_STARTED, WORKFLOW_TASK),
        EventKind(_E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, WORKFLOW_TASK, folded=True),
        EventKind(_E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, WORKFLOW_TASK, ignored_by_workflows=True),
        EventKind(_E.EVENT_TYPE_WORKFLOW_TASK_FAILED, WORKFLOW_TASK),
        # Activities
        EventKind(
            _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            ACTIVITY,
            command=_C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
            initiates=True,
            folded=True,
        ),
        EventKind(_E.EVENT_TYPE_ACTIVITY_TASK_STARTED, ACTIVITY, answers=_SCHEDULED),
        EventKind(
            _E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            ACTIVITY,
            answers=_SCHEDULED,
            closes=True,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            ACTIVITY,
            answers=_SCHEDULED,
            closes=True,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            ACTIVITY,
            answers=_SCHEDULED,
            closes=True,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
            ACTIVITY,
            answers=_SCHEDULED,
            closes=True,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
            ACTIVITY,
            command=_C.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK,
            answers=_SCHEDULED,
            folded=True,
        ),
        # Timers
        EventKind(
            _E.EVENT_TYPE_TIMER_STARTED,
            TIMER,
            command=_C.COMMAND_TYPE_START_TIMER,
            initiates=True,
            folded=True,
        ),
        EventKind(_E.EVENT_TYPE_TIMER_FIRED, TIMER, answers=_STARTED, closes=True, folded=True),
        EventKind(
            _E.EVENT_TYPE_TIMER_CANCELED,
            TIMER,
            command=_C.COMMAND_TYPE_CANCEL_TIMER,
            answers=_STARTED,
            closes=True,
            folded=True,
        ),
        # Child workflows
        EventKind(
            _E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
            CHILD,
            command=_C.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
            initiates=True,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
            CHILD,
            answers=_INITIATED,
            closes=True,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED, CHILD, answers=_INITIATED, folded=True
        ),
        *(
            EventKind(t, CHILD, answers=_INITIATED, closes=True, folded=True)
            for t in (
                _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
                _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
                _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
                _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
                _E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
            )
        ),
        # Signals and cancel requests to other workflows
        EventKind(
            _E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
            SIGNAL_EXTERNAL,
            command=_C.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
            initiates=True,
            folded=True,
        ),
        *(
            EventKind(t, SIGNAL_EXTERNAL, answers=_INITIATED, closes=True, folded=True)
            for t in (
                _E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
                _E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
            )
        ),
        EventKind(
            _E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
            CANCEL_EXTERNAL,
            command=_C.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION,
            initiates=True,
            folded=True,
        ),
        *(
            EventKind(t, CANCEL_EXTERNAL, answers=_INITIATED, closes=True, folded=True)
            for t in (
                _E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
                _E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
            )
        ),
        # Recorded for the workflow's own bookkeeping
        EventKind(_E.EVENT_TYPE_MARKER_RECORDED, MARKER, command=_C.COMMAND_TYPE_RECORD_MARKER),
        EventKind(
            _E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            SEARCH_ATTRIBUTES,
            command=_C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            folded=True,
        ),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
            PROPERTIES,
            command=_C.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES,
            folded=True,
        ),
        # Updates: accepted and completed are recorded for the worker's protocol messages.
        EventKind(_E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED, UPDATE),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
            UPDATE,
            command=_C.COMMAND_TYPE_PROTOCOL_MESSAGE,
        ),
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
            UPDATE,
            command=_C.COMMAND_TYPE_PROTOCOL_MESSAGE,
        ),
        # A legacy event no current server writes; a command of old would have recorded it.
        EventKind(
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
            UPDATE,
            command=_C.COMMAND_TYPE_PROTOCOL_MESSAGE,
            supported=False,
        ),
        # Nexus operations (not supported)
        EventKind(
            _E.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED,
            NEXUS,
            command=_C.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION,
            initiates=True,
            supported=False,
        ),
        EventKind(
            _E.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED,
            NEXUS,
            command=_C.COMMAND_TYPE_REQUEST_CANCEL_NEXUS_OPERATION,
            supported=False,
        ),
        *(
            EventKind(t, NEXUS, supported=False)
            for t in (
                _E.EVENT_TYPE_NEXUS_OPERATION_STARTED,
                _E.EVENT_TYPE_NEXUS_OPERATION_COMPLETED,
                _E.EVENT_TYPE_NEXUS_OPERATION_FAILED,
                _E.EVENT_TYPE_NEXUS_OPERATION_CANCELED,
                _E.EVENT_TYPE_NEXUS_OPERATION_TIMED_OUT,
                _E.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED,
                _E.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUEST_FAILED,
            )
        ),
    )
}
"""Every event type of Temporal's API but UNSPECIFIED."""

COMMANDS: Final[dict[int, CommandKind]] = {
    kind.type: kind
    for kind in (
        CommandKind(
            _C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
            ACTIVITY,
            _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES,
        ),
        CommandKind(
            _C.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK,
            ACTIVITY,
            _E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES,
        ),
        CommandKind(
            _C.COMMAND_TYPE_START_TIMER,
            TIMER,
            _E.EVENT_TYPE_TIMER_STARTED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_TIMER_ATTRIBUTES,
        ),
        CommandKind(
            _C.COMMAND_TYPE_CANCEL_TIMER,
            TIMER,
            _E.EVENT_TYPE_TIMER_CANCELED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_CANCEL_TIMER_ATTRIBUTES,
        ),
        CommandKind(
            _C.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
            WORKFLOW,
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES,
            closes=True,
        ),
        CommandKind(
            _C.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
            WORKFLOW,
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_FAIL_WORKFLOW_EXECUTION_ATTRIBUTES,
            closes=True,
        ),
        CommandKind(
            _C.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION,
            WORKFLOW,
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_CANCEL_WORKFLOW_EXECUTION_ATTRIBUTES,
            closes=True,
        ),
        CommandKind(
            _C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
            WORKFLOW,
            _E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_CONTINUE_AS_NEW_ATTRIBUTES,
            closes=True,
        ),
        CommandKind(
            _C.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
            CHILD,
            _E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_CHILD_EXECUTION_ATTRIBUTES,
        ),
        CommandKind(
            _C.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
            SIGNAL_EXTERNAL,
            _E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES,
        ),
        CommandKind(
            _C.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION,
            CANCEL_EXTERNAL,
            _E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_ATTRIBUTES,
        ),
        CommandKind(
            _C.COMMAND_TYPE_RECORD_MARKER,
            MARKER,
            _E.EVENT_TYPE_MARKER_RECORDED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_RECORD_MARKER_ATTRIBUTES,
        ),
        CommandKind(
            _C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            SEARCH_ATTRIBUTES,
            _E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES,
        ),
        CommandKind(
            _C.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES,
            PROPERTIES,
            _E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_MODIFY_WORKFLOW_PROPERTIES_ATTRIBUTES,
        ),
        CommandKind(
            _C.COMMAND_TYPE_PROTOCOL_MESSAGE,
            UPDATE,
            0,  # Its message says what is recorded: an update accepted or completed.
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE,
        ),
        CommandKind(
            _C.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION,
            NEXUS,
            _E.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_NEXUS_OPERATION_ATTRIBUTES,
            supported=False,
        ),
        CommandKind(
            _C.COMMAND_TYPE_REQUEST_CANCEL_NEXUS_OPERATION,
            NEXUS,
            _E.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED,
            _F.WORKFLOW_TASK_FAILED_CAUSE_BAD_REQUEST_CANCEL_NEXUS_OPERATION_ATTRIBUTES,
            supported=False,
        ),
    )
}
"""Every command type of Temporal's API but UNSPECIFIED."""


def _events(**match: object) -> frozenset[int]:
    return frozenset(
        t for t, kind in EVENTS.items() if all(getattr(kind, k) == v for k, v in match.items())
    )


def _closing(family: str) -> frozenset[int]:
    return frozenset(
        t for t, kind in EVENTS.items() if kind.family == family and kind.closes and kind.answers
    )


FOLDED: Final = _events(folded=True)
"""Event types that change a run's mutable state; the others leave it as it is."""
CLOSE_EVENTS: Final = frozenset(
    t for t, kind in EVENTS.items() if kind.family == WORKFLOW and kind.closes
)
"""Event types that close a run."""
ACTIVITY_CLOSED: Final = _closing(ACTIVITY)
CHILD_CLOSED: Final = _closing(CHILD)
EXTERNAL_DONE: Final = _closing(SIGNAL_EXTERNAL) | _closing(CANCEL_EXTERNAL)
"""Outcomes of a signal or cancel request to another workflow."""
COMMAND_EVENT_TYPES: Final = frozenset(t for t, kind in EVENTS.items() if kind.command)
"""Events the server writes for commands of a completed workflow task."""
UNSUPPORTED_COMMAND_EVENTS: Final = frozenset(
    t for t in COMMAND_EVENT_TYPES if not EVENTS[t].supported
)
"""Command events ablauf's workflows never produce (Nexus, legacy update rejections)."""
INITIATING_EVENTS: Final = _events(initiates=True, supported=True)
"""Command events that open an operation later events answer."""
RESULT_EVENTS: Final = frozenset(
    t for t, kind in EVENTS.items() if kind.answers and not kind.command
)
"""Events from outside the workflow that answer one of its operations."""
ANSWERED_BY: Final[dict[int, str]] = {t: kind.answers for t, kind in EVENTS.items() if kind.answers}
"""For each answering event type, the attribute naming the event it answers."""
IGNORED_BY_WORKFLOWS: Final = _events(ignored_by_workflows=True)
SUPPORTED_COMMANDS: Final = frozenset(t for t, kind in COMMANDS.items() if kind.supported)
MARKER_NAMES: Final[dict[str, str]] = {
    "core_patch": "patch",
    "core_local_activity": "local activity",
}
"""The markers sdk-core records, by marker name: RECORD_MARKER is one command type
for several kinds of work, told apart by the name (each kind has its own machine)."""
CLOSING_COMMANDS: Final = frozenset(t for t, kind in COMMANDS.items() if kind.closes)


def answered_field(event_type: int) -> str:
    """The attribute of ``event_type`` that names the event it answers ("" if none)."""
    return ANSWERED_BY.get(event_type, "")
