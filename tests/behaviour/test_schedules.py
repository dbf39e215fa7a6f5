"""Schedules through temporalio's client API, on both engines.

Cron specs far in the future show what a schedule *would* do (describe's next
action times, the compiled spec); triggers, backfills and second-level
intervals make it act within the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio import workflow
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from ablauf import Client, Worker

with workflow.unsafe.imports_passed_through():
    from croniter import croniter

SCHEDULED_BY = SearchAttributeKey.for_keyword("TemporalScheduledById")
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@workflow.defn
class Report:
    """Counts its runs through the schedule's last completion result."""

    @workflow.run
    async def run(self, name: str) -> str:
        previous = 0
        if workflow.has_last_completion_result():
            previous = int(workflow.get_last_completion_result(str).split()[-1])
        return f"{name} {previous + 1}"


@workflow.defn
class Held:
    """Runs until released (a cancel request ends it as canceled)."""

    def __init__(self) -> None:
        self.released = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.released)
        return "released"

    @workflow.signal
    def release(self) -> None:
        self.released = True


@workflow.defn
class Broken:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("report source unavailable", non_retryable=True)


FAR = ScheduleSpec(cron_expressions=["0 9 1 1 *"])  # once a year: never during a test


@asynccontextmanager
async def schedule(
    client: Client, schedule_id: str, sched: Schedule, **kwargs: object
) -> AsyncIterator[ScheduleHandle]:
    handle = await client.create_schedule(schedule_id, sched, **kwargs)
    try:
        yield handle
    finally:
        desc = await handle.describe()
        await handle.delete()
        for ex in desc.info.running_actions:  # leave nothing running on the dev server
            with suppress(RPCError):
                await client.get_workflow_handle(ex.workflow_id).terminate()


async def until(
    handle: ScheduleHandle,
    check: Callable[[ScheduleDescription], bool],
    seconds: float = 30,
) -> ScheduleDescription:
    # Generous: a dev server loaded by the rest of the suite can take many seconds.
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        desc = await handle.describe()
        if check(desc):
            return desc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"schedule never got there: {desc.info}")
        await asyncio.sleep(0.1)


async def wait_for(check: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    for _ in range(int(seconds * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def next_second() -> None:
    now = datetime.now(UTC)
    await asyncio.sleep(1.05 - now.microsecond / 1e6)


def id_time(workflow_id: str) -> datetime:
    return datetime.strptime(workflow_id[-20:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# creating and describing


async def test_cron_schedule_is_described_as_temporal_compiles_it(
    client: Client, task_queue: str, suffix: str
) -> None:
    spec = ScheduleSpec(
        cron_expressions=["0 9 * * MON-FRI", "*/15 * * * *"], time_zone_name="Europe/Berlin"
    )
    sched = Schedule(
        action=ScheduleActionStartWorkflow(
            Report.run, "daily", id=f"r-{suffix}", task_queue=task_queue
        ),
        spec=spec,
    )
    async with schedule(client, f"cron-{suffix}", sched) as handle:
        desc = await handle.describe()
    got = desc.schedule.spec
    assert got.cron_expressions == []
    assert got.time_zone_name == "Europe/Berlin"
    weekdays, quarters = got.calendars
    assert weekdays.hour == (ScheduleRange(9, 9, 1),)
    assert weekdays.minute == (ScheduleRange(0, 0, 1),)
    assert weekdays.day_of_week == (ScheduleRange(1, 5, 1),)
    assert weekdays.day_of_month == (ScheduleRange(1, 31, 1),)
    assert quarters.minute == (ScheduleRange(0, 59, 15),)
    assert quarters.hour == (ScheduleRange(0, 23, 1),)
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert desc.schedule.policy.catchup_window == timedelta(days=365)
    assert not desc.schedule.state.paused
    assert desc.info.num_actions == 0
    assert desc.info.last_updated_at is None
    assert abs(desc.info.created_at - datetime.now(UTC)) < timedelta(seconds=30)
    # The next ten times are the union of both expressions in Berlin time.
    tz = ZoneInfo("Europe/Berlin")
    base = desc.info.created_at.astimezone(tz)
    expected: set[datetime] = set()
    for expr in spec.cron_expressions:
        it = croniter(expr, base)
        expected.update(it.get_next(datetime).astimezone(UTC) for _ in range(10))
    assert desc.info.next_action_times == sorted(expected)[:10]


async def test_interval_with_offset_and_calendar(
    client: Client, task_queue: str, suffix: str
) -> None:
    spec = ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(minutes=5))],
        calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(12)], day_of_week=[ScheduleRange(6)])],
        skip=[ScheduleCalendarSpec(hour=[ScheduleRange(3)], minute=[ScheduleRange(5)])],
    )
    sched = Schedule(
        action=ScheduleActionStartWorkflow(Held.run, id=f"h-{suffix}", task_queue=task_queue),
        spec=spec,
    )
    async with schedule(client, f"iv-{suffix}", sched) as handle:
        desc = await handle.describe()
    times = desc.info.next_action_times
    assert len(times) == 10
    for t in times:
        saturday_noon = t.weekday() == 5 and (t.hour, t.minute, t.second) == (12, 0, 0)
        assert (t.minute == 5 and t.second == 0) or saturday_noon
        assert (t.hour, t.minute) != (3, 5)
    assert desc.schedule.spec.intervals == [
        ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(minutes=5))
    ]


