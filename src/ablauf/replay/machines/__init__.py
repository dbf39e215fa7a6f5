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
update machine's. Unsupported kinds (Nexus operations) have none. RECORD_MARKER
serves several kinds of work, each with its own machine: ``MARKER_MACHINES``
names the machine of each marker name the catalogue lists (patches, local
activities).
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
    LocalBackoff,
    NotifyHasPatch,
    ResolveActivity,
    ResolveCancelExternal,
    ResolveChild,
    ResolveChildStart,
    ResolveSignalExternal,
    SignalWorkflow,
    UpdateRandomSeed,
)
from ablauf.replay.machines.local_activity import (
    LOCAL_ACTIVITY_MARKER_NAME,
    LocalActivityMachine,
    LocalActivityRequest,
    LocalActivityResult,
    LocalActivityState,
    LocalMarker,
    LocalStatus,
    local_marker,
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
    "LOCAL_ACTIVITY_MARKER_NAME",
    "MACHINES",
    "MACHINE_CLASSES",
    "MARKER_MACHINES",
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
    "LocalActivityMachine",
    "LocalActivityRequest",
    "LocalActivityResult",
    "LocalActivityState",
    "LocalBackoff",
    "LocalMarker",
    "LocalStatus",
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
    "local_marker",
]

MACHINE_CLASSES: Final[tuple[type[Machine], ...]] = (
    ActivityMachine,
    TimerMachine,
    ChildWorkflowMachine,
    SignalExternalMachine,
    CancelExternalMachine,
    PatchMachine,
    LocalActivityMachine,
    UpsertSearchAttributesMachine,
    ModifyPropertiesMachine,
    CloseWorkflowMachine,
    UpdateMachine,
)
"""Every machine class: one per family of the catalogue that workflow code commands,
and one per marker name in the marker family."""

MACHINES: Final[dict[int, tuple[type[Machine], ...]]] = {
    command: tuple(m for m in MACHINE_CLASSES if command in m.commands)
    for command in dict.fromkeys(c for m in MACHINE_CLASSES for c in m.commands)
}
"""The machines that issue each command type: one, or one per marker name."""

MARKER_MACHINES: Final[dict[str, type[Machine]]] = {
    machine.marker_name: machine for machine in MACHINE_CLASSES if machine.marker_name
}
"""The machine of each marker name."""
