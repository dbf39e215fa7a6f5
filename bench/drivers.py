"""The timed part of every workload: the same client code for every engine.

Each driver opens its own store (a fresh SQLite file on ablauf; the shared dev
server on Temporal) and its own task queue, runs one small untimed warm-up
execution, and then times the workload itself with ``time.perf_counter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import temporalio.client
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetStickyTaskQueueRequest

from ablauf import Client, Worker
from bench import workloads as w
from bench.figures import Figure, percentile

__all__ = ["DRIVERS", "FULL", "QUICK", "Bench", "Sizes", "peak_rss_figure"]

ROOT = Path(__file__).resolve().parent.parent
STARTUP = Path(__file__).resolve().with_name("startup.py")

# Signals and queries are sent with this many in flight at once.
CONCURRENCY = 50
# A fresh worker's pollers get this long to start before a timed query.
POLLER_SETTLE = 0.5


@dataclass(frozen=True)
class Sizes:
    """How big each workload is; ``--quick`` uses the small set."""

    gather: int = 1_000
    sequential: int = 300
    many_workflows: int = 500
    children: int = 20
    child_activities: int = 50
    signals: int = 1_000
    queries: int = 200
    timers: int = 200
    timer_seconds: float = 2.0
    start_to_result: int = 200
    replay_events: int = 10_000
    replay_batch: int = 100
    replay_runs: int = 3
    scaling_workflows: int = 400
    scaling_activities: int = 5
    backlog: int = 10_000
    import_runs: int = 5


FULL = Sizes()
QUICK = Sizes(
    gather=100,
    sequential=50,
    many_workflows=50,
    children=4,
    child_activities=10,
    signals=100,
    queries=50,
    timers=20,
    start_to_result=30,
    replay_events=1_000,
    replay_batch=20,
    replay_runs=1,
    scaling_workflows=40,
    backlog=300,
    import_runs=2,
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def new_worker(client: temporalio.client.Client, task_queue: str) -> Worker:
    """ablauf's Worker; on a Temporal target it is temporalio's own worker (sandboxed)."""
    return Worker(client, task_queue=task_queue, workflows=w.WORKFLOWS, activities=w.ACTIVITIES)


@dataclass
class Session:
    """A connected client and a task queue of its own."""

    client: temporalio.client.Client
    task_queue: str

    def id(self, suffix: str | int) -> str:
        return f"{self.task_queue}-{suffix}"


@dataclass
class Bench:
    """One engine's settings for a run of the workloads."""

    engine: str
    server: str | None
    sizes: Sizes
    workdir: Path
    tag: str

    def __post_init__(self) -> None:
        self._counter = itertools.count()

    def new_target(self, name: str) -> str:
        """A fresh store on ablauf (a new file), the dev server on Temporal."""
        if self.engine == "temporal":
            assert self.server is not None
            return self.server
        directory = self.workdir / f"{name}-{next(self._counter)}"
        directory.mkdir(parents=True)
        target = f"sqlite:///{directory / 'bench.db'}"
        return f"{target}?synchronous=full" if self.engine == "fsync" else target

    @contextlib.asynccontextmanager
    async def connect(self, target: str) -> AsyncIterator[temporalio.client.Client]:
        client = await Client.connect(target)
        try:
            yield client
        finally:
            if isinstance(client, Client):
                await client.close()

    @contextlib.asynccontextmanager
    async def session(self, name: str) -> AsyncIterator[Session]:
        """A client on a fresh store with a worker polling a new task queue."""
        async with self.connect(self.new_target(name)) as client:
            task_queue = f"bench-{name}-{self.tag}"
            async with new_worker(client, task_queue):
                yield Session(client, task_queue)


def _rate(workload: str, count: int, seconds: float, unit: str, label: str = "") -> Figure:
    return Figure(
        workload,
        label or workload,
        unit,
        count / seconds,
        higher_is_better=True,
        samples=(count, seconds),
    )


def _ms(workload: str, label: str, value: float, samples: list[float], note: str = "") -> Figure:
    return Figure(
        workload, label, "ms", value, higher_is_better=False, note=note, samples=tuple(samples)
    )


# The workloads


async def _one_workflow(b: Bench, name: str, run: Any, n: int) -> list[Figure]:
    """One workflow of ``n`` activities after a small warm-up: activities/s, start to result."""
    async with b.session(name) as s:
        await s.client.execute_workflow(run, 2, id=s.id("warmup"), task_queue=s.task_queue)
        started = time.perf_counter()
        done = await s.client.execute_workflow(run, n, id=s.id("run"), task_queue=s.task_queue)
        seconds = time.perf_counter() - started
    assert done == n
    return [_rate(name, n, seconds, "activities/s")]


