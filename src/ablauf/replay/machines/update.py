"""The update machine: the protocol-message commands that accept and complete an update.

sdk-core's ``update_state_machine.rs``. An update's acceptance and its
completion are each one PROTOCOL_MESSAGE command with a machine of its own,
matched against the UpdateAccepted or UpdateCompleted event the server
records for it. A rejection is a message alone: no command, no event.
"""

from __future__ import annotations

from typing import Final

from temporalio.api.history.v1 import HistoryEvent

from ablauf.history import catalog
from ablauf.replay.history import C, E
from ablauf.replay.machines.base import (
    CommandEntry,
    Machine,
    Nondeterminism,
    Transitions,
    table_events,
    transition_map,
)

__all__ = ["TRANSITIONS", "UpdateMachine", "UpdateState"]


class UpdateState:
    """States of an update machine."""

    CREATED: Final = 0
    DONE: Final = 1


TRANSITIONS: Final[Transitions] = (
    (UpdateState.CREATED, E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED, UpdateState.DONE),
    (UpdateState.CREATED, E.WORKFLOW_EXECUTION_UPDATE_COMPLETED, UpdateState.DONE),
)


class UpdateMachine(Machine):
    """One protocol-message command of the update ``protocol_instance_id``."""

    __slots__ = ("protocol_instance_id",)
    label = "Update machine"
    family = catalog.UPDATE
    commands = (C.PROTOCOL_MESSAGE,)
    table = TRANSITIONS
    transitions = transition_map(TRANSITIONS)
    events = table_events(TRANSITIONS)

    def __init__(self, protocol_instance_id: str) -> None:
        super().__init__()
        self.protocol_instance_id = protocol_instance_id

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        if event.event_type != entry.event_type:
            raise self.unexpected(event)
        if event.event_type == E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            recorded = event.workflow_execution_update_accepted_event_attributes
            instance_id = recorded.protocol_instance_id
        else:
            instance_id = event.workflow_execution_update_completed_event_attributes.meta.update_id
        if instance_id != self.protocol_instance_id:
            raise Nondeterminism(
                f"Update {instance_id} in history does not match update "
                f"{self.protocol_instance_id} of the command"
            )
        self.state = self.step(event.event_type, event)
