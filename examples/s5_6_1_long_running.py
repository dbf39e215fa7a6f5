"""5.6.1 Event History Management: a workflow that processes items forever, in many runs.

The chapter's workflow, corrected where it fails on Temporal:
- E7: the workflow processes one batch of 100 items and checks for continue-as-new
  after it; a fresh run has processed 100 items, no check fires, and it completes.
  A ``while True:`` loop around the batch makes it run on: each batch ends with the
  two checks, and a run ends only by continuing as new (or by being cancelled).
- E15: ``timedelta`` is used but not imported.

Both of the chapter's triggers stay as printed: the server's suggestion (Temporal
suggests continue-as-new once a history has 4,096 events, here after seven batches)
and every 10,000 items. The scenario's parameters decide where the workflow starts
and when the client stops it. By default it resumes a state at 9,900 items, so the
10,000 trigger comes after one batch, and the client cancels it 20 items later, in
its second run: about 5 seconds on a Temporal dev server, where an activity awaited
after another takes about 45 ms. From a fresh state, 3,000 items take five runs, each
continued on the server's suggestion. Each item is one activity; the fake in
``fake_services.py`` records which run processed it.

    python examples/s5_6_1_long_running.py [--target sqlite:///items.db | localhost:7233]
"""

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta  # E15: timedelta is not imported in the chapter

from _cli import run_standalone
from fake_services import item_processor
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from ablauf import Client, Worker

TASK_QUEUE = "s5-6-1-long-running"


@activity.defn
async def process_item(item: int) -> None:
    info = activity.info()
    await item_processor.process(info.workflow_id, info.workflow_run_id, item)


# --- the chapter's code ----------------------------------------------------------


@dataclass
class WorkflowState:
    processed_count: int = 0
    iteration: int = 0


@workflow.defn
class LongRunningWorkflow:
    @workflow.run
    async def run(self, state: WorkflowState = None) -> None:
        # Initialize or restore the state
        if state is None:
            self.state = WorkflowState()
        else:
            self.state = state
            workflow.logger.info(f"Resumed at iteration {self.state.iteration}")

        while True:  # E7: without this loop a run processes one batch and completes
            # Process a batch
            for i in range(100):  # noqa: B007 - the chapter names the unused counter
                await workflow.execute_activity(
                    process_item,
                    self.state.processed_count,
                    start_to_close_timeout=timedelta(minutes=1),
                )
                self.state.processed_count += 1

            self.state.iteration += 1

            # Check the continue-as-new suggestion
            if workflow.info().is_continue_as_new_suggested():
                workflow.logger.info(f"Continuing as new after {self.state.processed_count} items")
                workflow.continue_as_new(self.state)

            # Or: a custom trigger
            if self.state.processed_count % 10000 == 0:
                workflow.continue_as_new(self.state)


# --- running it ------------------------------------------------------------------


async def main(
    client: Client,
    *,
    start: WorkflowState | None = WorkflowState(processed_count=9_900, iteration=99),  # noqa: B008
    items: int = 120,
    deadline: float = 120.0,
) -> dict:
    """Start the workflow at ``start``, let it process ``items`` items, cancel it.

    Returns the items in the order they were processed and, per run, how many items
    it processed, its first item, its history length and how it ended.
    """
    workflow_id = f"long-running-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[LongRunningWorkflow],
        activities=[process_item],
    ):
        await client.start_workflow(
            LongRunningWorkflow.run,
            start,
            id=workflow_id,
            task_queue=TASK_QUEUE,
        )
        print(f"started {workflow_id} at item {start.processed_count if start else 0:,}")
        while len(item_processor.by_run(workflow_id)) < items:
            if time.monotonic() - started > deadline:
                raise TimeoutError(f"{workflow_id} did not process {items} items in {deadline} s")
            await asyncio.sleep(0.05)
        # A workflow that never ends is stopped from outside: cancelled, its current
        # activity is cancelled and the run ends as CANCELED.
        await client.get_workflow_handle(workflow_id).cancel()
        try:
            await client.get_workflow_handle(workflow_id).result()
        except WorkflowFailureError as err:
            if not isinstance(err.cause, CancelledError):
                raise

    processed = item_processor.by_run(workflow_id)
    run_ids = list(dict.fromkeys(entry.run_id for entry in processed))
    runs = []
    for number, run_id in enumerate(run_ids, 1):
        mine = [entry.item_id for entry in processed if entry.run_id == run_id]
        description = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        status = description.status.name if description.status else None
        runs.append(
            {
                "first_item": mine[0],
                "items": len(mine),
                "history_length": description.history_length,
                "status": status,
            }
        )
        print(
            f"run {number}: items {mine[0]:,} to {mine[-1]:,}, "
            f"{description.history_length:,} events, {status}"
        )
    print(f"{len(processed):,} items in {len(runs)} runs, {time.monotonic() - started:.1f} s")
    return {"items": [entry.item_id for entry in processed], "runs": runs}


if __name__ == "__main__":
    run_standalone(main, __doc__)
