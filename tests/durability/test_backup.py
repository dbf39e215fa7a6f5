"""``ablauf store backup`` copies a store while a worker process runs on it; a
store restored from that copy (all processes stopped first) carries on."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ablauf import Client

from .test_leases import kill, spawn

pytestmark = pytest.mark.slow


def ablauf(*args: str) -> subprocess.CompletedProcess[str]:
    # In a process of its own: closing its connection to the store here would
    # drop the locks this process's engine holds on the file.
    return subprocess.run(
        [sys.executable, "-m", "ablauf.cli", *args], capture_output=True, text=True
    )


@pytest.mark.timeout(120)
async def test_a_backup_taken_while_workflows_run_restores_them(tmp_path: Path) -> None:
    store, copy = tmp_path / "live.db", tmp_path / "backup.db"
    worker = spawn(store)
    client = await Client.connect(f"sqlite:///{store}")
    try:
        done = await client.start_workflow("Hold", args=[1, 0.01], id="done", task_queue="leases")
        assert await asyncio.wait_for(done.result(), 30) == ["done/0:1"]
        # Activities held for 3 s: the backup catches them running.
        running = [
            await client.start_workflow("Hold", args=[3, 2.0], id=f"run-{i}", task_queue="leases")
            for i in range(10)
        ]
        await asyncio.sleep(0.5)
        taken = ablauf("store", "backup", "--target", f"sqlite:///{store}", "--to", str(copy))
        assert taken.returncode == 0, taken.stderr
        assert taken.stdout == f"{store}: backed up to {copy}\n"
        again = ablauf("store", "backup", "--target", f"sqlite:///{store}", "--to", str(copy))
        assert again.returncode == 1
        assert "the file exists (a backup never overwrites one)" in again.stderr
    finally:
        kill(worker)
        await client.close()
    # Restored: every process stopped, the store's files replaced by the copy.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(copy, store)
    assert ablauf("store", "check", "--target", f"sqlite:///{store}").returncode == 0
    worker = spawn(store)
    client = await Client.connect(f"sqlite:///{store}")
    try:
        assert await client.get_workflow_handle("done").result() == ["done/0:1"]
        for i, handle in enumerate(running):
            results = await asyncio.wait_for(client.get_workflow_handle(handle.id).result(), 30)
            # Attempts that ran in the lost process after the backup ran again.
            assert sorted(r.rsplit(":", 1)[0] for r in results) == [
                f"run-{i}/{k}" for k in range(3)
            ]
    finally:
        kill(worker)
        await client.close()
    assert not os.path.exists(tmp_path / "missing.db")
    missing = ablauf("store", "backup", "--target", f"sqlite:///{tmp_path / 'missing.db'}",
                     "--to", str(tmp_path / "b2.db"))  # fmt: skip
    assert missing.returncode == 1 and "no such file" in missing.stderr
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "b2.db").exists()
