"""Payloads go through temporalio's DataConverter: pydantic models and codecs work."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultPayloadConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)

from ablauf import Client, Worker


class Item(BaseModel):
    name: str
    price: float


class Receipt(BaseModel):
    total: float
    names: list[str]


@activity.defn
async def total(items: list[Item]) -> Receipt:
    return Receipt(total=sum(i.price for i in items), names=[i.name for i in items])


@workflow.defn
class Checkout:
    @workflow.run
    async def run(self, items: list[Item]) -> Receipt:
        return await workflow.execute_activity(
            total, items, start_to_close_timeout=timedelta(seconds=5)
        )


class Reverse(PayloadCodec):
    """A codec that makes stored payloads unreadable: reversed bytes."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(metadata={"encoding": b"binary/reversed"}, data=p.SerializeToString()[::-1])
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            assert p.metadata["encoding"] == b"binary/reversed"
            decoded = Payload()
            decoded.ParseFromString(p.data[::-1])
            out.append(decoded)
        return out


async def test_pydantic_models(target: str, task_queue: str, suffix: str) -> None:
    client = await Client.connect(target, data_converter=pydantic_data_converter)
    async with Worker(client, task_queue=task_queue, workflows=[Checkout], activities=[total]):
        receipt = await client.execute_workflow(
            Checkout.run,
            [Item(name="tea", price=2.5), Item(name="cake", price=3)],
            id=f"co-{suffix}",
            task_queue=task_queue,
        )
    assert receipt == Receipt(total=5.5, names=["tea", "cake"])
    await client.close()


async def test_codec_encodes_what_is_stored(target: str, task_queue: str, suffix: str) -> None:
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=Reverse())
    assert isinstance(converter, DataConverter)
    client = await Client.connect(target, data_converter=converter)
    async with Worker(client, task_queue=task_queue, workflows=[Checkout], activities=[total]):
        handle = await client.start_workflow(
            Checkout.run, [Item(name="tea", price=1)], id=f"co-{suffix}", task_queue=task_queue
        )
        assert await handle.result() == Receipt(total=1, names=["tea"])
    history = [e async for e in handle.fetch_history_events()]
    started = history[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert started.metadata["encoding"] == b"binary/reversed"
    scheduled = next(e for e in history if e.HasField("activity_task_scheduled_event_attributes"))
    assert scheduled.activity_task_scheduled_event_attributes.input.payloads[0].metadata[
        "encoding"
    ] == (b"binary/reversed")
    await client.close()


class ActivityTagging(DefaultPayloadConverter, WithSerializationContext):
    """Marks every payload it writes with the activity its serialization context names."""

    def __init__(self, context: SerializationContext | None = None) -> None:
        super().__init__()
        self.context = context

    def with_context(self, context: SerializationContext) -> ActivityTagging:
        return ActivityTagging(context)

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        payloads = super().to_payloads(values)
        if isinstance(self.context, ActivitySerializationContext):
            for payload in payloads:
                payload.metadata["activity"] = str(self.context.activity_type).encode()
        return payloads


@activity.defn
async def shout(word: str) -> str:
    return word.upper()


@workflow.defn
class Shouting:
    @workflow.run
    async def run(self, word: str) -> str:
        return await workflow.execute_activity(
            shout, word, start_to_close_timeout=timedelta(seconds=5)
        )


async def test_activity_payloads_are_converted_in_the_activity_s_context(
    target: str, task_queue: str, suffix: str
) -> None:
    converter = DataConverter(payload_converter_class=ActivityTagging)
    client = await Client.connect(target, data_converter=converter)
    async with Worker(client, task_queue=task_queue, workflows=[Shouting], activities=[shout]):
        handle = await client.start_workflow(
            Shouting.run, "hey", id=f"ctx-{suffix}", task_queue=task_queue
        )
        assert await handle.result() == "HEY"
    history = [e async for e in handle.fetch_history_events()]
    # The workflow's own input was written with a workflow context: no mark.
    assert (
        "activity"
        not in history[0].workflow_execution_started_event_attributes.input.payloads[0].metadata
    )
    scheduled = next(e for e in history if e.HasField("activity_task_scheduled_event_attributes"))
    completed = next(e for e in history if e.HasField("activity_task_completed_event_attributes"))
    argument = scheduled.activity_task_scheduled_event_attributes.input.payloads[0]
    result = completed.activity_task_completed_event_attributes.result.payloads[0]
    assert argument.metadata["activity"] == b"shout"
    assert result.metadata["activity"] == b"shout"
    await client.close()
