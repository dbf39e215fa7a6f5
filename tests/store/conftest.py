"""The contract suite runs every test taking ``store`` on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ablauf.store import open_store
from ablauf.store.base import Store

BACKENDS = {
    "sqlite-file": lambda tmp_path: f"sqlite:///{tmp_path / 's.db'}",
    "sqlite-memory": lambda tmp_path: "sqlite://:memory:",
}


@pytest.fixture(params=list(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each backend."""
    s = open_store(BACKENDS[request.param](tmp_path))
    yield s
    s.close()
