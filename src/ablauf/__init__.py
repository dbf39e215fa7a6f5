"""ablauf: durable workflows for Python, the Temporal way, with no server to run.

Workflow and activity code uses ``temporalio.workflow`` and
``temporalio.activity``; only the client and worker come from here::

    client = await Client.connect("sqlite:///orders.db")
    async with Worker(client, task_queue="orders", workflows=[...], activities=[...]):
        result = await client.execute_workflow(...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ablauf.client import Client
    from ablauf.worker.worker import Worker

__all__ = ["Client", "Worker", "__version__"]

__version__: str


def __getattr__(name: str) -> Any:
    # Imported on first use so that `import ablauf.engine...` stays light.
    if name == "__version__":
        # From the package's metadata: pyproject.toml says it once.
        from importlib.metadata import version

        return version("ablauf")
    if name == "Client":
        from ablauf.client import Client

        return Client
    if name == "Worker":
        from ablauf.worker.worker import Worker

        return Worker
    raise AttributeError(f"module 'ablauf' has no attribute {name!r}")