async def gather(b: Bench) -> list[Figure]:
    """One workflow runs ``n`` activities with ``asyncio.gather``: start to result."""
    return await _one_workflow(b, "gather", w.Gather.run, b.sizes.gather)


async def sequential(b: Bench) -> list[Figure]:
    """One workflow runs ``n`` activities one after another: start to result."""
    return await _one_workflow(b, "sequential", w.Sequential.run, b.sizes.sequential)


async def many_workflows(b: Bench) -> list[Figure]:
    """``n`` one-activity workflows: all started at once, then all results awaited."""
    n = b.sizes.many_workflows
    async with b.session("many_workflows") as s:
        await s.client.execute_workflow(
            w.Single.run, -1, id=s.id("warmup"), task_queue=s.task_queue
        )
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(
                s.client.start_workflow(w.Single.run, i, id=s.id(i), task_queue=s.task_queue)
                for i in range(n)
            )
        )
        results = await asyncio.gather(*(h.result() for h in handles))
        seconds = time.perf_counter() - started
    assert results == list(range(n))
    return [_rate("many_workflows", n, seconds, "workflows/s")]


async def children(b: Bench) -> list[Figure]:
    """A parent runs its children at once; each child runs its activities in sequence."""
    count, each = b.sizes.children, b.sizes.child_activities
    async with b.session("children") as s:
        await s.client.execute_workflow(
            w.Children.run, args=[2, 1], id=s.id("warmup"), task_queue=s.task_queue
        )
        started = time.perf_counter()
        done = await s.client.execute_workflow(
            w.Children.run, args=[count, each], id=s.id("run"), task_queue=s.task_queue
        )
        seconds = time.perf_counter() - started
    assert done == count * each
    return [_rate("children", count * each, seconds, "activities/s")]


async def signals(b: Bench) -> list[Figure]:
    """``n`` signals to one workflow, ``CONCURRENCY`` in flight: first send to result."""
    n = b.sizes.signals
    async with b.session("signals") as s:
        warm = await s.client.start_workflow(
            w.Signalled.run, 2, id=s.id("warmup"), task_queue=s.task_queue
        )
        await warm.signal(w.Signalled.ping)
        await warm.signal(w.Signalled.ping)
        await warm.result()
        handle = await s.client.start_workflow(
            w.Signalled.run, n, id=s.id("run"), task_queue=s.task_queue
        )
        slots = asyncio.Semaphore(CONCURRENCY)

        async def send() -> None:
            async with slots:
                await handle.signal(w.Signalled.ping)

        started = time.perf_counter()
        await asyncio.gather(*(send() for _ in range(n)))
        count = await handle.result()
        seconds = time.perf_counter() - started
    assert count == n
    return [_rate("signals", n, seconds, "signals/s")]


async def queries(b: Bench) -> list[Figure]:
    """``n`` queries to one running, cached workflow, ``CONCURRENCY`` in flight."""
    n = b.sizes.queries
    async with b.session("queries") as s:
        handle = await s.client.start_workflow(
            w.Queried.run, id=s.id("run"), task_queue=s.task_queue
        )
        # The first query waits for the first workflow task; not timed.
        assert await handle.query(w.Queried.value) == 42
        slots = asyncio.Semaphore(CONCURRENCY)
        latencies: list[float] = []

        async def ask() -> None:
            async with slots:
                sent = time.perf_counter()
                assert await handle.query(w.Queried.value) == 42
                latencies.append((time.perf_counter() - sent) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(ask() for _ in range(n)))
        seconds = time.perf_counter() - started
        await handle.signal(w.Queried.finish)
        await handle.result()
    note = f"latency p50 {percentile(latencies, 50):.2f} ms with {CONCURRENCY} in flight"
    return [replace(_rate("queries", n, seconds, "queries/s"), note=note)]


