"""Heartbeat timeouts, activity cancellation types, and ``asyncio.wait_for`` on activities."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError, TimeoutError
from temporalio.workflow import ActivityCancellationType

from ablauf import Client, Worker

log: dict[str, list[str]] = {}


@activity.defn
async def stalls_once(key: str) -> list[Any]:
    info = activity.info()
    activity.heartbeat("step", info.attempt * 10)
    if info.attempt == 1:
        await asyncio.sleep(10)  # no more heartbeats: the heartbeat timeout ends this attempt
    return [info.attempt, list(info.heartbeat_details)]


@activity.defn
async def stalls(key: str) -> None:
    activity.heartbeat(7)
    await asyncio.sleep(10)


@activity.defn
async def cleans_up(key: str, swallow: bool, steps: int, cleanup: float) -> str:
    log[key].append("started")
    try:
        for _ in range(steps):
            activity.heartbeat()
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        log[key].append("cancel seen")
        await asyncio.sleep(cleanup)
        log[key].append("cleaned up")
        if swallow:
            return "finished anyway"
        raise
    log[key].append("finished")
    return "finished"


@activity.defn
async def mark(key: str, entry: str) -> None:
    log[key].append(entry)


@workflow.defn
class Cancels:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, kind: str, key: str) -> Any:
        if kind == "heartbeat_retry":
            return await workflow.execute_activity(
                stalls_once,
                key,
                start_to_close_timeout=timedelta(seconds=30),
                heartbeat_timeout=timedelta(seconds=1),
            )
        if kind == "heartbeat_final":
            try:
                await workflow.execute_activity(
                    stalls,
                    key,
                    start_to_close_timeout=timedelta(seconds=30),
                    heartbeat_timeout=timedelta(seconds=1),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            except ActivityError as err:
                assert isinstance(err.cause, TimeoutError)
                return {
                    "retry_state": err.retry_state.name if err.retry_state else None,
                    "timeout_type": err.cause.type.name if err.cause.type else None,
                    "last_heartbeat_details": list(err.cause.last_heartbeat_details),
                }
            return None
        if kind.startswith("wait_for"):
            try:
                return await asyncio.wait_for(
                    workflow.execute_activity(
                        cleans_up,
                        # The short wait's activity must outlast the cancel: on the dev
                        # server that takes the timer's 1 s tick and a heartbeat round trip.
                        args=[key, False, 200 if kind == "wait_for_short" else 30, 0.0],
                        start_to_close_timeout=timedelta(seconds=30),
                        heartbeat_timeout=timedelta(seconds=1),
                    ),
                    timeout=0.3 if kind == "wait_for_short" else 10,
                )
            except (builtins.TimeoutError, ActivityError) as err:
                return [type(err).__name__, type(err.__cause__).__name__]
        handle = workflow.start_activity(
            cleans_up,
            args=[key, kind == "swallow", 50 if kind == "abandon" else 200, 0.5],
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=1),
            cancellation_type={
                "try": ActivityCancellationType.TRY_CANCEL,
                "wait": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                "swallow": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                "abandon": ActivityCancellationType.ABANDON,
            }[kind],
        )
        await workflow.sleep(0.3)
        handle.cancel()
        try:
            outcome: Any = await handle
        except ActivityError as err:
            outcome = {
                "error": type(err.cause).__name__,
                "cancelled": isinstance(err.cause, CancelledError),
                "retry_state": err.retry_state.name if err.retry_state else None,
            }
        await workflow.execute_activity(
            mark,
            args=[key, "workflow saw the outcome"],
            start_to_close_timeout=timedelta(seconds=5),
        )
        await workflow.wait_condition(lambda: self.done)
        return outcome

    @workflow.signal
    def finish(self) -> None:
        self.done = True


async def until(check: Callable[[], bool], seconds: float = 30) -> None:
    # Generous: a dev server loaded by the rest of the suite can take many seconds.
    for _ in range(int(seconds * 50)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def run(
    client: Client, task_queue: str, kind: str, settle: str | None = None, linger: bool = False
) -> Any:
    log[task_queue] = []
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[Cancels],
        activities=[stalls_once, stalls, cleans_up, mark],
    ):
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            Cancels.run, args=[kind, task_queue], id=f"c-{kind}-{task_queue}", task_queue=task_queue
        )
        if settle is not None:
            # Both the workflow and the activity are done before the run may end.
            await until(lambda: {settle, "workflow saw the outcome"} <= set(log[task_queue]))
            await handle.signal(Cancels.finish)
        result = await handle.result()
        if linger:
            # The activity learns of the cancel after the run has closed; give its
            # report time to reach the server before the worker stops.
            await until(lambda: "cancel seen" in log[task_queue], seconds=30)
            await asyncio.sleep(0.5)
        return result


CANCELLED = {"error": "CancelledError", "cancelled": True, "retry_state": "CANCEL_REQUESTED"}


def before(key: str, first: str, second: str) -> bool:
    return log[key].index(first) < log[key].index(second)


async def test_heartbeat_details_carry_over_to_the_next_attempt(
    client: Client, task_queue: str
) -> None:
    assert await run(client, task_queue, "heartbeat_retry") == [2, ["step", 10]]


async def test_heartbeat_timeout_reports_the_last_details(client: Client, task_queue: str) -> None:
    assert await run(client, task_queue, "heartbeat_final") == {
        "retry_state": "MAXIMUM_ATTEMPTS_REACHED",
        "timeout_type": "HEARTBEAT",
        "last_heartbeat_details": [7],
    }


async def test_try_cancel_resolves_at_once(client: Client, task_queue: str) -> None:
    result = await run(client, task_queue, "try", settle="cleaned up")
    assert result == CANCELLED
    assert before(task_queue, "workflow saw the outcome", "cleaned up")
    assert "cancel seen" in log[task_queue]


async def test_wait_cancellation_completed_waits_for_the_activity(
    client: Client, task_queue: str
) -> None:
    result = await run(client, task_queue, "wait", settle="cleaned up")
    assert result == CANCELLED
    assert before(task_queue, "cleaned up", "workflow saw the outcome")


async def test_wait_cancellation_completed_takes_a_late_result(
    client: Client, task_queue: str
) -> None:
    result = await run(client, task_queue, "swallow", settle="cleaned up")
    assert result == "finished anyway"
    assert before(task_queue, "cleaned up", "workflow saw the outcome")


async def test_abandon_never_tells_the_activity(client: Client, task_queue: str) -> None:
    result = await run(client, task_queue, "abandon", settle="finished")
    assert result == CANCELLED
    assert before(task_queue, "workflow saw the outcome", "finished")
    assert "cancel seen" not in log[task_queue]


async def test_wait_for_times_out_and_cancels_the_activity(client: Client, task_queue: str) -> None:
    # Python 3.11's wait_for cancels the activity and re-raises what the cancelled
    # activity raised: the ActivityError of a TRY_CANCEL, not a TimeoutError.
    result = await run(client, task_queue, "wait_for_short", linger=True)
    assert result == ["ActivityError", "CancelledError"]
    handle = client.get_workflow_handle(f"c-wait_for_short-{task_queue}")
    kinds = [e.WhichOneof("attributes") for e in (await handle.fetch_history()).events]
    assert "timer_fired_event_attributes" in kinds
    assert "activity_task_cancel_requested_event_attributes" in kinds
    # The cancel request and the completion come in one workflow task. The activity
    # reports its cancellation later, to a closed run: nothing follows the close.
    assert kinds[-1] == "workflow_execution_completed_event_attributes"


async def test_wait_for_returns_the_result_and_cancels_the_timer(
    client: Client, task_queue: str
) -> None:
    assert await run(client, task_queue, "wait_for_long") == "finished"
    handle = client.get_workflow_handle(f"c-wait_for_long-{task_queue}")
    kinds = [e.WhichOneof("attributes") for e in (await handle.fetch_history()).events]
    assert "timer_canceled_event_attributes" in kinds
    assert "timer_fired_event_attributes" not in kinds
