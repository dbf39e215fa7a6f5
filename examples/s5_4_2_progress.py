"""5.4.2 State Queries für Progress Tracking (querying state to track progress): a workflow that
reports its progress.

The chapter's workflow, corrected where it fails on Temporal:
- E3: ``workflow.time()`` returns a float; the datetime arithmetic needs ``workflow.now()``.
- E4: ``estimated_completion`` is None until the first item is done, so its type
  must say ``Optional``; otherwise a typed query fails to convert the None.
- E15: ``timedelta`` is used but not imported.

The client side of the chapter, the progress monitor, is ``progress_monitor.py``: the
example starts the workflow and runs the monitor as a separate process against the
same target, as an operator would. The chapter does not show the activities; here
each one takes 50 ms.

    python examples/s5_4_2_progress.py [--target sqlite:///progress.db | localhost:7233]
"""

# ruff: noqa: UP045, RUF013 - the chapter spells optional types typing.Optional and `= None`

import asyncio
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta  # E15: timedelta is not imported in the chapter
from pathlib import Path
from typing import Optional

from _cli import run_standalone
from temporalio import activity, workflow

from ablauf import Client, Worker

TASK_QUEUE = "s5-4-2-progress"
MONITOR = Path(__file__).with_name("progress_monitor.py")


@activity.defn
async def initialize_activity() -> None:
    await asyncio.sleep(0.05)


@activity.defn
async def process_item(item: int) -> None:
    await asyncio.sleep(0.05)


# --- the chapter's code ----------------------------------------------------------


@dataclass
class ProgressInfo:
    phase: str
    current_step: int
    total_steps: int
    percentage: float
    start_time: datetime
    estimated_completion: Optional[datetime] = None  # E4: None until the first step is done


@workflow.defn
class ProgressTrackingWorkflow:
    def __init__(self) -> None:
        self.progress = ProgressInfo(
            phase="initializing",
            current_step=0,
            total_steps=100,
            percentage=0.0,
            start_time=None,
        )

    @workflow.run
    async def run(self, total_items: int) -> dict:
        self.progress.total_steps = total_items
        self.progress.start_time = workflow.now()  # E3: workflow.time() is a float

        # Phase 1: Initialization
        self.progress.phase = "initialization"
        await workflow.execute_activity(
            initialize_activity,
            start_to_close_timeout=timedelta(minutes=1),
        )
        self._update_progress(10)

        # Phase 2: Processing
        self.progress.phase = "processing"
        for i in range(total_items):
            await workflow.execute_activity(
                process_item,
                i,
                start_to_close_timeout=timedelta(minutes=2),
            )
            self.progress.current_step = i + 1
            self._update_progress()

        # Phase 3: Finalization
        self.progress.phase = "finalization"
        self._update_progress(100)

        return {"completed": self.progress.current_step}

    def _update_progress(self, override_percentage: float = None) -> None:
        if override_percentage is not None:
            self.progress.percentage = override_percentage
        else:
            self.progress.percentage = self.progress.current_step / self.progress.total_steps * 100

        # ETA calculation
        if self.progress.current_step > 0:
            # E3: workflow.now() instead of workflow.time(), here and below
            elapsed = (workflow.now() - self.progress.start_time).total_seconds()
            rate = self.progress.current_step / elapsed
            remaining = self.progress.total_steps - self.progress.current_step
            eta_seconds = remaining / rate if rate > 0 else 0
            self.progress.estimated_completion = workflow.now() + timedelta(seconds=eta_seconds)

    @workflow.query
    def get_progress(self) -> ProgressInfo:
        """Query for the current progress."""
        return self.progress

    @workflow.query
    def get_percentage(self) -> float:
        """Query for the percentage only."""
        return self.progress.percentage


# --- running it ------------------------------------------------------------------


async def main(client: Client, target: str, total_items: int = 20) -> dict:
    """Run the workflow while ``progress_monitor.py`` watches it from another process.

    ``target`` is the one ``client`` was connected to; the monitor connects there too.
    Returns the workflow's result, the monitor's exit code and the monitor's output.
    """
    workflow_id = f"progress-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[ProgressTrackingWorkflow],
        activities=[initialize_activity, process_item],
    ):
        handle = await client.start_workflow(
            ProgressTrackingWorkflow.run,
            total_items,
            id=workflow_id,
            task_queue=TASK_QUEUE,
        )
        print(f"started {workflow_id} with {total_items} items; starting the monitor process")
        monitor = await asyncio.create_subprocess_exec(
            sys.executable,
            str(MONITOR),
            "--target",
            target,
            "--workflow-id",
            workflow_id,
            "--interval",
            "0.5",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        result = await handle.result()
        try:
            # The worker keeps running until the monitor is done: it answers the queries.
            output, _ = await asyncio.wait_for(monitor.communicate(), timeout=60)
        except TimeoutError:
            monitor.kill()
            output, _ = await monitor.communicate()
    monitor_output = output.decode()
    for line in monitor_output.splitlines():
        print(f"    monitor: {line}")
    print(f"monitor exited with {monitor.returncode}; result: {result}")
    return {
        "result": result,
        "monitor_exit_code": monitor.returncode,
        "monitor_output": monitor_output,
    }


if __name__ == "__main__":
    run_standalone(main, __doc__, pass_target=True)
