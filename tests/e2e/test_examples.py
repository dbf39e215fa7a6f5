"""Each example of chapter 5 runs its scenario end to end and returns what the chapter promises.

The examples are imported inside the tests so that one broken example fails its own
test only. Not covered: the 24-hour timeout path of 5.3.2 (``TimeoutWorkflow``
rejecting the order when no approval arrives) and the one-hour path of 5.3.4; both
need a test environment that skips time, without changing the workflow code.
"""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PAGE_TITLES = {
    "https://example.com/durable-execution": "Durable Execution",
    "https://example.com/activities": "Activities",
    "https://example.com/timers": "Timers",
}


async def test_5_1_2_order_charges_the_card_and_sends_the_confirmation(client: Any) -> None:
    import s5_1_2_order
    from fake_services import Email, email_service

    result = await s5_1_2_order.main(client)

    assert result == {"transaction_id": "txn-4242-12990", "status": "completed"}
    assert email_service.outbox[-1] == Email(
        to="ada@example.com",
        subject="Order Confirmation",
        body="Your order is confirmed. Transaction: txn-4242-12990",
    )


async def test_5_1_3_child_workflows_partition_separate_services_and_map_hosts(
    client: Any,
) -> None:
    import s5_1_3_children

    result = await s5_1_3_children.main(client)

    assert result["batches"] == {"total_batches": 5, "total_processed": 100}
    batch_items = result["batch_items"]
    assert [child.rsplit("-", 1)[1] for child in batch_items] == ["0", "1", "2", "3", "4"]
    assert list(batch_items.values()) == [list(range(20 * i, 20 * i + 20)) for i in range(5)]
    order_id = result["order_id"]
    assert result["fulfillment"] == {
        "inventory": {"reservation": f"reservation-{order_id}", "task_queue": "inventory-service"},
        "shipping": {"parcel": f"parcel-{order_id}", "task_queue": "shipping-service"},
    }
    assert result["services"] == {"inventory": "inventory-service", "shipping": "shipping-service"}
    assert result["upgrade"] == {"upgraded": 3}  # web-1 is on the list twice, upgraded once
    upgraded = ["stop", "upgrade", "start"]
    assert result["host_operations"] == {"web-1": upgraded, "web-2": upgraded, "db-1": upgraded}


async def test_5_1_4_coordinator_signals_tasks_and_the_client_queries_the_children(
    client: Any,
) -> None:
    import s5_1_4_parent_child

    result = await s5_1_4_parent_child.main(client)

    assert result["result"] == {"completed_tasks": 3}
    assert result["statuses"] == [
        {"has_task": True, "paused": True},
        {"has_task": True, "paused": False},
        {"has_task": True, "paused": False},
    ]
    assert result["steps_when_paused"] < 10
    assert result["steps_during_pause"] <= 1  # at most the step that was running
    assert list(result["steps"].values()) == [list(range(10))] * 3


async def test_5_2_1_parallel_results_come_in_input_order(client: Any) -> None:
    import s5_2_1_parallel

    results = await s5_2_1_parallel.main(client)

    assert results == [{"url": url, "title": title} for url, title in PAGE_TITLES.items()]


async def test_5_2_2_fan_out_fan_in_aggregates_scraped_data(client: Any) -> None:
    import s5_2_2_fan_out_fan_in

    result = await s5_2_2_fan_out_fan_in.main(client)

    assert result == {
        "total_pages": 3,
        "total_words": 32,
        "aggregated_insights": {"longest_page": "Durable Execution", "average_words": 10.7},
    }


async def test_5_2_3_two_fan_outs_at_once_with_their_own_child_ids(
    client: Any,
) -> None:
    import s5_2_3_scalable_fan_out

    result = await s5_2_3_scalable_fan_out.main(client)

    parents = list(result["results"])
    assert list(result["results"].values()) == [{"batches_processed": 4, "total_items": 100}] * 2
    assert result["children"] == {
        f"batch-{parent}-{i}": list(range(25 * i, 25 * i + 25))
        for parent in parents
        for i in range(4)
    }


