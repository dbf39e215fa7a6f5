"""Workflow code is sandboxed: nondeterministic calls fail the workflow task.

temporalio's worker refuses ``datetime.now()``, ``random.random()``, ``open()``
and the like in workflow code with ``RestrictedWorkflowAccessError``; the
embedded worker does too, unless the code runs in ``sandbox_unrestricted()``,
the module was imported passed through, or the worker runs workflows with
``UnsandboxedWorkflowRunner()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import random

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from ablauf import Client, Worker

# The module's full name: `from tests.behaviour import wall_clock` would find the
# sandbox's own copy of the package and import the module into it anew.
with workflow.unsafe.imports_passed_through():
    import tests.behaviour.wall_clock as wall_clock

# What each call is named in the sandbox's error.
CALLS = {
    "datetime.now": "datetime.datetime.now.__call__",
    "random.random": "random.random.__call__",
    "open": "__builtins__.open",
}

# The default restrictions, but with datetime.datetime.now allowed.
NOW_ALLOWED = dataclasses.replace(
    SandboxRestrictions.default,
    invalid_module_members=SandboxRestrictions.invalid_module_members_default.with_child_unrestricted(
        "datetime", "datetime", "now"
    ),
)


def _call(what: str) -> str:
    if what == "datetime.now":
        return datetime.datetime.now().isoformat()
    if what == "random.random":
        return str(random.random())
    with open(__file__) as source:
        return source.readline().strip()


@workflow.defn
class Nondeterministic:
    @workflow.run
    async def run(self, what: str) -> str:
        return _call(what)


@workflow.defn
class Unrestricted:
    @workflow.run
    async def run(self) -> list[str]:
        with workflow.unsafe.sandbox_unrestricted():
            results = [_call(what) for what in CALLS]
        # The deterministic alternatives, and a module passed through.
        results.append(workflow.now().isoformat())
        results.append(str(workflow.random().random()))
        results.append(str(wall_clock.year()))
        return results


async def _task_failure(handle: WorkflowHandle[object, object]) -> HistoryEvent:
    for _ in range(500):
        events = (await handle.fetch_history()).events
        failed = [e for e in events if e.HasField("workflow_task_failed_event_attributes")]
        if failed:
            return failed[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no workflow task failed")


async def _assert_refused(handle: WorkflowHandle[object, object], name: str) -> None:
    attrs = (await _task_failure(handle)).workflow_task_failed_event_attributes
    assert attrs.failure.message.startswith(f"Cannot access {name} from inside a workflow.")
    assert attrs.failure.application_failure_info.type == "RestrictedWorkflowAccessError"
    assert (
        attrs.cause
        == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE
    )
    # A failed workflow task is retried; the run stays open.
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await handle.terminate("test done")


async def test_nondeterministic_calls_fail_the_workflow_task(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Nondeterministic]):
        handles = [
            await client.start_workflow(
                Nondeterministic.run, what, id=f"refused-{what}-{suffix}", task_queue=task_queue
            )
            for what in CALLS
        ]
        await asyncio.gather(
            *(_assert_refused(h, name) for h, name in zip(handles, CALLS.values(), strict=True))
        )


async def test_unrestricted_code_and_deterministic_alternatives_run(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Unrestricted]):
        now, chance, line, today, drawn, year = await client.execute_workflow(
            Unrestricted.run, id=f"unrestricted-{suffix}", task_queue=task_queue
        )
    assert datetime.datetime.fromisoformat(now).year == int(year)
    assert 0 <= float(chance) < 1 and 0 <= float(drawn) < 1
    assert line.startswith('"""Workflow code is sandboxed')
    assert datetime.datetime.fromisoformat(today).tzinfo is not None


async def test_unsandboxed_runner_runs_nondeterministic_code(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[Nondeterministic],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        results = await asyncio.gather(
            *(
                client.execute_workflow(
                    Nondeterministic.run, what, id=f"free-{what}-{suffix}", task_queue=task_queue
                )
                for what in CALLS
            )
        )
    assert datetime.datetime.fromisoformat(results[0])
    assert 0 <= float(results[1]) < 1
    assert results[2].startswith('"""Workflow code is sandboxed')


async def test_sandbox_restrictions_given_are_honoured(
    client: Client, task_queue: str, suffix: str
) -> None:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[Nondeterministic],
        workflow_runner=SandboxedWorkflowRunner(restrictions=NOW_ALLOWED),
    ):
        now = await client.execute_workflow(
            Nondeterministic.run, "datetime.now", id=f"now-{suffix}", task_queue=task_queue
        )
        assert datetime.datetime.fromisoformat(now)
        handle = await client.start_workflow(
            Nondeterministic.run, "random.random", id=f"random-{suffix}", task_queue=task_queue
        )
        await _assert_refused(handle, CALLS["random.random"])


async def test_a_module_refused_at_import_fails_the_worker_at_once(
    client: Client, task_queue: str
) -> None:
    # Imported here: a module importing it is refused by the sandbox too.
    from tests.behaviour.clock_at_import import ImportedAt

    with pytest.raises(RuntimeError, match="Failed validating workflow ImportedAt") as raised:
        Worker(client, task_queue=task_queue, workflows=[ImportedAt])
    assert "datetime.datetime.now.__call__" in str(raised.value.__cause__)
