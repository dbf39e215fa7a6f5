"""Temporal's payload size limit, checked before anything is stored."""

from __future__ import annotations

from google.protobuf.message import Message

from ablauf.engine.errors import InvalidArgumentError

__all__ = ["PAYLOAD_LIMIT", "PayloadsTooLargeError", "check_payloads"]

# Temporal's blob size error limit.
PAYLOAD_LIMIT = 2 * 1024 * 1024


class PayloadsTooLargeError(InvalidArgumentError):
    """A payload is over Temporal's 2 MiB blob limit."""


def check_payloads(message: Message, what: str = "input") -> None:
    """Raises if the payloads in ``message`` are over Temporal's 2 MiB blob limit."""
    size = message.ByteSize()
    if size > PAYLOAD_LIMIT:
        raise PayloadsTooLargeError(
            f"Blob data size exceeds limit. ({what} is {size} bytes, the limit is {PAYLOAD_LIMIT})"
        )
