"""Target strings and store files that Client.connect accepts or refuses."""

from __future__ import annotations

import os
import sqlite3

import pytest

from ablauf import Client
from ablauf.client import StoreTarget, parse_target
from ablauf.errors import InvalidTargetError, StoreError


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("sqlite:///orders.db", StoreTarget(os.path.abspath("orders.db"))),
        ("sqlite:////tmp/x/orders.db", StoreTarget("/tmp/x/orders.db")),
        ("sqlite:///o.db?synchronous=full", StoreTarget(os.path.abspath("o.db"), "FULL")),
        ("sqlite://:memory:", StoreTarget(":memory:")),
        ("sqlite:///:memory:", StoreTarget(":memory:")),
        ("localhost:7233", "localhost:7233"),
        ("[::1]:7233", "[::1]:7233"),
    ],
)
def test_valid_targets(target: str, expected: object) -> None:
    assert parse_target(target) == expected


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("", "empty target"),
        ("orders.db", "cannot parse target"),
        ("sqlite://orders.db", "three slashes"),
        ("sqlite:///", "names no file"),
        ("postgres://localhost/db", "unsupported store 'postgres'"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous=sometimes"),
        ("sqlite:///x.db?journal=wal", "unknown store option(s) journal"),
    ],
)
def test_invalid_targets_name_the_problem(target: str, message: str) -> None:
    with pytest.raises(InvalidTargetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_target(target)


async def test_connect_refuses_a_foreign_sqlite_file(tmp_path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match="not an ablauf store"):
        await Client.connect(f"sqlite:///{path}")


async def test_connect_refuses_a_corrupt_file(tmp_path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"corrupt\.db: the file is not an SQLite database"):
        await Client.connect(f"sqlite:///{path}")


async def test_connect_creates_a_store_and_reopens_it(tmp_path) -> None:
    target = f"sqlite:///{tmp_path / 'new.db'}"
    client = await Client.connect(target)
    assert client.engine is not None
    await client.close()
    again = await Client.connect(target)
    assert again.engine is not None
    await again.close()
