"""Cron workflows and start delays over many runs, on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.api.command.v1 import Command, FailWorkflowExecutionCommandAttributes
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import CommandType, ContinueAsNewInitiator, EventType
from temporalio.api.enums.v1 import WorkflowExecutionStatus as Status
from temporalio.api.failure.v1 import Failure

from ablauf.engine import executions
from ablauf.engine.cron import check_cron, cron_backoff, parse_cron
from ablauf.engine.engine import Engine
from ablauf.engine.errors import InvalidArgumentError
from ablauf.store.base import WORKFLOW_TASK

from .conftest import ManualClock, start_request
from .test_transitions import complete, take, types

E = EventType
# 2023-11-14 22:13:20 UTC
T0 = 1_700_000_000.0


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def started(engine: Engine, run_id: str):  # type: ignore[no-untyped-def]
    return engine.history(run_id)[0].workflow_execution_started_event_attributes


def fail() -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
        fail_workflow_execution_command_attributes=FailWorkflowExecutionCommandAttributes(
            failure=Failure(message="boom")
        ),
    )


async def finish(engine: Engine, commands: list[Command]) -> bool:
    """Takes the workflow task handed to the local queue, reads it and completes it."""
    ref = await take(engine, WORKFLOW_TASK)
    assert engine.workflow_tasks.read(ref, 0) is not None
    return engine.workflow_tasks.complete(ref, commands)


def queued(engine: Engine) -> int:
    queue = engine.matching.local(WORKFLOW_TASK, "q")
    assert queue is not None
    return len(queue)


@pytest.mark.parametrize(
    "cron",
    [
        "bogus",
        "0 9 * *",  # four fields
        "* * * * * *",  # six: Temporal's cron has no seconds
        "60 * * * *",
        "0 9 * * 7",  # robfig's day of week is 0-6
        "0 9 * * monday",  # three-letter names only
        "0 0 L * *",
        "@every",
        "@often",
        "0 9 * * * # comment",
        "CRON_TZ=Nowhere/Special 0 9 * * *",
        "TZ=Nowhere/Special @every 1s",
        "5-3 * * * *",
        "*/0 * * * *",
        "0 0 1 January *",
        "@every 1d",
    ],
)
def test_malformed_cron_is_refused_with_temporals_message(cron: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^invalid CronSchedule\.$"):
        check_cron(cron, T0)


def test_a_cron_no_time_satisfies_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="no time can be found"):
        check_cron("0 9 31 2 *", T0)


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 * * * *", "2023-11-14T22:13:20", "2023-11-14T23:00:00"),
        ("*/15 9-17 * * MON-FRI", "2023-11-17T17:50:00", "2023-11-20T09:00:00"),
        ("0 0 ? * *", "2023-11-14T22:13:20", "2023-11-15T00:00:00"),
        ("@daily", "2023-11-14T22:13:20", "2023-11-15T00:00:00"),
        ("@weekly", "2023-11-14T22:13:20", "2023-11-19T00:00:00"),
        # Both day fields restricted: either matches (robfig, as classic cron).
        ("0 9 1 * mon", "2023-11-14T22:13:20", "2023-11-20T09:00:00"),
        ("0 9 15 * mon", "2023-11-14T22:13:20", "2023-11-15T09:00:00"),
        ("CRON_TZ=Europe/Berlin 0 9 * * *", "2023-11-14T22:13:20", "2023-11-15T08:00:00"),
        # @every counts from the given time's second, not from the epoch.
        ("@every 90s", "2023-11-14T22:13:20", "2023-11-14T22:14:50"),
    ],
)
def test_next_cron_time(cron: str, after: str, expected: str) -> None:
    assert parse_cron(cron).next_after(at(after)) == at(expected)


def test_backoff_skips_past_times_and_rounds_up_to_seconds() -> None:
    scheduled = at("2023-11-14T22:00:00")
    # The run ended 2.5 hours after its time: 22:00 is past, 23:00 and 00:00 too.
    assert cron_backoff("0 * * * *", scheduled, scheduled + 9000.25) == 1800.0
    # A run closing before its own time (its first task came early) waits for it.
    assert cron_backoff("0 * * * *", scheduled, scheduled - 10.5) == 11.0
    assert cron_backoff("@every 500ms", T0 + 0.3, T0 + 0.3) == 1.0


async def test_cron_runs_follow_each_other_at_cron_times(local: Engine, clock: ManualClock) -> None:
    req = start_request()
    req.cron_schedule = "0 * * * *"
    run_id = executions.start(local, req)[0]
    first = started(local, run_id)
    assert first.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
    assert first.first_workflow_task_backoff.ToSeconds() == 2800  # to 23:00
    assert types(local, run_id) == ["WORKFLOW_EXECUTION_STARTED"]
    assert queued(local) == 0

    for hour in range(3):
        clock.advance(started(local, run_id).first_workflow_task_backoff.ToSeconds())
        local.service.tick()
        value = f"run {hour}".encode()
        if hour == 1:
            # The run takes long: 01:00 and 02:00 are missed.
            assert await finish(local, [])
            clock.advance(2.5 * 3600)
            executions.signal(local, run_id, "go", Payloads(), "me", None)
        assert await finish(local, [complete(value)])
        closed = local.history(run_id)[-1]
        assert closed.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
        next_run = closed.workflow_execution_completed_event_attributes.new_execution_run_id
        nxt = started(local, next_run)
        assert nxt.continued_execution_run_id == run_id
        assert nxt.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
        assert nxt.last_completion_result.payloads[0].data == value
        assert nxt.first_execution_run_id == first.original_execution_run_id
        assert nxt.cron_schedule == "0 * * * *"
        run_id = next_run
    # Runs at 23:00, 00:00 (ends at 02:30) and 03:00; the next at 04:00.
    assert clock.now() + started(local, run_id).first_workflow_task_backoff.ToSeconds() == at(
        "2023-11-15T04:00:00"
    )
    assert local.store.current_run_id("default", "wf-1") == run_id


async def test_failed_cron_run_is_followed_by_the_next(local: Engine, clock: ManualClock) -> None:
    req = start_request()
    req.cron_schedule = "@every 10s"
    run_id = executions.start(local, req)[0]
    clock.advance(10)
    local.service.tick()
    assert await finish(local, [complete(b"ok")])
    run_id = local.history(run_id)[
        -1
    ].workflow_execution_completed_event_attributes.new_execution_run_id
    clock.advance(10)
    local.service.tick()
    assert await finish(local, [fail()])
    failed = local.history(run_id)[-1].workflow_execution_failed_event_attributes
    assert failed.new_execution_run_id
    nxt = started(local, failed.new_execution_run_id)
    assert nxt.continued_failure.message == "boom"
    # The last result before the failure goes on.
    assert nxt.last_completion_result.payloads[0].data == b"ok"


async def test_signal_waits_for_the_delay_cancel_and_signal_with_start_end_it(
    local: Engine, clock: ManualClock
) -> None:
    req = start_request()
    req.workflow_start_delay.FromSeconds(60)
    run_id = executions.start(local, req)[0]
    executions.signal(local, run_id, "sig", Payloads(), "me", None)
    assert queued(local) == 0
    assert types(local, run_id) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_EXECUTION_SIGNALED"]
    executions.request_cancel(local, run_id, "", "me")
    assert queued(local) == 1
    assert types(local, run_id)[-2:] == [
        "WORKFLOW_EXECUTION_CANCEL_REQUESTED",
        "WORKFLOW_TASK_SCHEDULED",
    ]


async def test_terminate_during_the_wait_ends_the_cron_chain(
    local: Engine, clock: ManualClock
) -> None:
    req = start_request()
    req.cron_schedule = "@hourly"
    run_id = executions.start(local, req)[0]
    executions.terminate(local, run_id, "stop", None, "me")
    clock.advance(7200)
    local.service.tick()
    assert queued(local) == 0
    assert local.store.current_run_id("default", "wf-1") == run_id
    exe = local.store.get_execution(run_id)
    assert exe is not None and exe.status == Status.WORKFLOW_EXECUTION_STATUS_TERMINATED


async def test_run_timeout_counts_from_the_end_of_the_delay(
    local: Engine, clock: ManualClock
) -> None:
    req = start_request()
    req.cron_schedule = "@every 10s"
    req.workflow_run_timeout.FromSeconds(5)
    run_id = executions.start(local, req)[0]
    clock.advance(10)
    local.service.tick()
    await take(local, WORKFLOW_TASK)
    clock.advance(5)
    local.service.tick()
    closed = local.history(run_id)[-1]
    assert closed.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT
    nxt = closed.workflow_execution_timed_out_event_attributes.new_execution_run_id
    assert started(local, nxt).continued_failure.message == "workflow timeout"
