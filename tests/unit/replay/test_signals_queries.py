"""Signals (early, buffered, dynamic, async) and read-only queries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from temporalio import workflow
from temporalio.common import RawValue

from ablauf.replay import QueryFailed

from .helpers import Run, kinds, payload, value


def _result(run: Run) -> object:
    command = run.outcomes[-1].commands[-1]
    return value(command.complete_workflow_execution_command_attributes.result.payloads[0])


@workflow.defn
class Inbox:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.closed = False

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    async def close(self) -> None:
        await workflow.sleep(1)
        self.closed = True

    @workflow.query
    def count(self, prefix: str) -> str:
        return f"{prefix}{len(self.items)}"

    @workflow.run
    async def run(self) -> list[str]:
        seen_first = list(self.items)
        await workflow.wait_condition(lambda: self.closed)
        return [*seen_first, "|", *self.items]


def test_signals_before_the_first_task_are_seen_before_the_first_await() -> None:
    run = Run(Inbox, signals_before_start=[("add", ["a"]), ("add", ["b"])])
    assert run.task().commands == []
    assert value(run.instance.query("count", [payload("n=")])) == "n=2"
    run.signal("add", "c")
    run.signal("close")
    assert kinds(run.task().commands) == ["START_TIMER"]
    run.fire_timer("1")
    run.task()
    assert _result(run) == ["a", "b", "|", "a", "b", "c"]
    # The finished tasks (the run, the close handler) are not listed: only the query's.
    stack = value(run.instance.query("__stack_trace", []))
    listed = [line for line in stack.splitlines() if line.startswith("Stack for <Task")]
    assert len(listed) == 1 and "query: __stack_trace" in listed[0], listed
    assert run.replay().failure is None
    run.close()


def test_unknown_queries_fail_with_temporals_message() -> None:
    run = Run(Inbox)
    run.task()
    with pytest.raises(QueryFailed) as raised:
        run.instance.query("nope", [])
    assert raised.value.message == (
        "Query handler for 'nope' expected but not found, known queries: "
        "[__enhanced_stack_trace __stack_trace __temporal_workflow_metadata count]"
    )
    stack = value(run.instance.query("__stack_trace", []))
    assert "Stack for" in stack
    run.close()


@workflow.defn
class BadQueries:
    @workflow.query
    def raises(self) -> str:
        raise ValueError("no way")

    @workflow.query
    def mutates(self) -> str:
        workflow.start_activity(
            "x", start_to_close_timeout=__import__("datetime").timedelta(seconds=1)
        )
        return "scheduled?"

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


def test_queries_are_read_only_and_report_handler_errors() -> None:
    run = Run(BadQueries)
    run.task()
    with pytest.raises(QueryFailed, match="no way"):
        run.instance.query("raises", [])
    with pytest.raises(
        QueryFailed, match="While in read-only function, action attempted: start activity"
    ):
        run.instance.query("mutates", [])
    # Nothing was scheduled by the query.
    run.signal("nothing-handles-this")
    assert run.task().commands == []
    run.close()


def test_a_query_before_the_workflow_started_fails() -> None:
    run = Run(Inbox)
    run.instance.activate(run.history.events)
    with pytest.raises(QueryFailed, match="not started"):
        run.instance.query("count", [payload("")])
    run.close()


@workflow.defn
class LateHandlers:
    def __init__(self) -> None:
        self.got: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        workflow.set_query_handler("got", lambda: list(self.got))
        await workflow.sleep(1)
        # Signals so far had no handler: they were buffered and are delivered now.
        workflow.set_signal_handler("named", lambda v: self.got.append(f"named:{v}"))

        def anything(name: str, args: Sequence[RawValue]) -> None:
            self.got.append(f"{name}:{workflow.payload_converter().from_payload(args[0].payload)}")

        workflow.set_dynamic_signal_handler(anything)

        async def slow_handler(v: str) -> None:
            await workflow.sleep(1)
            self.got.append(f"slow:{v}")

        workflow.set_signal_handler("slow", slow_handler)
        await workflow.wait_condition(lambda: len(self.got) >= 4)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.got


def test_buffered_signals_reach_handlers_set_later() -> None:
    run = Run(LateHandlers, signals_before_start=[("other", ["o"])])
    assert kinds(run.task().commands) == ["START_TIMER"]
    run.signal("named", "n")
    run.fire_timer("1")
    assert run.task().commands == []
    assert value(run.instance.query("got", [])) == ["named:n", "other:o"]
    run.signal("slow", "s")
    run.signal("again", "x")
    assert kinds(run.task().commands) == ["START_TIMER"]
    run.fire_timer("2")
    run.task()
    assert _result(run) == ["named:n", "other:o", "again:x", "slow:s"]
    assert run.replay().failure is None
    run.close()


@workflow.defn(dynamic=True)
class DynamicEverything:
    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> str:
        def any_query(name: str, qargs: Sequence[RawValue]) -> str:
            return f"{name}:{len(qargs)}"

        workflow.set_dynamic_query_handler(any_query)
        converter = workflow.payload_converter()
        return (
            f"{workflow.info().workflow_type}:{[converter.from_payload(a.payload) for a in args]}"
        )


def test_dynamic_workflows_and_queries_get_raw_values() -> None:
    run = Run(DynamicEverything, 1, "two")
    run.task()
    assert _result(run) == "Dynamic:[1, 'two']"
    assert value(run.instance.query("whatever", [payload(1), payload(2)])) == "whatever:2"
    run.close()


@workflow.defn
class FailingSignal:
    @workflow.signal
    def explode(self) -> None:
        raise RuntimeError("bug in handler")

    @workflow.run
    async def run(self) -> None:
        await asyncio.Event().wait()


def test_a_signal_handler_bug_fails_the_task() -> None:
    run = Run(FailingSignal)
    run.task()
    run.signal("explode")
    outcome = run.task()
    assert outcome.failure is not None
    assert outcome.failure.message == "bug in handler"
    assert not outcome.nondeterminism
    run.close()
