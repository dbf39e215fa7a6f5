"""The replay machines agree with the catalogue of event and command kinds.

Every supported command kind has a machine (PROTOCOL_MESSAGE is the update
machine's; Nexus commands are unsupported and have none; RECORD_MARKER has one
per marker name), each machine consumes exactly its family's events, and its
transition table only speaks of them.
"""

import ast
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import CommandType, EventType
from temporalio.api.history.v1 import HistoryEvent

from ablauf.history import catalog
from ablauf.replay.machines import (
    CANCEL,
    MACHINE_CLASSES,
    MACHINES,
    MARKER_MACHINES,
    Machine,
    Nondeterminism,
    TimerMachine,
    TimerState,
)
from ablauf.replay.machines.base import ACTIONS, CANCELS

MACHINE_SOURCES = Path(__file__).parents[2] / "src" / "ablauf" / "replay" / "machines"
COMMAND_QUEUE = MACHINE_SOURCES.parent / "commands.py"


def _ids(machine: type[Machine]) -> str:
    return machine.__name__


def test_every_supported_command_kind_has_a_machine() -> None:
    assert set(MACHINES) == set(catalog.SUPPORTED_COMMANDS)
    unsupported = set(catalog.COMMANDS) - set(catalog.SUPPORTED_COMMANDS)
    assert {catalog.COMMANDS[t].family for t in unsupported} == {"nexus operation"}


def test_a_command_kind_belongs_to_one_machine_or_one_per_marker_name() -> None:
    for command, machines in MACHINES.items():
        if len(machines) > 1:
            assert catalog.COMMANDS[command].family == catalog.MARKER
            names = [machine.marker_name for machine in machines]
            assert all(names) and len(names) == len(set(names))


def test_every_marker_name_of_the_catalogue_has_its_machine() -> None:
    assert set(MARKER_MACHINES) == set(catalog.MARKER_NAMES)
    for name, machine in MARKER_MACHINES.items():
        assert machine.family == catalog.MARKER, name
        assert machine.commands == (CommandType.COMMAND_TYPE_RECORD_MARKER,), name


@pytest.mark.parametrize("machine", MACHINE_CLASSES, ids=_ids)
def test_a_machine_follows_one_family(machine: type[Machine]) -> None:
    assert {catalog.COMMANDS[command].family for command in machine.commands} == {machine.family}


@pytest.mark.parametrize("machine", MACHINE_CLASSES, ids=_ids)
def test_a_machine_consumes_its_commands_events_and_the_events_answering_them(
    machine: type[Machine],
) -> None:
    recorded = {
        t
        for t, kind in catalog.EVENTS.items()
        if kind.supported and kind.command in machine.commands
    }
    answering = {
        t
        for t, kind in catalog.EVENTS.items()
        if kind.supported and kind.family == machine.family and kind.answers
    }
    assert machine.events == recorded | answering
    assert all(catalog.EVENTS[t].family == machine.family for t in machine.events)


def test_every_event_a_command_records_or_that_answers_one_has_one_machine() -> None:
    # Marker events are told apart by their marker name.
    consumed = [(t, machine.marker_name) for machine in MACHINE_CLASSES for t in machine.events]
    assert len(consumed) == len(set(consumed))
    expected = {
        t for t, kind in catalog.EVENTS.items() if kind.supported and (kind.command or kind.answers)
    }
    assert {t for t, _ in consumed} == expected


@pytest.mark.parametrize("machine", MACHINE_CLASSES, ids=_ids)
def test_a_transition_table_speaks_of_the_machines_family_and_actions(
    machine: type[Machine],
) -> None:
    assert machine.table
    for state, trigger, to in machine.table:
        if trigger > 0:
            assert catalog.EVENTS[trigger].family == machine.family, (state, trigger, to)
        else:
            assert trigger in ACTIONS, (state, trigger, to)
    assert dict(machine.transitions) == {(s, t): to for s, t, to in machine.table}
    assert len(machine.transitions) == len(machine.table)


@pytest.mark.parametrize("machine", MACHINE_CLASSES, ids=_ids)
def test_every_state_is_reachable_and_a_cancel_is_answered_in_every_state(
    machine: type[Machine],
) -> None:
    reached = {0}
    changed = True
    while changed:
        changed = False
        for state, _, to in machine.table:
            if state in reached and to not in reached:
                reached.add(to)
                changed = True
    states = {s for s, _, _ in machine.table} | {to for _, _, to in machine.table}
    assert reached == states
    actions = {t for _, t, _ in machine.table if t in CANCELS}
    for action in actions:
        # Workflow code may cancel at any time: every state says what that does.
        assert {s for s, t, _ in machine.table if t == action} == states, ACTIONS[action]


def _is_step(value: ast.expr) -> bool:
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "step"
    )


def _state_assignments(source: Path) -> list[str]:
    """Assignments to a ``state`` attribute whose value did not come from ``step``."""
    strays = []
    for fn in ast.walk(ast.parse(source.read_text())):
        if not isinstance(fn, ast.FunctionDef) or fn.name == "__init__":
            continue
        assigns = [node for node in ast.walk(fn) if isinstance(node, ast.Assign)]
        stepped = {
            target.id
            for node in assigns
            if _is_step(node.value)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in assigns:
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "state":
                    value = node.value
                    if not _is_step(value) and not (
                        isinstance(value, ast.Name) and value.id in stepped
                    ):
                        strays.append(f"{source.name}:{node.lineno}")
    return strays


def test_every_state_change_goes_through_the_transition_table() -> None:
    sources = [*sorted(MACHINE_SOURCES.glob("*.py")), COMMAND_QUEUE]
    assert [s for source in sources for s in _state_assignments(source)] == []


def test_an_event_the_table_does_not_list_is_nondeterminism() -> None:
    timer = TimerMachine(1)
    with pytest.raises(Nondeterminism, match="Timer machine does not handle this event"):
        timer.step(
            EventType.EVENT_TYPE_TIMER_FIRED,
            HistoryEvent(event_id=7, event_type=EventType.EVENT_TYPE_TIMER_FIRED),
        )
    assert timer.step(CANCEL) == TimerState.DONE
    assert timer.state == TimerState.CREATED  # step says where to go; the caller moves
