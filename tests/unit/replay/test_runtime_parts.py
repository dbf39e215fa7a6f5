"""The runtime's parts work on their own, given only the shared pieces they receive."""

from __future__ import annotations

import pytest
import temporalio.workflow
from temporalio import workflow

from ablauf.replay.commands import CommandMachines
from ablauf.replay.handles import EvictedError
from ablauf.replay.history import InternalFlags
from ablauf.replay.loop import WorkflowEventLoop
from ablauf.replay.machines import Job
from ablauf.replay.runtime.context import ReadOnly, RunContext
from ablauf.replay.runtime.timers import Timers

from .helpers import CONVERTER, kinds


@workflow.defn
class Empty:
    @workflow.run
    async def run(self) -> None:
        pass


def _timers() -> tuple[RunContext, Timers, CommandMachines]:
    context = RunContext(
        temporalio.workflow._Definition.must_from_class(Empty),
        namespace="default",
        workflow_id="wf",
        run_id="run",
        data_converter=CONVERTER,
        failure_exception_types=(),
    )
    jobs: list[Job] = []
    machines = CommandMachines(jobs, InternalFlags())
    timers = Timers(context, machines)
    context.loop = WorkflowEventLoop(timers)  # type: ignore[abstract]
    return context, timers, machines


def test_timers_make_commands_and_fire_callbacks() -> None:
    context, timers, machines = _timers()
    fired: list[str] = []
    first = context.loop.call_later(5, fired.append, "first")
    context.loop.call_later(7, fired.append, "second")
    machines.prepare()
    assert kinds(machines.outgoing()) == ["START_TIMER", "START_TIMER"]
    first.cancel()
    machines.prepare()
    # Cancelled before its command went out: the command is dropped.
    assert kinds(machines.outgoing()) == ["START_TIMER"]
    timers.fire(2)
    timers.fire(1)  # cancelled: nothing runs
    context.loop.run_ready()
    assert fired == ["second"]


def test_timers_refuse_while_read_only_or_evicting() -> None:
    context, timers, _ = _timers()
    with ReadOnly(context, in_query=True), pytest.raises(temporalio.workflow.ReadOnlyContextError):
        context.loop.call_later(1, print)
    assert not context.read_only
    context.evicting = True
    with pytest.raises(EvictedError):
        timers.check_may_schedule("schedule timer")
    timers.check_may_schedule("schedule task", during_eviction=True)
