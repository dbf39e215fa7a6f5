"""SQLite connections of a store: errors about the file named by their cause,
savepoints issued only when a write needs them, read-only opens, integrity
checks, copies, and the thread that checkpoints the write-ahead log."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from ablauf.errors import StoreError, StoreLostError
from ablauf.store.base import MEMORY
from ablauf.store.lock_holder import Holder, write_lock_holder
from ablauf.store.sql import GET_META

__all__ = [
    "LOCK_STEP",
    "MARKER",
    "Checkpointer",
    "Connection",
    "backup_file",
    "check_file",
    "copy_store",
    "file_id",
    "integrity",
    "open_read_only",
]

MARKER = "ablauf_schema"
"""The key of the ``meta`` row that names the file's schema version."""

logger = logging.getLogger(__name__)

LOCK_STEP = 1.0
"""How long SQLite waits for a lock before the store looks at who holds it."""
# How long a process stopped by a signal may keep the write lock before it is
# ended (as long as the owner lease a process renews every second), and how
# long a running one may keep it before a write gives up.
_STOPPED_GRACE = 5.0
_LOCK_PATIENCE = 30.0

# Checkpoint the WAL this often, and block writers for a full checkpoint when
# it has grown this large despite that.
_CHECKPOINT_INTERVAL = 0.05
_WAL_RESTART_FRAMES = 16_384


class Checkpointer:
    """Copies the WAL into the database file from a thread of its own."""

    def __init__(self, path: str, synchronous: str) -> None:
        # Waiting for readers, a full checkpoint holds the write lock: a reader
        # that is stopped must not keep every writer waiting (the log grows
        # until it continues, and the next round tries again).
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=0.1)
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


def file_id(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


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


class Connection:
    """The store's connection; issues the savepoints that nested transactions
    owe before any statement runs inside them, and turns SQLite's errors about
    the file (disk full, read-only, corrupt, ...) into :class:`StoreError`.

    A savepoint costs SQLite more than its two statements (pages changed under
    it are copied so it can be rolled back), and most transitions of a group
    commit only touch rows held back until the commit: their undo is
    :class:`PendingRows`'s alone.
    """

    __slots__ = ("aborted", "conn", "in_tx", "lost", "owed", "path")

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
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
            return self.conn.execute(sql, params)
        except sqlite3.Error as err:
            raise self._error(err) from err

    def begin(self) -> None:
        """Opens a write transaction, waiting for the write lock while the
        process that holds it runs (up to 30 s, then :class:`StoreError`
        names it). A process stopped by a signal (SIGSTOP, Ctrl-Z) while it
        holds the lock would keep every process from writing for as long as
        it stays stopped: after 5 s it is ended (SIGKILL), as a process taken
        for gone; what it had not committed was never acknowledged.
        """
        if self.owed or self.aborted is not None or self.lost is not None:
            self._prepare()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            if _cause(err) != _CAUSES["SQLITE_BUSY"]:
                raise self._error(err) from err
            self._wait_for_write_lock()

    def _wait_for_write_lock(self) -> None:
        waiting_since = time.monotonic()
        stopped_since: dict[tuple[int, str], float] = {}
        while True:
            holder = write_lock_holder(self.path)
            now = time.monotonic()
            ended = False
            if holder is not None and holder.stopped:
                since = stopped_since.setdefault((holder.pid, holder.started), now)
                ended = now - since >= _STOPPED_GRACE and _end(holder, self.path, now - since)
            if ended:
                waiting_since = now
            elif now - waiting_since >= _LOCK_PATIENCE:
                who = holder.describe() if holder else "a process outside this PID namespace"
                raise StoreError(
                    f"store {self.path}: another process holds the file locked ({who}) "
                    f"for {now - waiting_since:.0f} s"
                )
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as err:
                if _cause(err) != _CAUSES["SQLITE_BUSY"]:
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
            cursor = self.conn.execute(sql, params)
            return cursor.fetchone() if one else cursor.fetchall()
        except sqlite3.Error as err:
            raise self._error(err) from err

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> sqlite3.Cursor:
        if self.owed or self.aborted is not None or self.lost is not None:
            self._prepare()
        try:
            return self.conn.executemany(sql, rows)
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
                self.conn.execute(f"SAVEPOINT {name}")
            except sqlite3.Error as err:
                raise self._error(err) from err

    def _error(self, err: sqlite3.Error) -> Exception:
        cause = _cause(err)
        if cause is None:
            # The statement is at fault (a constraint, a bug): not the file.
            return err
        if cause in _ACCESS_CAUSES and self.path != MEMORY:
            cause = _access_cause(self.path) or cause
        error = StoreError(f"store {self.path}: {cause} ({err})")
        if self.in_tx and not self.conn.in_transaction:
            self.aborted = error
        return error

    def end(self) -> None:
        """Ends the open transaction, rolling back whatever SQLite still holds of it."""
        self.in_tx = False
        self.aborted = None
        self.owed.clear()
        if self.conn.in_transaction:
            # Should this fail too, SQLite has dropped the transaction itself.
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()


def _end(holder: Holder, path: str, stopped_for: float) -> bool:
    """Kills ``holder`` if it is still that process, stopped; whether it did."""
    again = write_lock_holder(path)
    if again != holder:
        return False
    try:
        os.kill(holder.pid, signal.SIGKILL)
    except OSError as err:
        logger.error("ablauf: store %s: cannot end %s: %s", path, holder.describe(), err)
        return False
    logger.error(
        "ablauf: store %s: %s kept the write lock for %.0f s while stopped, which keeps "
        "every other process from writing; ended it (SIGKILL)",
        path,
        holder.describe(),
        stopped_for,
    )
    return True


def integrity(db: Connection) -> list[str]:
    try:
        rows = db.query("PRAGMA integrity_check")
    except (sqlite3.DatabaseError, StoreError) as err:
        # Damage the check itself cannot read past.
        return [str(err.__cause__ or err)]
    if [tuple(r) for r in rows] == [("ok",)]:
        return []
    # One row may hold several problems, a line each.
    return [line for r in rows for line in str(r[0]).splitlines()]


def open_read_only(path: str) -> Connection:
    """A connection that neither creates nor changes the store at ``path``."""
    if not Path(path).is_file():
        raise StoreError(f"store {path}: no such file")
    db = Connection(sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True), path)
    try:
        marker = db.query_one(GET_META, (MARKER,))
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
    db = open_read_only(path)
    try:
        return integrity(db)
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
    db = open_read_only(path)
    try:
        copy_store(db, target, checked=True)
    finally:
        db.close()


def copy_store(db: Connection, target: Path, *, checked: bool = False) -> None:
    """Copies the store behind ``db`` into ``target`` with SQLite's backup API
    (one read transaction), whole or not at all: it is written beside the
    target and renamed only once complete (and, ``checked``, found sound)."""
    partial = target.with_name(target.name + ".partial")
    copy = sqlite3.connect(partial)
    try:
        db.conn.backup(copy)
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
