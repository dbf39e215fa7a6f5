"""5.3.1 workflow.sleep() für Delays (delays with workflow.sleep()): a 10-second timer, then a
30-day timer.

The chapter's workflow, unchanged. The example waits for the first timer to fire
(10 real seconds), then shows with ``describe()`` that the run is still RUNNING:
its next event is the 30-day timer, which is now stored, not waited for by any
process. Start a worker for this task queue within 30 days and the run completes.

    python examples/s5_3_1_delay.py [--target sqlite:///delay.db | localhost:7233]
"""

import asyncio
import time
import uuid

from _cli import run_standalone
from temporalio import workflow

from ablauf import Client, Worker

TASK_QUEUE = "s5-3-1-delay"


# --- the chapter's code ----------------------------------------------------------


@workflow.defn
class DelayWorkflow:
    @workflow.run
    async def run(self) -> str:
        workflow.logger.info("Starting workflow")

        # Sleep for 10 seconds (durable timer)
        await asyncio.sleep(10)
        workflow.logger.info("10 seconds passed")

        # Can sleep for months, too - resource-light!
        await asyncio.sleep(60 * 60 * 24 * 30)  # 30 days
        workflow.logger.info("30 days passed")

        return "Timers completed"


# --- running it ------------------------------------------------------------------

# Events of a run whose first timer fired and whose second timer started:
# 1 WorkflowExecutionStarted, 2-4 WorkflowTask Scheduled/Started/Completed,
# 5 TimerStarted (10 s), 6 TimerFired, 7-9 WorkflowTask Scheduled/Started/Completed,
# 10 TimerStarted (30 days).
EVENTS_WHEN_SECOND_TIMER_STARTED = 10


async def main(client: Client) -> dict:
    """Start the run, wait for its first timer; returns what ``describe()`` shows then."""
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[DelayWorkflow]):
        started = time.monotonic()
        handle = await client.start_workflow(
            DelayWorkflow.run,
            id=f"delay-{uuid.uuid4().hex[:8]}",
            task_queue=TASK_QUEUE,
        )
        print("started; the first timer fires in 10 seconds ...")
        while True:
            description = await handle.describe()
            if description.history_length >= EVENTS_WHEN_SECOND_TIMER_STARTED:
                break
            if time.monotonic() - started > 60:
                raise TimeoutError(f"the 10-second timer did not fire: {description}")
            await asyncio.sleep(0.25)
        waited = time.monotonic() - started

    status = description.status.name if description.status else None
    print(f"first timer fired after {waited:.1f} s")
    print(
        f"describe(): {status}, {description.history_length} events, the last one the 30-day timer"
    )
    print(f"{handle.id} waits in the store; a worker on {TASK_QUEUE!r} completes it in 30 days")
    return {
        "status": status,
        "history_length": description.history_length,
        "waited_seconds": waited,
    }


if __name__ == "__main__":
    run_standalone(main, __doc__)
