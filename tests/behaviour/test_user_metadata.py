"""Summaries and details users attach to workflows, timers, activities and children."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

from ablauf import Client, Worker


@activity.defn
async def noted() -> str:
    return "ok"


@workflow.defn
class Child:
    @workflow.run
    async def run(self) -> str:
        return "child"


@workflow.defn
class Annotated:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(0.1, summary="a short nap")
        await workflow.execute_activity(
            noted, start_to_close_timeout=timedelta(seconds=5), summary="the activity"
        )
        return await workflow.execute_child_workflow(
            Child.run,
            id=f"{workflow.info().workflow_id}-child",
            static_summary="the child",
            static_details="child details",
        )


async def test_summaries_are_kept_in_history_and_describe(
    client: Client, task_queue: str, suffix: str
) -> None:
    converter = client.data_converter.payload_converter
    async with Worker(
        client, task_queue=task_queue, workflows=[Annotated, Child], activities=[noted]
    ):
        handle = await client.start_workflow(
            Annotated.run,
            id=f"meta-{suffix}",
            task_queue=task_queue,
            static_summary="the parent",
            static_details="parent details",
        )
        assert await handle.result() == "child"
        desc = await handle.describe()
        child = await client.get_workflow_handle(f"meta-{suffix}-child").describe()
        history = [e async for e in handle.fetch_history_events()]
    assert await desc.static_summary() == "the parent"
    assert await desc.static_details() == "parent details"
    assert await child.static_summary() == "the child"
    assert await child.static_details() == "child details"

    def summary(field: str) -> str:
        (event,) = [e for e in history if e.HasField(field)]
        return str(converter.from_payload(event.user_metadata.summary, str))

    assert summary("timer_started_event_attributes") == "a short nap"
    assert summary("activity_task_scheduled_event_attributes") == "the activity"
    assert summary("start_child_workflow_execution_initiated_event_attributes") == "the child"
    assert summary("workflow_execution_started_event_attributes") == "the parent"


async def test_a_workflows_priority_is_recorded(
    client: Client, task_queue: str, suffix: str
) -> None:
    from temporalio.common import Priority

    async with Worker(client, task_queue=task_queue, workflows=[Child]):
        handle = await client.start_workflow(
            Child.run, id=f"prio-{suffix}", task_queue=task_queue, priority=Priority(priority_key=2)
        )
        assert await handle.result() == "child"
        history = [e async for e in handle.fetch_history_events()]
    started = history[0].workflow_execution_started_event_attributes
    assert started.priority.priority_key == 2