async def test_catchup_window_has_a_minimum_of_ten_seconds(
    client: Client, task_queue: str, suffix: str
) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(Held.run, id=f"h-{suffix}", task_queue=task_queue),
        spec=FAR,
        policy=SchedulePolicy(catchup_window=timedelta(seconds=1), pause_on_failure=True),
    )
    async with schedule(client, f"cw-{suffix}", sched) as handle:
        desc = await handle.describe()
    assert desc.schedule.policy.catchup_window == timedelta(seconds=10)
    assert desc.schedule.policy.pause_on_failure


# bad input


async def test_an_existing_schedule_id_is_refused(
    client: Client, task_queue: str, suffix: str
) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(Held.run, id=f"h-{suffix}", task_queue=task_queue),
        spec=FAR,
    )
    async with schedule(client, f"dup-{suffix}", sched):
        with pytest.raises(ScheduleAlreadyRunningError):
            await client.create_schedule(f"dup-{suffix}", sched)


@pytest.mark.parametrize(
    "spec",
    [
        ScheduleSpec(cron_expressions=["0 25 * * *"]),
        ScheduleSpec(cron_expressions=["every day at nine"]),
        ScheduleSpec(cron_expressions=["0 9 * *"]),
        ScheduleSpec(cron_expressions=["0 9 * * *"], time_zone_name="Mars/Olympus_Mons"),
        ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(0))]),
        ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(hours=2))]
        ),
        ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(24)])]),
    ],
    ids=["hour-25", "words", "four-fields", "time-zone", "zero-interval", "offset", "calendar"],
)
async def test_bad_specs_are_refused_at_create(
    client: Client, task_queue: str, suffix: str, spec: ScheduleSpec
) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(Held.run, id=f"h-{suffix}", task_queue=task_queue),
        spec=spec,
    )
    with pytest.raises(RPCError) as err:
        await client.create_schedule(f"bad-{suffix}", sched)
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert "Invalid schedule spec" in err.value.message
    with pytest.raises(RPCError) as missing:
        await client.get_schedule_handle(f"bad-{suffix}").describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_unknown_schedule_is_not_found(client: Client, suffix: str) -> None:
    handle = client.get_schedule_handle(f"nothing-{suffix}")
    for call in (handle.describe, handle.pause, handle.trigger, handle.delete):
        with pytest.raises(RPCError) as err:
            await call()
        assert err.value.status == RPCStatusCode.NOT_FOUND


# acting


