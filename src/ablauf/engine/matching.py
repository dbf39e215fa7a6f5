"""Task queues inside one process: tasks handed to local workers in memory.

A task created while a worker of this process polls its queue is leased to
this process in the same transaction and pushed onto an in-memory queue, so
the hot path has no polling. Tasks nobody here polls stay in the store for
another process to lease.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporalio.api.common.v1 import Payloads
    from temporalio.api.query.v1 import WorkflowQuery

    from ablauf.store.base import ExecutionRecord

    QueryHandler = Callable[[ExecutionRecord, WorkflowQuery], Awaitable[Payloads]]

__all__ = ["LocalQueue", "Matching", "TaskRef"]


@dataclass(frozen=True, slots=True)
class TaskRef:
    """Names a leased task and the lease it was handed out under.

    ``task_id`` is a workflow task's row id; for an activity it is the negated
    id of its ActivityTaskScheduled event (an attempt may have no row).
    """

    task_id: int
    nonce: int
    run_id: str
    attempt: int

    def token(self) -> bytes:
        return f"{self.task_id}:{self.nonce}:{self.attempt}:{self.run_id}".encode()

    @classmethod
    def from_token(cls, token: bytes) -> TaskRef:
        task_id, nonce, attempt, run_id = token.decode().split(":", 3)
        return cls(int(task_id), int(nonce), run_id, int(attempt))


Consumer = Callable[[TaskRef], bool]


class LocalQueue:
    """Leased tasks for this process's workers of one task queue.

    A pushed task goes straight to a consumer (a worker's callback that starts
    it and returns True, or returns False when the worker is at capacity); it
    waits here only when no consumer takes it, for :meth:`get` or :meth:`take`.
    """

    def __init__(self) -> None:
        self._items: deque[TaskRef] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._consumers: deque[Consumer] = deque()
        # A worker that can run a task synchronously, inside the transaction
        # that handed it out (workflow tasks without a payload codec).
        self.inline: Callable[[TaskRef], None] | None = None
        self.pollers = 0

    def add_consumer(self, consumer: Consumer) -> None:
        self._consumers.append(consumer)

    def remove_consumer(self, consumer: Consumer) -> None:
        self._consumers.remove(consumer)

    def push(self, ref: TaskRef) -> None:
        consumers = self._consumers
        for _ in range(len(consumers)):
            consumer = consumers[0]
            # Round robin among the workers of this queue.
            consumers.rotate(-1)
            if consumer(ref):
                return
        self._items.append(ref)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> TaskRef | None:
        """The oldest waiting task, if any (for a consumer that has room again)."""
        return self._items.popleft() if self._items else None

    async def get(self) -> TaskRef:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)


class Matching:
    """The local queues of one engine, by (task kind, task queue name)."""

    def __init__(self) -> None:
        self._queues: dict[tuple[int, str], LocalQueue] = {}
        self.query_handlers: dict[str, QueryHandler] = {}
        self.activity_cancellers: dict[str, Callable[[bytes, str], None]] = {}

    def register(self, kind: int, task_queue: str) -> LocalQueue:
        queue = self._queues.setdefault((kind, task_queue), LocalQueue())
        queue.pollers += 1
        return queue

    def unregister(self, kind: int, task_queue: str) -> None:
        queue = self._queues.get((kind, task_queue))
        if queue is not None:
            queue.pollers -= 1
            if queue.pollers <= 0:
                del self._queues[(kind, task_queue)]

    def local(self, kind: int, task_queue: str) -> LocalQueue | None:
        return self._queues.get((kind, task_queue))

    def task_queues(self, kind: int) -> list[str]:
        return [name for (k, name) in self._queues if k == kind]

    def waiting(self) -> int:
        """Tasks handed to this process that no worker has taken yet."""
        return sum(len(queue) for queue in self._queues.values())

    def all_task_queues(self) -> tuple[str, ...]:
        return tuple(sorted({name for (_, name) in self._queues}))
