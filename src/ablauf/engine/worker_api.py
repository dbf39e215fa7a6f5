"""All a worker does with the engine, in a few verbs.

As temporalio's worker only polls, completes, heartbeats and shuts down, an
embedded worker registers for a task queue, receives tasks, completes or
fails workflow tasks, reports activity outcomes, heartbeats and flushes.

The in-process fast path sits behind these verbs: a worker without a payload
codec lends the engine two callables at registration, one that runs a
workflow task inside the group commit that handed it out, one that runs a
cached run's task inside the very transition that scheduled it (the engine
passes that transition back in as ``tx``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple, TypeVar

from temporalio.api.command.v1 import Command
from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.protocol.v1 import Message
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.sdk.v1 import WorkflowTaskCompletedMetadata

from ablauf.engine import activities
from ablauf.engine.context import RunIn, Transition
from ablauf.engine.engine import Engine
from ablauf.engine.errors import EngineError
from ablauf.engine.matching import Consumer, LocalQueue, TaskRef
from ablauf.errors import StoreError, StoreLostError
from ablauf.history.tasks import ActivityOutcome, ActivityTask, WorkflowTask
from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK, ExecutionRecord

__all__ = ["ActivityWorker", "Registration", "WorkerApi", "WorkflowWorker"]

T = TypeVar("T")


class WorkflowWorker(NamedTuple):
    """What a worker lends the engine to run workflow tasks of one task queue."""

    take: Consumer
    """Offered each task handed to this process; False to leave it queued."""
    query: Callable[[ExecutionRecord, WorkflowQuery], Awaitable[Payloads]]
    """Answers a query from the run's instance (cached or replayed)."""
    evict_all: Callable[[], None]
    """Drops every cached instance (the store did not keep what some saw)."""
    run_now: Callable[[TaskRef], None] | None = None
    """Runs a task to completion inside the caller's group commit (no codec)."""
    run_in: RunIn | None = None
    """Runs a cached run's task inside the transition that scheduled it; returns
    what undoes it in the worker, or None having done nothing."""


class ActivityWorker(NamedTuple):
    """What a worker lends the engine to run activity attempts of one task queue."""

    take: Consumer
    cancel: Callable[[bytes, str], None]
    """Tells the attempt with this task token to stop, for the reason given."""


class Registration:
    """A worker's hold on one task queue; :meth:`WorkerApi.unregister` ends it."""

    def __init__(
        self,
        task_queue: str,
        workflows: WorkflowWorker | None,
        activities: ActivityWorker | None,
        on_lost: Callable[[StoreLostError], None],
    ) -> None:
        self.task_queue = task_queue
        self.workflows = workflows
        self.activities = activities
        self.on_lost = on_lost
        self.queues: list[tuple[int, LocalQueue, Consumer]] = []
        self.inline_queue: LocalQueue | None = None
        self.receiving = True


