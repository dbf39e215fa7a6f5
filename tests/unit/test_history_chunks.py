"""A run's history is stored in chunks, one per transition, and reads back as
any range of events; files of older schema versions are upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ablauf.errors import StoreError
from ablauf.history.events import frame, unframe
from ablauf.store.sqlite import SCHEMA_VERSION, SqliteStore


def _event(event_id: int) -> bytes:
    return f"event {event_id} ".encode() * event_id  # sizes across one-byte lengths


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(str(tmp_path / "s.db"))


def test_any_range_reads_back_across_chunks(store: SqliteStore) -> None:
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


def test_a_chunk_written_twice_or_with_gaps_fails_and_leaves_nothing(
    store: SqliteStore, tmp_path: Path
) -> None:
    store.append_events("run", [(1, b"one")])
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.append_events("run", [(2, b"two")])
        store.append_events("run", [(1, b"again")])  # held, fails at the commit
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.append_events("run", [(2, b"two"), (2, b"two again")])
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.append_events("run", [(2, b"two")])
        store.append_events("run", [(2, b"twice held")])
    assert unframe(store.read_history("run")) == [b"one"]
    with store.transaction():
        store.append_events("run", [(2, b"two"), (3, b"three")])
    assert unframe(SqliteStore(str(tmp_path / "s.db")).read_history("run")) == [
        b"one",
        b"two",
        b"three",
    ]


def test_a_rolled_back_savepoint_takes_its_chunk_along(store: SqliteStore) -> None:
    with store.transaction():
        store.append_events("run", [(1, b"one")])
        with pytest.raises(RuntimeError), store.transaction():
            store.append_events("run", [(2, b"lost")])
            raise RuntimeError("undo")
        store.append_events("run", [(2, b"two")])
    assert unframe(store.read_history("run")) == [b"one", b"two"]


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


def _chunks_on_disk(path: Path) -> list[tuple[str, int, int]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT run_id, first_event_id, last_event_id FROM history ORDER BY run_id, 2"
        ).fetchall()
    db.close()
    return rows


def test_a_run_s_transitions_committed_together_share_a_small_chunk(
    store: SqliteStore, tmp_path: Path
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
    assert _chunks_on_disk(tmp_path / "s.db") == [
        ("other", 1, 4),
        ("run", 1, 4),
        ("run", 5, 6),
        ("run", 7, 8),
    ]
    assert unframe(store.read_history("run")) == [b"small"] * 4 + [big] * 4
