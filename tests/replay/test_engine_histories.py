"""Histories the embedded engine writes for what the workflow runtime supports.

Each test runs one feature end to end on a fresh store; after it, the suite's
check (``tests/conftest.py``) exports every run and replays it in Temporal's
``Replayer`` and checks its shape, so these tests cover the features that the
behaviour tests and examples do not: patches, continue-as-new, memo and search
attribute upserts, signal-with-start, handlers that run activities, workflow
cancellation with cleanup, every activity cancellation type, asyncio helpers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from ablauf import Client, Worker

TQ = "replayed"
KEYWORD = SearchAttributeKey.for_keyword("CustomKeywordField")


@activity.defn
async def echo(text: str) -> str:
    return text


@activity.defn
async def refuse(text: str) -> str:
    raise ApplicationError(f"refused {text}", non_retryable=activity.info().attempt >= 2)


@activity.defn
async def lingers(seconds: float) -> str:
    """Heartbeats until cancelled; the cancellation takes a moment to clean up."""
    try:
        for _ in range(int(seconds / 0.02)):
            activity.heartbeat()
            await asyncio.sleep(0.02)
    except asyncio.CancelledError:
        await asyncio.sleep(0.2)
        raise
    return "lingered"


def _act(fn: Any, *args: Any, **kwargs: Any) -> Any:
    timeout = timedelta(seconds=5)
    return workflow.execute_activity(fn, *args, start_to_close_timeout=timeout, **kwargs)


@workflow.defn
class Patched:
    @workflow.run
    async def run(self) -> list[str]:
        out = []
        if workflow.patched("new-step"):
            out.append(await _act(echo, "new"))
        workflow.deprecate_patch("old-fix")
        await workflow.sleep(0.02)
        if workflow.patched("new-step"):
            out.append("still new")
        return out


@workflow.defn
class Renews:
    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.sleep(0.01)
        if n < 2:
            workflow.continue_as_new(n + 1)
        return n


@workflow.defn
class Inbox:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.closed = False

    @workflow.run
    async def run(self) -> list[str]:
        try:
            await workflow.wait_condition(lambda: self.closed, timeout=timedelta(seconds=0.1))
        except TimeoutError:
            self.items.append("timed out")
        await workflow.wait_condition(lambda: self.closed and workflow.all_handlers_finished())
        return self.items

    @workflow.signal
    async def add(self, item: str) -> None:
        self.items.append(await _act(echo, item))

    @workflow.signal
    def close(self) -> None:
        self.closed = True

    @workflow.query
    def seen(self) -> list[str]:
        return self.items


@workflow.defn
class Properties:
    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = [str(workflow.uuid4()), workflow.random().randint(0, 100)]
        workflow.upsert_memo({"stage": "one"})
        workflow.upsert_search_attributes([KEYWORD.value_set("first")])
        await workflow.sleep(0.01)
        workflow.upsert_memo({"stage": None})
        out.append(workflow.memo_value("stage", default=None))
        out.append(workflow.info().typed_search_attributes.get(KEYWORD))
        return out


@workflow.defn
class Asyncio:
    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        sleeper = asyncio.create_task(workflow.sleep(60))
        results = await asyncio.gather(
            _act(echo, "a"),
            _act(refuse, "b", retry_policy=RetryPolicy(maximum_attempts=1)),
            return_exceptions=True,
        )
        out.append([type(r).__name__ for r in results])
        sleeper.cancel()
        try:
            await asyncio.wait_for(workflow.sleep(60), timeout=0.05)
        except TimeoutError:
            out.append("wait_for timed out")
        fast = asyncio.create_task(workflow.sleep(0.01))
        slow = asyncio.create_task(workflow.sleep(60))
        done, pending = await asyncio.wait([fast, slow], return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        out.append(len(done))
        quick = RetryPolicy(initial_interval=timedelta(seconds=0.01))
        out.append(await _act(refuse, "c", retry_policy=quick))
        return out


@workflow.defn
class Fails:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(0.01)
        raise ApplicationError("no", {"why": "because"}, type="Refusal")


@workflow.defn
class CleansUp:
    """Cancelled from outside: waits for its activity's cancellation, then runs a cleanup."""

    @workflow.run
    async def run(self) -> str:
        try:
            return await workflow.execute_activity(
                lingers,
                30.0,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=2),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except (ActivityError, CancelledError):
            await asyncio.shield(asyncio.ensure_future(_act(echo, "cleanup")))
            raise


