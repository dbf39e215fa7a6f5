"""Run ids: UUIDv7 (RFC 9562), so SQLite appends a new run's rows.

Events, executions and the tasks-by-run index are keyed by run id. Random
(version 4) ids put every commit on an arbitrary leaf of each B-tree;
time-ordered ids put new runs at the right edge. Python 3.14 has
``uuid.uuid7``; for older versions this module has the same construction
(millisecond time, then a counter that keeps ids of one millisecond in
order). The ``uuid6`` package does it too but costs 17 ms to import.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable

__all__ = ["new_run_id"]

_COUNTER_BITS = 42
_last_ms = 0
_counter = 0
# A generator of ablauf's own (an application may seed the module's), seeded
# from the OS: no system call per id. A forked child reseeds it, so processes
# never share a sequence.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)


def _uuid7() -> uuid.UUID:
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        # A random start with the top bit clear leaves room to count up.
        _counter = _random.getrandbits(_COUNTER_BITS - 1)
    else:
        _counter += 1
        if _counter >> _COUNTER_BITS:
            # Counter exhausted within one millisecond: borrow the next one.
            ms = _last_ms + 1
            _counter = 0
        else:
            ms = _last_ms
    _last_ms = ms
    tail = _random.getrandbits(32)
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76  # version
        | (_counter >> 30) << 64  # 12 bits
        | 0b10 << 62  # variant
        | (_counter & 0x3FFF_FFFF) << 32  # 30 bits
        | tail
    )
    return uuid.UUID(int=value)


_make: Callable[[], uuid.UUID] = getattr(uuid, "uuid7", _uuid7)


def new_run_id() -> str:
    """A new run id: a UUID string that sorts after the ids made before it."""
    return str(_make())
