"""The current run of a workflow id, as one connection remembers it, follows
changes by itself, by other connections, and rollbacks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ablauf.store.sqlite import SqliteStore


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "runs.db")


def test_a_new_run_of_this_connection_is_seen_at_once(path: str) -> None:
    store = SqliteStore(path)
    with store.transaction():
        store.set_current_run("default", "wf", "run-1")
    assert store.current_run_id("default", "wf") == "run-1"
    with store.transaction():
        store.set_current_run("default", "wf", "run-2")
    assert store.current_run_id("default", "wf") == "run-2"
    store.close()


def test_a_rolled_back_run_is_not_remembered(path: str) -> None:
    store = SqliteStore(path)
    with store.transaction():
        store.set_current_run("default", "wf", "run-1")
    assert store.current_run_id("default", "wf") == "run-1"
    with pytest.raises(RuntimeError), store.transaction():
        store.set_current_run("default", "wf", "run-2")
        assert store.current_run_id("default", "wf") == "run-2"
        raise RuntimeError("the change fails")
    assert store.current_run_id("default", "wf") == "run-1"
    store.close()


def test_another_connections_run_is_seen(path: str) -> None:
    mine, theirs = SqliteStore(path), SqliteStore(path)
    with mine.transaction():
        mine.set_current_run("default", "wf", "run-1")
    assert mine.current_run_id("default", "wf") == "run-1"
    with theirs.transaction():
        theirs.set_current_run("default", "wf", "run-2")
    # Inside a transaction the file is read as it is now.
    with mine.transaction():
        assert mine.current_run_id("default", "wf") == "run-2"
    with theirs.transaction():
        theirs.set_current_run("default", "wf", "run-3")
    # Outside one, a read may lag another process's commit by a few milliseconds.
    time.sleep(0.05)
    assert mine.current_run_id("default", "wf") == "run-3"
    mine.close()
    theirs.close()
