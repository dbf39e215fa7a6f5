"""5.3.3 Cron workflows with schedules: a daily report at 9:00 and an hourly sync.

The chapter's ``create_daily_report_schedule`` with two changes: it takes the
client as a parameter instead of connecting to ``localhost:7233`` itself (the
target is the example's ``--target``), and each action has the ``id`` Temporal
requires (E2). The chapter does not show ``DailyReportWorkflow`` and
``SyncWorkflow``; here they return a line of text.

The schedules live in the store (or on the Temporal server) and act on their own:
a daily report at 9:00 UTC, a sync every hour. A demo cannot wait for 9:00, so it
triggers the report now and backfills the last three hours of syncs, then shows
what ``describe()`` says. At the end it deletes both schedules; an application
keeps them, and they survive restarts. Actions that came due while no process
ran are taken when one runs again, within the catch-up window.

    python examples/s5_3_3_schedules.py [--target sqlite:///schedules.db | localhost:7233]
"""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from _cli import run_standalone
from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    ScheduleSpec,
)
from temporalio.service import RPCError

from ablauf import Worker

SCHEDULE_IDS = ("daily-report-schedule", "hourly-sync-schedule")


@workflow.defn
class DailyReportWorkflow:
    @workflow.run
    async def run(self) -> str:
        return f"daily report for {workflow.now():%Y-%m-%d}"


@workflow.defn
class SyncWorkflow:
    @workflow.run
    async def run(self) -> str:
        return f"synced at {workflow.now():%H:%M} UTC"


# --- the chapter's code ----------------------------------------------------------


async def create_daily_report_schedule(client: Client) -> None:
    # ablauf: the client comes in; the chapter connects with Client.connect("localhost:7233")

    # Create the schedule: daily at 9:00
    await client.create_schedule(
        "daily-report-schedule",
        Schedule(
            action=ScheduleActionStartWorkflow(
                DailyReportWorkflow.run,
                id="daily-report",  # E2: Temporal requires an id ("ValueError: ID required")
                task_queue="reports",
            ),
            spec=ScheduleSpec(
                # Cron Expression: Minute Hour Day Month Weekday
                cron_expressions=["0 9 * * *"],  # Daily at 9:00 UTC
            ),
        ),
    )

    # Interval-based: every hour
    await client.create_schedule(
        "hourly-sync-schedule",
        Schedule(
            action=ScheduleActionStartWorkflow(
                SyncWorkflow.run,
                id="hourly-sync",  # E2
                task_queue="sync",
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        ),
    )


# --- running it ------------------------------------------------------------------


async def remove_schedules(client: Client) -> None:
    """Deletes the schedules a previous run left in the same store or server."""
    for schedule_id in SCHEDULE_IDS:
        with contextlib.suppress(RPCError):  # not there
            await client.get_schedule_handle(schedule_id).delete()


async def actions(handle: ScheduleHandle, count: int) -> list[str]:
    """Waits until the schedule took ``count`` actions; returns their workflow ids."""
    for _ in range(100):
        description = await handle.describe()
        if description.info.num_actions >= count:
            return [a.action.workflow_id for a in description.info.recent_actions]
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{handle.id} took no action")


def times(moments: list[datetime]) -> str:
    return ", ".join(f"{t:%a %H:%M}" for t in moments)


async def main(client: Client) -> dict:
    """Creates both schedules, runs a report and three syncs, describes, deletes them."""
    await remove_schedules(client)
    await create_daily_report_schedule(client)
    daily = client.get_schedule_handle("daily-report-schedule")
    hourly = client.get_schedule_handle("hourly-sync-schedule")
    next_daily = (await daily.describe()).info.next_action_times
    next_hourly = (await hourly.describe()).info.next_action_times
    print(f"{daily.id}: next at {times(next_daily[:3])} (UTC)")
    print(f"{hourly.id}: next at {times(next_hourly[:3])} (UTC)")

    async with (
        Worker(client, task_queue="reports", workflows=[DailyReportWorkflow]),
        Worker(client, task_queue="sync", workflows=[SyncWorkflow]),
    ):
        await daily.trigger()
        (report_id,) = await actions(daily, 1)
        report = await client.get_workflow_handle(report_id).result()
        print(f"triggered now: {report_id} -> {report!r}")

        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        await hourly.backfill(
            ScheduleBackfill(
                start_at=hour - timedelta(hours=2),
                end_at=hour,
                overlap=ScheduleOverlapPolicy.ALLOW_ALL,
            )
        )
        sync_ids = await actions(hourly, 3)
        syncs = [await client.get_workflow_handle(i).result() for i in sync_ids]
        for sync_id, sync in zip(sync_ids, syncs, strict=True):
            print(f"backfilled: {sync_id} -> {sync!r}")

    described = await daily.describe()
    print(
        f"{daily.id}: {described.info.num_actions} action(s), "
        f"recent: {[a.action.workflow_id for a in described.info.recent_actions]}"
    )
    await remove_schedules(client)
    print("deleted both schedules (an application keeps them; they survive restarts)")
    return {
        "next_daily": next_daily,
        "next_hourly": next_hourly,
        "report_id": report_id,
        "report": report,
        "sync_ids": sync_ids,
        "syncs": syncs,
    }


if __name__ == "__main__":
    run_standalone(main, __doc__)
