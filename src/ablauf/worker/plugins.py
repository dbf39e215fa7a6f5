"""Worker plugins and interceptors as temporalio's ``Worker`` takes them.

temporalio's worker runs the client's worker plugins first, then its own: each
``configure_worker`` gets the whole ``WorkerConfig`` (every option, with
temporalio's defaults) and returns it changed; ``run_worker`` wraps running the
worker, the first plugin outermost. Interceptors of the client that are also
worker interceptors come before the worker's own. temporalio's worker package
is imported only where a plugin or an interceptor is given: the user's code
has imported it already then.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import temporalio.client

if TYPE_CHECKING:
    import temporalio.worker

__all__ = ["configure", "run_with_plugins", "worker_interceptors", "worker_plugins"]


def worker_plugins(
    client: temporalio.client.Client, plugins: Sequence[Any]
) -> list[temporalio.worker.Plugin]:
    """The client's worker plugins, then ``plugins``, warning of a type given twice."""
    from_client = client.config()["plugins"]
    if not from_client and not plugins:
        return []
    import temporalio.worker

    mine = [p for p in from_client if isinstance(p, temporalio.worker.Plugin)]
    given_types = [type(p) for p in plugins]
    for plugin in mine:
        if type(plugin) in given_types:
            warnings.warn(
                f"The same plugin type {type(plugin)} is present from both client and worker. "
                "It may run twice and may not be the intended behavior.",
                stacklevel=3,
            )
    return [*mine, *plugins]


def configure(
    plugins: Sequence[temporalio.worker.Plugin],
    client: temporalio.client.Client,
    given: dict[str, Any],
) -> dict[str, Any]:
    """The worker's configuration once every plugin's ``configure_worker`` has run.

    ``given`` holds the options the worker was given; the others get
    temporalio's defaults, as plugins expect to find every option.
    """
    import temporalio.worker

    config: dict[str, Any] = {}
    parameters = inspect.signature(temporalio.worker.Worker.__init__).parameters
    for name, parameter in parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            config[name] = parameter.default
    config.update(given)
    config["client"] = client
    for plugin in plugins:
        config = dict(plugin.configure_worker(config))  # type: ignore[arg-type]
    return config


async def run_with_plugins(
    plugins: Sequence[temporalio.worker.Plugin],
    worker: Any,
    run: Callable[[Any], Awaitable[None]],
) -> None:
    """Run ``run(worker)`` inside every plugin's ``run_worker``, the first outermost."""

    def wrap(
        plugin: temporalio.worker.Plugin, inner: Callable[[Any], Awaitable[None]]
    ) -> Callable[[Any], Awaitable[None]]:
        return lambda w: plugin.run_worker(w, inner)

    chained = run
    for plugin in reversed(plugins):
        chained = wrap(plugin, chained)
    await chained(worker)


def worker_interceptors(
    client: temporalio.client.Client, interceptors: Sequence[Any]
) -> list[temporalio.worker.Interceptor]:
    """The client's interceptors that are worker interceptors too, then ``interceptors``."""
    from_client = client.config(active_config=True)["interceptors"]
    if not from_client:
        return list(interceptors)
    worker_module = sys.modules.get("temporalio.worker")
    if worker_module is None:
        # Nothing can be a worker interceptor before temporalio's worker is imported.
        return list(interceptors)
    mine = [i for i in from_client if isinstance(i, worker_module.Interceptor)]
    return [*mine, *interceptors]
