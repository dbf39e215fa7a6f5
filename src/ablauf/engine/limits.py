"""Temporal's payload size limit, checked before anything is stored."""

from __future__ import annotations

from google.protobuf.message import Message
from temporalio.api.enums.v1 import WorkflowTaskFailedCause

from ablauf.engine.errors import CommandRejectedError, InvalidArgumentError

__all__ = [
    "PAYLOADS_TOO_LARGE",
    "PAYLOADS_TOO_LARGE_TYPE",
    "PAYLOAD_LIMIT",
    "PayloadsTooLargeError",
    "check_payloads",
    "check_request",
]

# Temporal's blob size error limit.
PAYLOAD_LIMIT = 2 * 1024 * 1024
# What temporalio's worker reports when it refuses to upload an oversized payload.
PAYLOADS_TOO_LARGE = (
    "[TMPRL1103] Attempted to upload payloads with size that exceeded the error limit."
)
PAYLOADS_TOO_LARGE_TYPE = "PayloadsTooLarge"


class PayloadsTooLargeError(CommandRejectedError):
    """A command's payload is over Temporal's 2 MiB blob limit."""

    def __init__(self) -> None:
        super().__init__(
            PAYLOADS_TOO_LARGE,
            WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_PAYLOADS_TOO_LARGE,
            PAYLOADS_TOO_LARGE_TYPE,
        )


def check_payloads(message: Message) -> None:
    """Raises if a worker's upload (a command) is over the limit, in temporalio's words."""
    if message.ByteSize() > PAYLOAD_LIMIT:
        raise PayloadsTooLargeError


def check_request(message: Message) -> None:
    """Raises if a client request's payloads are over the limit, in the server's words."""
    if message.ByteSize() > PAYLOAD_LIMIT:
        raise InvalidArgumentError("Blob data size exceeds limit.")
