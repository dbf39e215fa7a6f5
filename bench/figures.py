"""What a workload measures: figures, their targets, and percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["TARGETS", "Figure", "percentile"]


@dataclass(frozen=True)
class Figure:
    """One measured figure of one workload on one engine.

    Attributes:
        workload: The workload that produced it (what ``--workloads`` selects).
        label: Its row in the table, e.g. ``timers p99``.
        unit: e.g. ``activities/s`` or ``ms``.
        value: The figure.
        higher_is_better: Throughputs are; latencies, durations and memory are not.
        note: Details printed below the table (sizes, history length, parts).
        samples: Raw measurements behind the figure, kept for ``--json``.
    """

    workload: str
    label: str
    unit: str
    value: float
    higher_is_better: bool
    note: str = ""
    samples: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["samples"] = list(self.samples)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        return cls(**{**data, "samples": tuple(data.get("samples", ()))})


# ablauf's targets, by row label.
TARGETS: dict[str, float] = {
    "gather": 10_000,
    "sequential": 2_000,
    "many_workflows": 1_500,
    "children": 5_000,
    "signals": 10_000,
    "queries": 10_000,
    "timers p99": 20,
    "start_to_result p50": 1,
    "memory": 80,
    # A worker drains work another process queued nearly as fast as its own.
    "backlog other/in-process": 0.8,
}


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value with ``p`` % of values at or below it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]
