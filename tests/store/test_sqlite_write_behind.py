"""Rows a transaction writes reach the SQLite file at its commit, as another
connection sees it: savepoints undo exactly their own part, a run's history
chunks are shared by its transitions committed together, and another
connection's changes are seen."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ablauf.history.events import unframe
from ablauf.store.sqlite import SqliteStore
from tests.store.records import execution, task


def _on_disk(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows as another connection sees them in the file."""
    with sqlite3.connect(path) as db:
        rows = db.execute(sql).fetchall()
    db.close()
    return rows


def _tasks_on_disk(path: Path) -> list[tuple[object, ...]]:
    return _on_disk(path, "SELECT id, run_id, attempt FROM tasks ORDER BY id")


def _runs_on_disk(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    executions = _on_disk(
        path,
        "SELECT run_id, workflow_id, status, start_time, close_time, next_event_id, version "
        "FROM executions ORDER BY run_id",
    )
    return executions, _on_disk(path, "SELECT workflow_id, run_id FROM current_runs")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(path))
    yield s
    s.close()


def test_a_new_run_is_written_at_the_commit_with_its_last_update(
    store: SqliteStore, path: Path
) -> None:
    with store.transaction():
        store.insert_execution(execution())
        store.set_current_run("default", "wf", "run-1")
        assert _runs_on_disk(path) == ([], [])
        updated = execution(status=2, close_time=105.0, next_event_id=7, version=3)
        store.update_execution(updated)
    assert _runs_on_disk(path) == ([("run-1", "wf", 2, 100.0, 105.0, 7, 3)], [("wf", "run-1")])


def test_a_savepoint_rolled_back_takes_its_new_run_off_the_file(
    store: SqliteStore, path: Path
) -> None:
    with store.transaction():
        store.insert_execution(execution("run-1"))
        store.set_current_run("default", "wf", "run-1")
        with pytest.raises(RuntimeError), store.transaction():
            store.update_execution(dataclasses.replace(execution("run-1"), version=5))
            store.insert_execution(execution("run-2"))
            store.set_current_run("default", "wf", "run-2")
            raise RuntimeError("the change fails")
    assert _runs_on_disk(path) == ([("run-1", "wf", 1, 100.0, None, 1, 0)], [("wf", "run-1")])


def test_a_run_started_outside_a_transaction_is_written_at_once(
    store: SqliteStore, path: Path
) -> None:
    store.insert_execution(execution())
    store.set_current_run("default", "wf", "run-1")
    assert _runs_on_disk(path) == ([("run-1", "wf", 1, 100.0, None, 1, 0)], [("wf", "run-1")])


def test_a_task_inserted_and_deleted_in_one_transaction_never_reaches_the_file(
    store: SqliteStore, path: Path
) -> None:
    with store.transaction():
        kept, gone = task("a"), task("b")
        store.insert_task(kept)
        store.insert_task(gone)
        store.delete_task(gone.id)
        assert _tasks_on_disk(path) == []
    assert _tasks_on_disk(path) == [(kept.id, "a", 1)]


def test_task_ids_stay_unique_when_another_connection_inserts_between(
    store: SqliteStore, path: Path
) -> None:
    other = SqliteStore(str(path))
    with store.transaction():
        mine = store.insert_task(task("mine"))
    with other.transaction():
        theirs = [other.insert_task(task("theirs")) for _ in range(3)]
    with store.transaction():
        after = store.insert_task(task("mine"))
    other.close()
    assert after > max(theirs) > mine
    assert len({r[0] for r in _tasks_on_disk(path)}) == 5


def test_savepoints_leave_the_file_with_exactly_the_committed_rows(
    store: SqliteStore, path: Path
) -> None:
    rec = task()
    with store.transaction():
        with store.transaction():
            store.insert_task(rec)
        with pytest.raises(RuntimeError), store.transaction():
            rec.attempt = 2
            store.update_task(rec)
            store.delete_task(rec.id)
            store.insert_task(task("other"))
            raise RuntimeError("undo this savepoint")
        with pytest.raises(RuntimeError), store.transaction():
            # A read of the whole table writes the held rows out first.
            assert [t.id for t in store.ready_tasks(0, ["q"], 1.0, 10)] == [rec.id]
            raise RuntimeError("undo this savepoint")
    assert _tasks_on_disk(path) == [(rec.id, "run-1", 1)]


