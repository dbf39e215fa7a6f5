"""Queries: answered by a worker of the run's task queue, in this process or,
handed over through the store, in another one."""

from __future__ import annotations

import asyncio

from temporalio.api.common.v1 import Payloads
from temporalio.api.workflowservice.v1 import QueryWorkflowRequest

from ablauf.engine.context import EngineContext
from ablauf.engine.errors import QueryFailedError
from ablauf.engine.owners import Owners
from ablauf.store.base import ExecutionRecord, QueryRecord

__all__ = ["Queries"]


class Queries:
    """The query path of one engine."""

    def __init__(self, engine: EngineContext, owners: Owners) -> None:
        self.engine = engine
        self.owners = owners
        self._tasks: set[asyncio.Task[None]] = set()

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def ask(
        self, exe: ExecutionRecord, request: QueryWorkflowRequest, timeout: float
    ) -> Payloads:
        """Answers a query through a worker of the run's task queue, here or in another process."""
        engine = self.engine
        deadline = engine.clock.now() + timeout
        local = engine.matching.query_handlers.get(exe.task_queue)
        if local is None and not any(exe.task_queue in o.task_queues for o in self.owners.live()):
            raise QueryFailedError(
                f"no worker polls task queue {exe.task_queue!r} to answer the query"
            )
        # Like Temporal, a query waits for the first workflow task, and for a
        # workflow task that is due or running, so it sees what came before it
        # (a signal, say). A task failing again and again does not hold it.
        while True:
            state = engine.state_of(exe.run_id)
            now = engine.clock.now()
            wft = state.wft
            pending = wft is not None and wft.attempt == 1 and wft.visible_at <= now
            if not state.running or (state.completed_workflow_tasks and not pending):
                break
            left = deadline - now
            if left <= 0:
                if not state.completed_workflow_tasks:
                    raise QueryFailedError("query timed out: the workflow has not started yet")
                break
            await engine.wait_run_change(exe.run_id, min(left, 0.05))
        if local is not None:
            return await local(exe, request.query)
        now = self.engine.clock.now()
        with self.engine.store.transaction():
            query_id = self.engine.store.insert_query(
                exe.run_id, exe.task_queue, request.SerializeToString(), now
            )
        deadline = now + timeout
        try:
            while True:
                row = self.engine.store.get_query(query_id)
                if row is not None and row.answered:
                    if row.error is not None:
                        raise QueryFailedError(row.error)
                    payloads = Payloads()
                    payloads.ParseFromString(row.response or b"")
                    return payloads
                left = deadline - self.engine.clock.now()
                if left <= 0:
                    raise QueryFailedError("query timed out: no worker answered")
                await self.engine.wait_run_change(exe.run_id, min(left, 0.05))
        finally:
            with self.engine.store.transaction():
                self.engine.store.delete_query(query_id)

    def dispatch(self) -> None:
        """Answers queries that clients in other processes left for local workers."""
        queues = list(self.engine.matching.query_handlers)
        if not queues:
            return
        with self.engine.store.transaction():
            rows = self.engine.store.take_queries(queues, self.engine.owner_id)
        for row in rows:
            task = asyncio.get_running_loop().create_task(self._answer(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, row: QueryRecord) -> None:
        request = QueryWorkflowRequest()
        request.ParseFromString(row.request)
        response: bytes | None = None
        error: str | None = None
        try:
            exe = self.engine.store.get_execution(row.run_id)
            if exe is None:
                raise QueryFailedError("workflow not found")
            handler = self.engine.matching.query_handlers[row.task_queue]
            response = (await handler(exe, request.query)).SerializeToString()
        except Exception as err:
            error = str(err) or type(err).__name__
        with self.engine.store.transaction():
            self.engine.store.answer_query(row.id, response, error)
