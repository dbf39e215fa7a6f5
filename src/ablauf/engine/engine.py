"""The embedded engine: Temporal's history service as a state machine over a store.

Every change to a run is one :class:`Transition` in one store transaction:
events appended, task and timer rows written, the execution row versioned.
Cached run states are checked against the stored version inside the
transaction, so several processes can share one store file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TypeVar

import temporalio.api.enums.v1.event_type_pb2 as E
import temporalio.api.enums.v1.workflow_pb2 as S
from google.protobuf.message import Message as ProtoMessage
from temporalio.api.history.v1 import (
    HistoryEvent,
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
)

from ablauf.clock import Clock, SystemClock
from ablauf.engine import activities, children
from ablauf.engine.commit import GroupCommit
from ablauf.engine.context import EngineContext, RunIn, Transition
from ablauf.engine.errors import InvalidArgumentError, NotFoundError
from ablauf.engine.local_timers import LocalTimers
from ablauf.engine.matching import LocalQueue, Matching
from ablauf.engine.owners import Owners
from ablauf.engine.queries import Queries
from ablauf.engine.run_ids import new_run_id
from ablauf.engine.service import Service
from ablauf.engine.state import RunState
from ablauf.engine.timers import TimerKind
from ablauf.engine.workflow_tasks import WorkflowTasks
from ablauf.errors import StoreError, StoreLostError
from ablauf.history.events import parse_history, seconds_of, unframe
from ablauf.store.base import (
    ACTIVITY_TASK,
    UPDATE_REQUESTED,
    WORKFLOW_TASK,
    ExecutionRecord,
    Store,
    TaskRecord,
)

if TYPE_CHECKING:
    from ablauf.engine.schedules import Schedules

__all__ = ["Engine"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Temporal's history limits: a run beyond them is terminated.
HISTORY_COUNT_LIMIT = 51_200
HISTORY_SIZE_LIMIT = 50 * 1024 * 1024
CACHED_RUNS = 2000


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _resolve_all(futures: list[asyncio.Future[None]] | None) -> None:
    for fut in futures or ():
        _resolve(fut)


def _run_deadline(attrs: WorkflowExecutionStartedEventAttributes, now: float) -> float | None:
    """When the run times out: its run timeout, capped by the execution's expiration."""
    deadlines = []
    run_timeout = seconds_of(attrs.workflow_run_timeout)
    if run_timeout > 0:
        deadlines.append(now + run_timeout)
    if attrs.HasField("workflow_execution_expiration_time"):
        deadlines.append(attrs.workflow_execution_expiration_time.ToNanoseconds() / 1e9)
    return min(deadlines) if deadlines else None


class _HistoryLimitExceeded(Exception):
    pass


class _Unfused(Exception):
    """A workflow task run inside the transition that scheduled it did not
    complete: the transition is made again without it."""


