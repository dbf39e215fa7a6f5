"""The embedded engine: Temporal's history service as a state machine over a store.

Every change to a run is one :class:`Transition` in one store transaction:
events appended, task and timer rows written, the execution row versioned.
Cached run states are checked against the stored version inside the
transaction, so several processes can share one store file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import temporalio.api.enums.v1.event_type_pb2 as E
import temporalio.api.enums.v1.workflow_pb2 as S
from google.protobuf.message import Message as ProtoMessage
from temporalio.api.command.v1 import Command
from temporalio.api.enums.v1 import (
    WorkflowTaskFailedCause,
)
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import (
    HistoryEvent,
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskFailedEventAttributes,
    WorkflowTaskScheduledEventAttributes,
    WorkflowTaskStartedEventAttributes,
)
from temporalio.api.protocol.v1 import Message
from temporalio.api.sdk.v1 import WorkflowTaskCompletedMetadata

from ablauf.clock import Clock, SystemClock
from ablauf.engine import activities, children, commands, updates
from ablauf.engine.commit import GroupCommit
from ablauf.engine.errors import InvalidArgumentError, NotFoundError
from ablauf.engine.matching import Matching, TaskRef
from ablauf.engine.queries import Queries
from ablauf.engine.schedules import Schedules
from ablauf.engine.service import Service
from ablauf.engine.state import RunState
from ablauf.engine.timers import TimerKind, workflow_task_backoff
from ablauf.engine.transition import Transition
from ablauf.history.events import make_event, parse_event, parse_history, seconds_of
from ablauf.history.tasks import WorkflowTask
from ablauf.store.base import (
    UPDATE_REQUESTED,
    WORKFLOW_TASK,
    ExecutionRecord,
    OwnerRecord,
    Store,
    TaskRecord,
)

__all__ = ["Engine"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Temporal's history limits: a run beyond them is terminated.
HISTORY_COUNT_LIMIT = 51_200
HISTORY_SIZE_LIMIT = 50 * 1024 * 1024
# Temporal's continue-as-new suggestion thresholds.
SUGGEST_CAN_EVENTS = 4096
SUGGEST_CAN_BYTES = 4 * 1024 * 1024
CACHED_RUNS = 2000


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


@dataclass(slots=True)
class _Started:
    """A workflow task a worker of this process has read: the events made for it."""

    started: HistoryEvent
    # A speculative task's scheduled event, written only if the task leaves a trace.
    scheduled: HistoryEvent | None


class Engine:
    """The durable state machine behind one store."""

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.owner_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.identity = f"{os.getpid()}@ablauf"
        self.matching = Matching()
        self._runs: OrderedDict[str, RunState] = OrderedDict()
        # Cached runs checked against the store since another connection last
        # committed: they need no check until the next foreign commit.
        self._fresh: set[str] = set()
        self._data_version: int | None = None
        self._started_events: dict[int, _Started] = {}
        self._run_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self.wake = asyncio.Event()
        self.on_commit: list[Callable[[str], None]] = []
        self.commits = GroupCommit(self.store, self._run_after_commit, self.forget_runs)
        self.group = self.commits.group
        self.submit = self.commits.submit
        self.submit_batched = self.commits.submit_batched
        self.service = Service(self)
        self.queries = Queries(self)
        self.schedules = Schedules(self)

    # lifecycle

    def start(self) -> None:
        """Registers this process as a lease owner and starts the background service."""
        with self.store.transaction():
            self.store.register_owner(
                OwnerRecord(
                    self.owner_id, os.getpid(), self.clock.now(), self.matching.all_task_queues()
                )
            )
        self.service.start()

    def update_owner(self) -> None:
        """Publishes the task queues this process serves (for cross-process queries)."""
        with self.store.transaction():
            self.store.register_owner(
                OwnerRecord(
                    self.owner_id, os.getpid(), self.clock.now(), self.matching.all_task_queues()
                )
            )

    def release_local_leases(self, task_queue: str) -> None:
        """Frees the workflow tasks this process leased on ``task_queue``."""
        with self.store.transaction():
            self.store.release_leases([self.owner_id], WORKFLOW_TASK, task_queue)
        self.forget_runs()

    async def close(self) -> None:
        """Stops background work and frees this process's workflow task leases."""
        await self.service.stop()
        self.queries.cancel()
        with self.store.transaction():
            self.store.release_leases([self.owner_id], WORKFLOW_TASK)
            self.store.remove_owner(self.owner_id)
        self.store.close()

    # transitions

    def _load(self, run_id: str) -> RunState:
        data_version = self.store.data_version()
        if data_version != self._data_version:
            self._data_version = data_version
            self._fresh.clear()
        state = self._runs.get(run_id)
        if state is not None and run_id in self._fresh:
            self._runs.move_to_end(run_id)
            return state
        version = self.store.execution_version(run_id)
        if version is None:
            raise NotFoundError(f"workflow run {run_id} not found")
        if state is None or state.exe.version != version:
            state = self._fold(run_id)
        self._runs[run_id] = state
        self._runs.move_to_end(run_id)
        self._fresh.add(run_id)
        if len(self._runs) > CACHED_RUNS:
            old, _ = self._runs.popitem(last=False)
            self._fresh.discard(old)
        return state

    def _fold(self, run_id: str) -> RunState:
        exe = self.store.get_execution(run_id)
        assert exe is not None
        events = [parse_event(d) for d in self.store.read_events(run_id)]
        state = RunState.fold(exe, events, self.store.tasks_of_run(run_id))
        state.requested_updates = sum(
            1 for u in self.store.updates_of_run(run_id) if u.state == UPDATE_REQUESTED
        )
        state.buffered = self.store.count_buffered_events(run_id)
        return state

    def forget_runs(self) -> None:
        """Drops every cached run state (after writes that bypass transitions)."""
        self._runs.clear()
        self._fresh.clear()

    def transition(self, run_id: str, change: Callable[[Transition], T]) -> T:
        """Applies ``change`` to the run in one store transaction."""
        try:
            with self.store.transaction():
                state = self._load(run_id)
                tx = Transition(self, state, self.clock.now())
                result = change(tx)
                self._finish(tx)
        except _HistoryLimitExceeded as err:
            self._runs.pop(run_id, None)
            self._terminate_for_limit(run_id, str(err))
            raise InvalidArgumentError(str(err)) from None
        except BaseException:
            self._runs.pop(run_id, None)
            raise
        self._after_commit(tx)
        return result

    def _finish(self, tx: Transition) -> None:
        state = tx.state
        if state.running:
            self._check_history_limits(tx)
        if state.running and state.wft is None:
            if tx.needs_workflow_task:
                self._schedule_workflow_task(tx, attempt=1)
            elif state.requested_updates > 0:
                self.schedule_speculative_workflow_task(tx)
        if tx.encoded:
            self.store.append_events(state.exe.run_id, tx.encoded)
        state.exe.version += 1
        self.store.update_execution(state.exe)

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
        for action in tx.after_commit:
            action()
        for queue, ref in tx.handoffs:
            queue.push(ref)
        waiters = self._run_waiters.pop(run_id, None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        for hook in self.on_commit:
            hook(run_id)

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
        run_id = run_id or str(uuid.uuid4())
        attrs.original_execution_run_id = run_id
        if not attrs.first_execution_run_id:
            attrs.first_execution_run_id = run_id
        execution_timeout = attrs.workflow_execution_timeout.ToTimedelta().total_seconds()
        run_timeout = attrs.workflow_run_timeout.ToTimedelta().total_seconds()
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
        with self.store.transaction():
            self.store.insert_execution(exe)
            self.store.set_current_run(namespace, workflow_id, run_id)
            state = RunState(exe=exe, started=attrs)
            tx = Transition(self, state, now)
            tx.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, attrs)
            for event_type, event_attrs in first_events:
                tx.add(event_type, event_attrs)
            backoff = attrs.first_workflow_task_backoff.ToTimedelta().total_seconds()
            if backoff > 0:
                # A retried run's first task waits out the retry interval.
                self._schedule_workflow_task(tx, 1, backoff)
            else:
                tx.needs_workflow_task = True
            if deadline is not None:
                self.store.insert_timer(run_id, TimerKind.WORKFLOW_RUN_TIMEOUT, "", 0, deadline)
                tx.after_commit.append(self.notify_timer_added)
            self._finish(tx)
        self._runs[run_id] = state
        return tx

    def after_create_run(self, tx: Transition) -> None:
        self._after_commit(tx)

    # workflow tasks

    @staticmethod
    def _scheduled_attributes(
        state: RunState, attempt: int
    ) -> WorkflowTaskScheduledEventAttributes:
        return WorkflowTaskScheduledEventAttributes(
            task_queue=state.started.task_queue,
            start_to_close_timeout=state.started.workflow_task_timeout,
            attempt=attempt,
        )

    def schedule_speculative_workflow_task(self, tx: Transition) -> None:
        """A workflow task for updates only: no event unless it leaves a trace."""
        self._schedule_workflow_task(tx, 1, speculative=True)

    def materialize_workflow_task(self, tx: Transition) -> None:
        """Writes the scheduled event of a speculative workflow task."""
        task = tx.state.wft
        if task is None or task.ref != 0:
            return
        read = self._started_events.get(task.id)
        if read is not None and read.scheduled is not None:
            # The worker saw this scheduled event already: store it as it was shown.
            event = tx.add_copy(read.scheduled)
        else:
            event = tx.add(
                E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
                self._scheduled_attributes(tx.state, task.attempt),
            )
        task.ref = event.event_id
        self.store.update_task(task)

    def _schedule_workflow_task(
        self, tx: Transition, attempt: int, delay: float = 0.0, speculative: bool = False
    ) -> None:
        state = tx.state
        ref = 0
        if not speculative:
            ref = tx.add(
                E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, self._scheduled_attributes(state, attempt)
            ).event_id
        task = TaskRecord(
            id=0,
            kind=WORKFLOW_TASK,
            run_id=state.exe.run_id,
            namespace=state.exe.namespace,
            task_queue=state.exe.task_queue,
            ref=ref,
            attempt=attempt,
            visible_at=tx.now + delay,
            lease_owner=None,
            lease_until=None,
            lease_nonce=0,
            started_at=None,
            scheduled_at=tx.now,
            attempt_scheduled_at=tx.now + delay,
            cancel_requested=False,
            heartbeat_at=None,
            heartbeat_details=None,
            last_failure=None,
        )
        state.wft = task
        if delay > 0:
            self.store.insert_task(task)
            self.store.insert_timer(
                state.exe.run_id, TimerKind.WORKFLOW_TASK_RETRY, "", attempt, tx.now + delay
            )
            tx.after_commit.append(self.notify_timer_added)
        else:
            # Leased before it is written: one statement for both.
            self.offer_workflow_task(tx)
            self.store.insert_task(task)
            if tx.handoffs and tx.handoffs[-1][1].task_id == 0:
                queue, handed = tx.handoffs[-1]
                tx.handoffs[-1] = (queue, replace(handed, task_id=task.id))

    def offer_workflow_task(self, tx: Transition) -> None:
        """Leases the run's workflow task to this process if a local worker polls its queue."""
        task = tx.state.wft
        assert task is not None
        queue = self.matching.local(WORKFLOW_TASK, task.task_queue)
        if queue is None:
            return
        self.lease(tx, task, tx.now + self._task_timeout(tx.state))
        # A task not yet written gets its row id once it is (see above).
        tx.handoffs.append((queue, TaskRef(task.id, task.lease_nonce, task.run_id, task.attempt)))

    def has_started(self, task_id: int) -> bool:
        """Whether a worker of this process has read the history of this workflow task."""
        return task_id in self._started_events

    def lease(self, tx: Transition, task: TaskRecord, until: float) -> None:
        self._started_events.pop(task.id, None)
        task.lease_owner = self.owner_id
        task.lease_until = until
        task.lease_nonce += 1
        task.started_at = tx.now
        if task.id:
            self.store.update_task(task)

    @staticmethod
    def _task_timeout(state: RunState) -> float:
        return seconds_of(state.started.workflow_task_timeout)

    def _leased_workflow_task(self, tx: Transition, ref: TaskRef) -> TaskRecord | None:
        task = tx.state.wft
        if (
            task is None
            or task.id != ref.task_id
            or task.lease_nonce != ref.nonce
            or task.lease_owner != self.owner_id
            or (task.lease_until or 0) < tx.now
        ):
            # A task whose lease ran out (Temporal: timed out) may already be elsewhere.
            return None
        return task

    def workflow_task(self, ref: TaskRef, known_last_event_id: int) -> WorkflowTask | None:
        """The events a worker needs for a leased workflow task, or None if the lease is gone.

        The WorkflowTaskStarted event at the end is not stored until the task completes.
        """
        state = self._load(ref.run_id)
        task = state.wft
        if task is None or task.id != ref.task_id or task.lease_nonce != ref.nonce:
            return None
        exe = state.exe
        now = self.clock.now()
        scheduled = None
        scheduled_id = task.ref
        if task.ref == 0:
            scheduled_id = exe.next_event_id
            scheduled = make_event(
                scheduled_id,
                now,
                E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
                self._scheduled_attributes(state, task.attempt),
            )
        started = make_event(
            scheduled_id + 1 if scheduled is not None else exe.next_event_id,
            now,
            E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            WorkflowTaskStartedEventAttributes(
                scheduled_event_id=scheduled_id,
                identity=self.identity,
                request_id=str(uuid.uuid4()),
                history_size_bytes=exe.history_size,
                suggest_continue_as_new=exe.next_event_id >= SUGGEST_CAN_EVENTS
                or exe.history_size >= SUGGEST_CAN_BYTES,
            ),
        )
        self._started_events[task.id] = _Started(started, scheduled)
        first = known_last_event_id + 1
        if first >= state.recent_from:
            events = list(state.recent[first - state.recent_from :])
        else:
            events = parse_history(self.store.read_events(exe.run_id, first))
        if scheduled is not None:
            events.append(scheduled)
        events.append(started)
        messages = (
            updates.deliverable(self, exe.run_id, scheduled_id) if state.requested_updates else []
        )
        return WorkflowTask(
            token=ref.token(),
            namespace=exe.namespace,
            workflow_id=exe.workflow_id,
            run_id=exe.run_id,
            workflow_type=exe.workflow_type,
            task_queue=task.task_queue,
            events=events,
            first_event_id=first,
            attempt=task.attempt,
            messages=messages,
        )

    def complete_workflow_task(
        self,
        ref: TaskRef,
        cmds: Sequence[Command],
        sdk_metadata: WorkflowTaskCompletedMetadata | None = None,
        messages: Sequence[Message] = (),
    ) -> bool:
        """Records a completed workflow task and applies its commands.

        Returns False when the completion was not taken (the lease was lost or
        new events make a closing command invalid); the worker then drops its
        cached instance.
        """

        def change(tx: Transition) -> bool:
            task = self._leased_workflow_task(tx, ref)
            # Kept until the commit: a refused command still needs it to record the failure.
            read = self._started_events.get(ref.task_id)
            if task is None or read is None:
                self._started_events.pop(ref.task_id, None)
                return False
            started = read.started
            if task.ref == 0 and not cmds and not tx.state.buffered:
                # A speculative task that only rejected updates leaves no trace.
                updates.reject_unanswered(tx, list(messages))
                self._started_events.pop(ref.task_id, None)
                self.store.delete_task(task.id)
                tx.state.wft = None
                return True
            self.materialize_workflow_task(tx)
            closing = any(c.command_type in commands.CLOSING for c in cmds)
            if closing and tx.state.buffered:
                # Temporal refuses to close a run that has unseen events.
                self._started_events.pop(ref.task_id, None)
                self._record_task_failure(
                    tx,
                    task,
                    started,
                    None,
                    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
                )
                return False
            self._trim_recent(tx.state, started.event_id)
            tx.add_copy(started)
            completed_attrs = WorkflowTaskCompletedEventAttributes(
                scheduled_event_id=task.ref,
                started_event_id=started.event_id,
                identity=self.identity,
            )
            if sdk_metadata is not None:
                completed_attrs.sdk_metadata.CopyFrom(sdk_metadata)
            completed = tx.add(E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, completed_attrs)
            self.store.delete_task(task.id)
            tx.state.wft = None
            commands.apply(tx, cmds, completed.event_id, messages)
            if tx.state.running:
                tx.flush_buffered()
            self._started_events.pop(ref.task_id, None)
            return True

        return self.transition(ref.run_id, change)

    @staticmethod
    def _trim_recent(state: RunState, started_event_id: int) -> None:
        # A sticky worker always knows the events before the task it answers.
        drop = started_event_id - state.recent_from
        if drop > 0:
            del state.recent[:drop]
            state.recent_from = started_event_id

    def fail_workflow_task(self, ref: TaskRef, failure: Failure, cause: int) -> None:
        """Records a failed workflow task and schedules its retry with backoff."""

        def change(tx: Transition) -> None:
            task = self._leased_workflow_task(tx, ref)
            read = self._started_events.get(ref.task_id)
            if task is None or read is None:
                self._started_events.pop(ref.task_id, None)
                return
            self.materialize_workflow_task(tx)
            self._started_events.pop(ref.task_id, None)
            self._record_task_failure(tx, task, read.started, failure, cause)

        self.transition(ref.run_id, change)

    def _record_task_failure(
        self,
        tx: Transition,
        task: TaskRecord,
        started: HistoryEvent,
        failure: Failure | None,
        cause: int,
    ) -> None:
        state = tx.state
        attempt = task.attempt + 1
        if (
            task.attempt == 1
            or cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
        ):
            # Later attempts of a failing task stay out of the history, as in Temporal.
            self._trim_recent(state, started.event_id)
            tx.add_copy(started)
            attrs = WorkflowTaskFailedEventAttributes(
                scheduled_event_id=task.ref,
                started_event_id=started.event_id,
                cause=cause,  # type: ignore[arg-type]
                identity=self.identity,
            )
            if failure is not None:
                attrs.failure.CopyFrom(failure)
            tx.add(E.EVENT_TYPE_WORKFLOW_TASK_FAILED, attrs)
            self.store.delete_task(task.id)
            state.wft = None
            tx.flush_buffered()
            if cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND:
                attempt = 1
            self._schedule_workflow_task(
                tx, attempt, workflow_task_backoff(attempt) if attempt > 1 else 0
            )
            return
        # The task is no longer running: what waited for it joins the history now.
        tx.flush_buffered()
        delay = workflow_task_backoff(attempt)
        task.attempt = attempt
        task.lease_owner = None
        task.lease_until = None
        task.visible_at = tx.now + delay
        task.attempt_scheduled_at = task.visible_at
        if failure is not None:
            task.last_failure = failure.SerializeToString()
        self.store.update_task(task)
        self.store.insert_timer(
            state.exe.run_id, TimerKind.WORKFLOW_TASK_RETRY, "", attempt, task.visible_at
        )
        tx.after_commit.append(self.notify_timer_added)

    # closing

    def close_run(self, tx: Transition, event_type: int, attrs: object, status: int) -> None:
        """Appends the closing event and drops every task and timer of the run."""
        tx.add(event_type, attrs)  # type: ignore[arg-type]
        exe = tx.state.exe
        exe.status = status
        exe.close_time = tx.now
        for task in self.store.tasks_of_run(exe.run_id):
            self.store.delete_task(task.id)
            if task.kind != WORKFLOW_TASK and task.lease_owner == self.owner_id:
                tx.after_commit.append(
                    lambda t=task: activities.cancel_local(self, t, "NOT_FOUND")  # type: ignore[misc]
                )
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
        exe = self.store.get_execution(run_id)
        if exe is None or exe.workflow_id != workflow_id:
            raise NotFoundError(f"workflow not found for ID: {workflow_id}")
        return exe

    def state_of(self, run_id: str) -> RunState:
        """The run's current state (read-only use)."""
        return self._load(run_id)

    def history(
        self, run_id: str, first_event_id: int = 1, limit: int | None = None
    ) -> list[HistoryEvent]:
        """The run's events from ``first_event_id`` on, at most ``limit`` of them."""
        return parse_history(self.store.read_events(run_id, first_event_id, limit))

    async def wait_run_change(self, run_id: str, timeout: float) -> None:
        """Returns after the run changed in this process, or after ``timeout``."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._run_waiters.setdefault(run_id, []).append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            waiters = self._run_waiters.get(run_id)
            if waiters and fut in waiters:
                waiters.remove(fut)

    def notify_external_change(self) -> None:
        """Another process committed: wake everything that waits on a run."""
        waiters, self._run_waiters = self._run_waiters, {}
        for futures in waiters.values():
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)
