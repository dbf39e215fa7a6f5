"""Headers through the payload codec when the client's header_codec_behavior
is CODEC: encoded in the history, decoded for workflow and activity code."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import temporalio.client
import temporalio.worker
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import HeaderCodecBehavior
from temporalio.converter import DataConverter, PayloadCodec

from ablauf import Client, Worker

SEEN: list[tuple[str, bytes]] = []


class Marking(PayloadCodec):
    """Wraps each payload, marking it as encoded."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(metadata={"encoding": b"marked"}, data=p.SerializeToString()) for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload.FromString(p.data) for p in payloads]


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn
class Greets:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=10)
        )


class _Inbound(temporalio.worker.WorkflowInboundInterceptor):
    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        with workflow.unsafe.sandbox_unrestricted():
            SEEN.append(("workflow", input.headers["foo"].data))
        return await super().execute_workflow(input)


class _Outbound(temporalio.worker.WorkflowOutboundInterceptor):
    def start_activity(
        self, input: temporalio.worker.StartActivityInput
    ) -> workflow.ActivityHandle[Any]:
        input.headers = {"foo": Payload(data=b"to the activity")}
        return super().start_activity(input)


class _Activity(temporalio.worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        SEEN.append(("activity", input.headers["foo"].data))
        return await super().execute_activity(input)


class Headers(temporalio.worker.Interceptor):
    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return _Activity(super().intercept_activity(next))

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        return _Inbound


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    async def start_workflow(
        self, input: temporalio.client.StartWorkflowInput
    ) -> temporalio.client.WorkflowHandle[Any, Any]:
        input.headers = {"foo": Payload(data=b"to the workflow")}
        return await super().start_workflow(input)


class ClientHeaders(temporalio.client.Interceptor):
    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _ClientOutbound(super().intercept_client(next))


async def test_headers_go_through_the_codec_when_the_client_says_so(
    target: str, task_queue: str, suffix: str
) -> None:
    base = await Client.connect(target, data_converter=DataConverter(payload_codec=Marking()))
    config = base.config()
    config["interceptors"] = [ClientHeaders()]
    config["header_codec_behavior"] = HeaderCodecBehavior.CODEC
    coded = Client(**config)
    SEEN.clear()
    async with Worker(
        coded,
        task_queue=task_queue,
        workflows=[Greets],
        activities=[greet],
        interceptors=[Headers()],
    ):
        handle = await coded.start_workflow(
            Greets.run, "Temporal", id=f"headers-{suffix}", task_queue=task_queue
        )
        assert await handle.result() == "Hello, Temporal!"
    assert SEEN == [("workflow", b"to the workflow"), ("activity", b"to the activity")]
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            header = event.activity_task_scheduled_event_attributes.header.fields["foo"]
            assert header.metadata["encoding"] == b"marked"
    await base.close()