class WorkerApi:
    """The engine as a worker of this process uses it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @staticmethod
    def of(client: object) -> WorkerApi | None:
        """The embedded engine's worker API behind an ``ablauf.Client``, or None
        when the client talks to a Temporal server."""
        engine = getattr(getattr(client, "service_client", None), "engine", None)
        return WorkerApi(engine) if isinstance(engine, Engine) else None

    # register

    @property
    def failure(self) -> StoreLostError | None:
        """Set once the store's file was removed or replaced: no work is handed out."""
        return self._engine.failure

    def register(
        self,
        task_queue: str,
        *,
        workflows: WorkflowWorker | None = None,
        activities: ActivityWorker | None = None,
        on_lost: Callable[[StoreLostError], None],
    ) -> Registration:
        """Starts handing this process's tasks of ``task_queue`` to the worker
        and holds an owner lease for it, so other processes leave its tasks alone.

        Raises:
            StoreLostError: The store's file is gone.
        """
        engine = self._engine
        if engine.failure is not None:
            raise engine.failure
        reg = Registration(task_queue, workflows, activities, on_lost)
        engine.on_failure.append(on_lost)
        matching = engine.matching
        if workflows is not None:
            engine.on_rollback.append(workflows.evict_all)
            queue = matching.register(WORKFLOW_TASK, task_queue)
            matching.query_handlers[task_queue] = workflows.query
            self._consume(reg, WORKFLOW_TASK, queue, workflows.take)
            if workflows.run_now is not None and queue.inline is None:
                queue.inline = workflows.run_now
                if workflows.run_in is not None:
                    engine.run_in[queue] = workflows.run_in
                reg.inline_queue = queue
        if activities is not None:
            queue = matching.register(ACTIVITY_TASK, task_queue)
            matching.activity_cancellers[task_queue] = activities.cancel
            self._consume(reg, ACTIVITY_TASK, queue, activities.take)
        engine.update_owner()
        engine.service.request_scan()
        return reg

    @staticmethod
    def _consume(reg: Registration, kind: int, queue: LocalQueue, take: Consumer) -> None:
        queue.add_consumer(take)
        reg.queues.append((kind, queue, take))
        # Tasks that waited for a worker of this queue.
        while (ref := queue.take()) is not None:
            if not take(ref):
                queue.push(ref)
                break

    def stop_receiving(self, reg: Registration) -> None:
        """No more tasks for this worker; those it holds it may still finish."""
        if not reg.receiving:
            return
        reg.receiving = False
        for _, queue, take in reg.queues:
            queue.remove_consumer(take)
        if reg.inline_queue is not None:
            reg.inline_queue.inline = None
            self._engine.run_in.pop(reg.inline_queue, None)
            reg.inline_queue = None

    def take_queued(self, reg: Registration, kind: int) -> TaskRef | None:
        """A task of ``kind`` that waited for this worker to have room."""
        for k, queue, _ in reg.queues:
            if k == kind:
                return queue.take()
        return None

    async def unregister(self, reg: Registration) -> None:
        """Ends ``reg`` once the worker has finished its tasks: records what is
        still to record, then frees the worker's leases and owner lease."""
        engine = self._engine
        self.stop_receiving(reg)
        engine.on_failure.remove(reg.on_lost)
        matching = engine.matching
        try:
            if reg.activities is not None:
                # Should the store fail, each outcome logs why; the attempt
                # times out and runs again.
                with contextlib.suppress(StoreError):
                    await self.flush()
                matching.unregister(ACTIVITY_TASK, reg.task_queue)
                matching.activity_cancellers.pop(reg.task_queue, None)
                if matching.local(ACTIVITY_TASK, reg.task_queue) is None:
                    self._give_back_untaken(reg)
            if reg.workflows is not None:
                matching.unregister(WORKFLOW_TASK, reg.task_queue)
                matching.query_handlers.pop(reg.task_queue, None)
                engine.on_rollback.remove(reg.workflows.evict_all)
                reg.workflows.evict_all()
        finally:
            if engine.failure is None:
                engine.release_local_leases(reg.task_queue)
                engine.update_owner()

    def _give_back_untaken(self, reg: Registration) -> None:
        # Attempts handed to this process that no worker here took: left
        # leased, they would wait out their start-to-close timeout.
        for kind, queue, _ in reg.queues:
            while kind == ACTIVITY_TASK and (ref := queue.take()) is not None:
                self._give_back(ref)

    def _give_back(self, ref: TaskRef) -> None:
        with contextlib.suppress(EngineError):
            self._engine.transition(ref.run_id, lambda tx: activities.give_back(tx, ref))

    # workflow tasks

    def receive_workflow_task(
        self, ref: TaskRef, known_last_event_id: int, tx: Transition | None = None
    ) -> WorkflowTask | None:
        """The events a worker needs for a leased workflow task (after
        ``known_last_event_id``, which its cached instance has seen), or None
        if the lease is gone. In ``tx``, None too when the task cannot run there."""
        tasks = self._engine.workflow_tasks
        if tx is None:
            return tasks.read(ref, known_last_event_id)
        return tasks.read_in(tx, ref, known_last_event_id)

    def complete_workflow_task(
        self,
        ref: TaskRef,
        commands: Sequence[Command],
        sdk_metadata: WorkflowTaskCompletedMetadata | None = None,
        messages: Sequence[Message] = (),
        tx: Transition | None = None,
    ) -> bool:
        """Records the task's completion and applies its commands; False if it
        was not taken (then the worker drops its instance). A refused command
        the engine records as the task's failure, with Temporal's cause."""
        tasks = self._engine.workflow_tasks
        if tx is None:
            return tasks.complete(ref, commands, sdk_metadata, messages)
        return tasks.complete_in(tx, ref, commands, sdk_metadata, messages)

    def fail_workflow_task(self, ref: TaskRef, failure: Failure, cause: int) -> None:
        """Records the task's failure (``cause``: a ``WorkflowTaskFailedCause``)."""
        self._engine.workflow_tasks.fail(ref, failure, cause)

    def in_next_commit(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """Runs ``work`` (receiving and completing a task) in the next group commit."""
        return self._engine.submit(work)

    def is_running(self, run_id: str) -> bool:
        """Whether the run is still open."""
        return self._engine.state_of(run_id).running

    def history(self, run_id: str) -> list[HistoryEvent]:
        """The run's events (to replay it for a query)."""
        return self._engine.history(run_id)

    # activities

    def receive_activity_task(self, ref: TaskRef) -> ActivityTask | None:
        """What the worker needs to run a leased attempt, or None if the lease is gone."""
        return activities.activity_task(self._engine, ref)

    def report_activity_outcome(
        self,
        ref: TaskRef,
        outcome: ActivityOutcome,
        details: Payloads | None,
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Records an attempt's outcome (with heartbeat details not yet stored).
        Outcomes of one run that arrive together commit in one transition;
        the attempt is over without waiting for it (:meth:`flush` waits)."""
        engine = self._engine
        engine.post_batched(
            ("activity results", ref.run_id),
            (ref, outcome, details),
            lambda outcomes: activities.record_outcomes(engine, ref.run_id, outcomes),
            on_error,
        )

    def heartbeat(self, ref: TaskRef, details: Payloads) -> bool:
        """Records an attempt's heartbeat; True if it should stop (canceled or gone)."""
        return activities.heartbeat(self._engine, ref, details)

    async def flush(self) -> None:
        """Waits until every reported outcome is committed."""
        await self._engine.commits.flush()

    # describing

    def store_path(self) -> str:
        """Where the store lives (for the worker's start line)."""
        return self._engine.store.path

    def open_runs(self, namespace: str, task_queue: str) -> int:
        """How many runs of the task queue are open."""
        return self._engine.store.count_running(namespace, task_queue)
