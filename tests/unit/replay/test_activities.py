"""Activities: schedule commands, results, failures and the three cancellation types."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import RetryState
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutError,
    TimeoutType,
)

from .helpers import Run, app_error, kinds, value


@dataclass
class Order:
    item: str
    quantity: int


@activity.defn
async def reserve(order: Order) -> Order:
    return order


@activity.defn(name="charge-card")
async def charge(amount: int, currency: str) -> str:
    return f"{amount} {currency}"


@workflow.defn
class Schedules:
    @workflow.run
    async def run(self) -> list[object]:
        reserved = await workflow.execute_activity(
            reserve,
            Order("book", 2),
            start_to_close_timeout=timedelta(seconds=5),
            schedule_to_start_timeout=timedelta(seconds=1),
            heartbeat_timeout=timedelta(seconds=2),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                maximum_attempts=3,
                non_retryable_error_types=["Fatal"],
            ),
        )
        receipt = await workflow.execute_activity(
            "charge-card",
            args=[10, "EUR"],
            task_queue="payments",
            schedule_to_close_timeout=timedelta(minutes=1),
            activity_id="charge-1",
            summary="charge the card",
        )
        return [reserved, receipt]


def test_schedule_activity_commands_carry_every_option() -> None:
    run = Run(Schedules, task_queue="orders")
    first = run.task()
    assert kinds(first.commands) == ["SCHEDULE_ACTIVITY_TASK"]
    attrs = first.commands[0].schedule_activity_task_command_attributes
    assert attrs.activity_id == "1"
    assert attrs.activity_type.name == "reserve"
    assert attrs.task_queue.name == "orders"
    assert value(attrs.input.payloads[0]) == {"item": "book", "quantity": 2}
    assert attrs.start_to_close_timeout.ToTimedelta() == timedelta(seconds=5)
    assert attrs.schedule_to_start_timeout.ToTimedelta() == timedelta(seconds=1)
    assert attrs.heartbeat_timeout.ToTimedelta() == timedelta(seconds=2)
    assert not attrs.HasField("schedule_to_close_timeout")
    assert attrs.retry_policy.maximum_attempts == 3
    assert attrs.retry_policy.initial_interval.ToTimedelta() == timedelta(milliseconds=100)
    assert list(attrs.retry_policy.non_retryable_error_types) == ["Fatal"]

    run.complete_activity("1", Order("book", 2))
    second = run.task()
    assert kinds(second.commands) == ["SCHEDULE_ACTIVITY_TASK"]
    attrs = second.commands[0].schedule_activity_task_command_attributes
    assert attrs.activity_id == "charge-1"
    assert attrs.activity_type.name == "charge-card"
    assert attrs.task_queue.name == "payments"
    assert [value(p) for p in attrs.input.payloads] == [10, "EUR"]
    assert attrs.schedule_to_close_timeout.ToTimedelta() == timedelta(minutes=1)
    assert value(second.commands[0].user_metadata.summary) == "charge the card"

    run.complete_activity("charge-1", "10 EUR")
    third = run.task()
    result = third.commands[0].complete_workflow_execution_command_attributes.result.payloads[0]
    # The result type hint of the activity turned the dict back into an Order.
    assert value(result) == [{"item": "book", "quantity": 2}, "10 EUR"]
    assert run.replay().failure is None
    run.close()


@workflow.defn
class NoTimeout:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity("anything")


def test_an_activity_needs_a_close_timeout() -> None:
    run = Run(NoTimeout)
    outcome = run.task()
    assert outcome.failure is not None
    assert "start_to_close_timeout or schedule_to_close_timeout" in outcome.failure.message
    assert not outcome.nondeterminism


@workflow.defn
class CatchesFailures:
    @workflow.run
    async def run(self) -> list[str]:
        seen = []
        for activity_id in ("fails", "times-out"):
            try:
                await workflow.execute_activity(
                    "work", activity_id=activity_id, start_to_close_timeout=timedelta(seconds=1)
                )
            except ActivityError as err:
                cause = err.cause
                assert isinstance(cause, ApplicationError | TimeoutError)
                detail = (
                    f"{cause.type}:{cause.message}:{cause.details[0]['detail']}"
                    if isinstance(cause, ApplicationError)
                    else f"timeout:{cause.type.name if cause.type else None}"
                )
                state = err.retry_state.name if err.retry_state else None
                seen.append(f"{err.activity_id}/{err.activity_type}/{state}/{detail}")
        return seen


def test_activity_failures_reach_the_workflow_as_activity_errors() -> None:
    run = Run(CatchesFailures)
    run.task()
    run.fail_activity("fails", app_error("boom"), RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE)
    run.task()
    run.time_out_activity("times-out")
    outcome = run.task()
    result = value(
        outcome.commands[0].complete_workflow_execution_command_attributes.result.payloads[0]
    )
    assert result == [
        "fails/work/NON_RETRYABLE_FAILURE/MyError:boom:1",
        "times-out/work/TIMEOUT/timeout:START_TO_CLOSE",
    ]
    assert TimeoutType.START_TO_CLOSE.name == "START_TO_CLOSE"
    assert run.replay().failure is None
    run.close()


@workflow.defn
class Cancels:
    def __init__(self) -> None:
        self.log: list[str] = []

    @workflow.run
    async def run(self, cancellation_type: str) -> list[str]:
        kind = workflow.ActivityCancellationType[cancellation_type]
        handle = workflow.start_activity(
            "slow", start_to_close_timeout=timedelta(minutes=1), cancellation_type=kind
        )
        await workflow.sleep(1)
        handle.cancel()
        try:
            await handle
            self.log.append("completed")
        except ActivityError as err:
            assert isinstance(err.cause, CancelledError)
            self.log.append(f"cancelled:{err.retry_state.name if err.retry_state else None}")
        return self.log


def _cancel_setup(kind: str) -> Run:
    run = Run(Cancels, kind)
    assert kinds(run.task().commands) == ["SCHEDULE_ACTIVITY_TASK", "START_TIMER"]
    run.start_activity("1")
    run.fire_timer("1")
    return run


def test_try_cancel_resolves_at_once_with_the_cancel_sent() -> None:
    run = _cancel_setup("TRY_CANCEL")
    outcome = run.task()
    assert kinds(outcome.commands) == [
        "REQUEST_CANCEL_ACTIVITY_TASK",
        "COMPLETE_WORKFLOW_EXECUTION",
    ]
    scheduled = run.activities["1"]
    assert (
        outcome.commands[0].request_cancel_activity_task_command_attributes.scheduled_event_id
        == scheduled
    )
    assert value(
        outcome.commands[1].complete_workflow_execution_command_attributes.result.payloads[0]
    ) == ["cancelled:CANCEL_REQUESTED"]
    assert run.replay().failure is None
    run.close()


def test_wait_cancellation_completed_waits_for_the_canceled_event() -> None:
    run = _cancel_setup("WAIT_CANCELLATION_COMPLETED")
    assert kinds(run.task().commands) == ["REQUEST_CANCEL_ACTIVITY_TASK"]
    run.cancel_activity("1", start=False)
    outcome = run.task()
    assert kinds(outcome.commands) == ["COMPLETE_WORKFLOW_EXECUTION"]
    assert run.replay().failure is None
    run.close()


def test_wait_cancellation_completed_takes_a_late_completion() -> None:
    run = _cancel_setup("WAIT_CANCELLATION_COMPLETED")
    assert kinds(run.task().commands) == ["REQUEST_CANCEL_ACTIVITY_TASK"]
    run.complete_activity("1", "done anyway", start=False)
    outcome = run.task()
    assert value(
        outcome.commands[0].complete_workflow_execution_command_attributes.result.payloads[0]
    ) == ["completed"]
    run.close()


def test_abandon_sends_nothing_and_resolves_at_once() -> None:
    run = _cancel_setup("ABANDON")
    outcome = run.task()
    assert kinds(outcome.commands) == ["COMPLETE_WORKFLOW_EXECUTION"]
    assert run.replay().failure is None
    run.close()


@workflow.defn
class CancelBeforeSent:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity("never", start_to_close_timeout=timedelta(seconds=1))
        handle.cancel()
        try:
            await handle
        except asyncio.CancelledError:
            return "task cancelled"
        return "not cancelled"


def test_an_activity_cancelled_before_it_was_sent_drops_its_command() -> None:
    run = Run(CancelBeforeSent)
    outcome = run.task()
    assert kinds(outcome.commands) == ["COMPLETE_WORKFLOW_EXECUTION"]
    assert value(
        outcome.commands[0].complete_workflow_execution_command_attributes.result.payloads[0]
    ) == ("task cancelled")
    assert run.replay().failure is None
    run.close()


@workflow.defn
class Gathers:
    @workflow.run
    async def run(self) -> list[str]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        charge, args=[i, "EUR"], start_to_close_timeout=timedelta(seconds=5)
                    )
                    for i in range(3)
                )
            )
        )


def test_gather_schedules_in_order_and_returns_in_argument_order() -> None:
    run = Run(Gathers)
    outcome = run.task()
    ids = [c.schedule_activity_task_command_attributes.activity_id for c in outcome.commands]
    assert ids == ["1", "2", "3"]
    # Results arrive in reverse; gather still returns them in argument order.
    run.complete_activity("3", "c")
    run.complete_activity("1", "a")
    assert run.task().commands == []
    run.complete_activity("2", "b")
    outcome = run.task()
    assert value(
        outcome.commands[0].complete_workflow_execution_command_attributes.result.payloads[0]
    ) == [
        "a",
        "b",
        "c",
    ]
    assert run.replay().failure is None
    run.close()


def test_activity_ids_and_types_must_match_on_replay() -> None:
    run = Run(Gathers)
    run.task()
    scheduled = run.history.events[run.activities["2"] - 1]
    scheduled.activity_task_scheduled_event_attributes.activity_type.name = "other"
    outcome = run.replay()
    assert outcome.nondeterminism
    assert outcome.failure is not None
    assert outcome.failure.message == (
        "[TMPRL1100] Nondeterminism error: Activity type of scheduled event 'other' does not "
        "match activity type of activity command 'charge-card'"
    )
    run.close()


@pytest.mark.parametrize("kind", ["TRY_CANCEL", "WAIT_CANCELLATION_COMPLETED", "ABANDON"])
def test_cancellation_types_replay_cleanly(kind: str) -> None:
    run = _cancel_setup(kind)
    run.task()
    assert run.replay().failure is None
    run.close()
