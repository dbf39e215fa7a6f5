"""Contract: the custom search attributes registered per namespace."""

from __future__ import annotations

from ablauf.store.base import Store


def test_registered_search_attributes_keep_their_first_type(store: Store) -> None:
    assert store.search_attributes("default") == {}
    with store.transaction():
        store.add_search_attributes("default", {"Kw": 2, "Num": 3})
        store.add_search_attributes("other", {"Kw": 1})
    with store.transaction():
        store.add_search_attributes("default", {"Kw": 3})
    assert store.search_attributes("default") == {"Kw": 2, "Num": 3}
    assert store.search_attributes("other") == {"Kw": 1}


def test_removed_search_attributes_are_gone_from_their_namespace_only(store: Store) -> None:
    with store.transaction():
        store.add_search_attributes("default", {"Kw": 2, "Num": 3})
        store.add_search_attributes("other", {"Kw": 2})
    with store.transaction():
        store.remove_search_attributes("default", ["Kw", "Missing"])
    assert store.search_attributes("default") == {"Num": 3}
    assert store.search_attributes("other") == {"Kw": 2}
