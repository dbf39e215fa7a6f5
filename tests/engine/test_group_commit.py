"""Group commit: changes submitted together share one transaction, and one
failing change is undone alone."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType

from ablauf.engine import executions
from ablauf.engine.engine import Engine
from ablauf.engine.errors import NotFoundError

from .conftest import start_request


def signal_names(engine: Engine, run_id: str) -> list[str]:
    return [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in engine.history(run_id)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]


async def test_changes_submitted_together_apply_in_order(engine: Engine) -> None:
    run_id = executions.start(engine, start_request())[0]
    done = [
        engine.submit(
            lambda i=i: executions.signal(engine, run_id, f"s{i}", Payloads(), "me", None)
        )
        for i in range(5)
    ]
    await asyncio.gather(*done)
    assert signal_names(engine, run_id) == [f"s{i}" for i in range(5)]


async def test_a_failing_change_is_undone_alone(engine: Engine) -> None:
    run_id = executions.start(engine, start_request())[0]
    good = engine.submit(lambda: executions.signal(engine, run_id, "ok", Payloads(), "me", None))
    bad = engine.submit(
        lambda: executions.signal(engine, "no-such-run", "lost", Payloads(), "me", None)
    )
    after = engine.submit(
        lambda: executions.signal(engine, run_id, "after", Payloads(), "me", None)
    )
    await good
    with pytest.raises(NotFoundError):
        await bad
    await after
    assert signal_names(engine, run_id) == ["ok", "after"]


async def test_batched_items_get_their_own_errors(engine: Engine) -> None:
    open_run = executions.start(engine, start_request("open"))[0]
    closed_run = executions.start(engine, start_request("closed"))[0]
    executions.terminate(engine, closed_run, "done", None, "me")

    def deliver(run_id: str) -> asyncio.Future[None]:
        return engine.submit_batched(
            ("signals", run_id),
            executions.Signal("sig", Payloads(), "me", None),
            lambda signals: executions.signal_many(engine, run_id, signals),
        )

    delivered = [deliver(open_run) for _ in range(3)]
    refused = [deliver(closed_run) for _ in range(2)]
    await asyncio.gather(*delivered)
    for fut in refused:
        with pytest.raises(NotFoundError):
            await fut
    assert signal_names(engine, open_run) == ["sig"] * 3
    assert signal_names(engine, closed_run) == []


async def test_posted_items_commit_by_the_flush_and_report_their_errors(engine: Engine) -> None:
    open_run = executions.start(engine, start_request("open"))[0]
    closed_run = executions.start(engine, start_request("closed"))[0]
    executions.terminate(engine, closed_run, "done", None, "me")
    errors: list[BaseException] = []
    for run_id in (open_run, closed_run, open_run):
        engine.post_batched(
            ("signals", run_id),
            executions.Signal("sig", Payloads(), "me", None),
            lambda signals, run_id=run_id: executions.signal_many(engine, run_id, signals),
            errors.append,
        )
    await engine.commits.flush()
    assert signal_names(engine, open_run) == ["sig"] * 2
    [error] = errors
    assert isinstance(error, NotFoundError)
