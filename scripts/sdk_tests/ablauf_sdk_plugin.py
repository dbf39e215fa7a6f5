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
"""

from __future__ import annotations

import os
from typing import Any

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


if ENGINE == "ablauf":
    _use_ablauf()
elif ENGINE == "temporal":
    _use_dev_server()
else:
    raise RuntimeError("ABLAUF_SDK_ENGINE must be 'ablauf' or 'temporal'")
