"""The embedded engine: Temporal's history service as a state machine over a store.

:class:`Engine` is the composition root: it builds the parts — the run cache
and waiters, transitions with their group commit, workflow tasks, owners,
queries, schedules, the background service — and is the
:class:`~ablauf.engine.context.EngineContext` the handlers see. Every change
to a run is one :class:`~ablauf.engine.context.Transition` in one store
transaction (:mod:`ablauf.engine.transitions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TypeVar

from google.protobuf.message import Message
from temporalio.api.history.v1 import HistoryEvent, WorkflowExecutionStartedEventAttributes
from temporalio.api.sdk.v1 import UserMetadata

from ablauf.clock import Clock, SystemClock
from ablauf.engine import activities, closing
from ablauf.engine.context import EngineContext, Transition
from ablauf.engine.errors import NotFoundError
from ablauf.engine.local_timers import LocalTimers
from ablauf.engine.matching import Matching
from ablauf.engine.owners import Owners
from ablauf.engine.queries import Queries
from ablauf.engine.runs import RunCache, RunWaiters
from ablauf.engine.service import Service
from ablauf.engine.state import RunState
from ablauf.engine.transitions import Transitions
from ablauf.engine.workflow_tasks import WorkflowTasks
from ablauf.errors import StoreLostError
from ablauf.history.events import parse_history
from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK, ExecutionRecord, Store, TaskRecord

if TYPE_CHECKING:
    from ablauf.engine.schedules import Schedules

__all__ = ["Engine"]

T = TypeVar("T")


class Engine(EngineContext):
    """The durable state machine behind one store."""

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.identity = f"{os.getpid()}@ablauf"
        self.matching = Matching()
        self.owners = Owners(self)
        self.owner_id = self.owners.owner_id
        self.failure: StoreLostError | None = None
        """Set once the store's file was found removed or replaced: the engine stopped."""
        self.on_failure: list[Callable[[StoreLostError], None]] = []
        self.local_timers = LocalTimers()
        self.wake = asyncio.Event()
        self.on_commit: list[Callable[[str], None]] = []
        self.on_rollback: list[Callable[[], None]] = []
        """Called when changes that workers ran code for were rolled back (a
        failed group commit): what they keep of those runs is ahead of the store."""
        self.runs = RunCache(store)
        self.waiters = RunWaiters()
        self.workflow_tasks = WorkflowTasks(self)
        self.transitions = Transitions(
            self, self.runs, self.waiters, self.workflow_tasks, self.rolled_back
        )
        self.run_in = self.transitions.run_in
        self.commits = self.transitions.commits
        self.submit = self.commits.submit
        self.submit_batched = self.commits.submit_batched
        self.post_batched = self.commits.post_batched
        self.queries = Queries(self, self.owners)
        self.service = Service(
            self, self.owners, self.queries, self.workflow_tasks, lambda: self.schedules
        )

    @functools.cached_property
    def schedules(self) -> Schedules:
        """Schedule RPCs and actions; their code is imported on first use (a
        sixth of ablauf's own import time, which every process start pays)."""
        from ablauf.engine.schedules import Schedules

        return Schedules(self)

    # lifecycle

    def start(self) -> None:
        """Starts the background service (timers, tasks from other processes, leases)."""
        self.service.start()

    def update_owner(self) -> None:
        """Publishes the task queues this process's workers poll: a process with
        workers holds an owner lease, one without holds none."""
        self.owners.publish()

    def release_local_leases(self, task_queue: str) -> None:
        """Frees the workflow tasks this process leased on ``task_queue``."""
        with self.store.transaction():
            self.store.release_leases([self.owner_id], WORKFLOW_TASK, task_queue)
        self.forget_runs()

    async def close(self) -> None:
        """Stops background work and gives up this process's owner lease.

        Attempts still running here keep their leases; their timeouts, kept in
        memory so far, are armed in the store, where they fire for whoever runs next.
        """
        await self.service.stop()
        self.queries.cancel()
        try:
            if self.owners.lease_until and self.failure is None:
                self.owners.leave()
        finally:
            self.store.close()

    def lost(self, err: StoreLostError) -> None:
        if self.failure is not None:
            return
        self.failure = err
        self.forget_runs()
        for hook in self.on_failure:
            hook(err)
        # Clients awaiting a run learn it at once, from their next read.
        self.notify_external_change()

    def arm_lost(self, owner_ids: Sequence[str]) -> None:
        for run_id in self.store.runs_with_leases(owner_ids, ACTIVITY_TASK):
            with contextlib.suppress(NotFoundError):
                self.transition(run_id, lambda tx: activities.arm_lost(tx, owner_ids))

    def forget_runs(self) -> None:
        self.runs.clear()

    def rolled_back(self) -> None:
        """A transaction that may have held workflow tasks run inline did not
        commit: drops every cached run state, the engine's and the workers'."""
        self.forget_runs()
        for hook in self.on_rollback:
            hook()

    # the context, as the parts provide it

    def transition(self, run_id: str, change: Callable[[Transition], T], *, fuse: bool = True) -> T:
        return self.transitions.run(run_id, change, fuse=fuse)

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
        return self.transitions.create_run(
            namespace, workflow_id, attrs, now, run_id, first_events, user_metadata
        )

    def after_create_run(self, tx: Transition) -> None:
        self.transitions.after_commit(tx)

    def close_run(self, tx: Transition, event_type: int, attrs: object, status: int) -> None:
        closing.close_run(tx, event_type, attrs, status)

    def lease(self, tx: Transition, task: TaskRecord, until: float) -> None:
        self.workflow_tasks.forget(task.id)
        task.lease_owner = self.owner_id
        task.lease_until = until
        task.lease_nonce += 1
        task.started_at = tx.now
        if task.id:
            self.store.update_task(task)

    def group(self) -> AbstractContextManager[None]:
        return self.commits.group()

    def workflow_task_started(self, task_id: int) -> bool:
        return self.workflow_tasks.has_started(task_id)

    def materialize_workflow_task(self, tx: Transition) -> None:
        self.workflow_tasks.materialize(tx)

    def schedule_speculative_workflow_task(self, tx: Transition) -> None:
        self.workflow_tasks.schedule_speculative(tx)

    def notify_timer_added(self, at: float | None = None) -> None:
        if at is None or at < self.service.deadline:
            self.wake.set()

    async def wait_run_change(
        self, run_id: str, timeout: float, *, until_closed: bool = False
    ) -> None:
        await self.waiters.wait(run_id, timeout, until_closed=until_closed)

    def notify_external_change(self) -> None:
        self.waiters.wake_all()

    # reading

    def execution(self, namespace: str, workflow_id: str, run_id: str = "") -> ExecutionRecord:
        if not run_id:
            current = self.store.current_run_id(namespace, workflow_id)
            if current is None:
                raise NotFoundError(f"workflow not found for ID: {workflow_id}")
            run_id = current
        cached = self.runs.cached(run_id)
        exe = cached.exe if cached is not None else self.store.get_execution(run_id)
        if exe is None or exe.workflow_id != workflow_id:
            raise NotFoundError(f"workflow not found for ID: {workflow_id}")
        return exe

    def state_of(self, run_id: str) -> RunState:
        return self.runs.load(run_id)

    def last_state_of(self, run_id: str) -> RunState:
        # It may miss another process's latest change: what it is used for is
        # checked again by the transition that records the result.
        state = self.runs.last(run_id)
        return state if state is not None else self.runs.load(run_id)

    def history(
        self, run_id: str, first_event_id: int = 1, limit: int | None = None
    ) -> list[HistoryEvent]:
        """The run's events from ``first_event_id`` on, at most ``limit`` of them."""
        return parse_history(self.history_data(run_id, first_event_id, limit))

    def history_data(self, run_id: str, first_event_id: int = 1, limit: int | None = None) -> bytes:
        """:meth:`history` as a serialized ``History`` message."""
        return self.store.read_history(run_id, first_event_id, limit)
