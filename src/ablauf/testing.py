"""Test environments shaped like ``temporalio.testing.WorkflowEnvironment``.

``WorkflowEnvironment.start_time_skipping()`` runs an embedded engine on a
throw-away store whose clock jumps ahead whenever every workflow waits on a
timer and somebody waits for time to pass (a client awaiting a result, or
:meth:`WorkflowEnvironment.sleep`): a 30-day sleep completes in milliseconds.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from temporalio.converter import DataConverter

from ablauf.client import Client
from ablauf.clock import Clock, SkippingClock, SystemClock

__all__ = ["WorkflowEnvironment"]


class WorkflowEnvironment:
    """A client on a private embedded engine, for tests."""

    def __init__(self, client: Client, directory: str | None) -> None:
        self.client = client
        self._directory = directory

    @classmethod
    async def start_time_skipping(
        cls, *, data_converter: DataConverter = DataConverter.default, **options: Any
    ) -> Self:
        """An environment whose time skips ahead to the next timer when all is idle."""
        return await cls._start(SkippingClock(), data_converter, options)

    @classmethod
    async def start_local(
        cls, *, data_converter: DataConverter = DataConverter.default, **options: Any
    ) -> Self:
        """An environment on real time (ablauf needs no local server for that)."""
        return await cls._start(SystemClock(), data_converter, options)

    @classmethod
    async def _start(
        cls, clock: Clock, data_converter: DataConverter, options: dict[str, Any]
    ) -> Self:
        directory = tempfile.mkdtemp(prefix="ablauf-test-")
        target = f"sqlite:///{Path(directory) / 'test.db'}"
        client = await Client.connect(target, data_converter=data_converter, clock=clock, **options)
        return cls(client, directory)

    @property
    def supports_time_skipping(self) -> bool:
        engine = self.client.engine
        return engine is not None and isinstance(engine.clock, SkippingClock)

    async def sleep(self, duration: timedelta | float) -> None:
        """Moves time forward, firing the timers on the way; real time on a plain environment."""
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
        engine = self.client.engine
        assert engine is not None
        clock = engine.clock
        if isinstance(clock, SkippingClock):
            await clock.advance(seconds, engine.wake)
        else:
            await asyncio.sleep(seconds)

    async def get_current_time(self) -> datetime:
        """The environment's current time."""
        engine = self.client.engine
        assert engine is not None
        return datetime.fromtimestamp(engine.clock.now(), UTC)

    async def shutdown(self) -> None:
        """Stops the engine and deletes the store."""
        await self.client.close()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()
