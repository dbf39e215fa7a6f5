"""The store seam: records and the verbs the engine uses.

Only a store writes SQL. Every verb runs inside :meth:`Store.transaction`, so
one engine transition (events, tasks, timers, execution row) commits at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ablauf.errors import StoreLostError

__all__ = [
    "ACTIVITY_TASK",
    "MEMORY",
    "UPDATE_ACCEPTED",
    "UPDATE_COMPLETED",
    "UPDATE_REJECTED",
    "UPDATE_REQUESTED",
    "WORKFLOW_TASK",
    "ExecutionRecord",
    "OwnerRecord",
    "QueryRecord",
    "ScheduleRecord",
    "Store",
    "TaskRecord",
    "TimerRecord",
    "UpdateRecord",
]

MEMORY = ":memory:"
"""The path of a store in memory (SQLite's name for it)."""

WORKFLOW_TASK = 0
ACTIVITY_TASK = 1


@dataclass(slots=True)
class ExecutionRecord:
    """One run of a workflow."""

    run_id: str
    namespace: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    status: int
    start_time: float
    close_time: float | None
    next_event_id: int
    history_size: int
    version: int
    activity_owner: str | None = None
    """The process whose attempts of this run may have no task row yet (see
    :func:`ablauf.engine.activities.schedule`)."""


@dataclass(slots=True)
class TaskRecord:
    """A workflow task or an activity (across its attempts).

    ``ref`` is the scheduled event id (for an activity, the one in its
    ActivityTaskScheduled event; for a workflow task, its WorkflowTaskScheduled).
    """

    id: int
    kind: int
    run_id: str
    namespace: str
    task_queue: str
    ref: int
    attempt: int
    visible_at: float
    lease_owner: str | None
    lease_until: float | None
    lease_nonce: int
    started_at: float | None
    scheduled_at: float
    attempt_scheduled_at: float
    cancel_requested: bool
    heartbeat_at: float | None
    heartbeat_details: bytes | None
    last_failure: bytes | None


@dataclass(frozen=True, slots=True)
class TimerRecord:
    """A durable timer: a user timer, an activity timeout or a workflow timeout."""

    id: int
    run_id: str
    kind: int
    ref: str
    attempt: int
    fire_at: float


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    """A process that hosts workers and may hold leases, alive while it renews
    ``lease_until`` (wall-clock seconds). ``pid`` and ``host`` are for people."""

    owner_id: str
    pid: int
    started_at: float
    task_queues: tuple[str, ...]
    lease_until: float
    host: str = ""


@dataclass(slots=True)
class UpdateRecord:
    """A workflow update a client asked for (state: see ``UPDATE_*``)."""

    run_id: str
    update_id: str
    seq: int
    request: bytes
    state: int
    outcome: bytes | None
    accepted_event_id: int


UPDATE_REQUESTED = 0
UPDATE_ACCEPTED = 1
UPDATE_COMPLETED = 2
UPDATE_REJECTED = 3


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """A query waiting for (or answered by) a worker in another process."""

    id: int
    run_id: str
    task_queue: str
    request: bytes
    taken_by: str | None
    answered: bool
    response: bytes | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A schedule: Temporal's ``Schedule`` and ``ScheduleInfo`` protos, memo and
    search attributes as serialized protos, the engine's bookkeeping as JSON."""

    namespace: str
    schedule_id: str
    schedule: bytes
    info: bytes
    memo: bytes
    search_attributes: bytes
    state: str
    created_at: float


class Store(Protocol):
    """What the engine needs from a backend."""

    path: str
    """Where the store lives, as messages name it."""

    def transaction(self) -> AbstractContextManager[None]: ...
    def atomic(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...
    def data_version(self) -> int: ...
    def verify(self) -> None:
        """Raises ``StoreLostError`` if the store's file was removed or replaced."""
        ...

    def mark_lost(self, what: str) -> StoreLostError:
        """Makes every further use raise ``StoreLostError``: the file ``what``."""
        ...

    # executions
    def insert_execution(self, rec: ExecutionRecord) -> None: ...
    def get_execution(self, run_id: str) -> ExecutionRecord | None: ...
    def update_execution(self, rec: ExecutionRecord) -> None: ...
    def execution_version(self, run_id: str) -> int | None: ...
    def current_run_id(self, namespace: str, workflow_id: str) -> str | None: ...
    def set_current_run(self, namespace: str, workflow_id: str, run_id: str) -> None: ...

    # history
    def append_events(self, run_id: str, events: Sequence[tuple[int, bytes]]) -> None: ...
    def read_history(self, run_id: str, first_event_id: int = 1, limit: int | None = None) -> bytes:
        """Events from ``first_event_id`` on (at most ``limit``) as one
        serialized ``History`` message."""
        ...

    def add_buffered_event(self, run_id: str, data: bytes) -> None: ...
    def take_buffered_events(self, run_id: str) -> list[bytes]: ...
    def count_buffered_events(self, run_id: str) -> int: ...

    # tasks
    def insert_task(self, rec: TaskRecord) -> int: ...
    def update_task(self, rec: TaskRecord) -> None: ...
    def delete_task(self, task_id: int) -> None: ...
    def delete_tasks_of_run(self, run_id: str) -> None: ...
    def tasks_of_run(self, run_id: str) -> list[TaskRecord]: ...
    def ready_tasks(
        self, kind: int, task_queues: Sequence[str], now: float, limit: int
    ) -> list[TaskRecord]: ...
    def has_runnable_tasks(self, now: float) -> bool: ...
    def has_retrying_workflow_tasks(self) -> bool:
        """Whether a workflow task waits out its backoff after failed attempts."""
        ...

    def release_leases(
        self, owner_ids: Sequence[str], kind: int, task_queue: str | None = None
    ) -> int: ...
    def runs_with_leases(self, owner_ids: Sequence[str], kind: int) -> list[str]:
        """Runs with tasks of ``kind`` leased by ``owner_ids`` (for activities, also
        the runs whose ``activity_owner`` they are)."""
        ...

    # timers (ids are never reused: deleting one by id never hits another)
    def insert_timer(
        self, run_id: str, kind: int, ref: str, attempt: int, fire_at: float
    ) -> int: ...
    def delete_timer(self, timer_id: int) -> bool: ...
    def delete_timers(
        self, run_id: str, kind: int | None = None, ref: str | None = None
    ) -> None: ...
    def delete_ref_timers(self, run_id: str, ref: str, kinds: Sequence[int]) -> None: ...
    def due_timers(self, now: float, limit: int) -> list[TimerRecord]: ...
    def next_timer_at(self) -> float | None: ...

    # owners
    def register_owner(self, rec: OwnerRecord) -> None: ...
    def renew_owner(self, owner_id: str, held_until: float, until: float) -> bool: ...
    def remove_owner(self, owner_id: str) -> None: ...
    def expire_owner(self, owner_id: str, now: float) -> bool: ...
    def owners(self) -> list[OwnerRecord]: ...

    # cross-process queries
    def insert_query(self, run_id: str, task_queue: str, request: bytes, now: float) -> int: ...
    def take_queries(self, task_queues: Sequence[str], owner_id: str) -> list[QueryRecord]: ...
    def answer_query(self, query_id: int, response: bytes | None, error: str | None) -> None: ...
    def get_query(self, query_id: int) -> QueryRecord | None: ...
    def delete_query(self, query_id: int) -> None: ...

    # updates
    def insert_update(self, rec: UpdateRecord) -> None: ...
    def save_update(self, rec: UpdateRecord) -> None: ...
    def get_update(self, run_id: str, update_id: str) -> UpdateRecord | None: ...
    def updates_of_run(self, run_id: str) -> list[UpdateRecord]: ...

    # schedules
    def insert_schedule(self, rec: ScheduleRecord) -> None: ...
    def get_schedule(self, namespace: str, schedule_id: str) -> ScheduleRecord | None: ...
    def update_schedule(self, rec: ScheduleRecord) -> None: ...
    def delete_schedule(self, namespace: str, schedule_id: str) -> bool: ...
    def list_schedules(self, namespace: str, offset: int, limit: int) -> list[ScheduleRecord]: ...

    # custom search attributes, per namespace: name -> IndexedValueType
    def search_attributes(self, namespace: str) -> dict[str, int]: ...
    def add_search_attributes(self, namespace: str, types: Mapping[str, int]) -> None: ...
    def remove_search_attributes(self, namespace: str, names: Sequence[str]) -> None: ...

    def count_running(self, namespace: str, task_queue: str) -> int: ...
    def iter_run_ids(self) -> Iterator[str]: ...
