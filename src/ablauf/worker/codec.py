"""Applying the data converter's payload codec around workflow code.

Histories and commands hold encoded payloads (what a codec produced, e.g.
encrypted); workflow code sees decoded ones. Without a codec nothing is copied.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import temporalio.converter
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload

__all__ = ["Codec"]

M = TypeVar("M", bound=Message)

# Search attributes are never run through the codec, and headers only when the
# client's header_codec_behavior says so, as in temporalio.
_SKIPPED = frozenset({"search_attributes", "header", "headers"})
_SKIPPED_WITH_HEADERS = frozenset({"search_attributes"})
_PAYLOAD = Payload.DESCRIPTOR.full_name


def _payloads_in(message: Message, skipped: frozenset[str]) -> Iterator[Payload]:
    if message.DESCRIPTOR.full_name == _PAYLOAD:
        yield message  # type: ignore[misc]
        return
    for field, value in message.ListFields():
        if field.name in skipped or field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for item in value.values():
                if isinstance(item, Message):
                    yield from _payloads_in(item, skipped)
        elif field.is_repeated:
            for item in value:
                yield from _payloads_in(item, skipped)
        else:
            yield from _payloads_in(value, skipped)


class Codec:
    """The payload codec of a data converter, applied to whole protos; to
    headers too when ``headers`` (``HeaderCodecBehavior.CODEC`` on the client)."""

    def __init__(
        self, data_converter: temporalio.converter.DataConverter, *, headers: bool = False
    ) -> None:
        self.codec = data_converter.payload_codec
        self.headers = headers
        self._skipped = _SKIPPED_WITH_HEADERS if headers else _SKIPPED

    async def _apply(self, messages: Sequence[M], encode: bool) -> list[M]:
        if self.codec is None:
            return list(messages)
        copies = []
        for message in messages:
            copy = type(message)()
            copy.CopyFrom(message)
            copies.append(copy)
        skipped = self._skipped
        targets = [p for m in copies for p in _payloads_in(m, skipped)]
        if targets:
            fn = self.codec.encode if encode else self.codec.decode
            results = await fn(targets)
            for target, result in zip(targets, results, strict=True):
                target.CopyFrom(result)
        return copies

    async def decode_events(self, events: Sequence[M]) -> list[M]:
        """Events with decoded payloads (copies; the originals stay encoded)."""
        return await self._apply(events, encode=False)

    async def encode_commands(self, commands: Sequence[M]) -> list[M]:
        """Commands with encoded payloads."""
        return await self._apply(commands, encode=True)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self.codec is None:
            return list(payloads)
        return list(await self.codec.decode(payloads))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self.codec is None:
            return list(payloads)
        return list(await self.codec.encode(payloads))

    async def encode_message(self, message: M) -> M:
        return (await self._apply([message], encode=True))[0]

    async def decode_message(self, message: M) -> M:
        return (await self._apply([message], encode=False))[0]
