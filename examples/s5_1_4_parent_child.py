"""5.1.4 Parent-Child Kommunikation (parent-child communication): a coordinator hands out
tasks to child workers by signal.

The chapter's workflows, corrected where they fail on Temporal:
- E1: the coordinator queries its children (``handle.query("get_status")``), but a
  child handle in workflow code has no ``query``: the workflow task fails and the run
  hangs. Queries are made from clients; here the client queries the children.
- E12: three children, tasks assigned round robin: with two tasks one child never gets
  a task and the coordinator waits for it forever; with four, a child's first task is
  overwritten by its second. The coordinator starts one child per task.
- The children's ids get the coordinator's id in front (``worker-{i}`` in the
  chapter): two coordinators at once, or a client looking for this coordinator's
  children, would otherwise meet another coordinator's ``worker-0`` (as E11 in 5.2.3).
- E15: ``asyncio`` and ``timedelta`` are used but not imported.

The chapter does not show ``process_task_step``; here a step takes 30 ms on the fake
task board in ``fake_services.py``. The client pauses the first child by signal,
queries every child's status, and resumes it.

    python examples/s5_1_4_parent_child.py [--target sqlite:///workers.db | localhost:7233]
"""

import asyncio  # E15: asyncio and timedelta are used but not imported in the chapter
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from _cli import run_standalone
from fake_services import task_board
from temporalio import activity, workflow
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from ablauf import Client, Worker

TASK_QUEUE = "s5-1-4-parent-child"


@activity.defn
async def process_task_step(task_data: dict, step: int) -> None:
    await task_board.do_step(task_data["task_id"], step)


# --- the chapter's code ----------------------------------------------------------


@dataclass
class TaskUpdate:
    task_id: str
    status: str
    progress: int


@workflow.defn
class ChildWorkerWorkflow:
    def __init__(self) -> None:
        self.task_data = None
        self.paused = False

    @workflow.run
    async def run(self) -> str:
        # Wait until a task is assigned by signal
        await workflow.wait_condition(lambda: self.task_data is not None)

        # Process the task
        for i in range(10):
            # Check for the pause signal
            if self.paused:
                await workflow.wait_condition(lambda: not self.paused)

            await workflow.execute_activity(
                process_task_step,
                args=[self.task_data, i],
                start_to_close_timeout=timedelta(minutes=2),
            )

        return "completed"

    @workflow.signal
    def assign_task(self, task_data: dict) -> None:
        """Signal from the parent: assign a task."""
        self.task_data = task_data

    @workflow.signal
    def pause(self) -> None:
        """Signal from the parent: pause."""
        self.paused = True

    @workflow.signal
    def resume(self) -> None:
        """Signal from the parent: resume."""
        self.paused = False

    @workflow.query
    def get_status(self) -> dict:
        """Query from the parent or an external client."""
        return {"has_task": self.task_data is not None, "paused": self.paused}


@workflow.defn
class CoordinatorWorkflow:
    @workflow.run
    async def run(self, tasks: list[dict]) -> dict:
        # Start the worker child workflows
        worker_handles = []
        for i in range(len(tasks)):  # E12: one worker per task, not 3 round robin
            handle = await workflow.start_child_workflow(
                ChildWorkerWorkflow.run,
                id=f"{workflow.info().workflow_id}-worker-{i}",  # not worker-{i}: see above
            )
            worker_handles.append(handle)

        # Distribute the tasks via signals
        for i, task in enumerate(tasks):
            worker_idx = i % len(worker_handles)
            await worker_handles[worker_idx].signal("assign_task", task)

        # E1: no "Query Worker Status" here: workflow code cannot query; clients do

        # Wait for completion
        await asyncio.gather(*worker_handles)

        return {"completed_tasks": len(tasks)}


# --- running it ------------------------------------------------------------------


async def wait_for_status(
    handle: WorkflowHandle, check: str, expected: bool, deadline: float = 30.0
) -> dict:
    """Query a child until ``status[check] == expected``; the child may not exist yet."""
    started = time.monotonic()
    while True:
        try:
            status = await handle.query(ChildWorkerWorkflow.get_status)
            if status[check] == expected:
                return status
        except RPCError:
            pass  # not started yet, or its first workflow task is still to come
        if time.monotonic() - started > deadline:
            raise TimeoutError(f"{handle.id}: {check} is not {expected} after {deadline} s")
        await asyncio.sleep(0.02)


async def main(client: Client) -> dict:
    """Coordinate three tasks; pause the first child for a moment from the client.

    Returns the coordinator's result, every child's status while the first one was
    paused, the steps the first child did during the pause, and the steps per task.
    """
    run = uuid.uuid4().hex[:8]
    tasks = [{"task_id": f"{name}-{run}"} for name in ("invoices", "reminders", "reports")]
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[CoordinatorWorkflow, ChildWorkerWorkflow],
        activities=[process_task_step],
    ):
        handle = await client.start_workflow(
            CoordinatorWorkflow.run, tasks, id=f"coordinator-{run}", task_queue=TASK_QUEUE
        )
        children = [
            client.get_workflow_handle(f"{handle.id}-worker-{i}") for i in range(len(tasks))
        ]
        first, first_task = children[0], tasks[0]["task_id"]

        await wait_for_status(first, "has_task", True)
        await first.signal(ChildWorkerWorkflow.pause)
        await wait_for_status(first, "paused", True)
        statuses = [await wait_for_status(child, "has_task", True) for child in children]
        steps_when_paused = len(task_board.steps.get(first_task, []))
        print(f"paused {first.id} after {steps_when_paused} of 10 steps")
        print(f"statuses, queried by the client: {statuses}")
        await asyncio.sleep(0.5)
        steps_during_pause = len(task_board.steps.get(first_task, [])) - steps_when_paused
        print(f"steps done in the next 0.5 s: {steps_during_pause}")
        await first.signal(ChildWorkerWorkflow.resume)
        print(f"resumed {first.id}")
        result = await handle.result()

    steps = {task["task_id"]: task_board.steps.get(task["task_id"], []) for task in tasks}
    print(f"result: {result}; steps per task: {[len(done) for done in steps.values()]}")
    return {
        "result": result,
        "statuses": statuses,
        "steps_when_paused": steps_when_paused,
        "steps_during_pause": steps_during_pause,
        "steps": steps,
    }


if __name__ == "__main__":
    run_standalone(main, __doc__)
