"""Contract: task rows, their ids, leases and readiness, and how savepoints
undo exactly their own part of them."""

from __future__ import annotations

import pytest

from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK, Store
from tests.store.records import execution, task


def _ids(store: Store, run_id: str) -> list[int]:
    return [t.id for t in store.tasks_of_run(run_id)]


def test_a_task_reads_back_as_inserted_and_updated(store: Store) -> None:
    rec = task(kind=ACTIVITY_TASK, ref=5, heartbeat_details=b"hb", cancel_requested=True)
    task_id = store.insert_task(rec)
    assert task_id == rec.id > 0
    assert store.tasks_of_run("run-1") == [rec]
    rec.attempt, rec.lease_owner, rec.lease_until, rec.last_failure = 2, "o", 9.0, b"failure"
    store.update_task(rec)
    assert store.tasks_of_run("run-1") == [rec]
    with store.transaction():
        held = task(attempt=3)
        store.insert_task(held)
        held.lease_nonce = 7
        store.update_task(held)
        assert store.tasks_of_run("run-1") == [rec, held]
    assert store.tasks_of_run("run-1") == [rec, held]


def test_a_row_inserted_and_deleted_in_one_transaction_is_gone(store: Store) -> None:
    with store.transaction():
        kept, gone = task("a"), task("b")
        store.insert_task(kept)
        store.insert_task(gone)
        assert kept.id != gone.id
        assert _ids(store, "b") == [gone.id]
        store.delete_task(gone.id)
    assert _ids(store, "a") == [kept.id]
    assert store.tasks_of_run("b") == []


def test_ids_increase_and_are_never_reused(store: Store) -> None:
    with store.transaction():
        first = store.insert_task(task())
    with store.transaction():
        second = store.insert_task(task())
    assert second > first
    assert _ids(store, "run-1") == [first, second]
    with store.transaction():
        held = store.insert_task(task("run-2"))
    store.delete_task(held)
    outside = store.insert_task(task("run-3"))
    store.delete_task(outside)
    with store.transaction():
        again = store.insert_task(task("run-4"))
    assert second < held < outside < again


def test_a_rolled_back_savepoint_restores_the_held_rows(store: Store) -> None:
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
        assert [t.attempt for t in store.tasks_of_run("run-1")] == [1]
        assert store.tasks_of_run("other") == []
    assert [(t.id, t.attempt) for t in store.tasks_of_run("run-1")] == [(rec.id, 1)]
    assert store.tasks_of_run("other") == []


def test_rows_read_by_a_savepoint_come_back_when_it_rolls_back(store: Store) -> None:
    rec = task()
    with store.transaction():
        with store.transaction():
            store.insert_task(rec)
        with pytest.raises(RuntimeError), store.transaction():
            assert [t.id for t in store.ready_tasks(WORKFLOW_TASK, ["q"], 1.0, 10)] == [rec.id]
            raise RuntimeError("undo this savepoint")
        assert _ids(store, "run-1") == [rec.id]
    assert _ids(store, "run-1") == [rec.id]


