"""Closing a run: its closing event, its tasks and timers dropped, its
attempts running here stopped, its parent told and its children handled as
their parent close policy says."""

from __future__ import annotations

from ablauf.engine import activities, children
from ablauf.engine.context import Transition

__all__ = ["close_run"]


def close_run(tx: Transition, event_type: int, attrs: object, status: int) -> None:
    """Appends the closing event and drops every task and timer of the run."""
    engine = tx.engine
    store = engine.store
    tx.add(event_type, attrs)  # type: ignore[arg-type]
    exe = tx.state.exe
    exe.status = status
    exe.close_time = tx.now
    store.delete_tasks_of_run(exe.run_id)
    exe.activity_owner = None
    # Attempts running here, with or without a row (see activities.schedule).
    for pending in tx.state.activities.values():
        task = pending.task
        if task is not None and task.lease_owner == engine.owner_id:
            tx.after_commit.append(
                lambda t=task: activities.cancel_local(engine, t, "NOT_FOUND")  # type: ignore[misc]
            )
            tx.disarms.append((exe.run_id, str(task.ref)))
    store.delete_timers(exe.run_id)
    if tx.state.buffered:
        store.take_buffered_events(exe.run_id)
        tx.state.buffered = 0
    tx.state.wft = None
    children.notify_parent(tx)
    children.apply_parent_close_policies(tx)
