"""The processes of a kill storm, each on the same store file.

``python storm_app.py worker DIR [SYNC]``: runs the storm's workflows and
activities until killed.

``python storm_app.py client DIR COUNT RATE [SYNC]``: starts COUNT workflows,
RATE a second, and signals each a little later; writes each start and signal to
DIR/acks once the call returned (acknowledged), then exits.

Every activity attempt appends ``key attempt pid`` to DIR/effects and holds an
exclusive lock on DIR/locks/KEY while it runs: an attempt that finds the lock
taken runs beside another attempt of the same activity, and writes
DIR/violations. The kernel drops a killed process's locks.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import random
import sys
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow

from ablauf import Client, Worker

TASK_QUEUE = "storm"
ACTIVITY_TIMEOUT = timedelta(seconds=5)
DIR = Path()


def append(name: str, line: str) -> None:
    """One line, appended with one write: lines of several processes never mix."""
    fd = os.open(DIR / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@activity.defn
async def effect(key: str) -> str:
    """A side effect that must happen at least once, by one attempt at a time."""
    info = activity.info()
    lock = os.open(DIR / "locks" / key.replace("/", "_"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            append("violations", f"{key} attempt {info.attempt} ran beside another attempt")
        await asyncio.sleep(random.uniform(0.005, 0.05))
        append("effects", f"{key} {info.attempt} {os.getpid()}")
    finally:
        os.close(lock)
    return f"done:{key}"


@workflow.defn
class StormChild:
    @workflow.run
    async def run(self, key: str) -> str:
        result: str = await workflow.execute_activity(
            effect, f"{key}/act", start_to_close_timeout=ACTIVITY_TIMEOUT
        )
        await workflow.sleep(0.2)
        return result


@workflow.defn
class Storm:
    """Sequential activities, a gather, a durable timer, a signal, a child."""

    def __init__(self) -> None:
        self.signal: str | None = None

    @workflow.run
    async def run(self, index: int) -> list[str]:
        wid = workflow.info().workflow_id
        results = []
        for k in range(2):
            results.append(
                await workflow.execute_activity(
                    effect, f"{wid}/seq{k}", start_to_close_timeout=ACTIVITY_TIMEOUT
                )
            )
        results += await asyncio.gather(
            *(
                workflow.execute_activity(
                    effect, f"{wid}/par{k}", start_to_close_timeout=ACTIVITY_TIMEOUT
                )
                for k in range(3)
            )
        )
        await workflow.sleep(0.1 + (index % 10) / 10)
        await workflow.wait_condition(lambda: self.signal is not None)
        assert self.signal is not None
        results.append(self.signal)
        results.append(
            await workflow.execute_child_workflow(StormChild.run, f"{wid}/child", id=f"{wid}-child")
        )
        return results

    @workflow.signal
    def go(self, value: str) -> None:
        self.signal = value


def expected(index: int) -> list[str]:
    """What workflow ``index`` returns."""
    wid = f"storm-{index}"
    return [
        *(f"done:{wid}/seq{k}" for k in range(2)),
        *(f"done:{wid}/par{k}" for k in range(3)),
        f"sig-{index}",
        f"done:{wid}/child/act",
    ]


def effect_keys(index: int) -> list[str]:
    """The activities workflow ``index`` runs, its child's included."""
    wid = f"storm-{index}"
    return [
        *(f"{wid}/seq{k}" for k in range(2)),
        *(f"{wid}/par{k}" for k in range(3)),
        f"{wid}/child/act",
    ]


def target(synchronous: str) -> str:
    return f"sqlite:///{DIR / 'storm.db'}?synchronous={synchronous}"


async def run_worker(synchronous: str) -> None:
    client = await Client.connect(target(synchronous))
    async with Worker(
        client, task_queue=TASK_QUEUE, workflows=[Storm, StormChild], activities=[effect]
    ):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


async def run_client(count: int, rate: float, synchronous: str) -> None:
    client = await Client.connect(target(synchronous))
    started: list[int] = []
    signalled = 0
    for index in range(count):
        await client.start_workflow(Storm.run, index, id=f"storm-{index}", task_queue=TASK_QUEUE)
        append("acks", f"started {index}")
        started.append(index)
        # Each workflow gets its signal a few starts later, while it runs.
        while signalled < len(started) - 3 or (index == count - 1 and signalled < count):
            await client.get_workflow_handle(f"storm-{signalled}").signal(
                Storm.go, f"sig-{signalled}"
            )
            append("acks", f"signalled {signalled}")
            signalled += 1
        await asyncio.sleep(1 / rate)
    await client.close()
    print("client done", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(message)s")
    role, DIR = sys.argv[1], Path(sys.argv[2])
    if role == "worker":
        asyncio.run(run_worker(sys.argv[3] if len(sys.argv) > 3 else "normal"))
    else:
        count, rate = int(sys.argv[3]), float(sys.argv[4])
        asyncio.run(run_client(count, rate, sys.argv[5] if len(sys.argv) > 5 else "normal"))