def test_a_failed_transaction_leaves_no_task(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_task(task())
        raise RuntimeError("roll back")
    assert store.tasks_of_run("run-1") == []
    assert store.ready_tasks(WORKFLOW_TASK, ["q"], 1.0, 10) == []
    with store.transaction():
        after = store.insert_task(task("after"))
    assert [t.id for t in store.ready_tasks(WORKFLOW_TASK, ["q"], 1.0, 10)] == [after]


def test_a_run_s_tasks_are_found_among_many_held_rows(store: Store) -> None:
    with store.transaction():
        mine = [store.insert_task(task("mine")) for _ in range(3)]
        for i in range(100):
            store.insert_task(task(f"other-{i}"))
        store.delete_task(mine[1])
        assert _ids(store, "mine") == [mine[0], mine[2]]
        store.delete_task(mine[0])
        assert _ids(store, "mine") == [mine[2]]
    assert _ids(store, "mine") == [mine[2]]
    assert len(store.ready_tasks(WORKFLOW_TASK, ["q"], 1.0, 1000)) == 101


def test_many_deletes_of_committed_rows_in_one_transaction(store: Store) -> None:
    with store.transaction():
        ids = [store.insert_task(task("run", ref=i)) for i in range(100)]
    with store.transaction():
        for task_id in ids[:90]:
            store.delete_task(task_id)
        assert _ids(store, "run") == ids[90:]
    assert _ids(store, "run") == ids[90:]


def test_a_committed_row_deleted_in_a_transaction_is_gone(store: Store) -> None:
    kept, gone = task("a"), task("b")
    with store.transaction():
        store.insert_task(kept)
        store.insert_task(gone)
    with store.transaction():
        with store.transaction():
            store.delete_task(gone.id)
        assert store.tasks_of_run("b") == []
        assert [t.id for t in store.ready_tasks(WORKFLOW_TASK, ["q"], 1.0, 10)] == [kept.id]
    assert store.tasks_of_run("b") == []
    assert _ids(store, "a") == [kept.id]


def test_a_rolled_back_savepoint_keeps_a_committed_row_it_deleted(store: Store) -> None:
    rec = task()
    with store.transaction():
        store.insert_task(rec)
    with store.transaction():
        with pytest.raises(RuntimeError), store.transaction():
            store.delete_task(rec.id)
            raise RuntimeError("undo this savepoint")
        assert _ids(store, "run-1") == [rec.id]
    assert _ids(store, "run-1") == [rec.id]


def test_a_rolled_back_update_of_a_committed_row_is_undone(store: Store) -> None:
    rec = task()
    with store.transaction():
        store.insert_task(rec)
    with store.transaction():
        with pytest.raises(RuntimeError), store.transaction():
            store.tasks_of_run("run-1")
            rec.attempt = 2
            store.update_task(rec)
            raise RuntimeError("undo this savepoint")
        with store.transaction():
            store.update_task(task(id=10_000))  # an unknown id: nothing changes
        assert [t.attempt for t in store.tasks_of_run("run-1")] == [1]
    assert [(t.id, t.attempt) for t in store.tasks_of_run("run-1")] == [(rec.id, 1)]


def test_a_closed_run_s_rows_go_in_program_order(store: Store) -> None:
    stored = task("a")
    store.insert_task(stored)
    store.insert_timer("a", 1, "t", 0, 50.0)
    with store.transaction():
        store.insert_task(task("a"))
        store.delete_tasks_of_run("a")
        store.delete_timers("a")
        assert store.tasks_of_run("a") == []
        # Inserted after the delete: kept, as if the delete had run at once.
        store.insert_timer("a", 1, "u", 0, 60.0)
        later = task("a")
        store.insert_task(later)
        assert _ids(store, "a") == [later.id]
    assert _ids(store, "a") == [later.id]
    assert [t.ref for t in store.due_timers(100.0, 10)] == ["u"]


def test_a_rolled_back_savepoint_keeps_the_run_s_rows(store: Store) -> None:
    stored = task("a")
    store.insert_task(stored)
    store.insert_timer("a", 1, "t", 0, 50.0)
    with store.transaction(), pytest.raises(RuntimeError), store.transaction():
        store.delete_tasks_of_run("a")
        store.delete_timers("a")
        raise RuntimeError("undo")
    assert _ids(store, "a") == [stored.id]
    assert [t.ref for t in store.due_timers(100.0, 10)] == ["t"]


def test_a_run_s_tasks_deleted_outside_a_transaction(store: Store) -> None:
    store.insert_task(task("a"))
    store.insert_task(task("a"))
    kept = store.insert_task(task("b"))
    store.delete_tasks_of_run("a")
    assert store.tasks_of_run("a") == []
    assert _ids(store, "b") == [kept]


def test_ready_tasks_are_visible_unleased_of_the_kind_and_queues(store: Store) -> None:
    due = store.insert_task(task("a", visible_at=5.0))
    earlier = store.insert_task(task("b", visible_at=2.0))
    store.insert_task(task("c", visible_at=50.0))  # not yet visible
    store.insert_task(task("d", task_queue="elsewhere"))
    store.insert_task(task("e", kind=ACTIVITY_TASK))
    store.insert_task(task("f", lease_owner="o", lease_until=20.0))  # leased
    lapsed = store.insert_task(task("g", visible_at=3.0, lease_owner="o", lease_until=8.0))
    ready = store.ready_tasks(WORKFLOW_TASK, ["q", "r"], 10.0, 10)
    assert [t.id for t in ready] == [earlier, lapsed, due]
    assert [t.id for t in store.ready_tasks(WORKFLOW_TASK, ["q"], 10.0, 2)] == [earlier, lapsed]
    assert [t.run_id for t in store.ready_tasks(ACTIVITY_TASK, ["q"], 10.0, 10)] == ["e"]
    assert [t.run_id for t in store.ready_tasks(WORKFLOW_TASK, ["elsewhere"], 10.0, 10)] == ["d"]


def test_runnable_tasks_are_leased_or_due(store: Store) -> None:
    assert not store.has_runnable_tasks(10.0)
    with store.transaction():
        store.insert_task(task("a", visible_at=50.0))
        assert not store.has_runnable_tasks(10.0)
    assert store.has_runnable_tasks(50.0)
    store.insert_task(task("b", visible_at=60.0, lease_owner="o", lease_until=70.0))
    assert store.has_runnable_tasks(10.0)


def test_retrying_workflow_tasks_are_those_past_their_first_attempt(store: Store) -> None:
    store.insert_task(task("a", visible_at=50.0))
    store.insert_task(task("b", kind=ACTIVITY_TASK, attempt=3, visible_at=50.0))
    assert not store.has_retrying_workflow_tasks()
    with store.transaction():
        store.insert_task(task("c", attempt=2, visible_at=50.0))
        assert store.has_retrying_workflow_tasks()


def test_released_leases_free_the_tasks_and_touch_their_runs(store: Store) -> None:
    for run_id in ("a", "b", "c"):
        store.insert_execution(execution(run_id))
    store.insert_task(task("a", lease_owner="gone", lease_until=99.0))
    store.insert_task(task("b", lease_owner="gone", lease_until=99.0, task_queue="other"))
    store.insert_task(task("c", lease_owner="alive", lease_until=99.0))
    store.insert_task(task("c", kind=ACTIVITY_TASK, lease_owner="gone", lease_until=99.0))
    assert store.release_leases([], WORKFLOW_TASK) == 0
    with store.transaction():
        assert store.release_leases(["gone"], WORKFLOW_TASK, "q") == 1
    assert [store.execution_version(r) for r in "abc"] == [1, 0, 0]
    assert store.release_leases(["gone", "nobody"], WORKFLOW_TASK) == 1
    assert [store.execution_version(r) for r in "abc"] == [1, 1, 0]
    leases = {(t.run_id, t.kind): t.lease_owner for r in "abc" for t in store.tasks_of_run(r)}
    assert leases == {
        ("a", WORKFLOW_TASK): None,
        ("b", WORKFLOW_TASK): None,
        ("c", WORKFLOW_TASK): "alive",
        ("c", ACTIVITY_TASK): "gone",
    }
    assert all(t.lease_until is None for t in store.tasks_of_run("a"))


def test_runs_with_leases_name_each_run_once(store: Store) -> None:
    store.insert_execution(execution("a"))
    store.insert_execution(execution("b", activity_owner="o1"))
    store.insert_execution(execution("c"))
    with store.transaction():
        store.insert_task(task("a", lease_owner="o1", lease_until=9.0))
        store.insert_task(task("a", lease_owner="o2", lease_until=9.0))
        store.insert_task(task("c", kind=ACTIVITY_TASK, lease_owner="o2", lease_until=9.0))
        store.insert_task(task("c", kind=ACTIVITY_TASK, lease_owner="o2", lease_until=9.0))
    assert store.runs_with_leases(["o1", "o2"], WORKFLOW_TASK) == ["a"]
    assert sorted(store.runs_with_leases(["o1", "o2"], ACTIVITY_TASK)) == ["b", "c"]
    assert store.runs_with_leases(["o1"], ACTIVITY_TASK) == ["b"]
    assert store.runs_with_leases(["o3"], WORKFLOW_TASK) == []