async def test_5_3_1_first_timer_fires_and_the_30_day_timer_is_pending(client: Any) -> None:
    import s5_3_1_delay

    result = await s5_3_1_delay.main(client)

    assert result["status"] == "RUNNING"
    assert result["history_length"] == 10  # ... TimerFired, WorkflowTask x3, TimerStarted
    assert result["waited_seconds"] >= 10


async def test_5_3_2_timeout_workflow_is_approved_by_signal(client: Any) -> None:
    import s5_3_2_timeout
    from fake_services import order_desk

    result = await s5_3_2_timeout.main(client)

    assert result == {"status": "approved", "order_id": "order-4711"}
    assert "order-4711" not in order_desk.rejected


async def test_5_3_3_daily_report_and_hourly_sync_schedules(client: Any) -> None:
    from datetime import timedelta

    import s5_3_3_schedules
    from temporalio.service import RPCError

    result = await s5_3_3_schedules.main(client)

    daily, hourly = result["next_daily"], result["next_hourly"]
    assert (daily[0].hour, daily[0].minute, daily[0].second) == (9, 0, 0)
    assert daily == [daily[0] + timedelta(days=i) for i in range(10)]
    assert (hourly[0].minute, hourly[0].second) == (0, 0)
    assert hourly == [hourly[0] + timedelta(hours=i) for i in range(10)]
    assert result["report_id"].startswith("daily-report-")
    assert result["report"].startswith("daily report for ")
    assert len(result["sync_ids"]) == 3
    assert all(i.startswith("hourly-sync-") and i.endswith(":00:00Z") for i in result["sync_ids"])
    assert all(sync.startswith("synced at ") for sync in result["syncs"])
    for schedule_id in s5_3_3_schedules.SCHEDULE_IDS:  # the example cleans up
        with pytest.raises(RPCError):
            await client.get_schedule_handle(schedule_id).describe()


async def test_5_3_4_signal_cancels_the_timer(client: Any) -> None:
    import s5_3_4_cancellable_timer

    result = await s5_3_4_cancellable_timer.main(client)

    assert result == "Timer was cancelled"


async def test_5_4_1_large_order_waits_for_the_manager(client: Any) -> None:
    import s5_4_1_stateful_order
    from s5_4_1_stateful_order import OrderState

    result = await s5_4_1_stateful_order.main(client)

    assert result["small"] == OrderState(
        order_id="A-100",
        items=[{"sku": "book", "price": 24.5}, {"sku": "lamp", "price": 35.25}],
        total_amount=59.75,
        status="approved",
        approvals={},
    )
    large_items = [{"sku": "laptop", "price": 999.0}, {"sku": "monitor", "price": 250.5}]
    assert result["large_while_waiting"] == OrderState(
        order_id="B-200",
        items=large_items,
        total_amount=1249.5,
        status="awaiting_approval",
        approvals={},
    )
    assert result["large_total"] == 1249.5
    assert result["large"] == OrderState(
        order_id="B-200",
        items=large_items,
        total_amount=1249.5,
        status="approved",
        approvals={"manager": True},
    )


async def test_5_4_2_monitor_process_follows_the_progress(client: Any, target: str) -> None:
    import s5_4_2_progress

    result = await s5_4_2_progress.main(client, target)

    assert result["result"] == {"completed": 20}
    assert result["monitor_exit_code"] == 0, result["monitor_output"]
    output = result["monitor_output"]
    assert output.startswith("Phase: ")
    assert "Progress: 100.00%\nStep: 20/20\nETA: " in output
    assert output.endswith("Workflow complete!\n")


async def test_5_5_1_failed_items_are_counted_and_the_workflow_goes_on(client: Any) -> None:
    import s5_5_1_error_handling

    result = await s5_5_1_error_handling.main(client)

    assert result["result"] == {"successful": 3, "failed": 2, "total": 5}
    assert result["attempts"] == {
        "item-1": 1,
        "item-2-flaky": 2,  # failed once, then succeeded
        "item-3-invalid": 1,  # InvalidInput is non-retryable
        "item-4-offline": 3,  # maximum_attempts=3
        "item-5": 1,
    }


