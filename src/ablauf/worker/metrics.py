"""Temporal's worker metrics (see :mod:`ablauf.metrics`): workflow tasks,
workflows closed, activity attempts.

A worker makes these only when its client's runtime exports metrics; its hot
path then calls in once or twice per task, otherwise never.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from temporalio.api.command.v1 import Command
from temporalio.api.enums.v1 import (
    ApplicationErrorCategory,
    CommandType,
    EventType,
    WorkflowTaskFailedCause,
)
from temporalio.api.failure.v1 import Failure
from temporalio.common import MetricMeter

from ablauf.history.tasks import (
    ActivityCompleted,
    ActivityCompletesAsync,
    ActivityFailed,
    ActivityOutcome,
    ActivityTask,
    WorkflowTask,
)
from ablauf.metrics import PREFIX, counter, latency, since
from ablauf.replay.machines import LocalStatus

__all__ = ["ActivityMetrics", "LocalActivityMetrics", "WorkflowMetrics", "worker_started"]

_SCHEDULED = EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
_BENIGN = ApplicationErrorCategory.APPLICATION_ERROR_CATEGORY_BENIGN
_NONDETERMINISM = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
# The workflow's closing command, and the counter it adds to (sdk-core's names).
_CLOSING = {
    CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION: "workflow_completed",
    CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION: "workflow_failed",
    CommandType.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION: "workflow_canceled",
    CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION: "workflow_continue_as_new",
}


# The failure_reason of an activity's failure (sdk-core: FailureReason::Activity).
_ACTIVITY_ERROR = {"failure_reason": "ActivityError"}


def worker_started(meter: MetricMeter, namespace: str, task_queue: str) -> None:
    """A worker started polling ``task_queue``."""
    labels = {"namespace": namespace, "task_queue": task_queue}
    counter(meter, "worker_start", "Count of the number of initialized workers").add(1, labels)


def _is_benign(failure: Failure) -> bool:
    return failure.application_failure_info.category == _BENIGN


class _WorkflowType:
    """The workflow metrics labelled with one workflow type."""

    def __init__(self, metrics: WorkflowMetrics, workflow_type: str) -> None:
        label = {"workflow_type": workflow_type}
        self.closed = {
            kind: closed.with_additional_attributes(label)
            for kind, closed in metrics.closed.items()
        }
        self.endtoend = metrics.endtoend.with_additional_attributes(label)
        self.execution = metrics.execution.with_additional_attributes(label)
        self.cache_hit = metrics.cache_hit.with_additional_attributes(label)
        self.cache_miss = metrics.cache_miss.with_additional_attributes(label)
        failed = metrics.task_failed.with_additional_attributes(label)
        self.task_failed = failed.with_additional_attributes({"failure_reason": "WorkflowError"})
        self.nondeterminism = failed.with_additional_attributes(
            {"failure_reason": "NonDeterminismError"}
        )


class WorkflowMetrics:
    """The workflow metrics of one worker (its namespace and task queue)."""

    def __init__(self, meter: MetricMeter, namespace: str, task_queue: str) -> None:
        meter = meter.with_additional_attributes({"namespace": namespace, "task_queue": task_queue})
        self.closed = {
            kind: counter(meter, name, description)
            for (kind, name), description in zip(
                _CLOSING.items(),
                (
                    "Count of successfully completed workflows",
                    "Count of failed workflows",
                    "Count of canceled workflows",
                    "Count of continued-as-new workflows",
                ),
                strict=True,
            )
        }
        self.endtoend = latency(
            meter, "workflow_endtoend_latency", "Histogram of total workflow execution latencies"
        )
        self.execution = latency(
            meter,
            "workflow_task_execution_latency",
            "Histogram of workflow task execution (not replay) latencies",
        )
        self.schedule_to_start = latency(
            meter,
            "workflow_task_schedule_to_start_latency",
            "Histogram of workflow task schedule-to-start latencies",
        )
        self.polled = counter(
            meter, "workflow_task_queue_poll_succeed", "Count of workflow task queue poll successes"
        )
        self.task_failed = counter(
            meter, "workflow_task_execution_failed", "Count of workflow task execution failures"
        )
        self.cache_hit = counter(
            meter,
            "sticky_cache_hit",
            "Count of times the workflow cache was used for a new workflow task",
        )
        self.cache_miss = counter(
            meter,
            "sticky_cache_miss",
            "Count of times the workflow cache was missing a workflow for a sticky task",
        )
        self.cache_size = meter.create_gauge(
            PREFIX + "sticky_cache_size", "Current number of cached workflows"
        )
        self._types: dict[str, _WorkflowType] = {}

    def _of(self, workflow_type: str) -> _WorkflowType:
        of = self._types.get(workflow_type)
        if of is None:
            of = self._types[workflow_type] = _WorkflowType(self, workflow_type)
        return of

    def received(self, task: WorkflowTask, cached: bool) -> int:
        """A workflow task was handed to the worker; returns when (for :meth:`completed`)."""
        self.polled.add(1)
        events = task.events
        started = events[-1].event_time.ToNanoseconds()
        for event in reversed(events):
            if event.event_type == _SCHEDULED:
                scheduled = event.event_time.ToNanoseconds()
                self.schedule_to_start.record(timedelta(microseconds=(started - scheduled) / 1000))
                break
        of = self._of(task.workflow_type)
        if cached:
            of.cache_hit.add(1)
        elif task.first_event_id > 1:
            of.cache_miss.add(1)
        return time.perf_counter_ns()

    def completed(
        self,
        task: WorkflowTask,
        commands: Sequence[Command],
        began_ns: int,
        workflow_start: datetime,
        cached: int,
    ) -> None:
        """The worker answered the task with ``commands``."""
        of = self._of(task.workflow_type)
        took = since(began_ns)
        of.execution.record(took)
        self.cache_size.set(cached)
        for command in reversed(commands):
            kind = command.command_type
            if kind not in _CLOSING:
                continue
            # A failure the application calls benign is not counted as failed.
            attrs = command.fail_workflow_execution_command_attributes
            if kind != CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION or not _is_benign(
                attrs.failure
            ):
                of.closed[kind].add(1)
            # From the run's start to its closing task's end, on the engine's clock.
            started = task.events[-1].event_time.ToDatetime(UTC) - workflow_start
            of.endtoend.record(started + took)
            break

    def failed(self, workflow_type: str, cause: int) -> None:
        """The worker failed a workflow task."""
        of = self._of(workflow_type)
        (of.nondeterminism if cause == _NONDETERMINISM else of.task_failed).add(1)


class _ActivityType:
    """The activity metrics labelled with one activity and workflow type."""

    def __init__(self, metrics: ActivityMetrics, activity_type: str, workflow_type: str) -> None:
        labels = {"activity_type": activity_type, "workflow_type": workflow_type}
        self.execution = metrics.execution.with_additional_attributes(labels)
        self.succeeded = metrics.succeeded.with_additional_attributes(labels)
        self.failed = metrics.failed.with_additional_attributes({**labels, **_ACTIVITY_ERROR})
        # A first attempt is leased when it is scheduled, to a worker of the
        # process that scheduled it: what Temporal calls eager.
        self.received = metrics.received.with_additional_attributes(labels)


class ActivityMetrics:
    """The activity metrics of one worker (its namespace and task queue)."""

    def __init__(self, meter: MetricMeter, namespace: str, task_queue: str, slots: int) -> None:
        meter = meter.with_additional_attributes({"namespace": namespace, "task_queue": task_queue})
        self.slots = slots
        worker_type = {"worker_type": "ActivityWorker"}
        self.slots_available = meter.create_gauge(
            PREFIX + "worker_task_slots_available",
            "Current number of available slots per task type",
        ).with_additional_attributes(worker_type)
        self.slots_used = meter.create_gauge(
            PREFIX + "worker_task_slots_used", "Current number of used slots per task type"
        ).with_additional_attributes(worker_type)
        self.free(slots)
        self.execution = latency(
            meter, "activity_execution_latency", "Histogram of activity execution latencies"
        )
        self.succeeded = latency(
            meter,
            "activity_succeed_endtoend_latency",
            "Histogram of activity execution latencies for successful activities",
        )
        self.schedule_to_start = latency(
            meter,
            "activity_schedule_to_start_latency",
            "Histogram of activity schedule-to-start latencies",
        )
        self.failed = counter(
            meter, "activity_execution_failed", "Count of activity task execution failures"
        )
        self.received = counter(
            meter, "activity_task_received", "Count of activity task queue poll successes"
        )
        self._types: dict[tuple[str, str], _ActivityType] = {}

    def free(self, slots: int) -> None:
        """The worker has ``slots`` activity slots free."""
        self.slots_available.set(slots)
        self.slots_used.set(self.slots - slots)

    def received_task(self, task: ActivityTask) -> int:
        """An attempt was handed to the worker; returns when (for :meth:`done`)."""
        key = (task.activity_type, task.workflow_type)
        of = self._types.get(key)
        if of is None:
            of = self._types[key] = _ActivityType(self, *key)
        of.received.add(1, {"eager": "true" if task.attempt == 1 else "false"})
        self.schedule_to_start.record(task.started_time - task.current_attempt_scheduled_time)
        return time.perf_counter_ns()

    def done(
        self,
        task: ActivityTask,
        outcome: ActivityOutcome | ActivityCompletesAsync,
        began_ns: int,
    ) -> None:
        """The attempt ended with ``outcome``."""
        of = self._types[(task.activity_type, task.workflow_type)]
        took = since(began_ns)
        of.execution.record(took)
        if isinstance(outcome, ActivityCompleted):
            # From the activity's schedule to now, on the engine's clock.
            of.succeeded.record(task.started_time - task.scheduled_time + took)
        elif isinstance(outcome, ActivityFailed) and not _is_benign(outcome.failure):
            of.failed.add(1)


class _LocalActivityType:
    """The local activity metrics labelled with one activity and workflow type."""

    def __init__(
        self, metrics: LocalActivityMetrics, activity_type: str, workflow_type: str
    ) -> None:
        labels = {"activity_type": activity_type, "workflow_type": workflow_type}
        self.total = metrics.total.with_additional_attributes(labels)
        self.execution = metrics.execution.with_additional_attributes(labels)
        self.succeeded = metrics.succeeded.with_additional_attributes(labels)
        failed = metrics.failed.with_additional_attributes(labels)
        self.failed = failed.with_additional_attributes(_ACTIVITY_ERROR)
        self.timed_out = failed.with_additional_attributes({"failure_reason": "timeout"})
        self.cancelled = metrics.cancelled.with_additional_attributes(labels)


class LocalActivityMetrics:
    """The local activity metrics of one worker (its namespace and task queue)."""

    def __init__(self, meter: MetricMeter, namespace: str, task_queue: str) -> None:
        meter = meter.with_additional_attributes({"namespace": namespace, "task_queue": task_queue})
        self.total = counter(meter, "local_activity_total", "Count of local activities executed")
        self.execution = latency(
            meter,
            "local_activity_execution_latency",
            "Histogram of local activity execution latencies",
        )
        self.succeeded = latency(
            meter,
            "local_activity_succeed_endtoend_latency",
            "Histogram of local activity execution latencies for successful local activities",
        )
        self.failed = counter(
            meter,
            "local_activity_execution_failed",
            "Count of local activity executions that failed",
        )
        self.cancelled = counter(
            meter,
            "local_activity_execution_cancelled",
            "Count of local activity executions that were cancelled",
        )
        self._types: dict[tuple[str, str], _LocalActivityType] = {}

    def attempted(
        self,
        activity_type: str,
        workflow_type: str,
        status: int,
        failure: Failure | None,
        runtime_ns: int,
        original_schedule_ns: int,
    ) -> None:
        """One attempt ran ``runtime_ns`` and ended with ``status``."""
        key = (activity_type, workflow_type)
        of = self._types.get(key)
        if of is None:
            of = self._types[key] = _LocalActivityType(self, *key)
        of.total.add(1)
        of.execution.record(timedelta(microseconds=runtime_ns / 1000))
        if status == LocalStatus.COMPLETED:
            scheduled = time.time_ns() - original_schedule_ns
            of.succeeded.record(timedelta(microseconds=scheduled / 1000))
        elif status == LocalStatus.CANCELLED:
            of.cancelled.add(1)
        elif status == LocalStatus.TIMED_OUT:
            of.timed_out.add(1)
        elif failure is None or not _is_benign(failure):
            of.failed.add(1)
