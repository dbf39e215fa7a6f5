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


def test_demo_runs_every_section(target: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--target", target],
        capture_output=True,
        text=True,
        timeout=110,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    for section in ["5.1.2", "5.2.1", "5.2.2", "5.3.1", "5.3.2", "5.3.4"]:
        assert f"=== {section} " in completed.stdout
    for section in ["5.4.1", "5.4.2", "5.5.1", "5.5.2"]:
        assert f"=== {section} " in completed.stdout
    assert "all sections done" in completed.stdout
