"""Writes held back until their transaction commits.

One group commit applies many transitions, often several to the same run: an
activity result and the workflow task it wakes, or a start and the first
task. Written at once, each would append its events and rewrite the execution
row, and a workflow task run inline would be inserted and deleted again before
anyone else could see it. Held back, the execution row is written once, the
events of all runs go in one statement, and the short-lived task row never
reaches SQLite. Savepoints keep their meaning: rolling one back restores the
held writes as they were when it began.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

__all__ = ["PendingRows", "Row"]

Row = tuple[object, ...]
"""A row as its table's write statement takes it."""

_Held = dict[Hashable, Row]


class PendingRows:
    """The held-back writes of one open transaction, per table and key."""

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables: dict[str, _Held] = {table: {} for table in tables}
        # Undo log: (table, key, previous row or None) per change, or
        # (table, None, every row) before a table's rows were written out.
        self._undo: list[tuple[str, Hashable, Row | _Held | None]] = []
        self._marks: list[int] = []
        self.next_id: int | None = None
        """The next free task id in this transaction, once known."""

    def put(self, table: str, key: Hashable, row: Row) -> None:
        """Holds ``row`` (new, or newer than the held one)."""
        held = self.tables[table]
        if self._marks:
            self._undo.append((table, key, held.get(key)))
        held[key] = row

    def drop(self, table: str, key: Hashable) -> bool:
        """Forgets a held row; False if none is held (it is in the store)."""
        row = self.tables[table].pop(key, None)
        if row is None:
            return False
        if self._marks:
            self._undo.append((table, key, row))
        return True

    def take(self, table: str) -> Iterable[Row]:
        """The table's held rows, now to be written to the store."""
        rows = self.tables[table]
        self.tables[table] = {}
        if self._marks:
            self._undo.append((table, None, rows))
        return rows.values()

    def savepoint(self) -> None:
        self._marks.append(len(self._undo))

    def release(self) -> None:
        # Its changes now belong to the enclosing savepoint, if any.
        self._marks.pop()
        if not self._marks:
            self._undo.clear()

    def rollback(self) -> None:
        """Restores the held rows as they were at the innermost savepoint."""
        mark = self._marks.pop()
        undo = self._undo
        while len(undo) > mark:
            table, key, previous = undo.pop()
            if key is None:
                assert isinstance(previous, dict)
                self.tables[table] = previous
            elif previous is None:
                self.tables[table].pop(key, None)
            else:
                assert isinstance(previous, tuple)
                self.tables[table][key] = previous

    def reset(self) -> None:
        """The transaction ended: nothing is held, ids are looked up afresh."""
        for table in self.tables:
            self.tables[table] = {}
        self._undo.clear()
        self._marks.clear()
        self.next_id = None
