"""SQLite backend: one file, WAL mode, one transaction per engine transition."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, cast

from ablauf.errors import StoreError, StoreLostError
from ablauf.history.events import frame, skip_frames
from ablauf.store import sql
from ablauf.store.base import (
    ACTIVITY_TASK,
    MEMORY,
    ExecutionRecord,
    OwnerRecord,
    QueryRecord,
    ScheduleRecord,
    TaskRecord,
    TimerRecord,
    UpdateRecord,
)
from ablauf.store.connection import (
    LOCK_STEP,
    Checkpointer,
    Connection,
    file_id,
    integrity,
)
from ablauf.store.pending_rows import PendingRows, Row
from ablauf.store.schema import SCHEMA_VERSION, prepare

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

# Where the header holds the store's id (see schema.py), which verify reads
# from the file itself: SQLite would answer from its write-ahead log, which
# still holds the old file's pages.
_STORE_ID_OFFSET = 60

_TASKS, _HISTORY, _EXECUTIONS = "tasks", "history", "executions"
_NEW_EXECUTIONS, _CURRENT_RUNS = "new executions", "current runs"
_TASK_DELETES = "task deletes"
# A closed run's task and timer rows, deleted at the commit.
_RUN_TASK_DELETES, _RUN_TIMER_DELETES = "run task deletes", "run timer deletes"
# A held history chunk takes the run's next events while smaller than this;
# growing copies it, so it stays small.
_GROWN_CHUNK = 8192
_SCAN_HELD_TASKS = 64
# Writes that wait for the commit (see pending_rows), with their statements.
_WRITE_BEHIND = {
    # A run started in the transaction: its row as of the commit (later
    # updates in the transaction change the held row instead).
    _NEW_EXECUTIONS: sql.INSERT_EXECUTION,
    _EXECUTIONS: sql.UPDATE_EXECUTION,
    _CURRENT_RUNS: sql.SET_CURRENT_RUN,
    _HISTORY: sql.INSERT_CHUNK,
    # In program order: a run's rows go before rows inserted after they went.
    _RUN_TASK_DELETES: sql.DELETE_RUN_TASKS,
    _TASKS: sql.INSERT_TASK,
    _TASK_DELETES: sql.DELETE_TASK,
    _RUN_TIMER_DELETES: sql.DELETE_RUN_TIMERS,
}

_READ_VERSION_TTL = 0.005
_CURRENT_RUNS_KEPT = 10_000


def _execution_row(rec: ExecutionRecord) -> Row:
    """The record as its ``executions`` row, in the order of ``sql.INSERT_EXECUTION``."""
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
        store._db.begin()
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


class SqliteStore:
    """The store in one SQLite file, or in memory for the path ``":memory:"``.

    ``synchronous`` is SQLite's pragma: ``NORMAL`` (default) survives a killed
    process; ``FULL`` also survives power loss, at the cost of an fsync per commit.
    A store in memory is a private database of this connection, with the same
    schema and statements; what concerns a file (its identity, the log's
    checkpoints, copies before an upgrade) does not apply to it.
    """

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        in_file = path != MEMORY
        if in_file and not Path(path).parent.exists():
            raise StoreError(f"cannot open store {path!r}: directory does not exist")
        self._depth = 0
        self._pending = PendingRows(list(_WRITE_BEHIND))
        # The latest history chunk held per run, to grow (see append_events).
        self._open_chunks: dict[str, tuple[str, int]] = {}
        try:
            self._db = Connection(
                sqlite3.connect(
                    path, isolation_level=None, check_same_thread=False, timeout=LOCK_STEP
                ),
                path,
            )
            if in_file:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA foreign_keys=OFF")
            prepare(self._db, path)
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{path!r} is not a usable ablauf store: {err}") from err
        # The file this connection has open: a commit checks that the path
        # still leads to it (see _check_file).
        self._file_id = file_id(path) if in_file else None
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
        self._checkpointer: Checkpointer | None = None
        if in_file:
            # Commits only append to the WAL; copying it into the database
            # (and its fsync) happens on another thread.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = Checkpointer(path, synchronous)

    def check(self) -> list[str]:
        """SQLite's full integrity check: the problems it finds (none: an empty list)."""
        return integrity(self._db)

    def _check_file(self) -> None:
        """Raises :class:`StoreLostError` if the path no longer leads to the
        file this connection writes (removed, or replaced by another file)."""
        if self._file_id is None:
            return
        try:
            current = file_id(self.path)
        except FileNotFoundError:
            raise self.mark_lost("was removed") from None
        if current != self._file_id:
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
            self._db.execute(sql.INSERT_EXECUTION, _execution_row(rec))

    def get_execution(self, run_id: str) -> ExecutionRecord | None:
        new = self._pending.tables[_NEW_EXECUTIONS].get(run_id)
        if new is not None:
            return ExecutionRecord(*cast(tuple[Any, ...], new))
        self._write_pending(_EXECUTIONS)
        row = self._db.query_one(sql.GET_EXECUTION, (run_id,))
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
            self._db.execute(sql.UPDATE_EXECUTION, (*row, rec.run_id))

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
        row = self._db.query_one(sql.EXECUTION_VERSION, (run_id,))
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
        row = self._db.query_one(sql.CURRENT_RUN_ID, (namespace, workflow_id))
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
            self._db.execute(sql.SET_CURRENT_RUN, (namespace, workflow_id, run_id))

    def count_running(self, namespace: str, task_queue: str) -> int:
        """Runs of ``task_queue`` that have not closed.

        Reads every run (once, when a worker starts): an index for it would
        cost each start and close of a workflow more than it saves here.
        """
        self._write_pending(_NEW_EXECUTIONS, _EXECUTIONS)
        row = self._db.query_one(sql.COUNT_RUNNING, (task_queue, namespace))
        return int(row[0])

    def iter_run_ids(self) -> Iterator[str]:
        self._write_pending(_NEW_EXECUTIONS, _EXECUTIONS)
        for row in self._db.query(sql.RUN_IDS):
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
            self._db.execute(sql.INSERT_CHUNK, (run_id, first, last, framed))
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
        chunks = self._db.query(sql.READ_HISTORY, (run_id, first_event_id))
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
        self._db.execute(sql.INSERT_BUFFERED_EVENT, (run_id, data))

    def take_buffered_events(self, run_id: str) -> list[bytes]:
        rows = self._db.query(sql.BUFFERED_EVENTS, (run_id,))
        if rows:
            self._db.execute(sql.DELETE_BUFFERED_EVENTS, (run_id,))
        return [r[0] for r in rows]

    def count_buffered_events(self, run_id: str) -> int:
        row = self._db.query_one(sql.COUNT_BUFFERED_EVENTS, (run_id,))
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
            cur = self._db.execute(sql.INSERT_TASK, (None, *self._task_row(rec)[1:]))
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
                row = self._db.query_one(sql.LAST_TASK_ID)
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
        self._db.execute(sql.UPDATE_TASK, (*row[1:], row[0]))

    def delete_task(self, task_id: int) -> None:
        pending = self._pending
        if pending.drop(_TASKS, task_id):
            return
        if self._depth:
            # A committed row goes at the commit too: a transition that closes an
            # activity then sends SQLite nothing and needs no savepoint.
            pending.put(_TASK_DELETES, task_id, (task_id,))
        else:
            self._db.execute(sql.DELETE_TASK, (task_id,))

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
            self._db.execute(sql.DELETE_RUN_TASKS, (run_id,))

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
            _task(r) for r in self._db.query(sql.TASKS_OF_RUN, (run_id,)) if r[0] not in deleted
        ]
        held = [_task(r) for r in self._pending.tables[_TASKS].values() if r[2] == run_id]
        if held:
            tasks = sorted(tasks + held, key=lambda t: t.id)
        return tasks

    def ready_tasks(
        self, kind: int, task_queues: Sequence[str], now: float, limit: int
    ) -> list[TaskRecord]:
        self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES)
        statement = sql.READY_TASKS.format(marks=sql.marks(len(task_queues)))
        return [_task(r) for r in self._db.query(statement, (kind, *task_queues, now, now, limit))]

    def has_runnable_tasks(self, now: float) -> bool:
        """Whether any task is leased (running) or due."""
        self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES)
        return self._db.query_one(sql.RUNNABLE_TASK, (now,)) is not None

    def has_retrying_workflow_tasks(self) -> bool:
        """Whether a workflow task waits out its backoff after failed attempts."""
        self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES)
        return self._db.query_one(sql.RETRYING_WORKFLOW_TASK) is not None

    def release_leases(
        self, owner_ids: Sequence[str], kind: int, task_queue: str | None = None
    ) -> int:
        self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES, _NEW_EXECUTIONS, _EXECUTIONS)
        if not owner_ids:
            return 0
        marks = sql.marks(len(owner_ids))
        args: list[object] = [kind, *owner_ids]
        if task_queue is None:
            touch, release = sql.TOUCH_LEASED_RUNS, sql.RELEASE_LEASES
        else:
            touch, release = sql.TOUCH_LEASED_RUNS_OF_QUEUE, sql.RELEASE_LEASES_OF_QUEUE
            args.append(task_queue)
        # Cached run states of every process must notice the freed lease.
        self._db.execute(touch.format(marks=marks), args)
        return self._db.execute(release.format(marks=marks), args).rowcount

    def runs_with_leases(self, owner_ids: Sequence[str], kind: int) -> list[str]:
        self._write_pending(_RUN_TASK_DELETES, _TASKS, _TASK_DELETES, _NEW_EXECUTIONS, _EXECUTIONS)
        marks = sql.marks(len(owner_ids))
        if kind == ACTIVITY_TASK:
            statement = sql.RUNS_WITH_LEASED_ACTIVITIES.format(marks=marks)
            args: list[object] = [kind, *owner_ids, *owner_ids]
        else:
            statement = sql.RUNS_WITH_LEASED_TASKS.format(marks=marks)
            args = [kind, *owner_ids]
        return [r[0] for r in self._db.query(statement, args)]

    # timers

    def insert_timer(self, run_id: str, kind: int, ref: str, attempt: int, fire_at: float) -> int:
        self._write_pending(_RUN_TIMER_DELETES)
        cur = self._db.execute(sql.INSERT_TIMER, (run_id, kind, ref, attempt, fire_at))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def delete_timer(self, timer_id: int) -> bool:
        self._write_pending(_RUN_TIMER_DELETES)
        return self._db.execute(sql.DELETE_TIMER, (timer_id,)).rowcount > 0

    def delete_timers(self, run_id: str, kind: int | None = None, ref: str | None = None) -> None:
        if kind is None and ref is None and self._depth:
            # All of a run's timers (it closed): at the commit, with no savepoint.
            self._pending.put(_RUN_TIMER_DELETES, run_id, (run_id,))
            return
        self._write_pending(_RUN_TIMER_DELETES)
        if kind is None and ref is None:
            self._db.execute(sql.DELETE_RUN_TIMERS, (run_id,))
        elif ref is None:
            self._db.execute(sql.DELETE_RUN_TIMERS_OF_KIND, (run_id, kind))
        elif kind is None:
            self._db.execute(sql.DELETE_RUN_TIMERS_OF_REF, (run_id, ref))
        else:
            self._db.execute(sql.DELETE_RUN_TIMERS_OF_KIND_AND_REF, (run_id, kind, ref))

    def delete_ref_timers(self, run_id: str, ref: str, kinds: Sequence[int]) -> None:
        self._write_pending(_RUN_TIMER_DELETES)
        statement = sql.DELETE_REF_TIMERS.format(marks=sql.marks(len(kinds)))
        self._db.execute(statement, (run_id, ref, *kinds))

    def due_timers(self, now: float, limit: int) -> list[TimerRecord]:
        self._write_pending(_RUN_TIMER_DELETES)
        return [TimerRecord(*r) for r in self._db.query(sql.DUE_TIMERS, (now, limit))]

    def next_timer_at(self) -> float | None:
        self._write_pending(_RUN_TIMER_DELETES)
        row = self._db.query_one(sql.NEXT_TIMER_AT)
        return None if row is None or row[0] is None else float(row[0])

    # owners

    def register_owner(self, rec: OwnerRecord) -> None:
        queues = "\n".join(rec.task_queues)
        self._db.execute(
            sql.REGISTER_OWNER,
            (rec.owner_id, rec.pid, rec.started_at, queues, rec.lease_until, rec.host),
        )

    def renew_owner(self, owner_id: str, held_until: float, until: float) -> bool:
        """Extends the owner's lease from ``held_until`` to ``until``; False if
        its row is gone or holds another lease (another process declared the
        owner gone, or the file changed under it)."""
        return self._db.execute(sql.RENEW_OWNER, (until, owner_id, held_until)).rowcount > 0

    def remove_owner(self, owner_id: str) -> None:
        self._db.execute(sql.REMOVE_OWNER, (owner_id,))

    def expire_owner(self, owner_id: str, now: float) -> bool:
        """Removes the owner if its lease ended before ``now``; False if it was
        renewed meanwhile or another process removed it first."""
        return self._db.execute(sql.EXPIRE_OWNER, (owner_id, now)).rowcount > 0

    def owners(self) -> list[OwnerRecord]:
        return [
            OwnerRecord(r[0], r[1], r[2], tuple(q for q in r[3].split("\n") if q), r[4], r[5])
            for r in self._db.query(sql.OWNERS)
        ]

    # updates

    def insert_update(self, rec: UpdateRecord) -> None:
        self._db.execute(
            sql.INSERT_UPDATE,
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
            sql.SAVE_UPDATE,
            (rec.state, rec.outcome, rec.accepted_event_id, rec.run_id, rec.update_id),
        )

    def get_update(self, run_id: str, update_id: str) -> UpdateRecord | None:
        row = self._db.query_one(sql.GET_UPDATE, (run_id, update_id))
        return UpdateRecord(*row) if row else None

    def updates_of_run(self, run_id: str) -> list[UpdateRecord]:
        return [UpdateRecord(*r) for r in self._db.query(sql.UPDATES_OF_RUN, (run_id,))]

    # cross-process queries

    def insert_query(self, run_id: str, task_queue: str, request: bytes, now: float) -> int:
        cur = self._db.execute(sql.INSERT_QUERY, (run_id, task_queue, request, now))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def take_queries(self, task_queues: Sequence[str], owner_id: str) -> list[QueryRecord]:
        statement = sql.OPEN_QUERIES.format(marks=sql.marks(len(task_queues)))
        rows = self._db.query(statement, tuple(task_queues))
        for r in rows:
            self._db.execute(sql.TAKE_QUERY, (owner_id, r[0]))
        return [QueryRecord(r[0], r[1], r[2], r[3], owner_id, False, None, None) for r in rows]

    def answer_query(self, query_id: int, response: bytes | None, error: str | None) -> None:
        self._db.execute(sql.ANSWER_QUERY, (response, error, query_id))

    def get_query(self, query_id: int) -> QueryRecord | None:
        r = self._db.query_one(sql.GET_QUERY, (query_id,))
        return QueryRecord(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7]) if r else None

    def delete_query(self, query_id: int) -> None:
        self._db.execute(sql.DELETE_QUERY, (query_id,))

    # schedules

    def insert_schedule(self, rec: ScheduleRecord) -> None:
        self._db.execute(
            sql.INSERT_SCHEDULE,
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
        row = self._db.query_one(sql.GET_SCHEDULE, (namespace, schedule_id))
        return ScheduleRecord(*row) if row else None

    def update_schedule(self, rec: ScheduleRecord) -> None:
        self._db.execute(
            sql.UPDATE_SCHEDULE,
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
        return self._db.execute(sql.DELETE_SCHEDULE, (namespace, schedule_id)).rowcount > 0

    def list_schedules(self, namespace: str, offset: int, limit: int) -> list[ScheduleRecord]:
        """Newest first, as Temporal's visibility lists them."""
        return [
            ScheduleRecord(*r)
            for r in self._db.query(sql.LIST_SCHEDULES, (namespace, limit, offset))
        ]

    # search attributes

    def search_attributes(self, namespace: str) -> dict[str, int]:
        return dict(self._db.query(sql.SEARCH_ATTRIBUTES, (namespace,)))

    def add_search_attributes(self, namespace: str, types: Mapping[str, int]) -> None:
        """Registers each name with its type; a name registered already keeps its own."""
        self._db.executemany(
            sql.ADD_SEARCH_ATTRIBUTE, [(namespace, n, t) for n, t in types.items()]
        )

    def remove_search_attributes(self, namespace: str, names: Sequence[str]) -> None:
        self._db.executemany(sql.REMOVE_SEARCH_ATTRIBUTE, [(namespace, n) for n in names])