async def test_trigger_starts_a_workflow_named_and_tagged_by_the_schedule(
    client: Client, task_queue: str, suffix: str
) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(
            Report.run, "sales", id=f"report-{suffix}", task_queue=task_queue
        ),
        spec=FAR,
    )
    async with (
        Worker(client, task_queue=task_queue, workflows=[Report]),
        schedule(client, f"trig-{suffix}", sched) as handle,
    ):
        before = datetime.now(UTC).replace(microsecond=0)
        await handle.trigger()
        desc = await until(handle, lambda d: d.info.num_actions == 1)
        (recent,) = desc.info.recent_actions
        workflow_id = recent.action.workflow_id
        assert workflow_id.startswith(f"report-{suffix}-")
        started = id_time(workflow_id)
        assert before - timedelta(seconds=1) <= started <= datetime.now(UTC)
        assert started == recent.scheduled_at.replace(microsecond=0)
        assert recent.started_at >= recent.scheduled_at
        run = client.get_workflow_handle(workflow_id)
        assert await run.result() == "sales 1"
        wf = await run.describe()
        assert wf.typed_search_attributes.get(SCHEDULED_BY) == f"trig-{suffix}"
        assert wf.typed_search_attributes.get(SCHEDULED_START) == started
        desc = await until(handle, lambda d: not d.info.running_actions)
        assert desc.info.num_actions_skipped_overlap == 0


async def test_second_level_interval_acts_on_its_own(
    client: Client, task_queue: str, suffix: str
) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(
            Report.run, "sync", id=f"sync-{suffix}", task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=2))]),
    )
    async with (
        Worker(client, task_queue=task_queue, workflows=[Report]),
        schedule(client, f"every-{suffix}", sched) as handle,
    ):
        desc = await until(handle, lambda d: d.info.num_actions >= 3, seconds=15)
        for recent in desc.info.recent_actions:
            workflow_id = recent.action.workflow_id
            assert id_time(workflow_id) == recent.scheduled_at
            assert recent.scheduled_at.second % 2 == 0
        # Each run sees the result of the one before (the schedule passes it on).
        last = desc.info.recent_actions[2].action.workflow_id
        assert await client.get_workflow_handle(last).result() == "sync 3"


async def test_running_actions_and_buffer_one(client: Client, task_queue: str, suffix: str) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(Held.run, id=f"held-{suffix}", task_queue=task_queue),
        spec=FAR,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE),
    )
    async with (
        Worker(client, task_queue=task_queue, workflows=[Held]),
        schedule(client, f"buf-{suffix}", sched) as handle,
    ):
        await handle.trigger()
        first = await until(handle, lambda d: len(d.info.running_actions) == 1)
        # A workflow id ends in its action's second: a buffered action triggered in
        # the same second would reuse the first's id, and the dev server's scheduler
        # can then lose track of the second run once the first closes.
        await next_second()
        await handle.trigger()  # buffered
        # Temporal's scheduler can hold back a trigger that reaches it in the same
        # workflow task as the one before until the running workflow ends.
        await until(handle, lambda d: d.raw_description.info.buffer_size == 1)
        await handle.trigger()  # one is buffered already: skipped
        desc = await until(handle, lambda d: d.info.num_actions_skipped_overlap == 1)
        assert desc.info.num_actions == 1
        assert desc.raw_description.info.buffer_size == 1
        running = first.info.running_actions[0]
        await client.get_workflow_handle(
            running.workflow_id,
            run_id=running.first_execution_run_id,
        ).signal(Held.release)
        desc = await until(
            handle, lambda d: d.info.num_actions == 2 and len(d.info.running_actions) == 1
        )
        second = desc.info.running_actions[0]
        assert second.first_execution_run_id != running.first_execution_run_id
        statuses = [a.action for a in desc.info.recent_actions]
        assert len(statuses) == 2
        await client.get_workflow_handle(second.workflow_id).signal(Held.release)
        await until(handle, lambda d: not d.info.running_actions)


