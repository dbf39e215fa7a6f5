"""Several worker processes on one store file: every task runs in exactly one of them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ablauf import Client

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("split_app.py")


def spawn(store: Path, role: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(APP), str(store), role],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "worker ready" in line, line + proc.stdout.read()
    return proc


@pytest.mark.timeout(120)
async def test_task_queues_in_separate_processes_share_the_work(tmp_path: Path) -> None:
    store = tmp_path / "shared.db"
    client = await Client.connect(f"sqlite:///{store}")
    procs = [spawn(store, "orders"), spawn(store, "payments"), spawn(store, "payments")]
    try:
        handles = [
            await client.start_workflow("Checkout", 40, id=f"checkout-{i}", task_queue="orders")
            for i in range(3)
        ]
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 90)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        await client.close()
    assert results == [[f"charged-{i}" for i in range(40)]] * 3
    lines = Path(f"{store}.payments").read_text().splitlines()
    # No attempt ran twice.
    assert len(lines) == 120
    assert Counter(int(line.split()[0]) for line in lines) == Counter({i: 3 for i in range(40)})
