"""The client of the ``backlog`` workload, in a process of its own (so the
benchmark's process, whose peak memory is the ``memory`` row, never holds ten
thousand runs).

Usage: ``python -m bench.backlog_client TARGET TASK_QUEUE COUNT GROUP``. Starts
COUNT one-activity workflows, GROUP at a time, prints ``queued``, waits for a
line on its standard input (the worker runs now), awaits every result in
start order and prints ``seconds S``: from that line until the last result.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import temporalio.client

from ablauf import Client
from bench import workloads as w


async def _main(target: str, task_queue: str, count: int, group: int) -> None:
    client = await Client.connect(target)
    handles: list[temporalio.client.WorkflowHandle[Any, Any]] = []
    for first in range(0, count, group):
        handles += await asyncio.gather(
            *(
                client.start_workflow(
                    w.Single.run, i, id=f"{task_queue}-{i}", task_queue=task_queue
                )
                for i in range(first, min(count, first + group))
            )
        )
    print("queued", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started = time.perf_counter()
    # One waiter at a time: this process stays out of the worker's way.
    results = [await h.result() for h in handles]
    seconds = time.perf_counter() - started
    assert results == list(range(count))
    print(f"seconds {seconds}", flush=True)
    await client.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
