"""Jobs: what the machines hand to workflow code, applied at the next activation.

sdk-core calls them activation jobs. Machines append them as history events
resolve their commands; the runtime applies them in three groups (patches,
then signals and updates, then everything else), as ``JOB_GROUPS`` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import WorkflowExecutionStartedEventAttributes
from temporalio.api.update.v1 import Request

__all__ = [
    "JOB_GROUPS",
    "OTHER_GROUP",
    "PATCH_GROUP",
    "SIGNAL_GROUP",
    "CancelWorkflow",
    "DoUpdate",
    "FireTimer",
    "InitializeWorkflow",
    "Job",
    "LocalBackoff",
    "NotifyHasPatch",
    "ResolveActivity",
    "ResolveCancelExternal",
    "ResolveChild",
    "ResolveChildStart",
    "ResolveSignalExternal",
    "SignalWorkflow",
    "UpdateRandomSeed",
]

PATCH_GROUP: Final = 0
SIGNAL_GROUP: Final = 1
OTHER_GROUP: Final = 2


class Job:
    """One unit of work for an activation (sdk-core's activation job)."""

    __slots__ = ()


@dataclass(slots=True)
class InitializeWorkflow(Job):
    """Start the workflow's run method."""

    attributes: WorkflowExecutionStartedEventAttributes
    start_time: datetime


@dataclass(slots=True)
class SignalWorkflow(Job):
    """Deliver a signal."""

    name: str
    input: list[Payload]
    headers: dict[str, Payload]
    event_id: int


@dataclass(slots=True)
class CancelWorkflow(Job):
    """The workflow was asked to cancel."""

    reason: str


@dataclass(slots=True)
class UpdateRandomSeed(Job):
    """The run was reset: reseed ``workflow.random()``."""

    seed: int


@dataclass(slots=True)
class FireTimer(Job):
    """A durable timer fired."""

    seq: int


@dataclass(slots=True)
class LocalBackoff:
    """A local activity retries after a durable timer (sdk-core's ``DoBackoff``)."""

    attempt: int
    """The attempt the retry runs as."""
    duration: timedelta
    original_schedule_time_ns: int | None


@dataclass(slots=True)
class ResolveActivity(Job):
    """An activity finished: ``result`` if it completed, else ``failure``.

    A local activity may instead ask to be retried after a timer (``backoff``).
    """

    seq: int
    result: Payload | None = None
    failure: Failure | None = None
    backoff: LocalBackoff | None = None


@dataclass(slots=True)
class NotifyHasPatch(Job):
    """History holds a marker for this patch."""

    patch_id: str


@dataclass(slots=True)
class ResolveChildStart(Job):
    """A child workflow started (``run_id``), failed to start (``cause``) or was cancelled."""

    seq: int
    run_id: str = ""
    cause: int = 0
    failure: Failure | None = None


@dataclass(slots=True)
class ResolveChild(Job):
    """A child workflow closed: ``result`` if it completed, else ``failure``."""

    seq: int
    result: Payload | None = None
    failure: Failure | None = None


@dataclass(slots=True)
class ResolveSignalExternal(Job):
    """A signal to another workflow was delivered (``failure`` None) or not."""

    seq: int
    failure: Failure | None = None


@dataclass(slots=True)
class ResolveCancelExternal(Job):
    """A cancel request to another workflow was delivered (``failure`` None) or not."""

    seq: int
    failure: Failure | None = None


@dataclass(slots=True)
class DoUpdate(Job):
    """Run an update: its validator first unless ``run_validator`` is False (replay)."""

    request: Request
    request_message_id: str
    sequencing_event_id: int
    protocol_instance_id: str
    run_validator: bool

    @property
    def update_id(self) -> str:
        """The update's id."""
        return self.request.meta.update_id

    @property
    def name(self) -> str:
        """The update's name."""
        return self.request.input.name


JOB_GROUPS: Final[dict[type[Job], int]] = {
    NotifyHasPatch: PATCH_GROUP,
    SignalWorkflow: SIGNAL_GROUP,
    DoUpdate: SIGNAL_GROUP,
}
"""Order of application: patches, then signals, then everything else (OTHER_GROUP)."""
