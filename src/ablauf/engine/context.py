"""What the engine's handlers see of it: the context and the transition.

Handlers (executions, workflow tasks, commands, activities, children,
updates, schedules, queries, the background service) receive an
:class:`EngineContext` and change one run through a :class:`Transition`, as
Temporal's history handlers receive a ``ShardContext`` and update a run
through a closure. :class:`ablauf.engine.engine.Engine` is the one
implementation; this module imports none of the handlers, so none of them
depends on the engine that composes them.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

import temporalio.api.enums.v1.event_type_pb2 as E
from google.protobuf.message import Message
from temporalio.api.history.v1 import HistoryEvent, WorkflowExecutionStartedEventAttributes
from temporalio.api.sdk.v1 import UserMetadata

from ablauf.clock import Clock
from ablauf.engine.local_timers import Arm, LocalTimers
from ablauf.engine.matching import LocalQueue, Matching, TaskRef
from ablauf.engine.state import RunState
from ablauf.errors import StoreLostError
from ablauf.history.catalog import ACTIVITY_CLOSED, FOLDED
from ablauf.history.events import attributes_of, make_event, parse_event
from ablauf.store.base import ExecutionRecord, Store, TaskRecord

__all__ = ["EngineContext", "RunIn", "Transition"]

T = TypeVar("T")

RunIn = Callable[["Transition", TaskRef], Callable[[], None] | None]
"""A worker's way to run a cached run's workflow task inside the transition
that scheduled it; returns what undoes it in the worker, or None having done nothing."""


class EngineContext(ABC):
    """The engine as its handlers use it.

    An abstract base class rather than a Protocol: compiled, its attributes and
    methods are reached directly, as they are on the engine itself.
    """

    store: Store
    clock: Clock
    identity: str
    """The identity the engine writes into events it records itself."""
    owner_id: str
    """This process's owner id: the lease owner of what it runs."""
    matching: Matching
    local_timers: LocalTimers
    wake: asyncio.Event
    """Set to wake the background service."""
    on_commit: list[Callable[[str], None]]
    """Called with the run id after each committed transition."""

    # runs

    @abstractmethod
    def transition(self, run_id: str, change: Callable[[Transition], T], *, fuse: bool = True) -> T:
        """Applies ``change`` to the run in one store transaction."""

    @abstractmethod
    def create_run(
        self,
        namespace: str,
        workflow_id: str,
        attrs: WorkflowExecutionStartedEventAttributes,
        now: float,
        run_id: str | None = None,
        first_events: Sequence[tuple[int, Message]] = (),
        user_metadata: UserMetadata | None = None,
    ) -> Transition:
        """Writes a new run in the caller's transaction; after commit, :meth:`after_create_run`.
        ``user_metadata`` (a static summary and details) goes on its started event."""

    @abstractmethod
    def after_create_run(self, tx: Transition) -> None:
        """What follows the commit of a run made by :meth:`create_run`."""

    @abstractmethod
    def close_run(self, tx: Transition, event_type: int, attrs: object, status: int) -> None:
        """Appends the closing event and drops every task and timer of the run."""

    @abstractmethod
    def lease(self, tx: Transition, task: TaskRecord, until: float) -> None:
        """Leases ``task`` to this process until ``until``."""

    @abstractmethod
    def execution(self, namespace: str, workflow_id: str, run_id: str = "") -> ExecutionRecord:
        """The named run, or the current run of the workflow id."""

    @abstractmethod
    def state_of(self, run_id: str) -> RunState:
        """The run's current state (read-only use)."""

    @abstractmethod
    def last_state_of(self, run_id: str) -> RunState:
        """The run's state as this process last had it (read-only use)."""

    @abstractmethod
    def forget_runs(self) -> None:
        """Drops every cached run state."""

    @abstractmethod
    def arm_lost(self, owner_ids: Sequence[str]) -> None:
        """Arms durable timeouts for activity attempts leased by ``owner_ids``."""

    @abstractmethod
    def group(self) -> AbstractContextManager[None]:
        """Runs the transitions inside in one store transaction."""

    # workflow tasks, as transitions need them

    @abstractmethod
    def workflow_task_started(self, task_id: int) -> bool:
        """Whether this process's worker has read the workflow task ``task_id``."""

    @abstractmethod
    def materialize_workflow_task(self, tx: Transition) -> None:
        """Records the run's speculative workflow task in its history."""

    @abstractmethod
    def schedule_speculative_workflow_task(self, tx: Transition) -> None:
        """Schedules a workflow task that leaves no events unless it does something."""

    # waking

    @abstractmethod
    def notify_timer_added(self, at: float | None = None) -> None:
        """Wakes the background service, unless it is awake before ``at`` anyway."""

    @abstractmethod
    async def wait_run_change(
        self, run_id: str, timeout: float, *, until_closed: bool = False
    ) -> None:
        """Returns after the run changed, another process committed, or ``timeout``."""

    @abstractmethod
    def notify_external_change(self) -> None:
        """Another process committed: wakes everything that waits on a run."""

    @abstractmethod
    def lost(self, err: StoreLostError) -> None:
        """The store's file is gone: stops handing out work and tells who waits."""


