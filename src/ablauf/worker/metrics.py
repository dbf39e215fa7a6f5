"""Temporal's worker metrics, recorded through the meter of a temporalio runtime.

Names, descriptions, units and labels are those of sdk-core, which runs
temporalio's worker, so what watches a temporalio worker (dashboards, alerts)
reads an embedded one too. The runtime's meter is sdk-core's, which exports
them: Prometheus, OpenTelemetry or a metric buffer, as its telemetry config says.
Without metrics configured the runtime's meter is temporalio's no-op meter; the
worker then makes none of these objects and its hot path never calls in here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import temporalio.common
import temporalio.runtime
from temporalio.api.command.v1 import Command
from temporalio.api.enums.v1 import (
    ApplicationErrorCategory,
    CommandType,
    EventType,
    WorkflowTaskFailedCause,
)
from temporalio.api.failure.v1 import Failure
from temporalio.common import MetricCounter, MetricHistogramTimedelta, MetricMeter

from ablauf.history.tasks import (
    ActivityCompleted,
    ActivityCompletesAsync,
    ActivityFailed,
    ActivityOutcome,
    ActivityTask,
    WorkflowTask,
)

__all__ = ["ActivityMetrics", "WorkflowMetrics", "runtime_meter", "worker_started"]

PREFIX = "temporal_"
"""sdk-core's prefix of its own metrics (custom metrics have none)."""

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


def runtime_meter(client: Any) -> MetricMeter | None:
    """The metric meter of the client's temporalio runtime; None if it records nothing."""
    runtime = client.service_client.config.runtime
    if runtime is None:
        # temporalio makes its default runtime (an sdk-core thread pool) on first
        # use; the embedded engine needs none, so only one already made or set counts.
        runtime = temporalio.runtime._runtime_ref._default_runtime
    if runtime is None:
        return None
    meter = runtime.metric_meter
    return None if meter is MetricMeter.noop else meter


def worker_started(meter: MetricMeter, namespace: str, task_queue: str) -> None:
    """A worker started polling ``task_queue``."""
    labels = {"namespace": namespace, "task_queue": task_queue}
    _counter(meter, "worker_start", "Count of the number of initialized workers").add(1, labels)


def _counter(meter: MetricMeter, name: str, description: str) -> MetricCounter:
    return meter.create_counter(PREFIX + name, description)


def _latency(meter: MetricMeter, name: str, description: str) -> MetricHistogramTimedelta:
    # sdk-core's exporters give these names its latency buckets, in ms or seconds.
    return meter.create_histogram_timedelta(PREFIX + name, description, "duration")


def _since(start_ns: int) -> timedelta:
    return timedelta(microseconds=(time.perf_counter_ns() - start_ns) / 1000)


def _is_benign(failure: Failure) -> bool:
    return failure.application_failure_info.category == _BENIGN


class _WorkflowType:
    """The workflow metrics labelled with one workflow type."""

    def __init__(self, metrics: WorkflowMetrics, workflow_type: str) -> None:
        label = {"workflow_type": workflow_type}
        self.closed = {
            kind: counter.with_additional_attributes(label)
            for kind, counter in metrics.closed.items()
        }
        self.endtoend = metrics.endtoend.with_additional_attributes(label)
        self.execution = metrics.execution.with_additional_attributes(label)
        self.replay = metrics.replay.with_additional_attributes(label)
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
            kind: _counter(meter, name, description)
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
        self.endtoend = _latency(
            meter, "workflow_endtoend_latency", "Histogram of total workflow execution latencies"
        )
        self.execution = _latency(
            meter,
            "workflow_task_execution_latency",
            "Histogram of workflow task execution (not replay) latencies",
        )
        self.replay = _latency(
            meter, "workflow_task_replay_latency", "Histogram of workflow task replay latencies"
        )
        self.schedule_to_start = _latency(
            meter,
            "workflow_task_schedule_to_start_latency",
            "Histogram of workflow task schedule-to-start latencies",
        )
        self.polled = _counter(
            meter, "workflow_task_queue_poll_succeed", "Count of workflow task queue poll successes"
        )
        self.task_failed = _counter(
            meter, "workflow_task_execution_failed", "Count of workflow task execution failures"
        )
        self.cache_hit = _counter(
            meter,
            "sticky_cache_hit",
            "Count of times the workflow cache was used for a new workflow task",
        )
        self.cache_miss = _counter(
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

    def replayed(self, workflow_type: str, began_ns: int) -> None:
        """A cache miss replayed the run's earlier workflow tasks."""
        self._of(workflow_type).replay.record(_since(began_ns))

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
        took = _since(began_ns)
        of.execution.record(took)
        self.cache_size.set(cached)
        for command in reversed(commands):
            kind = command.command_type
            if kind not in _CLOSING:
                continue
            attrs = command.fail_workflow_execution_command_attributes
            if kind == CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION and _is_benign(
                attrs.failure
            ):
                break
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
        self.failed = metrics.failed.with_additional_attributes(labels)
        # A first attempt is leased when it is scheduled, to a worker of the
        # process that scheduled it: what Temporal calls eager.
        self.received = metrics.received.with_additional_attributes(labels)


class ActivityMetrics:
    """The activity metrics of one worker (its namespace and task queue)."""

    def __init__(self, meter: MetricMeter, namespace: str, task_queue: str) -> None:
        meter = meter.with_additional_attributes({"namespace": namespace, "task_queue": task_queue})
        self.execution = _latency(
            meter, "activity_execution_latency", "Histogram of activity execution latencies"
        )
        self.succeeded = _latency(
            meter,
            "activity_succeed_endtoend_latency",
            "Histogram of activity execution latencies for successful activities",
        )
        self.schedule_to_start = _latency(
            meter,
            "activity_schedule_to_start_latency",
            "Histogram of activity schedule-to-start latencies",
        )
        self.failed = _counter(
            meter, "activity_execution_failed", "Count of activity task execution failures"
        )
        self.received = _counter(
            meter, "activity_task_received", "Count of activity task queue poll successes"
        )
        self._types: dict[tuple[str, str], _ActivityType] = {}

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
        took = _since(began_ns)
        of.execution.record(took)
        if isinstance(outcome, ActivityCompleted):
            # From the activity's schedule to now, on the engine's clock.
            of.succeeded.record(task.started_time - task.scheduled_time + took)
        elif isinstance(outcome, ActivityFailed) and not _is_benign(outcome.failure):
            of.failed.add(1)
