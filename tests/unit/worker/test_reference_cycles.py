"""Finished workflows and activity attempts are freed by reference counting.

Objects left in reference cycles wait for the cyclic garbage collector, whose
full passes grow with the heap; a busy worker would pause more and more.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow

from ablauf import Client, Worker


@activity.defn
async def double(x: int) -> int:
    return 2 * x


@workflow.defn
class Doubler:
    @workflow.run
    async def run(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += await workflow.execute_activity(
                double, i, start_to_close_timeout=timedelta(seconds=10)
            )
        return total


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_finished_workflows_leave_no_cycles(
    tmp_path: Path, saved_garbage: list[object]
) -> None:
    client = await Client.connect(f"sqlite:///{tmp_path / 'cycles.db'}")
    async with Worker(client, task_queue="q", workflows=[Doubler], activities=[double]):
        gc.collect()
        saved_garbage.clear()
        for _ in range(3):
            result = await client.execute_workflow(
                Doubler.run, 5, id=f"wf-{uuid.uuid4()}", task_queue="q"
            )
            assert result == 20
        gc.collect()
        kinds = {type(o).__qualname__ for o in saved_garbage}
        # Nor do finished attempts leave their timeouts armed.
        assert client.engine is not None
        assert len(client.engine.local_timers) == 0
    await client.close()
    runtime = {"WorkflowRuntime", "RunContext", "Timers", "Activities", "WorkflowRun"}
    assert not kinds & {*runtime, "WorkflowEventLoop", "_Attempt", "Task", "Doubler"}


@pytest.fixture
def gc_threshold() -> Iterator[None]:
    saved = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@pytest.mark.parametrize(
    ("before", "after"),
    [((700, 10, 10), (10_000, 10, 10)), ((1_234, 5, 6), (1_234, 5, 6))],
    ids=["python-default-is-raised", "application-setting-is-kept"],
)
async def test_the_worker_raises_only_the_default_collector_threshold(
    tmp_path: Path, gc_threshold: None, before: tuple[int, int, int], after: tuple[int, int, int]
) -> None:
    gc.set_threshold(*before)
    client = await Client.connect(f"sqlite:///{tmp_path / 'gc.db'}")
    async with Worker(client, task_queue="q", workflows=[Doubler], activities=[double]):
        assert gc.get_threshold() == after
    await client.close()
