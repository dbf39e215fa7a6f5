"""The machine of a signal to a child or another workflow.

sdk-core's ``signal_external_state_machine.rs``: initiated, then signalled or
failed. A signal cancelled before its command went out is dropped and
resolves as cancelled; once sent, it stands.
"""

from __future__ import annotations

from typing import Final

from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent

from ablauf.history import catalog
from ablauf.replay import history
from ablauf.replay.history import C, E
from ablauf.replay.machines.base import (
    CANCEL,
    Machine,
    Transitions,
    table_events,
    transition_map,
)
from ablauf.replay.machines.jobs import Job, ResolveSignalExternal

__all__ = ["TRANSITIONS", "SignalExternalMachine", "SignalExternalState"]


class SignalExternalState:
    """States of a signal-external machine."""

    CREATED: Final = 0
    INITIATED: Final = 1
    DONE: Final = 2


_S = SignalExternalState

TRANSITIONS: Final[Transitions] = (
    (_S.CREATED, E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, _S.INITIATED),
    (_S.CREATED, CANCEL, _S.DONE),  # never sent: dropped
    (_S.INITIATED, E.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED, _S.DONE),
    (_S.INITIATED, E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED, _S.DONE),
    (_S.INITIATED, CANCEL, _S.INITIATED),
    (_S.DONE, CANCEL, _S.DONE),
)

# SignalExternalWorkflowExecutionFailedCause -> why, as sdk-core words it.
_FAILED_BECAUSE: Final = {
    1: "it was not found",  # EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND
    2: "it was not found",  # NAMESPACE_NOT_FOUND
    3: "The per-workflow signal limit was exceeded",
}


class SignalExternalMachine(Machine):
    """A signal, named by its sequence number."""

    __slots__ = ("seq",)
    label = "Signal external workflow machine"
    family = catalog.SIGNAL_EXTERNAL
    commands = (C.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,)
    table = TRANSITIONS
    transitions = transition_map(TRANSITIONS)
    events = table_events(TRANSITIONS)

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq

    def on_event(self, event: HistoryEvent, jobs: list[Job]) -> bool:
        self.state = self.step(event.event_type, event)
        if event.event_type == E.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED:
            jobs.append(ResolveSignalExternal(self.seq))
            return True
        cause = int(event.signal_external_workflow_execution_failed_event_attributes.cause)
        reason = _FAILED_BECAUSE.get(cause, "unknown")
        failure = Failure(message=f"Unable to signal external workflow because {reason}")
        failure.application_failure_info.type = history.enum_label(
            "SignalExternalWorkflowExecutionFailedCause", cause
        )
        jobs.append(ResolveSignalExternal(self.seq, failure))
        return True
