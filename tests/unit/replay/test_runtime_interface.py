"""ablauf's runtime must implement all of temporalio's ``_Runtime`` and be a usable asyncio loop."""

from __future__ import annotations

import ast
import asyncio
import inspect
from datetime import timedelta
from pathlib import Path

import pytest
import temporalio.workflow
from temporalio import workflow

import ablauf.replay
from ablauf.replay.loop import WorkflowEventLoop
from ablauf.replay.runtime import WorkflowRuntime

from .helpers import Run, kinds, value

_Runtime = temporalio.workflow._Runtime
REPLAY = Path(ablauf.replay.__file__).parent
# The class that implements the SDK's base. Its methods are read from the
# source: compiled with mypyc, they carry no signature to inspect.
_RUNTIME_CLASSES = (("runtime/facade.py", "WorkflowRuntime"),)


def _implemented_methods() -> dict[str, list[str]]:
    """Each method the runtime implements, with its parameter names (most derived wins)."""
    methods: dict[str, list[str]] = {}
    for filename, class_name in _RUNTIME_CLASSES:
        tree = ast.parse((REPLAY / filename).read_text())
        (cls,) = (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
        for node in cls.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if any(ast.unparse(d) == "abstractmethod" for d in node.decorator_list):
                    continue
                a = node.args
                ordered = (*a.posonlyargs, *a.args, a.vararg, *a.kwonlyargs, a.kwarg)
                methods[node.name] = [p.arg for p in ordered if p is not None]
    return methods


def test_every_abstract_runtime_method_is_implemented() -> None:
    abstract = sorted(getattr(_Runtime, "__abstractmethods__", ()))
    assert abstract, "temporalio.workflow._Runtime has no abstract methods any more?"
    missing = [name for name in abstract if name not in _implemented_methods()]
    assert not missing, f"ablauf's runtime does not implement _Runtime methods: {missing}"
    inherited = [n for n in abstract if getattr(WorkflowRuntime, n) is getattr(_Runtime, n)]
    assert not inherited, f"WorkflowRuntime leaves these to the abstract base: {inherited}"


def test_runtime_method_signatures_accept_what_temporalio_passes() -> None:
    ours = _implemented_methods()
    for name in sorted(_Runtime.__abstractmethods__):
        theirs = inspect.signature(getattr(_Runtime, name))
        assert ours[name] == list(theirs.parameters), f"signature of {name} differs"


def test_loop_provides_what_asyncio_uses() -> None:
    for name in (
        "call_soon",
        "call_later",
        "call_at",
        "time",
        "create_future",
        "create_task",
        "get_debug",
        "is_running",
        "call_exception_handler",
        "_timer_handle_cancelled",
    ):
        assert name in WorkflowEventLoop.__dict__, f"the workflow loop lacks {name}"


@workflow.defn
class AsyncioPrimitives:
    @workflow.run
    async def run(self) -> list[str]:
        out: list[str] = []
        event = asyncio.Event()
        queue: asyncio.Queue[int] = asyncio.Queue()
        lock = asyncio.Lock()
        semaphore = asyncio.Semaphore(1)
        condition = asyncio.Condition()

        async def producer() -> None:
            for i in range(3):
                await queue.put(i)
            async with lock, semaphore:
                event.set()
            async with condition:
                condition.notify_all()

        async def consumer() -> int:
            total = 0
            for _ in range(3):
                total += await queue.get()
            return total

        async with condition:
            task = asyncio.create_task(producer())
            total = await asyncio.shield(asyncio.ensure_future(consumer()))
            await condition.wait()
        await event.wait()
        await task
        out.append(f"total={total}")
        out.append(f"running={asyncio.get_running_loop().is_running()}")
        out.append(f"current={asyncio.current_task() is not None}")
        results = await asyncio.gather(asyncio.sleep(0, "a"), asyncio.sleep(0, "b"))
        out.append("".join(results))
        try:
            await asyncio.wait_for(asyncio.Event().wait(), timeout=timedelta(seconds=5).seconds)
        except TimeoutError:
            out.append("wait_for timed out")
        return out


def test_asyncio_primitives_run_on_the_workflow_loop() -> None:
    run = Run(AsyncioPrimitives)
    first = run.task()
    assert first.failure is None
    assert kinds(first.commands) == ["START_TIMER"]
    run.fire_timer("1")
    second = run.task()
    assert kinds(second.commands) == ["COMPLETE_WORKFLOW_EXECUTION"]
    result = value(
        second.commands[0].complete_workflow_execution_command_attributes.result.payloads[0]
    )
    assert result == ["total=3", "running=True", "current=True", "ab", "wait_for timed out"]
    assert run.replay().failure is None
    run.close()


@workflow.defn
class RaisingCallback:
    @workflow.run
    async def run(self) -> list[str]:
        seen: list[str] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: seen.append(str(context["exception"])))

        def boom() -> None:
            raise ValueError("boom")

        loop.call_soon(boom)
        loop.call_soon(seen.append, "after")
        await asyncio.sleep(0)
        return seen


def test_a_raising_callback_goes_to_the_exception_handler_and_the_loop_goes_on() -> None:
    run = Run(RaisingCallback)
    done = run.task()
    assert kinds(done.commands) == ["COMPLETE_WORKFLOW_EXECUTION"]
    result = value(
        done.commands[0].complete_workflow_execution_command_attributes.result.payloads[0]
    )
    assert result == ["boom", "after"]
    run.close()


def test_workflow_apis_refuse_to_run_outside_a_workflow() -> None:
    with pytest.raises(temporalio.workflow._NotInWorkflowEventLoopError):
        workflow.info()