class Transition:
    """Collects the effects of one change to a run inside a store transaction.

    Events that arrive from outside (activity results, fired timers, signals)
    while a workflow task is running are buffered and enter the history after
    that task's commands, as Temporal does; :meth:`add_external` decides.
    """

    __slots__ = (
        "_started_ids",
        "after_commit",
        "arms",
        "disarms",
        "encoded",
        "end_backoff",
        "engine",
        "handoffs",
        "metadata",
        "needs_workflow_task",
        "now",
        "state",
    )

    def __init__(self, engine: EngineContext, state: RunState, now: float) -> None:
        self.engine = engine
        self.state = state
        self.now = now
        self.encoded: list[tuple[int, bytes]] = []
        self.after_commit: list[Callable[[], None]] = []
        # Tasks handed to local workers: pushed to their queues after the commit
        # (a workflow task may instead run inline in a group commit).
        self.handoffs: list[tuple[LocalQueue, TaskRef]] = []
        # Deadlines of attempts leased to this process, armed in memory after
        # the commit, then those of activities that ended here disarmed (by
        # run id and scheduled event id), before the after-commit actions.
        self.arms: list[Arm] = []
        self.disarms: list[tuple[str, str]] = []
        self.needs_workflow_task = False
        # Whether a run waiting out its first workflow task backoff gets the
        # task now (a cancel request, a signal-with-start, the backoff's end).
        self.end_backoff = False
        # The user metadata (summary, details) the next appended event carries:
        # that of the command or start request it records.
        self.metadata: UserMetadata | None = None
        self._started_ids: dict[int, int] = {}

    @property
    def workflow_task_running(self) -> bool:
        """Whether a worker is running the run's workflow task now.

        A task leased to this process counts only once its worker has read the
        history (it has a started event); until then a new event simply joins
        what the worker will read. Another process's lease counts as running.
        """
        wft = self.state.wft
        if wft is None or wft.lease_owner is None or (wft.lease_until or 0) <= self.now:
            return False
        engine = self.engine
        return wft.lease_owner != engine.owner_id or engine.workflow_task_started(wft.id)

    def add(self, event_type: int, attrs: Message | None = None) -> HistoryEvent:
        """Appends an event to the history now."""
        event = self.new_event(event_type, attrs)
        self.append(event)
        return event

    def new_event(self, event_type: int, attrs: Message | None = None) -> HistoryEvent:
        """An event of this moment for :meth:`append` or :meth:`add_external_event`;
        without ``attrs`` the caller fills its attributes in (saves a copy)."""
        return make_event(0, self.now, event_type, attrs)

    def add_copy(self, shown: HistoryEvent) -> HistoryEvent:
        """Appends an event a worker has already seen, keeping its time and attributes."""
        event = HistoryEvent()
        event.CopyFrom(shown)
        self.append(event)
        return event

    def append(self, event: HistoryEvent) -> None:
        """Appends an event made by :meth:`new_event` (or a copy), assigning its id."""
        state = self.state
        exe = state.exe
        event_id = event.event_id = exe.next_event_id
        event_type = event.event_type
        if self.metadata is not None:
            event.user_metadata.CopyFrom(self.metadata)
            self.metadata = None
        # An activity's closing event names its started event, whose id is only
        # known once both are placed (they may have waited in the buffer).
        if event_type == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            self._started_ids[event.activity_task_started_event_attributes.scheduled_event_id] = (
                event_id
            )
        elif event_type in ACTIVITY_CLOSED:
            attrs = attributes_of(event)
            if not attrs.started_event_id:
                attrs.started_event_id = self._started_ids.get(attrs.scheduled_event_id, 0)
        data = event.SerializeToString()
        exe.next_event_id = event_id + 1
        exe.history_size += len(data)
        self.encoded.append((event_id, data))
        if event_type in FOLDED:
            state.apply(event)
        state.recent.append(event)

    def add_external(self, event_type: int, attrs: Message | None = None) -> None:
        """Adds an event that asks for a workflow task, buffering it if one is running."""
        self.add_external_event(make_event(0, self.now, event_type, attrs))

    def add_external_event(self, event: HistoryEvent) -> None:
        """:meth:`add_external` for an event made by :meth:`new_event`."""
        if self.workflow_task_running:
            self.engine.store.add_buffered_event(self.state.exe.run_id, event.SerializeToString())
            self.state.buffered += 1
        else:
            wft = self.state.wft
            if wft is not None and wft.ref == 0:
                self.engine.materialize_workflow_task(self)
            self.append(event)
            self.needs_workflow_task = True

    def flush_buffered(self) -> bool:
        """Moves buffered events into the history; True if there were any."""
        if not self.state.buffered:
            return False
        buffered = self.engine.store.take_buffered_events(self.state.exe.run_id)
        self.state.buffered = 0
        for data in buffered:
            # It keeps the time it arrived at; only its id is assigned now.
            self.append(parse_event(data))
        if buffered:
            self.needs_workflow_task = True
        return bool(buffered)
