"""Deadlock detection for workflow code, as temporalio's worker does it.

Workflow code that does not yield within two seconds fails its workflow task
with temporalio's ``[TMPRL1101]`` error (the task is retried) and is
interrupted: an exception is raised in its thread at its next bytecode (a
blocking call such as ``time.sleep`` is interrupted when it returns).

Workflow code runs on the event loop's thread, where a hop to another thread
would cost more than most workflow tasks do: :class:`LoopGuard` notes each
run there and one :class:`Watchdog` thread per process looks at it. While
such code blocks, the process waits; a workflow type whose code held the
loop (see :data:`SLOW`) is then run on worker threads (:func:`run_threaded`),
where the loop keeps going while it blocks, as in temporalio's worker. A
worker given a ``workflow_task_executor`` runs all workflow code that way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import logging
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn, TypeVar

import temporalio.converter
from temporalio.api.failure.v1 import Failure

from ablauf.replay.instance import WorkflowInstance

__all__ = [
    "DEADLOCK_TIMEOUT",
    "SLOW",
    "WATCHDOG",
    "Deadlocked",
    "LoopGuard",
    "Watchdog",
    "WorkflowThreads",
    "deadlock_failure",
    "run_threaded",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEADLOCK_TIMEOUT = 2.0
"""Seconds workflow code may run without yielding (temporalio's worker: 2)."""

SLOW = 0.5
"""Seconds of code holding the event loop that count against its type: at the
second time (or a deadlock) the type's code moves to threads. Once is not
enough: a first task may be slow for good reasons (imports, a long replay)."""

_IDLE_LOOK = 1.0
# Not above DEADLOCK_TIMEOUT: the watchdog sees each long run before it is due.

# (Not Path.resolve: temporalio's sandbox refuses it where this module is imported.)
_ABLAUF = os.path.dirname(os.path.dirname(__file__)) + os.sep


class _DeadlockError(Exception):
    """Named as temporalio's, so the recorded failure names the same type."""


class DeadlockInterrupt(BaseException):
    """Raised inside workflow code that did not yield in time."""


class Deadlocked(Exception):
    """Workflow code did not yield within :data:`DEADLOCK_TIMEOUT`.

    Attributes:
        stack: Where the code was when it was found blocking.
        running: For code run on a thread, its still running call (the run's
            instance may be used again only once it has ended).
    """

    def __init__(self, stack: str, running: asyncio.Future[Any] | None = None) -> None:
        super().__init__(deadlock_message())
        self.stack = stack
        self.running = running


def deadlock_message() -> str:
    """temporalio's message, word for word."""
    return (
        f"[TMPRL1101] Potential deadlock detected: workflow didn't yield within "
        f"{DEADLOCK_TIMEOUT:g} second(s)."
    )


def deadlock_failure(converter: temporalio.converter.DataConverter, stack: str) -> Failure:
    """The failure a deadlocked workflow task records, shaped as temporalio's."""
    failure = Failure()
    converter.failure_converter.to_failure(
        _DeadlockError(deadlock_message()), converter.payload_converter, failure
    )
    failure.stack_trace = stack
    return failure


# PyThreadState_SetAsyncExc, called straight from ctypes: the call holds the GIL
# throughout, so a check just before it and the call are one step for other threads.
_raise_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
_clear_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


def _stack_of(thread_id: int) -> str:
    """The frames of workflow code the thread is in (innermost last), up to ablauf's own."""
    frame: FrameType | None = sys._current_frames().get(thread_id)
    frames: list[FrameType] = []
    while frame is not None:
        ours = frame.f_code.co_filename.startswith(_ABLAUF)
        if ours and frames:
            break
        if not ours:
            frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    summary = traceback.StackSummary.extract((f, f.f_lineno) for f in frames)
    return "".join(summary.format())


class LoopGuard:
    """Notes the workflow code a worker runs on the event loop's thread, for
    the :class:`Watchdog` to look at."""

    def __init__(self) -> None:
        self.thread_id = 0
        """The event loop's thread."""
        self.instance: WorkflowInstance | None = None
        self.started = 0.0
        self.fired: str | None = None
        """Set (to its stack) by the watchdog when the running code deadlocked."""
        self.slow_types: set[str] = set()
        """Workflow types whose code runs on threads (see :data:`SLOW`)."""
        self._strikes: dict[str, int] = {}
        self._counted = 0.0
        # The watchdog's own notes on the run it last saw.
        self._seen_started = 0.0
        self._seen_steps = 0
        self._since = 0.0

    # A run is ``begin``; the call; ``end`` inside the same ``try``, whose
    # ``except BaseException as err`` calls ``failed(err)``: an interrupt that
    # strikes late still lands inside that ``try``. Callers spell it out so that
    # compiled code calls the workflow instance directly.

    def begin(self, instance: WorkflowInstance) -> None:
        """Notes that code of ``instance`` runs from now on."""
        self.started = time.monotonic()
        self.instance = instance

    def end(self) -> None:
        """Notes that it returned.

        Raises:
            Deadlocked: It did not yield in time (its result is to be dropped).
        """
        self.instance = None
        # The watchdog interrupts only while ``instance`` is set: ``fired`` is
        # final here, and an interrupt it sent may still be pending.
        stack = self.fired
        if stack is not None:
            self.fired = None
            # Not contextlib.suppress: an interrupt could strike while entering it.
            try:  # noqa: SIM105
                _clear_in(self.thread_id, None)
            except DeadlockInterrupt:
                pass
            raise Deadlocked(stack)

    def failed(self, err: BaseException) -> NoReturn:
        """Notes that it raised ``err``; raises it, or :class:`Deadlocked`."""
        if self.instance is None:
            raise err  # from end()
        self.instance = None
        if self.fired is None:
            raise err
        self.end()
        raise err  # not reached: end() raises

    def run(self, instance: WorkflowInstance, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, code of ``instance``, watched.

        Raises:
            Deadlocked: The code did not yield in time (its result is dropped).
        """
        if self.instance is not None:
            # Nested (never in practice): the outer run is the one watched.
            return fn(*args)
        self.begin(instance)
        try:
            result = fn(*args)
            self.end()
        except BaseException as err:
            self.failed(err)
        return result

    def look(self, now: float) -> float:
        """The watchdog's look at the loop: interrupts code that deadlocked;
        returns when to look again."""
        instance = self.instance
        if instance is None:
            return now + _IDLE_LOOK
        started = self.started
        steps = instance.steps
        if started != self._seen_started:
            self._seen_started = started
            self._seen_steps = steps
            self._since = started
        elif steps != self._seen_steps:
            # A long replay: each workflow task of the history gets its own time.
            self._seen_steps = steps
            self._since = now
        since = self._since
        if now - since >= SLOW and self._counted != started:
            self._counted = started
            strikes = self._strikes[instance.workflow_type] = (
                self._strikes.get(instance.workflow_type, 0) + 1
            )
            if strikes >= 2:
                self._slow(instance, now - since)
        if now - since < DEADLOCK_TIMEOUT:
            return since + (SLOW if now - since < SLOW else DEADLOCK_TIMEOUT)
        stack = _stack_of(self.thread_id)
        thread_id = self.thread_id
        # No Python-level call between this check and the interrupt (see _raise_in).
        if self.instance is instance and self.started == started:
            self.fired = stack
            _raise_in(thread_id, DeadlockInterrupt)
        self._slow(instance, now - since)
        # Still blocked this much later, it is interrupted again.
        self._since = now
        return now + DEADLOCK_TIMEOUT

    def _slow(self, instance: WorkflowInstance, held: float) -> None:
        if instance.workflow_type in self.slow_types:
            return
        self.slow_types.add(instance.workflow_type)
        logger.warning(
            "workflow code of type %s has held the event loop for %.1f s; workflow "
            "tasks of that type run on worker threads from now on",
            instance.workflow_type,
            held,
        )


class Watchdog:
    """A thread that looks at every running worker's :class:`LoopGuard`
    (only while one is registered); one per process, :data:`WATCHDOG`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._guards: list[LoopGuard] = []
        self._runner: threading.Thread | None = None
        self._wake = threading.Event()

    def watch(self, guard: LoopGuard) -> None:
        """Starts watching ``guard``, whose loop is the calling thread."""
        guard.thread_id = threading.get_ident()
        with self._lock:
            self._guards.append(guard)
            if self._runner is None:
                self._runner = threading.Thread(
                    target=self._run, name="ablauf-watchdog", daemon=True
                )
                self._runner.start()
        self._wake.set()

    def forget(self, guard: LoopGuard) -> None:
        """Stops watching ``guard``; the thread ends with the last one."""
        with self._lock:
            if guard in self._guards:
                self._guards.remove(guard)
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.clear()
            with self._lock:
                if not self._guards:
                    self._runner = None
                    return
                guards = list(self._guards)
            now = time.monotonic()
            due = now + _IDLE_LOOK
            for guard in guards:
                try:
                    due = min(due, guard.look(now))
                except Exception:
                    logger.exception("the workflow code watchdog failed")
            self._wake.wait(max(due - time.monotonic(), 0.005))


WATCHDOG = Watchdog()


class _Call:
    """One call of workflow code on a worker thread."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.thread_id = 0
        self.running = False
        self.fired = False

    def __call__(self) -> Any:
        self.thread_id = threading.get_ident()
        self.running = True
        try:
            result = self.fn(*self.args)
            self.running = False
        except BaseException:
            self.running = False
            if not self.fired:
                raise
        if self.fired:
            try:  # noqa: SIM105 (as in LoopGuard.run)
                _clear_in(self.thread_id, None)
            except DeadlockInterrupt:
                pass
            raise DeadlockInterrupt
        return result

    def interrupt(self) -> str:
        """Interrupts the call if it still runs; returns where it was."""
        if not self.running:
            return ""
        stack = _stack_of(self.thread_id)
        thread_id = self.thread_id
        if self.running:
            self.fired = True
            _raise_in(thread_id, DeadlockInterrupt)
        return stack


async def run_threaded(
    executor: concurrent.futures.Executor,
    instance: WorkflowInstance,
    fn: Callable[..., T],
    *args: Any,
) -> T:
    """``fn(*args)``, code of ``instance``, on a thread of ``executor``; the
    event loop goes on meanwhile.

    Raises:
        Deadlocked: The code did not yield in time; it is interrupted, and
            ``running`` ends when its thread is done with it.
    """
    call = _Call(fn, args)
    running = asyncio.get_running_loop().run_in_executor(executor, call)
    since = time.monotonic()
    # Taken at the first look: the first step is the call's own start.
    steps: int | None = None
    while True:
        wait = min(SLOW, since + DEADLOCK_TIMEOUT - time.monotonic())
        done, _ = await asyncio.wait({running}, timeout=max(wait, 0.0))
        if done:
            result: T = running.result()
            return result
        now = time.monotonic()
        if steps is None:
            steps = instance.steps
        elif instance.steps != steps:
            # A long replay: each workflow task of the history gets its own time.
            steps = instance.steps
            since = now
        if now - since >= DEADLOCK_TIMEOUT:
            stack = call.interrupt()
            # Nobody else reads its outcome: an error it ends with is not worth a warning.
            running.add_done_callback(_consume)
            raise Deadlocked(stack, running)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class WorkflowThreads(concurrent.futures.Executor):
    """Daemon threads for workflow code: a thread stuck in workflow code for
    good does not keep the process from exiting. A thread is added whenever
    none is idle."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]] | None
        ] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._count = 0
        self._closed = False

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        if self._closed:
            raise RuntimeError("cannot run workflow code after the worker stopped")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((future, fn, args))
        if not self._idle.acquire(blocking=False):
            self._count += 1
            threading.Thread(
                target=self._serve, name=f"ablauf-workflow-{self._count}", daemon=True
            ).start()
        return future

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args = job
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as err:
                        future.set_exception(err)
            except DeadlockInterrupt:
                # Arrived late: the call it was meant for has ended already.
                pass
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Lets each thread end once it is done with what it runs."""
        if self._closed:
            return
        self._closed = True
        for _ in range(self._count):
            self._jobs.put(None)
