"""The embedded worker honours temporalio's two workflow runners and refuses others;
in debug mode, as in temporalio, ``breakpoint()`` passes the sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from ablauf import Client, Worker


@workflow.defn
class Hello:
    @workflow.run
    async def run(self) -> str:
        return "hello"


@workflow.defn
class Pauses:
    @workflow.run
    async def run(self) -> str:
        breakpoint()
        return "resumed"


class OwnRunner(WorkflowRunner):
    def prepare_workflow(self, defn: Any) -> None:
        pass

    def create_instance(self, det: Any) -> Any:
        raise NotImplementedError


@pytest.mark.parametrize(
    ("runner", "refusal"),
    [
        (OwnRunner(), "OwnRunner is not supported"),
        (SandboxedWorkflowRunner(runner_class=OwnRunner), "runner_class"),
        (object(), "must be a temporalio WorkflowRunner"),
    ],
)
async def test_a_runner_ablauf_cannot_honour_is_refused(
    tmp_path: Path, runner: object, refusal: str
) -> None:
    client = await Client.connect(f"sqlite:///{tmp_path / 'runner.db'}")
    try:
        with pytest.raises(TypeError, match=refusal):
            Worker(client, task_queue="q", workflows=[Hello], workflow_runner=runner)
        # temporalio's own runners are taken.
        for taken in (UnsandboxedWorkflowRunner(), SandboxedWorkflowRunner()):
            Worker(client, task_queue="q", workflows=[Hello], workflow_runner=taken)
    finally:
        await client.close()


async def test_debug_mode_lets_breakpoint_through_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONBREAKPOINT", "0")  # breakpoint() returns at once
    monkeypatch.delenv("TEMPORAL_DEBUG", raising=False)
    client = await Client.connect(f"sqlite:///{tmp_path / 'debug.db'}")
    try:
        async with Worker(client, task_queue="q", workflows=[Pauses], debug_mode=True):
            assert await client.execute_workflow(Pauses.run, id="debug", task_queue="q") == (
                "resumed"
            )
        async with Worker(client, task_queue="q", workflows=[Pauses]):
            handle = await client.start_workflow(Pauses.run, id="no-debug", task_queue="q")
            for _ in range(200):
                failed = [
                    e
                    for e in (await handle.fetch_history()).events
                    if e.HasField("workflow_task_failed_event_attributes")
                ]
                if failed:
                    break
                await asyncio.sleep(0.01)
            message = failed[0].workflow_task_failed_event_attributes.failure.message
            assert message.startswith("breakpoint() inside workflow code requires debug_mode=True")
            await handle.terminate()
    finally:
        await client.close()
