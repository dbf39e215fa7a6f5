"""Schedules under ablauf's time-skipping environment: weeks of actions in a moment.

Every action time is checked against croniter's reading of the same cron
expression (or the interval's arithmetic): the workflow a schedule starts is
named after its scheduled time, so each expected time must have its workflow.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributeKey

from ablauf import Worker
from ablauf.testing import WorkflowEnvironment

with workflow.unsafe.imports_passed_through():
    from croniter import croniter

# No Path.resolve(): workflow sandboxes import this module again and refuse it.
sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))

import s5_3_3_schedules

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@workflow.defn
class Tick:
    @workflow.run
    async def run(self, hours: float) -> str:
        await asyncio.sleep(hours * 3600)
        return workflow.now().isoformat()


def cron_times(expr: str, start: datetime, end: datetime, tz: str = "UTC") -> list[datetime]:
    """croniter's times for ``expr`` in (start, end], in UTC."""
    it = croniter(expr, start.astimezone(ZoneInfo(tz)))
    out = []
    while (t := it.get_next(datetime).astimezone(UTC)) <= end:
        out.append(t)
    return out


def workflow_id(base: str, at: datetime) -> str:
    return f"{base}-{at.strftime('%Y-%m-%dT%H:%M:%SZ')}"


async def started_times(client: Client, base: str, candidates: list[datetime]) -> list[datetime]:
    """The candidate times for which the schedule started a workflow."""
    out = []
    for at in candidates:
        try:
            desc = await client.get_workflow_handle(workflow_id(base, at)).describe()
        except Exception:
            continue
        assert desc.typed_search_attributes.get(SCHEDULED_START) == at
        out.append(at)
    return out


async def run_schedule(
    env: WorkflowEnvironment,
    spec: ScheduleSpec,
    days: float,
    hours: float = 0.0,
    overlap: ScheduleOverlapPolicy = ScheduleOverlapPolicy.SKIP,
) -> tuple[str, datetime, datetime, float]:
    """A schedule of Tick(hours) while ``days`` pass; returns id base, start, end, seconds."""
    base = f"tick-{uuid.uuid4().hex[:6]}"
    queue = f"q-{base}"
    async with Worker(env.client, task_queue=queue, workflows=[Tick]):
        await env.client.create_schedule(
            f"s-{base}",
            Schedule(
                action=ScheduleActionStartWorkflow(Tick.run, hours, id=base, task_queue=queue),
                spec=spec,
                policy=SchedulePolicy(overlap=overlap),
            ),
        )
        start = await env.get_current_time()
        began = time.monotonic()
        await env.sleep(timedelta(days=days))
        elapsed = time.monotonic() - began
        end = await env.get_current_time()
    return base, start, end, elapsed


async def test_daily_schedule_runs_a_month_in_a_moment() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        spec = ScheduleSpec(cron_expressions=["0 9 * * *"])
        base, start, end, elapsed = await run_schedule(env, spec, days=30)
        expected = cron_times("0 9 * * *", start, end)
        assert len(expected) == 30
        assert await started_times(env.client, base, expected) == expected
        desc = await env.client.get_schedule_handle(f"s-{base}").describe()
        assert desc.info.num_actions == 30
        assert [a.scheduled_at for a in desc.info.recent_actions] == expected[-10:]
        for action in desc.info.recent_actions:
            # Started when due: the clock jumped straight to each 9:00.
            assert action.started_at - action.scheduled_at < timedelta(seconds=1)
        assert desc.info.next_action_times[0] == cron_times("0 9 * * *", end, end + timedelta(2))[0]
        run = env.client.get_workflow_handle(workflow_id(base, expected[-1]))
        assert (await run.describe()).status == WorkflowExecutionStatus.COMPLETED
        assert elapsed < 1.0, f"a simulated month took {elapsed:.2f} s"


async def test_every_quarter_hour() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        spec = ScheduleSpec(cron_expressions=["*/15 * * * *"])
        base, start, end, _ = await run_schedule(env, spec, days=1)
        expected = cron_times("*/15 * * * *", start, end)
        assert len(expected) == 96
        assert await started_times(env.client, base, expected) == expected


