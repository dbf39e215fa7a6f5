"""Worker interceptors, tracing and plugins, on both engines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, NoReturn

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio import activity, workflow
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.plugin import SimplePlugin
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ContinueAsNewInput,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    SignalChildWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from ablauf import Client, Worker

# -- a recording interceptor -----------------------------------------------------------------------

_HEADER = "probe"
# Calls seen, by workflow id (an activity's under its workflow's).
calls: dict[str, list[str]] = {}
# Set by the last activity: the workflow then waits for its query and update.
ready: dict[str, asyncio.Event] = {}


def _note(entry: str) -> None:
    if not workflow.unsafe.is_replaying():
        calls.setdefault(workflow.info().workflow_id, []).append(entry)


def _header(headers: Any) -> str:
    payload = headers.get(_HEADER)
    return "" if payload is None else f":{workflow.payload_converter().from_payload(payload)}"


def _with_header(headers: Any, value: str) -> dict[str, Any]:
    return {**headers, _HEADER: workflow.payload_converter().to_payload(value)}


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        # (temporalio's workflow.info() is not available yet here)
        super().init(_Outbound(outbound))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        _note(f"execute_workflow{_header(input.headers)}")
        return await super().execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        _note(f"handle_signal:{input.signal}{_header(input.headers)}")
        await super().handle_signal(input)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        calls.setdefault(workflow.info().workflow_id, []).append(f"handle_query:{input.query}")
        return await super().handle_query(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        _note(f"handle_update_validator:{input.update}")
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        _note(f"handle_update_handler:{input.update}")
        return await super().handle_update_handler(input)


class _Outbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        _note(f"start_activity:{input.activity}")
        input.headers = _with_header(input.headers, input.activity)
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        _note(f"start_local_activity:{input.activity}")
        input.headers = _with_header(input.headers, "local")
        return super().start_local_activity(input)

    async def start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> workflow.ChildWorkflowHandle[Any, Any]:
        _note(f"start_child_workflow:{input.workflow}")
        input.headers = _with_header(input.headers, "child")
        return await super().start_child_workflow(input)

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        _note(f"signal_child_workflow:{input.signal}")
        input.headers = _with_header(input.headers, "signal")
        await super().signal_child_workflow(input)

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        _note("continue_as_new")
        input.headers = _with_header(input.headers, "continued")
        super().continue_as_new(input)


class _ActivityInbound(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(_ActivityOutbound(outbound))

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        payload = input.headers.get(_HEADER)
        value = activity.payload_converter().from_payload(payload) if payload else None
        calls.setdefault(info.workflow_id or "", []).append(
            f"{info.activity_type}:execute_activity:{value}"
        )
        return await super().execute_activity(input)


class _ActivityOutbound(ActivityOutboundInterceptor):
    def info(self) -> activity.Info:
        info = super().info()
        calls.setdefault(info.workflow_id or "", []).append(f"{info.activity_type}:info")
        return info

    def heartbeat(self, *details: Any) -> None:
        info = super().info()
        calls.setdefault(info.workflow_id or "", []).append(f"{info.activity_type}:heartbeat")
        super().heartbeat(*details)


class Recorder(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound


# -- workflows -------------------------------------------------------------------------------------


@activity.defn
async def probe(name: str) -> str:
    activity.info()
    activity.heartbeat("beat")
    return f"probed {name}"


@activity.defn
async def mark_ready() -> None:
    ready[activity.info().workflow_id or ""].set()


@workflow.defn
class Follower:
    def __init__(self) -> None:
        self.told = ""

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: bool(self.told))
        return self.told

    @workflow.signal
    def tell(self, what: str) -> None:
        self.told = what


@workflow.defn
class Recorded:
    def __init__(self) -> None:
        self.finished = False

    @workflow.run
    async def run(self, first: bool) -> str:
        if not first:
            return "continued"
        timeout = timedelta(seconds=10)
        await workflow.execute_activity(probe, "a", start_to_close_timeout=timeout)
        await workflow.execute_local_activity(probe, "b", start_to_close_timeout=timeout)
        child = await workflow.start_child_workflow(
            Follower.run, id=f"{workflow.info().workflow_id}-child"
        )
        await child.signal(Follower.tell, "go")
        await child
        await workflow.execute_activity(mark_ready, start_to_close_timeout=timeout)
        await workflow.wait_condition(lambda: self.finished)
        workflow.continue_as_new(False)

    @workflow.query
    def stage(self) -> str:
        return "finished" if self.finished else "waiting"

    @workflow.update
    def finish(self) -> None:
        self.finished = True

    @finish.validator
    def check_finish(self) -> None:
        pass


@workflow.defn
class Traced:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> str:
        result = await workflow.execute_activity(
            probe, "t", start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: self.done)
        return f"{result} {','.join(self.names)}"

    @workflow.signal
    def add(self, name: str) -> None:
        self.names.append(name)

    @workflow.query
    def names_so_far(self) -> list[str]:
        return self.names

    @workflow.update
    def finish(self) -> int:
        self.done = True
        return len(self.names)

    @finish.validator
    def check_finish(self) -> None:
        pass


# -- tests -----------------------------------------------------------------------------------------


async def test_interceptors_see_inbound_and_outbound_calls_in_order(
    client: Client, task_queue: str, suffix: str
) -> None:
    workflow_id = f"recorded-{suffix}"
    ready[workflow_id] = asyncio.Event()
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[Recorded, Follower],
        activities=[probe, mark_ready],
        interceptors=[Recorder()],
    ):
        handle = await client.start_workflow(
            Recorded.run, True, id=workflow_id, task_queue=task_queue
        )
        await asyncio.wait_for(ready[workflow_id].wait(), 20)
        assert await handle.query(Recorded.stage) == "waiting"
        await handle.execute_update(Recorded.finish)
        assert await handle.result() == "continued"
    assert calls[workflow_id] == [
        "execute_workflow",
        "start_activity:probe",
        # The activity interceptor's own activity.info() goes through the outbound one.
        "probe:info",
        "probe:execute_activity:probe",
        "probe:info",
        "probe:heartbeat",
        "start_local_activity:probe",
        "probe:info",
        "probe:execute_activity:local",
        "probe:info",
        "probe:heartbeat",
        "start_child_workflow:Follower",
        "signal_child_workflow:tell",
        "start_activity:mark_ready",
        "mark_ready:info",
        "mark_ready:execute_activity:mark_ready",
        "mark_ready:info",
        "handle_query:stage",
        "handle_update_validator:finish",
        "handle_update_handler:finish",
        "continue_as_new",
        # The next run, started with the headers continue-as-new was given.
        "execute_workflow:continued",
    ]
    # The child's signal may come before or after its first task: order aside,
    # the headers came with the start and the signal.
    assert sorted(calls[f"{workflow_id}-child"]) == [
        "execute_workflow:child",
        "handle_signal:tell:signal",
    ]


def _structure(spans: tuple[ReadableSpan, ...]) -> list[tuple[str, str, tuple[str, ...]]]:
    """Each span's name, its parent's name, and the names of the spans it links to."""
    names = {span.context.span_id: span.name for span in spans}

    def parent(span: ReadableSpan) -> str:
        return names.get(span.parent.span_id, "?") if span.parent else ""

    return sorted(
        (
            span.name,
            parent(span),
            tuple(names.get(link.context.span_id, "?") for link in span.links),
        )
        for span in spans
    )


async def test_tracing_interceptor_makes_the_workers_spans(
    target: str, task_queue: str, suffix: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # On the client only: the worker takes it from there, as temporalio's does.
    client = await Client.connect(
        target, interceptors=[TracingInterceptor(provider.get_tracer(__name__))]
    )
    try:
        async with Worker(client, task_queue=task_queue, workflows=[Traced], activities=[probe]):
            handle = await client.start_workflow(
                Traced.run, id=f"traced-{suffix}", task_queue=task_queue
            )
            await handle.signal(Traced.add, "a")
            assert await handle.query(Traced.names_so_far) == ["a"]
            assert await handle.execute_update(Traced.finish) == 1
            assert await handle.result() == "probed t a"
    finally:
        await client.close()
    start = "StartWorkflow:Traced"
    assert _structure(exporter.get_finished_spans()) == [
        ("CompleteWorkflow:Traced", start, ()),
        ("HandleQuery:names_so_far", "QueryWorkflow:names_so_far", (start,)),
        ("HandleSignal:add", start, ("SignalWorkflow:add",)),
        ("HandleUpdate:finish", start, ("StartWorkflowUpdate:finish",)),
        ("QueryWorkflow:names_so_far", "", ()),
        ("RunActivity:probe", "StartActivity:probe", ()),
        ("RunWorkflow:Traced", start, ()),
        ("SignalWorkflow:add", "", ()),
        ("StartActivity:probe", start, ()),
        (start, "", ()),
        ("StartWorkflowUpdate:finish", "", ()),
        ("ValidateUpdate:finish", start, ("StartWorkflowUpdate:finish",)),
    ]


async def test_a_client_plugin_configures_and_runs_the_worker(
    target: str, task_queue: str, suffix: str
) -> None:
    seen: list[str] = []

    @contextlib.asynccontextmanager
    async def around_worker() -> AsyncIterator[None]:
        seen.append("worker starts")
        yield
        seen.append("worker stopped")

    # A client plugin that is a worker plugin too: it gives the worker an
    # activity and an interceptor, and runs around it.
    plugin = SimplePlugin(
        "probing", activities=[probe], interceptors=[Recorder()], run_context=around_worker
    )
    client = await Client.connect(target, plugins=[plugin])
    workflow_id = f"plugged-{suffix}"
    try:
        async with Worker(client, task_queue=task_queue, workflows=[Traced]):
            handle = await client.start_workflow(Traced.run, id=workflow_id, task_queue=task_queue)
            await handle.execute_update(Traced.finish)
            assert await handle.result() == "probed t "
            assert seen == ["worker starts"]
        assert seen == ["worker starts", "worker stopped"]
    finally:
        await client.close()
    # The plugin's interceptor saw the workflow and the plugin's activity.
    assert {"execute_workflow", "start_activity:probe", "probe:execute_activity:probe"} <= set(
        calls[workflow_id]
    )
