"""What every command machine shares: its transition table, its errors, its queue entry.

A machine's states are small ints (a class of ``Final`` constants per machine)
and its transition table a tuple of ``(state, trigger, next state)`` rows. A
trigger is either a history event type (positive, Temporal's ``EventType``) or
one of the actions below (negative), which workflow code takes on the machine.
Every state change goes through :meth:`Machine.step`, so a change the table
does not list is an error, never a silent one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from temporalio.api.command.v1 import Command
from temporalio.api.history.v1 import HistoryEvent

from ablauf.replay import history
from ablauf.replay.machines.jobs import Job

__all__ = [
    "ACTIONS",
    "CANCEL",
    "CANCELS",
    "CANCEL_ABANDON",
    "CANCEL_TRY",
    "RESOLVE",
    "RUN_NOW",
    "SCHEDULE",
    "SCHEDULE_REPLAYING",
    "SCHEDULE_RESOLVED",
    "CommandEntry",
    "Machine",
    "Nondeterminism",
    "Transition",
    "Transitions",
    "table_events",
    "transition_map",
]

Transition = tuple[int, int, int]
"""One row of a transition table: (state, trigger, next state)."""

Transitions = tuple[Transition, ...]

# Actions: workflow code cancels the operation. The three differ where a
# machine's cancellation type decides the outcome (activities, children).
CANCEL: Final = -1
"""Cancel and wait for the outcome in history (or the kind knows no cancellation types)."""
CANCEL_TRY: Final = -2
"""Cancel, resolving workflow code at once; the request still goes out."""
CANCEL_ABANDON: Final = -3
"""Cancel, resolving workflow code at once; nothing goes out."""
CANCELS: Final = (CANCEL, CANCEL_TRY, CANCEL_ABANDON)
"""The three cancel actions, by the cancellation type workflow code chose."""

# Actions of the local activity machine, which runs in the worker before any
# command goes out: where it starts, and what the worker reports.
SCHEDULE: Final = -4
"""Workflow code asked for the local activity in a new workflow task: run it."""
SCHEDULE_REPLAYING: Final = -5
"""Asked for while replaying: wait for its marker."""
SCHEDULE_RESOLVED: Final = -6
"""Asked for while replaying, its marker already read ahead: resolved at once."""
RESOLVE: Final = -7
"""The local activity's result, from the worker or read ahead from its marker."""
RUN_NOW: Final = -8
"""Replay reached a new workflow task and no marker came: run it after all."""

ACTIONS: Final[dict[int, str]] = {
    CANCEL: "cancel",
    CANCEL_TRY: "try cancel",
    CANCEL_ABANDON: "abandon",
    SCHEDULE: "schedule",
    SCHEDULE_REPLAYING: "schedule while replaying",
    SCHEDULE_RESOLVED: "schedule resolved",
    RESOLVE: "resolve",
    RUN_NOW: "run now",
}


class Nondeterminism(Exception):
    """Replay produced commands that differ from the recorded command events."""


def transition_map(rows: Transitions) -> dict[tuple[int, int], int]:
    """Index a transition table by (state, trigger); a trigger leads to one state only."""
    index: dict[tuple[int, int], int] = {}
    for state, trigger, to in rows:
        if (state, trigger) in index:
            raise ValueError(f"two transitions from state {state} on trigger {trigger}")
        index[state, trigger] = to
    return index


def table_events(rows: Transitions) -> frozenset[int]:
    """The event types a transition table consumes."""
    return frozenset(trigger for _, trigger, _ in rows if trigger > 0)


class Machine:
    """Base of the command machines.

    Subclasses name the commands they issue (the first creates the machine), the
    catalogue family they follow (and, for markers, their marker name), their
    transition table, and the event types that table consumes.
    """

    __slots__ = ("cancelled_before_sent", "state")
    label: ClassVar[str] = "Command machine"
    family: ClassVar[str] = ""
    marker_name: ClassVar[str] = ""
    """For the machines of RECORD_MARKER: the marker name that tells them apart."""
    commands: ClassVar[tuple[int, ...]] = ()
    table: ClassVar[Transitions] = ()
    transitions: ClassVar[dict[tuple[int, int], int]] = {}
    events: ClassVar[frozenset[int]] = frozenset()

    def __init__(self) -> None:
        self.cancelled_before_sent = False
        self.state = 0  # every machine starts in its CREATED state

    def step(self, trigger: int, event: HistoryEvent | None = None) -> int:
        """The state the table leads to from the current one on ``trigger``.

        Raises:
            Nondeterminism: The table has no such transition.
        """
        to = self.transitions.get((self.state, trigger))
        if to is None:
            if event is not None:
                raise self.unexpected(event)
            action = ACTIONS.get(trigger, str(trigger))
            raise Nondeterminism(f"{self.name()} cannot {action} in state {self.state}")
        return to

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        """Consume the event recorded for one of this machine's commands."""
        if event.event_type != entry.event_type:
            raise self.unexpected(event)
        self.state = self.step(event.event_type, event)

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


@dataclass(slots=True)
class CommandEntry:
    """A command with the machine that owns it and the event it must produce."""

    command: Command
    machine: Machine
    event_type: int
    terminal: bool = False
