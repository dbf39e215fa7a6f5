"""Contract: processes that hold leases; a renewal or expiry acts only on the
row as it was read."""

from __future__ import annotations

from ablauf.store.base import Store
from tests.store.records import owner


def test_owners_read_back_as_registered(store: Store) -> None:
    assert store.owners() == []
    store.register_owner(owner("a"))
    store.register_owner(owner("b", task_queues=(), host=""))
    assert sorted(store.owners(), key=lambda o: o.owner_id) == [
        owner("a"),
        owner("b", task_queues=(), host=""),
    ]
    # Registering again replaces the row.
    store.register_owner(owner("a", pid=7, task_queues=("z",), lease_until=500.0))
    assert owner("a", pid=7, task_queues=("z",), lease_until=500.0) in store.owners()
    assert len(store.owners()) == 2


def test_a_renewal_extends_only_the_lease_that_was_read(store: Store) -> None:
    store.register_owner(owner(lease_until=100.0))
    assert store.renew_owner("owner-1", 100.0, 130.0)
    assert [o.lease_until for o in store.owners()] == [130.0]
    # Held until 100 no more: another renewal or a new registration came between.
    assert not store.renew_owner("owner-1", 100.0, 160.0)
    assert [o.lease_until for o in store.owners()] == [130.0]
    assert not store.renew_owner("nobody", 100.0, 160.0)


def test_an_owner_expires_only_once_its_lease_ended(store: Store) -> None:
    store.register_owner(owner(lease_until=100.0))
    assert not store.expire_owner("owner-1", 100.0)
    assert store.renew_owner("owner-1", 100.0, 150.0)
    assert not store.expire_owner("owner-1", 120.0)  # renewed meanwhile
    assert store.expire_owner("owner-1", 150.5)
    assert store.owners() == []
    assert not store.expire_owner("owner-1", 200.0)  # removed first by another


def test_a_removed_owner_is_gone(store: Store) -> None:
    store.register_owner(owner("a"))
    store.register_owner(owner("b"))
    store.remove_owner("a")
    store.remove_owner("nobody")
    assert [o.owner_id for o in store.owners()] == ["b"]
    assert not store.renew_owner("a", 100.0, 200.0)
