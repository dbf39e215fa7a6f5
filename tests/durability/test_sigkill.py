"""SIGKILL at random instants loses nothing: real worker processes on a real file."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from ablauf import Client

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("app.py")


def spawn(store: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(APP), str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "worker ready" in line, line + proc.stdout.read()
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.timeout(180)
async def test_workflows_survive_repeated_sigkill(tmp_path: Path) -> None:
    store = tmp_path / "durable.db"
    client = await Client.connect(f"sqlite:///{store}")
    rng = random.Random(7)
    n = 12
    ids = [f"chain-{i}" for i in range(6)]
    # Started while no worker runs: the starts are durable all the same.
    handles = [await client.start_workflow("Chain", n, id=wid, task_queue="durable") for wid in ids]
    for _ in range(6):
        proc = spawn(store)
        await asyncio.sleep(rng.uniform(0.05, 0.6))
        kill(proc)
    # Signals accepted while no worker runs are kept.
    for h in handles:
        await h.signal("sig", "a")
    proc = spawn(store)
    await asyncio.sleep(rng.uniform(0.1, 0.4))
    kill(proc)
    for h in handles:
        await h.signal("sig", "b")
    proc = spawn(store)
    try:
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 90)
    finally:
        kill(proc)
    expected = [i * 2 for i in range(n)] + ["a", "b"]
    assert results == [expected] * len(ids)
    # Every step ran at least once for every workflow.
    seen = {
        (wid, int(i))
        for wid, i, _ in (
            line.split() for line in Path(f"{store}.attempts").read_text().splitlines()
        )
    }
    assert seen == {(wid, i) for wid in ids for i in range(n)}
    for h in handles:
        desc = await h.describe()
        assert desc.status == WorkflowExecutionStatus.COMPLETED
    await client.close()


@pytest.mark.timeout(60)
async def test_timer_that_came_due_while_nothing_ran_fires_at_next_start(tmp_path: Path) -> None:
    store = tmp_path / "timer.db"
    client = await Client.connect(f"sqlite:///{store}")
    handle = await client.start_workflow("Chain", 1, id="sleeper", task_queue="durable")
    proc = spawn(store)
    # Wait until the one activity is done and the 1 s timer is running, then kill.
    for _ in range(200):
        history = [e async for e in handle.fetch_history_events()]
        if any(e.HasField("timer_started_event_attributes") for e in history):
            break
        await asyncio.sleep(0.02)
    kill(proc)
    await client.close()
    await asyncio.sleep(1.5)  # the timer comes due while no process has the store open
    client = await Client.connect(f"sqlite:///{store}")
    handle = client.get_workflow_handle("sleeper")
    proc = spawn(store)
    try:
        for _ in range(200):
            history = [e async for e in handle.fetch_history_events()]
            if any(e.HasField("timer_fired_event_attributes") for e in history):
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the timer did not fire after the restart")
        await handle.signal("sig", "x")
        await handle.signal("sig", "y")
        assert await asyncio.wait_for(handle.result(), 30) == [0, "x", "y"]
    finally:
        kill(proc)
        await client.close()


@pytest.mark.timeout(60)
async def test_attempt_of_a_killed_process_times_out_and_retries(tmp_path: Path) -> None:
    # The running attempt's start-to-close deadline was kept only in the killed
    # process's memory; the next process must still time the attempt out on time.
    store = tmp_path / "hang.db"
    attempts = Path(f"{store}.attempts")
    client = await Client.connect(f"sqlite:///{store}")
    timeout = 2.0
    handle = await client.start_workflow("Hang", timeout, id="hang", task_queue="durable")
    proc = spawn(store)
    for _ in range(500):
        if attempts.exists() and attempts.read_text():
            break
        await asyncio.sleep(0.01)
    started = time.monotonic()
    kill(proc)
    proc = spawn(store)
    try:
        assert await asyncio.wait_for(handle.result(), 30) == 2
        waited = time.monotonic() - started
    finally:
        kill(proc)
    assert attempts.read_text().split("\n")[:2] == ["hang hang 1", "hang hang 2"]
    # Timed out after start-to-close (plus the 1 s retry interval), not before.
    assert waited >= timeout + 1 - 0.1
    history = [e async for e in handle.fetch_history_events()]
    started_attrs = [
        e.activity_task_started_event_attributes
        for e in history
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert [a.attempt for a in started_attrs] == [2]
    assert started_attrs[0].last_failure.timeout_failure_info.timeout_type == 1  # START_TO_CLOSE
    await client.close()
