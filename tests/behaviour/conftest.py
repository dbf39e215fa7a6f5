"""Behaviour tests go through the public API only: ablauf.Client and ablauf.Worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from ablauf import Client


@pytest.fixture
async def client(tmp_path) -> AsyncIterator[Client]:
    c = await Client.connect(f"sqlite:///{tmp_path / 'behaviour.db'}")
    yield c
    await c.close()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:8]}"
