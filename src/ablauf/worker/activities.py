"""The activity runner: one attempt of an activity, with temporalio's activity context.

The engine leases an :class:`~ablauf.history.tasks.ActivityTask` to the worker, the
worker calls :meth:`ActivityRunner.execute`, and the runner answers with an
:data:`~ablauf.history.tasks.ActivityOutcome`. Timeouts and retries are the engine's:
when a timeout fires it calls :meth:`ActivityRunner.cancel` with ``"TIMED_OUT"``.

Semantics follow the SDK's activity worker (``temporalio/worker/_activity.py``): the
same ``temporalio.activity`` context, argument decoding with type hints, exception to
``Failure`` conversion, cancellation raised into async tasks and (unless the activity
opted out) into the threads of sync activities. Payloads are already codec-decoded on
the way in and are codec-encoded by the caller on the way out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import ctypes
import inspect
import logging
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import temporalio.activity
import temporalio.common
import temporalio.converter
import temporalio.exceptions
from temporalio.activity import ActivityCancellationDetails
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.common import RetryPolicy

from ablauf.history.tasks import (
    ActivityCanceled,
    ActivityCompleted,
    ActivityCompletesAsync,
    ActivityFailed,
    ActivityOutcome,
    ActivityTask,
)
from ablauf.payloads import from_payloads, to_payloads
from ablauf.serialization import ignores_context, with_context

__all__ = ["ActivityRunner", "Attempt", "cancellation_details_for", "worker_shutdown_failure"]

logger = logging.getLogger(__name__)

HeartbeatCallback = Callable[[Sequence[Payload]], None]

_CANCEL_ERRORS = (asyncio.CancelledError, temporalio.exceptions.CancelledError)

# How often a shutdown that waits for activities ignoring their cancellation says so.
SHUTDOWN_WAIT_LOG_INTERVAL = 10.0


def worker_shutdown_failure() -> Failure:
    """What an attempt cancelled by worker shutdown fails with (sdk-core reports the
    cancel as this failure, so the attempt is retried instead of waiting for a timeout)."""
    return Failure(
        message="Worker is shutting down and this activity did not complete in time",
        application_failure_info=ApplicationFailureInfo(type="WorkerShutdown"),
    )


def cancellation_details_for(reason: str) -> ActivityCancellationDetails:
    """Map a cancel reason to the details ``activity.cancellation_details()`` shows.

    Reasons are Core's ``ActivityCancelReason`` names: ``CANCELLED``, ``TIMED_OUT``,
    ``NOT_FOUND``, ``WORKER_SHUTDOWN``, ``PAUSED``, ``RESET`` (case and separators are
    ignored; ``CANCELED``, ``CANCEL_REQUESTED`` and any ``*_TIMEOUT`` are accepted too).
    An unknown reason counts as a cancel request, the common case.
    """
    key = reason.strip().upper().replace("-", "_").replace(" ", "_")
    if key in ("CANCELLED", "CANCELED", "CANCEL_REQUESTED"):
        return ActivityCancellationDetails(cancel_requested=True)
    if key.endswith(("TIMED_OUT", "TIMEOUT")):
        return ActivityCancellationDetails(timed_out=True)
    if key == "NOT_FOUND":
        return ActivityCancellationDetails(not_found=True)
    if key in ("WORKER_SHUTDOWN", "SHUTDOWN"):
        return ActivityCancellationDetails(worker_shutdown=True)
    if key in ("PAUSED", "PAUSE"):
        return ActivityCancellationDetails(paused=True)
    if key == "RESET":
        return ActivityCancellationDetails(reset=True)
    logger.warning("Unknown activity cancel reason %r, treated as a cancel request", reason)
    return ActivityCancellationDetails(cancel_requested=True)


def _set_async_exc(thread_id: int, exc_type: type[BaseException] | None) -> None:
    # The C API behind the SDK's raise_in_thread; None clears a pending exception.
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), None if exc_type is None else ctypes.py_object(exc_type)
    )


class _ThreadCanceller:
    """Raises ``temporalio.exceptions.CancelledError`` in a sync activity's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread_id: int | None = None
        self._pending = False
        self._shield_depth = 0

    @contextlib.contextmanager
    def active_thread(self) -> Iterator[None]:
        with self._lock:
            self._thread_id = threading.get_ident()
            # Cancelled while queued in the executor: stop before the activity
            # starts, as an async activity cancelled before its first step does.
            deliver = self._pending and self._shield_depth == 0
            self._pending = self._pending and not deliver
        if deliver:
            with self._lock:
                self._thread_id = None
            raise temporalio.exceptions.CancelledError()
        try:
            yield
        finally:
            with self._lock:
                thread_id, self._thread_id, self._pending = self._thread_id, None, False
                # A cancel that raced the activity's return must not hit whatever
                # the executor runs next on this thread.
                if thread_id is not None:
                    _set_async_exc(thread_id, None)

    def raise_in_thread(self) -> None:
        with self._lock:
            self._pending = True
            if self._thread_id is not None and self._shield_depth == 0:
                self._pending = False
                _set_async_exc(self._thread_id, temporalio.exceptions.CancelledError)

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        with self._lock:
            self._shield_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._shield_depth -= 1
                deliver = self._pending and self._shield_depth == 0
                if deliver:
                    self._pending = False
            # We are in the activity's own thread here, so raise directly.
            if deliver:
                raise temporalio.exceptions.CancelledError()


