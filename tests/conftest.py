"""Engine selection and the official-Replayer check, shared by the whole suite.

Behaviour tests run on both engines: ablauf's embedded engine and a real Temporal
dev server that this session starts itself. ``--engine ablauf`` (or ``temporal``)
runs only one of them.

After every test in ``REPLAY_CHECKED`` that wrote an ablauf store into its
``tmp_path``, Temporal's own Replayer replays the history of every run in it
(``tests/replay_check.py``); a history it rejects fails the test at teardown.
``@pytest.mark.replay_exempt("why")`` exempts a test whose histories cannot replay
on purpose. The terminal summary lists the workflow classes no history replayed.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from temporalio.converter import DataConverter

from ablauf import Client
from tests import compiled_build, replay_check
from tests.temporal_server import DevServer

ENGINES = ("ablauf", "temporal")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        action="append",
        choices=ENGINES,
        help="run behaviour tests on this engine only (repeatable; default: both)",
    )
    parser.addoption(
        "--no-replay-check",
        action="store_true",
        help="do not replay the tests' histories with Temporal's Replayer",
    )


def pytest_configure(config: pytest.Config) -> None:
    stale = compiled_build.stale_sources()
    if stale:
        names = ", ".join(str(p.relative_to(compiled_build.ROOT)) for p in stale)
        pytest.exit(
            f"compiled modules are older than their sources ({names}): run scripts/bootstrap",
            returncode=2,
        )
    config.addinivalue_line(
        "markers",
        "only_engine(name, reason): the test runs on one engine only, for the reason given",
    )
    config.addinivalue_line(
        "markers",
        "replay_exempt(reason): the official Replayer does not replay this test's histories",
    )


def pytest_report_header(config: pytest.Config) -> str:
    if compiled_build.built_library() is None:
        return "ablauf: pure Python (no compiled modules)"
    return f"ablauf: {len(compiled_build.compiled_sources())} modules compiled with mypyc"


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


TESTS = Path(__file__).resolve().parent
EXAMPLES = TESTS.parent / "examples"
# Test folders whose workflows run on the embedded engine; "e2e" runs the examples.
REPLAY_CHECKED = ("behaviour", "e2e", "durability", "cli", "replay")
_replayed: dict[type, int] = {}
_candidates: set[type] = set()


def _replay_modules(request: pytest.FixtureRequest) -> list[ModuleType]:
    """The test's module, the non-test modules beside it, and the examples for e2e tests."""
    module = request.module
    modules = [module]
    here = Path(module.__file__).parent
    package = module.__name__.rpartition(".")[0]
    for path in sorted(here.glob("*.py")):
        if not path.stem.startswith(("test_", "conftest", "__")):
            modules.append(importlib.import_module(f"{package}.{path.stem}"))
    if here.name == "e2e":
        modules += [
            replay_check.load_module(path)
            for path in sorted(EXAMPLES.glob("*.py"))
            if path.stem not in ("demo", "_cli")
        ]
    return modules


@pytest.fixture(autouse=True)
async def official_replay_check(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Replays every history the test left in an ablauf store with ``temporalio``'s Replayer."""
    path = Path(str(request.node.path)).resolve()
    checked = path.parent.parent == TESTS and path.parent.name in REPLAY_CHECKED
    marker = request.node.get_closest_marker("replay_exempt")
    callspec = getattr(request.node, "callspec", None)
    on_temporal = callspec is not None and callspec.params.get("engine_name") == "temporal"
    off = request.config.getoption("no_replay_check") or on_temporal or marker is not None
    if off or not checked or "tmp_path" not in request.fixturenames:
        yield
        return
    tmp_path: Path = request.getfixturevalue("tmp_path")
    # The test's clients may use their own converters and codecs; the Replayer needs them.
    converters: list[DataConverter] = []
    original: Any = Client.__dict__["connect"]

    async def connect(cls: type[Client], *args: Any, **kwargs: Any) -> Client:
        client: Client = await original.__func__(cls, *args, **kwargs)
        if all(client.data_converter is not c for c in converters):
            converters.append(client.data_converter)
        return client

    setattr(Client, "connect", classmethod(connect))  # noqa: B010
    try:
        yield
    finally:
        setattr(Client, "connect", original)  # noqa: B010
    call = getattr(request.node, "replay_check_call", None)
    if call is None or not call.passed:
        return  # a failed test has said what went wrong; its histories may be half-made
    classes = replay_check.workflow_classes(_replay_modules(request))
    _candidates.update(classes)
    report = await replay_check.check_stores(tmp_path, classes, converters)
    for cls, count in report.replayed.items():
        _replayed[cls] = _replayed.get(cls, 0) + count
    if report.failures:
        pytest.fail(
            "Temporal's Replayer rejects histories ablauf wrote:\n" + "\n".join(report.failures),
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.replay_check_call = report  # type: ignore[attr-defined]
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _candidates:
        return
    missing = sorted(f"{c.__module__}.{c.__qualname__}" for c in _candidates - _replayed.keys())
    line = f"official Replayer: {sum(_replayed.values())} histories of {len(_replayed)} classes"
    if missing:
        line += f"; never replayed: {', '.join(missing)}"
    terminalreporter.write_line(line)
