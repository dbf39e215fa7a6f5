"""One engine's pass over the workloads, in a process of its own.

Usage: ``python -m bench.engine --engine ablauf|fsync|temporal [--server HOST:PORT]
--workloads a,b --out FILE [--quick] [--timeout S] [--repeat N]``. Writes the figures and the
errors as JSON to ``FILE``; progress goes to standard error. A process per engine
keeps the peak RSS of one engine apart from the others'.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import traceback
import uuid
from dataclasses import replace
from pathlib import Path

from bench.drivers import DRIVERS, FULL, QUICK, Bench, log, peak_rss_figure
from bench.figures import Figure
from bench.report import number


def _describe(figure: Figure) -> str:
    return f"{figure.label} = {number(figure.value)} {figure.unit}"


def _median(runs: list[list[Figure]]) -> list[Figure]:
    """Per row, the run with the median figure; the note lists every run's."""
    if len(runs) == 1:
        return runs[0]
    chosen: list[Figure] = []
    for figure in runs[0]:
        values = [f.value for run in runs for f in run if f.label == figure.label]
        middle = statistics.median_low(values)
        pick = next(f for run in runs for f in run if f.label == figure.label and f.value == middle)
        every = ", ".join(number(v) for v in values)
        note = f"{pick.note}; " if pick.note else ""
        chosen.append(replace(pick, note=f"{note}median of {len(values)} runs: {every}"))
    return chosen


async def run(
    engine: str,
    server: str | None,
    workloads: list[str],
    quick: bool,
    timeout: float,
    repeat: int = 1,
) -> dict[str, object]:
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ablauf-bench-") as workdir:
        bench = Bench(engine, server, QUICK if quick else FULL, Path(workdir), uuid.uuid4().hex[:8])
        for name in workloads:
            driver = DRIVERS[name]
            if driver is None:
                continue
            runs: list[list[Figure]] = []
            for attempt in range(repeat):
                log(f"[{engine}] {name} ..." + (f" (run {attempt + 1} of {repeat})" * (repeat > 1)))
                started = time.perf_counter()
                try:
                    measured = await asyncio.wait_for(driver(bench), timeout)
                except TimeoutError:
                    errors[name] = f"timed out after {timeout:g} s"
                    log(f"[{engine}] {name}: {errors[name]}")
                    break
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    log(f"[{engine}] {name} failed:\n{traceback.format_exc()}")
                    break
                took = time.perf_counter() - started
                rss = peak_rss_figure().value
                log(
                    f"[{engine}] {name}: {'; '.join(map(_describe, measured))} "
                    f"({took:.1f} s; peak RSS so far {rss:.0f} MiB)"
                )
                runs.append(measured)
            if name not in errors:
                figures += _median(runs)
    if "memory" in workloads:
        figure = peak_rss_figure()
        log(f"[{engine}] {_describe(figure)} (this process)")
        figures.append(figure)
    return {"figures": [f.to_json() for f in figures], "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine")
    parser.add_argument("--engine", required=True, choices=["ablauf", "fsync", "temporal"])
    parser.add_argument("--server")
    parser.add_argument("--workloads", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.engine == "temporal" and not args.server:
        parser.error("--engine temporal needs --server")
    workloads = [name for name in args.workloads.split(",") if name]
    result = asyncio.run(
        run(args.engine, args.server, workloads, args.quick, args.timeout, args.repeat)
    )
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
