"""Signals and queries at their edges: ordering, batching, dynamic and late handlers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowQueryFailedError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from ablauf import Client, Worker


@dataclasses.dataclass
class Status:
    phase: str
    items: list[str]
    since: datetime


@workflow.defn
class Inbox:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.closed = False
        self.since: datetime | None = None

    @workflow.run
    async def run(self, expected: int) -> list[str]:
        self.since = workflow.now()
        self.log.append("run")
        await workflow.wait_condition(lambda: len(self.log) > expected or self.closed)
        if "fail" in self.log:
            raise ApplicationError("asked to fail", non_retryable=True)
        return self.log

    @workflow.signal
    def add(self, item: str) -> None:
        self.log.append(item)

    @workflow.signal
    def close(self) -> None:
        self.closed = True

    @workflow.query
    def status(self) -> Status:
        assert self.since is not None
        return Status(phase="closed" if self.closed else "open", items=self.log, since=self.since)

    @workflow.query
    def count(self, prefix: str) -> int:
        return sum(item.startswith(prefix) for item in self.log)

    @workflow.query
    def broken(self) -> int:
        raise ValueError("query handler broke")


@workflow.defn
class Dynamic:
    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[Any]:
        await workflow.wait_condition(lambda: self.done)
        return self.seen

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        self.seen.append(
            [name, workflow.payload_converter().from_payloads([a.payload for a in args])]
        )

    @workflow.query(dynamic=True)
    def any_query(self, name: str, args: Sequence[RawValue]) -> Any:
        decoded = workflow.payload_converter().from_payloads([a.payload for a in args])
        return {"query": name, "args": decoded, "seen": len(self.seen)}


@workflow.defn
class Late:
    def __init__(self) -> None:
        self.enabled = False
        self.late: list[int] = []

    @workflow.run
    async def run(self) -> list[int]:
        await workflow.wait_condition(lambda: self.enabled)
        workflow.set_signal_handler("late", self.late.append)
        workflow.set_query_handler("late_q", lambda: list(self.late))
        await workflow.wait_condition(lambda: len(self.late) >= 3)
        return self.late

    @workflow.signal
    def enable(self) -> None:
        self.enabled = True


async def first_task_done(handle: WorkflowHandle[Any, Any]) -> None:
    while (await handle.describe()).history_length < 4:  # ... WorkflowTaskCompleted
        await asyncio.sleep(0.02)


def worker(client: Client, task_queue: str, **kwargs: Any) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[Inbox, Dynamic, Late], **kwargs)


async def test_signals_before_the_first_task_arrive_in_order_before_the_run(
    client: Client, task_queue: str, suffix: str
) -> None:
    handle = await client.start_workflow(Inbox.run, 3, id=f"in-1-{suffix}", task_queue=task_queue)
    for item in ["a", "b", "c"]:
        await handle.signal(Inbox.add, item)
    async with worker(client, task_queue):
        assert await handle.result() == ["a", "b", "c", "run"]
    types = [e.event_type for e in (await handle.fetch_history()).events]
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 1


async def test_signal_with_start_delivers_the_signal_first(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            Inbox.run,
            1,
            id=f"in-2-{suffix}",
            task_queue=task_queue,
            start_signal="add",
            start_signal_args=["x"],
        )
        assert await handle.result() == ["x", "run"]
    first = (await handle.fetch_history()).events[:2]
    assert [e.event_type for e in first] == [
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    ]


async def test_many_signals_in_one_workflow_task(
    client: Client, task_queue: str, suffix: str
) -> None:
    handle = await client.start_workflow(Inbox.run, 20, id=f"in-3-{suffix}", task_queue=task_queue)
    # A worker without a cache has no sticky queue: the next task goes to any worker.
    async with worker(client, task_queue, max_cached_workflows=0):
        await first_task_done(handle)
    items = [f"s{i:02}" for i in range(20)]
    for item in items:
        await handle.signal(Inbox.add, item)
    async with worker(client, task_queue, max_cached_workflows=0):
        assert await handle.result() == ["run", *items]
    types = [e.event_type for e in (await handle.fetch_history()).events]
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == 20
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 2


async def test_a_burst_of_concurrent_signals_all_arrive(
    client: Client, task_queue: str, suffix: str
) -> None:
    handle = await client.start_workflow(
        Inbox.run, 100, id=f"in-burst-{suffix}", task_queue=task_queue
    )
    items = [f"s{i:03}" for i in range(100)]
    async with worker(client, task_queue):
        await asyncio.gather(*(handle.signal(Inbox.add, item) for item in items))
        result = await handle.result()
    # Signals that arrive before the first task run before the run method.
    assert sorted(item for item in result if item != "run") == items
    types = [e.event_type for e in (await handle.fetch_history()).events]
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == 100


async def test_typed_queries_answer_while_running_and_after_completion(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            Inbox.run, 2, id=f"in-4-{suffix}", task_queue=task_queue
        )
        await first_task_done(handle)
        await handle.signal(Inbox.add, "apple")
        while await handle.query(Inbox.count, "a") != 1:
            await asyncio.sleep(0.02)
        status = await handle.query(Inbox.status)
        assert isinstance(status, Status)
        assert (status.phase, status.items) == ("open", ["run", "apple"])
        assert status.since.tzinfo is not None
        untyped = await handle.query("status")
        assert untyped["items"] == ["run", "apple"] and isinstance(untyped["since"], str)
        await handle.signal(Inbox.add, "avocado")
        assert await handle.result() == ["run", "apple", "avocado"]
        # A completed workflow is replayed to answer.
        final = await handle.query("status", result_type=Status)
        assert final == Status("open", ["run", "apple", "avocado"], status.since)
        assert await handle.query(Inbox.count, "a") == 2


async def test_a_query_after_a_signal_sees_the_signal(
    client: Client, task_queue: str, suffix: str
) -> None:
    # Temporal holds a query while a workflow task is pending and answers after it.
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            Inbox.run, 5, id=f"in-8-{suffix}", task_queue=task_queue
        )
        await first_task_done(handle)
        answers = []
        for item in ["s1", "s2", "s3"]:
            await handle.signal(Inbox.add, item)
            answers.append(await handle.query(Inbox.count, "s"))
        assert answers == [1, 2, 3]
        await handle.signal(Inbox.close)
        await handle.result()


async def test_query_of_a_failed_workflow(client: Client, task_queue: str, suffix: str) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            Inbox.run, 1, id=f"in-5-{suffix}", task_queue=task_queue
        )
        await handle.signal(Inbox.add, "fail")
        with pytest.raises(Exception, match="Workflow execution failed"):
            await handle.result()
        assert await handle.query(Inbox.count, "f") == 1


async def test_unknown_and_failing_queries_fail_the_query_only(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            Inbox.run, 1, id=f"in-6-{suffix}", task_queue=task_queue
        )
        with pytest.raises(WorkflowQueryFailedError) as unknown:
            await handle.query("nope")
        assert unknown.value.message == (
            "Query handler for 'nope' expected but not found, "
            "known queries: [__enhanced_stack_trace __stack_trace __temporal_workflow_metadata "
            "broken count status]"
        )
        with pytest.raises(WorkflowQueryFailedError) as broken:
            await handle.query(Inbox.broken)
        assert broken.value.message == "query handler broke"
        await handle.signal(Inbox.add, "still fine")
        assert await handle.result() == ["run", "still fine"]


async def test_signal_to_a_completed_workflow_is_not_found(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            Inbox.run, 0, id=f"in-7-{suffix}", task_queue=task_queue
        )
        await handle.result()
    with pytest.raises(RPCError) as info:
        await handle.signal(Inbox.add, "too late")
    assert info.value.status == RPCStatusCode.NOT_FOUND
    assert info.value.message == "workflow execution already completed"


async def test_dynamic_signal_and_query_handlers(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(Dynamic.run, id=f"dy-{suffix}", task_queue=task_queue)
        await handle.signal("foo", 1)
        await handle.signal("bar", args=["x", 2])
        assert await handle.query("anything", "q") == {
            "query": "anything",
            "args": ["q"],
            "seen": 2,
        }
        await handle.signal(Dynamic.finish)  # a named handler wins over the dynamic one
        assert await handle.result() == [["foo", [1]], ["bar", ["x", 2]]]


async def test_handlers_set_at_run_time_get_the_buffered_signals(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(Late.run, id=f"late-{suffix}", task_queue=task_queue)
        await handle.signal("late", 1)
        await handle.signal("late", 2)
        with pytest.raises(WorkflowQueryFailedError, match="late_q"):
            await handle.query("late_q")
        await handle.signal(Late.enable)
        while True:
            with contextlib.suppress(WorkflowQueryFailedError):
                if await handle.query("late_q") == [1, 2]:
                    break
            await asyncio.sleep(0.02)
        await handle.signal("late", 3)
        assert await handle.result() == [1, 2, 3]
        assert await handle.query("late_q") == [1, 2, 3]


async def test_a_long_history_reads_back_whole_and_in_order(
    client: Client, task_queue: str, suffix: str
) -> None:
    handle = await client.start_workflow(
        Inbox.run, 600, id=f"in-long-{suffix}", task_queue=task_queue
    )
    for start in range(0, 600, 100):
        await asyncio.gather(
            *(handle.signal(Inbox.add, f"s{i}") for i in range(start, start + 100))
        )
    async with worker(client, task_queue):
        await handle.result()
    events = (await handle.fetch_history()).events
    # Servers hand histories out in pages; the client follows every one.
    assert len(events) > 600
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))


async def test_a_query_reject_condition_refuses_closed_runs(
    client: Client, task_queue: str, suffix: str
) -> None:
    from temporalio.client import (
        WorkflowExecutionStatus,
        WorkflowFailureError,
        WorkflowQueryRejectedError,
    )
    from temporalio.common import QueryRejectCondition

    async with Worker(client, task_queue=task_queue, workflows=[Inbox]):
        done = await client.start_workflow(
            Inbox.run, 1, id=f"rej-ok-{suffix}", task_queue=task_queue
        )
        await done.signal(Inbox.add, "x")
        await done.result()
        failed = await client.start_workflow(
            Inbox.run, 1, id=f"rej-fail-{suffix}", task_queue=task_queue
        )
        await failed.signal(Inbox.add, "fail")
        with pytest.raises(WorkflowFailureError):
            await failed.result()
        running = await client.start_workflow(
            Inbox.run, 5, id=f"rej-open-{suffix}", task_queue=task_queue
        )
        not_open = QueryRejectCondition.NOT_OPEN
        not_clean = QueryRejectCondition.NOT_COMPLETED_CLEANLY
        # A running workflow answers whatever the condition.
        assert await running.query(Inbox.count, "r", reject_condition=not_open) == 1
        with pytest.raises(WorkflowQueryRejectedError) as rejected:
            await done.query(Inbox.count, "r", reject_condition=not_open)
        assert rejected.value.status == WorkflowExecutionStatus.COMPLETED
        # Completed cleanly: answered; failed: refused.
        assert await done.query(Inbox.count, "r", reject_condition=not_clean) == 1
        with pytest.raises(WorkflowQueryRejectedError) as rejected:
            await failed.query(Inbox.count, "r", reject_condition=not_clean)
        assert rejected.value.status == WorkflowExecutionStatus.FAILED
        await running.terminate()
