"""Building and reading Temporal history events.

A history is a list of ``temporalio.api.history.v1.HistoryEvent`` protos, stored
serialized; their types and attributes mean what they mean in Temporal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History, HistoryEvent

from ablauf.wire import varint

__all__ = [
    "ATTRIBUTE_FIELDS",
    "attributes_of",
    "frame",
    "make_event",
    "parse_event",
    "parse_history",
    "payload_map",
    "seconds_of",
    "set_seconds",
    "set_time",
    "skip_frames",
    "unframe",
]

# Attribute field name for each event type, derived from the proto itself.
ATTRIBUTE_FIELDS: dict[int, str] = {}
for _field in HistoryEvent.DESCRIPTOR.oneofs_by_name["attributes"].fields:
    _name = _field.name.removesuffix("_event_attributes").upper()
    _type = EventType.Value(f"EVENT_TYPE_{_name}") if _name else None
    if _type is not None:
        ATTRIBUTE_FIELDS[_type] = _field.name


def set_time(event: HistoryEvent, at: float) -> None:
    """Sets ``event_time`` from epoch seconds."""
    seconds = int(at)
    event.event_time.seconds = seconds
    event.event_time.nanos = round((at - seconds) * 1e9) % 1_000_000_000


def seconds_of(duration: Duration) -> float:
    """A Duration proto in seconds (cheaper than going through timedelta)."""
    return duration.seconds + duration.nanos / 1e9


def set_seconds(duration: Duration, seconds: float) -> None:
    """Sets a Duration proto from seconds."""
    whole = int(seconds)
    duration.seconds = whole
    duration.nanos = round((seconds - whole) * 1e9)


def payload_map(fields: Mapping[str, Payload]) -> dict[str, Payload]:
    """A header's or memo's fields as a dict (``dict()`` of an empty proto map
    costs as much as a small event)."""
    return dict(fields) if fields else {}


def make_event(
    event_id: int,
    at: float,
    event_type: int,
    attrs: Message | None = None,
    attrs_data: bytes = b"",
) -> HistoryEvent:
    """Creates an event; ``attrs`` is copied into the type's attribute field,
    or ``attrs_data`` (the attributes serialized) parsed into it."""
    # Parsed from its time, type and attributes serialized: a third of
    # setting them field by field, and a transition's events share their time.
    global _time_field
    time_at, time_data = _time_field
    if time_at != at:
        stamp = HistoryEvent()
        set_time(stamp, at)
        time_data = stamp.SerializeToString()
        _time_field = (at, time_data)
    if attrs_data:
        head = time_data + _TYPE_AND_TAG[event_type] + varint(len(attrs_data))
        event = HistoryEvent.FromString(head + attrs_data)
    else:
        event = HistoryEvent.FromString(time_data + _TYPE_FIELDS[event_type])
    if event_id:
        event.event_id = event_id
    if attrs is not None:
        getattr(event, ATTRIBUTE_FIELDS[event_type]).CopyFrom(attrs)
    return event


def _type_field(event_type: int) -> bytes:
    # The event type with its attribute message present and empty, serialized.
    event = HistoryEvent(event_type=event_type)  # type: ignore[arg-type]
    getattr(event, ATTRIBUTE_FIELDS[event_type]).SetInParent()
    return event.SerializeToString()


_TYPE_FIELDS = {event_type: _type_field(event_type) for event_type in ATTRIBUTE_FIELDS}
# The event type serialized, then the tag of its attribute field (its length follows).
_TYPE_AND_TAG = {
    event_type: HistoryEvent(event_type=event_type).SerializeToString()  # type: ignore[arg-type]
    + varint(HistoryEvent.DESCRIPTOR.fields_by_name[name].number << 3 | 2)
    for event_type, name in ATTRIBUTE_FIELDS.items()
}
_time_field = (-1.0, b"")


def attributes_of(event: HistoryEvent) -> Any:
    """The event's attributes message."""
    return getattr(event, ATTRIBUTE_FIELDS[event.event_type])


def frame(events: Iterable[tuple[int, bytes]]) -> bytes:
    """Stored events, as (event id, serialized event), as one serialized
    ``History`` message.

    The frames of consecutive events simply concatenate, so a history kept in
    chunks reads back as one message without re-encoding.
    """
    return b"".join([_prefix(len(data)) + data for _, data in events])


def unframe(framed: bytes) -> list[bytes]:
    """The serialized events of a :func:`frame`."""
    datas = []
    offset, end = 0, len(framed)
    while offset < end:
        start, stop = _frame_at(framed, offset)
        datas.append(framed[start:stop])
        offset = stop
    return datas


def skip_frames(framed: bytes, count: int, offset: int = 0) -> int:
    """The offset ``count`` events after ``offset`` (or the end, if fewer follow)."""
    end = len(framed)
    while count > 0 and offset < end:
        offset = _frame_at(framed, offset)[1]
        count -= 1
    return offset


def _frame_at(framed: bytes, offset: int) -> tuple[int, int]:
    # Where the event framed at ``offset`` starts and ends (after the field tag
    # and the varint length).
    offset += 1
    size = framed[offset]
    offset += 1
    if size & 0x80:
        size &= 0x7F
        shift = 7
        while True:
            byte = framed[offset]
            offset += 1
            size |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
    return offset, offset + size


def parse_history(framed: bytes) -> list[HistoryEvent]:
    """Parses a :func:`frame` of stored events in one message.

    One message holds them all in one arena: a tenth of the memory of parsing
    each alone, and faster. An event kept from the result keeps the whole
    arena alive, so use it for histories read for a moment.
    """
    return list(History.FromString(framed).events)


# History.events is field 1 (length-delimited).
_FIELD_EVENTS = b"\x0a"
_ONE_BYTE_PREFIXES = [_FIELD_EVENTS + bytes((n,)) for n in range(0x80)]


def _prefix(size: int) -> bytes:
    if size < 0x80:
        return _ONE_BYTE_PREFIXES[size]
    if size < 0x4000:
        return bytes((0x0A, (size & 0x7F) | 0x80, size >> 7))
    return _FIELD_EVENTS + varint(size)


def parse_event(data: bytes) -> HistoryEvent:
    """Parses one stored event."""
    event = HistoryEvent()
    event.ParseFromString(data)
    return event