@workflow.defn
class CancelsActivity:
    @workflow.run
    async def run(self, kind: str) -> str:
        handle = workflow.start_activity(
            lingers,
            30.0,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=2),
            cancellation_type=workflow.ActivityCancellationType[kind],
        )
        await workflow.sleep(0.1)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            return type(err.cause).__name__
        return "not cancelled"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    client = await Client.connect(f"sqlite:///{tmp_path / 'replayed.db'}")
    async with Worker(
        client,
        task_queue=TQ,
        workflows=[Patched, Renews, Inbox, Properties, Asyncio, Fails, CleansUp, CancelsActivity],
        activities=[echo, refuse, lingers],
    ):
        yield client
    await client.close()


async def test_patches(client: Client) -> None:
    assert await client.execute_workflow(Patched.run, id="patched", task_queue=TQ) == [
        "new",
        "still new",
    ]


async def test_continue_as_new(client: Client) -> None:
    assert await client.execute_workflow(Renews.run, 0, id="renews", task_queue=TQ) == 2


async def test_signal_with_start_and_handlers_that_run_activities(client: Client) -> None:
    handle = await client.start_workflow(
        Inbox.run, id="inbox", task_queue=TQ, start_signal="add", start_signal_args=["first"]
    )
    while "timed out" not in await handle.query(Inbox.seen):
        await asyncio.sleep(0.01)
    await handle.signal(Inbox.add, "second")
    await handle.signal(Inbox.close)
    assert await handle.result() == ["first", "timed out", "second"]


async def test_memo_and_search_attribute_upserts(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={KEYWORD.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
        )
    )
    result = await client.execute_workflow(Properties.run, id="props", task_queue=TQ)
    assert result[2:] == [None, "first"]


async def test_asyncio_helpers_and_activity_failures(client: Client) -> None:
    with pytest.raises(WorkflowFailureError) as info:
        await client.execute_workflow(Asyncio.run, id="asyncio", task_queue=TQ)
    assert isinstance(info.value.cause, ActivityError)


async def test_workflow_failure(client: Client) -> None:
    with pytest.raises(WorkflowFailureError):
        await client.execute_workflow(Fails.run, id="fails", task_queue=TQ)


async def test_cancelled_workflow_cleans_up(client: Client) -> None:
    handle = await client.start_workflow(CleansUp.run, id="cleans-up", task_queue=TQ)
    await asyncio.sleep(0.2)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert isinstance(info.value.cause, CancelledError)


@pytest.mark.parametrize("kind", ["TRY_CANCEL", "WAIT_CANCELLATION_COMPLETED", "ABANDON"])
async def test_activity_cancellation_types(client: Client, kind: str) -> None:
    result = await client.execute_workflow(
        CancelsActivity.run, kind, id=f"cancels-{kind}", task_queue=TQ
    )
    assert result == "CancelledError"


async def test_a_closed_history_takes_no_late_activity_outcome(client: Client) -> None:
    # TRY_CANCEL lets the run close while the activity still cleans up; as on Temporal,
    # its late outcome is refused instead of appended after the closing event.
    handle = await client.start_workflow(
        CancelsActivity.run, "TRY_CANCEL", id="closes-first", task_queue=TQ
    )
    await handle.result()
    await asyncio.sleep(0.4)  # the activity's cleanup ends meanwhile
    events = [e async for e in handle.fetch_history_events()]
    assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED not in [e.event_type for e in events]
