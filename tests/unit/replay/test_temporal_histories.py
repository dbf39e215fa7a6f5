"""Histories recorded on a real Temporal server (``temporal server start-dev``, temporalio 1.35).

Each JSON file under ``histories/`` was produced by running the workflow class of
the same name below with the official ``temporalio`` Client and Worker and saving
``handle.fetch_history().to_json()``. ablauf must replay them producing, task by
task, exactly the commands the Python SDK produced.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowHistory
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.converter import PayloadConverter
from temporalio.exceptions import ActivityError, ApplicationError

from ablauf.replay import WorkflowInstance

from .helpers import CONVERTER, check_history

HISTORIES = Path(__file__).parent / "histories"


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@activity.defn
async def fail_once_then(name: str) -> str:
    if activity.info().attempt < 2:
        raise ApplicationError("first attempt fails")
    return f"ok {name}"


@activity.defn
async def always_fails() -> None:
    raise ApplicationError("boom", {"k": 1}, type="MyError", non_retryable=True)


@activity.defn
async def slow(seconds: float) -> str:
    while seconds > 0:
        activity.heartbeat()
        await asyncio.sleep(0.1)
        seconds -= 0.1
    return "done"


@workflow.defn
class ActivitiesTimers:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        out = [
            await workflow.execute_activity(
                greet, name, start_to_close_timeout=timedelta(seconds=10)
            )
        ]
        await asyncio.sleep(1)
        res = await asyncio.gather(
            workflow.execute_activity(greet, "a", start_to_close_timeout=timedelta(seconds=10)),
            workflow.execute_activity(
                "greet",
                "b",
                schedule_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
            ),
        )
        out.extend(res)
        await workflow.sleep(timedelta(milliseconds=500))
        out.append(
            await workflow.execute_activity(
                fail_once_then,
                "x",
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            )
        )
        out.append(str(workflow.uuid4()))
        out.append(str(workflow.random().randint(0, 1000)))
        return out


@workflow.defn
class SignalsQueries:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    async def finish(self) -> None:
        await asyncio.sleep(0.2)
        self.done = True

    @workflow.query
    def get_items(self) -> list[str]:
        return self.items

    @workflow.run
    async def run(self) -> list[str]:
        seen_at_start = list(self.items)
        try:
            await workflow.wait_condition(lambda: len(self.items) >= 100, timeout=1)
        except TimeoutError:
            self.items.append("timeout")
        await workflow.wait_condition(lambda: self.done)
        return seen_at_start + self.items


@workflow.defn
class Cancellation:
    @workflow.run
    async def run(self) -> str:
        # a timer cancelled via Task.cancel
        t = asyncio.create_task(asyncio.sleep(100))
        await asyncio.sleep(0)
        t.cancel()
        # an activity cancelled before its command was ever sent
        h0 = workflow.start_activity(greet, "never", start_to_close_timeout=timedelta(seconds=5))
        h0.cancel()
        # TRY_CANCEL on a running activity
        h1 = workflow.start_activity(
            slow,
            30,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=2),
        )
        await asyncio.sleep(0.5)
        h1.cancel()
        results = []
        for h in (h0, h1):
            try:
                await h
            except ActivityError as e:
                results.append(type(e.cause).__name__)
            except asyncio.CancelledError:
                results.append("asyncio-cancelled")
        # WAIT_CANCELLATION_COMPLETED
        h2 = workflow.start_activity(
            slow,
            30,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=2),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await asyncio.sleep(0.5)
        h2.cancel()
        try:
            await h2
        except ActivityError as e:
            results.append(type(e.cause).__name__)
        try:
            # The ABANDON activity resolves as cancelled, so wait_for re-raises that
            # ActivityError, which fails the workflow (recorded that way).
            await asyncio.wait_for(
                workflow.execute_activity(
                    slow,
                    30,
                    start_to_close_timeout=timedelta(seconds=60),
                    heartbeat_timeout=timedelta(seconds=2),
                    cancellation_type=workflow.ActivityCancellationType.ABANDON,
                ),
                timeout=0.3,
            )
        except TimeoutError:
            results.append("wait_for-timeout")
        await asyncio.sleep(3600)
        return ",".join(results)


@workflow.defn
class Failures:
    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.execute_activity(
                always_fails, start_to_close_timeout=timedelta(seconds=5)
            )
        except ActivityError as e:
            assert isinstance(e.cause, ApplicationError)
            raise ApplicationError(
                f"wrapped: {e.cause.message} {e.retry_state}", type="Wrapped"
            ) from e


@workflow.defn
class PatchesMemoCan:
    @workflow.run
    async def run(self, n: int) -> int:
        if workflow.patched("my-patch"):
            workflow.upsert_memo({"n": n, "gone": None})
        workflow.upsert_search_attributes(
            [SearchAttributeKey.for_keyword("CustomKeywordField").value_set(f"v{n}")]
        )
        await workflow.sleep(0.1)
        workflow.deprecate_patch("old-patch")
        if n < 2:
            workflow.continue_as_new(n + 1)
        return n * 10


@workflow.defn
class CancelMe:
    @workflow.run
    async def run(self) -> str:
        h = workflow.start_activity(
            slow,
            600,
            start_to_close_timeout=timedelta(seconds=700),
            heartbeat_timeout=timedelta(seconds=2),
        )
        try:
            await asyncio.gather(workflow.sleep(3600), h)
        except asyncio.CancelledError:
            workflow.logger.info("cancelled: %s", workflow.cancellation_reason())
            await workflow.execute_activity(
                greet, "cleanup", start_to_close_timeout=timedelta(seconds=5)
            )
            raise
        return "not cancelled"


CASES = {
    "activities_timers": ActivitiesTimers,
    "signals_queries": SignalsQueries,
    "cancellation": Cancellation,
    "failures": Failures,
    "patches_can": PatchesMemoCan,
    "workflow_cancel": CancelMe,
}


def load(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_temporal_history_replays_task_by_task(name: str) -> None:
    check_history(CASES[name], load(name))


def test_query_after_replaying_a_closed_run() -> None:
    history = load("signals_queries")
    instance = WorkflowInstance(
        workflow._Definition.must_from_class(SignalsQueries),
        namespace="default",
        workflow_id="signals",
        run_id=history.events[
            0
        ].workflow_execution_started_event_attributes.original_execution_run_id,
        data_converter=CONVERTER,
    )
    assert instance.activate(history.events).commands == []
    items = PayloadConverter.default.from_payload(instance.query("get_items", []))
    assert items == ["early", "timeout", "late"]
    instance.close()
