"""5.1.3 Wann Child Workflows nutzen (when to use child workflows): partitioning, service
separation, one child per host.

The chapter's three use cases, corrected where they fail on Temporal:
- E10: ``HostUpgradeWorkflow`` says that several calls with the same id are
  de-duplicated. They are not: a second child with a running child's id is refused,
  the coordinator fails with "Workflow execution already started", and the default
  parent close policy terminates the first upgrade. The coordinator de-duplicates
  the host list.
- E15: ``asyncio`` and ``timedelta`` are used but not imported.

One change to the chapter's code, to keep the example quick: ``BatchCoordinatorWorkflow``
takes the batch size as a second argument. Its default is the chapter's 1000; the
scenario processes 100 items in batches of 20, so five children run 20 activities each
(a batch of 1000 activities takes about ten seconds on a Temporal dev server).

The chapter does not show the activities nor ``InventoryWorkflow`` and ``ShippingWorkflow``;
here they call the fakes in ``fake_services.py``. The two services run on their own task
queues, "inventory-service" and "shipping-service", each served by a worker of its own,
as separate worker pools would be.

    python examples/s5_1_3_children.py [--target sqlite:///children.db | localhost:7233]
"""

import asyncio  # E15: asyncio and timedelta are used but not imported in the chapter
import uuid
from datetime import timedelta

from _cli import run_standalone
from fake_services import carrier, datacenter, item_processor, warehouse
from temporalio import activity, workflow
from temporalio.workflow import ParentClosePolicy

from ablauf import Client, Worker

TASK_QUEUE = "s5-1-3-children"
HOSTS = ["web-1", "web-2", "db-1", "web-1"]  # web-1 twice: the coordinator upgrades it once


@activity.defn
async def process_single_item(item_id: int) -> None:
    info = activity.info()
    await item_processor.process(info.workflow_id, info.workflow_run_id, item_id)


@activity.defn
async def reserve_inventory(order_id: str) -> str:
    return await warehouse.reserve(order_id, activity.info().task_queue)


@activity.defn
async def ship_order(order_id: str) -> str:
    return await carrier.ship(order_id, activity.info().task_queue)


@activity.defn
async def stop_host(hostname: str) -> None:
    await datacenter.operate("stop", hostname)


@activity.defn
async def upgrade_host(hostname: str) -> None:
    await datacenter.operate("upgrade", hostname)


@activity.defn
async def start_host(hostname: str) -> None:
    await datacenter.operate("start", hostname)


@workflow.defn
class InventoryWorkflow:
    """Reserves an order's goods; runs on the inventory service's workers."""

    @workflow.run
    async def run(self, order_id: str) -> dict:
        reservation = await workflow.execute_activity(
            reserve_inventory, order_id, start_to_close_timeout=timedelta(seconds=30)
        )
        return {"reservation": reservation, "task_queue": workflow.info().task_queue}


@workflow.defn
class ShippingWorkflow:
    """Ships an order; runs on the shipping service's workers."""

    @workflow.run
    async def run(self, order_id: str) -> dict:
        parcel = await workflow.execute_activity(
            ship_order, order_id, start_to_close_timeout=timedelta(seconds=30)
        )
        return {"parcel": parcel, "task_queue": workflow.info().task_queue}


# --- the chapter's code: use case 1, workload partitioning --------------------------


