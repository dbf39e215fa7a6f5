"""The check run after every engine test (``tests/replay_check.py``) catches what it should.

``tests/conftest.py`` replays every history that a behaviour, example, durability
or CLI test left in an ablauf store; these tests show that the check fails on a
history that the official Replayer rejects, and names the workflow, and on a
history shaped in a way Temporal's server never writes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from ablauf import Client, Worker
from tests import replay_check


@workflow.defn(name="Napper")
class Napper:
    @workflow.run
    async def run(self) -> str:
        await asyncio.sleep(0.01)
        return "rested"


@workflow.defn(name="Napper")
class NapperChanged:
    @workflow.run
    async def run(self) -> str:
        return "rested"


async def _store_with_one_run(tmp_path: Path) -> None:
    client = await Client.connect(f"sqlite:///{tmp_path / 'check.db'}")
    async with Worker(client, task_queue="tq", workflows=[Napper]):
        assert await client.execute_workflow(Napper.run, id="nap-1", task_queue="tq") == "rested"
    await client.close()


async def test_a_history_replays_with_the_code_that_wrote_it(tmp_path: Path) -> None:
    await _store_with_one_run(tmp_path)
    report = await replay_check.check_stores(tmp_path, [Napper], [])
    assert report.failures == []
    assert report.replayed == {Napper: 1}


async def test_changed_code_is_reported_with_the_workflow_id(tmp_path: Path) -> None:
    await _store_with_one_run(tmp_path)
    report = await replay_check.check_stores(tmp_path, [NapperChanged], [])
    assert report.replayed == {}
    [failure] = report.failures
    assert "'nap-1'" in failure and "NondeterminismError" in failure


async def test_one_of_several_classes_of_a_name_may_replay_it(tmp_path: Path) -> None:
    await _store_with_one_run(tmp_path)
    report = await replay_check.check_stores(tmp_path, [NapperChanged, Napper], [])
    assert report.failures == []
    assert report.replayed == {Napper: 1}


async def test_a_run_no_class_can_replay_is_reported(tmp_path: Path) -> None:
    await _store_with_one_run(tmp_path)
    report = await replay_check.check_stores(tmp_path, [], [])
    [failure] = report.failures
    assert "'nap-1'" in failure and "no workflow class" in failure


def test_workflow_classes_are_those_defined_in_the_module() -> None:
    me = sys.modules[__name__]
    assert replay_check.workflow_classes([me]) == [Napper, NapperChanged]


def _history(*types: EventType.ValueType, ids: list[int] | None = None) -> WorkflowHistory:
    events = [
        HistoryEvent(event_id=(ids[i] if ids else i + 1), event_type=t) for i, t in enumerate(types)
    ]
    events[0].workflow_execution_started_event_attributes.workflow_type.name = "Napper"
    return WorkflowHistory("wf", events)


def test_shape_problems_temporal_would_never_write() -> None:
    started, scheduled, task_started, task_completed, timer, completed = (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        EventType.EVENT_TYPE_TIMER_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    )
    good = (started, scheduled, task_started, task_completed, completed)
    assert replay_check.shape_problems(_history(*good)) == []
    [after_close] = replay_check.shape_problems(_history(*good, timer))
    assert "EVENT_TYPE_TIMER_STARTED after the closing event 5" in after_close
    [inside] = replay_check.shape_problems(
        _history(started, scheduled, task_started, timer, task_completed, completed)
    )
    assert "event 4 EVENT_TYPE_TIMER_STARTED inside the workflow task started at 3" in inside
    [gap] = replay_check.shape_problems(_history(*good, ids=[1, 2, 3, 4, 6]))
    assert gap == "event 5 has id 6"
