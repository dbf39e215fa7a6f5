"""Task rows inserted in a transaction reach the SQLite file at its commit, with
savepoints undoing exactly their own part."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ablauf.store.base import TaskRecord
from ablauf.store.sqlite import SqliteStore


def _task(run_id: str = "run-1", kind: int = 0) -> TaskRecord:
    return TaskRecord(
        id=0,
        kind=kind,
        run_id=run_id,
        namespace="default",
        task_queue="q",
        ref=1,
        attempt=1,
        visible_at=0.0,
        lease_owner=None,
        lease_until=None,
        lease_nonce=0,
        started_at=None,
        scheduled_at=0.0,
        attempt_scheduled_at=0.0,
        cancel_requested=False,
        heartbeat_at=None,
        heartbeat_details=None,
        last_failure=None,
    )


def _rows_on_disk(path: Path) -> list[tuple[int, str, int]]:
    """What another connection sees in the file."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, run_id, attempt FROM tasks ORDER BY id").fetchall()


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStore(str(tmp_path / "s.db"))
    yield s
    s.close()


def test_a_row_inserted_and_deleted_in_one_transaction_never_reaches_the_file(
    store: SqliteStore, tmp_path: Path
) -> None:
    with store.transaction():
        kept, gone = _task("a"), _task("b")
        store.insert_task(kept)
        store.insert_task(gone)
        assert kept.id != gone.id
        assert [t.id for t in store.tasks_of_run("b")] == [gone.id]
        store.delete_task(gone.id)
        assert _rows_on_disk(tmp_path / "s.db") == []
    assert _rows_on_disk(tmp_path / "s.db") == [(kept.id, "a", 1)]
    assert store.tasks_of_run("b") == []


def test_ids_continue_after_the_rows_in_the_file(store: SqliteStore) -> None:
    with store.transaction():
        first = store.insert_task(_task())
    with store.transaction():
        second = store.insert_task(_task())
    assert second > first
    assert [t.id for t in store.tasks_of_run("run-1")] == [first, second]


def test_ids_stay_unique_when_another_connection_inserts_between(
    store: SqliteStore, tmp_path: Path
) -> None:
    other = SqliteStore(str(tmp_path / "s.db"))
    with store.transaction():
        mine = store.insert_task(_task("mine"))
    with other.transaction():
        theirs = [other.insert_task(_task("theirs")) for _ in range(3)]
    with store.transaction():
        after = store.insert_task(_task("mine"))
    other.close()
    assert after > max(theirs) > mine
    assert len({r[0] for r in _rows_on_disk(tmp_path / "s.db")}) == 5


def test_a_rolled_back_savepoint_restores_the_held_rows(store: SqliteStore, tmp_path: Path) -> None:
    task = _task()
    with store.transaction():
        with store.transaction():
            store.insert_task(task)
        with pytest.raises(RuntimeError), store.transaction():
            task.attempt = 2
            store.update_task(task)
            store.delete_task(task.id)
            store.insert_task(_task("other"))
            raise RuntimeError("undo this savepoint")
        assert [t.attempt for t in store.tasks_of_run("run-1")] == [1]
        assert store.tasks_of_run("other") == []
    assert _rows_on_disk(tmp_path / "s.db") == [(task.id, "run-1", 1)]


def test_rows_written_out_for_a_read_come_back_when_its_savepoint_rolls_back(
    store: SqliteStore, tmp_path: Path
) -> None:
    task = _task()
    with store.transaction():
        with store.transaction():
            store.insert_task(task)
        with pytest.raises(RuntimeError), store.transaction():
            # A read of the whole table writes the held rows out first.
            assert [t.id for t in store.ready_tasks(0, ["q"], 1.0, 10)] == [task.id]
            raise RuntimeError("undo this savepoint")
        assert [t.id for t in store.tasks_of_run("run-1")] == [task.id]
    assert _rows_on_disk(tmp_path / "s.db") == [(task.id, "run-1", 1)]