@pytest.mark.parametrize(
    ("overlap", "status"),
    [
        (ScheduleOverlapPolicy.TERMINATE_OTHER, WorkflowExecutionStatus.TERMINATED),
        (ScheduleOverlapPolicy.CANCEL_OTHER, WorkflowExecutionStatus.CANCELED),
    ],
    ids=["terminate-other", "cancel-other"],
)
async def test_trigger_overlap_override_ends_the_running_one(
    client: Client,
    task_queue: str,
    suffix: str,
    overlap: ScheduleOverlapPolicy,
    status: WorkflowExecutionStatus,
) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(Held.run, id=f"held-{suffix}", task_queue=task_queue),
        spec=FAR,
    )
    async with (
        Worker(client, task_queue=task_queue, workflows=[Held]),
        schedule(client, f"end-{suffix}", sched) as handle,
    ):
        await handle.trigger()
        first = (await until(handle, lambda d: len(d.info.running_actions) == 1)).info
        await handle.trigger()  # the schedule's policy, SKIP
        await until(handle, lambda d: d.info.num_actions_skipped_overlap == 1)
        # A start in the same second gets the same workflow id; Temporal then loses
        # track of which run is running.
        await next_second()
        await handle.trigger(overlap=overlap)
        desc = await until(
            handle, lambda d: d.info.num_actions == 2 and len(d.info.running_actions) == 1
        )
        old = first.running_actions[0]
        old_run = client.get_workflow_handle(
            old.workflow_id,
            run_id=old.first_execution_run_id,
        )
        assert (await old_run.describe()).status == status
        new = desc.info.running_actions[0]
        assert new.first_execution_run_id != old.first_execution_run_id


async def test_backfill_takes_past_times_allow_all_runs_them_side_by_side(
    client: Client, task_queue: str, suffix: str
) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(Held.run, id=f"held-{suffix}", task_queue=task_queue),
        spec=ScheduleSpec(cron_expressions=["0 9 * * *"]),
        state=ScheduleState(paused=True, note="backfill only"),
    )
    async with (
        Worker(client, task_queue=task_queue, workflows=[Held]),
        schedule(client, f"back-{suffix}", sched) as handle,
    ):
        await handle.backfill(
            ScheduleBackfill(
                start_at=datetime(2026, 3, 1, 9, tzinfo=UTC),
                end_at=datetime(2026, 3, 3, 10, tzinfo=UTC),
                overlap=ScheduleOverlapPolicy.ALLOW_ALL,
            )
        )
        desc = await until(handle, lambda d: d.info.num_actions == 3)
        ids = [a.action.workflow_id for a in desc.info.recent_actions]
        assert sorted(ids) == [f"held-{suffix}-2026-03-0{d}T09:00:00Z" for d in (1, 2, 3)]
        assert sorted(a.scheduled_at for a in desc.info.recent_actions) == [
            datetime(2026, 3, d, 9, tzinfo=UTC) for d in (1, 2, 3)
        ]
        # Runs that may overlap are not tracked as running, as in Temporal.
        assert desc.info.running_actions == []
        for workflow_id in ids:
            run = client.get_workflow_handle(workflow_id)
            assert (await run.describe()).status == WorkflowExecutionStatus.RUNNING
            await run.terminate()


async def test_backfill_with_skip_starts_one(client: Client, task_queue: str, suffix: str) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(Held.run, id=f"held-{suffix}", task_queue=task_queue),
        spec=ScheduleSpec(cron_expressions=["0 9 * * *"]),
        state=ScheduleState(paused=True),
    )
    async with (
        Worker(client, task_queue=task_queue, workflows=[Held]),
        schedule(
            client,
            f"skip-{suffix}",
            sched,
            backfill=[
                ScheduleBackfill(
                    start_at=datetime(2026, 3, 1, 9, tzinfo=UTC),
                    end_at=datetime(2026, 3, 3, 9, tzinfo=UTC),
                )
            ],
        ) as handle,
    ):
        desc = await until(handle, lambda d: d.info.num_actions_skipped_overlap == 2)
        assert desc.info.num_actions == 1
        (running,) = desc.info.running_actions
        assert running.workflow_id == f"held-{suffix}-2026-03-01T09:00:00Z"