def test_a_failed_transaction_writes_nothing_to_the_file(store: SqliteStore, path: Path) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_task(task())
        raise RuntimeError("roll back")
    assert _tasks_on_disk(path) == []
    with store.transaction():
        store.insert_task(task("after"))
    assert [r[1] for r in _tasks_on_disk(path)] == ["after"]


def test_many_held_rows_reach_the_file(store: SqliteStore, path: Path) -> None:
    with store.transaction():
        mine = [store.insert_task(task("mine")) for _ in range(3)]
        for i in range(100):
            store.insert_task(task(f"other-{i}"))
        store.delete_task(mine[1])
        store.delete_task(mine[0])
    assert [r[0] for r in _tasks_on_disk(path) if r[1] == "mine"] == [mine[2]]
    assert len(_tasks_on_disk(path)) == 101


def test_committed_rows_deleted_or_updated_in_savepoints(store: SqliteStore, path: Path) -> None:
    kept, gone = task("a"), task("b")
    with store.transaction():
        store.insert_task(kept)
        store.insert_task(gone)
    with store.transaction():
        with store.transaction():
            store.delete_task(gone.id)
        with pytest.raises(RuntimeError), store.transaction():
            store.delete_task(kept.id)
            raise RuntimeError("undo this savepoint")
        with pytest.raises(RuntimeError), store.transaction():
            store.tasks_of_run("a")  # a read alone issues no savepoint
            kept.attempt = 2
            store.update_task(kept)  # a committed row: written at once, in a savepoint
            raise RuntimeError("undo this savepoint")
        with store.transaction():
            store.update_task(task(id=10_000))  # unknown id: a no-op write, then released
    assert _tasks_on_disk(path) == [(kept.id, "a", 1)]


def test_a_closed_run_s_rows_leave_the_file_at_the_commit(store: SqliteStore, path: Path) -> None:
    stored = task("a")
    store.insert_task(stored)
    store.insert_timer("a", 1, "t", 0, 50.0)
    with store.transaction():
        store.insert_task(task("a"))
        store.delete_tasks_of_run("a")
        store.delete_timers("a")
        assert _tasks_on_disk(path) == [(stored.id, "a", 1)]
        later = task("a")
        store.insert_task(later)
    assert _tasks_on_disk(path) == [(later.id, "a", 1)]
    with store.transaction(), pytest.raises(RuntimeError), store.transaction():
        store.delete_tasks_of_run("a")
        raise RuntimeError("undo")
    assert _tasks_on_disk(path) == [(later.id, "a", 1)]


def test_a_run_s_transitions_committed_together_share_a_small_chunk(
    store: SqliteStore, path: Path
) -> None:
    with store.transaction():
        for event_id in range(1, 5):
            with store.transaction():
                store.append_events("run", [(event_id, b"small")])
                store.append_events("other", [(event_id, b"small")])
    big = b"x" * 5000
    with store.transaction():
        for event_id in range(5, 9):
            store.append_events("run", [(event_id, big)])
    assert _on_disk(
        path, "SELECT run_id, first_event_id, last_event_id FROM history ORDER BY run_id, 2"
    ) == [("other", 1, 4), ("run", 1, 4), ("run", 5, 6), ("run", 7, 8)]


def test_history_reads_back_after_reopening(store: SqliteStore, path: Path) -> None:
    store.append_events("run", [(1, b"one")])
    with store.transaction():
        store.append_events("run", [(2, b"two"), (3, b"three")])
    again = SqliteStore(str(path))
    assert unframe(again.read_history("run")) == [b"one", b"two", b"three"]
    again.close()


def test_another_connections_current_run_and_commits_are_seen(path: Path) -> None:
    mine, theirs = SqliteStore(str(path)), SqliteStore(str(path))
    with mine.transaction():
        mine.set_current_run("default", "wf", "run-1")
    assert mine.current_run_id("default", "wf") == "run-1"
    version = mine.data_version()
    with theirs.transaction():
        theirs.set_current_run("default", "wf", "run-2")
    # Inside a transaction the file is read as it is now.
    with mine.transaction():
        assert mine.current_run_id("default", "wf") == "run-2"
        assert mine.data_version() != version
    with theirs.transaction():
        theirs.set_current_run("default", "wf", "run-3")
    # Outside one, a read may lag another process's commit by a few milliseconds.
    time.sleep(0.05)
    assert mine.current_run_id("default", "wf") == "run-3"
    mine.close()
    theirs.close()
