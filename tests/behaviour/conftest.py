"""Behaviour tests go through the public API only, on both engines.

``target`` is where the test's workflows live: a fresh SQLite store for the
embedded engine, or the session's Temporal dev server. Workflow ids and task
queues carry a per-test suffix because the dev server is shared.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from ablauf import Client


@pytest.fixture
def target(engine_name: str, tmp_path, request: pytest.FixtureRequest) -> str:
    if engine_name == "temporal":
        return str(request.getfixturevalue("temporal_target"))
    return f"sqlite:///{tmp_path / 'behaviour.db'}"


@pytest.fixture
async def client(target: str) -> AsyncIterator[Client]:
    c = await Client.connect(target)
    yield c
    await c.close()


@pytest.fixture
def suffix() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def task_queue(suffix: str) -> str:
    return f"tq-{suffix}"
