"""Errors the engine raises to its callers; the frontend maps them to RPC errors."""

from __future__ import annotations

__all__ = [
    "AlreadyStartedError",
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


class QueryFailedError(EngineError):
    """The query could not be answered (unknown name, handler error, no worker)."""


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
