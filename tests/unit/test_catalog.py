"""The catalogue of event and command kinds, and the engine's agreement with it."""

from __future__ import annotations

import copy

import pytest
from temporalio.api.enums.v1 import CommandType, EventType
from temporalio.api.history.v1 import HistoryEvent, WorkflowExecutionStartedEventAttributes

from ablauf.engine.state import RunState
from ablauf.history import catalog
from ablauf.history.events import ATTRIBUTE_FIELDS
from ablauf.store.base import ExecutionRecord


def test_every_kind_of_temporals_api_is_catalogued() -> None:
    assert set(catalog.EVENTS) == set(EventType.values()) - {0}
    assert set(catalog.COMMANDS) == set(CommandType.values()) - {0}


def test_each_command_records_the_event_that_names_it() -> None:
    for kind in catalog.COMMANDS.values():
        if kind.event:
            assert catalog.EVENTS[kind.event].command == kind.type
    for kind in catalog.EVENTS.values():
        if kind.command:
            assert kind.family == catalog.COMMANDS[kind.command].family


def test_answering_events_name_their_operation_by_a_field_they_have() -> None:
    for event_type, field in catalog.ANSWERED_BY.items():
        attrs = getattr(HistoryEvent(), ATTRIBUTE_FIELDS[event_type])
        assert field in attrs.DESCRIPTOR.fields_by_name, EventType.Name(event_type)


def test_derived_sets() -> None:
    E = EventType
    assert {
        E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    } == catalog.CLOSE_EVENTS
    assert {
        E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        E.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        E.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    } == catalog.ACTIVITY_CLOSED
    assert {
        CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
        CommandType.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION,
        CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
    } == catalog.CLOSING_COMMANDS
    assert E.EVENT_TYPE_ACTIVITY_TASK_STARTED in catalog.RESULT_EVENTS
    assert E.EVENT_TYPE_TIMER_CANCELED not in catalog.RESULT_EVENTS  # a command's event
    assert {
        E.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED,
        E.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
    } == catalog.UNSUPPORTED_COMMAND_EVENTS


# ---- run-state folding agrees with FOLDED --------------------------------------

_ACTIVITY, _TIMER, _CHILD, _SIGNAL, _CANCEL = 5, 6, 7, 8, 9


def _state_with_one_of_each() -> RunState:
    exe = ExecutionRecord(
        run_id="r",
        namespace="default",
        workflow_id="w",
        workflow_type="T",
        task_queue="q",
        status=1,
        start_time=0.0,
        close_time=None,
        next_event_id=10,
        history_size=0,
        version=0,
    )
    state = RunState(exe=exe, started=WorkflowExecutionStartedEventAttributes())
    opening = {
        _ACTIVITY: EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        _TIMER: EventType.EVENT_TYPE_TIMER_STARTED,
        _CHILD: EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
        _SIGNAL: EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        _CANCEL: EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    }
    for event_id, event_type in opening.items():
        event = HistoryEvent(event_id=event_id, event_type=event_type)
        if event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            event.timer_started_event_attributes.timer_id = "t"
        elif event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            event.activity_task_scheduled_event_attributes.activity_id = "a"
        else:
            getattr(event, ATTRIBUTE_FIELDS[event_type]).SetInParent()
        state.apply(event)
    return state


def _answering(event_type: int) -> HistoryEvent:
    """An event of ``event_type`` that answers the matching pending operation."""
    event = HistoryEvent(event_id=20, event_type=event_type)
    attrs = getattr(event, ATTRIBUTE_FIELDS[event_type])
    attrs.SetInParent()
    kind = catalog.EVENTS[event_type]
    targets = {
        catalog.ACTIVITY: _ACTIVITY,
        catalog.TIMER: _TIMER,
        catalog.CHILD: _CHILD,
        catalog.SIGNAL_EXTERNAL: _SIGNAL,
        catalog.CANCEL_EXTERNAL: _CANCEL,
    }
    if kind.answers and kind.family in targets:
        setattr(attrs, kind.answers, targets[kind.family])
    if "timer_id" in attrs.DESCRIPTOR.fields_by_name:
        attrs.timer_id = "t"
    if event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        attrs.search_attributes.indexed_fields["Key"].data = b'"value"'
    if event_type == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
        attrs.upserted_memo.fields["key"].data = b"1"
    return event


def _snapshot(state: RunState) -> tuple[object, ...]:
    return (
        sorted(state.activities),
        dict(state.activity_ids),
        dict(state.timers),
        {k: (c.run_id, c.started_event_id) for k, c in state.children.items()},
        sorted(state.externals),
        state.close_event,
        state.running,
        state.cancel_requested,
        state.completed_workflow_tasks,
        state.start_event_time,
        {k: a.cancel_requested_event_id for k, a in state.activities.items()},
        state.search_attributes.SerializeToString(),
        state.memo.SerializeToString(),
    )


@pytest.mark.parametrize(
    "event_type", sorted(catalog.EVENTS), ids=[EventType.Name(t) for t in sorted(catalog.EVENTS)]
)
def test_run_state_folds_exactly_the_catalogued_events(event_type: int) -> None:
    state = _state_with_one_of_each()
    before = _snapshot(copy.deepcopy(state))
    state.apply(_answering(event_type))
    changed = _snapshot(state) != before
    assert changed == (event_type in catalog.FOLDED)
