"""5.3.4 Timer Cancellation: a one-hour timer that a signal cancels.

The chapter's workflow with its missing imports added (E15). The example starts
the run, sends ``cancel_timer`` and gets "Timer was cancelled" back at once; the
other path ("Timer completed normally") takes the full hour.

    python examples/s5_3_4_cancellable_timer.py [--target sqlite:///timers.db | localhost:7233]
"""

import asyncio  # E15: asyncio is used but not imported in the chapter
import uuid

from _cli import run_standalone
from temporalio import workflow

from ablauf import Client, Worker

TASK_QUEUE = "s5-3-4-cancellable-timer"


# --- the chapter's code ----------------------------------------------------------


@workflow.defn
class CancellableTimerWorkflow:
    def __init__(self) -> None:
        self.timer_cancelled = False

    @workflow.run
    async def run(self) -> str:
        # Start a one-hour timer
        sleep_task = asyncio.create_task(asyncio.sleep(3600))

        # Wait for the timer or the cancellation
        await workflow.wait_condition(lambda: self.timer_cancelled or sleep_task.done())

        if self.timer_cancelled:
            # Cancel the timer
            sleep_task.cancel()
            try:
                await sleep_task
            except asyncio.CancelledError:
                return "Timer was cancelled"

        return "Timer completed normally"

    @workflow.signal
    def cancel_timer(self) -> None:
        self.timer_cancelled = True


# --- running it ------------------------------------------------------------------


async def main(client: Client) -> str:
    """Start the one-hour timer and cancel it; returns the workflow's result."""
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[CancellableTimerWorkflow]):
        handle = await client.start_workflow(
            CancellableTimerWorkflow.run,
            id=f"cancellable-timer-{uuid.uuid4().hex[:8]}",
            task_queue=TASK_QUEUE,
        )
        # Wait until the first workflow task has run and the timer is in the history:
        # 1 WorkflowExecutionStarted, 2-4 WorkflowTask Scheduled/Started/Completed,
        # 5 TimerStarted (one hour).
        while (await handle.describe()).history_length < 5:
            await asyncio.sleep(0.05)
        print("the run started a one-hour timer")
        await handle.signal(CancellableTimerWorkflow.cancel_timer)
        print("sent the cancel_timer signal")
        result = await handle.result()
    print(f"result: {result!r}")
    return result


if __name__ == "__main__":
    run_standalone(main, __doc__)
