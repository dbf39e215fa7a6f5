"""Contract: a transaction commits every change or none; a nested one undoes
only its own; ``atomic`` joins an open transaction."""

from __future__ import annotations

import pytest

from ablauf.store.base import Store
from tests.store.records import execution, owner, schedule, task, update


def _write_everything(store: Store) -> None:
    store.insert_execution(execution())
    store.update_execution(execution(version=1))
    store.set_current_run("default", "wf", "run-1")
    store.append_events("run-1", [(1, b"started")])
    store.add_buffered_event("run-1", b"signal")
    store.insert_task(task())
    store.insert_timer("run-1", 1, "t", 0, 5.0)
    store.register_owner(owner())
    store.insert_update(update())
    store.insert_query("run-1", "q", b"ask", 1.0)
    store.insert_schedule(schedule())


def _written(store: Store) -> dict[str, object]:
    """What the store holds of ``_write_everything``'s rows (nothing: all falsy)."""
    return {
        "execution": store.get_execution("run-1"),
        "current run": store.current_run_id("default", "wf"),
        "history": store.read_history("run-1"),
        "buffered": store.count_buffered_events("run-1"),
        "tasks": store.tasks_of_run("run-1"),
        "timers": store.due_timers(100.0, 10),
        "owners": store.owners(),
        "updates": store.updates_of_run("run-1"),
        "queries": store.take_queries(["q"], "o"),
        "schedule": store.get_schedule("default", "s-1"),
        "run ids": list(store.iter_run_ids()),
    }


def _nothing_written(store: Store) -> bool:
    return not any(_written(store).values())


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        _write_everything(store)
        raise RuntimeError("roll back")
    assert _nothing_written(store)


def test_a_committed_transaction_keeps_everything(store: Store) -> None:
    with store.transaction():
        _write_everything(store)
    assert all(_written(store).values())
    assert store.execution_version("run-1") == 1


def test_a_failed_nested_transaction_undoes_only_its_own_writes(store: Store) -> None:
    with store.transaction():
        store.insert_timer("run-1", 1, "kept", 0, 5.0)
        with pytest.raises(RuntimeError), store.transaction():
            _write_everything(store)
            raise RuntimeError("undo the savepoint")
        assert [t.ref for t in store.due_timers(100.0, 10)] == ["kept"]
        with store.transaction(), store.transaction():
            store.register_owner(owner("nested"))
    assert [t.ref for t in store.due_timers(100.0, 10)] == ["kept"]
    assert [o.owner_id for o in store.owners()] == ["nested"]
    assert store.get_execution("run-1") is None


def test_a_failed_outer_transaction_undoes_its_committed_savepoints(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        with store.transaction():
            _write_everything(store)
        raise RuntimeError("roll back")
    assert _nothing_written(store)


def test_atomic_commits_alone_and_joins_an_open_transaction(store: Store) -> None:
    with store.atomic():
        store.insert_timer("run-1", 1, "alone", 0, 5.0)
    assert [t.ref for t in store.due_timers(100.0, 10)] == ["alone"]
    with pytest.raises(RuntimeError), store.atomic():
        store.insert_timer("run-1", 1, "undone", 0, 6.0)
        raise RuntimeError("roll back")
    assert [t.ref for t in store.due_timers(100.0, 10)] == ["alone"]
    # Joined, not a savepoint: a failure inside leaves its writes to the
    # transaction, which commits them.
    with store.transaction(), pytest.raises(RuntimeError), store.atomic():
        store.insert_timer("run-1", 1, "joined", 0, 7.0)
        raise RuntimeError("caught by the caller")
    assert [t.ref for t in store.due_timers(100.0, 10)] == ["alone", "joined"]


def test_the_store_can_be_used_after_a_failed_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_task(task())
        raise RuntimeError("roll back")
    with store.transaction():
        store.insert_task(task("after"))
        with store.transaction():
            store.append_events("after", [(1, b"one")])
    assert [t.run_id for t in store.tasks_of_run("after")] == ["after"]
    assert store.read_history("after") != b""


def test_data_version_holds_still_within_a_transaction_and_for_own_commits(
    store: Store,
) -> None:
    before = store.data_version()
    assert isinstance(before, int)
    with store.transaction():
        inside = store.data_version()
        store.insert_timer("run-1", 1, "t", 0, 5.0)
        assert store.data_version() == inside
    # Only other connections' commits move it: this store's own are known.
    assert store.data_version() == before
