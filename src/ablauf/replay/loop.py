"""The deterministic asyncio event loop that workflow code runs on.

There is no I/O, no clock and no thread: callbacks run in the order they were
scheduled, time is the workflow time the runtime sets, and ``call_later``
becomes a durable timer (a StartTimer command) through :class:`TimerScheduler`.
Everything else of :class:`asyncio.AbstractEventLoop` stays unimplemented, so
code that needs real I/O fails loudly instead of running nondeterministically.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import traceback
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Protocol, TypeAlias, TypeVar

__all__ = ["DurableTimer", "TimerScheduler", "WorkflowEventLoop"]

# Finished tasks are dropped once the loop holds this many (or twice as many as
# were running at the last drop).
_PRUNE_AT_LEAST = 64

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# What asyncio's create_task takes: since Python 3.12 coroutines only.
if sys.version_info >= (3, 12):
    _CoroutineLike: TypeAlias = Coroutine[Any, Any, _T]
else:
    _CoroutineLike: TypeAlias = Coroutine[Any, Any, _T] | Generator[Any, None, _T]
_ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class DurableTimer(asyncio.TimerHandle):
    """A ``call_later`` handle backed by a Temporal timer."""

    __slots__ = ("seq",)

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: WorkflowEventLoop,
        context: contextvars.Context | None,
        seq: int,
    ) -> None:
        super().__init__(when, callback, args, loop, context)
        self.seq = seq


class _Callback(asyncio.Handle):
    """A ``call_soon`` handle made without asking the loop for debug mode (it is off)."""

    __slots__ = ()

    def __init__(
        self,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: WorkflowEventLoop,
        context: contextvars.Context | None,
    ) -> None:
        self._context = contextvars.copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None


class TimerScheduler(Protocol):
    """Turns loop timers into timer commands."""

    def new_timer(
        self,
        delay: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
    ) -> DurableTimer:
        """Issue the command for a new timer and return its handle."""

    def cancel_timer(self, timer: DurableTimer) -> None:
        """The timer was cancelled before it fired."""

    def check_may_schedule(self, action: str, *, during_eviction: bool = False) -> None:
        """Raise if the workflow may not schedule work now (read-only or evicting)."""


class _ClosedScheduler:
    """The scheduler of a loop whose workflow was evicted."""

    def new_timer(
        self,
        delay: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
    ) -> DurableTimer:
        raise RuntimeError("The workflow instance is closed")

    def cancel_timer(self, timer: DurableTimer) -> None:
        pass

    def check_may_schedule(self, action: str, *, during_eviction: bool = False) -> None:
        raise RuntimeError(f"The workflow instance is closed; cannot {action}")


class WorkflowEventLoop(asyncio.AbstractEventLoop):
    """An event loop that only runs what is ready and never blocks or waits."""

    def __init__(self, scheduler: TimerScheduler) -> None:
        self._ready: deque[asyncio.Handle] = deque()
        self._scheduler: TimerScheduler = scheduler
        self._exception_handler: _ExceptionHandler | None = None
        self.time_ns = 0
        """Workflow time in nanoseconds since the epoch."""
        # Tasks in creation order (asyncio only keeps weak references); finished
        # ones are dropped in batches, see register_task.
        self._tasks: dict[asyncio.Task[Any], None] = {}
        self._prune_at = _PRUNE_AT_LEAST
        self.failure: BaseException | None = None
        """Set by a top-level coroutine whose error must fail the workflow task."""
        self.evicting = False

    def close_scheduler(self) -> None:
        """Detach the scheduler after eviction; scheduling anything later raises."""
        self._ready.clear()
        self._scheduler = _ClosedScheduler()

    # -- running ------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        """Whether any callback is ready to run."""
        return bool(self._ready)

    def run_ready(self) -> None:
        """Run callbacks until none is ready; raise a task-failing error at once."""
        ready = self._ready
        while ready:
            handle = ready.popleft()
            if handle._cancelled:
                continue
            # Handle._run inlined: one Python frame less for every step of every task.
            try:
                handle._context.run(handle._callback, *handle._args)  # type: ignore[attr-defined]
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.call_exception_handler(
                    {
                        "message": f"Exception in callback {handle!r}",
                        "exception": exc,
                        "handle": handle,
                    }
                )
            failure = self.failure
            if failure is not None and not self.evicting:
                self.failure = None
                raise failure

    def schedule(self, handle: asyncio.Handle) -> None:
        """Make an existing handle (a fired timer) ready to run."""
        self._ready.append(handle)

    # -- scheduling ---------------------------------------------------------------------------

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """Schedule ``callback`` to run next (FIFO)."""
        self._scheduler.check_may_schedule("schedule task", during_eviction=True)
        handle = _Callback(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Start a durable timer that runs ``callback`` when it fires."""
        return self._scheduler.new_timer(delay, callback, args, context)

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Like ``call_later``; ``asyncio.timeout`` and ``wait_for`` schedule this way.

        Float loop times cannot hold nanoseconds exactly, so the delay is rounded to
        whole milliseconds, as the Python SDK does.
        """
        return self.call_later(round(when - self.time(), 3), callback, *args, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        if isinstance(handle, DurableTimer):
            self._scheduler.cancel_timer(handle)

    def time(self) -> float:
        """Workflow time in seconds."""
        return self.time_ns / 1e9

    def create_future(self) -> asyncio.Future[Any]:
        """A future bound to this loop."""
        return asyncio.Future(loop=self)

    if sys.version_info >= (3, 13):

        def create_task(
            self,
            coro: _CoroutineLike[_T],
            *,
            name: str | None = None,
            context: contextvars.Context | None = None,
            eager_start: bool | None = None,
        ) -> asyncio.Task[_T]:
            """Wrap ``coro`` in a task that runs on this loop (with ``eager_start``,
            up to its first suspension right away, as asyncio does)."""
            task: asyncio.Task[_T] = asyncio.Task(
                coro, loop=self, name=name, context=context, eager_start=bool(eager_start)
            )
            self.register_task(task)
            return task

    else:

        def create_task(
            self,
            coro: _CoroutineLike[_T],
            *,
            name: str | None = None,
            context: contextvars.Context | None = None,
        ) -> asyncio.Task[_T]:
            """Wrap ``coro`` in a task that runs on this loop."""
            task: asyncio.Task[_T] = asyncio.Task(coro, loop=self, name=name, context=context)
            self.register_task(task)
            return task

    def register_task(self, task: asyncio.Task[Any]) -> None:
        """Keep a strong reference to ``task`` while it runs."""
        self._scheduler.check_may_schedule("create task")
        tasks = self._tasks
        # Not a done callback per task: that is one more loop turn for each.
        if len(tasks) >= self._prune_at:
            self._tasks = tasks = {t: None for t in tasks if not t.done()}
            self._prune_at = max(_PRUNE_AT_LEAST, 2 * len(tasks))
        tasks[task] = None
        # Tasks left pending at eviction are closed on purpose; do not warn about them.
        task._log_destroy_pending = False  # type: ignore[attr-defined]

    def live_tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks not done yet, in creation order."""
        return [task for task in self._tasks if not task.done()]

    def forget_tasks(self) -> None:
        """Drop every reference to the tasks (at eviction)."""
        self._tasks.clear()

    # -- status and errors --------------------------------------------------------------------

    def is_running(self) -> bool:
        """Always true: workflow code only ever sees the loop while it runs."""
        return True

    def is_closed(self) -> bool:
        """Never closed; the instance drops the loop on eviction."""
        return False

    def get_debug(self) -> bool:
        """Debug mode is off (it would record wall-clock timings)."""
        return False

    def get_task_factory(self) -> None:
        """No task factory: tasks are plain ``asyncio.Task``."""
        return None

    def get_exception_handler(self) -> _ExceptionHandler | None:
        """The handler set with :meth:`set_exception_handler`."""
        return self._exception_handler

    def set_exception_handler(self, handler: _ExceptionHandler | None) -> None:
        """Set the handler for errors nobody retrieved."""
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log an unhandled error, like asyncio's default handler."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        lines = [message]
        for key in sorted(context):
            if key not in ("message", "exception"):
                lines.append(f"{key}: {context[key]!r}")
        exc_info = (
            (type(exception), exception, exception.__traceback__)
            if isinstance(exception, BaseException)
            else None
        )
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Report an unhandled error unless the workflow is being evicted."""
        if self.evicting:
            return
        try:
            if self._exception_handler is None:
                self.default_exception_handler(context)
            else:
                self._exception_handler(self, context)
        except Exception:
            logger.error("Exception in event loop exception handler\n%s", traceback.format_exc())
