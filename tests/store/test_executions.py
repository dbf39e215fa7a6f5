"""Contract: execution rows and the current run of each workflow id."""

from __future__ import annotations

import dataclasses

import pytest

from ablauf.store.base import Store
from tests.store.records import execution


def test_a_run_reads_back_as_inserted_and_updated(store: Store) -> None:
    exe = execution(activity_owner="owner-1")
    store.insert_execution(exe)
    assert store.get_execution("run-1") == exe
    assert store.get_execution("other") is None
    assert store.execution_version("other") is None
    closed = dataclasses.replace(
        exe, status=2, close_time=105.0, next_event_id=7, history_size=99, version=3,
        activity_owner=None,
    )  # fmt: skip
    store.update_execution(closed)
    assert store.get_execution("run-1") == closed
    assert store.execution_version("run-1") == 3


def test_a_new_run_is_seen_in_its_transaction_with_its_last_update(store: Store) -> None:
    with store.transaction():
        exe = execution()
        store.insert_execution(exe)
        store.set_current_run("default", "wf", "run-1")
        assert store.current_run_id("default", "wf") == "run-1"
        assert store.get_execution("run-1") == exe
        updated = dataclasses.replace(exe, status=2, close_time=105.0, next_event_id=7, version=3)
        store.update_execution(updated)
        assert store.get_execution("run-1") == updated
        assert store.execution_version("run-1") == 3
        assert list(store.iter_run_ids()) == ["run-1"]
    assert store.get_execution("run-1") == updated
    assert store.current_run_id("default", "wf") == "run-1"


def test_an_update_in_a_transaction_is_seen_in_it_and_after(store: Store) -> None:
    store.insert_execution(execution())
    with store.transaction():
        store.update_execution(execution(version=4, next_event_id=9))
        assert store.execution_version("run-1") == 4
        assert store.get_execution("run-1") == execution(version=4, next_event_id=9)
    assert store.get_execution("run-1") == execution(version=4, next_event_id=9)


def test_a_savepoint_rolled_back_takes_its_new_run_with_it(store: Store) -> None:
    with store.transaction():
        store.insert_execution(execution("run-1"))
        store.set_current_run("default", "wf", "run-1")
        with pytest.raises(RuntimeError), store.transaction():
            store.update_execution(execution("run-1", version=5))
            store.insert_execution(execution("run-2"))
            store.set_current_run("default", "wf", "run-2")
            assert store.current_run_id("default", "wf") == "run-2"
            raise RuntimeError("the change fails")
        assert store.current_run_id("default", "wf") == "run-1"
        assert store.get_execution("run-2") is None
        assert store.execution_version("run-1") == 0
    assert store.get_execution("run-1") == execution("run-1")
    assert store.get_execution("run-2") is None
    assert store.current_run_id("default", "wf") == "run-1"


def test_a_run_started_outside_a_transaction_is_there_at_once(store: Store) -> None:
    store.insert_execution(execution())
    store.set_current_run("default", "wf", "run-1")
    assert store.get_execution("run-1") == execution()
    assert store.current_run_id("default", "wf") == "run-1"


def test_the_current_run_follows_each_commit(store: Store) -> None:
    assert store.current_run_id("default", "wf") is None
    with store.transaction():
        store.set_current_run("default", "wf", "run-1")
    assert store.current_run_id("default", "wf") == "run-1"
    with store.transaction():
        store.set_current_run("default", "wf", "run-2")
    assert store.current_run_id("default", "wf") == "run-2"
    # Per namespace and workflow id.
    assert store.current_run_id("other", "wf") is None
    assert store.current_run_id("default", "wf-2") is None


def test_a_rolled_back_current_run_is_not_remembered(store: Store) -> None:
    with store.transaction():
        store.set_current_run("default", "wf", "run-1")
    assert store.current_run_id("default", "wf") == "run-1"
    with pytest.raises(RuntimeError), store.transaction():
        store.set_current_run("default", "wf", "run-2")
        assert store.current_run_id("default", "wf") == "run-2"
        raise RuntimeError("the change fails")
    assert store.current_run_id("default", "wf") == "run-1"


def test_count_running_counts_open_runs_of_a_queue(store: Store) -> None:
    store.insert_execution(execution("a"))
    store.insert_execution(execution("b", task_queue="other"))
    store.insert_execution(execution("c", namespace="elsewhere"))
    store.insert_execution(execution("d", status=2, close_time=1.0))
    with store.transaction():
        store.insert_execution(execution("e"))
        store.update_execution(execution("a", status=3, close_time=2.0))
        assert store.count_running("default", "q") == 1
    assert store.count_running("default", "q") == 1
    assert store.count_running("default", "other") == 1
    assert store.count_running("elsewhere", "q") == 1
    assert store.count_running("default", "none") == 0


def test_run_ids_come_in_start_order(store: Store) -> None:
    store.insert_execution(execution("late", start_time=300.0))
    with store.transaction():
        store.insert_execution(execution("early", start_time=100.0))
        store.insert_execution(execution("middle", start_time=200.0))
    assert list(store.iter_run_ids()) == ["early", "middle", "late"]
