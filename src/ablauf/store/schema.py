"""Creates, upgrades and quickly checks the schema of an SQLite store when a
process opens it."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ablauf.errors import StoreError
from ablauf.store import sql
from ablauf.store.base import MEMORY
from ablauf.store.connection import MARKER, Connection, copy_store
from ablauf.store.migrate import MIGRATABLE, after_schema, before_schema

__all__ = ["SCHEMA_VERSION", "prepare"]

SCHEMA_VERSION = "5"
# SQLite's header field "application_id" names the file as an ablauf store
# ("ablf"), and "user_version" holds a random id given to it when it was
# created: a store written over the file has another.
_APPLICATION_ID = 0x61626C66


def prepare(db: Connection, path: str) -> None:
    """Gives the database behind ``db`` the current schema (creating it, or
    upgrading an older version after a copy) and reads both ends of every table.

    Raises:
        StoreError: It is another database, of a newer schema, or damaged.
    """
    _init_schema(db, path)
    _quick_check(db, path)


def _init_schema(db: Connection, path: str) -> None:
    tables = {r[0] for r in db.query(sql.ALL_TABLES)}
    migrate = False
    if tables:
        marker = None
        if "meta" in tables:
            row = db.query_one(sql.GET_META, (MARKER,))
            marker = row[0] if row else None
        if marker is None:
            raise StoreError(
                f"{path!r} is an SQLite database but not an ablauf store "
                f"(tables: {', '.join(sorted(tables))})"
            )
        migrate = marker in MIGRATABLE
        if marker != SCHEMA_VERSION and not migrate:
            raise StoreError(
                f"{path!r} has ablauf schema version {marker}, "
                f"this ablauf reads version {SCHEMA_VERSION}"
            )
        if migrate:
            _backup_before_upgrade(db, path, str(marker))
    # Every statement is "IF NOT EXISTS": tables added within a schema
    # version appear in older files of that version too.
    schema = resources.files("ablauf.store").joinpath("schema.sql").read_text()
    code = "\n".join(line for line in schema.splitlines() if not line.lstrip().startswith("--"))
    # One transaction, so another process never sees half a schema.
    db.begin()
    try:
        if migrate:
            before_schema(db.conn)
        for statement in code.split(";"):
            if statement.strip():
                db.execute(statement)
        if migrate:
            after_schema(db.conn, MARKER, SCHEMA_VERSION)
        db.execute(sql.INSERT_META, (MARKER, SCHEMA_VERSION))
        if not db.query_one("PRAGMA user_version")[0]:
            db.execute(f"PRAGMA application_id={_APPLICATION_ID}")
            store_id = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF | 1
            db.execute(f"PRAGMA user_version={store_id}")
    except BaseException:
        db.end()
        raise
    db.execute("COMMIT")


def _backup_before_upgrade(db: Connection, path: str, version: str) -> None:
    """Copies a store of an older schema to ``<path>.v<version>.bak`` before
    it is upgraded in place (one way); a copy already there is kept."""
    target = Path(f"{path}.v{version}.bak")
    if path != MEMORY and not target.exists():
        copy_store(db, target)


def _quick_check(db: Connection, path: str) -> None:
    """Reads both ends of every table, which a truncated or overwritten file
    rarely survives; :func:`ablauf.store.connection.integrity` reads everything."""
    if path != MEMORY:
        page_size = db.query_one("PRAGMA page_size")[0]
        if Path(path).stat().st_size % page_size:
            raise StoreError(f"store {path}: the file is corrupt (truncated mid-page)")
    for name, definition in db.query(sql.TABLES):
        probe = sql.FIRST_ROW if "WITHOUT ROWID" in definition.upper() else sql.ROWID_RANGE
        db.query_one(probe.format(table=name))
