"""Fixtures for the end-to-end tests: a client on each engine, as in ``tests/behaviour``.

Every example test runs twice (``engine_name`` from ``tests/conftest.py``): on a fresh
SQLite store, and on the Temporal dev server this session starts. ``--engine ablauf``
(or ``temporal``) runs only one of them.

The examples in ``examples/`` import each other by module name, as they do when run
as scripts, so their directory goes on ``sys.path``.
"""

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))


@pytest.fixture
def target(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where the test's workflows live: a fresh SQLite file, or the session's dev server."""
    if engine_name == "temporal":
        return str(request.getfixturevalue("temporal_target"))
    return f"sqlite:///{tmp_path}/x.db"


@pytest.fixture
async def client(target: str) -> AsyncIterator[Any]:
    """An ``ablauf.Client`` connected to ``target``."""
    # Imported here, not at the top: a failing import then fails these tests, not
    # the collection of the whole test suite.
    from ablauf import Client

    client = await Client.connect(target)
    yield client
    # ablauf's Client stops its embedded engine; temporalio's Client (as in a shim
    # that stands in for ablauf) has nothing to close.
    if hasattr(client, "close"):
        await client.close()
