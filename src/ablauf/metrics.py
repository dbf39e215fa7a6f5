"""Temporal's SDK metrics, recorded through the meter of a temporalio runtime.

Names, descriptions, units and labels are sdk-core's (it runs temporalio's
client and worker), so what watches a temporalio application (dashboards,
alerts) reads one on the embedded engine too. The runtime's meter belongs to
sdk-core, which exports them: Prometheus, OpenTelemetry or a metric buffer, as
its telemetry config says. Without metrics configured that meter is
temporalio's no-op meter: then this module is not even imported, and the hot
paths never call in. It holds the client's request metrics;
``ablauf.worker.metrics`` the worker's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from google.protobuf.message import Message
from temporalio.common import MetricCounter, MetricHistogramTimedelta, MetricMeter
from temporalio.service import RPCError

__all__ = ["PREFIX", "RequestMetrics", "counter", "latency", "since"]

PREFIX = "temporal_"
"""sdk-core's default prefix of its own metrics (metrics made by user code have none)."""


def counter(meter: MetricMeter, name: str, description: str) -> MetricCounter:
    """One of sdk-core's counters."""
    return meter.create_counter(PREFIX + name, description)


def latency(meter: MetricMeter, name: str, description: str) -> MetricHistogramTimedelta:
    """One of sdk-core's latency histograms; its exporters give them their buckets."""
    return meter.create_histogram_timedelta(PREFIX + name, description, "duration")


def since(start_ns: int) -> timedelta:
    """Time passed since ``start_ns`` (of ``time.perf_counter_ns``)."""
    return timedelta(microseconds=(time.perf_counter_ns() - start_ns) / 1000)


class _Instruments:
    def __init__(self, meter: MetricMeter, long: bool) -> None:
        kind = "long_request" if long else "request"
        what = "long-poll request" if long else "request"
        self.request = counter(meter, kind, f"Count of client {what} successes by rpc name")
        self.failure = counter(
            meter, kind + "_failure", f"Count of client {what} failures by rpc name"
        )
        self.latency = latency(meter, kind + "_latency", f"Histogram of client {what} latencies")


class RequestMetrics:
    """The client's request metrics: each WorkflowService call the engine answers."""

    def __init__(self, meter: MetricMeter) -> None:
        self._meter = meter
        self._kinds: dict[tuple[str, str, str, bool], _Instruments] = {}

    def _of(self, rpc: str, req: Message) -> _Instruments:
        namespace = getattr(req, "namespace", None)
        task_queue = getattr(req, "task_queue", None)
        if task_queue is not None and not isinstance(task_queue, str):
            task_queue = task_queue.name
        # The requests sdk-core counts as long polls (besides a worker's task polls).
        long = rpc == "update_workflow_execution" or (
            rpc == "get_workflow_execution_history" and getattr(req, "wait_new_event", False)
        )
        key = (rpc, namespace or "", task_queue or "", long)
        kind = self._kinds.get(key)
        if kind is None:
            labels = {"operation": "".join(part.title() for part in rpc.split("_"))}
            if namespace is not None:
                labels["namespace"] = namespace
            if task_queue is not None:
                labels["task_queue"] = task_queue
            kind = self._kinds[key] = _Instruments(
                self._meter.with_additional_attributes(labels), long
            )
        return kind

    async def call(self, rpc: str, req: Message, answer: Callable[[], Awaitable[Any]]) -> Any:
        """``answer()``, counted and timed as the request ``rpc``."""
        rpc_kind = self._of(rpc, req)
        rpc_kind.request.add(1)
        began = time.perf_counter_ns()
        try:
            return await answer()
        except RPCError as err:
            rpc_kind.failure.add(1, {"status_code": err.status.name})
            raise
        finally:
            rpc_kind.latency.record(since(began))
