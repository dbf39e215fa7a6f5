"""``ablauf workflow show`` exports a history that Temporal's Replayer accepts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from ablauf import Client, Worker
from ablauf.cli import main


@activity.defn
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow.defn
class Greeter:
    @workflow.run
    async def run(self, name: str) -> str:
        await asyncio.sleep(0.05)
        return await workflow.execute_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=5)
        )


def make_store(path: Path) -> str:
    target = f"sqlite:///{path}"

    async def run() -> None:
        client = await Client.connect(target)
        async with Worker(client, task_queue="cli", workflows=[Greeter], activities=[greet]):
            await client.execute_workflow(Greeter.run, "ada", id="greet-1", task_queue="cli")
        await client.close()

    asyncio.run(run())
    return target


def test_show_json_replays_with_temporal_replayer(tmp_path: Path) -> None:
    target = make_store(tmp_path / "cli.db")
    out = tmp_path / "greet-1.json"
    assert (
        main(
            [
                "workflow",
                "show",
                "--target",
                target,
                "--id",
                "greet-1",
                "-o",
                "json",
                "-f",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert data["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    history = WorkflowHistory.from_json("greet-1", out.read_text())
    result = asyncio.run(Replayer(workflows=[Greeter]).replay_workflow(history))
    assert result.replay_failure is None


def test_show_text_lists_events(tmp_path: Path, capsys) -> None:
    target = make_store(tmp_path / "cli.db")
    assert main(["workflow", "show", "--target", target, "--id", "greet-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-1] == "WORKFLOW_EXECUTION_STARTED"
    assert lines[-1].split()[-1] == "WORKFLOW_EXECUTION_COMPLETED"


def test_unknown_workflow_is_a_clear_error(tmp_path: Path) -> None:
    target = make_store(tmp_path / "cli.db")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ablauf.cli",
            "workflow",
            "show",
            "--target",
            target,
            "--id",
            "nope",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "workflow not found for ID: nope" in proc.stderr
