"""A kill storm in the suite: several worker processes SIGKILLed at random
instants while a separate client process starts and signals workflows that run
activities in sequence and in a gather, a timer and a child workflow. Every
acknowledged workflow must finish with its exact result, every activity's
effect must be there, and no two attempts of one activity may run at once.
``scripts/storm`` runs a larger one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.durability.storm import run_storm

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
@pytest.mark.parametrize("synchronous", ["normal", "full"])
async def test_nothing_acknowledged_is_lost_in_a_kill_storm(
    tmp_path: Path, synchronous: str
) -> None:
    report = await run_storm(
        tmp_path, workflows=200, workers=3, kills=12, rate=40.0, synchronous=synchronous
    )
    assert report.ok(), report.summary()
