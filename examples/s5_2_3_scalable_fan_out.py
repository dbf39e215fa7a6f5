"""5.2.3 Performance-Limitierungen bei Fan-Outs (performance limits of fan-outs): fan out over
child workflows.

The chapter's workflow, corrected where it fails on Temporal:
- E11: the children's ids are ``batch-{i}``, so two fan-outs at once collide: the
  second one's first child is refused with "Workflow execution already started".
  The ids get the parent's workflow id, as ``BatchCoordinatorWorkflow`` in 5.1.3 does.
- E15: ``asyncio`` is used but not imported.

As in 5.1.3, the batch size is a second argument whose default is the chapter's 1000;
the scenario fans out 100 items in batches of 25. The children are 5.1.3's
``BatchProcessorWorkflow``, one activity per item. Two fan-outs run at the same time,
which is what the chapter's ids could not do.

    python examples/s5_2_3_scalable_fan_out.py [--target sqlite:///fan-out.db | localhost:7233]
"""

import asyncio  # E15: asyncio is used but not imported in the chapter
import uuid

from _cli import run_standalone
from fake_services import item_processor
from s5_1_3_children import BatchProcessorWorkflow, process_single_item
from temporalio import workflow

from ablauf import Client, Worker

TASK_QUEUE = "s5-2-3-scalable-fan-out"


# --- the chapter's code ----------------------------------------------------------


@workflow.defn
class ScalableFanOutWorkflow:
    """
    For 10,000+ items: use child workflows for partitioning.
    """

    @workflow.run
    async def run(self, total_items: int, batch_size: int = 1000) -> dict:
        # The chapter sets batch_size = 1000 (items per child workflow) here.

        # Compute the number of batches
        num_batches = (total_items + batch_size - 1) // batch_size

        workflow.logger.info(f"Processing {total_items} items via {num_batches} child workflows")

        # Fan out over child workflows
        batch_workflows = []
        for i in range(num_batches):
            start_idx = i * batch_size
            end_idx = min((i + 1) * batch_size, total_items)

            handle = await workflow.start_child_workflow(
                BatchProcessorWorkflow.run,
                {"start": start_idx, "end": end_idx},
                id=f"batch-{workflow.info().workflow_id}-{i}",  # E11: batch-{i} collides
            )
            batch_workflows.append(handle)

        # Fan-in: wait for all batches
        batch_results = await asyncio.gather(*batch_workflows)

        return {"batches_processed": len(batch_results), "total_items": total_items}


# --- running it ------------------------------------------------------------------


async def main(client: Client, *, total_items: int = 100, batch_size: int = 25) -> dict:
    """Run two fan-outs at once; returns their results and each child's items (sorted)."""
    run = uuid.uuid4().hex[:8]
    ids = [f"fan-out-{run}-a", f"fan-out-{run}-b"]
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[ScalableFanOutWorkflow, BatchProcessorWorkflow],
        activities=[process_single_item],
    ):
        results = await asyncio.gather(
            *(
                client.execute_workflow(
                    ScalableFanOutWorkflow.run,
                    args=[total_items, batch_size],
                    id=workflow_id,
                    task_queue=TASK_QUEUE,
                )
                for workflow_id in ids
            )
        )
    children = item_processor.by_workflow(f"batch-fan-out-{run}-")
    for workflow_id, result in zip(ids, results, strict=True):
        mine = [child for child in children if child.startswith(f"batch-{workflow_id}-")]
        print(f"{workflow_id}: {result}, children {mine[0]} ... {mine[-1]}")
    return {"results": dict(zip(ids, results, strict=True)), "children": children}


if __name__ == "__main__":
    run_standalone(main, __doc__)
