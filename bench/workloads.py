"""The benchmark's workflows and activities, written with the official SDK only.

Temporal's worker runs these in its sandbox, so this module imports nothing but
the standard library and ``temporalio``, and the workflows call nothing that is
not deterministic. Every activity is an async no-op: the benchmark measures the
engines, not the work.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

__all__ = [
    "ACTIVITIES",
    "WORKFLOWS",
    "Children",
    "Gather",
    "LongHistory",
    "Queried",
    "Sequential",
    "Signalled",
    "Single",
    "Sleeper",
    "noop",
]

_TIMEOUT = timedelta(seconds=60)


@activity.defn
async def noop(i: int) -> int:
    """Returns its argument."""
    return i


@workflow.defn
class Gather:
    """Runs ``n`` activities at once and waits for all of them."""

    @workflow.run
    async def run(self, n: int) -> int:
        results = await asyncio.gather(
            *(workflow.execute_activity(noop, i, start_to_close_timeout=_TIMEOUT) for i in range(n))
        )
        return len(results)


@workflow.defn
class Sequential:
    """Runs ``n`` activities one after another."""

    @workflow.run
    async def run(self, n: int) -> int:
        for i in range(n):
            await workflow.execute_activity(noop, i, start_to_close_timeout=_TIMEOUT)
        return n


@workflow.defn
class Single:
    """Runs one activity."""

    @workflow.run
    async def run(self, i: int) -> int:
        return await workflow.execute_activity(noop, i, start_to_close_timeout=_TIMEOUT)


@workflow.defn
class Children:
    """Starts ``children`` child workflows at once, each running ``each`` sequential activities."""

    @workflow.run
    async def run(self, children: int, each: int) -> int:
        parent_id = workflow.info().workflow_id
        done = await asyncio.gather(
            *(
                workflow.execute_child_workflow(Sequential.run, each, id=f"{parent_id}-child-{k}")
                for k in range(children)
            )
        )
        return sum(done)


@workflow.defn
class Signalled:
    """Counts ``ping`` signals and completes once it has ``n`` of them."""

    def __init__(self) -> None:
        self.count = 0

    @workflow.signal
    def ping(self) -> None:
        self.count += 1

    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.wait_condition(lambda: self.count >= n)
        return self.count


@workflow.defn
class Queried:
    """Waits for a ``finish`` signal and answers ``value`` queries meanwhile."""

    def __init__(self) -> None:
        self.done = False

    @workflow.query
    def value(self) -> int:
        return 42

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return 42


@workflow.defn
class Sleeper:
    """Sleeps on a durable timer."""

    @workflow.run
    async def run(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@workflow.defn
class LongHistory:
    """Grows its history to ``min_events`` with batches of activities, then waits.

    The loop reads the history length the SDK tracks per activation, so a replay
    takes exactly the same turns.
    """

    def __init__(self) -> None:
        self.activities = 0
        self.ready = False
        self.done = False

    @workflow.query
    def progress(self) -> tuple[bool, int]:
        return self.ready, self.activities

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self, min_events: int, batch: int) -> int:
        while workflow.info().get_current_history_length() < min_events:
            await asyncio.gather(
                *(
                    workflow.execute_activity(noop, i, start_to_close_timeout=_TIMEOUT)
                    for i in range(batch)
                )
            )
            self.activities += batch
        self.ready = True
        await workflow.wait_condition(lambda: self.done)
        return self.activities


WORKFLOWS: list[type] = [
    Gather,
    Sequential,
    Single,
    Children,
    Signalled,
    Queried,
    Sleeper,
    LongHistory,
]
ACTIVITIES = [noop]
