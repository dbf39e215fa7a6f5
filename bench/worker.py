"""A worker in a process of its own, for the ``scaling`` workload.

Usage: ``python -m bench.worker TARGET TASK_QUEUE``. Prints ``ready`` once it
polls, and shuts down when its standard input closes.
"""

from __future__ import annotations

import asyncio
import sys

from ablauf import Client
from bench.drivers import new_worker


async def _main(target: str, task_queue: str) -> None:
    client = await Client.connect(target)
    loop = asyncio.get_running_loop()
    async with new_worker(client, task_queue):
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
    if isinstance(client, Client):
        await client.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2]))
