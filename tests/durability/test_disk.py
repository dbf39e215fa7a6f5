"""A full disk and a read-only file system under real processes: every call
fails at once with a StoreError that names the cause and the file, and once
the disk has room again every acknowledged workflow completes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("disk_app.py")


def _can_mount(directory: Path) -> bool:
    # A file system of the test's own, in a mount namespace that ends with it.
    command = ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs"]
    try:
        done = subprocess.run([*command, "tmpfs", str(directory)], capture_output=True)
    except OSError:
        return False
    return done.returncode == 0


@pytest.mark.timeout(180)
def test_a_full_disk_fails_calls_clearly_and_the_store_resumes(tmp_path: Path) -> None:
    disk, logs = tmp_path / "disk", tmp_path / "logs"
    disk.mkdir()
    logs.mkdir()
    if not _can_mount(disk):
        pytest.skip("mounting a small tmpfs needs root and `unshare --mount`")
    done = subprocess.run(
        [
            "unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o size=16m tmpfs "$1" && exec "$2" "$3" "$1" "$4"',
            "sh", str(disk), sys.executable, str(APP), str(logs),
        ],
        capture_output=True,
        text=True,
        timeout=170,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    store = disk / "store.db"
    assert seen["full_errors"] == [
        f"StoreError: store {store}: the disk is full (database or disk is full)"
    ]
    assert seen["read_only_errors"] == [
        f"StoreError: store {store}: the file system is read-only (unable to open database file)"
    ]
    assert seen["acknowledged"] == seen["completed"] > seen["acknowledged_while_full"]
    worker_log = (logs / "worker.log").read_text()
    assert "cannot rollback" not in worker_log and "Traceback" not in worker_log
