"""What an activity learns about itself: ``activity.info()`` and details across attempts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from ablauf import Client, Worker

seen: dict[str, list[dict[str, Any]]] = {}


def seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


@activity.defn
async def introspect(key: str, fail_first: bool) -> int:
    info = activity.info()
    seen.setdefault(key, []).append(
        {
            "activity_id": info.activity_id,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
            "heartbeat_details": list(info.heartbeat_details),
            "heartbeat_timeout": seconds(info.heartbeat_timeout),
            "is_local": info.is_local,
            "schedule_to_close_timeout": seconds(info.schedule_to_close_timeout),
            "start_to_close_timeout": seconds(info.start_to_close_timeout),
            "task_queue": info.task_queue,
            "workflow_id": info.workflow_id,
            "workflow_namespace": info.workflow_namespace,
            "workflow_type": info.workflow_type,
            "scheduled_before_attempt": info.scheduled_time <= info.current_attempt_scheduled_time,
            "started_after_scheduled": info.started_time >= info.current_attempt_scheduled_time,
        }
    )
    activity.heartbeat("progress", info.attempt)
    if fail_first and info.attempt == 1:
        raise RuntimeError("first attempt fails after a heartbeat")
    return info.attempt


@workflow.defn
class Introspected:
    @workflow.run
    async def run(self, fail_first: bool) -> int:
        key = workflow.info().workflow_id
        if fail_first:
            return await workflow.execute_activity(
                introspect,
                args=[key, True],
                activity_id="custom-id",
                schedule_to_close_timeout=timedelta(seconds=30),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=2),
            )
        return await workflow.execute_activity(
            introspect, args=[key, False], start_to_close_timeout=timedelta(seconds=5)
        )


async def run(client: Client, task_queue: str, workflow_id: str, fail_first: bool) -> Any:
    async with Worker(
        client, task_queue=task_queue, workflows=[Introspected], activities=[introspect]
    ):
        return await client.execute_workflow(
            Introspected.run, fail_first, id=workflow_id, task_queue=task_queue
        )


async def test_activity_info_with_only_a_start_to_close_timeout(
    client: Client, task_queue: str, suffix: str
) -> None:
    assert await run(client, task_queue, f"ai-1-{suffix}", False) == 1
    assert seen[f"ai-1-{suffix}"] == [
        {
            "activity_id": "1",
            "activity_type": "introspect",
            "attempt": 1,
            "heartbeat_details": [],
            "heartbeat_timeout": None,
            "is_local": False,
            # No schedule-to-close timeout given: the server leaves it unset.
            "schedule_to_close_timeout": None,
            "start_to_close_timeout": 5,
            "task_queue": task_queue,
            "workflow_id": f"ai-1-{suffix}",
            "workflow_namespace": "default",
            "workflow_type": "Introspected",
            "scheduled_before_attempt": True,
            "started_after_scheduled": True,
        }
    ]


async def test_heartbeat_details_outlive_a_failed_attempt(
    client: Client, task_queue: str, suffix: str
) -> None:
    assert await run(client, task_queue, f"ai-2-{suffix}", True) == 2
    first, second = seen[f"ai-2-{suffix}"]
    assert (first["attempt"], first["heartbeat_details"]) == (1, [])
    # The first attempt failed; what it recorded by heartbeat is still handed on.
    assert (second["attempt"], second["heartbeat_details"]) == (2, ["progress", 1])
    assert second["activity_id"] == "custom-id"
    assert second["schedule_to_close_timeout"] == 30
    # Only a schedule-to-close timeout given: start-to-close defaults to it.
    assert second["start_to_close_timeout"] == 30
    assert second["heartbeat_timeout"] == 10


@activity.defn
async def timeouts() -> list[float | None]:
    info = activity.info()
    return [
        seconds(info.schedule_to_close_timeout),
        seconds(info.start_to_close_timeout),
        seconds(info.heartbeat_timeout),
    ]


@workflow.defn
class VariedOptions:
    @workflow.run
    async def run(self) -> list[list[float | None]]:
        short = {"start_to_close_timeout": timedelta(seconds=5)}
        bounded = {
            "schedule_to_close_timeout": timedelta(seconds=7),
            "heartbeat_timeout": timedelta(seconds=3),
        }
        return [
            await workflow.execute_activity(timeouts, **options)  # type: ignore[arg-type]
            for options in (short, bounded, short, bounded)
        ]


async def test_each_activity_keeps_its_own_options(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(
        client, task_queue=task_queue, workflows=[VariedOptions], activities=[timeouts]
    ):
        result = await client.execute_workflow(
            VariedOptions.run, id=f"ai-3-{suffix}", task_queue=task_queue
        )
    assert result == [[None, 5, None], [7, 7, 3], [None, 5, None], [7, 7, 3]]
