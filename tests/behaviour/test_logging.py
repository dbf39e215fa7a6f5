"""What a worker logs: an activity failure with the activity's details (as
temporalio's worker logs it, on both engines), and on ablauf one line when a
worker starts and one when it stops."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from ablauf import Client, Worker


@activity.defn
async def fails_once() -> int:
    if activity.info().attempt == 1:
        raise RuntimeError("first attempt fails")
    return activity.info().attempt


@workflow.defn
class FailsOnce:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity(
            fails_once,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


async def test_an_activity_failure_is_logged_with_its_details(
    client: Client, task_queue: str, suffix: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="temporalio.activity"):
        async with Worker(
            client, task_queue=task_queue, workflows=[FailsOnce], activities=[fails_once]
        ):
            handle = await client.start_workflow(
                FailsOnce.run, id=f"log-{suffix}", task_queue=task_queue
            )
            assert await handle.result() == 2
    [record] = [r for r in caplog.records if "Completing activity as failed" in r.getMessage()]
    message = record.getMessage()
    for detail in (
        f"'workflow_id': 'log-{suffix}'",
        f"'workflow_run_id': '{handle.result_run_id}'",
        "'activity_type': 'fails_once'",
        "'attempt': 1",
        f"'task_queue': '{task_queue}'",
    ):
        assert detail in message
    assert record.exc_info is not None and "first attempt fails" in str(record.exc_info[1])


@pytest.mark.only_engine("ablauf", "the start and stop lines are ablauf's own")
async def test_a_worker_logs_its_start_and_stop(
    client: Client, task_queue: str, suffix: str, caplog: pytest.LogCaptureFixture
) -> None:
    await client.start_workflow(FailsOnce.run, id=f"waiting-{suffix}", task_queue=task_queue)
    with caplog.at_level(logging.INFO, logger="ablauf.worker.worker"):
        async with Worker(
            client, task_queue=task_queue, workflows=[FailsOnce], activities=[fails_once]
        ):
            await client.get_workflow_handle(f"waiting-{suffix}").result()
    lines = [r.getMessage() for r in caplog.records if r.name == "ablauf.worker.worker"]
    engine = client.engine
    assert engine is not None
    assert lines[0].startswith(
        f"ablauf worker started: task queue {task_queue!r} of namespace 'default' on store "
        f"{engine.store.path}; workflows: FailsOnce; activities: fails_once; 1 run(s) of the "
        "task queue open; ablauf "
    )
    assert lines[-1] == f"ablauf worker stopped: task queue {task_queue!r}"
