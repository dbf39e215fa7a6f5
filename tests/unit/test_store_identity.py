"""Rows are named by ids that are never reused, the store notices when its file
is removed or replaced, and SQLite's errors about the file name their cause."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from ablauf.errors import StoreError, StoreLostError
from ablauf.store.base import WORKFLOW_TASK, TaskRecord
from ablauf.store.sqlite import SqliteStore


def _task(run_id: str) -> TaskRecord:
    # Positional, in the record's field order.
    return TaskRecord(
        0, WORKFLOW_TASK, run_id, "default", "q", 1, 1, 0.0, None, None, 0, None, 0.0, 0.0,
        False, None, None, None,
    )  # fmt: skip


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


def test_timer_ids_are_never_reused(path: Path) -> None:
    store = SqliteStore(str(path))
    with store.transaction():
        first = store.insert_timer("run-1", 1, "t", 0, 10.0)
        last = store.insert_timer("run-1", 1, "u", 0, 11.0)
    with store.transaction():
        assert store.delete_timer(last)
    # Another process read the deleted timer before: its delete by id must not
    # hit the newer timer of another run that SQLite would have given that id.
    other = SqliteStore(str(path))
    with other.transaction():
        newer = other.insert_timer("run-2", 1, "t", 0, 12.0)
    assert newer > last > first
    with store.transaction():
        assert not store.delete_timer(last)
    assert [t.run_id for t in store.due_timers(100.0, 10)] == ["run-1", "run-2"]
    store.close()
    other.close()


def test_task_ids_are_never_reused_held_or_written_at_once(path: Path) -> None:
    store = SqliteStore(str(path))
    with store.transaction():
        held = store.insert_task(_task("run-1"))
    store.delete_task(held)
    outside = store.insert_task(_task("run-2"))
    store.delete_task(outside)
    other = SqliteStore(str(path))
    with other.transaction():
        # Held until the commit: its id comes from the ids ever given, not the rows there.
        again = other.insert_task(_task("run-3"))
    assert held < outside < again
    store.close()
    other.close()


def test_a_removed_file_stops_the_store_before_it_commits(path: Path) -> None:
    store = SqliteStore(str(path))
    store.verify()
    with store.transaction():
        store.insert_timer("run-1", 1, "t", 0, 10.0)
    os.unlink(path)
    lost = pytest.raises(StoreLostError, match="was removed while this process used it")
    with lost, store.transaction():
        store.insert_timer("run-1", 1, "u", 0, 11.0)
    # From now on every use fails alike, reads included.
    with pytest.raises(StoreLostError):
        store.due_timers(100.0, 10)
    with pytest.raises(StoreLostError):
        store.verify()
    store.close()


def test_a_file_moved_in_its_place_stops_the_store(path: Path, tmp_path: Path) -> None:
    store = SqliteStore(str(path))
    with store.transaction():
        store.insert_timer("run-1", 1, "t", 0, 10.0)
    backup = tmp_path / "backup.db"
    SqliteStore(str(backup)).close()
    os.replace(backup, path)
    with pytest.raises(StoreLostError, match="was replaced by another file"):
        store.verify()
    store.close()


def test_another_store_copied_over_the_file_is_told_by_its_id(path: Path, tmp_path: Path) -> None:
    store = SqliteStore(str(path))
    with store.transaction():
        store.insert_timer("run-1", 1, "t", 0, 10.0)
    other = tmp_path / "other.db"
    SqliteStore(str(other)).close()
    # Written over in place (the same inode), as `cp other.db s.db` does.
    shutil.copyfile(other, path)
    with pytest.raises(StoreLostError, match="was replaced by another store"):
        store.verify()
    store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files all the same")
def test_a_read_only_file_is_named_as_such(path: Path) -> None:
    SqliteStore(str(path)).close()
    path.chmod(stat.S_IRUSR)
    with pytest.raises(StoreError, match=r"s\.db: the file cannot be written \(read-only\)"):
        SqliteStore(str(path))


def test_a_truncated_file_is_refused_when_opened(path: Path) -> None:
    store = SqliteStore(str(path))
    with store.transaction():
        for i in range(2000):
            store.insert_timer(f"run-{i}", 1, "t" * 50, 0, float(i))
    store.close()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 5000)
    with pytest.raises(StoreError, match="corrupt"):
        SqliteStore(str(path))


def test_check_reports_damage_that_opening_does_not_see(path: Path) -> None:
    store = SqliteStore(str(path))
    with store.transaction():
        for i in range(3000):
            store.insert_timer(f"run-{i}", 1, "t" * 50, 0, float(i))
    assert store.check() == []
    store.close()
    # Garbage in the middle of the file: both ends of every table still read.
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 2 - (size // 2) % 4096 + 16)
        f.write(b"\xff" * 2000)
    damaged = SqliteStore(str(path))
    problems = damaged.check()
    assert problems and all(isinstance(p, str) for p in problems)
    damaged.close()


def _version_4_file(path: Path) -> None:
    """A store as version 4 wrote it: ids reused, owners without leases."""
    store = SqliteStore(str(path))
    store.close()
    with sqlite3.connect(path) as db:
        for table in ("tasks", "timers", "queries"):
            sql = db.execute(
                "SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)
            ).fetchone()[0]
            indexes = db.execute(
                "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name=? "
                "AND sql IS NOT NULL",
                (table,),
            ).fetchall()
            db.execute(f"DROP TABLE {table}")
            db.execute(sql.replace(" AUTOINCREMENT", ""))
            for (index,) in indexes:
                db.execute(index)
        db.execute("ALTER TABLE owners DROP COLUMN lease_until")
        db.execute("ALTER TABLE owners DROP COLUMN host")
        db.execute("INSERT INTO owners VALUES ('old', 1, 0.0, 'q')")
        db.execute(
            "INSERT INTO timers (id, run_id, kind, ref, attempt, fire_at) "
            "VALUES (7, 'run-1', 1, 't', 0, 5.0)"
        )
        db.execute("DELETE FROM sqlite_sequence")
        db.execute("UPDATE meta SET value='4' WHERE key='ablauf_schema'")
        db.execute("DELETE FROM meta WHERE key='store_id'")
    db.close()


def test_a_version_4_file_is_upgraded_after_a_backup(path: Path) -> None:
    _version_4_file(path)
    store = SqliteStore(str(path))
    backup = Path(f"{path}.v4.bak")
    with sqlite3.connect(backup) as db:
        assert db.execute("SELECT value FROM meta WHERE key='ablauf_schema'").fetchone() == ("4",)
        assert db.execute("SELECT id FROM timers").fetchall() == [(7,)]
    db.close()
    assert [(t.id, t.run_id) for t in store.due_timers(10.0, 10)] == [(7, "run-1")]
    with store.transaction():
        assert store.delete_timer(7)
        assert store.insert_timer("run-2", 1, "t", 0, 5.0) == 8
    # An owner of the old file holds no lease: it counts as gone.
    [owner] = store.owners()
    assert (owner.owner_id, owner.lease_until) == ("old", 0.0)
    assert store.store_id
    store.close()
    with sqlite3.connect(path) as db:
        tables = {
            r[0]: r[1] for r in db.execute("SELECT name, sql FROM sqlite_master WHERE sql NOT NULL")
        }
    db.close()
    for table in ("tasks", "timers", "queries"):
        assert "AUTOINCREMENT" in tables[table]
        assert f"{table}_v4" not in tables
    assert {"tasks_ready", "tasks_by_run", "timers_due", "timers_by_run", "queries_open"} <= set(
        tables
    )
