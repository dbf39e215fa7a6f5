"""Temporal's payload size limit, checked before anything is stored."""

from __future__ import annotations

from temporalio.api.common.v1 import Payloads

from ablauf.engine.errors import InvalidArgumentError

__all__ = ["PAYLOAD_LIMIT", "check_payloads"]

# Temporal's blob size error limit.
PAYLOAD_LIMIT = 2 * 1024 * 1024


def check_payloads(payloads: Payloads, what: str = "input") -> None:
    """Raises if the payloads are over Temporal's 2 MiB blob limit."""
    size = payloads.ByteSize()
    if size > PAYLOAD_LIMIT:
        raise InvalidArgumentError(
            f"Blob data size exceeds limit. ({what} is {size} bytes, the limit is {PAYLOAD_LIMIT})"
        )
