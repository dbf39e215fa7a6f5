"""The one source of time for the engine, replaceable in tests (time-skipping)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Protocol

__all__ = ["Clock", "SkippingClock", "SystemClock"]


class Clock(Protocol):
    """Wall-clock time in epoch seconds, and a way to wait until a moment."""

    def now(self) -> float:
        """Current time in epoch seconds."""
        ...

    async def sleep_until(self, at: float, wake: asyncio.Event) -> None:
        """Returns at ``at`` or as soon as ``wake`` is set, whichever is first."""
        ...

    def can_skip(self) -> bool:
        """Whether time may jump ahead now (only in time-skipping tests)."""
        ...

    def skip_to(self, at: float | None) -> bool:
        """Jumps ahead to ``at`` (the next timer); False if there is nowhere to go."""
        ...

    def unlocked(self) -> contextlib.AbstractContextManager[None]:
        """A block during which time may skip (a client awaiting a result)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, at: float, wake: asyncio.Event) -> None:
        delay = at - time.time()
        if delay <= 0:
            # Yield all the same: a service that is behind on due timers must still
            # let what the fired timers woke (waiting clients) move on.
            await asyncio.sleep(0)
            return
        # Not asyncio.wait_for: on Python 3.11 a cancel that arrives as its timeout
        # fires is lost, and a background loop cancelled then never stops.
        waiter = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=delay)
        finally:
            waiter.cancel()

    def can_skip(self) -> bool:
        return False

    def skip_to(self, at: float | None) -> bool:
        return False

    def unlocked(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class SkippingClock(SystemClock):
    """Real time plus an offset that jumps ahead when every workflow waits on a timer.

    Like Temporal's time-skipping test server, time skips only while somebody
    waits for it: a client awaiting a workflow result (:meth:`unlocked`), or
    :meth:`advance`.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self._unlocked = 0
        self._targets: list[float] = []

    def now(self) -> float:
        return time.time() + self.offset

    def unlocked(self) -> contextlib.AbstractContextManager[None]:
        return self._unlock()

    @contextlib.contextmanager
    def _unlock(self) -> Iterator[None]:
        self._unlocked += 1
        try:
            yield
        finally:
            self._unlocked -= 1

    def can_skip(self) -> bool:
        return bool(self._unlocked or self._targets)

    async def sleep_until(self, at: float, wake: asyncio.Event) -> None:
        await super().sleep_until(at - self.offset, wake)

    def skip_to(self, at: float | None) -> bool:
        limit = min(self._targets) if self._targets else None
        if at is None or (limit is not None and limit < at):
            at = limit
        if at is None or at <= self.now():
            return False
        self.offset += at - self.now()
        return True

    async def advance(self, seconds: float, wake: asyncio.Event) -> None:
        """Moves time forward by ``seconds``, firing every timer on the way."""
        target = self.now() + seconds
        self._targets.append(target)
        try:
            while self.now() < target:
                wake.set()
                await asyncio.sleep(0.001)
        finally:
            self._targets.remove(target)
