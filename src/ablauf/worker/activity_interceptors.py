"""Worker interceptors around an activity attempt, as temporalio's activity worker
chains them.

Each interceptor's ``intercept_activity`` wraps the next
``ActivityInboundInterceptor``, outermost first; ``init`` then hands the
``ActivityOutboundInterceptor`` inwards. The innermost links run the activity
and answer ``activity.info()`` and ``activity.heartbeat()``, which from then on
go through the outbound chain. Only workers with interceptors import this
module (and temporalio's worker package).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import temporalio.activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

    import temporalio.converter

    from ablauf.history.tasks import ActivityTask


class Attempt(Protocol):
    """What this module needs of the runner's attempt (``activities.Attempt``)."""

    defn: temporalio.activity._Definition
    payload_converter: temporalio.converter.PayloadConverter
    loop: asyncio.AbstractEventLoop

    def record_heartbeat(self, details: Sequence[Any]) -> None:
        """Encode and hand on a heartbeat; runs on the event loop."""


class Runner(Protocol):
    """What this module needs of the ``ActivityRunner``."""

    @property
    def interceptors(self) -> Sequence[Interceptor]:
        """The worker's interceptors, outermost first."""

    @property
    def executor(self) -> concurrent.futures.Executor | None:
        """The executor of sync activities."""

    def run_sync(
        self,
        attempt: Any,
        info: Callable[[], temporalio.activity.Info],
        converter: temporalio.converter.PayloadConverter,
        fn: Callable[..., Any],
        args: Sequence[Any],
        heartbeat: Callable[..., None],
        executor: concurrent.futures.Executor | None,
    ) -> Awaitable[Any]:
        """Run a sync activity's ``fn`` in the executor, with the activity context there."""


__all__ = ["Attempt", "Runner", "execute_intercepted"]


async def execute_intercepted(
    runner: Runner,
    task: ActivityTask,
    attempt: Attempt,
    args: Sequence[Any],
    info: Callable[[], temporalio.activity.Info],
) -> Any:
    """Run an attempt through the runner's interceptors (its activity context is set)."""
    inbound: ActivityInboundInterceptor = _InboundRoot(runner, attempt)
    for interceptor in reversed(runner.interceptors):
        inbound = interceptor.intercept_activity(inbound)
    inbound.init(_OutboundRoot(attempt, info))
    return await inbound.execute_activity(
        ExecuteActivityInput(
            fn=attempt.defn.fn,
            args=args,
            executor=None if attempt.defn.is_async else runner.executor,
            headers=task.headers,
        )
    )


class _InboundRoot(ActivityInboundInterceptor):
    """The innermost inbound interceptor: runs the activity."""

    def __init__(self, runner: Runner, attempt: Attempt) -> None:
        # Like temporalio's innermost link: no next interceptor to call.
        self._runner = runner
        self._attempt = attempt

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        # The context's callables are replaced, not the context: interceptors
        # may hold it already.
        context = temporalio.activity._Context.current()
        context.info = outbound.info
        context.heartbeat = outbound.heartbeat

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        attempt = self._attempt
        if attempt.defn.is_async:
            return await input.fn(*input.args)
        context = temporalio.activity._Context.current()
        # As temporalio: the thread sees the info as it is now, and its
        # heartbeats go through the outbound chain on the event loop.
        info = context.info()
        heartbeat = context.heartbeat
        assert heartbeat is not None
        loop = attempt.loop

        def heartbeat_from_thread(*details: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                loop.call_soon_threadsafe(lambda: heartbeat(*details))

        return await self._runner.run_sync(
            attempt,
            lambda: info,
            attempt.payload_converter,
            input.fn,
            input.args,
            heartbeat_from_thread,
            input.executor,
        )


class _OutboundRoot(ActivityOutboundInterceptor):
    """The innermost outbound interceptor: the attempt's info and heartbeats."""

    def __init__(self, attempt: Attempt, info: Callable[[], temporalio.activity.Info]) -> None:
        # Like temporalio's innermost link: no next interceptor to call.
        self._attempt = attempt
        self._info = info

    def info(self) -> temporalio.activity.Info:
        return self._info()

    def heartbeat(self, *details: Any) -> None:
        self._attempt.record_heartbeat(details)
