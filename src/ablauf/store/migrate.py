"""Upgrades store files of older schema versions, when a process opens them.

Both steps run in the transaction that applies ``schema.sql``, so another
process sees the file either before or after the upgrade.

- 1 → 2: a row per event became a chunk per transition (a run's history in
  one chunk).
- 2 → 3: ``executions.activity_owner``.
- 3 → 4: history chunks in commit order (a rowid table plus an index by run),
  so a commit appends to one end of the table instead of touching a page for
  every run it changed.
- 4 → 5: task, timer and query ids are never reused (the tables are rebuilt
  with AUTOINCREMENT); owners hold a lease (``lease_until``) and name their host.
"""

from __future__ import annotations

import sqlite3

from ablauf.history.events import frame

__all__ = ["MIGRATABLE", "after_schema", "before_schema"]

MIGRATABLE = ("1", "2", "3", "4")
"""Versions this one upgrades."""

_OLD_HISTORY = "history_v3"
# Tables whose ids became AUTOINCREMENT in version 5, rebuilt under this suffix.
_REBUILT = ("tasks", "timers", "queries")
_OLD = "_v4"


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def before_schema(db: sqlite3.Connection) -> None:
    """Changes that ``schema.sql`` builds on (it indexes the new column and
    creates the new history table)."""
    columns = _columns(db, "executions")
    if columns and "activity_owner" not in columns:
        db.execute("ALTER TABLE executions ADD COLUMN activity_owner TEXT")
    columns = _columns(db, "history")
    if columns and "id" not in columns:
        db.execute(f"ALTER TABLE history RENAME TO {_OLD_HISTORY}")
    columns = _columns(db, "owners")
    if columns and "lease_until" not in columns:
        # Every owner of an older file counts as gone: its lease has passed.
        db.execute("ALTER TABLE owners ADD COLUMN lease_until REAL NOT NULL DEFAULT 0")
        db.execute("ALTER TABLE owners ADD COLUMN host TEXT NOT NULL DEFAULT ''")
    for table in _REBUILT:
        row = db.execute(
            "SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)
        ).fetchone()
        if row is None or "AUTOINCREMENT" in row[0].upper():
            continue
        # Its indexes keep their names when the table is renamed: dropped, so
        # that schema.sql creates them on the new table.
        for (index,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name=? AND sql IS NOT NULL",
            (table,),
        ).fetchall():
            db.execute(f"DROP INDEX {index}")
        db.execute(f"ALTER TABLE {table} RENAME TO {table}{_OLD}")


def after_schema(db: sqlite3.Connection, marker_key: str, version: str) -> None:
    """Moves old rows into the new tables and sets the version marker."""
    row = db.execute("SELECT value FROM meta WHERE key=?", (marker_key,)).fetchone()
    if row[0] not in MIGRATABLE:
        return  # another process upgraded the file meanwhile
    if row[0] == "1":
        runs = db.execute("SELECT DISTINCT run_id FROM events").fetchall()
        for (run_id,) in runs:
            events = db.execute(
                "SELECT event_id, data FROM events WHERE run_id=? ORDER BY event_id", (run_id,)
            ).fetchall()
            if events[-1][0] - events[0][0] + 1 != len(events):
                raise sqlite3.IntegrityError(f"events of run {run_id} are not consecutive")
            db.execute(
                "INSERT INTO history (run_id, first_event_id, last_event_id, data) "
                "VALUES (?,?,?,?)",
                (run_id, events[0][0], events[-1][0], frame(events)),
            )
        db.execute("DROP TABLE events")
    if _columns(db, _OLD_HISTORY):
        db.execute(
            "INSERT INTO history (run_id, first_event_id, last_event_id, data) "
            f"SELECT run_id, first_event_id, last_event_id, data FROM {_OLD_HISTORY} "
            "ORDER BY run_id, first_event_id"
        )
        db.execute(f"DROP TABLE {_OLD_HISTORY}")
    for table in _REBUILT:
        columns = _columns(db, f"{table}{_OLD}")
        if columns:
            names = ", ".join(sorted(columns))
            db.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {table}{_OLD}")
            db.execute(f"DROP TABLE {table}{_OLD}")
    db.execute("UPDATE meta SET value=? WHERE key=?", (version, marker_key))
