"""The Markdown report: a header naming the machine and versions, then one table."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.figures import TARGETS, Figure

__all__ = ["ENGINE_TITLES", "environment", "markdown", "number"]

ROOT = Path(__file__).resolve().parent.parent
ENGINE_TITLES = {"temporal": "Temporal", "ablauf": "ablauf", "fsync": "ablauf fsync"}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _run(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _commit_cost(synchronous: str, commits: int = 200) -> float:
    """Microseconds per one-row SQLite commit (WAL) in the temp directory the stores use."""
    with tempfile.TemporaryDirectory(prefix="ablauf-bench-") as directory:
        db = sqlite3.connect(os.path.join(directory, "probe.db"), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("CREATE TABLE t (x INTEGER)")
            started = time.perf_counter()
            for i in range(commits):
                db.execute("BEGIN")
                db.execute("INSERT INTO t VALUES (?)", (i,))
                db.execute("COMMIT")
            return (time.perf_counter() - started) / commits * 1e6
        finally:
            db.close()


def _interpreter() -> str:
    # Which build matters: an unoptimized one runs the engine markedly slower.
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _build() -> str:
    # The engine's hot path runs compiled unless ablauf was built pure.
    import ablauf.engine.context

    compiled = (ablauf.engine.context.__file__ or "").endswith(".so")
    return "hot path compiled with mypyc" if compiled else "pure Python"


def environment(temporal_cli: str | None) -> dict[str, str]:
    """What the figures depend on, for the header and ``--json``."""
    uname = os.uname()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    commit = _run("git", "rev-parse", "--short", "HEAD") or "unknown"
    dirty = [d for d in ("src", "bench") if _run("git", "status", "--porcelain", "--", d)]
    if dirty:
        commit += " + uncommitted changes in " + " and ".join(f"{d}/" for d in dirty)
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{uname.sysname} {uname.release} {uname.machine}",
        "cpu": _cpu_model(),
        "cores": str(cores),
        "python": f"{platform.python_version()} ({_interpreter()})",
        "temporalio": importlib.metadata.version("temporalio"),
        "temporal_cli": (_run(temporal_cli, "--version") if temporal_cli else "") or "not run",
        "ablauf": f"{commit}, {_build()}",
        "sqlite_commit": (
            f"{_commit_cost('NORMAL'):.0f} µs, with fsync {_commit_cost('FULL'):.0f} µs "
            f"(in {tempfile.gettempdir()})"
        ),
    }


def number(value: float) -> str:
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def _target(label: str, higher: bool) -> tuple[str, float | None]:
    target = TARGETS.get(label)
    if target is None:
        return "", None
    return ("≥ " if higher else "≤ ") + f"{target:,g}", target


def _met(figure: Figure | None, target: float | None) -> str:
    if figure is None or target is None:
        return "-"
    ok = figure.value >= target if figure.higher_is_better else figure.value <= target
    return "met" if ok else "missed"


def markdown(
    env: Mapping[str, str],
    command: str,
    sizes: str,
    engines: Sequence[str],
    labels: Sequence[str],
    figures: Mapping[str, Mapping[str, Figure]],
    errors: Mapping[str, Mapping[str, str]],
    workload_of: Mapping[str, str],
) -> str:
    """The report: ``figures[engine][label]``; ``errors[engine][workload]``."""
    lines = [
        f"Benchmark (`{command}`), {env['date']}, ablauf {env['ablauf']}",
        "",
        f"- machine: {env['machine']}, {env['cpu']}, {env['cores']} cores",
        f"- Python {env['python']}, temporalio {env['temporalio']}, "
        f"Temporal CLI: {env['temporal_cli']}",
        f"- a one-row SQLite commit: {env['sqlite_commit']}",
        f"- sizes: {sizes}",
        f"- other processes meanwhile: {env.get('other_cpu', 'not measured')}",
        "",
        "| workload | unit | Temporal | ablauf | ablauf/Temporal | ablauf fsync "
        "| fsync/Temporal | ablauf target | met (ablauf / fsync) |",
        "|---|---|--:|--:|--:|--:|--:|--:|---|",
    ]

    def cell(engine: str, label: str) -> str:
        if engine not in engines:
            return "-"
        figure = figures.get(engine, {}).get(label)
        if figure is not None:
            return number(figure.value)
        return "error" if workload_of[label] in errors.get(engine, {}) else "-"

    def ratio(engine: str, label: str) -> str:
        mine = figures.get(engine, {}).get(label)
        theirs = figures.get("temporal", {}).get(label)
        if mine is None or theirs is None or theirs.value == 0:
            return "-"
        return number(mine.value / theirs.value) + "x"

    for label in labels:
        some = next((f[label] for f in figures.values() if label in f), None)
        higher = some is None or some.higher_is_better
        unit = "" if some is None else f"{some.unit} {'↑' if higher else '↓'}"
        target_text, target = _target(label, higher)
        met = f"{_met(figures.get('ablauf', {}).get(label), target)} / "
        met += _met(figures.get("fsync", {}).get(label), target)
        lines.append(
            f"| {label} | {unit} | {cell('temporal', label)} "
            f"| {cell('ablauf', label)} | {ratio('ablauf', label)} "
            f"| {cell('fsync', label)} | {ratio('fsync', label)} "
            f"| {target_text} | {met if target is not None else ''} |"
        )
    lines += [
        "",
        "↑ higher is better, ↓ lower is better. A ratio is ablauf's figure divided by "
        "Temporal's. fsync: `sqlite:///…?synchronous=full`. Temporal: the dev server "
        "(`temporal server start-dev` with a SQLite file, which it syncs at every commit "
        "as the fsync column does) on the same machine, temporalio's sandboxed worker.",
    ]
    notes = [
        f"- {label}: "
        + "; ".join(
            f"{ENGINE_TITLES[e]}: {figures[e][label].note}"
            for e in engines
            if label in figures.get(e, {}) and figures[e][label].note
        )
        for label in labels
        if any(figures.get(e, {}).get(label, None) and figures[e][label].note for e in engines)
    ]
    failed = [
        f"- {ENGINE_TITLES[e]} {workload}: {message}"
        for e in engines
        for workload, message in errors.get(e, {}).items()
    ]
    if notes:
        lines += ["", *notes]
    if failed:
        lines += ["", "Errors:", *failed]
    return "\n".join(lines)
