"""Machines of commands that resolve nothing: one event recorded, and done.

sdk-core's ``upsert_search_attributes_state_machine.rs``,
``modify_workflow_properties_state_machine.rs`` and the four machines that
close the run (complete, fail, cancel, continue as new). Each family keeps its
own table: the command's one event leads from CREATED to DONE.
"""

from __future__ import annotations

from typing import Final

from ablauf.history import catalog
from ablauf.replay.history import C, E
from ablauf.replay.machines.base import Machine, Transitions, table_events, transition_map

__all__ = [
    "CLOSE_WORKFLOW_TRANSITIONS",
    "MODIFY_PROPERTIES_TRANSITIONS",
    "UPSERT_SEARCH_ATTRIBUTES_TRANSITIONS",
    "CloseWorkflowMachine",
    "ModifyPropertiesMachine",
    "OneShotMachine",
    "OneShotState",
    "UpsertSearchAttributesMachine",
]


class OneShotState:
    """States of a one-shot machine."""

    CREATED: Final = 0
    DONE: Final = 1


_S = OneShotState

UPSERT_SEARCH_ATTRIBUTES_TRANSITIONS: Final[Transitions] = (
    (_S.CREATED, E.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, _S.DONE),
)
MODIFY_PROPERTIES_TRANSITIONS: Final[Transitions] = (
    (_S.CREATED, E.WORKFLOW_PROPERTIES_MODIFIED, _S.DONE),
)
CLOSE_WORKFLOW_TRANSITIONS: Final[Transitions] = (
    (_S.CREATED, E.WORKFLOW_EXECUTION_COMPLETED, _S.DONE),
    (_S.CREATED, E.WORKFLOW_EXECUTION_FAILED, _S.DONE),
    (_S.CREATED, E.WORKFLOW_EXECUTION_CANCELED, _S.DONE),
    (_S.CREATED, E.WORKFLOW_EXECUTION_CONTINUED_AS_NEW, _S.DONE),
)


class OneShotMachine(Machine):
    """A command whose event is all there is; the base consumes it."""

    __slots__ = ()


class UpsertSearchAttributesMachine(OneShotMachine):
    """An upsert of search attributes (by workflow code, or sdk-core's for a patch)."""

    __slots__ = ()
    label = "Upsert search attributes machine"
    family = catalog.SEARCH_ATTRIBUTES
    commands = (C.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,)
    table = UPSERT_SEARCH_ATTRIBUTES_TRANSITIONS
    transitions = transition_map(UPSERT_SEARCH_ATTRIBUTES_TRANSITIONS)
    events = table_events(UPSERT_SEARCH_ATTRIBUTES_TRANSITIONS)


class ModifyPropertiesMachine(OneShotMachine):
    """An upsert of the memo."""

    __slots__ = ()
    label = "Modify workflow properties machine"
    family = catalog.PROPERTIES
    commands = (C.MODIFY_WORKFLOW_PROPERTIES,)
    table = MODIFY_PROPERTIES_TRANSITIONS
    transitions = transition_map(MODIFY_PROPERTIES_TRANSITIONS)
    events = table_events(MODIFY_PROPERTIES_TRANSITIONS)


_CLOSE_LABELS: Final = {
    C.COMPLETE_WORKFLOW_EXECUTION: "Complete workflow machine",
    C.FAIL_WORKFLOW_EXECUTION: "Fail workflow machine",
    C.CANCEL_WORKFLOW_EXECUTION: "Cancel workflow machine",
    C.CONTINUE_AS_NEW_WORKFLOW_EXECUTION: "Continue as new workflow machine",
}


class CloseWorkflowMachine(OneShotMachine):
    """The command that closes the run: complete, fail, cancel or continue as new."""

    __slots__ = ("command_type",)
    label = "Close workflow machine"
    family = catalog.WORKFLOW
    commands = (
        C.COMPLETE_WORKFLOW_EXECUTION,
        C.FAIL_WORKFLOW_EXECUTION,
        C.CANCEL_WORKFLOW_EXECUTION,
        C.CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
    )
    table = CLOSE_WORKFLOW_TRANSITIONS
    transitions = transition_map(CLOSE_WORKFLOW_TRANSITIONS)
    events = table_events(CLOSE_WORKFLOW_TRANSITIONS)

    def __init__(self, command_type: int) -> None:
        super().__init__()
        self.command_type = command_type

    def name(self) -> str:
        return _CLOSE_LABELS[self.command_type]
