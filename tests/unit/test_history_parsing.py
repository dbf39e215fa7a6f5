"""Stored events parse back to the events that were stored."""

from __future__ import annotations

from temporalio.api.history.v1 import HistoryEvent, WorkflowExecutionSignaledEventAttributes

from ablauf.history.events import parse_event, parse_history


def test_parse_history_returns_every_event_in_order() -> None:
    # Sizes around the one- and two-byte length prefixes and beyond.
    events = [
        HistoryEvent(
            event_id=i,
            event_type=26,  # type: ignore[arg-type]
            workflow_execution_signaled_event_attributes=WorkflowExecutionSignaledEventAttributes(
                signal_name="s" * size
            ),
        )
        for i, size in enumerate([0, 100, 120, 130, 16_370, 16_400, 70_000], start=1)
    ]
    stored = [e.SerializeToString() for e in events]
    parsed = parse_history(stored)
    assert parsed == events
    assert parsed == [parse_event(d) for d in stored]
    assert parse_history([]) == []
