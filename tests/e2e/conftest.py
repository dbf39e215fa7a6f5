"""Fixtures for the end-to-end tests: a client on a fresh store, or on ABLAUF_TEST_TARGET.

The examples in ``examples/`` import each other by module name, as they do when run
as scripts, so their directory goes on ``sys.path``.

To run the same tests against a Temporal server instead of a SQLite store, name it::

    ABLAUF_TEST_TARGET=localhost:7233 .venv/bin/pytest tests/e2e
"""

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))


@pytest.fixture
def target(tmp_path: Path) -> str:
    """Where the test's workflows live: a fresh SQLite file, or ``ABLAUF_TEST_TARGET``."""
    return os.environ.get("ABLAUF_TEST_TARGET") or f"sqlite:///{tmp_path}/x.db"


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