async def timers(b: Bench) -> list[Figure]:
    """``n`` workflows sleep at once; how late after its timer was due each result is seen.

    A timer is due at its TimerStarted event's time plus the sleep (that is how
    both engines compute it); the client notes the wall-clock time each result
    arrives. Engine and client share the machine's clock. The row ``from start``
    counts from the call of ``start_workflow`` instead, so it also holds the start
    itself and the wait for the workflow's first task, which issues the timer.
    """
    n, seconds = b.sizes.timers, b.sizes.timer_seconds
    async with b.session("timers") as s:
        await s.client.execute_workflow(
            w.Sleeper.run, 0.05, id=s.id("warmup"), task_queue=s.task_queue
        )

        async def one(i: int) -> tuple[float, int]:
            started = time.perf_counter()
            handle = await s.client.start_workflow(
                w.Sleeper.run, seconds, id=s.id(i), task_queue=s.task_queue
            )
            await handle.result()
            seen = time.time_ns()
            return (time.perf_counter() - started - seconds) * 1000, seen

        results = await asyncio.gather(*(one(i) for i in range(n)))
        from_start = [late for late, _ in results]
        slots = asyncio.Semaphore(CONCURRENCY)

        async def timer_events(i: int) -> tuple[int, int]:
            async with slots:
                history = await s.client.get_workflow_handle(s.id(i)).fetch_history()
            times = {e.event_type: e.event_time.ToNanoseconds() for e in history.events}
            return times[EventType.EVENT_TYPE_TIMER_STARTED], times[
                EventType.EVENT_TYPE_TIMER_FIRED
            ]

        events = await asyncio.gather(*(timer_events(i) for i in range(n)))
    sleep_ns = int(seconds * 1e9)
    after_due = [
        (seen - started - sleep_ns) / 1e6
        for (_, seen), (started, _) in zip(results, events, strict=True)
    ]
    fired = [(fired - started - sleep_ns) / 1e6 for started, fired in events]
    note = (
        f"TimerFired's event time was {percentile(fired, 50):.0f} ms (p50), "
        f"{percentile(fired, 99):.0f} ms (p99) after the timer was due"
    )
    return [
        _ms("timers", "timers p50", percentile(after_due, 50), after_due),
        _ms("timers", "timers p99", percentile(after_due, 99), after_due, note),
        _ms("timers", "timers p99 from start", percentile(from_start, 99), from_start),
    ]


async def start_to_result(b: Bench) -> list[Figure]:
    """``n`` one-activity workflows one after another; each ``execute_workflow`` timed."""
    n = b.sizes.start_to_result
    async with b.session("start_to_result") as s:
        for k in range(3):
            await s.client.execute_workflow(
                w.Single.run, k, id=s.id(f"warmup-{k}"), task_queue=s.task_queue
            )
        samples: list[float] = []
        for i in range(n):
            started = time.perf_counter()
            await s.client.execute_workflow(w.Single.run, i, id=s.id(i), task_queue=s.task_queue)
            samples.append((time.perf_counter() - started) * 1000)
    return [
        _ms("start_to_result", "start_to_result p50", percentile(samples, 50), samples),
        _ms("start_to_result", "start_to_result p99", percentile(samples, 99), samples),
    ]


async def _reset_sticky(client: temporalio.client.Client, workflow_id: str) -> None:
    """Sends the workflow's next tasks to its normal task queue (Temporal only)."""
    await client.workflow_service.reset_sticky_task_queue(
        ResetStickyTaskQueueRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )


async def replay(b: Bench) -> list[Figure]:
    """A query to a long-history workflow from a fresh worker: a full replay."""
    sizes = b.sizes
    async with b.connect(b.new_target("replay")) as client:
        task_queue = f"bench-replay-{b.tag}"
        async with new_worker(client, task_queue):
            handle = await client.start_workflow(
                w.LongHistory.run,
                args=[sizes.replay_events, sizes.replay_batch],
                id=f"{task_queue}-run",
                task_queue=task_queue,
            )
            started = time.perf_counter()
            while not (await handle.query(w.LongHistory.progress))[0]:
                await asyncio.sleep(0.2)
            build = time.perf_counter() - started
        # That worker is gone, and with it every cached workflow.
        events = len((await handle.fetch_history()).events)
        log(f"  replay: history of {events:,} events built in {build:.1f} s")
        samples: list[float] = []
        for _ in range(sizes.replay_runs):
            if b.engine == "temporal":
                await _reset_sticky(client, handle.id)
            async with new_worker(client, task_queue):
                await asyncio.sleep(POLLER_SETTLE)
                started = time.perf_counter()
                ready, _ = await handle.query(w.LongHistory.progress)
                samples.append((time.perf_counter() - started) * 1000)
                assert ready
        async with new_worker(client, task_queue):
            await handle.signal(w.LongHistory.finish)
            await handle.result()
    note = f"{events:,} events; runs {', '.join(f'{v:.0f}' for v in samples)} ms"
    return [_ms("replay", "replay", statistics.median(samples), samples, note)]


