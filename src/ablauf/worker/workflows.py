"""Workflow tasks in a worker: the sticky cache of live instances, replay on a
miss, and answers to queries."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.api.command.v1 import Command
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.protocol.v1 import Message
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.update.v1 import Acceptance, Rejection, Request, Response

from ablauf.engine.context import Transition
from ablauf.engine.errors import EngineError, QueryFailedError
from ablauf.engine.matching import TaskRef
from ablauf.engine.worker_api import WorkerApi
from ablauf.history.catalog import COMMAND_EVENT_TYPES
from ablauf.history.tasks import WorkflowTask
from ablauf.replay.instance import QueryFailed, WorkflowInstance, WorkflowTaskOutcome
from ablauf.replay.machines import LocalActivityResult
from ablauf.store.base import ExecutionRecord
from ablauf.worker.codec import Codec
from ablauf.worker.deadlock import (
    DEADLOCK_TIMEOUT,
    WATCHDOG,
    Deadlocked,
    LoopGuard,
    WorkflowThreads,
    deadlock_failure,
    run_threaded,
)
from ablauf.worker.local_activities import LocalActivities, RunInfo

if TYPE_CHECKING:
    from ablauf.replay.runtime.intercept import WorkflowInterceptors
    from ablauf.worker.metrics import WorkflowMetrics

__all__ = ["WorkflowRunner"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_UNHANDLED = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE
_NONDETERMINISM = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
# sdk-core's WFT_HEARTBEAT_TIMEOUT_FRACTION.
_HEARTBEAT_FRACTION = 0.8


def _definitions(
    workflows: Sequence[type],
) -> tuple[dict[str, temporalio.workflow._Definition], temporalio.workflow._Definition | None]:
    by_name: dict[str, temporalio.workflow._Definition] = {}
    dynamic: temporalio.workflow._Definition | None = None
    for cls in workflows:
        defn = temporalio.workflow._Definition.must_from_class(cls)
        if defn.name is None:
            if dynamic is not None:
                raise ValueError("More than one dynamic workflow")
            dynamic = defn
        elif defn.name in by_name:
            raise ValueError(f"More than one workflow named {defn.name}")
        else:
            by_name[defn.name] = defn
    return by_name, dynamic


class WorkflowRunner:
    """Runs the workflow tasks of one task queue for one worker."""

    def __init__(
        self,
        api: WorkerApi,
        workflows: Sequence[type],
        *,
        data_converter: temporalio.converter.DataConverter,
        failure_exception_types: Sequence[type[BaseException]],
        max_cached_workflows: int,
        local_activities: LocalActivities | None = None,
        metric_meter: temporalio.common.MetricMeter | None = None,
        metrics: WorkflowMetrics | None = None,
        interceptors: WorkflowInterceptors | None = None,
        debug_mode: bool = False,
        executor: concurrent.futures.Executor | None = None,
        encode_headers: bool = False,
    ) -> None:
        """``debug_mode`` runs workflow code without deadlock detection;
        ``executor`` runs all of it on that executor's threads;
        ``encode_headers`` runs headers through the payload codec too."""
        self.api = api
        # Both None unless the client's runtime exports metrics.
        self.metric_meter = metric_meter
        self.metrics = metrics
        self.interceptors = interceptors
        self.local_activities = local_activities or LocalActivities(None)
        # Workflow tasks held while their local activities run.
        self.holding: set[asyncio.Task[None]] = set()
        self.data_converter = data_converter
        self.codec = Codec(data_converter, headers=encode_headers)
        self.failure_exception_types = tuple(failure_exception_types)
        self.max_cached = max(0, max_cached_workflows)
        self.definitions, self.dynamic = _definitions(workflows)
        self.cache: OrderedDict[str, WorkflowInstance] = OrderedDict()
        # Workflow code runs on the event loop's thread, watched for deadlocks, or
        # (given an executor, or for a type that held the loop) on worker threads.
        self.guard: LoopGuard | None = None if debug_mode else LoopGuard()
        self.executor = None if debug_mode else executor
        self._pool: WorkflowThreads | None = None
        # Runs whose code deadlocked on a thread and still runs there: their next
        # task waits for it, as temporalio's eviction waits for such a thread.
        self.busy: dict[str, Deadlocked] = {}
        # Runs whose code deadlocked inside the transition that scheduled the task:
        # the failure their task records when it is made again the usual way.
        self.deadlocked: dict[str, Failure] = {}

    @property
    def inline(self) -> bool:
        """Whether it runs workflow code on the event loop's thread (the engine
        may then run its tasks inside a group commit or transition)."""
        return self.executor is None

    def start(self) -> None:
        """Starts watching the workflow code it runs for deadlocks."""
        if self.guard is not None:
            WATCHDOG.watch(self.guard)

    def stop(self) -> None:
        """Stops watching; worker threads end once done with what they run."""
        if self.guard is not None:
            WATCHDOG.forget(self.guard)
        if self._pool is not None:
            self._pool.shutdown()

    def _threaded(self, workflow_type: str) -> bool:
        guard = self.guard
        if guard is None:
            return False
        return self.executor is not None or workflow_type in guard.slow_types

    def _executor(self) -> concurrent.futures.Executor:
        if self.executor is not None:
            return self.executor
        if self._pool is None:
            self._pool = WorkflowThreads()
        return self._pool

    def _run_code(self, instance: WorkflowInstance, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, code of ``instance``, on this thread (watched)."""
        guard = self.guard
        if guard is None:
            return fn(*args)
        return guard.run(instance, fn, *args)

    async def _code(
        self, workflow_type: str, instance: WorkflowInstance, fn: Callable[..., T], *args: Any
    ) -> T:
        """``fn(*args)``, code of ``instance``, on a worker thread if its type
        runs there, else on this thread (watched)."""
        if self._threaded(workflow_type):
            return await run_threaded(self._executor(), instance, fn, *args)
        return self._run_code(instance, fn, *args)

    def _close(self, instance: WorkflowInstance) -> None:
        """Evicts ``instance`` (which runs its coroutines' cancellation)."""
        guard = self.guard
        if guard is None:
            instance.close()
            return
        guard.begin(instance)
        try:
            instance.close()
            guard.end()
        except BaseException as err:
            try:
                guard.failed(err)
            except Deadlocked:
                logger.error(
                    "evicting a workflow of type %s: its code did not yield within the "
                    "deadlock timeout",
                    instance.workflow_type,
                )

    def _after_deadlock(self, run_id: str, instance: WorkflowInstance, dead: Deadlocked) -> None:
        """Evicts ``instance`` once its deadlocked code has stopped running."""
        running = dead.running
        if running is None:
            self._close(instance)
            return
        self.busy[run_id] = dead

        def ended(_: asyncio.Future[Any]) -> None:
            if self.busy.get(run_id) is dead:
                del self.busy[run_id]
            self._close(instance)

        running.add_done_callback(ended)

    async def _still_busy(self, run_id: str) -> Deadlocked | None:
        """Waits (for a deadlock timeout at most) until deadlocked code of the
        run has let go of its thread; what still holds it, if any."""
        dead = self.busy.get(run_id)
        if dead is None or dead.running is None:
            return None
        done, _ = await asyncio.wait({dead.running}, timeout=DEADLOCK_TIMEOUT)
        return None if done else dead

    def _definition(self, workflow_type: str) -> temporalio.workflow._Definition | None:
        return self.definitions.get(workflow_type, self.dynamic)

    def _new_instance(
        self, exe_type: str, namespace: str, workflow_id: str, run_id: str
    ) -> WorkflowInstance:
        defn = self._definition(exe_type)
        if defn is None:
            known = ", ".join(sorted(self.definitions))
            raise _NotRegistered(
                f"Workflow class {exe_type} is not registered on this worker, "
                f"available workflows: {known}"
            )
        return WorkflowInstance(
            defn,
            namespace=namespace,
            workflow_id=workflow_id,
            run_id=run_id,
            data_converter=self.data_converter,
            failure_exception_types=self.failure_exception_types,
            metric_meter=self.metric_meter,
            interceptors=self.interceptors,
            workflow_type=exe_type,
        )

    def names(self) -> list[str]:
        """The workflow types it runs (a dynamic workflow as ``*``)."""
        return [*sorted(self.definitions), *(["*"] if self.dynamic is not None else [])]

    def evict(self, run_id: str) -> None:
        instance = self.cache.pop(run_id, None)
        if instance is not None:
            self._close(instance)

    def evict_all(self) -> None:
        """Drops every cached instance (the store did not keep what some saw)."""
        for run_id in list(self.cache):
            self.evict(run_id)

    async def process(self, ref: TaskRef) -> None:
        """Runs one workflow task to completion or failure, through the payload codec."""
        begun = self._begin(ref)
        if begun is None:
            return
        task, instance, began = begun
        try:
            events = await self.codec.decode_events(task.events)
            messages = [await self._code_message(m, encode=False) for m in task.messages]
        except Exception as err:
            self._crashed(ref, task, instance, err)
            return
        await self._finish(ref, task, instance, events, messages, began)

    async def _finish(
        self,
        ref: TaskRef,
        task: WorkflowTask,
        instance: WorkflowInstance,
        events: Sequence[HistoryEvent],
        messages: Sequence[Message],
        began: int,
    ) -> None:
        """Runs a received task's code (on a worker thread if its type runs
        there) and completes it in a later commit."""
        if self._threaded(task.workflow_type):
            outcome = await self._activate_threaded(ref, task, instance, events, messages)
        else:
            outcome = self._activate(ref, task, instance, events, messages)
        if outcome is not None and _runs_locals(outcome):
            outcome = await self._run_locals(ref, task, instance, outcome)
        if outcome is None:
            return
        plain = outcome.commands
        commands = await self.codec.encode_commands(plain)
        out = [await self._code_message(m, encode=True) for m in outcome.messages]
        # Kept before the completion commits: the run's next task may be handed
        # out right after the commit and must find the instance here.
        self._keep(ref.run_id, instance)
        api = self.api
        done = api.in_next_commit(
            lambda: api.complete_workflow_task(ref, commands, outcome.sdk_metadata, out)
        )
        done.add_done_callback(
            lambda f: self._completed(ref, task, instance, f.exception(), f, plain, began)
        )

    def process_now(self, ref: TaskRef) -> None:
        """Runs one workflow task without a codec, completing it in the caller's
        store transaction (the engine's group commit runs it this way)."""
        begun = self._begin(ref)
        if begun is None:
            return
        task, instance, began = begun
        if self._threaded(task.workflow_type):
            # Its code runs on a worker thread; the task completes in a later commit.
            self._hold_on(self._finish(ref, task, instance, task.events, task.messages, began))
            return
        outcome = self._activate(ref, task, instance, task.events, task.messages)
        if outcome is None:
            return
        if _runs_locals(outcome):
            # The task completes once its local activities are resolved, in a later commit.
            self._hold_on(self._hold(ref, task, instance, outcome, began))
            return
        self._keep(ref.run_id, instance)
        try:
            kept = self.api.complete_workflow_task(
                ref, outcome.commands, outcome.sdk_metadata, outcome.messages
            )
        except EngineError as err:
            self._completed(ref, task, instance, err, None, (), 0)
            return
        self._completed(ref, task, instance, None, kept, outcome.commands, began)

    def _hold_on(self, work: Coroutine[Any, Any, None]) -> None:
        held = asyncio.get_running_loop().create_task(work)
        self.holding.add(held)
        held.add_done_callback(self.holding.discard)

    def process_in(self, tx: Transition, ref: TaskRef) -> Callable[[], None] | None:
        """Runs one workflow task of a cached instance inside the transition that
        scheduled it; None (having done nothing) if the run is not cached.
        Returns what undoes it in the worker, should the transition not commit.

        Raises if the task fails in any way: the instance is evicted, and the
        engine then makes the transition without the task, which takes the
        usual way (a replay that meets the same failure and records it).
        """
        run_id = ref.run_id
        instance = self.cache.get(run_id)
        if instance is None:
            return None
        guard = self.guard
        if guard is not None and guard.slow_types and instance.workflow_type in guard.slow_types:
            # Its code runs on worker threads: the usual way.
            return None
        api = self.api
        task = api.receive_workflow_task(ref, instance.last_event_id, tx)
        if task is None:
            return None
        del self.cache[run_id]
        metrics = self.metrics
        began = time.perf_counter_ns() if metrics is not None else 0
        try:
            if guard is None:
                outcome = instance.activate(task.events, task.messages)
            else:
                guard.begin(instance)
                try:
                    outcome = instance.activate(task.events, task.messages)
                    guard.end()
                except BaseException as raised:
                    guard.failed(raised)
            if outcome.failure is not None:
                raise _TaskFailed
            if _runs_locals(outcome):
                # Local activities run outside any transition: the usual way.
                raise _TaskFailed
            if not api.complete_workflow_task(
                ref, outcome.commands, outcome.sdk_metadata, outcome.messages, tx
            ):
                # Refused: made again the usual way, which records why.
                raise _TaskFailed
        except BaseException as err:
            if isinstance(err, Deadlocked):
                # Made again the usual way, the task records this without running again.
                self.deadlocked[run_id] = deadlock_failure(self.data_converter, err.stack)
            self._close(instance)
            raise
        if metrics is not None:
            metrics.received(task, True)
            metrics.completed(task, outcome.commands, began, instance.start_time, len(self.cache))
        if tx.state.running:
            self._keep(run_id, instance)
        else:
            self._close(instance)
        # The instance has seen events the store will not keep.
        return lambda: self.evict(run_id)

    async def _hold(
        self,
        ref: TaskRef,
        task: WorkflowTask,
        instance: WorkflowInstance,
        outcome: WorkflowTaskOutcome,
        began: int,
    ) -> None:
        final = await self._run_locals(ref, task, instance, outcome)
        if final is None:
            return
        self._keep(ref.run_id, instance)
        api = self.api
        done = api.in_next_commit(
            lambda: api.complete_workflow_task(
                ref, final.commands, final.sdk_metadata, final.messages
            )
        )
        done.add_done_callback(
            lambda f: self._completed(ref, task, instance, f.exception(), f, final.commands, began)
        )

    async def _run_locals(
        self,
        ref: TaskRef,
        task: WorkflowTask,
        instance: WorkflowInstance,
        outcome: WorkflowTaskOutcome,
    ) -> WorkflowTaskOutcome | None:
        """Run the task's local activities, feeding their results back until it can
        complete; None if the task failed meanwhile (recorded as failed)."""
        run = RunInfo(
            task.namespace, task.workflow_id, task.run_id, task.workflow_type, task.task_queue
        )
        local = self.local_activities
        running: dict[int, asyncio.Task[LocalActivityResult]] = {}
        loop = asyncio.get_running_loop()
        # sdk-core completes ("heartbeats") a task held this long and forces a new
        # one; ablauf does not yet, so the task fails instead of outliving its lease.
        deadline = loop.time() + instance.task_timeout.total_seconds() * _HEARTBEAT_FRACTION
        try:
            while True:
                for request in outcome.local_activities:
                    running[request.seq] = local.start(request, run)
                for seq in outcome.local_cancels:
                    local.cancel(run.run_id, seq)
                if not outcome.waiting_for_local_activities:
                    # Abandoned activities still run; nobody reads their results.
                    return outcome
                if not running:
                    raise RuntimeError("waiting for local activities, but none runs")
                done, _ = await asyncio.wait(
                    running.values(),
                    timeout=max(deadline - loop.time(), 0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    for seq in running:
                        local.cancel(run.run_id, seq)
                    self._close(instance)
                    seconds = instance.task_timeout.total_seconds()
                    message = (
                        "Local activities running longer than 80% of the workflow task "
                        f"timeout ({seconds:g} s) need workflow task heartbeating, which "
                        "ablauf does not support yet"
                    )
                    failure = _failure(message, "UnsupportedFeatureError")
                    self._fail(ref, task, failure, _UNHANDLED)
                    return None
                results = []
                for seq, future in list(running.items()):
                    if future in done:
                        del running[seq]
                        results.append(future.result())
                outcome = await self._code(
                    task.workflow_type, instance, instance.resolve_local_activities, results
                )
                if outcome.failure is not None:
                    self._close(instance)
                    cause = _NONDETERMINISM if outcome.nondeterminism else _UNHANDLED
                    self._fail(ref, task, outcome.failure, cause)
                    return None
        except Deadlocked as dead:
            for seq in running:
                local.cancel(run.run_id, seq)
            self._deadlocked(ref, task, instance, dead)
            return None
        except Exception as err:
            for future in running.values():
                future.cancel()
            self._crashed(ref, task, instance, err)
            return None

    def _begin(self, ref: TaskRef) -> tuple[WorkflowTask, WorkflowInstance, int] | None:
        """The task and the instance to run it; with metrics, also when it began."""
        instance = self.cache.pop(ref.run_id, None)
        known = instance.last_event_id if instance is not None else 0
        task = self.api.receive_workflow_task(ref, known)
        if task is None:
            if instance is not None:
                self._close(instance)
            return None
        if self.deadlocked:
            failure = self.deadlocked.pop(ref.run_id, None)
            if failure is not None:
                if instance is not None:
                    self._close(instance)
                self._fail(ref, task, failure, _UNHANDLED)
                return None
        metrics = self.metrics
        began = metrics.received(task, instance is not None) if metrics is not None else 0
        if instance is None:
            try:
                instance = self._new_instance(
                    task.workflow_type, task.namespace, task.workflow_id, task.run_id
                )
            except _NotRegistered as err:
                self._fail(ref, task, _failure(str(err), "NotFoundError"), _UNHANDLED)
                return None
            except Exception as crash:
                self._crashed(ref, task, None, crash)
                return None
        return task, instance, began

    def _activate(
        self,
        ref: TaskRef,
        task: WorkflowTask,
        instance: WorkflowInstance,
        events: Sequence[HistoryEvent],
        messages: Sequence[Message],
    ) -> WorkflowTaskOutcome | None:
        guard = self.guard
        try:
            if guard is None:
                outcome = instance.activate(events, messages)
            else:
                guard.begin(instance)
                try:
                    outcome = instance.activate(events, messages)
                    guard.end()
                except BaseException as raised:
                    guard.failed(raised)
        except Deadlocked as dead:
            self._deadlocked(ref, task, instance, dead)
            return None
        except Exception as err:
            self._crashed(ref, task, instance, err)
            return None
        return self._checked(ref, task, instance, outcome)

    async def _activate_threaded(
        self,
        ref: TaskRef,
        task: WorkflowTask,
        instance: WorkflowInstance,
        events: Sequence[HistoryEvent],
        messages: Sequence[Message],
    ) -> WorkflowTaskOutcome | None:
        still = await self._still_busy(ref.run_id)
        if still is not None:
            # Not another thread for the run's code while it blocks one for good.
            self._close(instance)
            self._fail(
                ref,
                task,
                deadlock_failure(self.data_converter, still.stack),
                _UNHANDLED,
            )
            return None
        try:
            outcome = await run_threaded(
                self._executor(), instance, instance.activate, events, messages
            )
        except Deadlocked as dead:
            self._deadlocked(ref, task, instance, dead)
            return None
        except Exception as err:
            self._crashed(ref, task, instance, err)
            return None
        return self._checked(ref, task, instance, outcome)

    def _checked(
        self,
        ref: TaskRef,
        task: WorkflowTask,
        instance: WorkflowInstance,
        outcome: WorkflowTaskOutcome,
    ) -> WorkflowTaskOutcome | None:
        if outcome.failure is not None:
            self._close(instance)
            cause = _NONDETERMINISM if outcome.nondeterminism else _UNHANDLED
            self._fail(ref, task, outcome.failure, cause)
            return None
        return outcome

    def _deadlocked(
        self, ref: TaskRef, task: WorkflowTask, instance: WorkflowInstance, dead: Deadlocked
    ) -> None:
        self._after_deadlock(ref.run_id, instance, dead)
        self._fail(ref, task, deadlock_failure(self.data_converter, dead.stack), _UNHANDLED)

    def _crashed(
        self,
        ref: TaskRef,
        task: WorkflowTask,
        instance: WorkflowInstance | None,
        err: Exception,
    ) -> None:
        logger.exception("workflow task of %s failed inside ablauf", task.workflow_id)
        if instance is not None:
            self._close(instance)
        self._fail(
            ref,
            task,
            _failure(f"{type(err).__name__}: {err}", type(err).__name__),
            _UNHANDLED,
        )

    def _keep(self, run_id: str, instance: WorkflowInstance) -> None:
        if not self.max_cached:
            return
        self.cache[run_id] = instance
        while len(self.cache) > self.max_cached:
            _, old = self.cache.popitem(last=False)
            self._close(old)

    def _completed(
        self,
        ref: TaskRef,
        task: WorkflowTask,
        instance: WorkflowInstance,
        err: BaseException | None,
        kept: asyncio.Future[bool] | bool | None,
        commands: Sequence[Command],
        began: int,
    ) -> None:
        if isinstance(kept, asyncio.Future):
            kept = kept.result() if err is None else False
        if began and err is None and kept:
            metrics = self.metrics
            assert metrics is not None
            metrics.completed(task, commands, began, instance.start_time, len(self.cache))
        if err is None and kept and self.api.is_running(ref.run_id):
            if not self.max_cached:
                self._close(instance)
            return
        if self.cache.get(ref.run_id) is instance:
            del self.cache[ref.run_id]
        self._close(instance)
        if err is None or isinstance(err, EngineError):
            # Refused commands the engine recorded itself; a run that is gone
            # or was terminated at its history limit has nothing left to record.
            return
        logger.error("completing a workflow task of %s failed", task.workflow_id, exc_info=err)

    async def _code_message(self, message: Message, *, encode: bool) -> Message:
        """A protocol message with the payloads in its body run through the codec."""
        if self.codec.codec is None:
            return message
        for kind in (Request, Acceptance, Rejection, Response):
            if message.body.Is(kind.DESCRIPTOR):
                body = kind()
                message.body.Unpack(body)
                if encode:
                    body = await self.codec.encode_message(body)
                else:
                    body = await self.codec.decode_message(body)
                copy = Message()
                copy.CopyFrom(message)
                copy.body.Pack(body)
                return copy
        return message

    def _fail(self, ref: TaskRef, task: WorkflowTask, failure: Failure, cause: int) -> None:
        if ref.attempt == 1:
            logger.warning(
                "workflow task of %s failed (will retry): %s", task.workflow_id, failure.message
            )
        if self.metrics is not None:
            self.metrics.failed(task.workflow_type, cause)
        self.api.fail_workflow_task(ref, failure, cause)

    async def query(self, exe: ExecutionRecord, query: WorkflowQuery) -> Payloads:
        """Answers a query from the cached instance, or from a replay of the history."""
        args = list(query.query_args.payloads)
        args = await self.codec.decode(args)
        run_id = exe.run_id
        workflow_type = exe.workflow_type
        threaded = self._threaded(workflow_type)
        instance = self.cache.get(run_id)
        fresh = instance is None
        gone = False  # evicted once its deadlocked code ends
        if threaded and instance is not None:
            # Its code runs on a thread meanwhile: no task of the run may use it.
            del self.cache[run_id]
        try:
            if instance is None:
                try:
                    instance = self._new_instance(
                        workflow_type, exe.namespace, exe.workflow_id, run_id
                    )
                except _NotRegistered as err:
                    raise QueryFailedError(str(err)) from None
                events = await self.codec.decode_events(self.api.history(run_id))
                outcome = await self._code(
                    workflow_type, instance, instance.activate, _completed_tasks_only(events)
                )
                if outcome.failure is not None:
                    raise QueryFailedError(outcome.failure.message)
            try:
                result = await self._code(
                    workflow_type,
                    instance,
                    instance.query,
                    query.query_type,
                    args,
                    query.header.fields,
                )
            except QueryFailed as failed:
                raise QueryFailedError(str(failed)) from None
        except Deadlocked as dead:
            if instance is not None:
                self._after_deadlock(run_id, instance, dead)
            gone = True
            raise QueryFailedError(str(dead)) from None
        finally:
            if instance is not None and not gone:
                if fresh:
                    self._close(instance)
                elif threaded:
                    if run_id in self.cache:
                        # A task of the run replayed it meanwhile.
                        self._close(instance)
                    else:
                        self._keep(run_id, instance)
        return Payloads(payloads=await self.codec.encode([result]))


def _completed_tasks_only(events: list[Any]) -> list[Any]:
    # A query sees the state after the last completed workflow task, so the
    # history is cut after the events that task produced.
    from temporalio.api.enums.v1 import EventType

    last_complete = 0
    for i, event in enumerate(events):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last_complete = i
    end = last_complete + 1
    while end < len(events) and events[end].event_type in COMMAND_EVENT_TYPES:
        end += 1
    return events[:end] if last_complete else events[:1]


def _runs_locals(outcome: WorkflowTaskOutcome) -> bool:
    """Whether the task has local activities to run before it completes."""
    return outcome.waiting_for_local_activities or bool(outcome.local_activities)


class _TaskFailed(Exception):
    """The workflow task failed (recorded when it is run again the usual way)."""


class _NotRegistered(Exception):
    pass


def _failure(message: str, type_name: str) -> Failure:
    return Failure(
        message=message,
        source="ablauf",
        application_failure_info=ApplicationFailureInfo(type=type_name),
    )
