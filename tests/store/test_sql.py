"""The named statements of queries.sql: each bound once, each valid SQL on the schema."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from ablauf.store import sql
from ablauf.store.sqlite import SqliteStore

_TEXT = resources.files("ablauf.store").joinpath("queries.sql").read_text()


def test_blocks_are_named_statements_without_comments() -> None:
    text = "-- header\n-- name: a\n-- why\nSELECT 1\nFROM t;\n\n-- name: b\nSELECT 2;\n"
    blocks = sql.parse(text)
    assert blocks == {"a": "SELECT 1\nFROM t", "b": "SELECT 2"}
    with pytest.raises(ValueError, match="named twice"):
        sql.parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


def test_every_block_has_its_constant() -> None:
    for name, statement in sql.parse(_TEXT).items():
        assert getattr(sql, name.upper()) == statement


@pytest.mark.parametrize("name", sorted(sql.parse(_TEXT)))
def test_every_statement_compiles_on_the_schema(name: str) -> None:
    store = SqliteStore(":memory:")
    statement = getattr(sql, name.upper()).format(marks=sql.marks(2), table="meta")
    numbered = [int(n) for n in re.findall(r"\?(\d+)", statement)]
    params = [None] * (max(numbered) if numbered else statement.count("?"))
    store._db.conn.execute(f"EXPLAIN {statement}", params).fetchall()
    store.close()
