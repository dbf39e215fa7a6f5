"""A full disk under a worker and a client process, then a read-only one:
``python disk_app.py DISK LOGS``.

DISK is a small file system of the test's own (a tmpfs); the store lives there
and a filler file takes its free space. A worker process (``lease_app.py``)
runs beside this client process. Afterwards DISK is made read-only and the
store opened again. Prints one JSON line: the errors the calls saw while the
disk was full and on opening it read-only, how many starts were acknowledged,
and how many of those completed once the disk had room again.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ablauf import Client
from ablauf.errors import StoreError

LEASE_APP = Path(__file__).with_name("lease_app.py")
PAYLOAD = "x" * 4_000


def fill(path: Path) -> None:
    """Writes ``path`` until the file system has no room left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"\0")
    except OSError:
        pass
    os.close(fd)


async def starts(client: Client, prefix: str, seconds: float) -> tuple[list[str], list[str]]:
    """Starts workflows for ``seconds``: the acknowledged ids and the errors seen."""
    acknowledged: list[str] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        workflow_id = f"{prefix}-{i}"
        i += 1
        try:
            await client.start_workflow(
                "Hold", args=[1, 0.01], id=workflow_id, task_queue="leases", memo={"p": PAYLOAD}
            )
        except StoreError as err:
            errors.append(f"StoreError: {err}")
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")
        else:
            acknowledged.append(workflow_id)
        await asyncio.sleep(0.01)
    return acknowledged, errors


async def main(disk: Path, logs: Path) -> dict[str, object]:
    store = disk / "store.db"
    with open(logs / "worker.log", "w") as log:
        worker = subprocess.Popen(
            [sys.executable, str(LEASE_APP), str(store), "leases"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "ATTEMPTS_FILE": str(logs / "attempts"),
            },
        )
    assert worker.stdout is not None
    assert "worker ready" in worker.stdout.readline()
    client = await Client.connect(f"sqlite:///{store}")
    try:
        before, errors = await starts(client, "before", 1.0)
        assert not errors, errors
        fill(disk / "filler")
        full, full_errors = await starts(client, "full", 3.0)
        (disk / "filler").unlink()
        after, _ = await starts(client, "after", 1.0)
        acknowledged = before + full + after
        completed = 0
        for workflow_id in acknowledged:
            handle = client.get_workflow_handle(workflow_id)
            [result] = await asyncio.wait_for(handle.result(), 60)
            # An attempt whose outcome the full disk refused ran again.
            if result.startswith(f"{workflow_id}/0:"):
                completed += 1
    finally:
        worker.kill()
        worker.wait()
        await client.close()
    # Linux makes a file system read-only only once no file on it is open for writing.
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    read_only_errors = []
    try:
        await Client.connect(f"sqlite:///{store}")
    except Exception as err:
        read_only_errors.append(f"{type(err).__name__}: {err}")
    return {
        "full_errors": sorted(set(full_errors)),
        "read_only_errors": sorted(set(read_only_errors)),
        "acknowledged_while_full": len(full),
        "acknowledged": len(acknowledged),
        "completed": completed,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))))
