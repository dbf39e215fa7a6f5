"""open_store: the backend a URL names, and the URLs it refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ablauf import Client
from ablauf.errors import InvalidTargetError
from ablauf.store import MEMORY, open_store, parse_url
from ablauf.store.sqlite import SqliteStore


def _synchronous(store: object) -> int:
    assert isinstance(store, SqliteStore)
    return int(store._db.query_one("PRAGMA synchronous")[0])


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/s.db", "{tmp}/s.db"])
def test_a_file_url_or_path_opens_that_file(url: str, tmp_path: Path) -> None:
    # tmp_path is absolute: the URL has four slashes.
    store = open_store(url.format(tmp=tmp_path))
    assert isinstance(store, SqliteStore)
    assert (tmp_path / "s.db").is_file()
    assert _synchronous(store) == 1  # NORMAL
    store.close()


def test_a_relative_url_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///relative.db")
    assert store.path == os.path.join(tmp_path, "relative.db")
    store.close()


def test_options_come_from_the_url_or_the_call(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/s.db?synchronous=full")
    assert _synchronous(store) == 2
    store.close()
    store = open_store(f"sqlite:///{tmp_path}/s.db?synchronous=full", synchronous="OFF")
    assert _synchronous(store) == 0
    store.close()
    store = open_store(str(tmp_path / "s.db"), synchronous="EXTRA")
    assert _synchronous(store) == 3
    store.close()


@pytest.mark.parametrize("url", ["sqlite://:memory:", "sqlite:///:memory:", ":memory:"])
def test_memory_urls_open_a_private_store_in_memory(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    one, two = open_store(url), open_store(url)
    assert one.path == two.path == MEMORY
    one.insert_timer("run", 1, "t", 0, 1.0)
    assert len(one.due_timers(10.0, 10)) == 1
    assert two.due_timers(10.0, 10) == []
    one.verify()  # no file to lose
    assert list(tmp_path.iterdir()) == []
    one.close()
    two.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://localhost/db", "unsupported store 'postgres' .*: the stores are 'sqlite'"),
        ("redis://x", "unsupported store 'redis'"),
        ("sqlite://orders.db", "three slashes"),
        ("sqlite://:memory:/x", "three slashes"),
        ("sqlite:///", "names no file"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous=sometimes"),
        ("sqlite:///x.db?journal=wal", r"unknown store option\(s\) journal"),
    ],
)
def test_a_url_that_names_no_store_is_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidTargetError, match=message):
        open_store(url)


def test_parse_url_gives_scheme_absolute_path_and_options() -> None:
    assert parse_url("sqlite:///o.db?synchronous=full") == (
        "sqlite",
        os.path.abspath("o.db"),
        {"synchronous": "FULL"},
    )
    assert parse_url("sqlite://:memory:") == ("sqlite", MEMORY, {"synchronous": "NORMAL"})


async def test_a_client_runs_on_a_store_in_memory() -> None:
    client = await Client.connect("sqlite://:memory:")
    assert client.engine is not None and client.engine.store.path == MEMORY
    again = await Client.connect("sqlite://:memory:")
    assert again.engine is client.engine  # one store per event loop until closed
    await client.close()
