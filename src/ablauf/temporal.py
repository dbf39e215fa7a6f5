"""The scale-out path: the same Client and Worker names backed by a Temporal server.

Only this module hands work to the official SDK's worker; ``Client.connect`` with
a ``host:port`` target already returns temporalio's own client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import temporalio.client

if TYPE_CHECKING:
    import temporalio.worker

__all__ = ["server_worker"]


def server_worker(
    client: temporalio.client.Client,
    *,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    workflows: Sequence[type],
    options: dict[str, Any],
) -> temporalio.worker.Worker:
    """A ``temporalio.worker.Worker`` with the arguments ablauf's Worker was given."""
    # Imported here: the embedded engine never needs the SDK's worker (nor the
    # memory its imports take).
    import temporalio.worker

    return temporalio.worker.Worker(
        client, task_queue=task_queue, activities=activities, workflows=workflows, **options
    )
