"""Contract: durable timers by id, run, kind and ref; due ones in order."""

from __future__ import annotations

import pytest

from ablauf.store.base import Store, TimerRecord


def _refs(store: Store) -> list[tuple[str, int, str]]:
    return [(t.run_id, t.kind, t.ref) for t in store.due_timers(1e9, 100)]


def test_due_timers_come_by_fire_time_then_id(store: Store) -> None:
    assert store.next_timer_at() is None
    assert store.due_timers(100.0, 10) == []
    late = store.insert_timer("run-1", 1, "late", 2, 30.0)
    first = store.insert_timer("run-1", 1, "a", 0, 10.0)
    second = store.insert_timer("run-2", 2, "b", 1, 10.0)
    assert store.next_timer_at() == 10.0
    assert store.due_timers(20.0, 10) == [
        TimerRecord(first, "run-1", 1, "a", 0, 10.0),
        TimerRecord(second, "run-2", 2, "b", 1, 10.0),
    ]
    assert [t.id for t in store.due_timers(30.0, 2)] == [first, second]
    assert [t.id for t in store.due_timers(30.0, 10)] == [first, second, late]
    assert store.due_timers(5.0, 10) == []


def test_a_timer_deleted_by_id_is_gone_and_its_id_never_reused(store: Store) -> None:
    with store.transaction():
        first = store.insert_timer("run-1", 1, "t", 0, 10.0)
        last = store.insert_timer("run-1", 1, "u", 0, 11.0)
    with store.transaction():
        assert store.delete_timer(last)
    with store.transaction():
        newer = store.insert_timer("run-2", 1, "t", 0, 12.0)
    assert newer > last > first
    with store.transaction():
        assert not store.delete_timer(last)
    assert [t.id for t in store.due_timers(100.0, 10)] == [first, newer]
    assert store.next_timer_at() == 10.0


def test_a_run_s_timers_deleted_by_kind_and_ref(store: Store) -> None:
    for kind, ref in [(1, "a"), (1, "b"), (2, "a"), (3, "a")]:
        store.insert_timer("run", kind, ref, 0, 1.0)
    store.insert_timer("other", 1, "a", 0, 1.0)
    store.delete_timers("run", 1, "a")
    assert _refs(store) == [("run", 1, "b"), ("run", 2, "a"), ("run", 3, "a"), ("other", 1, "a")]
    store.delete_ref_timers("run", "a", [2, 3])
    assert _refs(store) == [("run", 1, "b"), ("other", 1, "a")]
    store.insert_timer("run", 2, "b", 0, 1.0)
    store.delete_timers("run", kind=1)
    assert _refs(store) == [("other", 1, "a"), ("run", 2, "b")]
    store.insert_timer("run", 4, "c", 0, 1.0)
    store.delete_timers("run", ref="b")
    assert _refs(store) == [("other", 1, "a"), ("run", 4, "c")]
    store.delete_timers("run")
    assert _refs(store) == [("other", 1, "a")]


def test_a_run_s_timers_deleted_in_a_transaction(store: Store) -> None:
    store.insert_timer("run", 1, "a", 0, 1.0)
    store.insert_timer("other", 1, "a", 0, 2.0)
    with store.transaction():
        store.delete_timers("run")
        assert _refs(store) == [("other", 1, "a")]
        assert store.next_timer_at() == 2.0
    assert _refs(store) == [("other", 1, "a")]
    with pytest.raises(RuntimeError), store.transaction():
        store.delete_timers("other")
        raise RuntimeError("undo")
    assert _refs(store) == [("other", 1, "a")]
