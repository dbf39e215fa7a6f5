"""A kill storm: worker processes SIGKILLed at random instants while a separate
client process starts and signals workflows on the same store file; then every
result, every activity's effect and every attempt's exclusivity is checked.

``python -m tests.durability.storm --workflows 1000 --kills 50 --workers 3``
(``scripts/storm``) prints the figures; ``tests/durability/test_storm.py`` runs a
small one in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import WorkflowFailureError

from ablauf import Client
from tests.durability import storm_app

__all__ = ["Report", "run_storm"]

APP = Path(__file__).with_name("storm_app.py")


@dataclass
class Report:
    """What a storm left behind."""

    workflows: int
    workers: int
    kills: int
    synchronous: str
    seed: int
    started: int = 0
    completed: int = 0
    hung: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    lost_effects: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    repeated_effects: int = 0
    seconds: float = 0.0

    def ok(self) -> bool:
        return (
            self.started == self.workflows
            and self.completed == self.started
            and not self.hung
            and not self.wrong
            and not self.lost_effects
            and not self.violations
        )

    def summary(self) -> str:
        def some(items: list[str]) -> str:
            return f"{len(items)}" + (f" (e.g. {', '.join(items[:5])})" if items else "")

        return "\n".join(
            [
                f"storm: {self.workflows} workflows, {self.workers} workers, {self.kills} "
                f"SIGKILLs, synchronous={self.synchronous}, seed {self.seed}",
                f"  acknowledged starts  {self.started}",
                f"  completed            {self.completed}",
                f"  hung                 {some(self.hung)}",
                f"  wrong results        {some(self.wrong)}",
                f"  lost effects         {some(self.lost_effects)}",
                f"  concurrent attempts  {some(self.violations)}",
                f"  effects run again    {self.repeated_effects} (at least once: a killed "
                "attempt runs anew)",
                f"  seconds              {self.seconds:.1f} (first start to last result)",
            ]
        )


class _Processes:
    """The storm's processes; each writes its log beside the store."""

    def __init__(self, directory: Path, synchronous: str) -> None:
        self.directory = directory
        self.synchronous = synchronous
        self.spawned = 0

    async def spawn(self, *args: str) -> asyncio.subprocess.Process:
        self.spawned += 1
        log = open(self.directory / f"{args[0]}-{self.spawned}.log", "wb")  # noqa: SIM115
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(APP),
            args[0],
            str(self.directory),
            *args[1:],
            self.synchronous,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        return proc

    async def worker(self) -> asyncio.subprocess.Process:
        proc = await self.spawn("worker")
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if b"worker ready" not in line:
            raise RuntimeError(f"a storm worker did not start: {line!r}")
        return proc


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def run_storm(
    directory: Path,
    *,
    workflows: int = 200,
    workers: int = 3,
    kills: int = 10,
    rate: float = 50.0,
    synchronous: str = "normal",
    seed: int | None = None,
    settle: float = 90.0,
) -> Report:
    """Runs one storm in ``directory`` (which it fills) and checks what it left.

    Kills come at random instants while the client starts workflows and for a
    few seconds after; a killed worker is started again at once. ``settle``
    bounds the wait for the last results once the storm is over.
    """
    seed = random.randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    report = Report(workflows, workers, kills, synchronous, seed)
    (directory / "locks").mkdir(parents=True, exist_ok=True)
    procs = _Processes(directory, synchronous)
    running = [await procs.worker() for _ in range(workers)]
    began = time.monotonic()
    client = await procs.spawn("client", str(workflows), str(rate))
    storm_seconds = workflows / rate + 3.0
    instants = sorted(rng.uniform(0.2, storm_seconds) for _ in range(kills))
    try:
        for instant in instants:
            await asyncio.sleep(max(0.0, began + instant - time.monotonic()))
            victim = rng.randrange(len(running))
            await _kill(running[victim])
            running[victim] = await procs.worker()
        assert client.stdout is not None
        done = await asyncio.wait_for(client.stdout.readline(), settle)
        if b"client done" not in done:
            raise RuntimeError(f"the storm's client failed: see {directory}/client-*.log")
        acks = _lines(directory / "acks")
        started = sorted(int(a.split()[1]) for a in acks if a.startswith("started"))
        report.started = len(started)
        await _collect(directory, report, started, began + storm_seconds + settle)
        report.seconds = time.monotonic() - began
    finally:
        for proc in [*running, client]:
            await _kill(proc)
    effects = Counter(line.split()[0] for line in _lines(directory / "effects"))
    report.lost_effects = [
        key for index in started for key in storm_app.effect_keys(index) if not effects[key]
    ]
    report.repeated_effects = sum(count - 1 for count in effects.values())
    report.violations = _lines(directory / "violations")
    return report


async def _collect(directory: Path, report: Report, started: list[int], deadline: float) -> None:
    """Waits for every acknowledged workflow's result, until ``deadline``."""
    client = await Client.connect(f"sqlite:///{directory / 'storm.db'}")
    try:

        async def result(index: int) -> None:
            handle = client.get_workflow_handle(f"storm-{index}")
            try:
                got = await asyncio.wait_for(handle.result(), deadline - time.monotonic())
            except TimeoutError:
                report.hung.append(handle.id)
                return
            except WorkflowFailureError as err:
                report.wrong.append(f"{handle.id} failed: {err.cause}")
                return
            report.completed += 1
            if got != storm_app.expected(index):
                report.wrong.append(f"{handle.id} returned {got!r}")

        await asyncio.gather(*(result(index) for index in started))
    finally:
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50.0, help="starts a second")
    parser.add_argument("--synchronous", default="normal", choices=["normal", "full"])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", default=None, help="keep the store and logs here")
    args = parser.parse_args()
    directory = Path(args.dir or tempfile.mkdtemp(prefix="ablauf-storm-"))
    report = asyncio.run(
        run_storm(
            directory,
            workflows=args.workflows,
            workers=args.workers,
            kills=args.kills,
            rate=args.rate,
            synchronous=args.synchronous,
            seed=args.seed,
        )
    )
    print(report.summary())
    print(f"  store and logs       {directory}")
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
