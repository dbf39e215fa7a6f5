"""pytest plugin that runs temporalio's own test files, unedited, on one engine.

scripts/sdk-tests loads it with ``-p ablauf_sdk_plugin`` and sets
``ABLAUF_SDK_ENGINE``:

- ``temporal``: the tests as the SDK runs them, except that the dev server is
  the ``temporal`` CLI named by ``ABLAUF_SDK_TEMPORAL_CLI`` (the one the
  project's venv installs) rather than a download.
- ``ablauf``: ``temporalio.worker.Worker`` is ``ablauf.Worker``, and the
  environments that the SDK's conftest and tests start
  (``WorkflowEnvironment.start_local`` / ``start_time_skipping``) are
  ``ablauf.testing.WorkflowEnvironment`` on a fresh SQLite store, whose client
  is an ``ablauf.Client``. The SDK's fixtures (``env``, ``client``,
  ``worker``) then build everything on ablauf.

The patches are made when the plugin is imported, before pytest imports the
SDK's conftest, helpers and test modules, so their ``from temporalio.worker
import Worker`` binds the replacement.

Each test's outcome is appended to the JSON-lines file ``ABLAUF_SDK_RESULTS``
as soon as it is known, and tests already recorded there are not collected
again. A test still running after ``ABLAUF_SDK_HANG`` seconds (blocking
workflow code can freeze the whole process, past pytest-timeout) is recorded as
``hung`` and the process exits with status 75: the script then starts pytest
again on the tests left.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest
import temporalio.testing
import temporalio.worker

ENGINE = os.environ.get("ABLAUF_SDK_ENGINE", "")

# Options of temporalio's environments that only configure the server process.
_SERVER_OPTIONS = {
    "ip",
    "port",
    "ui",
    "ui_port",
    "tls",
    "download_dest_dir",
    "dev_server_existing_path",
    "dev_server_database_filename",
    "dev_server_log_format",
    "dev_server_log_level",
    "dev_server_download_version",
    "dev_server_extra_args",
    "dev_server_download_ttl",
    "dev_server_startup_timeout",
    "test_server_existing_path",
    "test_server_download_version",
    "test_server_extra_args",
    "test_server_download_ttl",
    "test_server_startup_timeout",
}


def _client_options(options: dict[str, Any]) -> dict[str, Any]:
    # Everything else goes to ablauf.Client.connect, which refuses what it cannot honour.
    return {k: v for k, v in options.items() if k not in _SERVER_OPTIONS}


def _use_ablauf() -> None:
    import ablauf
    import ablauf.testing

    ablauf_env = ablauf.testing.WorkflowEnvironment

    async def start_local(cls: type, **options: Any) -> Any:
        return await ablauf_env.start_local(**_client_options(options))

    async def start_time_skipping(cls: type, **options: Any) -> Any:
        return await ablauf_env.start_time_skipping(**_client_options(options))

    env = temporalio.testing.WorkflowEnvironment
    env.start_local = classmethod(start_local)  # type: ignore[assignment,method-assign]
    env.start_time_skipping = classmethod(start_time_skipping)  # type: ignore[assignment,method-assign]
    temporalio.worker.Worker = ablauf.Worker  # type: ignore[misc]


def _use_dev_server() -> None:
    cli = os.environ.get("ABLAUF_SDK_TEMPORAL_CLI")
    if not cli:
        return
    env = temporalio.testing.WorkflowEnvironment
    original = env.start_local.__func__  # type: ignore[attr-defined]

    async def start_local(cls: type, **options: Any) -> Any:
        options.setdefault("dev_server_existing_path", cli)
        return await original(cls, **options)

    env.start_local = classmethod(start_local)  # type: ignore[assignment,method-assign]


RESULTS = os.environ.get("ABLAUF_SDK_RESULTS")
HANG_SECONDS = float(os.environ.get("ABLAUF_SDK_HANG", "180"))
HUNG_EXIT = 75

_running: tuple[str, float] | None = None
_outcomes: dict[str, tuple[str, str]] = {}


def _record(test: str, outcome: str, message: str) -> None:
    assert RESULTS is not None
    with open(RESULTS, "a") as out:
        out.write(json.dumps({"test": test, "outcome": outcome, "message": message}) + "\n")


def _recorded() -> set[str]:
    if RESULTS is None or not os.path.exists(RESULTS):
        return set()
    with open(RESULTS) as lines:
        return {json.loads(line)["test"] for line in lines if line.strip()}


def _watchdog() -> None:
    while True:
        time.sleep(1)
        running = _running
        if running is not None and time.monotonic() - running[1] > HANG_SECONDS:
            _record(running[0], "hung", f"still running after {HANG_SECONDS:.0f} s")
            os._exit(HUNG_EXIT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    done = _recorded()
    if done:
        kept = [item for item in items if item.nodeid not in done]
        config.hook.pytest_deselected(items=[item for item in items if item.nodeid in done])
        items[:] = kept
    if RESULTS is not None:
        threading.Thread(target=_watchdog, daemon=True).start()


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    global _running
    _running = (nodeid, time.monotonic())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    outcome, _ = _outcomes.get(report.nodeid, ("passed", ""))
    if outcome == "failed" or report.passed:
        return
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _outcomes[report.nodeid] = ("skipped", reason)
    else:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr).strip()
        _outcomes[report.nodeid] = ("failed", f"{report.when}: {message}")


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    global _running
    _running = None
    outcome, message = _outcomes.pop(nodeid, ("passed", ""))
    if RESULTS is not None:
        _record(nodeid, outcome, message)


if ENGINE == "ablauf":
    _use_ablauf()
elif ENGINE == "temporal":
    _use_dev_server()
else:
    raise RuntimeError("ABLAUF_SDK_ENGINE must be 'ablauf' or 'temporal'")
