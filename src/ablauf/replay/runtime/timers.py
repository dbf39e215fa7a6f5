"""Durable timers and ``wait_condition``.

Every ``call_later`` of the workflow loop (``asyncio.sleep``, ``workflow.sleep``,
``asyncio.timeout``, ``wait_for``) becomes a StartTimer command here; a
FireTimer job runs its callback. :class:`Timers` is the loop's
:class:`~ablauf.replay.loop.TimerScheduler`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ablauf.replay.commands import CommandMachines
from ablauf.replay.loop import DurableTimer
from ablauf.replay.machines import TimerMachine
from ablauf.replay.runtime.context import RunContext, add_markers, markers

if TYPE_CHECKING:
    from temporalio.workflow import EventGroup

__all__ = ["Timers"]

# Summary of the timer a wait_condition timeout starts (set around asyncio.wait_for).
_timer_summary: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ablauf_timer_summary", default=None
)


class Timers:
    """Pending timers by sequence number, and the conditions workflow code waits for."""

    def __init__(self, context: RunContext, machines: CommandMachines) -> None:
        self._context = context
        self._machines = machines
        self._seq = 0
        self._pending: dict[int, tuple[DurableTimer, TimerMachine]] = {}
        self.conditions: list[tuple[Callable[[], bool], asyncio.Future[Any]]] = []

    def check_may_schedule(self, action: str, *, during_eviction: bool = False) -> None:
        """Raise if workflow code may not produce work now."""
        context = self._context
        # Checked for every callback the loop schedules: the common case stays inline.
        if context.read_only or (context.evicting and not during_eviction):
            context.check_may_schedule(action, during_eviction=during_eviction)

    def new_timer(
        self,
        delay: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
        *,
        summary: str | None = None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> DurableTimer:
        """Start a durable timer (``call_later``, ``workflow.sleep``, timeouts)."""
        run = self._context
        run.check_may_schedule("schedule timer")
        if delay < 0:
            raise RuntimeError("Attempting to schedule timer with negative delay")
        command_markers = markers(event_groups)
        if summary is None:
            summary = _timer_summary.get()
        self._seq = seq = self._seq + 1
        loop = run.loop
        timer = DurableTimer(loop.time() + delay, callback, args, loop, context, seq)
        machine, command = self._machines.start_timer(seq)
        command.start_timer_command_attributes.start_to_fire_timeout.FromNanoseconds(
            int(delay * 1e9)
        )
        summary_payload = run.summary(summary)
        if summary_payload is not None:
            command.user_metadata.summary.CopyFrom(summary_payload)
        add_markers(command, command_markers)
        self._pending[seq] = (timer, machine)
        return timer

    def cancel_timer(self, timer: DurableTimer) -> None:
        """A timer handle was cancelled: cancel its command (unless it already fired)."""
        pending = self._pending.pop(timer.seq, None)
        if pending is None or self._context.evicting:
            return
        self._context.check_may_schedule("add command")
        self._machines.cancel_timer(pending[1])

    def fire(self, seq: int) -> None:
        """Run the callback of a fired timer (cancelled timers are gone already)."""
        pending = self._pending.pop(seq, None)
        if pending is not None:
            self._context.loop.schedule(pending[0])

    async def sleep(
        self,
        duration: float,
        *,
        summary: str | None = None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> None:
        """``workflow.sleep``: a timer with a summary and event groups."""
        fut = self._context.loop.create_future()

        def fire() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.new_timer(duration, fire, (), None, summary=summary, event_groups=event_groups)
        fut.add_done_callback(lambda f: timer.cancel() if f.cancelled() else None)
        await fut

    async def wait_condition(
        self,
        fn: Callable[[], bool],
        *,
        timeout: float | None = None,
        timeout_summary: str | None = None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> None:
        """``workflow.wait_condition``: resolved when ``fn`` holds after a job is applied."""
        run = self._context
        run.check_may_schedule("wait condition")
        cancel_before = run.cancel_reason is not None

        def cancellation_arrived() -> bool:
            # With single-batch activations a cancel and a ready condition can arrive
            # together; the cancel must win, as on Temporal.
            return run.single_batch and not cancel_before and run.cancel_reason is not None

        fut = run.loop.create_future()
        self.conditions.append((fn, fut))
        # The timeout timer is created synchronously inside wait_for, where it reads this.
        previous = _timer_summary.get()
        _timer_summary.set(timeout_summary)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            if cancellation_arrived():
                raise asyncio.CancelledError() from None
            raise
        finally:
            # Not reset(): a coroutine closed at eviction may finish in another context.
            _timer_summary.set(previous)
        if cancellation_arrived():
            raise asyncio.CancelledError()

    def check_conditions(self) -> None:
        """Resolve the conditions that hold now and drop them."""
        if self.conditions:
            self.conditions[:] = [
                c for c in self.conditions if not c[1].done() and not _satisfied(*c)
            ]


def _satisfied(fn: Any, fut: asyncio.Future[Any]) -> bool:
    if fn():
        fut.set_result(True)
        return True
    return False
