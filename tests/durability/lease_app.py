"""A worker process for the lease tests: ``python lease_app.py STORE QUEUE``.

Runs until killed. Should its store be removed or replaced, the worker stops
and the process prints ``store lost: ...`` and exits with status 3. Every
activity attempt appends ``key attempt pid start|end`` to STORE.attempts (or
to $ATTEMPTS_FILE).
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from ablauf import Client, Worker
from ablauf.errors import StoreLostError

ATTEMPTS = ""
START_TO_CLOSE = timedelta(seconds=3)


def _note(line: str) -> None:
    fd = os.open(ATTEMPTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@activity.defn
async def hold(key: str, seconds: float) -> str:
    """Runs ``seconds`` in its first attempt, returns at once in later ones."""
    info = activity.info()
    _note(f"{key} {info.attempt} {os.getpid()} start")
    if info.attempt == 1:
        await asyncio.sleep(seconds)
    _note(f"{key} {info.attempt} {os.getpid()} end")
    return f"{key}:{info.attempt}"


@workflow.defn
class Hold:
    """``n`` activities at once, each held ``seconds`` in its first attempt."""

    @workflow.run
    async def run(self, n: int, seconds: float) -> list[str]:
        wid = workflow.info().workflow_id
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        hold,
                        args=[f"{wid}/{k}", seconds],
                        start_to_close_timeout=START_TO_CLOSE,
                        retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1)),
                    )
                    for k in range(n)
                )
            )
        )

    @workflow.query
    def name(self) -> str:
        return workflow.info().workflow_id


async def main(store: str, queue: str) -> int:
    client = await Client.connect(f"sqlite:///{store}")
    worker = Worker(client, task_queue=queue, workflows=[Hold], activities=[hold])
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0)
    print(f"worker ready {os.getpid()}", flush=True)
    try:
        await running
    except StoreLostError as err:
        print(f"store lost: {err}", flush=True)
        return 3
    return 0


if __name__ == "__main__":
    ATTEMPTS = os.environ.get("ATTEMPTS_FILE", sys.argv[1] + ".attempts")
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
