"""Kinds of durable timers and the retry arithmetic the engine applies."""

from __future__ import annotations

import math
from enum import IntEnum

from temporalio.api.common.v1 import RetryPolicy
from temporalio.api.enums.v1 import RetryState
from temporalio.api.failure.v1 import Failure

from ablauf.history.events import seconds_of

__all__ = ["TimerKind", "activity_retry", "backoff_interval", "workflow_task_backoff"]


class TimerKind(IntEnum):
    """What a row of the timers table stands for."""

    USER_TIMER = 1
    ACTIVITY_SCHEDULE_TO_CLOSE = 2
    ACTIVITY_SCHEDULE_TO_START = 3
    ACTIVITY_START_TO_CLOSE = 4
    ACTIVITY_HEARTBEAT = 5
    ACTIVITY_RETRY = 6
    WORKFLOW_TASK_RETRY = 7
    WORKFLOW_RUN_TIMEOUT = 8
    # Effects on other runs ("transfer tasks"), due at once.
    TRANSFER_START_CHILD = 9
    TRANSFER_CHILD_CLOSED = 10
    TRANSFER_PARENT_CLOSE = 11
    TRANSFER_SIGNAL_EXTERNAL = 12
    TRANSFER_CANCEL_EXTERNAL = 13
    # The end of a run's first workflow task backoff (start delay, retry, cron).
    WORKFLOW_BACKOFF = 14
    # A schedule's next action (run_id: "schedule:<schedule id>", ref: namespace).
    SCHEDULE = 20


def activity_retry(
    policy: RetryPolicy,
    attempt: int,
    failure: Failure | None,
    now: float,
    deadline: float | None,
) -> tuple[float | None, RetryState.ValueType]:
    """Decides whether a failed attempt is retried.

    Returns ``(delay, retry_state)``: a delay in seconds to the next attempt, or
    ``None`` with the retry state that ends the activity.
    """
    info = None
    if failure is not None and failure.HasField("application_failure_info"):
        info = failure.application_failure_info
        if info.non_retryable or info.type in policy.non_retryable_error_types:
            return None, RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE
    if policy.maximum_attempts and attempt >= policy.maximum_attempts:
        return None, RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    if info is not None and info.HasField("next_retry_delay"):
        delay = seconds_of(info.next_retry_delay)
    else:
        initial = seconds_of(policy.initial_interval) or 1.0
        coefficient = policy.backoff_coefficient or 2.0
        maximum = seconds_of(policy.maximum_interval) or 100 * initial
        delay = backoff_interval(initial, coefficient, maximum, attempt)
    # Temporal's server schedules retries on whole seconds.
    delay = float(max(1, math.ceil(delay - 1e-9)))
    if deadline is not None and now + delay > deadline:
        return None, RetryState.RETRY_STATE_TIMEOUT
    return delay, RetryState.RETRY_STATE_IN_PROGRESS


def backoff_interval(initial: float, coefficient: float, maximum: float, attempt: int) -> float:
    """``initial * coefficient ** (attempt - 1)`` seconds, at most ``maximum``.

    Never fails on arithmetic: an interval too large for a float is past any
    maximum, so it is the maximum (as on Temporal, which keeps retrying there).
    """
    try:
        return min(initial * coefficient ** (attempt - 1), maximum)
    except OverflowError:
        return maximum


def workflow_task_backoff(attempt: int) -> float:
    """Delay before workflow task attempt ``attempt`` (2, 3, ...) after failures."""
    # The exponent is capped: 2**4 is past the 10 s maximum already, and a
    # run failing for months would otherwise build ever larger integers.
    return float(min(10, 2 ** min(max(0, attempt - 2), 4)))
