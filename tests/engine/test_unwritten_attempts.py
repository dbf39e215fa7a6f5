"""A first attempt leased to this process when scheduled gets no task row until
something must outlive the process's memory; other processes and the next one
after a crash rebuild it from the history and the run's ``activity_owner``."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from temporalio.api.common.v1 import Payload, Payloads

from ablauf.engine import activities, executions
from ablauf.engine.engine import Engine
from ablauf.engine.matching import TaskRef
from ablauf.history.tasks import ActivityCompleted
from ablauf.store import open_store
from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK, OwnerRecord

from .conftest import ManualClock, start_request
from .test_transitions import schedule_activity, take, times_out_at_30s, types


def _on_disk(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(sql).fetchall()
    db.close()
    return rows


async def _running_attempt(engine: Engine, attempts: int = 0) -> tuple[str, TaskRef]:
    engine.matching.register(WORKFLOW_TASK, "q")
    engine.matching.register(ACTIVITY_TASK, "q")
    run_id = executions.start(engine, start_request())[0]
    ref = await take(engine, WORKFLOW_TASK)
    assert engine.workflow_tasks.read(ref, 0) is not None
    assert engine.workflow_tasks.complete(ref, [schedule_activity(attempts=attempts)])
    return run_id, await take(engine, ACTIVITY_TASK)


async def test_a_first_attempt_run_here_writes_no_task_row(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    run_id, act_ref = await _running_attempt(engine)
    assert _on_disk(path, "SELECT kind FROM tasks") == []
    assert _on_disk(path, "SELECT activity_owner FROM executions") == [(engine.owner_id,)]
    activities.record_outcome(engine, act_ref, ActivityCompleted(Payload(data=b"7")), None)
    assert types(engine, run_id)[-3:] == [
        "ACTIVITY_TASK_STARTED",
        "ACTIVITY_TASK_COMPLETED",
        "WORKFLOW_TASK_SCHEDULED",
    ]
    assert _on_disk(path, "SELECT kind FROM tasks") == [(WORKFLOW_TASK,)]


async def test_a_heartbeat_writes_the_row(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    _, act_ref = await _running_attempt(engine)
    details = Payloads(payloads=[Payload(data=b"half way")])
    assert activities.heartbeat(engine, act_ref, details) is False
    rows = _on_disk(path, "SELECT kind, attempt, lease_owner, heartbeat_details FROM tasks")
    assert rows == [(ACTIVITY_TASK, 1, engine.owner_id, details.SerializeToString())]


async def test_another_process_changing_the_run_keeps_the_attempt(
    engine: Engine, tmp_path: Path, clock: ManualClock
) -> None:
    run_id, act_ref = await _running_attempt(engine)
    other = Engine(open_store(str(tmp_path / "engine.db")), clock=clock)
    executions.signal(other, run_id, "poke", Payloads(), "other", None)
    pending = next(iter(other.state_of(run_id).activities.values()))
    assert pending.task is not None and pending.task.lease_owner == engine.owner_id
    # The owner's result still counts after the other process rewrote the run.
    activities.record_outcome(engine, act_ref, ActivityCompleted(Payload(data=b"7")), None)
    assert "ACTIVITY_TASK_COMPLETED" in types(engine, run_id)
    assert "ACTIVITY_TASK_COMPLETED" in types(other, run_id)
    other.store.close()


async def test_the_attempt_of_a_dead_process_times_out_and_gets_its_row(
    engine: Engine, tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "engine.db"
    run_id, _ = await _running_attempt(engine, attempts=1)
    # The owner dies without closing (its lease runs out): its attempt exists
    # only in the history.
    with engine.store.transaction():
        engine.store.register_owner(
            OwnerRecord(engine.owner_id, os.getpid(), clock.now(), ("q",), time.time() - 0.1)
        )
    other = Engine(open_store(str(path)), clock=clock)
    other.service.tick()
    assert _on_disk(path, "SELECT kind, lease_owner FROM tasks") == [
        (ACTIVITY_TASK, engine.owner_id)
    ]
    assert _on_disk(path, "SELECT activity_owner FROM executions") == [(None,)]
    times_out_at_30s(other, run_id, clock)
    other.store.close()
