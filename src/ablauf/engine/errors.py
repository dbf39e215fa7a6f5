"""Errors the engine raises to its callers; the frontend maps them to RPC errors."""

from __future__ import annotations

__all__ = [
    "AlreadyStartedError",
    "CommandRejectedError",
    "DeadlineExceededError",
    "EngineError",
    "InvalidArgumentError",
    "NotFoundError",
    "QueryFailedError",
    "ResourceExhaustedError",
]


class EngineError(Exception):
    """An engine operation was refused."""


class NotFoundError(EngineError):
    """The workflow or run does not exist, or is no longer running."""


class InvalidArgumentError(EngineError):
    """A request or command is malformed."""


class CommandRejectedError(InvalidArgumentError):
    """A command of a completed workflow task was refused.

    The engine records the workflow task as failed with ``cause``, Temporal's
    ``WorkflowTaskFailedCause`` for what was wrong, and the message as an
    application failure of type ``failure_type``.
    """

    def __init__(
        self, message: str, cause: int, failure_type: str = "InvalidArgumentError"
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.failure_type = failure_type


class QueryFailedError(EngineError):
    """The query could not be answered (unknown name, handler error, no worker)."""


class DeadlineExceededError(EngineError):
    """The call's deadline (its RPC timeout) passed before its answer was ready."""


class ResourceExhaustedError(EngineError):
    """A per-workflow limit (such as updates in flight) is reached."""


class AlreadyStartedError(EngineError):
    """A run with this workflow id is already running."""

    def __init__(self, workflow_id: str, run_id: str) -> None:
        super().__init__(
            f"Workflow execution is already running. WorkflowId: {workflow_id}, RunId: {run_id}."
        )
        self.workflow_id = workflow_id
        self.run_id = run_id
