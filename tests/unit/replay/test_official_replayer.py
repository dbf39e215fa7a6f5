"""Histories ablauf produces replay in the official ``temporalio.worker.Replayer``.

The fake server in ``helpers`` writes the events Temporal writes for each of
ablauf's commands, so this checks ablauf's commands, their order and the
recorded sdk_metadata flags against sdk-core itself.
"""

from __future__ import annotations

from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from . import test_activities as acts
from . import test_flags_and_limits as flags
from . import test_replay as rep
from . import test_signals_queries as sig
from . import test_timers as tim
from .helpers import Run


async def _replay(run: Run) -> None:
    run.close()
    replayer = Replayer(workflows=[run.defn.cls], workflow_runner=UnsandboxedWorkflowRunner())
    result = await replayer.replay_workflow(run.workflow_history(), raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_activities_timers_and_cancellation() -> None:
    run = rep._two_steps_done()
    await _replay(run)
    for kind in ("TRY_CANCEL", "WAIT_CANCELLATION_COMPLETED", "ABANDON"):
        run = acts._cancel_setup(kind)
        run.task()
        if kind == "WAIT_CANCELLATION_COMPLETED":
            run.cancel_activity("1", start=False)
            run.task()
        await _replay(run)
    run = Run(acts.CancelBeforeSent)
    run.task()
    await _replay(run)


async def test_timers_and_asyncio_timeouts() -> None:
    run = Run(tim.CancelsTimers)
    run.task()
    run.fire_timer("2")
    run.task()
    await _replay(run)
    run = Run(tim.AsyncioTimeouts)
    run.task()
    run.fire_timer("1")
    run.task()
    run.fire_timer("2")
    run.task()
    run.fire_timer("4")
    run.task()
    await _replay(run)


async def test_signals_patches_and_closing_commands() -> None:
    run = Run(sig.Inbox, signals_before_start=[("add", ["a"])])
    run.task()
    run.signal("close")
    run.task()
    run.fire_timer("1")
    run.task()
    await _replay(run)
    run = Run(rep.Patched)
    run.task()
    run.fire_timer("1")
    run.task()
    await _replay(run)
    for how in ("fail", "continue"):
        run = Run(rep.Outcomes, how)
        run.task()
        run.fire_timer("1")
        run.task()
        await _replay(run)
    run = Run(rep.Cancellable)
    run.task()
    run.request_cancel("enough")
    run.task()
    run.complete_activity("1", None)
    run.task()
    await _replay(run)


async def test_logic_flags() -> None:
    run = Run(flags.CancelAfterCompletion)
    run.task()
    run.fire_timer("1")
    run.complete_activity("1", "done")
    run.task()
    await _replay(run)
    run = Run(flags.SignalOrTimeout)
    run.task()
    run.signal("go")
    run.fire_timer("1")
    run.task()
    await _replay(run)
