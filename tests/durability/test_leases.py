"""Who is alive is decided by leases: a frozen worker's activities are retried by
a live one, a dead worker's reused pid holds nothing, workers in separate PID
namespaces see each other alive, and a store file removed or replaced while
workers run stops them with a clear error."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from ablauf import Client
from ablauf.engine.owners import OWNER_LEASE
from ablauf.errors import StoreError, StoreLostError

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("lease_app.py")


def spawn(store: Path, queue: str = "leases", prefix: Sequence[str] = ()) -> subprocess.Popen[str]:
    log = open(f"{store}.{queue}.log", "a")  # noqa: SIM115
    proc = subprocess.Popen(
        [*prefix, sys.executable, str(APP), str(store), queue],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "worker ready" in line, line + Path(f"{store}.{queue}.log").read_text()
    return proc


def kill(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()


def attempts(store: Path) -> list[tuple[str, int, int, str]]:
    """(activity key, attempt, pid, start|end) per line the attempts wrote."""
    path = Path(f"{store}.attempts")
    lines = path.read_text().splitlines() if path.exists() else []
    return [(k, int(a), int(p), what) for k, a, p, what in (line.split() for line in lines)]


async def until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


@pytest.mark.timeout(120)
async def test_a_frozen_worker_s_attempts_are_retried_by_a_live_worker(tmp_path: Path) -> None:
    store = tmp_path / "stop.db"
    workers = [spawn(store), spawn(store)]
    client = await Client.connect(f"sqlite:///{store}")
    try:
        handles = [
            await client.start_workflow("Hold", args=[2, 1.0], id=f"hold-{i}", task_queue="leases")
            for i in range(20)
        ]
        await until(lambda: len(attempts(store)) >= 10, 30, "attempts run")
        # Whichever worker took the workflows (one may have taken them all) freezes.
        running = {p for _, _, p, _ in attempts(store)}
        frozen, live = workers if workers[0].pid in running else workers[::-1]
        os.kill(frozen.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 60)
            took = time.monotonic() - stopped_at
            seen = attempts(store)
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        ended = {(k, a) for k, a, p, what in seen if what == "end"}
        held = {k for k, a, p, what in seen if p == frozen.pid and (k, a) not in ended}
        assert held, "the frozen worker ran no attempt when it froze"
        by_key = {r.split(":")[0]: int(r.split(":")[1]) for result in results for r in result}
        assert len(by_key) == 40
        for key in held:
            # Timed out from the store while its worker was frozen, and run again.
            assert by_key[key] >= 2
            assert (key, by_key[key], live.pid, "end") in seen
        # Its owner lease ran out, then start-to-close (3 s, already passed) and
        # the 1 s retry interval: never longer than these plus the scan's second.
        assert took < OWNER_LEASE + 3 + 1 + 1 + 5
        if frozen.poll() is not None:
            # It froze inside a write transaction: a live process ended it
            # (see the test below), and the rest is the other worker's.
            assert frozen.returncode == -signal.SIGKILL
            return
        # Thawed, the worker learns it was taken for gone and serves again.
        more = [
            await client.start_workflow("Hold", args=[4, 0.05], id=f"more-{i}", task_queue="leases")
            for i in range(10)
        ]
        await asyncio.wait_for(asyncio.gather(*(h.result() for h in more)), 30)
        await until(
            lambda: "taken for gone" in Path(f"{store}.leases.log").read_text(),
            10,
            "the thawed worker notices",
        )
        engine = client.engine
        assert engine is not None
        await until(lambda: len(engine.owners.live()) == 2, 10, "both workers hold a lease")
    finally:
        kill(*workers)
        await client.close()


# A process that takes the store's write lock, then does ``then``.
_HOLD_WRITE_LOCK = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
{then}
"""
STOP_ITSELF = "os.kill(os.getpid(), signal.SIGSTOP)"
WAIT_FOREVER = "signal.pause()"


