"""Contract: schedule rows, listed newest first per namespace."""

from __future__ import annotations

from ablauf.store.base import Store
from tests.store.records import schedule


def test_a_schedule_reads_back_as_inserted_and_updated(store: Store) -> None:
    assert store.get_schedule("default", "s-1") is None
    store.insert_schedule(schedule())
    assert store.get_schedule("default", "s-1") == schedule()
    assert store.get_schedule("elsewhere", "s-1") is None
    changed = schedule(schedule=b"new", info=b"i2", memo=b"m2", search_attributes=b"a2", state="x")
    store.update_schedule(changed)
    assert store.get_schedule("default", "s-1") == changed


def test_a_deleted_schedule_is_gone(store: Store) -> None:
    store.insert_schedule(schedule())
    assert not store.delete_schedule("elsewhere", "s-1")
    assert store.delete_schedule("default", "s-1")
    assert store.get_schedule("default", "s-1") is None
    assert not store.delete_schedule("default", "s-1")


def test_schedules_are_listed_newest_first_in_pages(store: Store) -> None:
    for schedule_id, created_at in [("b", 1.0), ("a", 1.0), ("c", 3.0), ("d", 2.0)]:
        store.insert_schedule(schedule(schedule_id, created_at=created_at))
    store.insert_schedule(schedule("e", namespace="elsewhere", created_at=9.0))
    listed = [s.schedule_id for s in store.list_schedules("default", 0, 10)]
    assert listed == ["c", "d", "a", "b"]
    assert [s.schedule_id for s in store.list_schedules("default", 1, 2)] == ["d", "a"]
    assert store.list_schedules("default", 4, 10) == []
    assert [s.schedule_id for s in store.list_schedules("elsewhere", 0, 10)] == ["e"]
