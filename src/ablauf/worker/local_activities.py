"""Local activities in the worker: attempts, retries and timeouts within a workflow task.

sdk-core's ``LocalActivityManager``. The workflow instance asks for a local
activity (:class:`~ablauf.replay.machines.LocalActivityRequest`); the worker
runs its attempts through its :class:`~ablauf.worker.activities.ActivityRunner`
with ``activity.info().is_local`` set, retrying as its retry policy says while
the backoff stays within the local retry threshold. A longer backoff is handed
back to the workflow, which records it in the marker and waits on a durable
timer. Timeouts: schedule-to-close from the first attempt's scheduling (final),
start-to-close per attempt (retried). Schedule-to-start cannot pass: an attempt
starts as soon as it is asked for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import temporalio.common
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import TimeoutType
from temporalio.api.failure.v1 import (
    ApplicationFailureInfo,
    CanceledFailureInfo,
    Failure,
    TimeoutFailureInfo,
)

from ablauf.history.tasks import (
    ActivityCanceled,
    ActivityCompleted,
    ActivityCompletesAsync,
    ActivityTask,
)
from ablauf.replay.machines import LocalActivityRequest, LocalActivityResult, LocalStatus
from ablauf.worker.activities import ActivityRunner

if TYPE_CHECKING:
    from ablauf.worker.metrics import LocalActivityMetrics

__all__ = ["LocalActivities", "RunInfo"]

logger = logging.getLogger(__name__)

_DEFAULT_POLICY: Final = temporalio.common.RetryPolicy()


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The workflow run a local activity belongs to."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str


class _Cancelled(Exception):
    """Workflow code cancelled the local activity."""


class LocalActivities:
    """Runs the local activities of one worker's workflows.

    Args:
        runner: The worker's activity runner; None if it has no activities, so
            that every local activity fails as not registered.
        metrics: Where attempts are counted and timed, if the runtime exports metrics.
    """

    def __init__(
        self, runner: ActivityRunner | None, metrics: LocalActivityMetrics | None = None
    ) -> None:
        self._runner = runner
        self._metrics = metrics
        # Running local activities by (run id, seq): the running attempt's token, if any.
        self._running: dict[tuple[str, int], asyncio.Task[LocalActivityResult]] = {}
        self._tokens: dict[tuple[str, int], bytes] = {}
        self._cancelled: set[tuple[str, int]] = set()
        # Attempts that timed out or were given up on, still ending in the background.
        self._leftovers: set[asyncio.Task[object]] = set()

    def start(
        self, request: LocalActivityRequest, run: RunInfo
    ) -> asyncio.Task[LocalActivityResult]:
        """Start running ``request``; the task ends with its result."""
        key = (run.run_id, request.seq)
        task = asyncio.get_running_loop().create_task(self._run(request, run, key))
        self._running[key] = task
        task.add_done_callback(lambda _: self._forget(key, task))
        return task

    def _forget(self, key: tuple[str, int], task: asyncio.Task[LocalActivityResult]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
            self._cancelled.discard(key)

    def cancel(self, run_id: str, seq: int) -> None:
        """Workflow code cancelled the local activity ``seq`` of ``run_id``."""
        key = (run_id, seq)
        task = self._running.get(key)
        if task is None:
            return
        self._cancelled.add(key)
        token = self._tokens.get(key)
        if token is not None and self._runner is not None:
            self._runner.cancel(token, "CANCELLED")
        else:
            # Backing off between attempts: stop waiting.
            task.cancel()

    async def drain(self) -> None:
        """Wait for every local activity and abandoned attempt to end."""
        pending = [*self._running.values(), *self._leftovers]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(
        self, request: LocalActivityRequest, run: RunInfo, key: tuple[str, int]
    ) -> LocalActivityResult:
        original_ns = request.original_schedule_time_ns or time.time_ns()
        policy = request.retry_policy or _DEFAULT_POLICY
        s2c = request.schedule_to_close_timeout
        deadline = original_ns / 1e9 + s2c.total_seconds() if s2c else None
        attempt = request.attempt

        def result(status: int, **kw: object) -> LocalActivityResult:
            return LocalActivityResult(
                request.seq,
                status,
                attempt=attempt,
                original_schedule_time_ns=original_ns,
                **kw,  # type: ignore[arg-type]
            )

        while True:
            now = time.time()
            if deadline is not None and now >= deadline:
                return result(
                    LocalStatus.TIMED_OUT,
                    failure=_timeout(TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE),
                )
            limit = request.start_to_close_timeout
            timeout_type = TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
            if deadline is not None and (limit is None or now + limit.total_seconds() > deadline):
                limit = timedelta(seconds=deadline - now)
                timeout_type = TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE
            begun = time.monotonic_ns()
            status, payload, failure = await self._attempt(request, run, key, attempt, limit)
            runtime_ns = time.monotonic_ns() - begun
            if self._metrics is not None:
                self._metrics.attempted(
                    request.activity_type,
                    run.workflow_type,
                    status,
                    failure,
                    runtime_ns,
                    original_ns,
                )
            if status == LocalStatus.TIMED_OUT:
                failure = _timeout(timeout_type)
                if timeout_type == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
                    return result(status, failure=failure, runtime_ns=runtime_ns)
            if status in (LocalStatus.COMPLETED, LocalStatus.CANCELLED):
                return result(status, result=payload, failure=failure, runtime_ns=runtime_ns)
            assert failure is not None
            delay = _retry_delay(policy, attempt, failure)
            if delay is None:
                return result(status, failure=failure, runtime_ns=runtime_ns)
            if delay > request.local_retry_threshold:
                # Too long to hold the workflow task: the workflow waits on a timer.
                return result(status, failure=failure, runtime_ns=runtime_ns, backoff=delay)
            try:
                await asyncio.sleep(delay.total_seconds())
            except asyncio.CancelledError:
                if key not in self._cancelled:
                    raise
                return result(LocalStatus.CANCELLED, failure=_cancelled(), runtime_ns=0)
            attempt += 1

    async def _attempt(
        self,
        request: LocalActivityRequest,
        run: RunInfo,
        key: tuple[str, int],
        attempt: int,
        limit: timedelta | None,
    ) -> tuple[int, Payload | None, Failure | None]:
        runner = self._runner
        if runner is None:
            return LocalStatus.FAILED, None, _not_registered(request, run, [])
        if not runner.knows(request.activity_type):
            return LocalStatus.FAILED, None, _not_registered(request, run, runner.names())
        token = f"{run.run_id}/local/{request.seq}/{attempt}".encode()
        now = datetime.now(UTC)
        task = ActivityTask(
            token=token,
            namespace=run.namespace,
            workflow_id=run.workflow_id,
            run_id=run.run_id,
            workflow_type=run.workflow_type,
            activity_id=request.activity_id,
            activity_type=request.activity_type,
            task_queue=run.task_queue,
            input=request.input,
            attempt=attempt,
            scheduled_time=now,
            current_attempt_scheduled_time=now,
            started_time=now,
            schedule_to_close_timeout=request.schedule_to_close_timeout,
            start_to_close_timeout=request.start_to_close_timeout
            or request.schedule_to_close_timeout,
            heartbeat_timeout=None,
            retry_policy=request.retry_policy,
            headers=request.headers,
            is_local=True,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        running = loop.create_task(runner.execute(task, _no_heartbeat))
        self._tokens[key] = token
        try:
            done, _ = await asyncio.wait(
                {running}, timeout=None if limit is None else max(limit.total_seconds(), 0)
            )
        finally:
            self._tokens.pop(key, None)
        if not done:
            # Timed out: the attempt is told so and ends on its own; nobody reads it.
            runner.cancel(token, "TIMED_OUT")
            self._leftovers.add(running)
            running.add_done_callback(self._leftovers.discard)
            return LocalStatus.TIMED_OUT, None, None
        outcome = running.result()
        if isinstance(outcome, ActivityCompleted):
            return LocalStatus.COMPLETED, outcome.result, None
        if isinstance(outcome, ActivityCanceled):
            return LocalStatus.CANCELLED, None, _cancelled()
        if isinstance(outcome, ActivityCompletesAsync):
            # As with temporalio's worker: nothing can report a local activity's
            # outcome later, so the attempt ends only when it times out.
            logger.error(
                "local activity %s of %s called raise_complete_async(): local activities "
                "cannot be completed asynchronously; the attempt will time out",
                request.activity_type,
                run.workflow_id,
            )
            if limit is not None:
                await asyncio.sleep(max(limit.total_seconds() - (loop.time() - started), 0))
            return LocalStatus.TIMED_OUT, None, None
        return LocalStatus.FAILED, None, outcome.failure


def _no_heartbeat(details: Sequence[Payload]) -> None:
    """Local activities have no heartbeat timeout: sdk-core drops their heartbeats."""


def _timeout(timeout_type: int) -> Failure:
    return Failure(
        message="Activity timed out",
        timeout_failure_info=TimeoutFailureInfo(timeout_type=timeout_type),  # type: ignore[arg-type]
    )


def _cancelled() -> Failure:
    return Failure(message="Activity cancelled", canceled_failure_info=CanceledFailureInfo())


def _not_registered(request: LocalActivityRequest, run: RunInfo, names: list[str]) -> Failure:
    return Failure(
        message=(
            f"Activity function {request.activity_type} for workflow {run.workflow_id} "
            f"is not registered on this worker, available activities: {', '.join(names)}"
        ),
        application_failure_info=ApplicationFailureInfo(type="NotFoundError"),
    )


def _retry_delay(
    policy: temporalio.common.RetryPolicy, attempt: int, failure: Failure
) -> timedelta | None:
    """How long to wait before the next attempt, or None if there is none (sdk-core's
    ``should_retry``)."""
    info = (
        failure.application_failure_info if failure.HasField("application_failure_info") else None
    )
    if info is not None:
        if info.non_retryable:
            return None
        if info.type in (policy.non_retryable_error_types or ()):
            return None
    if policy.maximum_attempts and attempt >= policy.maximum_attempts:
        return None
    if info is not None and info.HasField("next_retry_delay"):
        return info.next_retry_delay.ToTimedelta()
    initial = policy.initial_interval or timedelta(seconds=1)
    coefficient = policy.backoff_coefficient or 2.0
    maximum = policy.maximum_interval or initial * 100
    try:
        delay = initial * (coefficient ** (attempt - 1))
    except OverflowError:
        return maximum
    return min(delay, maximum)
