"""Engine tests drive transitions by hand on a real SQLite file, with a clock they move."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from temporalio.api.common.v1 import WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest

from ablauf.engine.engine import Engine
from ablauf.store import open_store
from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK


class ManualClock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.value = now

    def now(self) -> float:
        return self.value

    async def sleep_until(self, at: float, wake: asyncio.Event) -> None:
        await wake.wait()

    def advance(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def engine(tmp_path, clock: ManualClock) -> AsyncIterator[Engine]:
    eng = Engine(open_store(str(tmp_path / "engine.db")), clock=clock)
    yield eng
    eng.store.close()


@pytest.fixture
def local(engine: Engine) -> Engine:
    """An engine whose workflow and activity tasks on queue "q" go to this process."""
    engine.matching.register(WORKFLOW_TASK, "q")
    engine.matching.register(ACTIVITY_TASK, "q")
    # As a worker does: the process holds an owner lease.
    engine.update_owner()
    return engine


def start_request(
    workflow_id: str = "wf-1", task_queue: str = "q"
) -> StartWorkflowExecutionRequest:
    return StartWorkflowExecutionRequest(
        namespace="default",
        workflow_id=workflow_id,
        workflow_type=WorkflowType(name="MyWorkflow"),
        task_queue=TaskQueue(name=task_queue),
        request_id="r",
    )
