"""What only a store in a file has: ids never reused across connections, the
store noticing when its file is removed or replaced, SQLite's errors about the
file named by their cause, and files of older schema versions upgraded."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from ablauf.errors import StoreError, StoreLostError
from ablauf.history.events import frame, unframe
from ablauf.store.base import WORKFLOW_TASK, TaskRecord
from ablauf.store.sqlite import SCHEMA_VERSION, SqliteStore


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


def _event(event_id: int) -> bytes:
    return f"event {event_id} ".encode() * event_id


def _version_1_file(path: Path, events: dict[str, list[bytes]]) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('ablauf_schema', '1')")
        db.execute(
            "CREATE TABLE events (run_id TEXT NOT NULL, event_id INTEGER NOT NULL, "
            "data BLOB NOT NULL, PRIMARY KEY (run_id, event_id)) WITHOUT ROWID"
        )
        for run_id, datas in events.items():
            for event_id, data in reversed(list(enumerate(datas, start=1))):
                db.execute("INSERT INTO events VALUES (?,?,?)", (run_id, event_id, data))
    db.close()


def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_1_file(path, {"a": [_event(i) for i in range(1, 30)], "b": [b"b1", b"b2"]})
    store = SqliteStore(str(path))
    assert unframe(store.read_history("a")) == [_event(i) for i in range(1, 30)]
    assert unframe(store.read_history("a", 10, 3)) == [_event(10), _event(11), _event(12)]
    assert unframe(store.read_history("b")) == [b"b1", b"b2"]
    store.append_events("b", [(3, b"b3")])
    store.close()
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        marker = db.execute("SELECT value FROM meta WHERE key='ablauf_schema'").fetchone()[0]
    db.close()
    assert "events" not in tables
    assert marker == SCHEMA_VERSION == "5"
    assert unframe(SqliteStore(str(path)).read_history("b")) == [b"b1", b"b2", b"b3"]


def test_a_version_2_file_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    SqliteStore(str(path)).close()
    with sqlite3.connect(path) as db:
        # Version 2: no activity owner, history chunks keyed by run.
        db.execute("DROP INDEX executions_by_activity_owner")
        db.execute("ALTER TABLE executions DROP COLUMN activity_owner")
        db.execute("DROP TABLE history")
        db.execute(
            "CREATE TABLE history (run_id TEXT NOT NULL, first_event_id INTEGER NOT NULL, "
            "last_event_id INTEGER NOT NULL, data BLOB NOT NULL, "
            "PRIMARY KEY (run_id, first_event_id)) WITHOUT ROWID"
        )
        db.executemany(
            "INSERT INTO history VALUES (?,?,?,?)",
            [("r", 1, 2, frame([(1, b"e1"), (2, b"e2")])), ("r", 3, 3, frame([(3, b"e3")]))],
        )
        db.execute("UPDATE meta SET value='2' WHERE key='ablauf_schema'")
        db.execute(
            "INSERT INTO executions VALUES ('r', 'default', 'w', 'T', 'q', 1, 1.0, NULL, 4, 9, 4)"
        )
    db.close()
    store = SqliteStore(str(path))
    assert unframe(store.read_history("r")) == [b"e1", b"e2", b"e3"]
    exe = store.get_execution("r")
    assert exe is not None and exe.version == 4 and exe.activity_owner is None
    exe.activity_owner = "owner-1"
    store.update_execution(exe)
    store.append_events("r", [(4, b"e4")])
    store.close()
    again = SqliteStore(str(path))
    assert unframe(again.read_history("r", 2)) == [b"e2", b"e3", b"e4"]
    stored = again.get_execution("r")
    assert stored is not None and stored.activity_owner == "owner-1"
    again.close()
    with sqlite3.connect(path) as db:
        assert (
            db.execute("SELECT value FROM meta WHERE key='ablauf_schema'").fetchone()[0]
            == SCHEMA_VERSION
        )
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        columns = {r[1] for r in db.execute("PRAGMA table_info(history)")}
    db.close()
    assert "history_v3" not in tables and "id" in columns


def test_a_file_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('ablauf_schema', '99')")
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteStore(str(path))
