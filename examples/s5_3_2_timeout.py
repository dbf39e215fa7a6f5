"""5.3.2 Timeout Patterns: wait for an approval signal, at most 24 hours.

The chapter's workflow with its missing imports added (E15). The chapter does not
show ``reject_order``; here it tells the fake order desk in ``fake_services.py``.

The example shows the approve path: the run waits, a client sends ``approve``, the
run returns "approved". The other path, no signal for 24 hours, rejects the order;
showing it takes either 24 hours or a test environment that skips time, and is
left to the tests (the workflow code stays the same in both cases).

    python examples/s5_3_2_timeout.py [--target sqlite:///approvals.db | localhost:7233]
"""

import asyncio  # E15: asyncio and timedelta are used but not imported in the chapter
import uuid
from datetime import timedelta

from _cli import run_standalone
from fake_services import order_desk
from temporalio import activity, workflow

from ablauf import Client, Worker

TASK_QUEUE = "s5-3-2-timeout"


@activity.defn
async def reject_order(order_id: str) -> None:
    await order_desk.reject(order_id)


# --- the chapter's code ----------------------------------------------------------


@workflow.defn
class TimeoutWorkflow:
    def __init__(self) -> None:
        self.approval_received = False

    @workflow.run
    async def run(self, order_id: str) -> dict:
        workflow.logger.info(f"Awaiting approval for order {order_id}")

        try:
            # Wait for the approval signal or the timeout
            await workflow.wait_condition(
                lambda: self.approval_received,
                timeout=timedelta(hours=24),  # 24-hour timeout
            )

            return {"status": "approved", "order_id": order_id}

        except asyncio.TimeoutError:  # noqa: UP041 - the chapter's spelling, same class since 3.11
            workflow.logger.warning(f"Approval timeout for order {order_id}")

            # Reject automatically after the timeout
            await workflow.execute_activity(
                reject_order,
                order_id,
                start_to_close_timeout=timedelta(seconds=30),
            )

            return {"status": "rejected_timeout", "order_id": order_id}

    @workflow.signal
    def approve(self) -> None:
        self.approval_received = True


# --- running it ------------------------------------------------------------------


async def main(client: Client) -> dict:
    """Start a run for order 4711 and approve it; returns the workflow's result."""
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[TimeoutWorkflow],
        activities=[reject_order],
    ):
        handle = await client.start_workflow(
            TimeoutWorkflow.run,
            "order-4711",
            id=f"approval-order-4711-{uuid.uuid4().hex[:8]}",
            task_queue=TASK_QUEUE,
        )
        description = await handle.describe()
        print(f"{handle.id} is {description.status.name if description.status else None}")
        await handle.signal(TimeoutWorkflow.approve)
        print("sent the approve signal")
        result = await handle.result()
    print(f"result: {result}")
    return result


if __name__ == "__main__":
    run_standalone(main, __doc__)
