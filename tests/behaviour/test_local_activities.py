"""Local activities: run by the workflow's worker, recorded as markers."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    TimeoutError,
)
from temporalio.workflow import ActivityCancellationType

from ablauf import Client, Worker

_M = EventType.EVENT_TYPE_MARKER_RECORDED


@activity.defn
async def greet(name: str) -> str:
    info = activity.info()
    return f"hello {name} (local={info.is_local}, attempt={info.attempt})"


@activity.defn
async def flaky(succeed_at: int) -> int:
    if activity.info().attempt < succeed_at:
        raise RuntimeError(f"attempt {activity.info().attempt} fails")
    return activity.info().attempt


@activity.defn
async def broken(non_retryable: bool) -> None:
    raise ApplicationError("broken", type="Broken", non_retryable=non_retryable)


@activity.defn
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


@activity.defn
async def wait_for_cancel() -> str:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        return "saw the cancel"
    return "no cancel"


def _describe(err: BaseException) -> dict[str, Any]:
    cause = err.cause if isinstance(err, ActivityError) else None
    return {
        "error": type(err).__name__,
        "message": str(err),
        "cause": type(cause).__name__ if cause is not None else None,
        "timeout_type": cause.type.name if isinstance(cause, TimeoutError) else None,
        "type": err.type if isinstance(err, ApplicationError) else None,
    }


@workflow.defn
class LocalWorkflow:
    @workflow.run
    async def run(self, kind: str) -> Any:
        short = timedelta(milliseconds=50)
        try:
            if kind == "greet":
                first = await workflow.execute_local_activity(
                    greet, "ablauf", start_to_close_timeout=timedelta(seconds=5)
                )
                second = await workflow.execute_local_activity(
                    greet, "again", start_to_close_timeout=timedelta(seconds=5)
                )
                return [first, second]
            if kind == "parallel":
                handles = [
                    workflow.start_local_activity(
                        greet, str(i), start_to_close_timeout=timedelta(seconds=5)
                    )
                    for i in range(3)
                ]
                return list(await asyncio.gather(*handles))
            if kind == "retries":
                return await workflow.execute_local_activity(
                    flaky,
                    3,
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(initial_interval=short),
                )
            if kind == "exhausted":
                await workflow.execute_local_activity(
                    flaky,
                    10,
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(initial_interval=short, maximum_attempts=2),
                )
            if kind == "non_retryable":
                await workflow.execute_local_activity(
                    broken,
                    True,
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(initial_interval=short),
                )
            if kind == "non_retryable_type":
                await workflow.execute_local_activity(
                    broken,
                    False,
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(
                        initial_interval=short, non_retryable_error_types=["Broken"]
                    ),
                )
            if kind == "start_to_close":
                await workflow.execute_local_activity(
                    slow,
                    5.0,
                    start_to_close_timeout=timedelta(milliseconds=300),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            if kind == "schedule_to_close":
                await workflow.execute_local_activity(
                    slow,
                    5.0,
                    schedule_to_close_timeout=timedelta(milliseconds=500),
                )
            if kind == "timer_backoff":
                return await workflow.execute_local_activity(
                    flaky,
                    3,
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1)),
                    local_retry_threshold=timedelta(milliseconds=500),
                )
            if kind in ("try_cancel", "wait_cancel", "abandon"):
                cancellation_type = {
                    "try_cancel": ActivityCancellationType.TRY_CANCEL,
                    "wait_cancel": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    "abandon": ActivityCancellationType.ABANDON,
                }[kind]
                handle = workflow.start_local_activity(
                    wait_for_cancel,
                    start_to_close_timeout=timedelta(seconds=10),
                    cancellation_type=cancellation_type,
                )
                await asyncio.sleep(0)
                handle.cancel()
                return await handle
        except (ActivityError, ApplicationError, TimeoutError) as err:
            # Replaying a timeout marker, sdk-core hands workflow code the bare
            # TimeoutError where the first run saw it wrapped in an ActivityError.
            return _describe(err)
        return None


async def run(client: Client, task_queue: str, kind: str) -> tuple[Any, list[Any]]:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[LocalWorkflow],
        activities=[greet, flaky, broken, slow, wait_for_cancel],
    ):
        handle = await client.start_workflow(
            LocalWorkflow.run, kind, id=f"la-{kind}-{task_queue}", task_queue=task_queue
        )
        result = await handle.result()
        history = await handle.fetch_history()
    return result, list(history.events)


def _markers(events: list[Any]) -> list[dict[str, Any]]:
    found = []
    for event in events:
        if event.event_type != _M:
            continue
        attrs = event.marker_recorded_event_attributes
        assert attrs.marker_name == "core_local_activity"
        data = json.loads(attrs.details["data"].payloads[0].data)
        found.append(
            {
                "seq": data["seq"],
                "attempt": data["attempt"],
                "activity_type": data["activity_type"],
                "backoff": data["backoff"],
                "failed": attrs.HasField("failure"),
            }
        )
    return found


def _kinds(events: list[Any]) -> list[str]:
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]


async def test_local_activities_run_in_the_workflow_task(client: Client, task_queue: str) -> None:
    result, events = await run(client, task_queue, "greet")
    assert result == [
        "hello ablauf (local=True, attempt=1)",
        "hello again (local=True, attempt=1)",
    ]
    # Each local activity is a marker; no activity task events, and one workflow
    # task per local activity result.
    assert _kinds(events) == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "MARKER_RECORDED",
        "MARKER_RECORDED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    assert _markers(events) == [
        {"seq": 1, "attempt": 1, "activity_type": "greet", "backoff": None, "failed": False},
        {"seq": 2, "attempt": 1, "activity_type": "greet", "backoff": None, "failed": False},
    ]


async def test_local_activities_in_parallel(client: Client, task_queue: str) -> None:
    result, events = await run(client, task_queue, "parallel")
    assert result == [f"hello {i} (local=True, attempt=1)" for i in range(3)]
    assert sorted(m["seq"] for m in _markers(events)) == [1, 2, 3]


async def test_retries_within_the_task(client: Client, task_queue: str) -> None:
    result, events = await run(client, task_queue, "retries")
    assert result == 3
    assert _markers(events) == [
        {"seq": 1, "attempt": 3, "activity_type": "flaky", "backoff": None, "failed": False}
    ]


async def test_retries_exhausted(client: Client, task_queue: str) -> None:
    result, events = await run(client, task_queue, "exhausted")
    # Workflow code sees the activity's own error, not an ActivityError.
    assert result == {
        "error": "ApplicationError",
        "message": "RuntimeError: attempt 2 fails",
        "cause": None,
        "timeout_type": None,
        "type": "RuntimeError",
    }
    assert _markers(events) == [
        {"seq": 1, "attempt": 2, "activity_type": "flaky", "backoff": None, "failed": True}
    ]


async def test_non_retryable_error(client: Client, task_queue: str) -> None:
    for kind in ("non_retryable", "non_retryable_type"):
        result, events = await run(client, task_queue, kind)
        assert result["error"] == "ApplicationError"
        assert result["type"] == "Broken"
        assert [m["attempt"] for m in _markers(events)] == [1]


async def test_start_to_close_timeout(client: Client, task_queue: str) -> None:
    result, events = await run(client, task_queue, "start_to_close")
    assert result["error"] == "ActivityError"
    assert result["cause"] == "TimeoutError"
    assert result["timeout_type"] == "START_TO_CLOSE"
    assert [m["failed"] for m in _markers(events)] == [True]


async def test_schedule_to_close_timeout(client: Client, task_queue: str) -> None:
    result, events = await run(client, task_queue, "schedule_to_close")
    assert result["error"] == "ActivityError"
    assert result["cause"] == "TimeoutError"
    assert result["timeout_type"] == "SCHEDULE_TO_CLOSE"
    assert [m["failed"] for m in _markers(events)] == [True]


async def test_retries_beyond_the_local_retry_threshold_wait_on_a_timer(
    client: Client, task_queue: str
) -> None:
    result, events = await run(client, task_queue, "timer_backoff")
    assert result == 3
    # Each backoff is a failed marker recording it, then a durable timer; the
    # retry runs under a new sequence number with the next attempt.
    assert _markers(events) == [
        {"seq": 1, "attempt": 1, "activity_type": "flaky", "backoff": _secs(1), "failed": True},
        {"seq": 2, "attempt": 2, "activity_type": "flaky", "backoff": _secs(2), "failed": True},
        {"seq": 3, "attempt": 3, "activity_type": "flaky", "backoff": None, "failed": False},
    ]
    assert _kinds(events).count("TIMER_FIRED") == 2


def _secs(seconds: int) -> dict[str, int]:
    return {"seconds": seconds, "nanos": 0}


async def test_try_cancel_resolves_at_once(client: Client, task_queue: str) -> None:
    result, events = await run(client, task_queue, "try_cancel")
    assert result["error"] == "ActivityError"
    assert result["cause"] == "CancelledError"
    assert [m["failed"] for m in _markers(events)] == [True]


async def test_abandon_resolves_at_once(client: Client, task_queue: str) -> None:
    result, events = await run(client, task_queue, "abandon")
    assert result["error"] == "ActivityError"
    assert result["cause"] == "CancelledError"
    assert [m["failed"] for m in _markers(events)] == [True]


async def test_wait_cancellation_completed(client: Client, task_queue: str) -> None:
    result, events = await run(client, task_queue, "wait_cancel")
    assert result["error"] == "ActivityError"
    assert result["cause"] == "CancelledError"
    assert [m["failed"] for m in _markers(events)] == [True]


@workflow.defn
class LongLocal:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_local_activity(
            slow, 3.0, start_to_close_timeout=timedelta(seconds=10)
        )


@pytest.mark.only_engine("ablauf")
async def test_a_local_activity_outliving_the_task_fails_it_clearly(
    client: Client, task_queue: str
) -> None:
    # Temporal keeps such a task alive by completing it and forcing a new one
    # (workflow task heartbeating), which ablauf does not do yet.
    async with Worker(client, task_queue=task_queue, workflows=[LongLocal], activities=[slow]):
        handle = await client.start_workflow(
            LongLocal.run,
            id=f"la-long-{task_queue}",
            task_queue=task_queue,
            task_timeout=timedelta(seconds=1),
        )
        failures: list[str] = []
        for _ in range(50):
            await asyncio.sleep(0.1)
            failures = [
                e.workflow_task_failed_event_attributes.failure.message
                async for e in handle.fetch_history_events()
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            ]
            if failures:
                break
        await handle.terminate()
    assert failures and "workflow task heartbeating" in failures[0]


@activity.defn
async def later() -> None:
    activity.raise_complete_async()


@workflow.defn
class AsyncLocal:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_local_activity(
                later,
                start_to_close_timeout=timedelta(seconds=1),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except Exception as err:
            cause = err.__cause__ or err
            return f"{type(err).__name__}: {cause}"
        return "completed"


async def test_a_local_activity_that_would_complete_asynchronously_times_out(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[AsyncLocal], activities=[later]):
        result = await asyncio.wait_for(
            client.execute_workflow(AsyncLocal.run, id=f"la-async-{suffix}", task_queue=task_queue),
            30,
        )
    # Nothing can report a local activity's outcome later: the attempt times out.
    assert result == "ActivityError: Activity timed out"