async def test_5_5_2_saga_books_or_rolls_back_in_reverse_order(client: Any) -> None:
    import s5_5_2_saga

    result = await s5_5_2_saga.main(client)

    lisbon = result["booking_ids"]["Lisbon"]
    atlantis = result["booking_ids"]["Atlantis"]
    assert result["booked"] == {
        "status": "success",
        "car": f"car-{lisbon}",
        "hotel": f"hotel-{lisbon}",
        "flight": f"flight-{lisbon}",
    }
    assert result["rolled_back"] == {
        "status": "rolled_back",
        "error": "NoAvailabilityError: no flights to Atlantis",
    }
    assert result["reserved"] == {lisbon: ["car", "hotel", "flight"], atlantis: []}
    assert result["atlantis_log"] == [
        f"booked car-{atlantis}",
        f"booked hotel-{atlantis}",
        f"cancelled hotel-{atlantis}",
        f"cancelled car-{atlantis}",
    ]


async def test_5_6_1_long_running_workflow_continues_as_new_at_10_000_items(client: Any) -> None:
    import s5_6_1_long_running

    result = await s5_6_1_long_running.main(client)

    items = result["items"]
    assert items == list(range(9_900, 9_900 + len(items)))  # each item once, in order
    first, second = result["runs"]
    assert first == {
        "first_item": 9_900,
        "items": 100,
        "history_length": 605,
        "status": "CONTINUED_AS_NEW",
    }
    assert second["first_item"] == 10_000
    assert second["items"] >= 20
    assert second["status"] == "CANCELED"


@pytest.mark.only_engine(
    "ablauf", "3,000 activities one after another take over two minutes on a Temporal dev server"
)
async def test_5_6_1_thousands_of_items_through_many_runs(client: Any) -> None:
    import s5_6_1_long_running

    result = await s5_6_1_long_running.main(client, start=None, items=3_000)

    items = result["items"]
    assert len(items) >= 3_000
    assert items == list(range(len(items)))
    *continued, last = result["runs"]
    # Temporal suggests continue-as-new at 4,096 events: after the 7th batch of 100 items.
    assert continued == [
        {
            "first_item": 700 * run,
            "items": 700,
            "history_length": 4_205,
            "status": "CONTINUED_AS_NEW",
        }
        for run in range(4)
    ]
    assert last["first_item"] == 2_800
    assert last["status"] == "CANCELED"


async def test_5_6_2_account_books_every_transaction_across_continue_as_new(client: Any) -> None:
    import s5_6_2_account_entity

    result = await s5_6_2_account_entity.main(client)

    assert result["count"] == result["expected_count"] == 1_040
    assert result["balance"] == result["expected_balance"] == 1_018.5
    assert result["booked_per_run"] == [60, 40]  # continued as new at 1,000
    assert result["fresh_account"] == {
        "result": None,
        "status": "COMPLETED",
        "continued_as_new": False,  # E9
    }


@pytest.mark.only_engine(
    "ablauf", "3,000 transactions one after another take over two minutes on a Temporal dev server"
)
async def test_5_6_2_thousands_of_transactions_through_many_runs(client: Any) -> None:
    import s5_6_2_account_entity

    result = await s5_6_2_account_entity.main(client, opening_count=0, transactions=3_000)

    assert result["count"] == result["expected_count"] == 3_000
    assert result["balance"] == result["expected_balance"]
    assert result["booked_per_run"] == [1_000, 1_000, 1_000]


def test_demo_runs_every_section(target: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--target", target],
        capture_output=True,
        text=True,
        timeout=110,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    for section in ["5.1.2", "5.1.3", "5.1.4", "5.2.1", "5.2.2", "5.2.3", "5.3.1", "5.3.2"]:
        assert f"=== {section} " in completed.stdout
    for section in ["5.3.3", "5.3.4", "5.4.1", "5.4.2", "5.5.1", "5.5.2", "5.6.1", "5.6.2"]:
        assert f"=== {section} " in completed.stdout
    assert "all sections done" in completed.stdout
