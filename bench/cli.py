"""``python -m bench``: every engine in its own process, then one table."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import bench
from bench.drivers import DRIVERS, FULL, QUICK, log
from bench.figures import Figure
from bench.report import ENGINE_TITLES, environment, markdown
from tests.temporal_server import DevServer, temporal_cli

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("ablauf", "fsync", "temporal")  # the order they run in


def _names(text: str, allowed: tuple[str, ...] | list[str], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        given = ", ".join(unknown) or "(none given)"
        raise argparse.ArgumentTypeError(
            f"unknown {what} {given}; choose from {', '.join(allowed)}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Runs the speed benchmark on ablauf and on a Temporal dev server.",
        epilog=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--engines",
        "--only",
        default=",".join(ENGINES),
        type=lambda text: _names(text, ENGINES, "engine"),
        help="comma-separated engines to run: ablauf, fsync, temporal (default: all)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(DRIVERS),
        type=lambda text: _names(text, list(DRIVERS), "workload"),
        help=f"comma-separated workloads (default: all): {', '.join(DRIVERS)}",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds each workload may take on each engine (default: 600)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each workload this many times per engine and report the median (default: 1)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    return parser


def _peak_rss_kib(pid: int) -> tuple[int, int]:
    """VmHWM summed over a process and its descendants, and how many processes that was."""
    total, count = 0, 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        count += 1
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                pending += [int(c) for c in (task / "children").read_text().split()]
    return total, count


def _kernel_threads_ticks() -> int:
    """Clock ticks the kernel's own threads (children of kthreadd, pid 2) have used."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[1] == "2" or entry.name == "2":
            total += int(fields[11]) + int(fields[12])
    return total


def _machine_cpu() -> float:
    """CPU-seconds user processes have used, all of them (from /proc/stat).

    The kernel's own work is left out, its threads and interrupts: they do much
    of the I/O that fsyncs cause, and so belong to whoever fsyncs.
    """
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system = fields[:3]
    return (user + nice + system - _kernel_threads_ticks()) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """CPU-seconds of this process and its children that have been waited for."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _run_engine(
    engine: str, server: str | None, workloads: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ablauf-bench-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "bench.engine", "--engine", engine, "--out", str(out)]
        command += ["--workloads", ",".join(workloads), "--timeout", str(args.timeout)]
        command += ["--repeat", str(args.repeat)]
        command += ["--server", server] if server else []
        command += ["--quick"] if args.quick else []
        budget = args.timeout * args.repeat * len(workloads) + 120
        try:
            subprocess.run(command, cwd=ROOT, check=True, timeout=budget)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log(f"[{engine}] the engine's process failed: {exc}")
            return {"figures": [], "errors": {name: f"engine process: {exc}" for name in workloads}}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _temporal(workloads: list[str], args: argparse.Namespace) -> dict[str, Any]:
    server = DevServer()
    log(f"[temporal] starting a dev server on {server.target}")
    server.start()
    try:
        result = _run_engine("temporal", server.target, workloads, args)
        # DevServer keeps its process private; its peak RSS is part of Temporal's memory.
        server_kib, processes = _peak_rss_kib(server._proc.pid) if server._proc else (0, 0)
    finally:
        server.stop()
    for figure in result["figures"]:
        if figure["label"] == "memory":
            worker, server_mib = figure["value"], server_kib / 1024
            figure["value"] = worker + server_mib
            figure["note"] = (
                f"worker and client process {worker:.0f} MiB + dev server {server_mib:.0f} MiB"
                + (f" ({processes} processes)" if processes > 1 else "")
            )
            figure["samples"] = [worker, server_mib]
    return result


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    engines = [e for e in ENGINES if e in args.engines]
    workloads = [w for w in DRIVERS if w in args.workloads]
    env = environment(temporal_cli() if "temporal" in engines else None)
    log(f"engines: {', '.join(engines)}; workloads: {', '.join(workloads)}")
    results: dict[str, dict[str, Any]] = {}
    others: list[str] = []
    for engine in engines:
        machine, own, started = _machine_cpu(), _own_cpu(), time.monotonic()
        if engine == "temporal":
            results[engine] = _temporal(workloads, args)
        else:
            results[engine] = _run_engine(engine, None, workloads, args)
        other = max(0.0, (_machine_cpu() - machine) - (_own_cpu() - own))
        wall = time.monotonic() - started
        results[engine]["other_cpu_seconds"] = other
        others.append(f"{other:.1f} CPU-s in the {wall:.0f} s of {ENGINE_TITLES[engine]}")
        if other > 0.1 * wall:
            log(f"[{engine}] other processes used {other:.1f} CPU-s meanwhile: figures may suffer")
    env["other_cpu"] = "; ".join(others)

    figures = {
        engine: {
            f.label: f for f in (Figure.from_json(data) for data in results[engine]["figures"])
        }
        for engine in engines
    }
    errors = {engine: results[engine]["errors"] for engine in engines}
    labels: list[str] = []
    workload_of: dict[str, str] = {}
    for workload in workloads:
        mine = [f.label for e in engines for f in figures[e].values() if f.workload == workload]
        if not mine and any(workload in e for e in errors.values()):
            mine = [workload]  # failed everywhere: still a row, saying so
        for label in dict.fromkeys(mine):
            labels.append(label)
            workload_of[label] = workload
    command = " ".join(["scripts/bench", *(sys.argv[1:] if argv is None else argv)])
    sizes = "quick (a smoke run, not comparable with full sizes)" if args.quick else "full"
    if args.repeat > 1:
        sizes += f"; each figure the median of {args.repeat} runs"
    print(markdown(env, command, sizes, engines, labels, figures, errors, workload_of))
    if args.json:
        raw = {
            "environment": env,
            "sizes": asdict(QUICK if args.quick else FULL),
            "engines": {ENGINE_TITLES[e]: results[e] for e in engines},
        }
        args.json.write_text(json.dumps(raw, indent=1) + os.linesep)
        log(f"raw figures written to {args.json}")
    return 1 if any(errors.values()) else 0
