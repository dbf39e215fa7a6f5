"""The timer machine: StartTimer, then TimerFired, or CancelTimer and TimerCanceled.

sdk-core's ``timer_state_machine.rs``.
"""

from __future__ import annotations

from typing import Final

from temporalio.api.history.v1 import HistoryEvent

from ablauf.history import catalog
from ablauf.replay.history import C, E
from ablauf.replay.machines.base import (
    CANCEL,
    CommandEntry,
    Machine,
    Nondeterminism,
    Transitions,
    table_events,
    transition_map,
)
from ablauf.replay.machines.jobs import FireTimer, Job

__all__ = ["TRANSITIONS", "TimerMachine", "TimerState"]


class TimerState:
    """States of a timer machine."""

    CREATED: Final = 0
    STARTED: Final = 1
    CANCEL_REQUESTED: Final = 2
    DONE: Final = 3


_S = TimerState

TRANSITIONS: Final[Transitions] = (
    (_S.CREATED, E.TIMER_STARTED, _S.STARTED),
    (_S.CREATED, CANCEL, _S.DONE),  # never sent: its StartTimer is dropped
    (_S.STARTED, E.TIMER_FIRED, _S.DONE),
    (_S.STARTED, CANCEL, _S.CANCEL_REQUESTED),  # CancelTimer goes out
    (_S.CANCEL_REQUESTED, E.TIMER_CANCELED, _S.DONE),
    # A timer may fire while its CancelTimer is being recorded; its waiter is gone.
    (_S.CANCEL_REQUESTED, E.TIMER_FIRED, _S.DONE),
    (_S.DONE, E.TIMER_FIRED, _S.DONE),
    (_S.CANCEL_REQUESTED, CANCEL, _S.CANCEL_REQUESTED),
    (_S.DONE, CANCEL, _S.DONE),
)


class TimerMachine(Machine):
    """A durable timer, named by its sequence number."""

    __slots__ = ("seq",)
    label = "Timer machine"
    family = catalog.TIMER
    commands = (C.START_TIMER, C.CANCEL_TIMER)
    table = TRANSITIONS
    transitions = transition_map(TRANSITIONS)
    events = table_events(TRANSITIONS)

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        if event.event_type == E.TIMER_STARTED:
            timer_id = event.timer_started_event_attributes.timer_id
            if timer_id != str(self.seq):
                raise Nondeterminism(
                    f"Timer id of started event '{timer_id}' does not match "
                    f"timer id of timer command '{self.seq}'"
                )
        super().on_command_event(entry, event)

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        to = self.step(event.event_type, event)
        timer_id = event.timer_fired_event_attributes.timer_id
        if timer_id != str(self.seq):
            raise Nondeterminism(
                f"Timer fired event did not have expected timer id {self.seq}, it was {timer_id}!"
            )
        if self.state == TimerState.STARTED:
            jobs.append(FireTimer(self.seq))
        self.state = to
        return True
