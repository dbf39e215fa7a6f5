"""A worker process for the durability tests: ``python app.py STORE [SECONDS]``.

Runs until killed (or for SECONDS). Each activity attempt appends a line to
STORE.attempts, so the test can see what ran more than once.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from temporalio import activity, workflow

from ablauf import Client, Worker

ATTEMPTS_FILE = ""


@activity.defn
async def step(i: int) -> int:
    with open(ATTEMPTS_FILE, "a") as f:
        f.write(f"{activity.info().workflow_id} {i} {activity.info().attempt}\n")
    await asyncio.sleep(0.02)
    return i * 2


@activity.defn
async def hang() -> int:
    """Hangs in its first attempt (until the process dies); later attempts return."""
    info = activity.info()
    with open(ATTEMPTS_FILE, "a") as f:
        f.write(f"{info.workflow_id} hang {info.attempt}\n")
    if info.attempt == 1:
        await asyncio.sleep(3600)
    return info.attempt


@workflow.defn
class Hang:
    """One activity whose first attempt never ends by itself."""

    @workflow.run
    async def run(self, timeout: float) -> int:
        return await workflow.execute_activity(
            hang, start_to_close_timeout=timedelta(seconds=timeout)
        )


@workflow.defn
class Chain:
    """Sequential activities, a durable timer, then two signals."""

    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self, n: int) -> list[object]:
        out: list[object] = []
        for i in range(n):
            out.append(
                await workflow.execute_activity(
                    step, i, start_to_close_timeout=timedelta(seconds=2)
                )
            )
        await asyncio.sleep(1)
        await workflow.wait_condition(lambda: len(self.signals) >= 2)
        return [*out, *self.signals]

    @workflow.signal
    def sig(self, value: str) -> None:
        self.signals.append(value)

    @workflow.query
    def progress(self) -> int:
        return len(self.signals)


async def main(target: str, seconds: float | None) -> None:
    client = await Client.connect(target)
    async with Worker(
        client, task_queue="durable", workflows=[Chain, Hang], activities=[step, hang]
    ):
        print("worker ready", flush=True)
        if seconds is None:
            await asyncio.Event().wait()
        await asyncio.sleep(seconds)


if __name__ == "__main__":
    store = sys.argv[1]
    ATTEMPTS_FILE = store + ".attempts"
    asyncio.run(main(f"sqlite:///{store}", float(sys.argv[2]) if len(sys.argv) > 2 else None))
