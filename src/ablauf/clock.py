"""The one source of time for the engine, replaceable in tests (time-skipping)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Wall-clock time in epoch seconds, and a way to wait until a moment."""

    def now(self) -> float:
        """Current time in epoch seconds."""
        ...

    async def sleep_until(self, at: float, wake: asyncio.Event) -> None:
        """Returns at ``at`` or as soon as ``wake`` is set, whichever is first."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, at: float, wake: asyncio.Event) -> None:
        delay = at - time.time()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), delay)