@workflow.defn
class BatchCoordinatorWorkflow:
    """
    Coordinates the processing of 100,000 items.
    Uses child workflows for partitioning.
    """

    @workflow.run
    async def run(self, total_items: int, batch_size: int = 1000) -> dict:
        # The chapter sets batch_size = 1000 here; the scenario passes a smaller one.
        num_batches = (total_items + batch_size - 1) // batch_size

        workflow.logger.info(f"Processing {total_items} items in {num_batches} batches")

        # Start the child workflows (max ~1000)
        batch_handles = []
        for i in range(num_batches):
            start_idx = i * batch_size
            end_idx = min((i + 1) * batch_size, total_items)

            handle = await workflow.start_child_workflow(
                BatchProcessorWorkflow.run,
                args=[{"start": start_idx, "end": end_idx}],
                id=f"batch-{workflow.info().workflow_id}-{i}",
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
            batch_handles.append(handle)

        # Wait for all batches
        results = await asyncio.gather(*batch_handles)

        return {
            "total_batches": num_batches,
            "total_processed": sum(r["processed"] for r in results),
        }


@workflow.defn
class BatchProcessorWorkflow:
    """
    Processes a batch of ~1000 items.
    Each child workflow has its own event history.
    """

    @workflow.run
    async def run(self, params: dict) -> dict:
        # Run up to 1000 activities
        tasks = [
            workflow.execute_activity(
                process_single_item,
                item_id,
                start_to_close_timeout=timedelta(seconds=30),
            )
            for item_id in range(params["start"], params["end"])
        ]

        results = await asyncio.gather(*tasks)

        return {"processed": len(results)}


# --- the chapter's code: use case 2, service separation -----------------------------


@workflow.defn
class OrderFulfillmentWorkflow:
    """
    Coordinates several microservices via child workflows.
    """

    @workflow.run
    async def run(self, order_id: str) -> dict:
        # Child workflows in parallel, on different task queues
        inventory_handle = await workflow.start_child_workflow(
            InventoryWorkflow.run,
            args=[order_id],
            task_queue="inventory-service",  # Its own worker pool
            id=f"inventory-{order_id}",
        )

        shipping_handle = await workflow.start_child_workflow(
            ShippingWorkflow.run,
            args=[order_id],
            task_queue="shipping-service",  # Another worker pool
            id=f"shipping-{order_id}",
        )

        # Wait for both services
        inventory_result, shipping_result = await asyncio.gather(inventory_handle, shipping_handle)

        return {"inventory": inventory_result, "shipping": shipping_result}


# --- the chapter's code: use case 3, resource mapping -------------------------------


@workflow.defn
class HostUpgradeCoordinatorWorkflow:
    """
    Upgrades several hosts - one child workflow per host.
    """

    @workflow.run
    async def run(self, hostnames: list[str]) -> dict:
        # Each hostname maps to its own child workflow,
        # which guarantees serialized operations per host
        upgrade_handles = []

        for hostname in dict.fromkeys(hostnames):  # E10: a duplicate child id is refused
            handle = await workflow.start_child_workflow(
                HostUpgradeWorkflow.run,
                args=[hostname],
                id=f"host-upgrade-{hostname}",  # Unique ID per host
            )
            upgrade_handles.append(handle)

        results = await asyncio.gather(*upgrade_handles)
        return {"upgraded": len(results)}


@workflow.defn
class HostUpgradeWorkflow:
    """
    Upgrades a single host.
    Multiple calls with the same ID are de-duplicated.
    """

    @workflow.run
    async def run(self, hostname: str) -> dict:
        # All operations for this host are serialized
        await workflow.execute_activity(
            stop_host, hostname, start_to_close_timeout=timedelta(minutes=5)
        )

        await workflow.execute_activity(
            upgrade_host, hostname, start_to_close_timeout=timedelta(minutes=30)
        )

        await workflow.execute_activity(
            start_host, hostname, start_to_close_timeout=timedelta(minutes=5)
        )

        return {"hostname": hostname, "status": "upgraded"}


# --- running it ------------------------------------------------------------------


async def main(client: Client, *, total_items: int = 100, batch_size: int = 20) -> dict:
    """Run the three coordinators one after another; returns what each did.

    ``batch_items`` maps each batch child's id to the items it processed (sorted),
    ``services`` the task queue the inventory and shipping activities ran on, and
    ``host_operations`` the datacenter's operations per host, in order.
    """
    run = uuid.uuid4().hex[:8]
    order_id = f"order-{run}"
    log_start = len(datacenter.log)
    async with (
        Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[
                BatchCoordinatorWorkflow,
                BatchProcessorWorkflow,
                OrderFulfillmentWorkflow,
                HostUpgradeCoordinatorWorkflow,
                HostUpgradeWorkflow,
            ],
            activities=[process_single_item, stop_host, upgrade_host, start_host],
        ),
        Worker(
            client,
            task_queue="inventory-service",
            workflows=[InventoryWorkflow],
            activities=[reserve_inventory],
        ),
        Worker(
            client,
            task_queue="shipping-service",
            workflows=[ShippingWorkflow],
            activities=[ship_order],
        ),
    ):
        coordinator_id = f"batch-coordinator-{run}"
        batches = await client.execute_workflow(
            BatchCoordinatorWorkflow.run,
            args=[total_items, batch_size],
            id=coordinator_id,
            task_queue=TASK_QUEUE,
        )
        batch_items = item_processor.by_workflow(f"batch-{coordinator_id}-")
        print(f"partitioning: {batches}")
        print(f"  items per child: {[len(items) for items in batch_items.values()]}")

        fulfillment = await client.execute_workflow(
            OrderFulfillmentWorkflow.run, order_id, id=f"fulfillment-{run}", task_queue=TASK_QUEUE
        )
        services = {
            "inventory": warehouse.reservations[order_id],
            "shipping": carrier.shipments[order_id],
        }
        print(
            f"service separation: {fulfillment['inventory']['reservation']} from "
            f"{fulfillment['inventory']['task_queue']!r}, {fulfillment['shipping']['parcel']} "
            f"from {fulfillment['shipping']['task_queue']!r}"
        )

        upgrade = await client.execute_workflow(
            HostUpgradeCoordinatorWorkflow.run,
            HOSTS,
            id=f"host-upgrade-coordinator-{run}",
            task_queue=TASK_QUEUE,
        )
        host_operations: dict[str, list[str]] = {}
        for operation, host in datacenter.log[log_start:]:
            host_operations.setdefault(host, []).append(operation)
        print(f"one child per host: {upgrade} for {HOSTS}")
        for host, operations in host_operations.items():
            print(f"  {host}: {', '.join(operations)}")

    return {
        "batches": batches,
        "batch_items": batch_items,
        "fulfillment": fulfillment,
        "order_id": order_id,
        "services": services,
        "upgrade": upgrade,
        "host_operations": host_operations,
    }


if __name__ == "__main__":
    run_standalone(main, __doc__)