class _CancelEvent(temporalio.common._CompositeEvent):
    """An attempt's cancellation event whose events are made on first use.

    Async attempts are seldom waited on from a thread, and most are never
    waited on at all; either event costs about as much to build as the rest
    of a small attempt's bookkeeping.
    """

    def __init__(self, *, threaded: bool) -> None:
        super().__init__(thread_event=threading.Event() if threaded else None, async_event=None)
        self._threaded = threaded
        self._set = False

    def set(self) -> None:
        """Set the event; runs on the event loop."""
        self._set = True
        if self.thread_event is not None:
            self.thread_event.set()
        if self.async_event is not None:
            self.async_event.set()

    def is_set(self) -> bool:
        """Whether the attempt was cancelled."""
        return self._set

    async def wait(self) -> None:
        """Wait until the attempt is cancelled (an async attempt only)."""
        if self._threaded:
            raise RuntimeError("not in async activity")
        if self.async_event is None:
            # Both run on the event loop: set() cannot slip in between.
            self.async_event = asyncio.Event()
            if self._set:
                self.async_event.set()
        await self.async_event.wait()

    def wait_sync(self, timeout: float | None = None) -> None:
        """Block the calling thread until the attempt is cancelled."""
        with _LAZY_EVENT_LOCK:
            if self.thread_event is None:
                # Published before the flag is read: a concurrent set() then
                # either finds this event or has set the flag already.
                self.thread_event = threading.Event()
                if self._set:
                    self.thread_event.set()
        self.thread_event.wait(timeout)


_LAZY_EVENT_LOCK = threading.Lock()


