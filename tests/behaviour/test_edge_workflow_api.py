"""What a workflow learns about itself, what the client learns about a workflow.

``workflow.info()``, deterministic ``now``/``uuid4``/``random`` across a replay,
``get_current_history_length()``, ``describe()``, ``fetch_history()``, a start with a
taken id, and a plain exception (a failed workflow task, not a failed workflow).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHistory
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from ablauf import Client, Worker

recorded: dict[str, dict[str, Any]] = {}


@activity.defn
async def record(values: dict[str, Any]) -> None:
    recorded[activity.info().workflow_id] = values


def seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


def within_a_microsecond(time: datetime, iso: str) -> bool:
    return abs(time - datetime.fromisoformat(iso)) <= timedelta(microseconds=1)


@workflow.defn
class Inspector:
    def __init__(self) -> None:
        self.go = False
        self.first: dict[str, Any] = {}
        self.lengths: list[int] = []

    @workflow.run
    async def run(self, mode: str) -> dict[str, Any]:
        info = workflow.info()
        self.first = {
            "now": workflow.now().isoformat(),
            "uuid": str(workflow.uuid4()),
            "random": workflow.random().random(),
        }
        self.lengths.append(info.get_current_history_length())
        if mode == "crash":
            raise RuntimeError("plain exception")
        await workflow.execute_activity(
            record, self.first, start_to_close_timeout=timedelta(seconds=5)
        )
        if mode == "crash-after-activity":
            raise RuntimeError("plain exception")
        self.lengths.append(info.get_current_history_length())
        await workflow.sleep(0.1)
        self.lengths.append(info.get_current_history_length())
        await workflow.wait_condition(lambda: self.go)
        if mode == "fail":
            raise ApplicationError("failed on purpose", type="Purpose")
        return {
            "workflow_id": info.workflow_id,
            "run_id": info.run_id,
            "first_execution_run_id": info.first_execution_run_id,
            "continued_run_id": info.continued_run_id,
            "workflow_type": info.workflow_type,
            "task_queue": info.task_queue,
            "namespace": info.namespace,
            "attempt": info.attempt,
            "cron_schedule": info.cron_schedule,
            "parent": info.parent,
            "retry_policy": info.retry_policy,
            "execution_timeout": seconds(info.execution_timeout),
            "run_timeout": seconds(info.run_timeout),
            "task_timeout": seconds(info.task_timeout),
            # The first workflow task's start: what workflow.now() said in it (the
            # SDK rounds the one and truncates the other to microseconds).
            "start_time": within_a_microsecond(info.start_time, self.first["now"]),
            "workflow_start_time": info.workflow_start_time.isoformat(),
            "lengths": self.lengths,
        }

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.query
    def first_task(self) -> dict[str, Any]:
        return self.first


def worker(client: Client, task_queue: str, **kwargs: Any) -> Worker:
    return Worker(
        client, task_queue=task_queue, workflows=[Inspector], activities=[record], **kwargs
    )


async def waiting_for_the_signal(handle: Any) -> None:
    # ... TimerFired, WorkflowTaskScheduled, -Started, -Completed: 15 events.
    while (await handle.describe()).history_length < 15:
        await asyncio.sleep(0.02)


async def test_info_and_history_length_seen_by_the_workflow(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            Inspector.run,
            "ok",
            id=f"info-{suffix}",
            task_queue=task_queue,
            execution_timeout=timedelta(hours=1),
            task_timeout=timedelta(seconds=7),
        )
        await waiting_for_the_signal(handle)
        await handle.signal(Inspector.proceed)
        result = await handle.result()
        desc = await handle.describe()
    started = (await handle.fetch_history()).events[0].event_time.ToDatetime(UTC)
    assert result == {
        "workflow_id": f"info-{suffix}",
        "run_id": handle.result_run_id,
        "first_execution_run_id": handle.result_run_id,
        "continued_run_id": None,
        "workflow_type": "Inspector",
        "task_queue": task_queue,
        "namespace": "default",
        "attempt": 1,
        "cron_schedule": None,
        "parent": None,
        "retry_policy": None,
        "execution_timeout": 3600,
        "run_timeout": 3600,  # no run timeout given: the execution's
        "task_timeout": 7,
        "start_time": True,
        "workflow_start_time": started.isoformat(),
        # first task; after the activity; after the timer
        "lengths": [3, 9, 14],
    }
    assert desc.status == WorkflowExecutionStatus.COMPLETED
    assert desc.history_length == 20
    assert desc.close_time is not None and desc.close_time > desc.start_time


async def test_now_uuid4_and_random_are_the_same_on_replay(
    client: Client, task_queue: str, suffix: str
) -> None:
    # Without a cache every task and query replays the history from the start.
    async with worker(client, task_queue, max_cached_workflows=0):
        handle = await client.start_workflow(
            Inspector.run, "ok", id=f"replay-{suffix}", task_queue=task_queue
        )
        await waiting_for_the_signal(handle)
        live = recorded[f"replay-{suffix}"]  # the first task's values, as it ran
        assert await handle.query(Inspector.first_task) == live
        await handle.signal(Inspector.proceed)
        await handle.result()
    history = await handle.fetch_history()
    started = history.events[2]
    assert started.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    # workflow.now() is the time of the workflow task's started event.
    assert within_a_microsecond(started.event_time.ToDatetime(UTC), live["now"])


async def test_describe_and_fetch_history(client: Client, task_queue: str, suffix: str) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            Inspector.run, "fail", id=f"desc-{suffix}", task_queue=task_queue
        )
        await waiting_for_the_signal(handle)
        running = await handle.describe()
        await handle.signal(Inspector.proceed)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        failed = await handle.describe()
    assert running.status == WorkflowExecutionStatus.RUNNING
    assert (running.id, running.run_id) == (f"desc-{suffix}", handle.result_run_id)
    assert (running.workflow_type, running.task_queue) == ("Inspector", task_queue)
    assert running.history_length == 15
    assert running.close_time is None and running.parent_id is None
    assert running.start_time.tzinfo is not None
    assert failed.status == WorkflowExecutionStatus.FAILED
    assert failed.history_length == 20
    assert failed.close_time is not None and failed.close_time >= failed.start_time
    assert failed.start_time == running.start_time
    history = await handle.fetch_history()
    assert isinstance(history, WorkflowHistory)
    assert history.workflow_id == f"desc-{suffix}" and len(history.events) == 20
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    # describe() reports the times of the history's events, to the nanosecond.
    assert failed.raw_info.start_time == history.events[0].event_time
    assert failed.raw_info.execution_time == history.events[0].event_time
    assert failed.raw_info.close_time == history.events[-1].event_time
    again = WorkflowHistory.from_json(history.workflow_id, history.to_json())
    assert again == history
    assert [e.event_id for e in again.events] == list(range(1, 21))


async def test_a_taken_id_raises_already_started_with_its_run(
    client: Client, task_queue: str, suffix: str
) -> None:
    first = await client.start_workflow(
        Inspector.run, "ok", id=f"dup-{suffix}", task_queue=task_queue
    )
    with pytest.raises(WorkflowAlreadyStartedError) as info:
        await client.start_workflow(Inspector.run, "ok", id=f"dup-{suffix}", task_queue=task_queue)
    err = info.value
    assert (err.workflow_id, err.workflow_type) == (f"dup-{suffix}", "Inspector")
    assert err.run_id == first.result_run_id
    assert str(err) == "Workflow execution already started"
    async with worker(client, task_queue):
        await waiting_for_the_signal(first)
        await first.signal(Inspector.proceed)
        await first.result()
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(
            Inspector.run,
            "ok",
            id=f"dup-{suffix}",
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    second = await client.start_workflow(
        Inspector.run, "ok", id=f"dup-{suffix}", task_queue=task_queue
    )
    assert second.result_run_id != first.result_run_id


_TASK_FAILED = [
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
]


@pytest.mark.parametrize(
    ("mode", "before_failure"),
    [
        ("crash", [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]),
        # The task a cached workflow fails: the activity's result stays, once.
        (
            "crash-after-activity",
            [
                EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            ],
        ),
    ],
)
async def test_a_plain_exception_fails_the_task_and_the_run_stays_running(
    client: Client, task_queue: str, suffix: str, mode: str, before_failure: list[int]
) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            Inspector.run, mode, id=f"{mode}-{suffix}", task_queue=task_queue
        )
        for _ in range(250):
            events = (await handle.fetch_history()).events
            failed = [e for e in events if e.HasField("workflow_task_failed_event_attributes")]
            if failed:
                break
            await asyncio.sleep(0.02)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    attrs = failed[0].workflow_task_failed_event_attributes
    assert (
        attrs.cause
        == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE
    )
    assert attrs.failure.message == "plain exception"
    assert attrs.failure.application_failure_info.type == "RuntimeError"
    failed_at = events.index(failed[0])
    expected = before_failure + _TASK_FAILED
    assert [e.event_type for e in events[failed_at + 1 - len(expected) : failed_at + 1]] == expected
    completed = [e for e in events if e.HasField("activity_task_completed_event_attributes")]
    assert len(completed) == (mode == "crash-after-activity")
    await handle.terminate("test done")


@pytest.mark.parametrize("asked", [0, 1000])
async def test_a_history_page_holds_at_most_256_events(
    client: Client, task_queue: str, suffix: str, asked: int
) -> None:
    # No worker: each signal simply joins the history behind the scheduled task.
    handle = await client.start_workflow(
        Inspector.run, "ok", id=f"pages-{suffix}", task_queue=task_queue
    )
    await asyncio.gather(*(handle.signal(Inspector.proceed) for _ in range(300)))
    await handle.terminate("done")
    request = GetWorkflowExecutionHistoryRequest(
        namespace=client.namespace,
        execution=WorkflowExecution(workflow_id=handle.id),
        maximum_page_size=asked,
    )
    first = await client.workflow_service.get_workflow_execution_history(request)
    # Temporal counts 256 batches (here the start's two events, then one per
    # signal); ablauf, which keeps no batches, 256 events.
    assert len(first.history.events) in (256, 257)
    assert first.next_page_token
    request.next_page_token = first.next_page_token
    rest = await client.workflow_service.get_workflow_execution_history(request)
    assert not rest.next_page_token
    assert [e.event_id for e in [*first.history.events, *rest.history.events]] == list(
        range(1, 2 + 300 + 1 + 1)
    )
