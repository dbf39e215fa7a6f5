"""Schedules across SIGKILLs and processes: every action once, none lost, none twice.

Worker processes (``schedule_app.py``) are killed at random instants and left
down for a while; the actions that came due meanwhile are taken when a process
runs again, within the catch-up window. The workflow a schedule starts is named
after its action's time, so the runs in the store show which actions were taken.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from ablauf import Client

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("schedule_app.py")


def spawn(store: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(APP), str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "worker ready" in line, line + proc.stdout.read()
    return proc


def kill(proc: subprocess.Popen[str]) -> str:
    """Kills the process; returns what it printed."""
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    return out


async def create(store: Path, catchup: timedelta | None = None) -> None:
    """Creates a schedule acting every second, then closes the client: nothing runs it."""
    client = await Client.connect(f"sqlite:///{store}")
    await client.create_schedule(
        "every-second",
        Schedule(
            action=ScheduleActionStartWorkflow("Stamp", id="stamp", task_queue="stamps"),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL, catchup_window=catchup),
        ),
    )
    await client.close()


async def taken(store: Path) -> tuple[list[datetime], int, int]:
    """The action times that have a run, the schedule's action and missed counts.

    The schedule is paused first (taking what came due since the last process died),
    so nothing changes while the store is read.
    """
    client = await Client.connect(f"sqlite:///{store}")
    try:
        handle = client.get_schedule_handle("every-second")
        await handle.pause()
        info = (await handle.describe()).info
        engine = client.engine
        assert engine is not None
        ids = Counter()
        for run_id in engine.store.iter_run_ids():
            exe = engine.store.get_execution(run_id)
            assert exe is not None
            ids[exe.workflow_id] += 1
    finally:
        await client.close()
    assert ids, "the schedule took no action"
    assert max(ids.values()) == 1, f"an action ran twice: {ids.most_common(3)}"
    times = sorted(datetime.strptime(i[-20:], "%Y-%m-%dT%H:%M:%SZ") for i in ids)
    return times, info.num_actions, info.num_actions_missed_catchup_window


def gaps(times: list[datetime]) -> list[int]:
    """How many whole seconds are missing between consecutive action times."""
    return [int((b - a).total_seconds()) - 1 for a, b in itertools.pairwise(times)]


@pytest.mark.timeout(120)
async def test_actions_due_while_no_process_ran_are_taken_once(tmp_path: Path) -> None:
    store = tmp_path / "schedule.db"
    await create(store)
    rng = random.Random(5)
    outputs = []
    for _ in range(5):
        await asyncio.sleep(rng.uniform(0.5, 2.5))  # down: actions come due
        proc = spawn(store)
        await asyncio.sleep(rng.uniform(0.1, 1.5))
        outputs.append(kill(proc))
    times, actions, missed = await taken(store)
    # Every second from the first action on has exactly one run; none was missed.
    assert gaps(times) == [0] * (len(times) - 1)
    assert actions == len(times) and missed == 0
    assert len(times) >= 8
    assert not any("already started" in out for out in outputs), outputs


@pytest.mark.timeout(120)
async def test_actions_older_than_the_catchup_window_are_missed(tmp_path: Path) -> None:
    store = tmp_path / "schedule.db"
    await create(store, catchup=timedelta(seconds=10))
    proc = spawn(store)
    await asyncio.sleep(2)
    kill(proc)
    await asyncio.sleep(14)  # down longer than the window
    proc = spawn(store)
    await asyncio.sleep(1.5)
    kill(proc)
    times, actions, missed = await taken(store)
    # One gap: the actions more than 10 s late when the second process started.
    (gap,) = [g for g in gaps(times) if g]
    assert gap == missed
    assert 2 <= missed <= 6
    assert actions == len(times)
    assert times[-1] - times[0] >= timedelta(seconds=15)


@pytest.mark.timeout(120)
async def test_two_processes_on_one_file_take_each_action_once(tmp_path: Path) -> None:
    store = tmp_path / "schedule.db"
    await create(store)
    procs = [spawn(store), spawn(store)]
    await asyncio.sleep(6)
    outputs = [kill(p) for p in procs]
    times, actions, missed = await taken(store)
    assert gaps(times) == [0] * (len(times) - 1)
    assert actions == len(times) and missed == 0
    assert len(times) >= 5
    assert not any("already started" in out for out in outputs), outputs
