"""``temporalio.worker.Worker``'s options as the embedded worker takes them.

Every option temporalio's worker accepts is accepted here too. Those that
tune how a worker polls a server, or how temporalio runs workflow code, have
no counterpart in an embedded engine and change nothing (the README lists
them); the rest mean what they mean in temporalio. Only what ablauf cannot do
yet is refused, at once, naming the option.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

__all__ = ["WITHOUT_MEANING", "EmbeddedOptions", "embedded_options"]

DEFAULT_ACTIVITY_SLOTS = 1000
"""Activity attempts one embedded worker runs at once unless told otherwise."""

WITHOUT_MEANING = frozenset(
    {
        # Polling a server and its task queues.
        "identity",
        "build_id",
        "max_concurrent_workflow_tasks",
        "max_concurrent_workflow_task_polls",
        "max_concurrent_activity_task_polls",
        "nonsticky_to_sticky_poll_ratio",
        "sticky_queue_schedule_to_start_timeout",
        "max_activities_per_second",
        "max_task_queue_activities_per_second",
        "disable_eager_activity_execution",
        "max_eager_activity_reservations_per_workflow_task",
        "workflow_task_poller_behavior",
        "activity_task_poller_behavior",
        "nexus_task_poller_behavior",
        "use_worker_versioning",
        "deployment_config",
        "max_workflow_task_external_storage_concurrency",
        # How temporalio runs workflow code: the embedded worker runs it on its own
        # loop (workflow_runner only says whether and how it is sandboxed).
        "unsandboxed_workflow_runner",
        "disable_safe_workflow_eviction",
        "patch_activation_callback",
        # For activities run in other processes, which the embedded worker does not start.
        "shared_state_manager",
        # Local activities run in the workflow's worker, as many as its workflows start.
        "max_concurrent_local_activities",
    }
)
"""Accepted and without effect on the embedded engine."""

_REFUSED = {
    "nexus_service_handlers": "Nexus is not supported by ablauf's embedded worker",
    "nexus_task_executor": "Nexus is not supported by ablauf's embedded worker",
    "max_concurrent_nexus_tasks": "Nexus is not supported by ablauf's embedded worker",
    "disable_payload_error_limit": "ablauf's embedded engine always enforces Temporal's "
    "payload size limit",
}


@dataclass(frozen=True, slots=True)
class EmbeddedOptions:
    """What the embedded worker takes from temporalio's options."""

    activity_slots: int
    heartbeat_default: float
    """Seconds between heartbeats sent of an activity without a heartbeat timeout."""
    heartbeat_max: float
    """Longest interval between heartbeats sent, whatever the heartbeat timeout."""
    on_fatal_error: Callable[[BaseException], Awaitable[None]] | None
    remote_activities: bool
    """Whether it runs activity tasks (False: its activities are for local use only)."""
    debug_mode: bool
    """No deadlock detection for workflow code (also set by ``TEMPORAL_DEBUG``)."""
    workflow_task_executor: concurrent.futures.Executor | None
    """Runs all workflow code on its threads, as temporalio's worker does."""


def _seconds(options: Mapping[str, Any], name: str, default: float) -> float:
    value = options.get(name)
    if value is None:
        return default
    if not isinstance(value, timedelta):
        raise TypeError(f"{name} must be a timedelta, not {type(value).__name__}")
    return value.total_seconds()


def embedded_options(
    max_concurrent_activities: int | None, options: Mapping[str, Any]
) -> EmbeddedOptions:
    """Checks ``options`` (temporalio's ``Worker`` keyword arguments) and reads
    what the embedded worker uses of them.

    Raises:
        TypeError: An option temporalio's worker does not know, or one ablauf
            cannot honour yet.
        ValueError: Slots given twice (as temporalio refuses them).
    """
    for name in options:
        if name in _REFUSED and options[name]:
            raise TypeError(f"{name}: {_REFUSED[name]}")
    unknown = set(options) - WITHOUT_MEANING - set(_REFUSED) - _WITH_MEANING
    if unknown:
        raise TypeError(
            f"unexpected option(s) {', '.join(sorted(unknown))}: not an option of "
            "temporalio.worker.Worker"
        )
    tuner = options.get("tuner")
    slots = max_concurrent_activities
    if tuner is not None:
        if max_concurrent_activities is not None:
            raise ValueError(
                "Cannot specify max_concurrent_workflow_tasks, max_concurrent_activities, "
                "max_concurrent_local_activities, or max_concurrent_nexus_tasks when also "
                "specifying tuner"
            )
        # A tuner with a fixed number of activity slots says how many; one that
        # sizes slots by resource use gives its maximum.
        slots = tuner._get_activities_max()
    return EmbeddedOptions(
        activity_slots=slots or DEFAULT_ACTIVITY_SLOTS,
        heartbeat_default=_seconds(options, "default_heartbeat_throttle_interval", 30.0),
        heartbeat_max=_seconds(options, "max_heartbeat_throttle_interval", 60.0),
        on_fatal_error=options.get("on_fatal_error"),
        remote_activities=not options.get("no_remote_activities", False),
        # As temporalio's worker: the environment variable turns it on too.
        debug_mode=bool(options.get("debug_mode")) or bool(os.environ.get("TEMPORAL_DEBUG")),
        workflow_task_executor=options.get("workflow_task_executor"),
    )


_WITH_MEANING = frozenset(
    {
        "tuner",
        "default_heartbeat_throttle_interval",
        "max_heartbeat_throttle_interval",
        "on_fatal_error",
        "no_remote_activities",
        "plugin_shutdown_timeout",
        # Taken by the worker before the options are read (see plugins.py).
        "interceptors",
        "plugins",
        "workflow_runner",
        "debug_mode",
        "workflow_task_executor",
    }
)
