"""Payloads go through temporalio's DataConverter: pydantic models and codecs work."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

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
