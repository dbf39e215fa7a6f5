"""The workflow runtime: :class:`WorkflowRuntime` and the objects it delegates to."""

from ablauf.replay.runtime.facade import WorkflowRuntime
from ablauf.replay.runtime.signals import QueryFailed

__all__ = ["QueryFailed", "WorkflowRuntime"]
