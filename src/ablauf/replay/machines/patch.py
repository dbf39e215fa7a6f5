"""The patch machine: the marker ``workflow.patched`` and ``deprecate_patch`` record.

sdk-core's ``patch_state_machine.rs``. Whether a marker in history is matched,
skipped (deprecated, or replaying older code) or refused is the command
queue's decision (``commands.py``); the machine checks the patch id.
"""

from __future__ import annotations

from typing import Final

from temporalio.api.history.v1 import HistoryEvent

from ablauf.history import catalog
from ablauf.replay import history
from ablauf.replay.history import C, E
from ablauf.replay.machines.base import (
    CommandEntry,
    Machine,
    Nondeterminism,
    Transitions,
    table_events,
    transition_map,
)

__all__ = ["TRANSITIONS", "PatchMachine", "PatchState"]


class PatchState:
    """States of a patch machine."""

    CREATED: Final = 0
    DONE: Final = 1


TRANSITIONS: Final[Transitions] = ((PatchState.CREATED, E.MARKER_RECORDED, PatchState.DONE),)


class PatchMachine(Machine):
    """The marker command of one patch id."""

    __slots__ = ("patch_id",)
    label = "Patch machine"
    family = catalog.MARKER
    marker_name = history.PATCH_MARKER_NAME
    commands = (C.RECORD_MARKER,)
    table = TRANSITIONS
    transitions = transition_map(TRANSITIONS)
    events = table_events(TRANSITIONS)

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
        self.state = self.step(event.event_type, event)