def _hold_write_lock(store: Path, then: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK.format(then=then), str(store)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "holding\n"
    return holder


@pytest.mark.timeout(60)
async def test_a_process_stopped_while_it_holds_the_write_lock_is_ended(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "lock.db"
    client = await Client.connect(f"sqlite:///{store}")
    worker = spawn(store)
    # As a worker or client frozen in the middle of a commit.
    holder = _hold_write_lock(store, STOP_ITSELF)
    try:
        began = time.monotonic()
        handle = await client.start_workflow(
            "Hold", args=[2, 0.05], id="past-the-lock", task_queue="leases"
        )
        assert await asyncio.wait_for(handle.result(), 30) == [
            "past-the-lock/0:1",
            "past-the-lock/1:1",
        ]
        # Ended by whichever process wanted to write first, after 5 s stopped.
        assert holder.wait(5) == -signal.SIGKILL
        assert 5 <= time.monotonic() - began < 15
        said = caplog.text + Path(f"{store}.leases.log").read_text()
        assert f"pid {holder.pid}" in said and "kept the write lock" in said
    finally:
        kill(worker, holder)
        await client.close()


@pytest.mark.timeout(90)
async def test_a_running_process_that_keeps_the_write_lock_is_named(tmp_path: Path) -> None:
    store = tmp_path / "busy.db"
    client = await Client.connect(f"sqlite:///{store}")
    # One that runs (waiting for a signal that never comes) is left alone.
    holder = _hold_write_lock(store, WAIT_FOREVER)
    try:
        with pytest.raises(StoreError, match=rf"holds the file locked \(pid {holder.pid}, "):
            await client.start_workflow("Hold", args=[1, 0], id="blocked", task_queue="leases")
        assert holder.poll() is None
    finally:
        kill(holder)
        await client.close()


def _take_pid(pid: int) -> subprocess.Popen[bytes] | None:
    """Starts a process that gets ``pid``, as an unrelated program might."""
    for _ in range(50):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        squatter = subprocess.Popen(["sleep", "120"])
        if squatter.pid == pid:
            return squatter
        squatter.kill()
        squatter.wait()
    return None


@pytest.mark.timeout(90)
@pytest.mark.skipif(
    not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK),
    reason="giving a process a chosen pid needs root (/proc/sys/kernel/ns_last_pid)",
)
async def test_a_dead_worker_s_pid_reused_by_another_process_holds_nothing(
    tmp_path: Path,
) -> None:
    store = tmp_path / "pid.db"
    dead = spawn(store)
    client = await Client.connect(f"sqlite:///{store}")
    squatter = None
    live = None
    try:
        handle = await client.start_workflow(
            "Hold", args=[1, 3600.0], id="hold", task_queue="leases"
        )
        await until(lambda: attempts(store), 30, "the first attempt runs")
        kill(dead)
        squatter = _take_pid(dead.pid)
        assert squatter is not None, f"no process could be given pid {dead.pid}"
        live = spawn(store)
        started = time.monotonic()
        assert await asyncio.wait_for(handle.result(), 30) == ["hold/0:2"]
        assert time.monotonic() - started < OWNER_LEASE + 3 + 1 + 5
        assert squatter.poll() is None  # the pid was taken all along
    finally:
        kill(*(p for p in (dead, live) if p is not None))
        if squatter is not None:
            squatter.kill()
            squatter.wait()
        await client.close()


_NEW_PID_NAMESPACE = ["unshare", "--pid", "--fork", "--kill-child"]


def _namespaces_work() -> bool:
    try:
        return subprocess.run([*_NEW_PID_NAMESPACE, "true"], capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.mark.timeout(90)
@pytest.mark.skipif(
    not _namespaces_work(), reason="`unshare --pid` is not permitted on this machine"
)
async def test_workers_in_separate_pid_namespaces_see_each_other_alive(tmp_path: Path) -> None:
    # As two containers sharing a volume: both workers are pid 1.
    store = tmp_path / "ns.db"
    a = spawn(store, "qa", _NEW_PID_NAMESPACE)
    b = spawn(store, "qb", _NEW_PID_NAMESPACE)
    client = await Client.connect(f"sqlite:///{store}")
    try:
        ha = await client.start_workflow("Hold", args=[1, 0.1], id="ns-a", task_queue="qa")
        hb = await client.start_workflow("Hold", args=[1, 0.1], id="ns-b", task_queue="qb")
        assert await asyncio.wait_for(ha.result(), 30) == ["ns-a/0:1"]
        assert await asyncio.wait_for(hb.result(), 30) == ["ns-b/0:1"]
        # Several lease rounds later both are still alive for each other...
        await asyncio.sleep(3)
        engine = client.engine
        assert engine is not None
        owners = engine.owners.live()
        assert sorted(o.task_queues for o in owners) == [("qa",), ("qb",)]
        assert [o.pid for o in owners] == [1, 1]
        # ...and a third process's queries reach each of them.
        for _ in range(5):
            assert await ha.query("name") == "ns-a"
            assert await hb.query("name") == "ns-b"
        assert [line for line in attempts(store) if line[1] != 1] == []
    finally:
        kill(a, b)
        await client.close()


def _backup(store: Path, to: Path) -> None:
    # In another process: closing a connection to the store in this one would
    # drop the locks that this process's engine holds on the file.
    code = (
        "import sqlite3, sys\n"
        "src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])\n"
        "src.backup(dst)\n"
        "dst.close(); src.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(store), str(to)], check=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["removed", "replaced"])
async def test_a_store_file_removed_or_replaced_stops_its_processes(
    tmp_path: Path, how: str
) -> None:
    store = tmp_path / "lost.db"
    worker = spawn(store)
    client = await Client.connect(f"sqlite:///{store}")
    try:
        handle = await client.start_workflow("Hold", args=[1, 0.1], id="h", task_queue="leases")
        assert await asyncio.wait_for(handle.result(), 30) == ["h/0:1"]
        slow = await client.start_workflow("Hold", args=[1, 60.0], id="slow", task_queue="leases")
        awaiting = asyncio.ensure_future(slow.result())
        await asyncio.sleep(0.2)
        if how == "removed":
            store.unlink()
        else:
            _backup(store, tmp_path / "backup.db")
            os.replace(tmp_path / "backup.db", store)
        # A client awaiting a result learns it within the engine's next look at the file.
        with pytest.raises(StoreLostError, match=f"was {how}"):
            await asyncio.wait_for(awaiting, 5)
        out, _ = worker.communicate(timeout=15)
        assert worker.returncode == 3
        assert f"store {store} was {how}" in out and "while this process used it" in out
        with pytest.raises(StoreLostError, match=f"was {how}"):
            await client.start_workflow("Hold", args=[1, 0.1], id="h2", task_queue="leases")
    finally:
        kill(worker)
        await client.close()
