"""Errors the engine raises to its callers; the frontend maps them to RPC errors."""

from __future__ import annotations

__all__ = [
    "AlreadyStartedError",
    "CommandRejectedError",
    "DeadlineExceededError",
    "EngineError",
    "InvalidArgumentError",
    "MultiOperationError",
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


class MultiOperationError(EngineError):
    """An update-with-start could not be executed.

    ``errors`` holds, per operation (start, then update), its own error, or
    :data:`ABORTED` for one given up because of the other, or None for one
    that succeeded.
    """

    def __init__(self, start: EngineError | None, update: EngineError | None) -> None:
        super().__init__("Update-with-Start could not be executed.")
        self.errors = (start, update)

    @property
    def cause(self) -> EngineError:
        """The error that is not an abort (Temporal's status code for the call)."""
        return next(e for e in self.errors if e is not None and e is not ABORTED)


ABORTED = EngineError("Operation was aborted.")
"""An operation of a multi-operation given up because another one failed."""
