"""The engine's state machine: commands and results become Temporal events."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable

import pytest
from temporalio.api.command.v1 import (
    Command,
    CompleteWorkflowExecutionCommandAttributes,
    ScheduleActivityTaskCommandAttributes,
    StartTimerCommandAttributes,
)
from temporalio.api.common.v1 import ActivityType, Payload, Payloads, RetryPolicy
from temporalio.api.enums.v1 import CommandType, EventType, RetryState, WorkflowTaskFailedCause
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure

from ablauf.engine import activities, executions
from ablauf.engine.context import Transition
from ablauf.engine.engine import Engine
from ablauf.engine.errors import AlreadyStartedError, InvalidArgumentError, NotFoundError
from ablauf.engine.matching import TaskRef
from ablauf.engine.transitions import HISTORY_COUNT_LIMIT
from ablauf.history.tasks import ActivityCompleted, ActivityFailed
from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK

from .conftest import ManualClock, start_request

E = EventType


def types(engine: Engine, run_id: str) -> list[str]:
    return [
        EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in engine.history(run_id)
    ]


def schedule_activity(activity_id: str = "1", attempts: int = 0) -> Command:
    attrs = ScheduleActivityTaskCommandAttributes(
        activity_id=activity_id, activity_type=ActivityType(name="act")
    )
    attrs.start_to_close_timeout.FromSeconds(30)
    if attempts:
        attrs.retry_policy.CopyFrom(RetryPolicy(maximum_attempts=attempts))
    return Command(
        command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
        schedule_activity_task_command_attributes=attrs,
    )


def complete(value: bytes = b"1") -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes(
            result=Payloads(payloads=[Payload(data=value)])
        ),
    )


async def take(engine: Engine, kind: int) -> TaskRef:
    queue = engine.matching.local(kind, "q")
    assert queue is not None and len(queue) > 0, "no task was handed to the local queue"
    return await queue.get()


async def test_start_hands_first_workflow_task_to_local_worker(local: Engine) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    task = local.workflow_tasks.read(ref, 0)
    assert task is not None
    assert [e.event_type for e in task.events] == [
        E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    ]
    # The started event is stored only with the completion.
    assert types(local, run_id) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]


async def test_second_start_of_running_id_is_refused(local: Engine) -> None:
    run_id = executions.start(local, start_request())[0]
    with pytest.raises(AlreadyStartedError) as info:
        executions.start(local, start_request())
    assert info.value.run_id == run_id


async def test_run_ids_are_uuids_in_start_order(local: Engine) -> None:
    # Time-ordered run ids keep a commit's rows at the end of SQLite's B-trees.
    run_ids = [executions.start(local, start_request(f"wf-{i}"))[0] for i in range(20)]
    assert {uuid.UUID(run_id).version for run_id in run_ids} == {7}
    assert sorted(run_ids) == run_ids
    assert len(set(run_ids)) == len(run_ids)


async def test_activity_round_trip(local: Engine) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    assert local.workflow_tasks.read(ref, 0) is not None
    assert local.workflow_tasks.complete(ref, [schedule_activity()])
    act_ref = await take(local, ACTIVITY_TASK)
    task = activities.activity_task(local, act_ref)
    assert task is not None and task.activity_type == "act" and task.attempt == 1
    activities.record_outcome(local, act_ref, ActivityCompleted(Payload(data=b"42")), None)
    assert types(local, run_id)[-5:] == [
        "WORKFLOW_TASK_COMPLETED",
        "ACTIVITY_TASK_SCHEDULED",
        "ACTIVITY_TASK_STARTED",
        "ACTIVITY_TASK_COMPLETED",
        "WORKFLOW_TASK_SCHEDULED",
    ]
    events = local.history(run_id)
    completed = events[-2].activity_task_completed_event_attributes
    assert completed.started_event_id == events[-3].event_id
    assert completed.result.payloads[0].data == b"42"


async def test_activities_sharing_options_keep_their_own_fields(local: Engine) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    assert local.workflow_tasks.read(ref, 0) is not None
    plain = schedule_activity("plain")
    rich = schedule_activity("rich")
    attrs = rich.schedule_activity_task_command_attributes
    attrs.header.fields["trace"].data = b"t1"
    attrs.input.payloads.add(data=b"7")
    attrs.priority.priority_key = 2
    attrs.task_queue.name = "other"
    assert local.workflow_tasks.complete(ref, [plain, rich, schedule_activity("plain again")])
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in local.history(run_id)
        if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert [a.activity_id for a in scheduled] == ["plain", "rich", "plain again"]
    first, second, third = scheduled
    for bare in (first, third):
        # Present and empty, as the command sends them, and the workflow's queue.
        assert bare.HasField("header") and not bare.header.fields
        assert bare.HasField("priority") and bare.priority.priority_key == 0
        assert not bare.input.payloads
        assert bare.task_queue.name == "q"
    assert second.header.fields["trace"].data == b"t1"
    assert [p.data for p in second.input.payloads] == [b"7"]
    assert second.priority.priority_key == 2
    assert second.task_queue.name == "other"
    for a in scheduled:
        assert a.activity_type.name == "act"
        assert a.start_to_close_timeout.seconds == 30
        assert a.retry_policy.backoff_coefficient == 2.0


async def test_failed_attempt_is_retried_without_events(local: Engine, clock: ManualClock) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    local.workflow_tasks.complete(ref, [schedule_activity(attempts=2)])
    act_ref = await take(local, ACTIVITY_TASK)
    boom = Failure(message="boom", application_failure_info=ApplicationFailureInfo(type="Boom"))
    before = types(local, run_id)
    activities.record_outcome(local, act_ref, ActivityFailed(boom), None)
    assert types(local, run_id) == before
    # The retry is due after the default 1 s initial interval.
    local.service.tick()
    assert len(local.matching.local(ACTIVITY_TASK, "q") or []) == 0
    clock.advance(1.0)
    local.service.tick()
    retry_ref = await take(local, ACTIVITY_TASK)
    assert retry_ref.attempt == 2
    activities.record_outcome(local, retry_ref, ActivityFailed(boom), None)
    events = local.history(run_id)
    failed = events[-2].activity_task_failed_event_attributes
    assert events[-2].event_type == E.EVENT_TYPE_ACTIVITY_TASK_FAILED
    assert failed.retry_state == RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    assert failed.failure.message == "boom"
    assert events[-3].activity_task_started_event_attributes.attempt == 2


async def test_non_retryable_failure_ends_at_first_attempt(local: Engine) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    local.workflow_tasks.complete(ref, [schedule_activity()])
    act_ref = await take(local, ACTIVITY_TASK)
    bad = Failure(
        message="bad", application_failure_info=ApplicationFailureInfo(non_retryable=True)
    )
    activities.record_outcome(local, act_ref, ActivityFailed(bad), None)
    failed = local.history(run_id)[-2].activity_task_failed_event_attributes
    assert failed.retry_state == RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE


async def test_start_to_close_timeout_is_retried_then_times_out(
    local: Engine, clock: ManualClock
) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    local.workflow_tasks.complete(ref, [schedule_activity(attempts=1)])
    act_ref = await take(local, ACTIVITY_TASK)
    clock.advance(30.0)
    local.service.tick()
    event = local.history(run_id)[-2]
    assert event.event_type == E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT
    timed_out = event.activity_task_timed_out_event_attributes
    assert timed_out.failure.timeout_failure_info.timeout_type == 1  # START_TO_CLOSE
    # The attempt's late result is dropped.
    activities.record_outcome(local, act_ref, ActivityCompleted(None), None)
    assert local.history(run_id)[-2].event_type == E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT


async def test_events_during_a_running_task_are_buffered(local: Engine) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    local.workflow_tasks.complete(ref, [schedule_activity()])
    act_ref = await take(local, ACTIVITY_TASK)
    # A signal starts the next workflow task ...
    executions.signal(local, run_id, "sig", Payloads(), "me", None)
    ref2 = await take(local, WORKFLOW_TASK)
    task2 = local.workflow_tasks.read(ref2, 0)
    assert task2 is not None
    # ... and the activity result arriving meanwhile waits for it to finish.
    activities.record_outcome(local, act_ref, ActivityCompleted(None), None)
    assert types(local, run_id)[-1] == "WORKFLOW_TASK_SCHEDULED"
    local.workflow_tasks.complete(ref2, [])
    assert types(local, run_id)[-5:] == [
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "ACTIVITY_TASK_STARTED",
        "ACTIVITY_TASK_COMPLETED",
        "WORKFLOW_TASK_SCHEDULED",
    ]


async def test_completing_with_unseen_signal_is_refused(local: Engine) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    executions.signal(local, run_id, "late", Payloads(), "me", None)
    assert not local.workflow_tasks.complete(ref, [complete()])
    events = local.history(run_id)
    names = types(local, run_id)
    assert "WORKFLOW_EXECUTION_COMPLETED" not in names
    failed = next(e for e in events if e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    assert failed.workflow_task_failed_event_attributes.cause == (
        WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
    )
    assert names[-2:] == ["WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED"]


async def test_timer_fires_when_due(local: Engine, clock: ManualClock) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    attrs = StartTimerCommandAttributes(timer_id="1")
    attrs.start_to_fire_timeout.FromSeconds(60)
    local.workflow_tasks.complete(
        ref,
        [
            Command(
                command_type=CommandType.COMMAND_TYPE_START_TIMER,
                start_timer_command_attributes=attrs,
            )
        ],
    )
    clock.advance(59)
    local.service.tick()
    assert types(local, run_id)[-1] == "TIMER_STARTED"
    clock.advance(1)
    local.service.tick()
    assert types(local, run_id)[-2:] == ["TIMER_FIRED", "WORKFLOW_TASK_SCHEDULED"]


async def test_failed_workflow_task_is_recorded_once_and_retried(
    local: Engine, clock: ManualClock
) -> None:
    run_id = executions.start(local, start_request())[0]
    cause = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    local.workflow_tasks.fail(ref, Failure(message="bug"), cause)
    assert types(local, run_id)[-3:] == [
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_FAILED",
        "WORKFLOW_TASK_SCHEDULED",
    ]
    clock.advance(1)
    local.service.tick()
    ref2 = await take(local, WORKFLOW_TASK)
    assert ref2.attempt == 2
    local.workflow_tasks.read(ref2, 0)
    local.workflow_tasks.fail(ref2, Failure(message="bug"), cause)
    # Later attempts leave the history as it is.
    assert types(local, run_id)[-1] == "WORKFLOW_TASK_SCHEDULED"
    clock.advance(2)
    local.service.tick()
    ref3 = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref3, 0)
    assert local.workflow_tasks.complete(ref3, [complete()])
    assert types(local, run_id)[-3:] == [
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]


async def test_lease_of_a_dead_process_is_freed(
    engine: Engine, tmp_path, clock: ManualClock
) -> None:
    from ablauf.store import open_store
    from ablauf.store.base import OwnerRecord

    run_id = executions.start(engine, start_request())[0]
    # Another "process" leased the task and stopped renewing its lease (its pid
    # says nothing: here it is this test's own).
    with engine.store.transaction():
        engine.store.register_owner(
            OwnerRecord("ghost", os.getpid(), clock.now(), ("q",), time.time() - 0.1)
        )
        task = engine.store.tasks_of_run(run_id)[0]
        task.lease_owner = "ghost"
        task.lease_until = clock.now() + 10
        engine.store.update_task(task)
    other = Engine(open_store(str(tmp_path / "engine.db")), clock=clock)
    other.matching.register(WORKFLOW_TASK, "q")
    other.service.tick()
    queue = other.matching.local(WORKFLOW_TASK, "q")
    assert queue is not None and len(queue) == 1
    other.store.close()


async def test_history_over_the_event_limit_terminates_the_run(engine: Engine) -> None:
    run_id = executions.start(engine, start_request())[0]
    sent = 0
    with pytest.raises(InvalidArgumentError, match=r"Workflow history count exceeds limit\."):
        while True:
            executions.signal(engine, run_id, "tick", Payloads(), "me", None)
            sent += 1
    # The signal that would have been event 51,201 was dropped for the termination.
    events = engine.history(run_id)
    assert len(events) == 51_201
    assert sent == 51_200 - 2
    terminated = events[-1].workflow_execution_terminated_event_attributes
    assert terminated.reason == "Workflow history count exceeds limit."
    with pytest.raises(NotFoundError):
        executions.signal(engine, run_id, "tick", Payloads(), "me", None)


async def test_attempt_left_running_at_close_times_out_for_the_next_process(
    local: Engine, tmp_path, clock: ManualClock
) -> None:
    from ablauf.store import open_store

    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    local.workflow_tasks.complete(ref, [schedule_activity(attempts=1)])
    await take(local, ACTIVITY_TASK)
    # The attempt's start-to-close deadline lived in this engine's memory only.
    await local.close()
    other = Engine(open_store(str(tmp_path / "engine.db")), clock=clock)
    times_out_at_30s(other, run_id, clock)
    other.store.close()


def times_out_at_30s(engine: Engine, run_id: str, clock: ManualClock) -> None:
    """The run's single attempt (30 s start-to-close, one attempt) times out on time."""
    clock.advance(29.0)
    engine.service.tick()
    assert types(engine, run_id)[-1] == "ACTIVITY_TASK_SCHEDULED"
    clock.advance(1.0)
    engine.service.tick()
    assert types(engine, run_id)[-2:] == ["ACTIVITY_TASK_TIMED_OUT", "WORKFLOW_TASK_SCHEDULED"]


