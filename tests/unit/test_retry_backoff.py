"""Retry intervals: exponential up to the maximum, whatever the attempt or coefficient."""

from __future__ import annotations

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import RetryPolicy
from temporalio.api.enums.v1 import RetryState

from ablauf.engine.timers import activity_retry, backoff_interval, workflow_task_backoff


def test_interval_grows_by_the_coefficient_up_to_the_maximum() -> None:
    assert [backoff_interval(1.0, 2.0, 100.0, n) for n in (1, 2, 3, 7, 8)] == [
        1.0,
        2.0,
        4.0,
        64.0,
        100.0,
    ]


@pytest.mark.parametrize(
    ("coefficient", "attempt"),
    [(2.0, 1_025), (2.0, 100_000), (2.0, 10**12), (1e100, 2), (1e100, 5), (1e308, 3)],
)
def test_an_interval_past_any_float_is_the_maximum(coefficient: float, attempt: int) -> None:
    assert backoff_interval(1.0, coefficient, 100.0, attempt) == 100.0


@pytest.mark.parametrize("attempt", [1_024, 1_025, 100_000])
def test_the_default_policy_retries_at_its_maximum_interval_forever(attempt: int) -> None:
    # No maximum interval given: Temporal's default is 100 x the initial interval.
    policy = RetryPolicy(initial_interval=Duration(seconds=1))
    assert activity_retry(policy, attempt, None, 0.0, None) == (
        100.0,
        RetryState.RETRY_STATE_IN_PROGRESS,
    )


def test_a_huge_coefficient_retries_at_the_maximum_interval() -> None:
    policy = RetryPolicy(
        initial_interval=Duration(seconds=1),
        backoff_coefficient=1e100,
        maximum_interval=Duration(seconds=2),
        maximum_attempts=4,
    )
    assert [activity_retry(policy, n, None, 0.0, None)[0] for n in (1, 2, 3, 4)] == [
        1.0,
        2.0,
        2.0,
        None,
    ]


def test_workflow_task_backoff_stays_at_ten_seconds() -> None:
    assert [workflow_task_backoff(n) for n in (2, 3, 4, 5, 6, 10**9)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
        10.0,
    ]
