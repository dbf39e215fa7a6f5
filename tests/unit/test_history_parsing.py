"""Stored events parse back to the events that were stored."""

from __future__ import annotations

from temporalio.api.history.v1 import (
    History,
    HistoryEvent,
    WorkflowExecutionSignaledEventAttributes,
)

from ablauf.history.events import (
    ATTRIBUTE_FIELDS,
    frame,
    make_event,
    parse_event,
    parse_history,
    skip_frames,
    unframe,
)


def _events() -> list[HistoryEvent]:
    # Sizes around the one- and two-byte length prefixes and beyond.
    return [
        HistoryEvent(
            event_id=i,
            event_type=26,  # type: ignore[arg-type]
            workflow_execution_signaled_event_attributes=WorkflowExecutionSignaledEventAttributes(
                signal_name="s" * size
            ),
        )
        for i, size in enumerate([0, 100, 120, 130, 16_370, 16_400, 70_000], start=1)
    ]


def test_a_frame_is_the_serialized_history_and_parses_back() -> None:
    events = _events()
    stored = [e.SerializeToString() for e in events]
    framed = frame(enumerate(stored, 1))
    assert framed == History(events=events).SerializeToString()
    parsed = parse_history(framed)
    assert parsed == events
    assert parsed == [parse_event(d) for d in stored]
    assert unframe(framed) == stored
    assert parse_history(frame([])) == []


def test_frames_concatenate_and_can_be_skipped() -> None:
    stored = [e.SerializeToString() for e in _events()]
    framed = frame(enumerate(stored[:3], 1)) + frame(enumerate(stored[3:], 4))
    assert unframe(framed) == stored
    for count in range(len(stored) + 2):
        assert unframe(framed[skip_frames(framed, count) :]) == stored[count:]
    middle = skip_frames(framed, 2)
    assert unframe(framed[middle : skip_frames(framed, 3, middle)]) == stored[2:5]


def test_make_event_sets_id_time_type_and_attributes() -> None:
    attrs = WorkflowExecutionSignaledEventAttributes(signal_name="go")
    for at in (1_764_165_000.25, 1_764_165_000.25, 1_764_165_001.5, 3.0):
        for event_type, field in ATTRIBUTE_FIELDS.items():
            event = make_event(7, at, event_type)
            assert (event.event_id, event.event_type) == (7, event_type)
            assert event.event_time.seconds == int(at)
            assert event.event_time.nanos == round((at - int(at)) * 1e9)
            assert event.WhichOneof("attributes") == field
            assert getattr(event, field).ByteSize() == 0
    signaled = make_event(0, 3.0, 26, attrs)
    assert signaled.event_id == 0
    assert signaled.workflow_execution_signaled_event_attributes == attrs
