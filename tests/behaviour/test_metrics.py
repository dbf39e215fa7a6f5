"""Metrics: with a temporalio ``Runtime`` that serves Prometheus, the client and
worker export Temporal's SDK metrics under sdk-core's names and labels, and what
workflow and activity code record with ``metric_meter()`` (nothing while replaying)."""

from __future__ import annotations

import asyncio
import re
import socket
import urllib.request
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from ablauf import Client, Worker


@activity.defn
async def metered_step(name: str) -> str:
    activity.metric_meter().create_counter("ablauf_test_activity_calls").add(1, {"step": name})
    return name


@workflow.defn
class MeteredWorkflow:
    @workflow.run
    async def run(self) -> str:
        # Without a cache every later task replays this line; it must count once.
        workflow.metric_meter().create_counter("ablauf_test_workflow_runs").add(1)
        first = await workflow.execute_activity(
            metered_step, "a", start_to_close_timeout=timedelta(seconds=10)
        )
        return first + await workflow.execute_activity(
            metered_step, "b", start_to_close_timeout=timedelta(seconds=10)
        )


def _prometheus_runtime() -> tuple[Runtime, int]:
    """A runtime serving Prometheus on a free port (tried again if taken meanwhile)."""
    for _ in range(5):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        config = PrometheusConfig(bind_address=f"127.0.0.1:{port}")
        try:
            return Runtime(telemetry=TelemetryConfig(metrics=config)), port
        except ValueError:  # "Address already in use"
            continue
    raise RuntimeError("no free port for the Prometheus endpoint")


_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+)$")


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of the Prometheus endpoint: (name, labels) to value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is not None:
            name, labels, value = match.groups()
            pairs = frozenset(tuple(p.split("=", 1)) for p in re.findall(r'\w+="[^"]*"', labels))
            samples[(name, frozenset((k, v.strip('"')) for k, v in pairs))] = float(value)
    return samples


async def test_worker_and_custom_metrics_are_exported_under_temporals_names(
    target: str, task_queue: str, suffix: str
) -> None:
    runtime, port = _prometheus_runtime()
    client = await Client.connect(target, runtime=runtime)
    try:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[MeteredWorkflow],
            activities=[metered_step],
            max_cached_workflows=0,
        ):
            result = await client.execute_workflow(
                MeteredWorkflow.run, id=f"metrics-{suffix}", task_queue=task_queue
            )
        assert result == "ab"
    finally:
        await client.close()
    samples = await asyncio.to_thread(_scrape, port)

    common = {("namespace", "default"), ("service_name", "temporal-core-sdk")}
    queue = frozenset({*common, ("task_queue", task_queue)})
    of_workflow = queue | {("workflow_type", "MeteredWorkflow")}
    of_activity = of_workflow | {("activity_type", "metered_step")}

    assert samples[("temporal_workflow_completed", of_workflow)] == 1
    assert samples[("temporal_workflow_endtoend_latency_count", of_workflow)] == 1
    # At least three workflow tasks (the start, one after each activity) and
    # two activity attempts; a slow machine may time one out and run it again.
    assert samples[("temporal_workflow_task_execution_latency_count", of_workflow)] >= 3
    assert samples[("temporal_workflow_task_schedule_to_start_latency_count", queue)] >= 3
    assert samples[("temporal_activity_execution_latency_count", of_activity)] >= 2
    assert samples[("temporal_activity_succeed_endtoend_latency_count", of_activity)] == 2
    assert samples[("temporal_activity_schedule_to_start_latency_count", queue)] >= 2
    assert samples[("ablauf_test_workflow_runs", of_workflow)] == 1
    # The client's requests: the start, and the long poll for the result.
    start = queue | {("operation", "StartWorkflowExecution")}
    assert samples[("temporal_request", start)] == 1
    assert samples[("temporal_request_latency_count", start)] == 1
    history = frozenset({*common, ("operation", "GetWorkflowExecutionHistory")})
    assert samples[("temporal_long_request", history)] >= 1
    activity_labels = queue | {("activity_type", "metered_step")}
    for step in "ab":
        assert samples[("ablauf_test_activity_calls", activity_labels | {("step", step)})] == 1
