"""Objects workflow code holds: activity handles and the continue-as-new request.

They only talk to the runtime through the small :class:`ActivityOwner`
protocol, so the handle logic (cancellation rules, the Python SDK's
cancel-after-completion flag) stays readable on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import temporalio.common
import temporalio.converter
import temporalio.workflow

if TYPE_CHECKING:
    from temporalio.api.common.v1 import Payload

    from ablauf.replay.loop import WorkflowEventLoop
    from ablauf.replay.machines import ActivityMachine, LocalActivityMachine, LocalBackoff

__all__ = [
    "ActivityHandle",
    "ActivityOwner",
    "ContinueAsNewRequest",
    "EvictedError",
    "LocalActivityHandle",
]

RAISE_ON_CANCELLING_COMPLETED_ACTIVITY = 1
"""temporal-python's lang flag: cancelling a task whose activity already finished raises."""


def _when_done(fut: asyncio.Future[Any]) -> asyncio.Future[None]:
    """Resolves once ``fut`` is done; cancelling it leaves ``fut`` alone.

    It resumes the waiter as many loop turns after ``fut`` as ``asyncio.shield``
    would (as the Python SDK waits), at a fraction of ``asyncio.wait``'s cost.
    """
    waiter: asyncio.Future[None] = fut.get_loop().create_future()

    def resolve(_: asyncio.Future[Any]) -> None:
        if not waiter.done():
            waiter.set_result(None)

    fut.add_done_callback(resolve)
    return waiter


class EvictedError(BaseException):
    """Raised into workflow code that tries to act while its instance is torn down."""


class ActivityOwner(Protocol):
    """What an activity handle needs from the runtime."""

    @property
    def loop(self) -> WorkflowEventLoop:
        """The run's event loop."""

    @property
    def evicting(self) -> bool:
        """Whether the instance is being torn down."""

    @property
    def replaying(self) -> bool:
        """Whether the current task replays history."""

    def check_may_schedule(self, action: str, *, during_eviction: bool = False) -> None:
        """Raise if workflow code may not act now."""

    def request_cancel_activity(self, handle: ActivityHandle) -> None:
        """Cancel the activity's command or the activity itself."""

    def lang_flag_in_history(self, flag: int) -> bool:
        """Whether the replayed task recorded a temporal-python flag."""

    def use_lang_flag(self, flag: int) -> None:
        """Record that a new task relied on a temporal-python flag."""

    def retry_local_activity(self, handle: LocalActivityHandle, backoff: LocalBackoff) -> None:
        """Ask for a local activity again after its backoff timer fired."""


class ActivityHandle(temporalio.workflow.ActivityHandle[Any]):
    """The task ``workflow.start_activity`` returns; it resolves with the activity."""

    def __init__(
        self,
        owner: ActivityOwner,
        seq: int,
        activity_type: str,
        result_type: type | None,
        context: temporalio.converter.ActivitySerializationContext | None,
        payload_converter: temporalio.converter.PayloadConverter,
    ) -> None:
        self._owner = owner
        self.seq = seq
        self.activity_type = activity_type
        self.result_type = result_type
        # None when the workflow's converters ignore contexts.
        self.context = context
        self.payload_converter = payload_converter
        self.machine: ActivityMachine | None = None
        loop = owner.loop
        self._activity_result: asyncio.Future[Any] = loop.create_future()
        self._started = False
        self._cancel_requested = False
        super().__init__(self._run(), loop=loop)
        loop.register_task(self)

    async def _run(self) -> Any:
        self._started = True
        result = self._activity_result
        while True:
            try:
                # Wait without letting a task cancel touch the result: whether the
                # activity really ends cancelled is decided by its cancellation type.
                if not result.done():
                    await _when_done(result)
                return result.result()
            except asyncio.CancelledError:
                if result.done():
                    owner = self._owner
                    flag = RAISE_ON_CANCELLING_COMPLETED_ACTIVITY
                    if not owner.replaying or owner.lang_flag_in_history(flag):
                        owner.use_lang_flag(flag)
                        raise
                self._request_cancel()
                # Clear the cancel request so the next wait does not raise at once.
                self.uncancel()

    def cancel(self, msg: Any | None = None) -> bool:
        """Cancel the activity; unstarted handles still send the cancel request."""
        if not self._owner.evicting:
            self._owner.check_may_schedule("cancel activity handle")
            # A handle cancelled before its coroutine ran would never see the
            # CancelledError, so the request goes out here.
            if not self._started and not self.done():
                self._request_cancel()
        return super().cancel(msg)

    def _request_cancel(self) -> None:
        if self._cancel_requested and not self._owner.evicting:
            return
        self._cancel_requested = True
        self._owner.request_cancel_activity(self)

    def resolve_success(self, value: Any) -> None:
        """The activity completed with ``value``."""
        self._activity_result.set_result(value)

    def resolve_failure(self, error: BaseException) -> None:
        """The activity failed, timed out or was cancelled."""
        # An unstarted handle was cancelled before it could wait; nobody will read this.
        if self._started:
            self._activity_result.set_exception(error)