async def test_weekdays_at_noon_in_a_time_zone() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        spec = ScheduleSpec(cron_expressions=["0 12 * * MON-FRI"], time_zone_name="Asia/Kolkata")
        base, start, end, _ = await run_schedule(env, spec, days=14)
        expected = cron_times("0 12 * * MON-FRI", start, end, tz="Asia/Kolkata")
        assert len(expected) == 10
        assert all(t.astimezone(ZoneInfo("Asia/Kolkata")).hour == 12 for t in expected)
        assert all(t.weekday() < 5 for t in expected)
        assert await started_times(env.client, base, expected) == expected


async def test_cron_time_zone_prefix_and_monday_mornings() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        spec = ScheduleSpec(cron_expressions=["CRON_TZ=America/New_York 0 8 * * MON"])
        base, start, end, _ = await run_schedule(env, spec, days=21)
        expected = cron_times("0 8 * * MON", start, end, tz="America/New_York")
        assert len(expected) == 3
        assert await started_times(env.client, base, expected) == expected


async def test_interval_with_offset() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        every, offset = timedelta(hours=6), timedelta(minutes=30)
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every, offset=offset)])
        base, start, end, _ = await run_schedule(env, spec, days=3)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        first = epoch + ((start - epoch - offset) // every + 1) * every + offset
        expected = []
        while first <= end:
            expected.append(first)
            first += every
        assert len(expected) == 12
        assert {(t.hour, t.minute) for t in expected} == {(0, 30), (6, 30), (12, 30), (18, 30)}
        assert await started_times(env.client, base, expected) == expected


async def test_skip_overlap_with_runs_longer_than_a_day() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        spec = ScheduleSpec(cron_expressions=["0 9 * * *"])
        base, start, end, _ = await run_schedule(env, spec, days=6, hours=30)
        every_day = cron_times("0 9 * * *", start, end)
        # Each run lasts into the next day's 9:00, which is skipped.
        assert await started_times(env.client, base, every_day) == every_day[::2]
        desc = await env.client.get_schedule_handle(f"s-{base}").describe()
        assert desc.info.num_actions_skipped_overlap == len(every_day[1::2])


async def test_buffer_one_starts_late_runs_when_the_last_one_ends() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        spec = ScheduleSpec(cron_expressions=["0 9 * * *"])
        base, start, end, _ = await run_schedule(
            env, spec, days=4, hours=30, overlap=ScheduleOverlapPolicy.BUFFER_ONE
        )
        every_day = cron_times("0 9 * * *", start, end)
        desc = await env.client.get_schedule_handle(f"s-{base}").describe()
        # Nothing is skipped: each day's start waits for the run before it.
        assert desc.info.num_actions_skipped_overlap == 0
        actions = desc.info.recent_actions
        assert [a.scheduled_at for a in actions] == every_day[: len(actions)]
        assert len(actions) >= 3
        for before, after in itertools.pairwise(actions):
            # Started the moment the run before it ended.
            late = after.started_at - (before.started_at + timedelta(hours=30))
            assert timedelta(0) <= late < timedelta(seconds=1)


async def test_the_chapters_schedules_over_two_simulated_days() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        await s5_3_3_schedules.create_daily_report_schedule(env.client)
        start = await env.get_current_time()
        async with (
            Worker(
                env.client, task_queue="reports", workflows=[s5_3_3_schedules.DailyReportWorkflow]
            ),
            Worker(env.client, task_queue="sync", workflows=[s5_3_3_schedules.SyncWorkflow]),
        ):
            await env.sleep(timedelta(days=2))
        end = await env.get_current_time()
        reports = cron_times("0 9 * * *", start, end)
        assert len(reports) == 2
        assert await started_times(env.client, "daily-report", reports) == reports
        syncs = cron_times("0 * * * *", start, end)
        assert len(syncs) == 48
        assert await started_times(env.client, "hourly-sync", syncs) == syncs
        last = env.client.get_workflow_handle(workflow_id("daily-report", reports[-1]))
        assert await last.result() == f"daily report for {reports[-1]:%Y-%m-%d}"
