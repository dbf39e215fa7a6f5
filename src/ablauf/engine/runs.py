"""The run states this process keeps, and who waits for a run to change."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from ablauf.engine.errors import NotFoundError
from ablauf.engine.state import RunState
from ablauf.history.events import unframe
from ablauf.store.base import UPDATE_REQUESTED, Store

__all__ = ["CACHED_RUNS", "RunCache", "RunWaiters"]

CACHED_RUNS = 2000
"""Run states one process keeps at most."""


class RunCache:
    """Run states, rebuilt from the store whenever another connection changed them.

    A state is checked against the stored execution version inside the
    transaction that uses it, so several processes can share one store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._runs: OrderedDict[str, RunState] = OrderedDict()
        # Cached runs checked against the store since another connection last
        # committed: they need no check until the next foreign commit.
        self._fresh: set[str] = set()
        self._data_version: int | None = None

    def __len__(self) -> int:
        return len(self._runs)

    def cached(self, run_id: str) -> RunState | None:
        """The run's cached state if nothing changed it since it was loaded."""
        data_version = self.store.data_version()
        if data_version != self._data_version:
            self._data_version = data_version
            self._fresh.clear()
        return self._runs.get(run_id) if run_id in self._fresh else None

    def load(self, run_id: str) -> RunState:
        """The run's current state, from the cache or folded from the store.

        Raises:
            NotFoundError: There is no such run.
        """
        runs = self._runs
        state = self.cached(run_id)
        if state is not None:
            runs.move_to_end(run_id)
            return state
        state = runs.get(run_id)
        version = self.store.execution_version(run_id)
        if version is None:
            raise NotFoundError(f"workflow run {run_id} not found")
        if state is None or state.exe.version != version:
            state = self._fold(run_id)
        runs[run_id] = state
        runs.move_to_end(run_id)
        self._fresh.add(run_id)
        self._trim()
        return state

    def last(self, run_id: str) -> RunState | None:
        """The state as this process last had it, unchecked."""
        return self._runs.get(run_id)

    def keep(self, state: RunState) -> None:
        """Caches the state of a run just created."""
        self._runs[state.exe.run_id] = state
        # A process that only starts workflows keeps no more states than one that runs them.
        self._trim()

    def drop(self, run_id: str) -> None:
        """Forgets one run's state (its change did not commit)."""
        self._runs.pop(run_id, None)

    def clear(self) -> None:
        """Forgets every state."""
        self._runs.clear()
        self._fresh.clear()

    def _trim(self) -> None:
        if len(self._runs) > CACHED_RUNS:
            old, _ = self._runs.popitem(last=False)
            self._fresh.discard(old)

    def _fold(self, run_id: str) -> RunState:
        store = self.store
        exe = store.get_execution(run_id)
        assert exe is not None
        datas = unframe(store.read_history(run_id))
        state = RunState.fold(exe, datas, store.tasks_of_run(run_id))
        state.requested_updates = sum(
            1 for u in store.updates_of_run(run_id) if u.state == UPDATE_REQUESTED
        )
        state.buffered = store.count_buffered_events(run_id)
        return state


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _resolve_all(futures: list[asyncio.Future[None]] | None) -> None:
    for fut in futures or ():
        _resolve(fut)


class RunWaiters:
    """Who waits for a run to change (a long poll) or to close (a result)."""

    def __init__(self) -> None:
        self._changed: dict[str, list[asyncio.Future[None]]] = {}
        self._closed: dict[str, list[asyncio.Future[None]]] = {}

    async def wait(self, run_id: str, timeout: float, *, until_closed: bool = False) -> None:
        """Returns after :meth:`changed` for the run (with ``until_closed``, one
        that closed it), after :meth:`wake_all`, or after ``timeout``."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        all_waiters = self._closed if until_closed else self._changed
        all_waiters.setdefault(run_id, []).append(fut)
        # Not asyncio.wait_for: its wrapper costs a loop turn on every wake-up.
        timer = loop.call_later(timeout, _resolve, fut)
        try:
            await fut
        finally:
            timer.cancel()
            waiters = all_waiters.get(run_id)
            if waiters and fut in waiters:
                waiters.remove(fut)

    def changed(self, run_id: str, closed: bool) -> None:
        """A change to the run committed (``closed``: it closed the run)."""
        _resolve_all(self._changed.pop(run_id, None))
        if closed:
            _resolve_all(self._closed.pop(run_id, None))

    def wake_all(self) -> None:
        """Wakes every waiter (another process committed: they look again)."""
        for all_waiters in (self._changed, self._closed):
            for run_id in list(all_waiters):
                _resolve_all(all_waiters.pop(run_id))
