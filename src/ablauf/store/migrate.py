"""Upgrades store files of older schema versions, when a process opens them.

Both steps run in the transaction that applies ``schema.sql``, so another
process sees the file either before or after the upgrade.

- 1 → 2: a row per event became a chunk per transition (a run's history in
  one chunk).
- 2 → 3: ``executions.activity_owner``.
- 3 → 4: history chunks in commit order (a rowid table plus an index by run),
  so a commit appends to one end of the table instead of touching a page for
  every run it changed.
"""

from __future__ import annotations

import sqlite3

from ablauf.history.events import frame

__all__ = ["MIGRATABLE", "after_schema", "before_schema"]

MIGRATABLE = ("1", "2", "3")
"""Versions this one upgrades."""

_OLD_HISTORY = "history_v3"


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
    db.execute("UPDATE meta SET value=? WHERE key=?", (version, marker_key))
