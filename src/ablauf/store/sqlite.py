"""SQLite backend: one file, WAL mode, one transaction per engine transition."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from importlib import resources
from pathlib import Path
from typing import Any, cast

from ablauf.errors import StoreError, StoreLostError
from ablauf.history.events import frame, skip_frames
from ablauf.store.base import (
    ACTIVITY_TASK,
    ExecutionRecord,
    OwnerRecord,
    QueryRecord,
    ScheduleRecord,
    TaskRecord,
    TimerRecord,
    UpdateRecord,
)
from ablauf.store.migrate import MIGRATABLE, after_schema, before_schema
from ablauf.store.pending_rows import PendingRows, Row

__all__ = ["SCHEMA_VERSION", "SqliteStore", "backup_file", "check_file"]

SCHEMA_VERSION = "5"
_MARKER = "ablauf_schema"
# SQLite's header field "application_id" names the file as an ablauf store
# ("ablf"), and "user_version" holds a random id given to it when it was
# created: a store written over the file has another. Both sit at fixed
# offsets of the header, which a check reads from the file itself: SQLite
# would answer from its write-ahead log, which still holds the old file's pages.
_APPLICATION_ID = 0x61626C66
_STORE_ID_OFFSET = 60

_TASK_COLUMNS = (
    "id, kind, run_id, namespace, task_queue, ref, attempt, visible_at, lease_owner, "
    "lease_until, lease_nonce, started_at, scheduled_at, attempt_scheduled_at, "
    "cancel_requested, heartbeat_at, heartbeat_details, last_failure"
)
_UPDATE_COLUMNS = "run_id, update_id, seq, request, state, outcome, accepted_event_id"
_SCHEDULE_COLUMNS = (
    "namespace, schedule_id, schedule, info, memo, search_attributes, state, created_at"
)
_INSERT_TASK = f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({','.join('?' * 18)})"
# Every column but the id, in _task_row's order, then the id.
_UPDATE_TASK = (
    "UPDATE tasks SET "
    + ", ".join(f"{column}=?" for column in _TASK_COLUMNS.split(", ")[1:])
    + " WHERE id=?"
)
_INSERT_CHUNK = "INSERT INTO history (run_id, first_event_id, last_event_id, data) VALUES (?,?,?,?)"
_UPDATE_EXECUTION = (
    "UPDATE executions SET status=?, close_time=?, next_event_id=?, history_size=?, "
    "version=?, activity_owner=? WHERE run_id=?"
)
_TASKS, _HISTORY, _EXECUTIONS = "tasks", "history", "executions"
_NEW_EXECUTIONS, _CURRENT_RUNS = "new executions", "current runs"
_TASK_DELETES = "task deletes"
# A closed run's task and timer rows, deleted at the commit.
_RUN_TASK_DELETES, _RUN_TIMER_DELETES = "run task deletes", "run timer deletes"
# A held history chunk takes the run's next events while smaller than this;
# growing copies it, so it stays small.
_GROWN_CHUNK = 8192
_SCAN_HELD_TASKS = 64
_EXEC_COLUMNS = (
    "run_id, namespace, workflow_id, workflow_type, task_queue, status, start_time, "
    "close_time, next_event_id, history_size, version, activity_owner"
)
# Writes that wait for the commit (see pending_rows), with their statements.
_WRITE_BEHIND = {
    # A run started in the transaction: its row as of the commit (later
    # updates in the transaction change the held row instead).
    _NEW_EXECUTIONS: f"INSERT INTO executions ({_EXEC_COLUMNS}) VALUES ({','.join('?' * 12)})",
    _EXECUTIONS: _UPDATE_EXECUTION,
    _CURRENT_RUNS: (
        "INSERT INTO current_runs (namespace, workflow_id, run_id) VALUES (?,?,?) "
        "ON CONFLICT (namespace, workflow_id) DO UPDATE SET run_id=excluded.run_id"
    ),
    _HISTORY: _INSERT_CHUNK,
    # In program order: a run's rows go before rows inserted after they went.
    _RUN_TASK_DELETES: "DELETE FROM tasks WHERE run_id=?",
    _TASKS: _INSERT_TASK,
    _TASK_DELETES: "DELETE FROM tasks WHERE id=?",
    _RUN_TIMER_DELETES: "DELETE FROM timers WHERE run_id=?",
}


_READ_VERSION_TTL = 0.005
_CURRENT_RUNS_KEPT = 10_000
# Checkpoint the WAL this often, and block writers for a full checkpoint when
# it has grown this large despite that.
_CHECKPOINT_INTERVAL = 0.05
_WAL_RESTART_FRAMES = 16_384


class _Checkpointer:
    """Copies the WAL into the database file from a thread of its own."""

    def __init__(self, path: str, synchronous: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._stop = threading.Event()
        self._runner = threading.Thread(target=self._run, name="ablauf-checkpoint", daemon=True)
        self._runner.start()

    def _run(self) -> None:
        while not self._stop.wait(_CHECKPOINT_INTERVAL):
            try:
                _, frames, _ = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames > _WAL_RESTART_FRAMES:
                    self._db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            except sqlite3.Error:
                # Busy or closing: the next round tries again.
                continue

    def stop(self) -> None:
        self._stop.set()
        self._runner.join()
        self._db.close()


def _file_id(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _execution_row(rec: ExecutionRecord) -> Row:
    """The record as its ``executions`` row, in ``_EXEC_COLUMNS`` order."""
    return (
        rec.run_id,
        rec.namespace,
        rec.workflow_id,
        rec.workflow_type,
        rec.task_queue,
        rec.status,
        rec.start_time,
        rec.close_time,
        rec.next_event_id,
        rec.history_size,
        rec.version,
        rec.activity_owner,
    )


def _task(row: sqlite3.Row | tuple[object, ...]) -> TaskRecord:
    r = tuple(row)
    return TaskRecord(
        id=r[0],
        kind=r[1],
        run_id=r[2],
        namespace=r[3],
        task_queue=r[4],
        ref=r[5],
        attempt=r[6],
        visible_at=r[7],
        lease_owner=r[8],
        lease_until=r[9],
        lease_nonce=r[10],
        started_at=r[11],
        scheduled_at=r[12],
        attempt_scheduled_at=r[13],
        cancel_requested=bool(r[14]),
        heartbeat_at=r[15],
        heartbeat_details=r[16],
        last_failure=r[17],
    )


# SQLite's primary result codes that say the file or its surroundings are at
# fault, not the statement: each becomes a StoreError naming the cause.
_CAUSES = {
    "SQLITE_FULL": "the disk is full",
    "SQLITE_READONLY": "the file cannot be written (read-only)",
    "SQLITE_CORRUPT": "the file is corrupt (`ablauf store check` lists the damage)",
    "SQLITE_NOTADB": "the file is not an SQLite database",
    "SQLITE_IOERR": "reading or writing the file failed (I/O error)",
    "SQLITE_CANTOPEN": "the file cannot be opened",
    "SQLITE_BUSY": "another process holds the file locked",
    "SQLITE_LOCKED": "another connection holds the file locked",
    "SQLITE_PERM": "permission denied",
    "SQLITE_NOMEM": "out of memory",
    "SQLITE_PROTOCOL": "the file's locks failed",
}


# Causes that a read-only file system or file explains better.
_ACCESS_CAUSES = {_CAUSES[c] for c in ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR")}


def _access_cause(path: str) -> str | None:
    directory = os.path.dirname(path) or "."
    with contextlib.suppress(OSError):
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "the file system is read-only"
        if not os.access(directory, os.W_OK) or (
            os.path.exists(path) and not os.access(path, os.W_OK)
        ):
            return "the file cannot be written (read-only)"
    return None


def _cause(err: sqlite3.Error) -> str | None:
    name = getattr(err, "sqlite_errorname", None) or ""
    # Extended codes (SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED) by their primary code.
    return _CAUSES.get("_".join(name.split("_")[:2]))


class _Connection:
    """The store's connection; issues the savepoints that nested transactions
    owe before any statement runs inside them, and turns SQLite's errors about
    the file (disk full, read-only, corrupt, ...) into :class:`StoreError`.

    A savepoint costs SQLite more than its two statements (pages changed under
    it are copied so it can be rolled back), and most transitions of a group
    commit only touch rows held back until the commit: their undo is
    :class:`PendingRows`'s alone.
    """

    __slots__ = ("_conn", "aborted", "in_tx", "lost", "owed", "path")

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self.owed: list[str] = []
        self.in_tx = False
        # SQLite rolled the open transaction back by itself (a full disk, an
        # I/O error): every statement until its end fails with this error.
        self.aborted: StoreError | None = None
        # The file is no longer this store: every statement fails with this.
        self.lost: StoreLostError | None = None

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        if self.owed or self.aborted is not None or self.lost is not None:
            self._prepare()
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as err:
            raise self._error(err) from err

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """The rows of a statement that only reads (it owes no savepoint)."""
        return cast(list[Any], self._read(sql, params, False))

    def query_one(self, sql: str, params: Sequence[object] = ()) -> Any:
        """The first row of a statement that only reads, or None."""
        return self._read(sql, params, True)

    def _read(self, sql: str, params: Sequence[object], one: bool) -> Any:
        if self.aborted is not None or self.lost is not None:
            self._prepare()
        try:
            # Rows are fetched here: SQLite reports damage while stepping.
            cursor = self._conn.execute(sql, params)
            return cursor.fetchone() if one else cursor.fetchall()
        except sqlite3.Error as err:
            raise self._error(err) from err

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> sqlite3.Cursor:
        if self.owed or self.aborted is not None or self.lost is not None:
            self._prepare()
        try:
            return self._conn.executemany(sql, rows)
        except sqlite3.Error as err:
            raise self._error(err) from err

    def _prepare(self) -> None:
        if self.lost is not None:
            raise self.lost
        if self.aborted is not None:
            raise self.aborted
        owed, self.owed = self.owed, []
        for name in owed:
            try:
                self._conn.execute(f"SAVEPOINT {name}")
            except sqlite3.Error as err:
                raise self._error(err) from err

    def _error(self, err: sqlite3.Error) -> Exception:
        cause = _cause(err)
        if cause is None:
            # The statement is at fault (a constraint, a bug): not the file.
            return err
        if cause in _ACCESS_CAUSES and self.path != ":memory:":
            cause = _access_cause(self.path) or cause
        error = StoreError(f"store {self.path}: {cause} ({err})")
        if self.in_tx and not self._conn.in_transaction:
            self.aborted = error
        return error

    def end(self) -> None:
        """Ends the open transaction, rolling back whatever SQLite still holds of it."""
        self.in_tx = False
        self.aborted = None
        self.owed.clear()
        if self._conn.in_transaction:
            # Should this fail too, SQLite has dropped the transaction itself.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()


class _Transaction:
    """:meth:`SqliteStore.transaction`; a class, as every transition enters one."""

    __slots__ = ("_savepoint", "_store")

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._savepoint = ""

    def __enter__(self) -> None:
        store = self._store
        if store._depth:
            self._savepoint = f"s{store._depth}"
            store._db.owed.append(self._savepoint)
            store._pending.savepoint()
            store._depth += 1
            return
        store._db.execute("BEGIN IMMEDIATE")
        store._db.in_tx = True
        store._depth = 1
        store._tx_data_version = None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        store, savepoint = self._store, self._savepoint
        db = store._db
        if savepoint:
            store._depth -= 1
            if db.owed:
                # Never issued: nothing reached SQLite inside it.
                assert db.owed[-1] == savepoint
                db.owed.pop()
            elif db.aborted is None:
                if kind is not None:
                    db.execute(f"ROLLBACK TO {savepoint}")
                db.execute(f"RELEASE {savepoint}")
            if kind is not None or db.aborted is not None:
                store._pending.rollback()
            else:
                store._pending.release()
            if kind is None and db.aborted is not None:
                raise db.aborted
            return
        store._depth = 0
        store._open_chunks.clear()
        aborted = db.aborted
        if kind is not None or aborted is not None:
            store._pending.reset()
            db.end()
            if kind is None and aborted is not None:
                raise aborted
            return
        try:
            store._write_pending()
            next_task_id = store._pending.next_id
            if next_task_id is not None:
                version = store.data_version()
            store._check_file()
            db.execute("COMMIT")
            db.in_tx = False
            if next_task_id is not None:
                store._next_task_id = (next_task_id, version)
        except BaseException:
            db.end()
            raise
        finally:
            store._pending.reset()


_JOINED = contextlib.nullcontext()


def _integrity(db: _Connection) -> list[str]:
    try:
        rows = db.query("PRAGMA integrity_check")
    except (sqlite3.DatabaseError, StoreError) as err:
        # Damage the check itself cannot read past.
        return [str(err.__cause__ or err)]
    return [] if [tuple(r) for r in rows] == [("ok",)] else [str(r[0]) for r in rows]


def _open_read_only(path: str) -> _Connection:
    """A connection that neither creates nor changes the store at ``path``."""
    if not Path(path).is_file():
        raise StoreError(f"store {path}: no such file")
    db = _Connection(sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True), path)
    try:
        marker = db.query_one("SELECT value FROM meta WHERE key=?", (_MARKER,))
    except sqlite3.OperationalError:
        marker = None
    if marker is None:
        db.close()
        raise StoreError(f"store {path}: the file is not an ablauf store")
    return db


def check_file(path: str) -> list[str]:
    """Runs SQLite's full integrity check on the store at ``path``, read-only;
    the problems it finds.

    Raises:
        StoreError: There is no file, or it is not an ablauf store.
    """
    db = _open_read_only(path)
    try:
        return _integrity(db)
    finally:
        db.close()


def backup_file(path: str, to: str) -> None:
    """Copies the store at ``path`` into the new file ``to`` while other
    processes go on using it: the copy is the store as of one instant (SQLite's
    backup API, in one read transaction), checked before it is kept.

    Raises:
        StoreError: There is no store at ``path``, ``to`` exists already or
            cannot be written, or the copy is damaged (then it is removed).
    """
    target = Path(to)
    if target.exists():
        raise StoreError(f"backup {to}: the file exists (a backup never overwrites one)")
    if not target.parent.is_dir():
        raise StoreError(f"backup {to}: the directory does not exist")
    db = _open_read_only(path)
    try:
        _copy(db, target, checked=True)
    finally:
        db.close()


def _copy(db: _Connection, target: Path, *, checked: bool = False) -> None:
    """Copies the store behind ``db`` into ``target`` with SQLite's backup API
    (one read transaction), whole or not at all: it is written beside the
    target and renamed only once complete (and, ``checked``, found sound)."""
    partial = target.with_name(target.name + ".partial")
    copy = sqlite3.connect(partial)
    try:
        db._conn.backup(copy)
    except sqlite3.Error as err:
        copy.close()
        partial.unlink(missing_ok=True)
        raise StoreError(f"backup {target}: {_cause(err) or err} ({err})") from err
    copy.close()
    problems = check_file(str(partial)) if checked else []
    if problems:
        partial.unlink()
        raise StoreError(f"backup {target}: the copy is damaged ({problems[0]}); removed it")
    os.replace(partial, target)


class SqliteStore:
    """The store in one SQLite file.

    ``synchronous`` is SQLite's pragma: ``NORMAL`` (default) survives a killed
    process; ``FULL`` also survives power loss, at the cost of an fsync per commit.
    """

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        if path != ":memory:" and not Path(path).parent.exists():
            raise StoreError(f"cannot open store {path!r}: directory does not exist")
        self._depth = 0
        self._pending = PendingRows(list(_WRITE_BEHIND))
        # The latest history chunk held per run, to grow (see append_events).
        self._open_chunks: dict[str, tuple[str, int]] = {}
        try:
            self._db = _Connection(
                sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0),
                path,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA foreign_keys=OFF")
            self._init_schema()
            self._quick_check()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{path!r} is not a usable ablauf store: {err}") from err
        # The file this connection has open: a commit checks that the path
        # still leads to it (see _check_file).
        self._file_id = _file_id(path) if path != ":memory:" else None
        # Kept open until the connections close: closing any descriptor of the
        # file would drop the POSIX locks SQLite holds on it in this process.
        self._header_fd = os.open(path, os.O_RDONLY) if self._file_id is not None else -1
        self.store_id: int = self._db.query_one("PRAGMA user_version")[0]
        if self._file_id is not None:
            # The header reaches the file (not only the log), for verify to read there.
            self._db.query_one("PRAGMA wal_checkpoint(PASSIVE)")
        self._tx_data_version: int | None = None
        self._read_version = 0
        self._read_version_at = -1.0
        # Current run per workflow id as last committed: every RPC without a
        # run id asks, and the file changes it only through this connection or
        # a commit that moves data_version.
        self._current_runs: dict[tuple[str, str], str] = {}
        self._current_runs_version: int | None = None
        # (next free task id, data_version) as of this connection's last commit.
        self._next_task_id: tuple[int, int] | None = None
        self._checkpointer: _Checkpointer | None = None
        if path != ":memory:":
            # Commits only append to the WAL; copying it into the database
            # (and its fsync) happens on another thread.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = _Checkpointer(path, synchronous)

    def _init_schema(self) -> None:
        tables = {r[0] for r in self._db.query("SELECT name FROM sqlite_master WHERE type='table'")}
        migrate = False
        if tables:
            marker = None
            if "meta" in tables:
                row = self._db.query_one("SELECT value FROM meta WHERE key=?", (_MARKER,))
                marker = row[0] if row else None
            if marker is None:
                raise StoreError(
                    f"{self.path!r} is an SQLite database but not an ablauf store "
                    f"(tables: {', '.join(sorted(tables))})"
                )
            migrate = marker in MIGRATABLE
            if marker != SCHEMA_VERSION and not migrate:
                raise StoreError(
                    f"{self.path!r} has ablauf schema version {marker}, "
                    f"this ablauf reads version {SCHEMA_VERSION}"
                )
            if migrate:
                self._backup_before_upgrade(str(marker))
        # Every statement is "IF NOT EXISTS": tables added within a schema
        # version appear in older files of that version too.
        sql = resources.files("ablauf.store").joinpath("schema.sql").read_text()
        code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
        # One transaction, so another process never sees half a schema.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if migrate:
                before_schema(self._db._conn)
            for statement in code.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            if migrate:
                after_schema(self._db._conn, _MARKER, SCHEMA_VERSION)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (_MARKER, SCHEMA_VERSION)
            )
            if not self._db.query_one("PRAGMA user_version")[0]:
                self._db.execute(f"PRAGMA application_id={_APPLICATION_ID}")
                store_id = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF | 1
                self._db.execute(f"PRAGMA user_version={store_id}")
        except BaseException:
            self._db.end()
            raise
        self._db.execute("COMMIT")

    def _backup_before_upgrade(self, version: str) -> None:
        """Copies a store of an older schema to ``<path>.v<version>.bak`` before
        it is upgraded in place (one way); a copy already there is kept."""
        target = Path(f"{self.path}.v{version}.bak")
        if self.path != ":memory:" and not target.exists():
            _copy(self._db, target)

    def _quick_check(self) -> None:
        """Reads both ends of every table, which a truncated or overwritten file
        rarely survives; :meth:`check` reads everything."""
        if self.path != ":memory:":
            page_size = self._db.query_one("PRAGMA page_size")[0]
            if Path(self.path).stat().st_size % page_size:
                raise StoreError(f"store {self.path}: the file is corrupt (truncated mid-page)")
        for name, sql in self._db.query(
            "SELECT name, sql FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        ):
            if "WITHOUT ROWID" in sql.upper():
                self._db.query_one(f"SELECT * FROM {name} LIMIT 1")
            else:
                self._db.query_one(f"SELECT min(rowid), max(rowid) FROM {name}")

    def check(self) -> list[str]:
        """SQLite's full integrity check: the problems it finds (none: an empty list)."""
        return _integrity(self._db)

    def _check_file(self) -> None:
        """Raises :class:`StoreLostError` if the path no longer leads to the
        file this connection writes (removed, or replaced by another file)."""
        if self._file_id is None:
            return
        try:
            file_id = _file_id(self.path)
        except FileNotFoundError:
            raise self.mark_lost("was removed") from None
        if file_id != self._file_id:
            raise self.mark_lost("was replaced by another file")

    def verify(self) -> None:
        """Checks that the file at the path is still this store.

        Raises:
            StoreLostError: It was removed or replaced (then every further use
                of this store raises it too).
        """
        self._check_file()
        if self._file_id is None:
            return
        store_id = int.from_bytes(os.pread(self._header_fd, 4, _STORE_ID_OFFSET), "big")
        # 0: the header has not reached the file yet (a checkpoint brings it).
        if store_id and store_id != self.store_id:
            raise self.mark_lost("was replaced by another store")

    def mark_lost(self, what: str) -> StoreLostError:
        """Stops every further use of this store: its file ``what`` (was removed, ...)."""
        if self._db.lost is None:
            self._db.lost = StoreLostError(
                f"store {self.path} {what} while this process used it; this process "
                "stopped using it, so that nothing is written where no one reads it. "
                "Restart the process to open the file that is there now."
            )
        return self._db.lost

    def transaction(self) -> _Transaction:
        """One atomic write. A nested use is a savepoint: if it fails, only its
        own writes are undone and the outer transaction goes on."""
        return _Transaction(self)

    def atomic(self) -> AbstractContextManager[None]:
        """A transaction, unless one is open: then the writes join it (no savepoint)."""
        return _JOINED if self._depth else _Transaction(self)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._db.close()
        if self._header_fd >= 0:
            os.close(self._header_fd)
            self._header_fd = -1

    def data_version(self) -> int:
        """Changes whenever another connection commits to the file.

        Read once per transaction: while it holds the write lock, no other
        connection can commit.
        """
        if self._depth:
            if self._tx_data_version is None:
                self._tx_data_version = self._query_data_version()
            return self._tx_data_version
        # Reads outside a transaction may see another process's commit up to
        # a few milliseconds late; writes always check.
        now = time.monotonic()
        if now - self._read_version_at > _READ_VERSION_TTL:
            self._read_version = self._query_data_version()
            self._read_version_at = now
        return self._read_version

    def _query_data_version(self) -> int:
        return int(self._db.query_one("PRAGMA data_version")[0])

    # executions

    def insert_execution(self, rec: ExecutionRecord) -> None:
        """Inserts the run's row; inside a transaction, at its commit."""
        if self._depth:
            self._pending.put(_NEW_EXECUTIONS, rec.run_id, _execution_row(rec))
        else:
            self._db.execute(_WRITE_BEHIND[_NEW_EXECUTIONS], _execution_row(rec))

    def get_execution(self, run_id: str) -> ExecutionRecord | None:
        new = self._pending.tables[_NEW_EXECUTIONS].get(run_id)
        if new is not None:
            return ExecutionRecord(*cast(tuple[Any, ...], new))
        self._write_pending(_EXECUTIONS)
        row = self._db.query_one(
            f"SELECT {_EXEC_COLUMNS} FROM executions WHERE run_id=?", (run_id,)
        )
        return ExecutionRecord(*row) if row else None

    def update_execution(self, rec: ExecutionRecord) -> None:
        """Updates the run's row; inside a transaction, once at its commit."""
        if self._depth and rec.run_id in self._pending.tables[_NEW_EXECUTIONS]:
            self._pending.put(_NEW_EXECUTIONS, rec.run_id, _execution_row(rec))
            return
        row = (
            rec.status,
            rec.close_time,
            rec.next_event_id,
            rec.history_size,
            rec.version,
            rec.activity_owner,
        )
        if self._depth:
            self._pending.put(_EXECUTIONS, rec.run_id, (*row, rec.run_id))
        else:
            self._db.execute(_UPDATE_EXECUTION, (*row, rec.run_id))

    def execution_version(self, run_id: str) -> int | None:
        held = self._pending.tables[_EXECUTIONS].get(run_id)
        if held is not None:
            version = held[4]
            assert isinstance(version, int)
            return version
        new = self._pending.tables[_NEW_EXECUTIONS].get(run_id)
        if new is not None:
            version = new[10]
            assert isinstance(version, int)
            return version
        row = self._db.query_one("SELECT version FROM executions WHERE run_id=?", (run_id,))
        return int(row[0]) if row else None

    def current_run_id(self, namespace: str, workflow_id: str) -> str | None:
        known = self._current_runs
        version = self.data_version()
        if version != self._current_runs_version:
            known.clear()
            self._current_runs_version = version
        key = (namespace, workflow_id)
        run_id = known.get(key)
        if run_id is not None:
            return run_id
        held = self._pending.tables[_CURRENT_RUNS].get(key)
        if held is not None:
            return str(held[2])
        row = self._db.query_one(
            "SELECT run_id FROM current_runs WHERE namespace=? AND workflow_id=?",
            (namespace, workflow_id),
        )
        if row is None:
            return None
        run_id = str(row[0])
        # Inside a transaction the row may still be rolled back.
        if not self._depth:
            if len(known) >= _CURRENT_RUNS_KEPT:
                known.clear()
            known[key] = run_id
        return run_id

    def set_current_run(self, namespace: str, workflow_id: str, run_id: str) -> None:
        """Makes ``run_id`` the workflow id's current run; inside a transaction, at its commit."""
        key = (namespace, workflow_id)
        self._current_runs.pop(key, None)
        if self._depth:
            self._pending.put(_CURRENT_RUNS, key, (namespace, workflow_id, run_id))
        else:
            self._db.execute(_WRITE_BEHIND[_CURRENT_RUNS], (namespace, workflow_id, run_id))

    def count_running(self, namespace: str, task_queue: str) -> int:
        """Runs of ``task_queue`` that have not closed.

        Reads every run (once, when a worker starts): an index for it would
        cost each start and close of a workflow more than it saves here.
        """
        self._write_pending(_NEW_EXECUTIONS, _EXECUTIONS)
        row = self._db.query_one(
            "SELECT count(*) FROM executions WHERE status=1 AND task_queue=? AND namespace=?",
            (task_queue, namespace),
        )
        return int(row[0])

    def iter_run_ids(self) -> Iterator[str]:
        self._write_pending(_NEW_EXECUTIONS, _EXECUTIONS)
        for row in self._db.query("SELECT run_id FROM executions ORDER BY start_time"):
            yield str(row[0])

    # history

    def append_events(self, run_id: str, events: Sequence[tuple[int, bytes]]) -> None:
        """Appends consecutive events to the run's history as one chunk;
        inside a transaction, at its commit."""
        if not events:
            return
        first, last = events[0][0], events[-1][0]
        if last - first + 1 != len(events):
            raise sqlite3.IntegrityError(f"events of run {run_id} are not consecutive")
        framed = frame(events)
        if not self._depth:
            self._db.execute(_INSERT_CHUNK, (run_id, first, last, framed))
            return
        held = self._pending.tables[_HISTORY]
        key = self._open_chunks.get(run_id)
        if key is not None:
            # The run's chunk held in this transaction grows, as long as it is
            # small: a run's transitions that commit together share a row.
            chunk = held.get(key)
            if chunk is not None and chunk[2] == first - 1:
                data = cast(bytes, chunk[3])
                if len(data) < _GROWN_CHUNK:
                    self._pending.put(_HISTORY, key, (run_id, chunk[1], last, data + framed))
                    return
        key = (run_id, first)
        if key in held:
            # As the table's key would: an event id is never written twice.
            raise sqlite3.IntegrityError(f"event {first} of run {run_id} written twice")
        self._pending.put(_HISTORY, key, (run_id, first, last, framed))
        self._open_chunks[run_id] = key

    def read_history(self, run_id: str, first_event_id: int = 1, limit: int | None = None) -> bytes:
        self._write_pending(_HISTORY)
        chunks = self._db.query(
            "SELECT first_event_id, last_event_id, data FROM history WHERE run_id=?1 "
            "AND first_event_id >= (SELECT coalesce(max(first_event_id), 1) FROM history "
            "WHERE run_id=?1 AND first_event_id <= ?2) ORDER BY first_event_id",
            (run_id, first_event_id),
        )
        parts = []
        left = limit
        for first, last, data in chunks:
            if last < first_event_id:
                continue
            start = skip_frames(data, first_event_id - first) if first < first_event_id else 0
            count = last - max(first, first_event_id) + 1
            if left is not None and left <= count:
                parts.append(data[start : skip_frames(data, left, start)])
                break
            parts.append(data[start:])
            if left is not None:
                left -= count
        return b"".join(parts)

    def add_buffered_event(self, run_id: str, data: bytes) -> None:
        self._db.execute("INSERT INTO buffered_events (run_id, data) VALUES (?,?)", (run_id, data))

    def take_buffered_events(self, run_id: str) -> list[bytes]:
        rows = self._db.query(
            "SELECT data FROM buffered_events WHERE run_id=? ORDER BY id", (run_id,)
        )
        if rows:
            self._db.execute("DELETE FROM buffered_events WHERE run_id=?", (run_id,))
        return [r[0] for r in rows]

    def count_buffered_events(self, run_id: str) -> int:
        row = self._db.query_one("SELECT count(*) FROM buffered_events WHERE run_id=?", (run_id,))
        return int(row[0])

    # tasks

    @staticmethod
    def _task_row(rec: TaskRecord) -> Row:
        return (
            rec.id,
            rec.kind,
            rec.run_id,
            rec.namespace,
            rec.task_queue,
            rec.ref,
            rec.attempt,
            rec.visible_at,
            rec.lease_owner,
            rec.lease_until,
            rec.lease_nonce,
            rec.started_at,
            rec.scheduled_at,
            rec.attempt_scheduled_at,
            int(rec.cancel_requested),
            rec.heartbeat_at,
            rec.heartbeat_details,
            rec.last_failure,
        )

    def _write_pending(self, *tables: str) -> None:
        """Writes the held-back rows of ``tables`` (all if none is named): before
        the commit, or before a statement that reads or changes such rows."""
        pending = self._pending
        for table in tables or _WRITE_BEHIND:
            if pending.tables[table]:
                self._db.executemany(_WRITE_BEHIND[table], pending.take(table))

    def insert_task(self, rec: TaskRecord) -> int:
        """Inserts a task row; inside a transaction it is written at the commit."""
        if not self._depth:
            self._next_task_id = None
            cur = self._db.execute(_INSERT_TASK, (None, *self._task_row(rec)[1:]))
            assert cur.lastrowid is not None
            rec.id = cur.lastrowid
            return rec.id
        pending = self._pending
        if pending.next_id is None:
            # This transaction holds the write lock: no other process inserts
            # meanwhile. Unless one committed since this connection's last
            # insert, the next id is the one after that insert's.
            known = self._next_task_id
            if known is not None and known[1] == self.data_version():
                pending.next_id = known[0]
            else:
                # Ids are never reused: the next is past the largest ever given.
                row = self._db.query_one("SELECT seq FROM sqlite_sequence WHERE name='tasks'")
                pending.next_id = (row[0] if row else 0) + 1
        rec.id = pending.next_id
        pending.next_id += 1
        pending.put(_TASKS, rec.id, self._task_row(rec))
        return rec.id

    def update_task(self, rec: TaskRecord) -> None:
        row = self._task_row(rec)
        if rec.id in self._pending.tables[_TASKS]:
            self._pending.put(_TASKS, rec.id, row)
            return
        self._write_pending(_RUN_TASK_DELETES)
        self._db.execute(_UPDATE_TASK, (*row[1:], row[0]))

    def delete_task(self, task_id: int) -> None:
        pending = self._pending
        if pending.drop(_TASKS, task_id):
            return
        if self._depth:
            # A committed row goes at the commit too: a transition that closes an
            # activity then sends SQLite nothing and needs no savepoint.
            pending.put(_TASK_DELETES, task_id, (task_id,))
        else:
            self._db.execute("DELETE FROM tasks WHERE id=?", (task_id,))

    def delete_tasks_of_run(self, run_id: str) -> None:
        """Deletes every task row of the run; inside a transaction, at its commit."""
        pending = self._pending
        if len(pending.tables[_TASKS]) > _SCAN_HELD_TASKS:
            # Many held rows (a big group): written out, not scanned for each run.
            self._write_pending(_TASKS)
        held = pending.tables[_TASKS]
        for task_id in [k for k, row in held.items() if row[2] == run_id]:
            pending.drop(_TASKS, task_id)
        if self._depth:
            pending.put(_RUN_TASK_DELETES, run_id, (run_id,))
        else:
            self._db.execute("DELETE FROM tasks WHERE run_id=?", (run_id,))

    def get_task(self, task_id: int) -> TaskRecord | None:
        self._write_pending(_RUN_TASK_DELETES)
        held = self._pending.tables[_TASKS].get(task_id)
        if held is not None:
            return _task(held)
        if task_id in self._pending.tables[_TASK_DELETES]:
            return None
        row = self._db.query_one(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id=?", (task_id,))
        return _task(row) if row else None

    def tasks_of_run(self, run_id: str) -> list[TaskRecord]:
        self._write_pending(_RUN_TASK_DELETES)
        if len(self._pending.tables[_TASKS]) > _SCAN_HELD_TASKS:
            # Many held rows (a big group): written out, not scanned for each run.
            self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES)
        deleted = self._pending.tables[_TASK_DELETES]
        if len(deleted) > _SCAN_HELD_TASKS:
            # Written out rather than read only to be dropped.
            self._write_pending(_TASK_DELETES)
        tasks = [
            _task(r)
            for r in self._db.query(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE run_id=? ORDER BY id", (run_id,)
            )
            if r[0] not in deleted
        ]
        held = [_task(r) for r in self._pending.tables[_TASKS].values() if r[2] == run_id]
        if held:
            tasks = sorted(tasks + held, key=lambda t: t.id)
        return tasks

    def ready_tasks(
        self, kind: int, task_queues: Sequence[str], now: float, limit: int
    ) -> list[TaskRecord]:
        self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES)
        marks = ",".join("?" * len(task_queues))
        return [
            _task(r)
            for r in self._db.query(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE kind=? AND task_queue IN ({marks}) "
                "AND visible_at<=? AND (lease_owner IS NULL OR lease_until<?) "
                "ORDER BY visible_at LIMIT ?",
                (kind, *task_queues, now, now, limit),
            )
        ]

    def next_task_visible_at(self, kind: int, task_queues: Sequence[str]) -> float | None:
        self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES)
        marks = ",".join("?" * len(task_queues))
        row = self._db.query_one(
            f"SELECT min(CASE WHEN lease_owner IS NULL THEN visible_at "
            f"ELSE max(visible_at, lease_until) END) FROM tasks "
            f"WHERE kind=? AND task_queue IN ({marks})",
            (kind, *task_queues),
        )
        return None if row is None or row[0] is None else float(row[0])

    def has_runnable_tasks(self, now: float) -> bool:
        """Whether any task is leased (running) or due."""
        self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES)
        row = self._db.query_one(
            "SELECT 1 FROM tasks WHERE lease_owner IS NOT NULL OR visible_at<=? LIMIT 1", (now,)
        )
        return row is not None

    def release_leases(
        self, owner_ids: Sequence[str], kind: int, task_queue: str | None = None
    ) -> int:
        self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES, _NEW_EXECUTIONS, _EXECUTIONS)
        if not owner_ids:
            return 0
        marks = ",".join("?" * len(owner_ids))
        sql = (
            "UPDATE tasks SET lease_owner=NULL, lease_until=NULL "
            f"WHERE kind=? AND lease_owner IN ({marks})"
        )
        args: list[object] = [kind, *owner_ids]
        if task_queue is not None:
            sql += " AND task_queue=?"
            args.append(task_queue)
        # Cached run states of every process must notice the freed lease.
        self._db.execute(
            "UPDATE executions SET version=version+1 WHERE run_id IN "
            f"(SELECT run_id FROM tasks WHERE {sql.split(' WHERE ', 1)[1]})",
            args,
        )
        cur = self._db.execute(sql, args)
        return cur.rowcount

    def runs_with_leases(self, owner_ids: Sequence[str], kind: int) -> list[str]:
        self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES, _NEW_EXECUTIONS, _EXECUTIONS)
        marks = ",".join("?" * len(owner_ids))
        sql = f"SELECT run_id FROM tasks WHERE kind=? AND lease_owner IN ({marks})"
        args: list[object] = [kind, *owner_ids]
        if kind == ACTIVITY_TASK:
            sql += f" UNION SELECT run_id FROM executions WHERE activity_owner IN ({marks})"
            args += owner_ids
        else:
            sql = sql.replace("SELECT", "SELECT DISTINCT", 1)
        return [r[0] for r in self._db.query(sql, args)]

    # timers

    def insert_timer(self, run_id: str, kind: int, ref: str, attempt: int, fire_at: float) -> int:
        self._write_pending(_RUN_TIMER_DELETES)
        cur = self._db.execute(
            "INSERT INTO timers (run_id, kind, ref, attempt, fire_at) VALUES (?,?,?,?,?)",
            (run_id, kind, ref, attempt, fire_at),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def delete_timer(self, timer_id: int) -> bool:
        self._write_pending(_RUN_TIMER_DELETES)
        return self._db.execute("DELETE FROM timers WHERE id=?", (timer_id,)).rowcount > 0

    def delete_timers(self, run_id: str, kind: int | None = None, ref: str | None = None) -> None:
        if kind is None and ref is None and self._depth:
            # All of a run's timers (it closed): at the commit, with no savepoint.
            self._pending.put(_RUN_TIMER_DELETES, run_id, (run_id,))
            return
        self._write_pending(_RUN_TIMER_DELETES)
        sql, args = "DELETE FROM timers WHERE run_id=?", [run_id]
        if kind is not None:
            sql += " AND kind=?"
            args.append(kind)  # type: ignore[arg-type]
        if ref is not None:
            sql += " AND ref=?"
            args.append(ref)
        self._db.execute(sql, args)

    def delete_ref_timers(self, run_id: str, ref: str, kinds: Sequence[int]) -> None:
        self._write_pending(_RUN_TIMER_DELETES)
        marks = ",".join("?" * len(kinds))
        self._db.execute(
            f"DELETE FROM timers WHERE run_id=? AND ref=? AND kind IN ({marks})",
            (run_id, ref, *kinds),
        )

    def due_timers(self, now: float, limit: int) -> list[TimerRecord]:
        self._write_pending(_RUN_TIMER_DELETES)
        return [
            TimerRecord(*r)
            for r in self._db.query(
                "SELECT id, run_id, kind, ref, attempt, fire_at FROM timers "
                "WHERE fire_at<=? ORDER BY fire_at, id LIMIT ?",
                (now, limit),
            )
        ]

    def next_timer_at(self) -> float | None:
        self._write_pending(_RUN_TIMER_DELETES)
        row = self._db.query_one("SELECT min(fire_at) FROM timers")
        return None if row is None or row[0] is None else float(row[0])

    # owners

    def register_owner(self, rec: OwnerRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO owners (owner_id, pid, started_at, task_queues, "
            "lease_until, host) VALUES (?,?,?,?,?,?)",
            (
                rec.owner_id,
                rec.pid,
                rec.started_at,
                "\n".join(rec.task_queues),
                rec.lease_until,
                rec.host,
            ),
        )

    def renew_owner(self, owner_id: str, held_until: float, until: float) -> bool:
        """Extends the owner's lease from ``held_until`` to ``until``; False if
        its row is gone or holds another lease (another process declared the
        owner gone, or the file changed under it)."""
        cur = self._db.execute(
            "UPDATE owners SET lease_until=? WHERE owner_id=? AND lease_until=?",
            (until, owner_id, held_until),
        )
        return cur.rowcount > 0

    def remove_owner(self, owner_id: str) -> None:
        self._db.execute("DELETE FROM owners WHERE owner_id=?", (owner_id,))

    def expire_owner(self, owner_id: str, now: float) -> bool:
        """Removes the owner if its lease ended before ``now``; False if it was
        renewed meanwhile or another process removed it first."""
        cur = self._db.execute(
            "DELETE FROM owners WHERE owner_id=? AND lease_until<?", (owner_id, now)
        )
        return cur.rowcount > 0

    def owners(self) -> list[OwnerRecord]:
        return [
            OwnerRecord(r[0], r[1], r[2], tuple(q for q in r[3].split("\n") if q), r[4], r[5])
            for r in self._db.query(
                "SELECT owner_id, pid, started_at, task_queues, lease_until, host FROM owners"
            )
        ]

    # updates

    def insert_update(self, rec: UpdateRecord) -> None:
        self._db.execute(
            "INSERT INTO updates (run_id, update_id, seq, request, state, outcome, "
            "accepted_event_id) VALUES (?,?,?,?,?,?,?)",
            (
                rec.run_id,
                rec.update_id,
                rec.seq,
                rec.request,
                rec.state,
                rec.outcome,
                rec.accepted_event_id,
            ),
        )

    def save_update(self, rec: UpdateRecord) -> None:
        self._db.execute(
            "UPDATE updates SET state=?, outcome=?, accepted_event_id=? "
            "WHERE run_id=? AND update_id=?",
            (rec.state, rec.outcome, rec.accepted_event_id, rec.run_id, rec.update_id),
        )

    def get_update(self, run_id: str, update_id: str) -> UpdateRecord | None:
        row = self._db.query_one(
            f"SELECT {_UPDATE_COLUMNS} FROM updates WHERE run_id=? AND update_id=?",
            (run_id, update_id),
        )
        return UpdateRecord(*row) if row else None

    def updates_of_run(self, run_id: str) -> list[UpdateRecord]:
        return [
            UpdateRecord(*r)
            for r in self._db.query(
                f"SELECT {_UPDATE_COLUMNS} FROM updates WHERE run_id=? ORDER BY seq", (run_id,)
            )
        ]

    # cross-process queries

    def insert_query(self, run_id: str, task_queue: str, request: bytes, now: float) -> int:
        cur = self._db.execute(
            "INSERT INTO queries (run_id, task_queue, request, created_at) VALUES (?,?,?,?)",
            (run_id, task_queue, request, now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def take_queries(self, task_queues: Sequence[str], owner_id: str) -> list[QueryRecord]:
        marks = ",".join("?" * len(task_queues))
        rows = self._db.query(
            "SELECT id, run_id, task_queue, request, taken_by, answered, response, error "
            f"FROM queries WHERE answered=0 AND taken_by IS NULL AND task_queue IN ({marks})",
            tuple(task_queues),
        )
        for r in rows:
            self._db.execute("UPDATE queries SET taken_by=? WHERE id=?", (owner_id, r[0]))
        return [QueryRecord(r[0], r[1], r[2], r[3], owner_id, False, None, None) for r in rows]

    def answer_query(self, query_id: int, response: bytes | None, error: str | None) -> None:
        self._db.execute(
            "UPDATE queries SET answered=1, response=?, error=? WHERE id=?",
            (response, error, query_id),
        )

    def get_query(self, query_id: int) -> QueryRecord | None:
        r = self._db.query_one(
            "SELECT id, run_id, task_queue, request, taken_by, answered, response, error "
            "FROM queries WHERE id=?",
            (query_id,),
        )
        return QueryRecord(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7]) if r else None

    def delete_query(self, query_id: int) -> None:
        self._db.execute("DELETE FROM queries WHERE id=?", (query_id,))

    # schedules

    def insert_schedule(self, rec: ScheduleRecord) -> None:
        self._db.execute(
            f"INSERT INTO schedules ({_SCHEDULE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
            (
                rec.namespace,
                rec.schedule_id,
                rec.schedule,
                rec.info,
                rec.memo,
                rec.search_attributes,
                rec.state,
                rec.created_at,
            ),
        )

    def get_schedule(self, namespace: str, schedule_id: str) -> ScheduleRecord | None:
        row = self._db.query_one(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE namespace=? AND schedule_id=?",
            (namespace, schedule_id),
        )
        return ScheduleRecord(*row) if row else None

    def update_schedule(self, rec: ScheduleRecord) -> None:
        self._db.execute(
            "UPDATE schedules SET schedule=?, info=?, memo=?, search_attributes=?, state=? "
            "WHERE namespace=? AND schedule_id=?",
            (
                rec.schedule,
                rec.info,
                rec.memo,
                rec.search_attributes,
                rec.state,
                rec.namespace,
                rec.schedule_id,
            ),
        )

    def delete_schedule(self, namespace: str, schedule_id: str) -> bool:
        cur = self._db.execute(
            "DELETE FROM schedules WHERE namespace=? AND schedule_id=?", (namespace, schedule_id)
        )
        return cur.rowcount > 0

    def list_schedules(self, namespace: str, offset: int, limit: int) -> list[ScheduleRecord]:
        """Newest first, as Temporal's visibility lists them."""
        return [
            ScheduleRecord(*r)
            for r in self._db.query(
                f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE namespace=? "
                "ORDER BY created_at DESC, schedule_id LIMIT ? OFFSET ?",
                (namespace, limit, offset),
            )
        ]
