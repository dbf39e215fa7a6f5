"""Transitions: how one change to one run is loaded, applied and committed.

A change runs in one store transaction on the run's state (checked against
the stored version); it appends events, writes task and timer rows, and
versions the execution row. What follows its commit (tasks handed to local
workers, timers armed, waiters woken) runs after the commit, or after the
group commit it is part of. Inside a group commit, a workflow task the
change hands to a local worker that has the run cached runs inside the same
transition (the in-process fast path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import temporalio.api.enums.v1.event_type_pb2 as E
import temporalio.api.enums.v1.workflow_pb2 as S
from google.protobuf.message import Message as ProtoMessage
from temporalio.api.history.v1 import (
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
)
from temporalio.api.sdk.v1 import UserMetadata

from ablauf.engine.commit import GroupCommit
from ablauf.engine.context import EngineContext, RunIn, Transition
from ablauf.engine.errors import InvalidArgumentError
from ablauf.engine.matching import LocalQueue
from ablauf.engine.run_ids import new_run_id
from ablauf.engine.runs import RunCache, RunWaiters
from ablauf.engine.state import RunState
from ablauf.engine.timers import TimerKind
from ablauf.engine.workflow_tasks import WorkflowTasks
from ablauf.errors import StoreError
from ablauf.history.events import seconds_of
from ablauf.store.base import ExecutionRecord

__all__ = ["HISTORY_COUNT_LIMIT", "HISTORY_SIZE_LIMIT", "Transitions"]

T = TypeVar("T")

# Temporal's history limits: a run beyond them is terminated.
HISTORY_COUNT_LIMIT = 51_200
HISTORY_SIZE_LIMIT = 50 * 1024 * 1024


def _run_deadline(attrs: WorkflowExecutionStartedEventAttributes, now: float) -> float | None:
    """When the run times out: its run timeout, counted from the end of its
    first workflow task backoff as Temporal does, capped by the execution's
    expiration."""
    deadlines = []
    run_timeout = seconds_of(attrs.workflow_run_timeout)
    if run_timeout > 0:
        deadlines.append(now + seconds_of(attrs.first_workflow_task_backoff) + run_timeout)
    if attrs.HasField("workflow_execution_expiration_time"):
        deadlines.append(attrs.workflow_execution_expiration_time.ToNanoseconds() / 1e9)
    return min(deadlines) if deadlines else None


class _HistoryLimitExceeded(Exception):
    pass


class _Unfused(Exception):
    """A workflow task run inside the transition that scheduled it did not
    complete: the transition is made again without it."""


class Transitions:
    """Makes the changes to runs for one engine."""

    def __init__(
        self,
        ctx: EngineContext,
        runs: RunCache,
        waiters: RunWaiters,
        workflow_tasks: WorkflowTasks,
        rolled_back: Callable[[], None],
    ) -> None:
        self.ctx = ctx
        self.runs = runs
        self.waiters = waiters
        self.workflow_tasks = workflow_tasks
        self.rolled_back = rolled_back
        """Called when a commit failed that may have held workflow tasks run inline."""
        self.commits = GroupCommit(ctx.store, self.run_after_commit, rolled_back)
        self.run_in: dict[LocalQueue, RunIn] = {}
        """Per local workflow task queue, its worker's way to run a cached run's
        task inside the transition that scheduled it (see :meth:`run`)."""
        self._nested = 0

    def run(self, run_id: str, change: Callable[[Transition], T], *, fuse: bool = True) -> T:
        """Applies ``change`` to the run in one store transaction.

        In a group commit, a workflow task it schedules for a worker of this
        process that has the run cached runs inside it (``fuse``): one
        transition instead of two. Should that task fail, the change is made
        again without it, and the task takes the usual way.
        """
        # Only an outermost transition fuses: a nested one (a signal to another
        # run) must not run that run's code, which might come back to this run.
        ctx = self.ctx
        fuse = fuse and not self._nested
        try:
            with ctx.store.transaction():
                state = self.runs.load(run_id)
                tx = Transition(ctx, state, ctx.clock.now())
                self._nested += 1
                try:
                    result = change(tx)
                    self._finish(tx, fuse)
                finally:
                    self._nested -= 1
        except _Unfused:
            # The fused task may have changed other runs' cached states too.
            self.runs.clear()
            return self.run(run_id, change, fuse=False)
        except _HistoryLimitExceeded as err:
            self.runs.drop(run_id)
            self._terminate_for_limit(run_id, str(err))
            raise InvalidArgumentError(str(err)) from None
        except StoreError:
            # The commit failed: a workflow task run inside it never happened.
            self.rolled_back()
            raise
        except BaseException:
            self.runs.drop(run_id)
            raise
        self.after_commit(tx)
        return result

    def _finish(self, tx: Transition, fuse: bool = False) -> None:
        state = tx.state
        fuse = fuse and self.commits.open
        # A workflow task that may run right here gets its row only if it does not.
        self._schedule_next(tx, write=not fuse)
        if fuse:
            self._run_fused(tx)
        if tx.encoded:
            self.ctx.store.append_events(state.exe.run_id, tx.encoded)
        state.exe.version += 1
        self.ctx.store.update_execution(state.exe)

    def _schedule_next(self, tx: Transition, write: bool = True) -> None:
        state = tx.state
        if state.running:
            self._check_history_limits(tx)
        if state.running and state.wft is None:
            if tx.needs_workflow_task and (tx.end_backoff or not state.awaiting_backoff):
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
                self.ctx.close_run(
                    tx,
                    E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
                    WorkflowExecutionTerminatedEventAttributes(
                        reason=reason, identity=self.ctx.identity
                    ),
                    S.WORKFLOW_EXECUTION_STATUS_TERMINATED,
                )

        self.run(run_id, change)

    def after_commit(self, tx: Transition) -> None:
        """What follows a committed transition, now or after its group commits."""
        if not self.commits.defer(tx):
            self.run_after_commit(tx)

    def run_after_commit(self, tx: Transition) -> None:
        """Arms timers, hands tasks to local workers and wakes waiters of a committed change."""
        run_id = tx.state.exe.run_id
        ctx = self.ctx
        if tx.arms:
            ctx.notify_timer_added(ctx.local_timers.add_many(tx.arms))
        if tx.disarms:
            ctx.local_timers.drop_many(tx.disarms)
        for action in tx.after_commit:
            action()
        for queue, ref in tx.handoffs:
            queue.push(ref)
        self.waiters.changed(run_id, not tx.state.running)
        for hook in ctx.on_commit:
            hook(run_id)

    def create_run(
        self,
        namespace: str,
        workflow_id: str,
        attrs: WorkflowExecutionStartedEventAttributes,
        now: float,
        run_id: str | None = None,
        first_events: Sequence[tuple[int, ProtoMessage]] = (),
        user_metadata: UserMetadata | None = None,
    ) -> Transition:
        """Writes a new run in the caller's transaction; after commit, :meth:`after_commit`."""
        ctx = self.ctx
        store = ctx.store
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
        with store.atomic():
            store.insert_execution(exe)
            store.set_current_run(namespace, workflow_id, run_id)
            state = RunState(exe=exe, started=attrs)
            tx = Transition(ctx, state, now)
            tx.metadata = user_metadata
            tx.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, attrs)
            for event_type, event_attrs in first_events:
                tx.add(event_type, event_attrs)
            backoff = seconds_of(attrs.first_workflow_task_backoff)
            if backoff > 0:
                # The first task waits out a start delay, a retry interval or
                # the time to a cron run; it is scheduled when the backoff ends.
                store.insert_timer(run_id, TimerKind.WORKFLOW_BACKOFF, "", 0, now + backoff)
                tx.after_commit.append(ctx.notify_timer_added)
            else:
                tx.needs_workflow_task = True
            if deadline is not None:
                store.insert_timer(run_id, TimerKind.WORKFLOW_RUN_TIMEOUT, "", 0, deadline)
                tx.after_commit.append(ctx.notify_timer_added)
            self._finish(tx)
        self.runs.keep(state)
        return tx

    def after_create_run(self, tx: Transition) -> None:
        self.after_commit(tx)
