"""Group commit: changes that arrive in one turn of the event loop share one
store transaction.

Each change runs in a savepoint of its own, so a failing one is undone alone.
Workflow tasks the group hands to workers that take them inline run before
the commit (an activity result and the workflow task it wakes commit
together); everything else that follows a commit (tasks for other workers,
waking waiters) waits for it. A lone change is not delayed beyond the current
turn of the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ablauf.store.base import Store

if TYPE_CHECKING:
    from ablauf.engine.context import Transition

__all__ = ["INLINE_WORKFLOW_TASKS", "GroupCommit"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")

# Workflow tasks one group commit runs inline at most.
INLINE_WORKFLOW_TASKS = 5000


class _Batch(Generic[U]):
    """Items submitted together under one key, applied in one call."""

    def __init__(self, apply: Callable[[list[U]], None]) -> None:
        self.apply = apply
        self.items: list[U] = []
        # Per item: a future to resolve, or what to call should it fail.
        self.waiters: list[asyncio.Future[None] | Callable[[BaseException], None]] = []
        self.errors: dict[int, Exception] = {}

    def run(self) -> None:
        try:
            self.apply(self.items)
        except Exception as err:
            if len(self.items) == 1:
                self.errors[0] = err
                return
            # One bad item must not cost the others their commit.
            for i, item in enumerate(self.items):
                try:
                    self.apply([item])
                except Exception as one:
                    self.errors[i] = one

    def committed(self, failed: BaseException | None) -> None:
        """Once the group has committed (or failed, with ``failed``): resolves
        each item's future, or reports a posted item's error."""
        for i, waiter in enumerate(self.waiters):
            error = failed or self.errors.get(i)
            if not isinstance(waiter, asyncio.Future):
                if error is not None:
                    waiter(error)
            elif waiter.done():
                continue
            elif error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(None)


class GroupCommit:
    """The engine's group commits over one store.

    Args:
        store: The store whose transactions the groups are.
        after_commit: Runs what follows one transition's commit.
        forget: Drops cached run states (after a group was rolled back).
    """

    def __init__(
        self,
        store: Store,
        after_commit: Callable[[Transition], None],
        forget: Callable[[], None],
    ) -> None:
        self._store = store
        self._after_commit = after_commit
        self._forget = forget
        self._deferred: list[Transition] | None = None
        # Each change with the future it resolves, or the batch it runs.
        self._inbox: list[tuple[Callable[[], Any], asyncio.Future[Any] | _Batch[Any]]] = []
        self._drain_handle: asyncio.Handle | None = None
        self._batches: dict[Hashable, _Batch[Any]] = {}

    @property
    def open(self) -> bool:
        """Whether a group is open (its inline workflow tasks run before its commit)."""
        return self._deferred is not None

    def defer(self, tx: Transition) -> bool:
        """Keeps what follows ``tx``'s commit for the end of the open group, if any."""
        if self._deferred is None:
            return False
        self._deferred.append(tx)
        return True

    @contextmanager
    def group(self) -> Iterator[None]:
        """Runs the transitions inside in one store transaction (each in a savepoint)."""
        if self._deferred is not None:
            yield
            return
        self._deferred = []
        try:
            with self._store.transaction():
                yield
                self._run_inline()
        except BaseException:
            # Cached states may hold changes that were rolled back.
            self._deferred = None
            self._forget()
            raise
        done, self._deferred = self._deferred, None
        for tx in done:
            self._after_commit(tx)

    def submit(self, change: Callable[[], T]) -> asyncio.Future[T]:
        """Runs ``change`` in the next group commit; the future resolves once it
        is committed."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._enqueue(change, fut)
        return fut

    def _enqueue(self, change: Callable[[], Any], done: asyncio.Future[Any] | _Batch[Any]) -> None:
        self._inbox.append((change, done))
        if self._drain_handle is None:
            self._drain_handle = asyncio.get_running_loop().call_soon(self._drain)

    def submit_batched(
        self, key: Hashable, item: U, apply: Callable[[list[U]], None]
    ) -> asyncio.Future[None]:
        """Like :meth:`submit`, but items with the same key that arrive together
        go to one call of ``apply`` (e.g. one transition for many activity
        results of one run). Should that call fail, each item is applied alone
        and gets its own error."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch(key, apply, item, fut)
        return fut

    def post_batched(
        self,
        key: Hashable,
        item: U,
        apply: Callable[[list[U]], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Like :meth:`submit_batched` for a caller that does not wait for the
        commit: ``on_error`` is called should the item fail. :meth:`flush` waits
        for what was posted."""
        self._batch(key, apply, item, on_error)

    def _batch(
        self,
        key: Hashable,
        apply: Callable[[list[U]], None],
        item: U,
        waiter: asyncio.Future[None] | Callable[[BaseException], None],
    ) -> None:
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch(apply)
            # No future of its own: the drain tells the batch how the group ended.
            self._enqueue(batch.run, batch)
        batch.items.append(item)
        batch.waiters.append(waiter)

    async def flush(self) -> None:
        """Waits until everything submitted so far is committed (or has failed)."""
        if self._inbox:
            await self.submit(lambda: None)

    def _drain(self) -> None:
        self._drain_handle = None
        items, self._inbox = self._inbox, []
        self._batches = {}
        outcomes: list[tuple[asyncio.Future[Any] | _Batch[Any], Any, BaseException | None]] = []
        deferred: list[Transition] = []
        try:
            with self.group():
                for change, done in items:
                    try:
                        outcomes.append((done, change(), None))
                    except Exception as err:
                        outcomes.append((done, None, err))
                self._run_inline()
                # Taken here so the futures resolve before tasks reach local
                # workers: a worker's bookkeeping for a change comes first.
                assert self._deferred is not None
                deferred, self._deferred[:] = list(self._deferred), []
        except Exception as err:
            outcomes = [(done, None, err) for _, done in items]
            deferred = []
        for done, result, error in outcomes:
            if isinstance(done, _Batch):
                done.committed(error)
            elif done.done():
                continue
            elif error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)
        for tx in deferred:
            self._after_commit(tx)

    def _run_inline(self) -> None:
        # Nothing outside the process sees these tasks' work before the
        # commit, and an activity or timer they start still waits for it.
        deferred = self._deferred
        assert deferred is not None
        budget = INLINE_WORKFLOW_TASKS
        i = 0
        # Completions append transitions that may hand off further tasks.
        while i < len(deferred) and budget > 0:
            tx = deferred[i]
            i += 1
            if not tx.handoffs:
                continue
            later = []
            for queue, ref in tx.handoffs:
                inline = queue.inline
                if inline is None or budget <= 0:
                    later.append((queue, ref))
                    continue
                budget -= 1
                try:
                    inline(ref)
                except Exception:
                    # The worker reports its own failures; a crash here must
                    # not undo the group.
                    logger.exception("running a workflow task inline failed")
            tx.handoffs = later
