"""Activities seen from workflow code: results, retries, failures, timeouts, heartbeats."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutError

from ablauf import Client, Worker

attempts: dict[str, int] = {}


@activity.defn
async def flaky(key: str) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] < 3:
        raise RuntimeError(f"attempt {attempts[key]} failed")
    return f"ok after {attempts[key]}"


@activity.defn
async def invalid(key: str) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    raise ApplicationError("bad input", type="InvalidInput")


@activity.defn
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@activity.defn
async def heartbeating(key: str) -> list[int]:
    info = activity.info()
    start = info.heartbeat_details[0] if info.heartbeat_details else 0
    for i in range(start, 5):
        activity.heartbeat(i + 1)
        if info.attempt == 1 and i == 2:
            await asyncio.sleep(5)  # stops heartbeating: the heartbeat timeout ends this attempt
    return [info.attempt, start]


@activity.defn
async def fails_thrice() -> int:
    attempt = activity.info().attempt
    if attempt < 4:
        raise RuntimeError(f"attempt {attempt} failed")
    return attempt


@activity.defn
def sync_add(a: int, b: int) -> int:
    return a + b


@workflow.defn
class Caller:
    @workflow.run
    async def run(self, kind: str, arg: str) -> Any:
        try:
            if kind == "flaky":
                return await workflow.execute_activity(
                    flaky,
                    arg,
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
                )
            if kind == "huge-backoff":
                # The third interval, 1e300 ** 2 s, is past any float.
                return await workflow.execute_activity(
                    fails_thrice,
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=1),
                        backoff_coefficient=1e300,
                        maximum_interval=timedelta(seconds=1),
                        maximum_attempts=5,
                    ),
                )
            if kind == "invalid":
                return await workflow.execute_activity(
                    invalid,
                    arg,
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(
                        maximum_attempts=5, non_retryable_error_types=["InvalidInput"]
                    ),
                )
            if kind == "timeout":
                return await workflow.execute_activity(
                    slow,
                    10.0,
                    start_to_close_timeout=timedelta(milliseconds=300),
                    retry_policy=RetryPolicy(maximum_attempts=2),
                )
            if kind == "heartbeat":
                return await workflow.execute_activity(
                    heartbeating,
                    arg,
                    start_to_close_timeout=timedelta(seconds=30),
                    heartbeat_timeout=timedelta(milliseconds=500),
                )
            if kind == "sync":
                return await workflow.execute_activity(
                    sync_add, args=[2, 3], start_to_close_timeout=timedelta(seconds=5)
                )
            if kind == "by-name":
                return await workflow.execute_activity(
                    "slow", 0.0, start_to_close_timeout=timedelta(seconds=5)
                )
        except ActivityError as err:
            cause = err.cause
            return {
                "error": type(cause).__name__,
                "type": cause.type if isinstance(cause, ApplicationError) else None,
                "retry_state": err.retry_state.name if err.retry_state else None,
                "timeout_type": cause.type.name if isinstance(cause, TimeoutError) else None,
            }
        raise ApplicationError(f"unknown kind {kind}", non_retryable=True)


async def run(client: Client, task_queue: str, kind: str, arg: str = "") -> Any:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[Caller],
            activities=[flaky, invalid, slow, heartbeating, sync_add, fails_thrice],
            activity_executor=pool,
        ):
            return await client.execute_workflow(
                Caller.run,
                args=[kind, arg],
                id=f"caller-{kind}-{arg}-{task_queue}",
                task_queue=task_queue,
            )


async def test_retry_until_success(client: Client, task_queue: str) -> None:
    assert await run(client, task_queue, "flaky", task_queue) == "ok after 3"
    assert attempts[task_queue] == 3


async def test_a_huge_backoff_coefficient_retries_at_the_maximum_interval(
    client: Client, task_queue: str
) -> None:
    assert await asyncio.wait_for(run(client, task_queue, "huge-backoff"), 30) == 4


async def test_non_retryable_type_fails_at_once(client: Client, task_queue: str) -> None:
    result = await run(client, task_queue, "invalid", task_queue)
    assert result == {
        "error": "ApplicationError",
        "type": "InvalidInput",
        "retry_state": "NON_RETRYABLE_FAILURE",
        "timeout_type": None,
    }
    assert attempts[task_queue] == 1


async def test_start_to_close_timeout_after_retries(client: Client, task_queue: str) -> None:
    result = await run(client, task_queue, "timeout")
    assert result == {
        "error": "TimeoutError",
        "type": None,
        "retry_state": "MAXIMUM_ATTEMPTS_REACHED",
        "timeout_type": "START_TO_CLOSE",
    }


async def test_heartbeat_timeout_retries_with_last_details(client: Client, task_queue: str) -> None:
    assert await run(client, task_queue, "heartbeat", "h") == [2, 3]


async def test_sync_activity_in_executor(client: Client, task_queue: str) -> None:
    assert await run(client, task_queue, "sync") == 5


async def test_activity_by_name(client: Client, task_queue: str) -> None:
    assert await run(client, task_queue, "by-name") == "done"


async def test_uncaught_application_error_fails_the_workflow(
    client: Client, task_queue: str
) -> None:
    with pytest.raises(WorkflowFailureError) as info:
        await run(client, task_queue, "unknown-kind")
    assert isinstance(info.value.cause, ApplicationError)
    assert info.value.cause.message == "unknown kind unknown-kind"
    _ = RetryState


async def test_a_tuner_sets_the_activity_slots(
    client: Client, task_queue: str, suffix: str
) -> None:
    from temporalio.worker import WorkerTuner

    tuner = WorkerTuner.create_fixed(workflow_slots=10, activity_slots=2, local_activity_slots=2)
    async with Worker(
        client, task_queue=task_queue, workflows=[Caller], activities=[slow], tuner=tuner
    ):
        assert (
            await client.execute_workflow(
                Caller.run, args=["by-name", ""], id=f"tuned-{suffix}", task_queue=task_queue
            )
            == "done"
        )