class _Backoff(Exception):
    """A local activity is to run again after a timer (set on its result future)."""

    def __init__(self, backoff: LocalBackoff) -> None:
        super().__init__("Local activity backoff")
        self.backoff = backoff


class LocalActivityHandle(ActivityHandle):
    """The task ``workflow.start_local_activity`` returns.

    A local activity whose retry waits longer than its local retry threshold
    resolves with a backoff: the handle sleeps on a durable timer and asks for
    the activity again under a new sequence number, as temporalio does.
    """

    def __init__(
        self,
        owner: ActivityOwner,
        seq: int,
        activity_type: str,
        result_type: type | None,
        context: temporalio.converter.ActivitySerializationContext | None,
        payload_converter: temporalio.converter.PayloadConverter,
    ) -> None:
        self.local_machine: LocalActivityMachine | None = None
        self.explicit_id: str | None = None  # the activity id workflow code chose, if any
        super().__init__(owner, seq, activity_type, result_type, context, payload_converter)

    async def _run(self) -> Any:
        while True:
            try:
                return await super()._run()
            except _Backoff as err:
                # A durable timer, which workflow code may cancel like any other.
                await asyncio.sleep(err.backoff.duration.total_seconds())
                self._cancel_requested = False
                self._owner.retry_local_activity(self, err.backoff)

    def resolve_backoff(self, backoff: LocalBackoff, seq: int) -> None:
        """The activity runs again as ``seq`` once the backoff timer fired."""
        self.seq = seq
        self._activity_result.set_exception(_Backoff(backoff))
        self._activity_result = self._owner.loop.create_future()


@dataclass
class ContinueAsNewRequest:
    """What ``workflow.continue_as_new`` asked for."""

    workflow: str | None
    args: Sequence[Any]
    arg_types: list[type] | None
    task_queue: str | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    backoff_start_interval: timedelta | None
    retry_policy: temporalio.common.RetryPolicy | None
    memo: Mapping[str, Any] | None
    search_attributes: (
        temporalio.common.SearchAttributes | temporalio.common.TypedSearchAttributes | None
    )
    initial_versioning_behavior: int | None
    markers: list[Any]
    headers: Mapping[str, Payload] | None = None


class ContinueAsNew(temporalio.workflow.ContinueAsNewError):
    """Raised by ``workflow.continue_as_new``; the top-level coroutine turns it into a command."""

    def __init__(self, request: ContinueAsNewRequest) -> None:
        super().__init__("Continue as new")
        self.request = request


def close_coroutine(coro: Coroutine[Any, Any, Any]) -> None:
    """Close a coroutine that will never be resumed, ignoring what it raises."""
    with contextlib.suppress(BaseException):
        coro.close()
