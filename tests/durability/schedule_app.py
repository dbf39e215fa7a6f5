"""A worker process for the schedule durability tests: ``python schedule_app.py STORE``.

Runs a worker for the scheduled ``Stamp`` workflow until killed; the engine in
this process takes the schedule's actions as they come due (and those that came
due while no process ran).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from temporalio import workflow

from ablauf import Client, Worker


@workflow.defn
class Stamp:
    @workflow.run
    async def run(self) -> str:
        return workflow.info().workflow_id


async def main(target: str) -> None:
    client = await Client.connect(target)
    async with Worker(client, task_queue="stamps", workflows=[Stamp]):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    asyncio.run(main(f"sqlite:///{sys.argv[1]}"))
