"""Activity and workflow failures: the error objects, retry states and retry spacing.

Retry timing is read on the workflow clock: ``workflow.now()`` before and after an
activity that needs retries. Temporal schedules retries on whole seconds, so the
ranges asserted here hold on both engines.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutError

from ablauf import Client, Worker

attempts: dict[str, list[int]] = {}


def facts(err: BaseException | None) -> dict[str, Any] | None:
    """The attributes of a Temporal error that both engines must agree on."""
    if err is None:
        return None
    out: dict[str, Any] = {"class": type(err).__name__, "message": getattr(err, "message", "")}
    if isinstance(err, ActivityError):
        out["activity_type"] = err.activity_type
        out["activity_id"] = err.activity_id
        out["retry_state"] = err.retry_state.name if err.retry_state else None
        out["scheduled_event_id"] = err.scheduled_event_id
        out["started_event_id"] = err.started_event_id
    if isinstance(err, ApplicationError):
        out["type"] = err.type
        out["non_retryable"] = err.non_retryable
        out["details"] = list(err.details)
        out["next_retry_delay"] = err.next_retry_delay
    if isinstance(err, TimeoutError):
        out["timeout_type"] = err.type.name if err.type else None
    out["cause"] = facts(err.__cause__)
    return out


def count(key: str) -> int:
    attempts.setdefault(key, []).append(activity.info().attempt)
    return len(attempts[key])


@activity.defn
async def declines(key: str) -> str:
    count(key)
    raise ApplicationError("card declined", "detail", 42, type="Declined", non_retryable=True)


@activity.defn
async def raises_plain(key: str) -> str:
    count(key)
    raise ValueError("bad value")


@activity.defn
async def raises_key_error(key: str) -> str:
    count(key)
    raise KeyError("missing")


@activity.defn
async def fails_twice(key: str) -> int:
    if count(key) <= 2:
        raise RuntimeError(f"attempt {len(attempts[key])}")
    return len(attempts[key])


@activity.defn
async def asks_for_later(key: str) -> int:
    if count(key) == 1:
        raise ApplicationError("try later", next_retry_delay=timedelta(seconds=2))
    return len(attempts[key])


FAST = timedelta(seconds=5)


@workflow.defn
class Failing:
    @workflow.run
    async def run(self, kind: str, key: str) -> Any:
        policy = {
            "declines": RetryPolicy(maximum_attempts=5),
            "raises_plain": RetryPolicy(maximum_attempts=2),
            "raises_key_error": RetryPolicy(non_retryable_error_types=["KeyError"]),
            "fails_twice": RetryPolicy(initial_interval=timedelta(seconds=1)),
            "asks_for_later": RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            "sub_second": RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            "capped": RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=10,
                maximum_interval=timedelta(seconds=1),
            ),
        }
        name = "fails_twice" if kind in ("capped", "sub_second") else kind
        if kind == "uncaught":
            return await workflow.execute_activity(
                declines, key, start_to_close_timeout=FAST, activity_id="pay"
            )
        if kind == "workflow_error":
            raise ApplicationError(
                "order invalid", {"order": 7}, type="Invalid", non_retryable=True
            )
        before = workflow.now()
        try:
            result = await workflow.execute_activity(
                name, key, start_to_close_timeout=FAST, retry_policy=policy[kind]
            )
        except ActivityError as err:
            return facts(err)
        return {"result": result, "elapsed": (workflow.now() - before).total_seconds()}


async def run(client: Client, task_queue: str, kind: str) -> Any:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[Failing],
        activities=[declines, raises_plain, raises_key_error, fails_twice, asks_for_later],
    ):
        return await client.execute_workflow(
            Failing.run, args=[kind, task_queue], id=f"f-{kind}-{task_queue}", task_queue=task_queue
        )


async def test_non_retryable_application_error_and_its_attributes(
    client: Client, task_queue: str
) -> None:
    assert await run(client, task_queue, "declines") == {
        "class": "ActivityError",
        "message": "Activity task failed",
        "activity_type": "declines",
        "activity_id": "1",
        "retry_state": "NON_RETRYABLE_FAILURE",
        "scheduled_event_id": 5,
        "started_event_id": 6,
        "cause": {
            "class": "ApplicationError",
            "message": "card declined",
            "type": "Declined",
            "non_retryable": True,
            "details": ["detail", 42],
            "next_retry_delay": None,
            "cause": None,
        },
    }
    assert attempts[task_queue] == [1]


async def test_plain_exception_becomes_application_error_after_maximum_attempts(
    client: Client, task_queue: str
) -> None:
    result = await run(client, task_queue, "raises_plain")
    assert result["retry_state"] == "MAXIMUM_ATTEMPTS_REACHED"
    assert result["cause"] == {
        "class": "ApplicationError",
        "message": "bad value",
        "type": "ValueError",
        "non_retryable": False,
        "details": [],
        "next_retry_delay": None,
        "cause": None,
    }
    assert attempts[task_queue] == [1, 2]


async def test_non_retryable_error_types_match_the_exception_class_name(
    client: Client, task_queue: str
) -> None:
    result = await run(client, task_queue, "raises_key_error")
    assert result["retry_state"] == "NON_RETRYABLE_FAILURE"
    assert result["cause"]["type"] == "KeyError"
    assert result["cause"]["message"] == "'missing'"
    # The policy made it final; the error itself was not marked non-retryable.
    assert result["cause"]["non_retryable"] is False
    assert attempts[task_queue] == [1]


async def test_retry_backoff_on_the_workflow_clock(client: Client, task_queue: str) -> None:
    # initial 1 s, coefficient 2: the retries wait 1 s and then 2 s (the dev
    # server starts each on its timer tick, up to about a second later).
    result = await run(client, task_queue, "fails_twice")
    assert result["result"] == 3
    assert 3.0 <= result["elapsed"] < 6.0
    assert attempts[task_queue] == [1, 2, 3]


async def test_sub_second_intervals(client: Client, task_queue: str) -> None:
    # 100 ms and 200 ms by the policy. The dev server starts such a retry on its
    # timer tick, mostly about 1 s later (2.1-2.3 s in all), once in 1.87 s.
    result = await run(client, task_queue, "sub_second")
    assert result["result"] == 3
    assert 0.3 <= result["elapsed"] < 3.5


async def test_maximum_interval_caps_the_backoff(client: Client, task_queue: str) -> None:
    # Coefficient 10 would wait 1 s and 10 s; the cap makes it 1 s and 1 s (plus
    # up to about a second per retry for the dev server's timer tick).
    result = await run(client, task_queue, "capped")
    assert result["result"] == 3
    assert 2.0 <= result["elapsed"] < 6.0


async def test_next_retry_delay_overrides_the_policy(client: Client, task_queue: str) -> None:
    result = await run(client, task_queue, "asks_for_later")
    assert result["result"] == 2
    assert 2.0 <= result["elapsed"] < 3.5


async def test_uncaught_activity_failure_is_the_workflow_failure_cause(
    client: Client, task_queue: str
) -> None:
    with pytest.raises(WorkflowFailureError) as info:
        await run(client, task_queue, "uncaught")
    assert str(info.value) == "Workflow execution failed"
    cause = facts(info.value.cause)
    assert cause is not None
    assert cause["class"] == "ActivityError"
    assert (cause["activity_type"], cause["activity_id"]) == ("declines", "pay")
    assert cause["retry_state"] == "NON_RETRYABLE_FAILURE"
    assert cause["cause"]["type"] == "Declined"
    assert cause["cause"]["details"] == ["detail", 42]
    desc = await client.get_workflow_handle(f"f-uncaught-{task_queue}").describe()
    assert desc.status == WorkflowExecutionStatus.FAILED


async def test_application_error_raised_by_the_workflow(client: Client, task_queue: str) -> None:
    with pytest.raises(WorkflowFailureError) as info:
        await run(client, task_queue, "workflow_error")
    assert facts(info.value.cause) == {
        "class": "ApplicationError",
        "message": "order invalid",
        "type": "Invalid",
        "non_retryable": True,
        "details": [{"order": 7}],
        "next_retry_delay": None,
        "cause": None,
    }
    history = await client.get_workflow_handle(f"f-workflow_error-{task_queue}").fetch_history()
    failed = history.events[-1].workflow_execution_failed_event_attributes
    assert failed.retry_state == RetryState.RETRY_POLICY_NOT_SET.value
