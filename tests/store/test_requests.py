"""Contract: workflow updates, and queries answered across processes."""

from __future__ import annotations

from ablauf.store.base import UPDATE_ACCEPTED, UPDATE_COMPLETED, QueryRecord, Store
from tests.store.records import update


def test_updates_read_back_as_saved(store: Store) -> None:
    assert store.get_update("run-1", "u-1") is None
    assert store.updates_of_run("run-1") == []
    store.insert_update(update("u-2", seq=2))
    store.insert_update(update("u-1", seq=1))
    store.insert_update(update("u-1", run_id="run-2"))
    assert store.get_update("run-1", "u-1") == update("u-1", seq=1)
    accepted = update("u-1", seq=1, state=UPDATE_ACCEPTED, accepted_event_id=7)
    store.save_update(accepted)
    assert store.get_update("run-1", "u-1") == accepted
    done = update("u-2", seq=2, state=UPDATE_COMPLETED, outcome=b"result", accepted_event_id=9)
    with store.transaction():
        store.save_update(done)
    assert store.updates_of_run("run-1") == [accepted, done]
    assert store.updates_of_run("run-2") == [update("u-1", run_id="run-2")]


def test_a_query_is_taken_once_and_answered(store: Store) -> None:
    first = store.insert_query("run-1", "q", b"ask", 1.0)
    second = store.insert_query("run-2", "r", b"ask too", 2.0)
    store.insert_query("run-3", "elsewhere", b"not mine", 3.0)
    assert first != second
    assert store.get_query(first) == QueryRecord(
        first, "run-1", "q", b"ask", None, False, None, None
    )
    with store.transaction():
        taken = store.take_queries(["q", "r"], "owner-1")
    assert sorted(taken, key=lambda q: q.id) == [
        QueryRecord(first, "run-1", "q", b"ask", "owner-1", False, None, None),
        QueryRecord(second, "run-2", "r", b"ask too", "owner-1", False, None, None),
    ]
    assert store.take_queries(["q", "r"], "owner-2") == []
    store.answer_query(first, b"answer", None)
    store.answer_query(second, None, "it failed")
    assert store.get_query(first) == QueryRecord(
        first, "run-1", "q", b"ask", "owner-1", True, b"answer", None
    )
    assert store.get_query(second) == QueryRecord(
        second, "run-2", "r", b"ask too", "owner-1", True, None, "it failed"
    )
    store.delete_query(first)
    assert store.get_query(first) is None