class Engine(EngineContext):
    """The durable state machine behind one store: composes the handlers."""

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
        self.run_in: dict[LocalQueue, RunIn] = {}
        """Per local workflow task queue, its worker's way to run a cached run's
        task inside the transition that scheduled it (see :meth:`transition`)."""
        self._runs: OrderedDict[str, RunState] = OrderedDict()
        # Cached runs checked against the store since another connection last
        # committed: they need no check until the next foreign commit.
        self._fresh: set[str] = set()
        self._nested = 0
        self._data_version: int | None = None
        self._run_waiters: dict[str, list[asyncio.Future[None]]] = {}
        # Those that wait for the run to close (a client awaiting its result).
        self._close_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self.wake = asyncio.Event()
        self.on_commit: list[Callable[[str], None]] = []
        self.on_rollback: list[Callable[[], None]] = []
        """Called when changes that workers ran code for were rolled back (a
        failed group commit): what they keep of those runs is ahead of the store."""
        self.commits = GroupCommit(self.store, self._run_after_commit, self.rolled_back)
        self.submit = self.commits.submit
        self.submit_batched = self.commits.submit_batched
        self.post_batched = self.commits.post_batched
        self.workflow_tasks = WorkflowTasks(self)
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
        """The store's file is gone: stops handing out work and tells who waits."""
        if self.failure is not None:
            return
        self.failure = err
        self.forget_runs()
        for hook in self.on_failure:
            hook(err)
        # Clients awaiting a run learn it at once, from their next read.
        self.notify_external_change()

    def arm_lost(self, owner_ids: Sequence[str]) -> None:
        """Arms durable timeouts for activity attempts leased by ``owner_ids``."""
        for run_id in self.store.runs_with_leases(owner_ids, ACTIVITY_TASK):
            with contextlib.suppress(NotFoundError):
                self.transition(run_id, lambda tx: activities.arm_lost(tx, owner_ids))

    # transitions

    def _cached(self, run_id: str) -> RunState | None:
        """The run's cached state if nothing changed it since it was loaded."""
        data_version = self.store.data_version()
        if data_version != self._data_version:
            self._data_version = data_version
            self._fresh.clear()
        return self._runs.get(run_id) if run_id in self._fresh else None

    def _load(self, run_id: str) -> RunState:
        state = self._cached(run_id)
        if state is not None:
            self._runs.move_to_end(run_id)
            return state
        state = self._runs.get(run_id)
        version = self.store.execution_version(run_id)
        if version is None:
            raise NotFoundError(f"workflow run {run_id} not found")
        if state is None or state.exe.version != version:
            state = self._fold(run_id)
        self._runs[run_id] = state
        self._runs.move_to_end(run_id)
        self._fresh.add(run_id)
        self._trim()
        return state

    def _trim(self) -> None:
        if len(self._runs) > CACHED_RUNS:
            old, _ = self._runs.popitem(last=False)
            self._fresh.discard(old)

    def _fold(self, run_id: str) -> RunState:
        exe = self.store.get_execution(run_id)
        assert exe is not None
        datas = unframe(self.store.read_history(run_id))
        state = RunState.fold(exe, datas, self.store.tasks_of_run(run_id))
        state.requested_updates = sum(
            1 for u in self.store.updates_of_run(run_id) if u.state == UPDATE_REQUESTED
        )
        state.buffered = self.store.count_buffered_events(run_id)
        return state

    def forget_runs(self) -> None:
        """Drops every cached run state (after writes that bypass transitions)."""
        self._runs.clear()
        self._fresh.clear()

    def rolled_back(self) -> None:
        """A transaction that may have held workflow tasks run inline did not
        commit: drops every cached run state, the engine's and the workers'."""
        self.forget_runs()
        for hook in self.on_rollback:
            hook()

    def transition(self, run_id: str, change: Callable[[Transition], T], *, fuse: bool = True) -> T:
        """Applies ``change`` to the run in one store transaction.

        In a group commit, a workflow task it schedules for a worker of this
        process that has the run cached runs inside it (``fuse``): one
        transition instead of two. Should that task fail, the change is made
        again without it, and the task takes the usual way.
        """
        # Only an outermost transition fuses: a nested one (a signal to another
        # run) must not run that run's code, which might come back to this run.
        fuse = fuse and not self._nested
        try:
            with self.store.transaction():
                state = self._load(run_id)
                tx = Transition(self, state, self.clock.now())
                self._nested += 1
                try:
                    result = change(tx)
                    self._finish(tx, fuse)
                finally:
                    self._nested -= 1
        except _Unfused:
            # The fused task may have changed other runs' cached states too.
            self.forget_runs()
            return self.transition(run_id, change, fuse=False)
        except _HistoryLimitExceeded as err:
            self._runs.pop(run_id, None)
            self._terminate_for_limit(run_id, str(err))
            raise InvalidArgumentError(str(err)) from None
        except StoreError:
            # The commit failed: a workflow task run inside it never happened.
            self.rolled_back()
            raise
        except BaseException:
            self._runs.pop(run_id, None)
            raise
        self._after_commit(tx)
        return result

    def _finish(self, tx: Transition, fuse: bool = False) -> None:
        state = tx.state
        fuse = fuse and self.commits.open
        # A workflow task that may run right here gets its row only if it does not.
        self._schedule_next(tx, write=not fuse)
        if fuse:
            self._run_fused(tx)
        if tx.encoded:
            self.store.append_events(state.exe.run_id, tx.encoded)
        state.exe.version += 1
        self.store.update_execution(state.exe)

    def _schedule_next(self, tx: Transition, write: bool = True) -> None:
        state = tx.state
        if state.running:
            self._check_history_limits(tx)
        if state.running and state.wft is None:
            if tx.needs_workflow_task:
                self.workflow_tasks.schedule(tx, attempt=1, write=write)
            elif state.requested_updates > 0:
                self.workflow_tasks.schedule_speculative(tx)

    def _run_fused(self, tx: Transition) -> None:
        """Runs the workflow task ``tx`` hands to an inline worker inside ``tx``,
        or else writes its row; raises :class:`_Unfused` should that task not
        complete."""
        state = tx.state
        wft = state.wft
        if wft is None or wft.id:
            return
        if not tx.handoffs:
            self.workflow_tasks.write(tx)
            return
        queue, ref = tx.handoffs[-1]
        run_in = self.run_in.get(queue)
        if (
            run_in is None
            or ref.task_id != 0
            or ref.run_id != state.exe.run_id
            or state.buffered
            or state.requested_updates
        ):
            self.workflow_tasks.write(tx)
            return
        tx.handoffs.pop()
        tx.needs_workflow_task = False
        try:
            undo = run_in(tx, ref)
        except Exception as err:
            self.workflow_tasks.forget(ref.task_id)
            raise _Unfused from err
        if undo is None:
            tx.handoffs.append((queue, ref))
            tx.needs_workflow_task = True
            self.workflow_tasks.write(tx)
            return
        try:
            self._schedule_next(tx)
        except Exception as err:
            # Made alone, the change is kept and the task's completion is what overflows.
            undo()
            raise _Unfused from err

    @staticmethod
    def _check_history_limits(tx: Transition) -> None:
        exe = tx.state.exe
        if exe.next_event_id - 1 > HISTORY_COUNT_LIMIT:
            raise _HistoryLimitExceeded("Workflow history count exceeds limit.")
        if exe.history_size > HISTORY_SIZE_LIMIT:
            raise _HistoryLimitExceeded("Workflow history size exceeds limit.")

    def _terminate_for_limit(self, run_id: str, reason: str) -> None:
        # As Temporal does: the change that would overflow the history is
        # dropped, and the run is terminated in its place.
        def change(tx: Transition) -> None:
            if tx.state.running:
                self.close_run(
                    tx,
                    E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
                    WorkflowExecutionTerminatedEventAttributes(
                        reason=reason, identity=self.identity
                    ),
                    S.WORKFLOW_EXECUTION_STATUS_TERMINATED,
                )

        self.transition(run_id, change)

    def _after_commit(self, tx: Transition) -> None:
        if not self.commits.defer(tx):
            self._run_after_commit(tx)

    def _run_after_commit(self, tx: Transition) -> None:
        run_id = tx.state.exe.run_id
        if tx.arms:
            self.notify_timer_added(self.local_timers.add_many(tx.arms))
        if tx.disarms:
            self.local_timers.drop_many(tx.disarms)
        for action in tx.after_commit:
            action()
        for queue, ref in tx.handoffs:
            queue.push(ref)
        _resolve_all(self._run_waiters.pop(run_id, None))
        if not tx.state.running:
            _resolve_all(self._close_waiters.pop(run_id, None))
        for hook in self.on_commit:
            hook(run_id)

    def group(self) -> AbstractContextManager[None]:
        return self.commits.group()

    def workflow_task_started(self, task_id: int) -> bool:
        return self.workflow_tasks.has_started(task_id)

    def materialize_workflow_task(self, tx: Transition) -> None:
        self.workflow_tasks.materialize(tx)

    def schedule_speculative_workflow_task(self, tx: Transition) -> None:
        self.workflow_tasks.schedule_speculative(tx)

    def notify_timer_added(self, at: float | None = None) -> None:
        """Wakes the background service, unless it is awake before ``at`` anyway."""
        if at is None or at < self.service.deadline:
            self.wake.set()

    # runs

    def create_run(
        self,
        namespace: str,
        workflow_id: str,
        attrs: WorkflowExecutionStartedEventAttributes,
        now: float,
        run_id: str | None = None,
        first_events: Sequence[tuple[int, ProtoMessage]] = (),
    ) -> Transition:
        """Writes a new run in the caller's transaction; after commit, :meth:`after_create_run`."""
        run_id = run_id or new_run_id()
        attrs.original_execution_run_id = run_id
        if not attrs.first_execution_run_id:
            attrs.first_execution_run_id = run_id
        execution_timeout = seconds_of(attrs.workflow_execution_timeout)
        run_timeout = seconds_of(attrs.workflow_run_timeout)
        if execution_timeout > 0 and (run_timeout <= 0 or run_timeout > execution_timeout):
            # Temporal's server: a run lasts at most as long as its execution.
            attrs.workflow_run_timeout.CopyFrom(attrs.workflow_execution_timeout)
        if execution_timeout > 0 and not attrs.HasField("workflow_execution_expiration_time"):
            attrs.workflow_execution_expiration_time.FromNanoseconds(
                round((now + execution_timeout) * 1e9)
            )
        deadline = _run_deadline(attrs, now)
        exe = ExecutionRecord(
            run_id=run_id,
            namespace=namespace,
            workflow_id=workflow_id,
            workflow_type=attrs.workflow_type.name,
            task_queue=attrs.task_queue.name,
            status=S.WORKFLOW_EXECUTION_STATUS_RUNNING,
            start_time=now,
            close_time=None,
            next_event_id=1,
            history_size=0,
            version=0,
        )
        # A caller that fails after this rolls its own transaction back.
        with self.store.atomic():
            self.store.insert_execution(exe)
            self.store.set_current_run(namespace, workflow_id, run_id)
            state = RunState(exe=exe, started=attrs)
            tx = Transition(self, state, now)
            tx.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, attrs)
            for event_type, event_attrs in first_events:
                tx.add(event_type, event_attrs)
            backoff = seconds_of(attrs.first_workflow_task_backoff)
            if backoff > 0:
                # A retried run's first task waits out the retry interval.
                self.workflow_tasks.schedule(tx, 1, backoff)
            else:
                tx.needs_workflow_task = True
            if deadline is not None:
                self.store.insert_timer(run_id, TimerKind.WORKFLOW_RUN_TIMEOUT, "", 0, deadline)
                tx.after_commit.append(self.notify_timer_added)
            self._finish(tx)
        self._runs[run_id] = state
        # A process that only starts workflows keeps no more states than one that runs them.
        self._trim()
        return tx

    def after_create_run(self, tx: Transition) -> None:
        self._after_commit(tx)

    def lease(self, tx: Transition, task: TaskRecord, until: float) -> None:
        self.workflow_tasks.forget(task.id)
        task.lease_owner = self.owner_id
        task.lease_until = until
        task.lease_nonce += 1
        task.started_at = tx.now
        if task.id:
            self.store.update_task(task)

    # closing

    def close_run(self, tx: Transition, event_type: int, attrs: object, status: int) -> None:
        """Appends the closing event and drops every task and timer of the run."""
        tx.add(event_type, attrs)  # type: ignore[arg-type]
        exe = tx.state.exe
        exe.status = status
        exe.close_time = tx.now
        self.store.delete_tasks_of_run(exe.run_id)
        exe.activity_owner = None
        # Attempts running here, with or without a row (see activities.schedule).
        for pending in tx.state.activities.values():
            task = pending.task
            if task is not None and task.lease_owner == self.owner_id:
                tx.after_commit.append(
                    lambda t=task: activities.cancel_local(self, t, "NOT_FOUND")  # type: ignore[misc]
                )
                tx.disarms.append((exe.run_id, str(task.ref)))
        self.store.delete_timers(exe.run_id)
        if tx.state.buffered:
            self.store.take_buffered_events(exe.run_id)
            tx.state.buffered = 0
        tx.state.wft = None
        children.notify_parent(tx)
        children.apply_parent_close_policies(tx)

    # reading

    def execution(self, namespace: str, workflow_id: str, run_id: str = "") -> ExecutionRecord:
        """The named run, or the current run of the workflow id."""
        if not run_id:
            current = self.store.current_run_id(namespace, workflow_id)
            if current is None:
                raise NotFoundError(f"workflow not found for ID: {workflow_id}")
            run_id = current
        cached = self._cached(run_id)
        exe = cached.exe if cached is not None else self.store.get_execution(run_id)
        if exe is None or exe.workflow_id != workflow_id:
            raise NotFoundError(f"workflow not found for ID: {workflow_id}")
        return exe

    def state_of(self, run_id: str) -> RunState:
        """The run's current state (read-only use)."""
        return self._load(run_id)

    def last_state_of(self, run_id: str) -> RunState:
        """The run's state as this process last had it (read-only use): it may
        miss another process's latest change, so what it is used for must be
        checked again by the transition that records the result."""
        state = self._runs.get(run_id)
        return state if state is not None else self._load(run_id)

    def history(
        self, run_id: str, first_event_id: int = 1, limit: int | None = None
    ) -> list[HistoryEvent]:
        """The run's events from ``first_event_id`` on, at most ``limit`` of them."""
        return parse_history(self.history_data(run_id, first_event_id, limit))

    def history_data(self, run_id: str, first_event_id: int = 1, limit: int | None = None) -> bytes:
        """:meth:`history` as a serialized ``History`` message."""
        return self.store.read_history(run_id, first_event_id, limit)

    async def wait_run_change(
        self, run_id: str, timeout: float, *, until_closed: bool = False
    ) -> None:
        """Returns after the run changed in this process (with ``until_closed``,
        once a change closed it), after another process committed, or after
        ``timeout``."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        all_waiters = self._close_waiters if until_closed else self._run_waiters
        all_waiters.setdefault(run_id, []).append(fut)
        # Not asyncio.wait_for: its wrapper costs a loop turn on every wake-up.
        timer = loop.call_later(timeout, _resolve, fut)
        try:
            await fut
        finally:
            timer.cancel()
            waiters = all_waiters.get(run_id)
            if waiters and fut in waiters:
                waiters.remove(fut)

    def notify_external_change(self) -> None:
        """Another process committed: wake everything that waits on a run."""
        for all_waiters in (self._run_waiters, self._close_waiters):
            for run_id in list(all_waiters):
                _resolve_all(all_waiters.pop(run_id))
