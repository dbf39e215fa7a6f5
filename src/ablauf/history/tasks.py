"""Tasks the engine hands to workers, and what workers report back.

Events and commands are Temporal's own protos (``temporalio.api.history.v1``
and ``temporalio.api.command.v1``); these small records carry them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.protocol.v1 import Message
from temporalio.common import RetryPolicy

__all__ = [
    "ActivityCanceled",
    "ActivityCompleted",
    "ActivityCompletesAsync",
    "ActivityFailed",
    "ActivityOutcome",
    "ActivityTask",
    "WorkflowTask",
]


# The two task types are built for every task, and a frozen dataclass pays a
# call per field to build; they are not frozen, but read-only by contract.
@dataclass(slots=True)
class WorkflowTask:
    """A workflow task leased to a worker.

    ``events`` are the run's events from ``first_event_id`` on; the last one is
    the (not yet stored) WorkflowTaskStarted event the worker answers. A worker
    with the run in its sticky cache gets only the events it has not seen.
    """

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    events: Sequence[HistoryEvent]
    first_event_id: int
    attempt: int = 1
    messages: Sequence[Message] = ()


@dataclass(slots=True)
class ActivityTask:
    """One attempt of an activity, leased to a worker."""

    token: bytes
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    activity_id: str
    activity_type: str
    task_queue: str
    input: Sequence[Payload]
    attempt: int
    scheduled_time: datetime
    current_attempt_scheduled_time: datetime
    started_time: datetime
    schedule_to_close_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    heartbeat_timeout: timedelta | None
    retry_policy: RetryPolicy | None
    heartbeat_details: Sequence[Payload] = field(default_factory=list)
    headers: dict[str, Payload] = field(default_factory=dict)
    is_local: bool = False
    """A local activity's attempt, run by the worker of its workflow."""


@dataclass(frozen=True, slots=True)
class ActivityCompleted:
    """The activity returned; ``result`` is its encoded return value."""

    result: Payload | None


@dataclass(frozen=True, slots=True)
class ActivityFailed:
    """The activity raised; ``failure`` is the converted exception."""

    failure: Failure


@dataclass(frozen=True, slots=True)
class ActivityCanceled:
    """The activity accepted a cancellation request."""

    details: Sequence[Payload] = ()


ActivityOutcome = ActivityCompleted | ActivityFailed | ActivityCanceled


@dataclass(frozen=True, slots=True)
class ActivityCompletesAsync:
    """The activity called ``activity.raise_complete_async()``: the attempt goes
    on, and a client reports its outcome (or it times out)."""
