"""Contract: a run's history appends in chunks and reads back as any range of
events; buffered events wait for the next workflow task."""

from __future__ import annotations

import sqlite3

import pytest

from ablauf.history.events import frame, unframe
from ablauf.store.base import Store


def _event(event_id: int) -> bytes:
    return f"event {event_id} ".encode() * event_id  # sizes across one-byte lengths


def test_any_range_reads_back_across_chunks(store: Store) -> None:
    chunks = [(1, 1), (2, 4), (5, 5), (6, 12), (13, 14)]
    for first, last in chunks[:3]:
        store.append_events("run", [(i, _event(i)) for i in range(first, last + 1)])
    with store.transaction():
        for first, last in chunks[3:]:
            store.append_events("run", [(i, _event(i)) for i in range(first, last + 1)])
        store.append_events("other", [(1, b"other")])
        # Held chunks are seen before the commit.
        assert unframe(store.read_history("run", 13)) == [_event(13), _event(14)]
    for first in range(1, 17):
        for limit in (None, 0, 1, 2, 3, 5, 20):
            wanted = list(range(first, 15))[:limit]
            got = store.read_history("run", first, limit)
            assert got == frame((i, _event(i)) for i in wanted), (first, limit)
    assert unframe(store.read_history("other")) == [b"other"]
    assert store.read_history("nobody") == b""


def test_many_small_and_large_chunks_read_back_in_order(store: Store) -> None:
    big = b"x" * 5000
    with store.transaction():
        for event_id in range(1, 5):
            with store.transaction():
                store.append_events("run", [(event_id, b"small")])
    with store.transaction():
        for event_id in range(5, 9):
            store.append_events("run", [(event_id, big)])
    assert unframe(store.read_history("run")) == [b"small"] * 4 + [big] * 4
    assert unframe(store.read_history("run", 4, 2)) == [b"small", big]


def test_an_empty_append_changes_nothing(store: Store) -> None:
    store.append_events("run", [])
    assert store.read_history("run") == b""


def test_a_chunk_written_twice_or_with_gaps_fails_and_leaves_nothing(store: Store) -> None:
    store.append_events("run", [(1, b"one")])
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.append_events("run", [(2, b"two")])
        store.append_events("run", [(1, b"again")])  # held, fails at the commit
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.append_events("run", [(2, b"two"), (2, b"two again")])
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.append_events("run", [(2, b"two")])
        store.append_events("run", [(2, b"twice held")])
    with pytest.raises(sqlite3.IntegrityError):
        store.append_events("run", [(1, b"again, outside a transaction")])
    assert unframe(store.read_history("run")) == [b"one"]
    with store.transaction():
        store.append_events("run", [(2, b"two"), (3, b"three")])
    assert unframe(store.read_history("run")) == [b"one", b"two", b"three"]


def test_a_rolled_back_savepoint_takes_its_chunk_along(store: Store) -> None:
    with store.transaction():
        store.append_events("run", [(1, b"one")])
        with pytest.raises(RuntimeError), store.transaction():
            store.append_events("run", [(2, b"lost")])
            raise RuntimeError("undo")
        store.append_events("run", [(2, b"two")])
    assert unframe(store.read_history("run")) == [b"one", b"two"]


def test_buffered_events_are_taken_once_in_order(store: Store) -> None:
    assert store.count_buffered_events("run") == 0
    assert store.take_buffered_events("run") == []
    with store.transaction():
        store.add_buffered_event("run", b"first")
        store.add_buffered_event("other", b"theirs")
        store.add_buffered_event("run", b"second")
        assert store.count_buffered_events("run") == 2
    assert store.count_buffered_events("run") == 2
    with store.transaction():
        assert store.take_buffered_events("run") == [b"first", b"second"]
    assert store.count_buffered_events("run") == 0
    assert store.take_buffered_events("run") == []
    assert store.take_buffered_events("other") == [b"theirs"]


def test_a_rolled_back_take_leaves_the_buffered_events(store: Store) -> None:
    store.add_buffered_event("run", b"kept")
    with pytest.raises(RuntimeError), store.transaction():
        assert store.take_buffered_events("run") == [b"kept"]
        raise RuntimeError("undo")
    assert store.take_buffered_events("run") == [b"kept"]
