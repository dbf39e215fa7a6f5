"""Start-to-close and heartbeat deadlines of the attempts this process runs.

They live in memory, not in the timers table: an attempt that ends in time (almost
every one) then costs no timer row written and deleted. Nothing is lost when the
process dies, because its attempts die with it: whoever finds the owner gone (the
next process on the file, or this engine when it closes) arms the same deadlines
as durable timers from the task rows (:func:`ablauf.engine.activities.arm_lost`).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable

from ablauf.store.base import TimerRecord

__all__ = ["Arm", "LocalTimers"]

Arm = tuple[str, int, str, int, float]
"""A timer to arm: run id, kind, ref, attempt, when it fires."""

# The heap is rebuilt once this many entries (and more than the live ones) are stale.
_COMPACT_AT = 1024


class LocalTimers:
    """A heap of in-memory timers with the ids of the timers table negated."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._heap: list[tuple[float, int]] = []
        # The record is made only for a timer that comes due (few ever do).
        self._live: dict[int, Arm] = {}
        self._by_ref: dict[tuple[str, str], list[int]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def add_many(self, timers: Iterable[Arm]) -> float:
        """Arms each ``(run_id, kind, ref, attempt, fire_at)`` (:meth:`due` returns
        it from ``fire_at`` on); returns the earliest ``fire_at``."""
        ids, live, by_ref, heap = self._ids, self._live, self._by_ref, self._heap
        earliest = math.inf
        for arm in timers:
            run_id, _, ref, _, fire_at = arm
            timer_id = -next(ids)
            live[timer_id] = arm
            by_ref.setdefault((run_id, ref), []).append(timer_id)
            heapq.heappush(heap, (fire_at, timer_id))
            if fire_at < earliest:
                earliest = fire_at
        return earliest

    def drop_many(self, refs: Iterable[tuple[str, str]]) -> None:
        """Disarms every timer of each activity ``ref`` of ``run_id``."""
        by_ref, live = self._by_ref, self._live
        for key in refs:
            for timer_id in by_ref.pop(key, ()):
                live.pop(timer_id, None)
        if len(self._heap) > _COMPACT_AT and len(self._heap) > 2 * len(live):
            self._heap = [entry for entry in self._heap if entry[1] in live]
            heapq.heapify(self._heap)

    def armed(self, timer: TimerRecord) -> bool:
        """Whether ``timer`` is still armed."""
        return timer.id in self._live

    def take(self, timer: TimerRecord) -> bool:
        """Disarms ``timer`` to fire it; False if it was disarmed already."""
        if self._live.pop(timer.id, None) is None:
            return False
        ids = self._by_ref.get((timer.run_id, timer.ref))
        if ids is not None:
            ids.remove(timer.id)
            if not ids:
                del self._by_ref[(timer.run_id, timer.ref)]
        return True

    def next_at(self) -> float | None:
        """When the earliest armed timer is due."""
        heap, live = self._heap, self._live
        while heap and heap[0][1] not in live:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, now: float, limit: int) -> list[TimerRecord]:
        """Armed timers due at ``now``, earliest first; they stay armed until taken."""
        first = self.next_at()
        if first is None or first > now:
            return []
        live = self._live
        return [
            TimerRecord(timer_id, *live[timer_id])
            for fire_at, timer_id in heapq.nsmallest(limit, self._heap)
            if fire_at <= now and timer_id in live
        ]