def test_a_failed_transaction_leaves_nothing(store: SqliteStore, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_task(_task())
        raise RuntimeError("roll back")
    assert _rows_on_disk(tmp_path / "s.db") == []
    with store.transaction():
        store.insert_task(_task("after"))
    assert [r[1] for r in _rows_on_disk(tmp_path / "s.db")] == ["after"]


def test_a_run_s_tasks_are_found_among_many_held_rows(store: SqliteStore, tmp_path: Path) -> None:
    with store.transaction():
        mine = [store.insert_task(_task("mine")) for _ in range(3)]
        for i in range(100):
            store.insert_task(_task(f"other-{i}"))
        store.delete_task(mine[1])
        assert [t.id for t in store.tasks_of_run("mine")] == [mine[0], mine[2]]
        store.delete_task(mine[0])
        assert [t.id for t in store.tasks_of_run("mine")] == [mine[2]]
    assert [r[0] for r in _rows_on_disk(tmp_path / "s.db") if r[1] == "mine"] == [mine[2]]
    assert len(_rows_on_disk(tmp_path / "s.db")) == 101


def test_a_committed_row_deleted_in_a_transaction_goes_at_its_commit(
    store: SqliteStore, tmp_path: Path
) -> None:
    kept, gone = _task("a"), _task("b")
    with store.transaction():
        store.insert_task(kept)
        store.insert_task(gone)
    with store.transaction():
        with store.transaction():
            store.delete_task(gone.id)
        assert store.tasks_of_run("b") == []
        assert [t.id for t in store.ready_tasks(0, ["q"], 1.0, 10)] == [kept.id]
    assert _rows_on_disk(tmp_path / "s.db") == [(kept.id, "a", 1)]


def test_a_rolled_back_savepoint_keeps_a_committed_row_it_deleted(
    store: SqliteStore, tmp_path: Path
) -> None:
    task = _task()
    with store.transaction():
        store.insert_task(task)
    with store.transaction():
        with pytest.raises(RuntimeError), store.transaction():
            store.delete_task(task.id)
            raise RuntimeError("undo this savepoint")
        assert [t.id for t in store.tasks_of_run("run-1")] == [task.id]
    assert _rows_on_disk(tmp_path / "s.db") == [(task.id, "run-1", 1)]


def test_a_savepoint_reaches_sqlite_only_with_a_write_inside_it(
    store: SqliteStore, tmp_path: Path
) -> None:
    task = _task()
    with store.transaction():
        store.insert_task(task)
    with store.transaction():
        with pytest.raises(RuntimeError), store.transaction():
            store.tasks_of_run("run-1")  # a read alone issues no savepoint
            task.attempt = 2
            store.update_task(task)  # a committed row: written at once, in a savepoint
            raise RuntimeError("undo this savepoint")
        with store.transaction():
            store.update_task(_task())  # unknown id: a no-op write, then released
        assert [t.attempt for t in store.tasks_of_run("run-1")] == [1]
    assert _rows_on_disk(tmp_path / "s.db") == [(task.id, "run-1", 1)]


def test_a_closed_run_s_rows_go_at_the_commit_in_program_order(
    store: SqliteStore, tmp_path: Path
) -> None:
    stored = _task("a")
    store.insert_task(stored)
    store.insert_timer("a", 1, "t", 0, 50.0)
    with store.transaction():
        held = _task("a")
        store.insert_task(held)
        store.delete_tasks_of_run("a")
        store.delete_timers("a")
        assert _rows_on_disk(tmp_path / "s.db") == [(stored.id, "a", 1)]
        assert store.tasks_of_run("a") == []
        # Inserted after the delete: kept, as if the delete had run at once.
        store.insert_timer("a", 1, "u", 0, 60.0)
        later = _task("a")
        store.insert_task(later)
    assert _rows_on_disk(tmp_path / "s.db") == [(later.id, "a", 1)]
    assert [t.ref for t in store.due_timers(100.0, 10)] == ["u"]


def test_a_rolled_back_savepoint_keeps_the_run_s_rows(store: SqliteStore, tmp_path: Path) -> None:
    stored = _task("a")
    store.insert_task(stored)
    store.insert_timer("a", 1, "t", 0, 50.0)
    with store.transaction(), pytest.raises(RuntimeError), store.transaction():
        store.delete_tasks_of_run("a")
        store.delete_timers("a")
        raise RuntimeError("undo")
    assert _rows_on_disk(tmp_path / "s.db") == [(stored.id, "a", 1)]
    assert [t.ref for t in store.due_timers(100.0, 10)] == ["t"]
