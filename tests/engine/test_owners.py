"""Processes on one store file: alive while they renew their owner lease, gone
once it has passed, whatever their pid; only processes with workers keep time."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from temporalio.api.command.v1 import Command, StartTimerCommandAttributes
from temporalio.api.enums.v1 import CommandType

from ablauf.engine import executions
from ablauf.engine.engine import Engine
from ablauf.engine.owners import OWNER_LEASE
from ablauf.errors import StoreLostError
from ablauf.store import open_store
from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK, OwnerRecord

from .conftest import ManualClock, start_request
from .test_transitions import schedule_activity, take, types

# A pid no process has (above Linux's largest).
_NO_SUCH_PID = 2**22 + 12345


def _second_process(tmp_path: Path, clock: ManualClock, *, workers: bool = True) -> Engine:
    """Another engine on the same file, as another process would have it."""
    other = Engine(open_store(str(tmp_path / "engine.db")), clock=clock)
    if workers:
        other.matching.register(WORKFLOW_TASK, "q")
        other.matching.register(ACTIVITY_TASK, "q")
        other.update_owner()
    return other


def _lease_task_to(engine: Engine, run_id: str, owner: OwnerRecord) -> None:
    with engine.store.transaction():
        engine.store.register_owner(owner)
        task = engine.store.tasks_of_run(run_id)[0]
        task.lease_owner = owner.owner_id
        task.lease_until = engine.clock.now() + 10
        engine.store.update_task(task)


async def test_an_owner_that_renews_is_alive_though_its_pid_is_gone(
    engine: Engine, tmp_path: Path, clock: ManualClock
) -> None:
    run_id = executions.start(engine, start_request())[0]
    # In another PID namespace (a container), or before the pid was reused:
    # the pid tells nothing, the lease does.
    owner = OwnerRecord("elsewhere", _NO_SUCH_PID, clock.now(), ("q",), time.time() + 60)
    _lease_task_to(engine, run_id, owner)
    other = _second_process(tmp_path, clock)
    other.service.tick()
    queue = other.matching.local(WORKFLOW_TASK, "q")
    assert queue is not None and len(queue) == 0
    assert "elsewhere" in {o.owner_id for o in other.owners.live()}
    other.store.close()


async def test_an_owner_taken_for_gone_comes_back_under_its_id(
    local: Engine, tmp_path: Path, clock: ManualClock
) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    # The first process stalls beyond its lease; the second sees it gone.
    other = _second_process(tmp_path, clock)
    stalled = local.owners.lease_until + 1
    other.owners.wall = lambda: stalled
    other.service.tick()
    assert local.owner_id not in {o.owner_id for o in other.store.owners()}
    other_queue = other.matching.local(WORKFLOW_TASK, "q")
    assert other_queue is not None and len(other_queue) == 1
    # Its late completion is refused: the task is the second process's now.
    assert not local.workflow_tasks.complete(ref, [schedule_activity()])
    # Back, it renews under the same id instead of writing into others' leases.
    local.owners.wall = lambda: stalled
    local.service.request_scan()
    local.service.tick()
    assert local.owner_id in {o.owner_id for o in other.store.owners()}
    assert types(other, run_id)[-1] == "WORKFLOW_TASK_SCHEDULED"
    other.store.close()


async def test_a_lease_changed_under_a_live_owner_means_another_file(
    local: Engine, tmp_path: Path
) -> None:
    local.service.tick()
    # Nobody takes a lease that has not passed: rows this process never wrote
    # mean the file was restored or written over while it ran.
    with sqlite3.connect(tmp_path / "engine.db") as db:
        db.execute("UPDATE owners SET lease_until=lease_until-1")
    db.close()
    local.service.request_scan()
    with pytest.raises(StoreLostError, match="its rows changed under this process"):
        local.service.tick()


async def test_a_process_without_workers_leaves_timers_to_one_with_workers(
    local: Engine, tmp_path: Path, clock: ManualClock
) -> None:
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    attrs = StartTimerCommandAttributes(timer_id="1")
    attrs.start_to_fire_timeout.FromSeconds(5)
    timer = Command(
        command_type=CommandType.COMMAND_TYPE_START_TIMER, start_timer_command_attributes=attrs
    )
    assert local.workflow_tasks.complete(ref, [timer])
    client = _second_process(tmp_path, clock, workers=False)
    clock.advance(5)
    client.service.tick()
    assert types(client, run_id)[-1] == "TIMER_STARTED"
    assert client.store.owners()[0].owner_id == local.owner_id  # it wrote no row
    # With no live process hosting workers, the client's process keeps time.
    client.owners.wall = lambda: time.time() + OWNER_LEASE + 1
    client.service.request_scan()
    client.service.tick()
    assert types(client, run_id)[-2:] == ["TIMER_FIRED", "WORKFLOW_TASK_SCHEDULED"]
    client.store.close()