async def test_pause_unpause_update_delete(client: Client, task_queue: str, suffix: str) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(
            Report.run, "x", id=f"report-{suffix}", task_queue=task_queue
        ),
        spec=ScheduleSpec(cron_expressions=["0 9 * * *"]),
    )
    handle = await client.create_schedule(f"life-{suffix}", sched)
    await handle.pause(note="maintenance window")
    state = (await handle.describe()).schedule.state
    assert state.paused and state.note == "maintenance window"
    await handle.unpause()
    state = (await handle.describe()).schedule.state
    assert not state.paused and state.note == "Unpaused via Python SDK"

    def change(update: ScheduleUpdateInput) -> ScheduleUpdate:
        new = update.description.schedule
        new.spec = ScheduleSpec(cron_expressions=["30 18 * * FRI"], time_zone_name="Asia/Tokyo")
        new.state.note = "friday evenings"
        return ScheduleUpdate(schedule=new)

    before = (await handle.describe()).raw_description.conflict_token
    await handle.update(change)
    desc = await handle.describe()
    assert desc.schedule.state.note == "friday evenings"
    assert desc.raw_description.conflict_token > before
    assert desc.info.last_updated_at is not None
    tokyo = ZoneInfo("Asia/Tokyo")
    for t in desc.info.next_action_times:
        local = t.astimezone(tokyo)
        assert (local.weekday(), local.hour, local.minute) == (4, 18, 30)
    await handle.update(lambda _: None)  # no update
    assert (await handle.describe()).raw_description.conflict_token == (
        desc.raw_description.conflict_token
    )

    async def listed() -> bool:
        return f"life-{suffix}" in [s.id async for s in await client.list_schedules()]

    await wait_for(listed)
    (entry,) = [s async for s in await client.list_schedules() if s.id == f"life-{suffix}"]
    assert entry.schedule is not None and entry.info is not None
    assert entry.schedule.action.workflow == "Report"
    assert entry.schedule.state.note == "friday evenings"
    assert entry.info.next_action_times == desc.info.next_action_times[:5]
    await handle.delete()
    with pytest.raises(RPCError) as err:
        await handle.describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND


async def test_limited_actions_run_out(client: Client, task_queue: str, suffix: str) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(
            Report.run, "x", id=f"report-{suffix}", task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
        state=ScheduleState(limited_actions=True, remaining_actions=2),
    )
    async with (
        Worker(client, task_queue=task_queue, workflows=[Report]),
        schedule(client, f"lim-{suffix}", sched) as handle,
    ):
        desc = await handle.describe()
        assert len(desc.info.next_action_times) == 2
        desc = await until(handle, lambda d: d.info.num_actions == 2)
        await asyncio.sleep(2)
        desc = await handle.describe()
        assert desc.info.num_actions == 2
        assert desc.schedule.state.remaining_actions == 0
        assert desc.info.next_action_times == []
        await handle.trigger()  # a manual action is not limited
        await until(handle, lambda d: d.info.num_actions == 3)


async def test_pause_on_failure(client: Client, task_queue: str, suffix: str) -> None:
    sched = Schedule(
        action=ScheduleActionStartWorkflow(
            Broken.run, id=f"broken-{suffix}", task_queue=task_queue
        ),
        spec=FAR,
        policy=SchedulePolicy(pause_on_failure=True),
    )
    async with (
        Worker(client, task_queue=task_queue, workflows=[Broken]),
        schedule(client, f"pof-{suffix}", sched, trigger_immediately=True) as handle,
    ):
        desc = await until(handle, lambda d: d.schedule.state.paused)
        (recent,) = desc.info.recent_actions
        workflow_id = recent.action.workflow_id
        assert desc.schedule.state.note == (
            f"paused due to workflow failure: {workflow_id}: report source unavailable"
        )
