"""A run started in a transaction reaches the SQLite file at its commit, as last
updated there; until then this connection sees it, and a savepoint rolled back
takes it away."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from ablauf.store.base import ExecutionRecord
from ablauf.store.sqlite import SqliteStore


def _execution(run_id: str, workflow_id: str = "wf") -> ExecutionRecord:
    return ExecutionRecord(
        run_id=run_id,
        namespace="default",
        workflow_id=workflow_id,
        workflow_type="Flow",
        task_queue="q",
        status=1,
        start_time=100.0,
        close_time=None,
        next_event_id=1,
        history_size=0,
        version=0,
    )


def _on_disk(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Executions and current runs as another connection sees them."""
    with sqlite3.connect(path) as db:
        executions = db.execute(
            "SELECT run_id, workflow_id, status, start_time, close_time, next_event_id, version "
            "FROM executions ORDER BY run_id"
        ).fetchall()
        current = db.execute("SELECT workflow_id, run_id FROM current_runs").fetchall()
    return executions, current


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


@pytest.fixture
def store(path: Path):
    s = SqliteStore(str(path))
    yield s
    s.close()


def test_a_new_run_is_written_at_the_commit_with_its_last_update(
    store: SqliteStore, path: Path
) -> None:
    with store.transaction():
        exe = _execution("run-1")
        store.insert_execution(exe)
        store.set_current_run("default", "wf", "run-1")
        assert _on_disk(path) == ([], [])
        # This connection sees it before the commit.
        assert store.current_run_id("default", "wf") == "run-1"
        assert store.get_execution("run-1") == exe
        updated = dataclasses.replace(exe, status=2, close_time=105.0, next_event_id=7, version=3)
        store.update_execution(updated)
        assert store.get_execution("run-1") == updated
        assert store.execution_version("run-1") == 3
        assert list(store.iter_run_ids()) == ["run-1"]
    assert _on_disk(path) == ([("run-1", "wf", 2, 100.0, 105.0, 7, 3)], [("wf", "run-1")])
    assert store.get_execution("run-1") == updated


def test_a_savepoint_rolled_back_takes_its_new_run_with_it(store: SqliteStore, path: Path) -> None:
    with store.transaction():
        store.insert_execution(_execution("run-1"))
        store.set_current_run("default", "wf", "run-1")
        with pytest.raises(RuntimeError), store.transaction():
            store.update_execution(dataclasses.replace(_execution("run-1"), version=5))
            store.insert_execution(_execution("run-2"))
            store.set_current_run("default", "wf", "run-2")
            assert store.current_run_id("default", "wf") == "run-2"
            raise RuntimeError("the change fails")
        assert store.current_run_id("default", "wf") == "run-1"
        assert store.get_execution("run-2") is None
        assert store.execution_version("run-1") == 0
    assert _on_disk(path) == ([("run-1", "wf", 1, 100.0, None, 1, 0)], [("wf", "run-1")])


def test_a_run_started_outside_a_transaction_is_written_at_once(
    store: SqliteStore, path: Path
) -> None:
    store.insert_execution(_execution("run-1"))
    store.set_current_run("default", "wf", "run-1")
    assert _on_disk(path) == ([("run-1", "wf", 1, 100.0, None, 1, 0)], [("wf", "run-1")])
