"""sdk-core's command state machines, in Python: one module per kind of command.

Workflow code asks for commands (schedule an activity, start a timer ...). Each
request creates a small machine that owns its command and later consumes the
history events the command produces (``commands.py`` holds the queue that
matches them). Results that workflow code waits for (an activity completed, a
timer fired) leave the machines as jobs (``jobs.py``), applied at the next
activation.

Each module opens with its machine's transition table, and every state change
goes through it. ``MACHINES`` names the machine of every command kind the
catalogue (``ablauf.history.catalog``) marks supported; PROTOCOL_MESSAGE is the
update machine's. Unsupported kinds (Nexus operations) have none.
"""

from __future__ import annotations

from typing import Final

from ablauf.replay.machines.activity import (
    ABANDON,
    TRY_CANCEL,
    WAIT_CANCELLATION_COMPLETED,
    ActivityMachine,
    ActivityState,
)
from ablauf.replay.machines.base import (
    CANCEL,
    CANCEL_ABANDON,
    CANCEL_TRY,
    CommandEntry,
    Machine,
    Nondeterminism,
)
from ablauf.replay.machines.cancel_external import CancelExternalMachine
from ablauf.replay.machines.child_workflow import (
    CHILD_ABANDON,
    CHILD_TRY_CANCEL,
    ChildState,
    ChildWorkflowMachine,
)
from ablauf.replay.machines.jobs import (
    JOB_GROUPS,
    OTHER_GROUP,
    PATCH_GROUP,
    SIGNAL_GROUP,
    CancelWorkflow,
    DoUpdate,
    FireTimer,
    InitializeWorkflow,
    Job,
    NotifyHasPatch,
    ResolveActivity,
    ResolveCancelExternal,
    ResolveChild,
    ResolveChildStart,
    ResolveSignalExternal,
    SignalWorkflow,
    UpdateRandomSeed,
)
from ablauf.replay.machines.one_shot import (
    CloseWorkflowMachine,
    ModifyPropertiesMachine,
    OneShotMachine,
    UpsertSearchAttributesMachine,
)
from ablauf.replay.machines.patch import PatchMachine
from ablauf.replay.machines.signal_external import SignalExternalMachine, SignalExternalState
from ablauf.replay.machines.timer import TimerMachine, TimerState
from ablauf.replay.machines.update import UpdateMachine

__all__ = [
    "ABANDON",
    "CANCEL",
    "CANCEL_ABANDON",
    "CANCEL_TRY",
    "CHILD_ABANDON",
    "CHILD_TRY_CANCEL",
    "JOB_GROUPS",
    "MACHINES",
    "MACHINE_CLASSES",
    "OTHER_GROUP",
    "PATCH_GROUP",
    "SIGNAL_GROUP",
    "TRY_CANCEL",
    "WAIT_CANCELLATION_COMPLETED",
    "ActivityMachine",
    "ActivityState",
    "CancelExternalMachine",
    "CancelWorkflow",
    "ChildState",
    "ChildWorkflowMachine",
    "CloseWorkflowMachine",
    "CommandEntry",
    "DoUpdate",
    "FireTimer",
    "InitializeWorkflow",
    "Job",
    "Machine",
    "ModifyPropertiesMachine",
    "Nondeterminism",
    "NotifyHasPatch",
    "OneShotMachine",
    "PatchMachine",
    "ResolveActivity",
    "ResolveCancelExternal",
    "ResolveChild",
    "ResolveChildStart",
    "ResolveSignalExternal",
    "SignalExternalMachine",
    "SignalExternalState",
    "SignalWorkflow",
    "TimerMachine",
    "TimerState",
    "UpdateMachine",
    "UpdateRandomSeed",
    "UpsertSearchAttributesMachine",
]

MACHINE_CLASSES: Final[tuple[type[Machine], ...]] = (
    ActivityMachine,
    TimerMachine,
    ChildWorkflowMachine,
    SignalExternalMachine,
    CancelExternalMachine,
    PatchMachine,
    UpsertSearchAttributesMachine,
    ModifyPropertiesMachine,
    CloseWorkflowMachine,
    UpdateMachine,
)
"""Every machine class, one per family of the catalogue that workflow code commands."""

MACHINES: Final[dict[int, type[Machine]]] = {
    command: machine for machine in MACHINE_CLASSES for command in machine.commands
}
"""The machine that issues each command type."""
