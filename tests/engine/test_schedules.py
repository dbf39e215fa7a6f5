"""Schedules in the engine, driven by a hand-moved clock: catch-up, overlap, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import WorkflowType
from temporalio.api.enums.v1 import ScheduleOverlapPolicy, WorkflowExecutionStatus
from temporalio.api.schedule.v1 import (
    IntervalSpec,
    Schedule,
    ScheduleAction,
    SchedulePatch,
    SchedulePolicies,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflow.v1 import NewWorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import (
    CreateScheduleRequest,
    DescribeScheduleRequest,
    DescribeScheduleResponse,
    PatchScheduleRequest,
)

from ablauf.engine import executions
from ablauf.engine.engine import Engine
from ablauf.store import open_store
from tests.engine.conftest import ManualClock

HOUR = 3600
OP = ScheduleOverlapPolicy


def create_request(
    schedule_id: str = "hourly",
    overlap: int = OP.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED,
    catchup: int | None = None,
    paused: bool = False,
) -> CreateScheduleRequest:
    policies = SchedulePolicies(overlap_policy=overlap)  # type: ignore[arg-type]
    if catchup is not None:
        policies.catchup_window.FromSeconds(catchup)
    return CreateScheduleRequest(
        namespace="default",
        schedule_id=schedule_id,
        schedule=Schedule(
            spec=ScheduleSpec(interval=[IntervalSpec(interval=Duration(seconds=HOUR))]),
            action=ScheduleAction(
                start_workflow=NewWorkflowExecutionInfo(
                    workflow_id="job",
                    workflow_type=WorkflowType(name="Job"),
                    task_queue=TaskQueue(name="q"),
                )
            ),
            policies=policies,
            state=ScheduleState(paused=paused),
        ),
    )


def job_id(hour_offset: int, clock_start: float) -> str:
    """The workflow id of the action ``hour_offset`` whole hours after the clock's start."""
    at = (int(clock_start) // HOUR + hour_offset) * HOUR
    return "job-" + datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def runs(engine: Engine) -> list[str]:
    out = []
    for run_id in engine.store.iter_run_ids():
        exe = engine.store.get_execution(run_id)
        assert exe is not None
        out.append(exe.workflow_id)
    return out


async def describe(engine: Engine, schedule_id: str = "hourly") -> DescribeScheduleResponse:
    req = DescribeScheduleRequest(namespace="default", schedule_id=schedule_id)
    return await engine.schedules.rpc_describe_schedule(req, None)


async def test_actions_due_while_down_are_taken_once_within_the_catchup_window(
    engine: Engine, clock: ManualClock
) -> None:
    start = clock.now()
    await engine.schedules.rpc_create_schedule(create_request(catchup=90 * 60), None)
    clock.advance(5 * HOUR)  # nothing ran for five hours: five actions came due
    engine.service.tick()
    engine.service.tick()
    # The first three were more than 90 minutes late: missed. The fourth and fifth are
    # within the window; the fourth starts, the fifth finds it running and is skipped.
    assert runs(engine) == [job_id(4, start)]
    info = (await describe(engine)).info
    assert (info.action_count, info.missed_catchup_window, info.overlap_skipped) == (1, 3, 1)
    clock.advance(1)
    engine.service.tick()
    assert runs(engine) == [job_id(4, start)]


async def test_allow_all_catches_up_every_action(engine: Engine, clock: ManualClock) -> None:
    start = clock.now()
    req = create_request(overlap=OP.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL)
    await engine.schedules.rpc_create_schedule(req, None)
    clock.advance(5 * HOUR)
    engine.service.tick()
    assert sorted(runs(engine)) == [job_id(h, start) for h in range(1, 6)]
    info = (await describe(engine)).info
    assert info.action_count == 5
    assert len(info.running_workflows) == 0  # overlapping runs are not tracked


async def test_time_while_paused_is_skipped_not_missed(engine: Engine, clock: ManualClock) -> None:
    start = clock.now()
    await engine.schedules.rpc_create_schedule(create_request(paused=True), None)
    clock.advance(3 * HOUR)
    engine.service.tick()
    assert runs(engine) == []
    patch = PatchScheduleRequest(
        namespace="default", schedule_id="hourly", patch=SchedulePatch(unpause="back")
    )
    await engine.schedules.rpc_patch_schedule(patch, None)
    info = (await describe(engine)).info
    assert (info.action_count, info.missed_catchup_window) == (0, 0)
    assert info.future_action_times[0].seconds == (int(start) // HOUR + 4) * HOUR
    clock.advance(HOUR)
    engine.service.tick()
    assert runs(engine) == [job_id(4, start)]


async def test_two_processes_firing_one_timer_start_one_workflow(
    engine: Engine, clock: ManualClock, tmp_path: object
) -> None:
    other = Engine(open_store(str(tmp_path / "engine.db")), clock=clock)  # type: ignore[operator]
    try:
        await engine.schedules.rpc_create_schedule(create_request(), None)
        clock.advance(HOUR)
        (timer,) = engine.store.due_timers(clock.now(), 10)
        (same,) = other.store.due_timers(clock.now(), 10)
        engine.service.fire(timer)
        other.service.fire(same)
        assert len(runs(engine)) == 1
        assert (await describe(other)).info.action_count == 1
    finally:
        other.store.close()


async def test_a_closing_run_starts_the_buffered_one(engine: Engine, clock: ManualClock) -> None:
    start = clock.now()
    req = create_request(overlap=OP.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE)
    await engine.schedules.rpc_create_schedule(req, None)
    clock.advance(2 * HOUR)
    engine.service.tick()
    assert runs(engine) == [job_id(1, start)]
    assert (await describe(engine)).info.buffer_size == 1
    first = engine.execution("default", job_id(1, start))
    executions.terminate(engine, first.run_id, "done", None, "test")
    engine.service.tick()  # the close woke the schedule
    assert runs(engine) == [job_id(1, start), job_id(2, start)]
    info = (await describe(engine)).info
    assert [r.workflow_id for r in info.running_workflows] == [job_id(2, start)]
    statuses = [a.start_workflow_status for a in info.recent_actions]
    assert statuses == [
        WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED,
        WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING,
    ]
