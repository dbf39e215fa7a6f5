"""Workflow tasks: scheduling, handing out, completing and failing them.

A task's WorkflowTaskStarted event is made when a worker of this process
reads the task and stored only when the task completes or fails, as Temporal
keeps it in mutable state until then. A speculative task (for updates only)
writes no events unless it leaves a trace.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import temporalio.api.enums.v1.event_type_pb2 as E
from temporalio.api.command.v1 import Command
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.history.v1 import (
    HistoryEvent,
    WorkflowTaskFailedEventAttributes,
    WorkflowTaskScheduledEventAttributes,
)
from temporalio.api.protocol.v1 import Message
from temporalio.api.sdk.v1 import WorkflowTaskCompletedMetadata

from ablauf.engine import commands, updates
from ablauf.engine.context import EngineContext, Transition
from ablauf.engine.errors import CommandRejectedError
from ablauf.engine.matching import TaskRef
from ablauf.engine.state import RunState
from ablauf.engine.timers import TimerKind, workflow_task_backoff
from ablauf.history.catalog import CLOSING_COMMANDS
from ablauf.history.events import make_event, parse_history, seconds_of
from ablauf.history.tasks import WorkflowTask
from ablauf.store.base import WORKFLOW_TASK, TaskRecord

__all__ = ["SUGGEST_CAN_BYTES", "SUGGEST_CAN_EVENTS", "WorkflowTasks"]

logger = logging.getLogger(__name__)

# Temporal's continue-as-new suggestion thresholds.
SUGGEST_CAN_EVENTS = 4096
SUGGEST_CAN_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class _Started:
    """A workflow task a worker of this process has read: the events made for it."""

    started: HistoryEvent
    # A speculative task's scheduled event, written only if the task leaves a trace.
    scheduled: HistoryEvent | None


class WorkflowTasks:
    """The workflow tasks of one engine's runs."""

    def __init__(self, engine: EngineContext) -> None:
        self.engine = engine
        self._started: dict[int, _Started] = {}
        self._request_prefix = str(uuid.uuid4())[:24]
        self._requests = itertools.count()

    def _request_id(self) -> str:
        # Unique like the poll request's UUID on Temporal, without a random draw each.
        return f"{self._request_prefix}{next(self._requests):012x}"

    def forget(self, task_id: int) -> None:
        """Forgets that a worker read this task (it is leased anew)."""
        self._started.pop(task_id, None)

    @staticmethod
    def _scheduled_event(event_id: int, at: float, state: RunState, attempt: int) -> HistoryEvent:
        template = state.wft_scheduled
        if not template:
            # The same for each of the run's tasks: made once, then parsed with the event.
            started = state.started
            template = state.wft_scheduled = WorkflowTaskScheduledEventAttributes(
                task_queue=started.task_queue,
                start_to_close_timeout=started.workflow_task_timeout,
                attempt=1,
            ).SerializeToString()
        event = make_event(event_id, at, E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, attrs_data=template)
        if attempt != 1:
            event.workflow_task_scheduled_event_attributes.attempt = attempt
        return event

    def schedule_speculative(self, tx: Transition) -> None:
        """A workflow task for updates only: no event unless it leaves a trace."""
        self.schedule(tx, 1, speculative=True)

    def materialize(self, tx: Transition) -> None:
        """Writes the scheduled event of a speculative workflow task."""
        task = tx.state.wft
        if task is None or task.ref != 0:
            return
        read = self._started.get(task.id)
        if read is not None and read.scheduled is not None:
            # The worker saw this scheduled event already: store it as it was shown.
            event = tx.add_copy(read.scheduled)
        else:
            event = self._scheduled_event(0, tx.now, tx.state, task.attempt)
            tx.append(event)
        task.ref = event.event_id
        self.engine.store.update_task(task)

    def schedule(
        self,
        tx: Transition,
        attempt: int,
        delay: float = 0.0,
        speculative: bool = False,
        write: bool = True,
    ) -> None:
        """Schedules the run's next workflow task, ``delay`` seconds from now (a
        speculative one writes its scheduled event only if it leaves a trace).

        ``write=False`` leaves a task due now without its row, for the caller
        to run inside ``tx`` or to :meth:`write`.
        """
        state = tx.state
        ref = 0
        if not speculative:
            event = self._scheduled_event(0, tx.now, state, attempt)
            tx.append(event)
            ref = event.event_id
        # Positional: a call naming its 18 fields costs three times as much.
        task = TaskRecord(
            0,  # id
            WORKFLOW_TASK,  # kind
            state.exe.run_id,  # run_id
            state.exe.namespace,  # namespace
            state.exe.task_queue,  # task_queue
            ref,  # ref
            attempt,  # attempt
            tx.now + delay,  # visible_at
            None,  # lease_owner
            None,  # lease_until
            0,  # lease_nonce
            None,  # started_at
            tx.now,  # scheduled_at
            tx.now + delay,  # attempt_scheduled_at
            False,  # cancel_requested
            None,  # heartbeat_at
            None,  # heartbeat_details
            None,  # last_failure
        )
        state.wft = task
        if delay > 0:
            self.engine.store.insert_task(task)
            self.engine.store.insert_timer(
                state.exe.run_id, TimerKind.WORKFLOW_TASK_RETRY, "", attempt, tx.now + delay
            )
            tx.after_commit.append(self.engine.notify_timer_added)
        else:
            # Leased before it is written: one statement for both.
            self.offer(tx)
            if write:
                self.write(tx)

    def write(self, tx: Transition) -> None:
        """Writes the row of the workflow task scheduled in ``tx`` without one."""
        task = tx.state.wft
        assert task is not None and not task.id
        self.engine.store.insert_task(task)
        if tx.handoffs and tx.handoffs[-1][1].task_id == 0:
            queue, handed = tx.handoffs[-1]
            tx.handoffs[-1] = (queue, TaskRef(task.id, handed.nonce, handed.run_id, handed.attempt))

    def offer(self, tx: Transition) -> None:
        """Leases the run's workflow task to this process if a local worker polls its queue."""
        task = tx.state.wft
        assert task is not None
        queue = self.engine.matching.local(WORKFLOW_TASK, task.task_queue)
        if queue is None:
            return
        self.engine.lease(tx, task, tx.now + self._task_timeout(tx.state))
        # A task not yet written gets its row id once it is (see above).
        tx.handoffs.append((queue, TaskRef(task.id, task.lease_nonce, task.run_id, task.attempt)))

    def has_started(self, task_id: int) -> bool:
        """Whether a worker of this process has read the history of this workflow task."""
        return task_id in self._started

    @staticmethod
    def _task_timeout(state: RunState) -> float:
        return seconds_of(state.started.workflow_task_timeout)

    def _leased(self, tx: Transition, ref: TaskRef) -> TaskRecord | None:
        task = tx.state.wft
        if (
            task is None
            or task.id != ref.task_id
            or task.lease_nonce != ref.nonce
            or task.lease_owner != self.engine.owner_id
            or (task.lease_until or 0) < tx.now
        ):
            # A task whose lease ran out (Temporal: timed out) may already be elsewhere.
            return None
        return task

    def read(self, ref: TaskRef, known_last_event_id: int) -> WorkflowTask | None:
        """The events a worker needs for a leased workflow task, or None if the lease is gone.

        The WorkflowTaskStarted event at the end is not stored until the task completes.
        """
        return self._read(self.engine.state_of(ref.run_id), ref, known_last_event_id, None)

    def read_in(
        self, tx: Transition, ref: TaskRef, known_last_event_id: int
    ) -> WorkflowTask | None:
        """:meth:`read` inside the transition that scheduled the task (it runs
        inline); None also when the worker needs events from before the ones
        held in memory (the store has not got this transition's events yet)."""
        if known_last_event_id + 1 < tx.state.recent_from:
            return None
        return self._read(tx.state, ref, known_last_event_id, tx.now)

    def _read(
        self, state: RunState, ref: TaskRef, known_last_event_id: int, now: float | None
    ) -> WorkflowTask | None:
        task = state.wft
        if task is None or task.id != ref.task_id or task.lease_nonce != ref.nonce:
            return None
        exe = state.exe
        if now is None:
            now = self.engine.clock.now()
        scheduled = None
        scheduled_id = task.ref
        if task.ref == 0:
            scheduled_id = exe.next_event_id
            scheduled = self._scheduled_event(scheduled_id, now, state, task.attempt)
        started = make_event(
            scheduled_id + 1 if scheduled is not None else exe.next_event_id,
            now,
            E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        )
        attrs = started.workflow_task_started_event_attributes
        attrs.scheduled_event_id = scheduled_id
        attrs.identity = self.engine.identity
        attrs.request_id = self._request_id()
        attrs.history_size_bytes = exe.history_size
        attrs.suggest_continue_as_new = (
            exe.next_event_id >= SUGGEST_CAN_EVENTS or exe.history_size >= SUGGEST_CAN_BYTES
        )
        self._started[task.id] = _Started(started, scheduled)
        first = known_last_event_id + 1
        if first >= state.recent_from:
            events = list(state.recent[first - state.recent_from :])
        else:
            events = parse_history(self.engine.store.read_history(exe.run_id, first))
        if scheduled is not None:
            events.append(scheduled)
        events.append(started)
        messages = (
            updates.deliverable(self.engine, exe.run_id, scheduled_id)
            if state.requested_updates
            else []
        )
        # Positional: naming the fields costs twice as much.
        return WorkflowTask(
            exe.namespace,  # namespace
            exe.workflow_id,  # workflow_id
            exe.run_id,  # run_id
            exe.workflow_type,  # workflow_type
            task.task_queue,  # task_queue
            events,  # events
            first,  # first_event_id
            task.attempt,  # attempt
            messages,  # messages
        )

    def complete(
        self,
        ref: TaskRef,
        cmds: Sequence[Command],
        sdk_metadata: WorkflowTaskCompletedMetadata | None = None,
        messages: Sequence[Message] = (),
    ) -> bool:
        """Records a completed workflow task and applies its commands.

        Returns False when the completion was not taken (the lease was lost,
        new events make a closing command invalid, or a command was refused,
        which the engine records as the task's failure with Temporal's cause);
        the worker then drops its cached instance.
        """
        try:
            return self.engine.transition(
                ref.run_id, lambda tx: self.complete_in(tx, ref, cmds, sdk_metadata, messages)
            )
        except CommandRejectedError as err:
            if ref.attempt == 1:
                workflow_id = self.engine.last_state_of(ref.run_id).exe.workflow_id
                logger.warning("workflow task of %s failed (will retry): %s", workflow_id, err)
            failure = Failure(
                message=str(err),
                source="ablauf",
                application_failure_info=ApplicationFailureInfo(type=err.failure_type),
            )
            self.fail(ref, failure, err.cause)
            return False

    def complete_in(
        self,
        tx: Transition,
        ref: TaskRef,
        cmds: Sequence[Command],
        sdk_metadata: WorkflowTaskCompletedMetadata | None = None,
        messages: Sequence[Message] = (),
    ) -> bool:
        """:meth:`complete` as part of the transition ``tx``."""
        task = self._leased(tx, ref)
        # Kept until the commit: a refused command still needs it to record the failure.
        read = self._started.get(ref.task_id)
        if task is None or read is None:
            self._started.pop(ref.task_id, None)
            return False
        started = read.started
        if task.ref == 0 and not cmds and not tx.state.buffered:
            # A speculative task that only rejected updates leaves no trace.
            updates.reject_unanswered(tx, list(messages))
            self._started.pop(ref.task_id, None)
            self.engine.store.delete_task(task.id)
            tx.state.wft = None
            return True
        if task.ref == 0:
            self.materialize(tx)
        if tx.state.buffered and any(c.command_type in CLOSING_COMMANDS for c in cmds):
            # Temporal refuses to close a run that has unseen events.
            self._started.pop(ref.task_id, None)
            self._record_failure(
                tx,
                task,
                started,
                None,
                WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
            )
            return False
        self._trim_recent(tx.state, started.event_id)
        # The worker's copy is the history's: neither changes an event once made.
        tx.append(started)
        completed = tx.new_event(E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        completed_attrs = completed.workflow_task_completed_event_attributes
        completed_attrs.scheduled_event_id = task.ref
        completed_attrs.started_event_id = started.event_id
        completed_attrs.identity = self.engine.identity
        if sdk_metadata is not None:
            completed_attrs.sdk_metadata.CopyFrom(sdk_metadata)
        tx.append(completed)
        if task.id:
            # (A task run inside the transition that scheduled it has no row.)
            self.engine.store.delete_task(task.id)
        tx.state.wft = None
        commands.apply(tx, cmds, completed.event_id, messages)
        if tx.state.running and tx.state.buffered:
            tx.flush_buffered()
        self._started.pop(ref.task_id, None)
        return True

    @staticmethod
    def _trim_recent(state: RunState, started_event_id: int) -> None:
        # A sticky worker always knows the events before the task it answers.
        drop = started_event_id - state.recent_from
        if drop > 0:
            del state.recent[:drop]
            state.recent_from = started_event_id

    def fail(self, ref: TaskRef, failure: Failure, cause: int) -> None:
        """Records a failed workflow task and schedules its retry with backoff."""

        def change(tx: Transition) -> None:
            task = self._leased(tx, ref)
            read = self._started.get(ref.task_id)
            if task is None or read is None:
                self._started.pop(ref.task_id, None)
                return
            self.materialize(tx)
            self._started.pop(ref.task_id, None)
            self._record_failure(tx, task, read.started, failure, cause)

        self.engine.transition(ref.run_id, change)

    def _record_failure(
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
                identity=self.engine.identity,
            )
            if failure is not None:
                attrs.failure.CopyFrom(failure)
            tx.add(E.EVENT_TYPE_WORKFLOW_TASK_FAILED, attrs)
            self.engine.store.delete_task(task.id)
            state.wft = None
            tx.flush_buffered()
            if cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND:
                attempt = 1
            self.schedule(tx, attempt, workflow_task_backoff(attempt) if attempt > 1 else 0)
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
        self.engine.store.update_task(task)
        self.engine.store.insert_timer(
            state.exe.run_id, TimerKind.WORKFLOW_TASK_RETRY, "", attempt, task.visible_at
        )
        tx.after_commit.append(self.engine.notify_timer_added)
