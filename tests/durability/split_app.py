"""Service separation across processes: ``python split_app.py STORE orders|payments``.

The ``orders`` process runs the workflow; ``payments`` processes run the activity,
which lives on its own task queue. Each attempt appends a line to STORE.payments.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

from temporalio import activity, workflow

from ablauf import Client, Worker

LOG = ""


@activity.defn
async def charge(order: int) -> str:
    with open(LOG, "a") as f:
        f.write(f"{order} {os.getpid()}\n")
    await asyncio.sleep(0.005)
    return f"charged-{order}"


@workflow.defn
class Checkout:
    @workflow.run
    async def run(self, orders: int) -> list[str]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        "charge",
                        i,
                        task_queue="payments",
                        start_to_close_timeout=timedelta(seconds=20),
                    )
                    for i in range(orders)
                )
            )
        )


async def main(store: str, role: str) -> None:
    client = await Client.connect(f"sqlite:///{store}")
    if role == "orders":
        worker = Worker(client, task_queue="orders", workflows=[Checkout])
    else:
        worker = Worker(client, task_queue="payments", activities=[charge])
    async with worker:
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    LOG = sys.argv[1] + ".payments"
    asyncio.run(main(sys.argv[1], sys.argv[2]))
