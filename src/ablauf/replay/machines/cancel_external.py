"""The machine of a cancel request to a child or another workflow.

sdk-core's ``cancel_external_state_machine.rs``: initiated, then delivered or
failed. The runtime makes such requests itself when workflow code cancels a
child; those have sequence number 0 and resolve nothing.
"""

from __future__ import annotations

from typing import Final

from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent

from ablauf.history import catalog
from ablauf.replay import history
from ablauf.replay.history import C, E
from ablauf.replay.machines.base import Machine, Transitions, table_events, transition_map
from ablauf.replay.machines.jobs import Job, ResolveCancelExternal

__all__ = ["TRANSITIONS", "CancelExternalMachine", "CancelExternalState"]


class CancelExternalState:
    """States of a cancel-external machine."""

    CREATED: Final = 0
    INITIATED: Final = 1
    DONE: Final = 2


_S = CancelExternalState

TRANSITIONS: Final[Transitions] = (
    (_S.CREATED, E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, _S.INITIATED),
    (_S.INITIATED, E.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED, _S.DONE),
    (_S.INITIATED, E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED, _S.DONE),
)


class CancelExternalMachine(Machine):
    """A cancel request, named by its sequence number (0: made by the runtime)."""

    __slots__ = ("seq",)
    label = "Cancel external workflow machine"
    family = catalog.CANCEL_EXTERNAL
    commands = (C.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION,)
    table = TRANSITIONS
    transitions = transition_map(TRANSITIONS)
    events = table_events(TRANSITIONS)

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        self.state = self.step(event.event_type, event)
        if event.event_type == E.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            if self.seq:
                jobs.append(ResolveCancelExternal(self.seq))
            return True
        attrs = event.request_cancel_external_workflow_execution_failed_event_attributes
        reason = "it was not found" if int(attrs.cause) in (1, 2) else "unknown"
        failure = Failure(message=f"Unable to cancel external workflow because {reason}")
        failure.application_failure_info.type = history.enum_label(
            "CancelExternalWorkflowExecutionFailedCause", int(attrs.cause)
        )
        if self.seq:
            jobs.append(ResolveCancelExternal(self.seq, failure))
        return True
