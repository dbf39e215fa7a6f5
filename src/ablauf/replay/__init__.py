"""The deterministic workflow runtime: Temporal history events in, Temporal commands out.

:class:`WorkflowInstance` replays a run's history and answers its workflow tasks,
running the user's ``temporalio.workflow`` code on ablauf's own event loop.
"""

from ablauf.replay.instance import QueryFailed, WorkflowInstance, WorkflowTaskOutcome

__all__ = ["QueryFailed", "WorkflowInstance", "WorkflowTaskOutcome"]