@dataclass(eq=False, slots=True)
class Attempt:
    """The runner's state for one running attempt."""

    defn: temporalio.activity._Definition
    heartbeat: HeartbeatCallback
    payload_converter: temporalio.converter.PayloadConverter
    loop: asyncio.AbstractEventLoop
    cancelled_event: _CancelEvent
    thread_canceller: _ThreadCanceller | None = None
    task: asyncio.Task[Any] | None = None
    done: bool = False
    heartbeat_error: Exception | None = None
    details: temporalio.activity._ActivityCancellationDetailsHolder = field(
        default_factory=temporalio.activity._ActivityCancellationDetailsHolder
    )

    def cancel(
        self,
        details: ActivityCancellationDetails | None,
        heartbeat_error: Exception | None = None,
    ) -> None:
        # Details are set once (as the SDK documents); a later reason only re-delivers.
        if self.details.details is None:
            self.details.details = details
        if self.heartbeat_error is None:
            self.heartbeat_error = heartbeat_error
        # Delivered once, as sdk-core does: a second request (the heartbeat's
        # answer after the engine's own notice) must not interrupt the cleanup.
        if self.cancelled_event.is_set() or self.done:
            return
        self.cancelled_event.set()
        if self.thread_canceller is not None:
            self.thread_canceller.raise_in_thread()
        if self.defn.is_async and self.task is not None:
            self.task.cancel("Activity cancelled")

    def record_heartbeat(self, details: Sequence[Any]) -> None:
        """Encode and hand on a heartbeat; runs on the event loop."""
        if self.done:
            return
        try:
            self.heartbeat(self.payload_converter.to_payloads(details) if details else [])
        except Exception as err:
            # As the SDK does: an attempt that cannot heartbeat is cancelled and
            # fails with the heartbeat's error.
            temporalio.activity.logger.warning(
                "Cancelling activity because failed recording heartbeat", exc_info=True
            )
            self.cancel(None, heartbeat_error=err)

    def heartbeat_from_thread(self, *details: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            self.loop.call_soon_threadsafe(self.record_heartbeat, details)


class ActivityRunner:
    """Runs attempts of registered activities with the ``temporalio.activity`` context.

    Args:
        activities: Callables decorated with ``@activity.defn`` (at most one dynamic).
        data_converter: Converts arguments, results, heartbeat details and failures.
        executor: Runs sync (``def``) activities; must be a ``ThreadPoolExecutor``.
        client: What ``activity.client()`` returns in async activities.
        metric_meter: What ``activity.metric_meter()`` records into, with the
            activity's labels added (temporalio's runtime meter).
        interceptors: ``temporalio.worker.Interceptor`` objects, outermost first.

    Raises:
        TypeError: An activity lacks ``@activity.defn``, is a class, or there is more
            than one dynamic activity (as ``temporalio.worker.Worker`` raises).
        ValueError: Two activities share a name, or a sync activity has no
            thread-pool executor.
    """

    def __init__(
        self,
        activities: Sequence[Callable[..., Any]],
        *,
        data_converter: temporalio.converter.DataConverter,
        executor: concurrent.futures.Executor | None = None,
        client: Any = None,
        metric_meter: temporalio.common.MetricMeter = temporalio.common.MetricMeter.noop,
        interceptors: Sequence[Any] = (),
    ) -> None:
        self._data_converter = data_converter
        self._metric_meter = metric_meter
        self._executor = executor
        self._client = client
        # temporalio.worker.Interceptor objects; see activity_interceptors.py.
        self.interceptors = tuple(interceptors)
        self._activities: dict[str, temporalio.activity._Definition] = {}
        self._dynamic: temporalio.activity._Definition | None = None
        self._running: dict[bytes, Attempt] = {}
        # Past the graceful shutdown timeout: sdk-core cancels the tasks it still
        # hands out at once, and temporalio's worker gets that cancel before the
        # activity's first step, so its code never runs.
        self._cancel_on_start = False
        self._shutdown_event = temporalio.common._CompositeEvent(
            thread_event=threading.Event(), async_event=asyncio.Event()
        )
        for activity in activities:
            self._register(activity)

    def _register(self, activity: Callable[..., Any]) -> None:
        # Same checks and wording as temporalio.worker._activity._ActivityWorker.
        defn = temporalio.activity._Definition.must_from_callable(activity)
        if defn.name is not None and defn.name in self._activities:
            raise ValueError(f"More than one activity named {defn.name}")
        if inspect.isclass(activity):
            raise TypeError(f"Activity named {defn.name} is a class instead of an instance")
        if inspect.isfunction(activity):
            params = list(inspect.signature(activity).parameters)
            if params and params[0] == "self":
                warnings.warn(
                    f"Activity named {defn.name} has a first parameter named self but is "
                    "not bound to an instance, did you mean to register it from an "
                    "instance of the class?",
                    stacklevel=3,
                )
        if not defn.is_async:
            if self._executor is None:
                raise ValueError(
                    f"Activity {defn.name} is not async so an activity_executor must be present"
                )
            if not isinstance(self._executor, concurrent.futures.ThreadPoolExecutor):
                # The SDK needs a shared_state_manager here; ablauf has none.
                raise ValueError(
                    f"Activity {defn.name} is not async and executor is not thread-pool "
                    "executor, which ablauf requires for sync activities"
                )
        if defn.name is not None:
            self._activities[defn.name] = defn
        elif self._dynamic is not None:
            raise TypeError("More than one dynamic activity")
        else:
            self._dynamic = defn

    @property
    def executor(self) -> concurrent.futures.Executor | None:
        """The executor of sync activities."""
        return self._executor

    def knows(self, activity_type: str) -> bool:
        """Whether an attempt of ``activity_type`` can run here (a dynamic one runs any)."""
        return self._dynamic is not None or activity_type in self._activities

    async def execute(
        self, task: ActivityTask, heartbeat: HeartbeatCallback
    ) -> ActivityOutcome | ActivityCompletesAsync:
        """Run one attempt and report how it ended.

        Args:
            task: The leased attempt.
            heartbeat: Called on the event loop with the encoded details of every
                ``activity.heartbeat()`` call (not throttled here).

        Returns:
            ``ActivityCompleted``, ``ActivityFailed`` or ``ActivityCanceled`` (the last
            only when a cancel request made the activity give up; one that gave up
            on worker shutdown fails with :func:`worker_shutdown_failure`).

        If the caller cancels this coroutine, the attempt is told so (as on worker
        shutdown) and the ``CancelledError`` propagates; :meth:`shutdown` still waits
        for the activity to end.
        """
        prepared = self._prepare(task, heartbeat)
        if not isinstance(prepared, tuple):
            return prepared
        attempt, data_converter = prepared
        attempt.task = attempt.loop.create_task(self._run(task, attempt, data_converter))
        self._running[task.token] = attempt
        attempt.task.add_done_callback(lambda _: self._forget(task.token, attempt))
        try:
            # Shielded so that only cancel() decides what the activity sees.
            return await asyncio.shield(attempt.task)
        except asyncio.CancelledError:
            attempt.cancel(ActivityCancellationDetails(worker_shutdown=True))
            raise

    async def run(
        self, task: ActivityTask, heartbeat: HeartbeatCallback
    ) -> ActivityOutcome | ActivityCompletesAsync:
        """Like :meth:`execute`, but the attempt runs in the calling task.

        The caller's task is then what a cancellation cancels until the attempt
        has ended, so it must be a task of its own for this attempt.
        """
        prepared = self._prepare(task, heartbeat)
        if not isinstance(prepared, tuple):
            return prepared
        attempt, data_converter = prepared
        attempt.task = asyncio.current_task(attempt.loop)
        self._running[task.token] = attempt
        try:
            return await self._run(task, attempt, data_converter)
        finally:
            self._forget(task.token, attempt)
            attempt.task = None

    def _prepare(
        self, task: ActivityTask, heartbeat: HeartbeatCallback
    ) -> tuple[Attempt, temporalio.converter.DataConverter] | ActivityOutcome:
        if self._cancel_on_start:
            return ActivityFailed(worker_shutdown_failure())
        defn = self._activities.get(task.activity_type, self._dynamic)
        data_converter = self._data_converter
        if not ignores_context(data_converter):
            context = temporalio.converter.ActivitySerializationContext(
                namespace=task.namespace,
                activity_id=task.activity_id,
                activity_type=task.activity_type,
                activity_task_queue=task.task_queue,
                workflow_id=task.workflow_id,
                workflow_type=task.workflow_type,
                is_local=task.is_local,
            )
            data_converter = with_context(data_converter, context)
        if defn is None:
            names = ", ".join(sorted(self._activities))
            err = temporalio.exceptions.ApplicationError(
                f"Activity function {task.activity_type} for workflow {task.workflow_id} "
                f"is not registered on this worker, available activities: {names}",
                type="NotFoundError",
            )
            logger.warning("Completing activity as failed: %s", err)
            return _failed(err, data_converter)
        # Positional: naming the fields costs twice as much.
        attempt = Attempt(
            defn,  # defn
            heartbeat,  # heartbeat
            data_converter.payload_converter,  # payload_converter
            asyncio.get_running_loop(),  # loop
            _CancelEvent(threaded=not defn.is_async),  # cancelled_event
            # thread_canceller:
            None if defn.is_async or defn.no_thread_cancel_exception else _ThreadCanceller(),
        )
        return attempt, data_converter

    def _forget(self, token: bytes, attempt: Attempt) -> None:
        if self._running.get(token) is attempt:
            del self._running[token]

    def names(self) -> list[str]:
        """The activity types it runs (a dynamic activity as ``*``)."""
        return [*sorted(self._activities), *(["*"] if self._dynamic is not None else [])]

    def cancel(self, token: bytes, reason: str) -> None:
        """Deliver a cancellation to the running attempt with ``token``, if any.

        Call it on the event loop that runs :meth:`execute` (it sets asyncio events).

        Args:
            token: The attempt's task token.
            reason: Why, as named in :func:`cancellation_details_for`. ``CANCELLED``
                lets the attempt end as ``ActivityCanceled``, ``WORKER_SHUTDOWN`` as
                :func:`worker_shutdown_failure`; others make a ``CancelledError``
                end as ``ActivityFailed``.
        """
        attempt = self._running.get(token)
        if attempt is None:
            return
        logger.debug("Cancelling activity %r, reason: %s", token, reason)
        attempt.cancel(cancellation_details_for(reason))

    async def shutdown(self, *, graceful_timeout: timedelta | None = None) -> None:
        """Tell running activities the worker is shutting down and wait for them.

        As temporalio's worker: attempts still running after ``graceful_timeout``,
        and any that start later, are cancelled with ``WORKER_SHUTDOWN``; then the
        runner waits for every attempt to end (one that ignores its cancellation
        keeps the shutdown waiting, with a warning now and then).

        Args:
            graceful_timeout: How long attempts may run before they are cancelled;
                by default the runner waits for them however long they take.
        """
        self._shutdown_event.set()
        loop = asyncio.get_running_loop()
        if graceful_timeout is not None:
            deadline = loop.time() + graceful_timeout.total_seconds()
            # Attempts that start meanwhile get the rest of the same grace.
            while (tasks := self._tasks()) and (left := deadline - loop.time()) > 0:
                await asyncio.wait(tasks, timeout=left)
            self._cancel_on_start = True
            for token in list(self._running):
                self.cancel(token, "WORKER_SHUTDOWN")
        while tasks := self._tasks():
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_LOG_INTERVAL)
            if pending and self._cancel_on_start:
                logger.warning(
                    "Worker shutdown waits for activities that ignore their cancellation: %s",
                    ", ".join(sorted(a.defn.name or "(dynamic)" for a in self._running.values())),
                )

    def _tasks(self) -> set[asyncio.Task[Any]]:
        return {a.task for a in self._running.values() if a.task is not None}

    async def _run(
        self,
        task: ActivityTask,
        attempt: Attempt,
        data_converter: temporalio.converter.DataConverter,
    ) -> ActivityOutcome | ActivityCompletesAsync:
        defn = attempt.defn
        converter = data_converter.payload_converter
        made: list[temporalio.activity.Info] = []
        details: list[Any] = []

        def info() -> temporalio.activity.Info:
            # Built when first asked for: most activities never ask.
            if not made:
                made.append(_info_of(task, details))
            return made[0]

        # Set before the arguments are decoded, so that whatever fails is logged
        # with the activity's details, as temporalio's worker logs it. Reset
        # afterwards: the context would otherwise keep the attempt (and through
        # it this task) in a reference cycle that only the cyclic GC could free.
        token = temporalio.activity._Context.set(
            temporalio.activity._Context(
                info=info,
                heartbeat=lambda *beat: attempt.record_heartbeat(beat),
                cancelled_event=attempt.cancelled_event,
                worker_shutdown_event=self._shutdown_event,
                shield_thread_cancel_exception=None,
                payload_converter_class_or_instance=converter,
                runtime_metric_meter=self._metric_meter,
                client=self._client if defn.is_async else None,
                cancellation_details=attempt.details,
            )
        )
        try:
            try:
                result = await self._invoke(task, attempt, converter, details, info)
            finally:
                # From here on a cancel must not interrupt reporting the outcome.
                attempt.done = True
            return ActivityCompleted(to_payloads(converter, [result])[0])
        except BaseException as err:
            return self._outcome_for(err, attempt, data_converter)
        finally:
            temporalio.activity._Context.reset(token)

    async def _invoke(
        self,
        task: ActivityTask,
        attempt: Attempt,
        converter: temporalio.converter.PayloadConverter,
        details: list[Any],
        info: Callable[[], temporalio.activity.Info],
    ) -> Any:
        defn = attempt.defn
        # Type hints only apply if they match the input count; dynamic gets RawValues.
        arg_types = defn.arg_types
        if defn.name is None:
            arg_types = [temporalio.common.RawValue] * len(task.input)
        elif arg_types is not None and len(arg_types) != len(task.input):
            arg_types = None
        try:
            args = from_payloads(converter, task.input, arg_types) if task.input else []
        except Exception as err:
            raise temporalio.exceptions.ApplicationError("Failed decoding arguments") from err
        if defn.name is None:
            args = [args]
        try:
            if task.heartbeat_details:
                details += converter.from_payloads(task.heartbeat_details)
        except Exception as err:
            raise temporalio.exceptions.ApplicationError(
                "Failed decoding heartbeat details", non_retryable=True
            ) from err
        log = temporalio.activity.logger
        # Asked of the logger itself: the adapter's debug() is four calls deep.
        if log.logger.isEnabledFor(logging.DEBUG):
            log.debug("Starting activity")
        if self.interceptors:
            # Imported only here: it imports temporalio's worker package.
            from ablauf.worker.activity_interceptors import execute_intercepted

            return await execute_intercepted(self, task, attempt, args, info)
        if defn.is_async:
            return await defn.fn(*args)
        return await self.run_sync(
            attempt, info, converter, defn.fn, args, attempt.heartbeat_from_thread, self._executor
        )

    def run_sync(
        self,
        attempt: Attempt,
        info: Callable[[], temporalio.activity.Info],
        converter: temporalio.converter.PayloadConverter,
        fn: Callable[..., Any],
        args: Sequence[Any],
        heartbeat: Callable[..., None],
        executor: concurrent.futures.Executor | None,
    ) -> asyncio.Future[Any]:
        """Run a sync activity's ``fn`` in the executor, with the activity context there."""
        # contextvars do not follow into executor threads by themselves.
        run_in_context = contextvars.copy_context().run
        return attempt.loop.run_in_executor(
            executor, run_in_context, self._call_sync, attempt, info, converter, fn, args, heartbeat
        )

    def _call_sync(
        self,
        attempt: Attempt,
        info: Callable[[], temporalio.activity.Info],
        converter: temporalio.converter.PayloadConverter,
        fn: Callable[..., Any],
        args: Sequence[Any],
        heartbeat: Callable[..., None],
    ) -> Any:
        canceller = attempt.thread_canceller
        # asyncio events cannot be awaited from a thread, so threads see only the
        # threading halves, as in the SDK.
        temporalio.activity._Context.set(
            temporalio.activity._Context(
                info=info,
                heartbeat=heartbeat,
                cancelled_event=temporalio.common._CompositeEvent(
                    thread_event=attempt.cancelled_event.thread_event, async_event=None
                ),
                worker_shutdown_event=temporalio.common._CompositeEvent(
                    thread_event=self._shutdown_event.thread_event, async_event=None
                ),
                shield_thread_cancel_exception=None if canceller is None else canceller.shielded,
                payload_converter_class_or_instance=converter,
                runtime_metric_meter=self._metric_meter,
                client=None,
                cancellation_details=attempt.details,
            )
        )
        if canceller is None:
            return fn(*args)
        with canceller.active_thread():
            return fn(*args)

    def _outcome_for(
        self,
        err: BaseException,
        attempt: Attempt,
        data_converter: temporalio.converter.DataConverter,
    ) -> ActivityOutcome | ActivityCompletesAsync:
        log = temporalio.activity.logger
        details = attempt.details.details
        if isinstance(err, temporalio.activity._CompleteAsyncError):
            return ActivityCompletesAsync()
        if isinstance(err, _CANCEL_ERRORS):
            if attempt.heartbeat_error is not None:
                log.warning("Completing as failure during heartbeat with error")
                err = attempt.heartbeat_error
            elif details is not None and details.paused:
                err = temporalio.exceptions.ApplicationError(
                    "Unhandled activity cancel error produced by activity pause",
                    type="ActivityPause",
                )
            elif details is not None and details.reset:
                err = temporalio.exceptions.ApplicationError(
                    "Unhandled activity cancel error produced by activity reset",
                    type="ActivityReset",
                )
            elif details is not None and details.worker_shutdown:
                log.debug("Completing as failed: worker shutdown")
                return ActivityFailed(worker_shutdown_failure())
            elif details is not None and details.cancel_requested:
                log.debug("Completing as cancelled")
                return ActivityCanceled()
        benign = (
            isinstance(err, temporalio.exceptions.ApplicationError)
            and err.category == temporalio.exceptions.ApplicationErrorCategory.BENIGN
        )
        log.log(
            logging.DEBUG if benign else logging.WARNING,
            "Completing activity as failed",
            exc_info=err,
            extra={"__temporal_error_identifier": "ActivityFailure"},
        )
        return _failed(err, data_converter)


