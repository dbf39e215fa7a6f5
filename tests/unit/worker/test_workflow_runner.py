"""The embedded worker honours temporalio's two workflow runners and refuses others."""

from __future__ import annotations

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
