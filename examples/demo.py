"""ablauf demo: the patterns of chapter 5, one after another, in one store.

Each section runs one example module (``s5_*.py``); read those for the code.
Workflows are written with the official ``temporalio`` SDK; only ``Client`` and
``Worker`` come from ablauf, and the target decides where the workflows live:

    python examples/demo.py                              # a SQLite file in a temp directory
    python examples/demo.py --target sqlite:///demo.db   # a SQLite file of your choice
    python examples/demo.py --target localhost:7233      # a Temporal server

The whole demo takes about 20 seconds on the embedded engine, most of it the
10-second timer of 5.3.1 and the retries of 5.5; on a Temporal dev server, where each
activity that waits for the one before takes about 45 ms, about 45 seconds.
"""

import asyncio
import os
import sys
import time

import s5_1_2_order
import s5_1_3_children
import s5_1_4_parent_child
import s5_2_1_parallel
import s5_2_2_fan_out_fan_in
import s5_2_3_scalable_fan_out
import s5_3_1_delay
import s5_3_2_timeout
import s5_3_3_schedules
import s5_3_4_cancellable_timer
import s5_4_1_stateful_order
import s5_4_2_progress
import s5_5_1_error_handling
import s5_5_2_saga
import s5_6_1_long_running
import s5_6_2_account_entity
from _cli import parse_target, show_workflow_logs

from ablauf import Client


def heading(section: str, title: str) -> None:
    print(f"\n=== {section}  {title}")


async def demo(target: str) -> None:
    started = time.monotonic()
    print(f"target: {target}")
    client = await Client.connect(target)

    heading("5.1.2", "Activities: an order charges a card and sends an e-mail")
    await s5_1_2_order.main(client)

    heading("5.1.3", "Child workflows: partitioning, service separation, one child per host")
    await s5_1_3_children.main(client)

    heading("5.1.4", "Parent and children: tasks by signal, statuses by client query")
    await s5_1_4_parent_child.main(client)

    heading("5.2.1", "asyncio.gather: scrape three pages in parallel")
    await s5_2_1_parallel.main(client)

    heading("5.2.2", "Fan-out/fan-in: scrape in parallel, aggregate once")
    await s5_2_2_fan_out_fan_in.main(client)

    heading("5.2.3", "Scalable fan-out: two fan-outs over child workflows at once")
    await s5_2_3_scalable_fan_out.main(client)

    heading("5.3.1", "Durable timers: 10 seconds, then 30 days")
    await s5_3_1_delay.main(client)

    heading("5.3.2", "Timeouts: wait up to 24 hours for an approval signal")
    await s5_3_2_timeout.main(client)

    heading("5.3.3", "Schedules: a daily report at 9:00 and a sync every hour")
    await s5_3_3_schedules.main(client)

    heading("5.3.4", "Timer cancellation: a signal cancels a one-hour timer")
    await s5_3_4_cancellable_timer.main(client)

    heading("5.4.1", "State, queries and signals: orders over 1000 need a manager")
    await s5_4_1_stateful_order.main(client)

    heading("5.4.2", "Progress queries, watched by a monitor in another process")
    await s5_4_2_progress.main(client, target)

    heading("5.5.1", "Error handling: failed items are counted, the workflow goes on")
    await s5_5_1_error_handling.main(client)

    heading("5.5.2", "SAGA: book car, hotel and flight, or roll back")
    await s5_5_2_saga.main(client)

    heading("5.6.1", "Continue-as-new: a workflow that never ends, a new run at 10,000 items")
    await s5_6_1_long_running.main(client)

    heading("5.6.2", "Entity workflow: a bank account, signals across continue-as-new")
    await s5_6_2_account_entity.main(client)

    print(f"\nall sections done in {time.monotonic() - started:.1f} s; the runs stay in {target}")


if __name__ == "__main__":
    demo_target = parse_target(__doc__, default_name="demo")
    show_workflow_logs()
    asyncio.run(demo(demo_target))
    if "://" not in demo_target:
        # temporalio's native client can crash while the interpreter shuts down
        # (sdk-python issue #300); the demo is done, so leave without that phase.
        sys.stdout.flush()
        os._exit(0)
