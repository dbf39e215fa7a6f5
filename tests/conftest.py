"""Engine selection shared by the whole suite.

Behaviour tests run on both engines: ablauf's embedded engine and a real Temporal
dev server that this session starts itself. ``--engine ablauf`` (or ``temporal``)
runs only one of them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.temporal_server import DevServer

ENGINES = ("ablauf", "temporal")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        action="append",
        choices=ENGINES,
        help="run behaviour tests on this engine only (repeatable; default: both)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "only_engine(name, reason): the test runs on one engine only, for the reason given",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine_name" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("engine") or list(ENGINES)
        marker = metafunc.definition.get_closest_marker("only_engine")
        if marker is not None:
            chosen = [e for e in chosen if e == marker.args[0]]
        metafunc.parametrize("engine_name", chosen, scope="function")


@pytest.fixture(scope="session")
def temporal_target() -> Iterator[str]:
    server = DevServer()
    server.start()
    yield server.target
    server.stop()