async def test_a_wait_for_the_close_returns_at_the_close_only(local: Engine) -> None:
    run_id = executions.start(local, start_request())[0]
    closed = asyncio.ensure_future(local.wait_run_change(run_id, 30, until_closed=True))
    changed = asyncio.ensure_future(local.wait_run_change(run_id, 30))
    await asyncio.sleep(0)  # both wait now
    ref = await take(local, WORKFLOW_TASK)
    assert local.workflow_tasks.read(ref, 0) is not None
    assert local.workflow_tasks.complete(ref, [schedule_activity()])
    act_ref = await take(local, ACTIVITY_TASK)
    activities.record_outcome(local, act_ref, ActivityCompleted(Payload(data=b"1")), None)
    await asyncio.wait_for(changed, 5)
    assert not closed.done()
    ref = await take(local, WORKFLOW_TASK)
    assert local.workflow_tasks.read(ref, 0) is not None
    assert local.workflow_tasks.complete(ref, [complete()])
    await asyncio.wait_for(closed, 5)


async def test_a_fused_task_that_overflows_the_history_is_made_again_alone(local: Engine) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    assert local.workflow_tasks.read(ref, 0) is not None
    assert local.workflow_tasks.complete(ref, [schedule_activity("1")])
    act_ref = await take(local, ACTIVITY_TASK)
    assert activities.activity_task(local, act_ref) is not None
    # Fill the history so the activity's result (3 events) still fits and the
    # workflow task run with it (3 more) would not.
    signals = HISTORY_COUNT_LIMIT - 4 - (local.state_of(run_id).exe.next_event_id - 1) - 3
    tick = executions.Signal("tick", Payloads(), "me", None)
    for start in range(0, signals, 5000):
        executions.signal_many(local, run_id, [tick] * min(5000, signals - start))
    ref = await take(local, WORKFLOW_TASK)
    assert local.workflow_tasks.read(ref, 0) is not None
    assert local.workflow_tasks.complete(ref, [])
    assert local.state_of(run_id).exe.next_event_id - 1 == HISTORY_COUNT_LIMIT - 4
    # A worker of this process with the run cached: it completes the task inline.
    queue = local.matching.local(WORKFLOW_TASK, "q")
    assert queue is not None
    undone: list[int] = []

    def run_cached(tx: Transition, task_ref: TaskRef) -> Callable[[], None]:
        task = local.workflow_tasks.read_in(tx, task_ref, tx.state.recent_from - 1)
        assert task is not None
        assert local.workflow_tasks.complete_in(tx, task_ref, [schedule_activity("2")])
        return lambda: undone.append(task_ref.task_id)

    local.run_in[queue] = run_cached
    await local.submit(
        lambda: activities.record_outcome(local, act_ref, ActivityCompleted(None), None)
    )
    assert len(undone) == 1
    # The result is kept; its workflow task waits for the worker the usual way.
    assert types(local, run_id)[-3:] == [
        "ACTIVITY_TASK_STARTED",
        "ACTIVITY_TASK_COMPLETED",
        "WORKFLOW_TASK_SCHEDULED",
    ]
    del local.run_in[queue]
    ref = await take(local, WORKFLOW_TASK)
    assert local.workflow_tasks.read(ref, HISTORY_COUNT_LIMIT - 1) is not None
    with pytest.raises(InvalidArgumentError, match=r"Workflow history count exceeds limit\."):
        local.workflow_tasks.complete(ref, [schedule_activity("2")])
    assert types(local, run_id)[-1] == "WORKFLOW_EXECUTION_TERMINATED"


async def test_starts_keep_at_most_the_cached_runs_in_memory(engine: Engine) -> None:
    from ablauf.engine.runs import CACHED_RUNS

    # A process that only starts workflows (a client) holds no more run states
    # than one that runs them, however many it starts.
    for i in range(CACHED_RUNS + 50):
        executions.start(engine, start_request(f"wf-{i}"))
    assert len(engine.runs) == CACHED_RUNS