class _WorkerProcess:
    """``python -m bench.worker``: a worker in a process of its own."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, target: str, task_queue: str) -> _WorkerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.worker",
            target,
            task_queue,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.strip() != b"ready":
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"worker process did not start: {line!r}")
        return cls(proc)

    async def stop(self) -> None:
        proc = self.proc
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def scaling(b: Bench) -> list[Figure]:
    """Workflows of sequential activities on 1, then 2, worker processes sharing one store."""
    n, each = b.sizes.scaling_workflows, b.sizes.scaling_activities
    rates: dict[int, float] = {}
    figures: list[Figure] = []
    for processes in (1, 2):
        target = b.new_target(f"scaling-{processes}")
        async with b.connect(target) as client:
            task_queue = f"bench-scaling-{processes}-{b.tag}"
            workers = [await _WorkerProcess.start(target, task_queue) for _ in range(processes)]
            try:
                await asyncio.gather(
                    *(
                        client.execute_workflow(
                            w.Sequential.run,
                            1,
                            id=f"{task_queue}-warmup-{k}",
                            task_queue=task_queue,
                        )
                        for k in range(2 * processes)
                    )
                )
                started = time.perf_counter()
                handles = await asyncio.gather(
                    *(
                        client.start_workflow(
                            w.Sequential.run, each, id=f"{task_queue}-{i}", task_queue=task_queue
                        )
                        for i in range(n)
                    )
                )
                results = await asyncio.gather(*(h.result() for h in handles))
                seconds = time.perf_counter() - started
            finally:
                for worker in workers:
                    await worker.stop()
        assert results == [each] * n
        label = f"scaling {processes} worker" + ("s" if processes > 1 else "")
        figure = _rate("scaling", n, seconds, "workflows/s", label)
        rates[processes] = figure.value
        figures.append(figure)
    figures.append(
        Figure("scaling", "scaling 2/1", "x", rates[2] / rates[1], higher_is_better=True)
    )
    return figures


async def backlog(b: Bench) -> list[Figure]:
    """One-activity workflows queued in the store by one process, drained by a
    worker in another, against the in-process rate (``many_workflows``, run
    again in this pass)."""
    n = b.sizes.backlog
    if b.engine == "temporal":
        # A Temporal server's workers always poll from other processes.
        return []
    [in_process] = await many_workflows(b)
    target = b.new_target("backlog")
    task_queue = f"bench-backlog-{b.tag}"
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.backlog_client",
        target,
        task_queue,
        str(n),
        str(b.sizes.many_workflows),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert client.stdin is not None and client.stdout is not None
    try:
        if await client.stdout.readline() != b"queued\n":
            raise RuntimeError("the backlog's client process failed")
        worker = await _WorkerProcess.start(target, task_queue)
        try:
            client.stdin.write(b"go\n")
            await client.stdin.drain()
            line = (await client.stdout.readline()).split()
        finally:
            await worker.stop()
        if not line or line[0] != b"seconds":
            raise RuntimeError("the backlog's client process failed")
        seconds = float(line[1])
    finally:
        if client.returncode is None:
            client.kill()
        await client.wait()
    other = _rate("backlog", n, seconds, "workflows/s", "backlog from another process")
    note = (
        f"{n:,} workflows queued by a client process before the worker's started; "
        f"in-process: many_workflows at {in_process.value:,.0f} workflows/s in this pass"
    )
    ratio = other.value / in_process.value
    return [
        replace(other, note=note),
        Figure("backlog", "backlog other/in-process", "x", ratio, higher_is_better=True),
    ]


async def import_connect(b: Bench) -> list[Figure]:
    """A fresh interpreter: imports and ``Client.connect`` (in process), and the whole process."""
    target = b.new_target("import_connect")
    kind = "temporal" if b.engine == "temporal" else "ablauf"
    inside: list[float] = []
    whole: list[float] = []
    # The first run creates the store file and warms the OS file cache; not counted.
    for run in range(1 + b.sizes.import_runs):
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-P", str(STARTUP), kind, target, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        elapsed = (time.perf_counter() - started) * 1000
        if proc.returncode != 0:
            raise RuntimeError(f"startup process failed with exit code {proc.returncode}")
        if run:
            inside.append(float(json.loads(out)["ms"]))
            whole.append(elapsed)
    return [
        _ms("import_connect", "import_connect", statistics.median(inside), inside),
        _ms("import_connect", "import_connect (process)", statistics.median(whole), whole),
    ]


def peak_rss_figure() -> Figure:
    """This process's peak resident set size (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Figure("memory", "memory", "MiB", kib / 1024, higher_is_better=False)


Driver = Callable[[Bench], Awaitable[list[Figure]]]

# In table order; "memory" is measured after the others, in the same process.
DRIVERS: dict[str, Driver | None] = {
    "gather": gather,
    "sequential": sequential,
    "many_workflows": many_workflows,
    "children": children,
    "signals": signals,
    "queries": queries,
    "timers": timers,
    "start_to_result": start_to_result,
    "memory": None,
    "import_connect": import_connect,
    "replay": replay,
    "scaling": scaling,
    "backlog": backlog,
}