def _failed(
    err: BaseException, data_converter: temporalio.converter.DataConverter
) -> ActivityFailed:
    failure = Failure()
    try:
        data_converter.failure_converter.to_failure(err, data_converter.payload_converter, failure)
    except Exception as inner:
        logger.exception("Exception handling failed, original error: %s", err)
        failure = Failure(
            message=f"Failed building exception result: {inner}",
            application_failure_info=ApplicationFailureInfo(),
        )
    return ActivityFailed(failure)


def _info_of(task: ActivityTask, details: list[Any]) -> temporalio.activity.Info:
    """What ``activity.info()`` returns for an attempt of ``task``."""
    policy = task.retry_policy
    return temporalio.activity.Info(
        activity_id=task.activity_id,
        activity_type=task.activity_type,
        attempt=task.attempt,
        current_attempt_scheduled_time=task.current_attempt_scheduled_time,
        heartbeat_details=details,
        heartbeat_timeout=task.heartbeat_timeout or None,
        is_local=task.is_local,
        namespace=task.namespace,
        schedule_to_close_timeout=task.schedule_to_close_timeout or None,
        scheduled_time=task.scheduled_time,
        start_to_close_timeout=task.start_to_close_timeout or None,
        started_time=task.started_time,
        task_queue=task.task_queue,
        task_token=task.token,
        workflow_id=task.workflow_id,
        workflow_namespace=task.namespace,
        workflow_run_id=task.run_id,
        workflow_type=task.workflow_type,
        priority=temporalio.common.Priority.default,
        retry_policy=None if policy is None else _copy_policy(policy),
    )


def _copy_policy(policy: RetryPolicy) -> RetryPolicy:
    # The SDK's RetryPolicy is mutable, and the task's is shared with other tasks.
    return RetryPolicy(
        policy.initial_interval,
        policy.backoff_coefficient,
        policy.maximum_interval,
        policy.maximum_attempts,
        list(policy.non_retryable_error_types or ()) or None,
    )
