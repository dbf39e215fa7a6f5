"""5.4.1 Workflow Instance Variables: order state, read by queries, changed by signals.

The chapter's code with its missing imports added (E15). The chapter does not show
``fetch_order_items``; here it asks the fake shop in ``fake_services.py``: order
A-100 costs 59.75 and goes straight through, order B-200 costs 1249.50 and waits
until a manager approves it.

    python examples/s5_4_1_stateful_order.py [--target sqlite:///orders.db | localhost:7233]
"""

# ruff: noqa: UP006, UP035 - the chapter spells the types typing.Dict and typing.List

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta  # E15: timedelta is used but not imported in the chapter
from typing import Dict, List

from _cli import run_standalone
from fake_services import shop
from temporalio import activity, workflow

from ablauf import Client, Worker

TASK_QUEUE = "s5-4-1-stateful-orders"


@activity.defn
async def fetch_order_items(order_id: str) -> list[dict]:
    return await shop.items_for(order_id)


# --- the chapter's code ----------------------------------------------------------


@dataclass
class OrderState:
    order_id: str
    items: List[dict] = field(default_factory=list)
    total_amount: float = 0.0
    status: str = "pending"
    approvals: Dict[str, bool] = field(default_factory=dict)


@workflow.defn
class StatefulOrderWorkflow:
    def __init__(self) -> None:
        # Instance variables hold the state
        self.state = OrderState(order_id="")
        self.processing_complete = False

    @workflow.run
    async def run(self, order_id: str) -> OrderState:
        self.state.order_id = order_id
        self.state.status = "fetching_items"

        # The state persists across activities
        items = await workflow.execute_activity(
            fetch_order_items,
            order_id,
            start_to_close_timeout=timedelta(minutes=1),
        )
        self.state.items = items
        self.state.total_amount = sum(item["price"] for item in items)

        # Branch on the state
        if self.state.total_amount > 1000:
            self.state.status = "awaiting_approval"
            await workflow.wait_condition(lambda: "manager" in self.state.approvals)

        self.state.status = "approved"
        return self.state

    @workflow.signal
    def approve(self, approver: str) -> None:
        """The signal updates the state."""
        self.state.approvals[approver] = True

    @workflow.query
    def get_state(self) -> OrderState:
        """The query reads the state (read-only!)."""
        return self.state

    @workflow.query
    def get_total(self) -> float:
        return self.state.total_amount


# --- running it ------------------------------------------------------------------


async def main(client: Client) -> dict:
    """Run a small and a large order; returns both final states and what the queries saw."""
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[StatefulOrderWorkflow],
        activities=[fetch_order_items],
    ):
        small = await client.execute_workflow(
            StatefulOrderWorkflow.run,
            "A-100",
            id=f"stateful-order-A-100-{uuid.uuid4().hex[:8]}",
            task_queue=TASK_QUEUE,
        )
        print(f"A-100: {small.total_amount:.2f} -> {small.status}, no approval needed")

        handle = await client.start_workflow(
            StatefulOrderWorkflow.run,
            "B-200",
            id=f"stateful-order-B-200-{uuid.uuid4().hex[:8]}",
            task_queue=TASK_QUEUE,
        )
        waiting = await handle.query(StatefulOrderWorkflow.get_state)
        while waiting.status != "awaiting_approval":
            await asyncio.sleep(0.05)
            waiting = await handle.query(StatefulOrderWorkflow.get_state)
        total = await handle.query(StatefulOrderWorkflow.get_total)
        print(f"B-200: query get_state -> {waiting.status!r}, get_total -> {total:.2f}")
        await handle.signal(StatefulOrderWorkflow.approve, "manager")
        print("B-200: the manager sent the approve signal")
        large = await handle.result()
    print(f"B-200: {large.total_amount:.2f} -> {large.status}, approvals {large.approvals}")
    return {"small": small, "large": large, "large_while_waiting": waiting, "large_total": total}


if __name__ == "__main__":
    run_standalone(main, __doc__)
