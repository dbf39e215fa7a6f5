"""ablauf's ``Worker``, shaped like ``temporalio.worker.Worker``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gc
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import temporalio.client
import temporalio.common
from temporalio.api.common.v1 import Payload, Payloads

from ablauf.engine import COMPILED
from ablauf.engine.matching import TaskRef
from ablauf.engine.worker_api import ActivityWorker, Registration, WorkerApi, WorkflowWorker
from ablauf.errors import StoreError
from ablauf.history.tasks import (
    ActivityCompleted,
    ActivityCompletesAsync,
    ActivityFailed,
    ActivityOutcome,
    ActivityTask,
)
from ablauf.store.base import ACTIVITY_TASK
from ablauf.temporal import server_worker
from ablauf.worker.activities import ActivityRunner
from ablauf.worker.codec import Codec
from ablauf.worker.local_activities import LocalActivities
from ablauf.worker.options import embedded_options
from ablauf.worker.plugins import configure, run_with_plugins, worker_interceptors, worker_plugins
from ablauf.worker.sandbox import sandbox_for
from ablauf.worker.workflows import WorkflowRunner

if TYPE_CHECKING:
    import temporalio.worker

    from ablauf.replay.runtime.intercept import WorkflowInterceptors
    from ablauf.worker.metrics import ActivityMetrics, LocalActivityMetrics, WorkflowMetrics

__all__ = ["Worker"]

logger = logging.getLogger(__name__)


def _raise_gc_threshold() -> None:
    # Each workflow task and activity allocates hundreds of objects that
    # reference counting frees (closed runs leave no cycles), yet every
    # collection rescans the live workflows: at Python's default threshold
    # (700) the collector costs a tenth of the throughput with many workflows
    # in flight, at 2,000 still 5 %. At 10,000 the cyclic garbage of a round is
    # too small to show in peak memory. A threshold the application set is
    # left alone.
    threshold0, threshold1, threshold2 = gc.get_threshold()
    if threshold0 == _PYTHON_GC_THRESHOLD0:
        gc.set_threshold(_GC_THRESHOLD0, threshold1, threshold2)


_PYTHON_GC_THRESHOLD0 = 700
_GC_THRESHOLD0 = 10_000


class Worker:
    """Runs workflows and activities of one task queue against an ablauf client.

    Starting the embedded worker raises the garbage collector's first
    threshold from Python's default 700 to 10,000 (unless the application
    changed it): cyclic garbage is collected in larger, rarer rounds.
    """

    def __init__(
        self,
        client: temporalio.client.Client,
        *,
        task_queue: str,
        activities: Sequence[Callable[..., Any]] = (),
        workflows: Sequence[type] = (),
        activity_executor: concurrent.futures.Executor | None = None,
        max_cached_workflows: int = 1000,
        max_concurrent_activities: int | None = None,
        workflow_failure_exception_types: Sequence[type[BaseException]] = (),
        graceful_shutdown_timeout: timedelta = timedelta(),
        **options: Any,
    ) -> None:
        """Creates a worker; it polls once :meth:`run` runs or it is entered.

        Args:
            client: An ``ablauf.Client``; for a Temporal server target the
                official ``temporalio.worker.Worker`` runs instead, with these arguments.
            task_queue: The task queue to poll.
            activities: Activity callables (``@activity.defn``).
            workflows: Workflow classes (``@workflow.defn``).
            activity_executor: Executor for non-async activities (a ThreadPoolExecutor).
            max_cached_workflows: Size of the sticky cache of live workflow instances.
            max_concurrent_activities: Activity attempts that may run at once
                (embedded: 1,000 unless given, or as the ``tuner`` option says).
            workflow_failure_exception_types: Exception types that fail the workflow
                instead of the workflow task, as in temporalio.
            graceful_shutdown_timeout: How long running activities may finish on shutdown.
            options: Other ``temporalio.worker.Worker`` options, passed as given
                to temporalio's worker on a server target. The embedded worker
                honours ``tuner`` (its activity slots), the heartbeat throttle
                intervals, ``on_fatal_error``, ``no_remote_activities``,
                ``debug_mode`` (no deadlock detection), ``workflow_task_executor``
                (all workflow code on its threads) and ``workflow_runner``
                (workflow code is sandboxed as temporalio's
                ``SandboxedWorkflowRunner`` does unless it is
                ``UnsandboxedWorkflowRunner()``, see :mod:`ablauf.worker.sandbox`);
                those that tune polling a server or how temporalio runs workflow
                code change nothing (see :data:`ablauf.worker.options.WITHOUT_MEANING`);
                ``interceptors`` and ``plugins`` work as in temporalio (with
                the client's worker interceptors and plugins first); Nexus is refused.
        """
        api = WorkerApi.of(client)
        self._server: temporalio.worker.Worker | None = None
        # As temporalio's worker has them, on either target.
        self.client = client
        self.task_queue = task_queue
        if api is None:
            # A Temporal server target: the official worker runs the same code.
            self._server = server_worker(
                client,
                task_queue=task_queue,
                activities=activities,
                workflows=workflows,
                options={
                    "activity_executor": activity_executor,
                    "max_cached_workflows": max_cached_workflows,
                    "max_concurrent_activities": max_concurrent_activities,
                    "workflow_failure_exception_types": workflow_failure_exception_types,
                    "graceful_shutdown_timeout": graceful_shutdown_timeout,
                    **options,
                },
            )
            return
        self._plugins = worker_plugins(client, options.pop("plugins", None) or ())
        if self._plugins:
            config = configure(
                self._plugins,
                client,
                {
                    "task_queue": task_queue,
                    "activities": activities,
                    "workflows": workflows,
                    "activity_executor": activity_executor,
                    "max_cached_workflows": max_cached_workflows,
                    "max_concurrent_activities": max_concurrent_activities,
                    "workflow_failure_exception_types": workflow_failure_exception_types,
                    "graceful_shutdown_timeout": graceful_shutdown_timeout,
                    **options,
                },
            )
            # The client stays the one given, as in temporalio.
            config.pop("client", None)
            config.pop("plugins", None)
            task_queue = config.pop("task_queue")
            activities = config.pop("activities", None) or ()
            workflows = config.pop("workflows", None) or ()
            activity_executor = config.pop("activity_executor", None)
            max_cached_workflows = config.pop("max_cached_workflows", 1000)
            max_concurrent_activities = config.pop("max_concurrent_activities", None)
            workflow_failure_exception_types = (
                config.pop("workflow_failure_exception_types", None) or ()
            )
            graceful_shutdown_timeout = config.pop("graceful_shutdown_timeout", None) or timedelta()
            options = config
        interceptors = worker_interceptors(client, options.pop("interceptors", None) or ())
        self._plugin_shutdown_timeout: timedelta | None = options.get(
            "plugin_shutdown_timeout", timedelta(seconds=60)
        )
        self._options = embedded_options(max_concurrent_activities, options)
        if not activities and not workflows:
            raise ValueError("At least one activity, Nexus service, or workflow must be specified")
        if not task_queue:
            raise ValueError("task_queue is required")
        self.api = api
        # As temporalio's worker: headers through the codec only if the client says so.
        encode_headers = (
            client.config().get("header_codec_behavior")
            == temporalio.client.HeaderCodecBehavior.CODEC
        )
        self._codec = Codec(client.data_converter, headers=encode_headers)
        # The client's runtime meter; None unless it exports metrics: then
        # nothing is measured, and the metrics module is not even imported.
        meter: temporalio.common.MetricMeter | None = getattr(
            client.service_client, "metric_meter", None
        )
        self._metric_meter = meter
        workflow_metrics: WorkflowMetrics | None = None
        local_metrics: LocalActivityMetrics | None = None
        self._activity_metrics: ActivityMetrics | None = None
        if meter is not None:
            from ablauf.worker import metrics

            namespace = client.namespace
            workflow_metrics = metrics.WorkflowMetrics(meter, namespace, task_queue)
            local_metrics = metrics.LocalActivityMetrics(meter, namespace, task_queue)
            if activities:
                self._activity_metrics = metrics.ActivityMetrics(
                    meter, namespace, task_queue, self._options.activity_slots
                )
        if workflows:
            # As temporalio: debug mode (which also turns off its deadlock
            # detection) lets breakpoint() through the sandbox.
            debug = bool(options.get("debug_mode") or os.environ.get("TEMPORAL_DEBUG"))
            sandbox = sandbox_for(options.get("workflow_runner"), debug=debug)
            if sandbox is not None:
                workflows = sandbox.workflows(workflows)
                workflow_failure_exception_types = sandbox.failure_types(
                    workflow_failure_exception_types
                )
        self._activities = (
            ActivityRunner(
                activities,
                data_converter=client.data_converter,
                executor=activity_executor,
                client=client,
                metric_meter=meter or temporalio.common.MetricMeter.noop,
                interceptors=interceptors,
            )
            if activities
            else None
        )
        self._workflows = (
            WorkflowRunner(
                api,
                workflows,
                data_converter=client.data_converter,
                failure_exception_types=workflow_failure_exception_types,
                max_cached_workflows=max_cached_workflows,
                # Local activities run through this worker's activities.
                local_activities=LocalActivities(self._activities, local_metrics),
                metric_meter=meter,
                metrics=workflow_metrics,
                interceptors=_workflow_interceptors(interceptors),
                debug_mode=self._options.debug_mode,
                executor=self._options.workflow_task_executor,
                encode_headers=encode_headers,
            )
            if workflows
            else None
        )
        self._free_slots = self._options.activity_slots
        self._graceful = graceful_shutdown_timeout
        self._running: set[asyncio.Task[None]] = set()
        self._workflow_tasks: set[asyncio.Future[None]] = set()
        self._registration: Registration | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._started = False
        self._running_event = asyncio.Event()
        self._plugin_run: asyncio.Task[None] | None = None

    # lifecycle

    async def __aenter__(self) -> Self:
        if self._server is not None:
            await self._server.__aenter__()
            return self
        if not self._plugins:
            self._start()
            return self
        if self._plugin_run is not None:
            raise RuntimeError("Already started")
        # As temporalio: the block runs while run() runs inside the plugins.
        run = self._plugin_run = asyncio.get_running_loop().create_task(self.run())
        running = asyncio.ensure_future(self._running_event.wait())
        try:
            await asyncio.wait({run, running}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            running.cancel()
        if not self._started:
            await run
            raise RuntimeError("A plugin's run_worker returned without running the worker")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            await self._server.__aexit__(exc_type, exc, tb)
            return
        await self.shutdown()
        run = self._plugin_run
        if run is not None:
            # Plugins may run code after the worker stopped: waited for, as temporalio does.
            timeout = self._plugin_shutdown_timeout
            await asyncio.wait([run], timeout=timeout.total_seconds() if timeout else None)
            if not run.done():
                run.cancel()
            elif not run.cancelled() and run.exception() is not None:
                logger.error("running the worker's plugins failed", exc_info=run.exception())

    async def run(self) -> None:
        """Polls until :meth:`shutdown` is called.

        Raises:
            StoreLostError: The store's file was removed or replaced meanwhile.
        """
        if self._server is not None:
            await self._server.run()
            return
        if self._plugins:
            await run_with_plugins(self._plugins, self, Worker._run)
        else:
            await self._run()

    async def _run(self) -> None:
        self._start()
        await self._stopped.wait()
        failure = self.api.failure
        if failure is not None:
            on_fatal_error = self._options.on_fatal_error
            if on_fatal_error is not None:
                # As temporalio's worker: told before it ends; what it raises is logged.
                try:
                    await on_fatal_error(failure)
                except Exception:
                    logger.exception("on_fatal_error raised")
            raise failure

    def _engine_failed(self, err: BaseException) -> None:
        self._stopped.set()

    def _start(self) -> None:
        if self._started:
            raise RuntimeError("Already started")
        self._started = True
        self._running_event.set()
        _raise_gc_threshold()
        if self._metric_meter is not None:
            from ablauf.worker.metrics import worker_started

            worker_started(self._metric_meter, self.client.namespace, self.task_queue)
        api = self.api
        workflows = self._workflows
        inline = workflows is not None and workflows.codec.codec is None and workflows.inline
        # A task run inside the transition that scheduled it is run again the
        # usual way if it cannot complete there (it starts local activities, say):
        # interceptors would see its calls twice, so theirs never run there.
        fused = inline and workflows is not None and workflows.interceptors is None
        if workflows is not None:
            workflows.start()
        self._registration = api.register(
            self.task_queue,
            workflows=WorkflowWorker(
                take=self._take_workflow_task,
                query=workflows.query,
                evict_all=workflows.evict_all,
                run_now=workflows.process_now if inline else None,
                run_in=workflows.process_in if fused else None,
            )
            if workflows is not None
            else None,
            activities=ActivityWorker(take=self._take_activity, cancel=self._activities.cancel)
            if self._activities is not None and self._options.remote_activities
            else None,
            on_lost=self._engine_failed,
        )
        logger.info(
            "ablauf worker started: task queue %r of namespace %r on store %s; workflows: %s; "
            "activities: %s; %d run(s) of the task queue open; ablauf %s, %s",
            self.task_queue,
            self.client.namespace,
            api.store_path(),
            ", ".join(self._workflows.names()) if self._workflows is not None else "none",
            ", ".join(self._activities.names()) if self._activities is not None else "none",
            api.open_runs(self.client.namespace, self.task_queue),
            _version(),
            "compiled" if COMPILED else "pure Python",
        )

    async def shutdown(self) -> None:
        """Stops polling, lets running activities finish, and frees this worker's queues."""
        if self._server is not None:
            await self._server.shutdown()
            return
        if not self._started or self._stopping:
            return
        self._stopping = True
        reg = self._registration
        assert reg is not None
        try:
            self.api.stop_receiving(reg)
            await asyncio.gather(*self._workflow_tasks, return_exceptions=True)
            if self._workflows is not None:
                # Tasks held for their local activities complete before the activities stop.
                await asyncio.gather(*self._workflows.holding, return_exceptions=True)
            if self._activities is not None:
                timeout = self._graceful if self._graceful > timedelta() else None
                await self._activities.shutdown(
                    graceful_timeout=timeout or timedelta(seconds=0.001)
                )
                await asyncio.gather(*self._running, return_exceptions=True)
            # Outcomes are recorded before the leases are released.
            await self.api.unregister(reg)
        finally:
            if self._workflows is not None:
                self._workflows.stop()
            self._stopped.set()
            logger.info("ablauf worker stopped: task queue %r", self.task_queue)

    # workflow tasks

    def _take_workflow_task(self, ref: TaskRef) -> bool:
        runner = self._workflows
        assert runner is not None
        task: asyncio.Future[None]
        if runner.codec.codec is None and runner.inline:
            # Joins the next group commit with whatever else arrives meanwhile.
            task = self.api.in_next_commit(lambda: runner.process_now(ref))
        else:
            task = asyncio.get_running_loop().create_task(self._process_workflow_task(ref))
        self._workflow_tasks.add(task)
        task.add_done_callback(self._workflow_task_done)
        return True

    def _workflow_task_done(self, task: asyncio.Future[None]) -> None:
        self._workflow_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("processing a workflow task failed", exc_info=task.exception())

    async def _process_workflow_task(self, ref: TaskRef) -> None:
        runner = self._workflows
        assert runner is not None
        try:
            await runner.process(ref)
        except Exception:
            logger.exception("processing a workflow task failed")
            runner.evict(ref.run_id)

    # activities

    def _take_activity(self, ref: TaskRef) -> bool:
        if self._free_slots <= 0:
            return False
        self._free_slots -= 1
        if self._activity_metrics is not None:
            self._activity_metrics.free(self._free_slots)
        loop = asyncio.get_running_loop()
        self._running.add(loop.create_task(self._attempt(ref, loop)))
        return True

    async def _attempt(self, ref: TaskRef, loop: asyncio.AbstractEventLoop) -> None:
        # The task frees its slot itself: a done callback would cost a loop turn
        # per attempt. (Nothing cancels these tasks before they start.)
        api = self.api
        runner = self._activities
        assert runner is not None
        metrics = self._activity_metrics
        try:
            task = api.receive_activity_task(ref)
            if task is None:
                return
            began = metrics.received_task(task) if metrics is not None else 0
            if self._codec.codec is not None:
                task = await self._decode(task)
            beats: list[_Heartbeats] = []
            timeout = task.heartbeat_timeout

            def heartbeat(details: Sequence[Payload]) -> None:
                # Made at the first heartbeat: most attempts never send one.
                if not beats:
                    beats.append(_Heartbeats(self, ref, timeout))
                beats[0].record(details)

            outcome = await runner.run(task, heartbeat)
            if metrics is not None:
                metrics.done(task, outcome, began)
            if isinstance(outcome, ActivityCompletesAsync):
                # A client completes it; until then its timeouts run.
                return
            if self._codec.codec is not None:
                outcome = await self._encode_outcome(outcome)
            # Without unsent details (the common case) there is nothing to await.
            unsent = beats[0] if beats and beats[0].latest is not None else None
            details = await unsent.pending() if unsent is not None else None
            # Results of one run that arrive together are applied in one transition.
            # The attempt is over without waiting for that commit; shutdown flushes.
            api.report_activity_outcome(ref, outcome, details, _log_record_failure)
        except Exception:
            logger.exception("activity attempt crashed in ablauf")
        finally:
            self._running.discard(asyncio.current_task(loop))
            self._free_slots += 1
            if metrics is not None:
                metrics.free(self._free_slots)
            if self._registration is not None and not self._stopping:
                queued = self.api.take_queued(self._registration, ACTIVITY_TASK)
                if queued is not None:
                    self._take_activity(queued)

    async def _decode(self, task: ActivityTask) -> ActivityTask:
        codec = self._codec
        names = list(task.headers) if codec.headers else []
        decoded = await codec.decode(
            [*task.input, *task.heartbeat_details, *(task.headers[n] for n in names)]
        )
        count, details = len(task.input), len(task.heartbeat_details)
        return dataclasses.replace(
            task,
            input=decoded[:count],
            heartbeat_details=decoded[count : count + details],
            headers={**task.headers, **dict(zip(names, decoded[count + details :], strict=True))},
        )

    async def _encode_outcome(self, outcome: ActivityOutcome) -> ActivityOutcome:
        if isinstance(outcome, ActivityCompleted) and outcome.result is not None:
            return ActivityCompleted((await self._codec.encode([outcome.result]))[0])
        if isinstance(outcome, ActivityFailed):
            return ActivityFailed(await self._codec.encode_message(outcome.failure))
        return outcome


def _workflow_interceptors(interceptors: Sequence[Any]) -> WorkflowInterceptors | None:
    if not interceptors:
        return None
    # Imported only here: it imports temporalio's worker package.
    from ablauf.replay.runtime.intercept import WorkflowInterceptors

    return WorkflowInterceptors.of(interceptors)


def _version() -> str:
    # Imported on first use: reading package metadata imports zipfile, email and csv.
    from importlib.metadata import version

    return version("ablauf")


def _log_record_failure(error: BaseException) -> None:
    if isinstance(error, StoreError):
        # The attempt times out and runs again; the store says what is wrong.
        logger.error("recording an activity outcome failed: %s", error)
    else:
        logger.error("recording an activity outcome failed", exc_info=error)


class _Heartbeats:
    """Throttles one attempt's heartbeats to the store, as Temporal's SDK does."""

    def __init__(self, worker: Worker, ref: TaskRef, timeout: timedelta | None) -> None:
        self.worker = worker
        self.ref = ref
        options = worker._options
        # As temporalio's worker: 80 % of the heartbeat timeout, at most the maximum.
        self.interval = min(
            timeout.total_seconds() * 0.8 if timeout else options.heartbeat_default,
            options.heartbeat_max,
        )
        self.last_sent = 0.0
        self.latest: list[Payload] | None = None
        self.flush_handle: asyncio.TimerHandle | None = None
        self.sending: set[asyncio.Task[None]] = set()

    def record(self, details: Sequence[Payload]) -> None:
        self.latest = list(details)
        now = time.monotonic()
        if now - self.last_sent >= self.interval:
            self._send()
        elif self.flush_handle is None:
            loop = asyncio.get_running_loop()
            self.flush_handle = loop.call_later(self.last_sent + self.interval - now, self._send)

    def _send(self) -> None:
        self.flush_handle = None
        if self.latest is None:
            return
        details, self.latest = self.latest, None
        self.last_sent = time.monotonic()
        if self.worker._codec.codec is None:
            self._store(details)
        else:
            task = asyncio.get_running_loop().create_task(self._encode_and_store(details))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def _encode_and_store(self, details: list[Payload]) -> None:
        self._store(await self.worker._codec.encode(details))

    def _store(self, encoded: list[Payload]) -> None:
        worker = self.worker
        cancel = worker.api.heartbeat(self.ref, Payloads(payloads=encoded))
        if cancel and worker._activities is not None:
            worker._activities.cancel(self.ref.token(), "CANCELLED")

    async def pending(self) -> Payloads | None:
        """Details not yet stored; they go with the attempt's outcome."""
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        if self.latest is None:
            return None
        encoded = await self.worker._codec.encode(self.latest)
        return Payloads(payloads=encoded)
