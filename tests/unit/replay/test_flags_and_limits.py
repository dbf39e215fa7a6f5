"""temporal-python's workflow logic flags, sdk_metadata, and features ablauf does not run yet."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType

from . import test_replay as rep
from .helpers import Run, kinds, value


def _result(outcome_commands: list) -> object:  # type: ignore[type-arg]
    return value(
        outcome_commands[-1].complete_workflow_execution_command_attributes.result.payloads[0]
    )


def test_the_first_new_task_records_sdk_metadata() -> None:
    run = Run(SignalOrTimeout)
    first = run.task()
    assert first.sdk_metadata is not None
    assert list(first.sdk_metadata.core_used_flags) == [1, 2, 3, 4]
    assert first.sdk_metadata.sdk_name == "temporal-python"
    assert first.sdk_metadata.sdk_version
    run.fire_timer("1")
    second = run.task()
    # Only what is new is recorded again.
    assert second.sdk_metadata is not None
    assert list(second.sdk_metadata.core_used_flags) == []
    assert second.sdk_metadata.sdk_name == ""
    run.close()


@workflow.defn
class SignalOrTimeout:
    def __init__(self) -> None:
        self.signalled = False

    @workflow.signal
    def go(self) -> None:
        self.signalled = True

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: self.signalled, timeout=10)
            return "signalled"
        except TimeoutError:
            return "timed out"


@pytest.mark.parametrize(("single_batch", "expected"), [(False, "signalled"), (True, "timed out")])
def test_single_batch_activations_follow_the_flag_in_history(
    single_batch: bool, expected: str
) -> None:
    run = Run(SignalOrTimeout)
    run.task()
    if single_batch:
        completed = next(
            e
            for e in run.history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        )
        completed.workflow_task_completed_event_attributes.sdk_metadata.lang_used_flags.append(2)
        run.instance.close()
        run.instance = run.new_instance()
        run.fed = 0
    # The signal and the timeout arrive in the same task. Applied group by group,
    # the signal satisfies the condition first; applied as one batch, the timeout wins.
    run.signal("go")
    run.fire_timer("1")
    outcome = run.task()
    assert _result(outcome.commands) == expected
    assert run.replay().failure is None
    run.close()


@workflow.defn
class CancelAfterCompletion:
    def __init__(self) -> None:
        self.outcome = ""

    @workflow.query
    def seen(self) -> str:
        return self.outcome

    @workflow.run
    async def run(self) -> str:
        task = asyncio.create_task(
            workflow.execute_activity("work", start_to_close_timeout=timedelta(seconds=5))
        )
        await workflow.sleep(1)
        task.cancel()
        try:
            self.outcome = str(await task)
        except asyncio.CancelledError:
            self.outcome = "cancelled"
        return self.outcome


def test_cancelling_a_task_whose_activity_just_completed_raises_and_records_lang_flag_1() -> None:
    run = Run(CancelAfterCompletion)
    assert kinds(run.task().commands) == ["START_TIMER", "SCHEDULE_ACTIVITY_TASK"]
    run.fire_timer("1")
    run.complete_activity("1", "done")
    outcome = run.task()
    assert _result(outcome.commands) == "cancelled"
    assert outcome.sdk_metadata is not None
    assert list(outcome.sdk_metadata.lang_used_flags) == [1]
    assert run.replay().failure is None
    # A history recorded before the flag existed keeps the old behaviour on replay.
    events = list(run.history.events)
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            del event.workflow_task_completed_event_attributes.sdk_metadata.lang_used_flags[:]
    legacy = run.new_instance()
    assert legacy.activate(events).failure is None
    assert value(legacy.query("seen", [])) == "done"
    legacy.close()
    run.close()


@workflow.defn
class UsesChild:
    @workflow.run
    async def run(self, what: str) -> None:
        if what == "nexus":
            client = workflow.create_nexus_client(endpoint="ep", service="svc")
            await client.execute_operation("op", None)


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("nexus", "Nexus operations are not supported yet"),
    ],
)
def test_unsupported_features_fail_the_task_with_a_clear_message(what: str, message: str) -> None:
    run = Run(UsesChild, what)
    outcome = run.task()
    assert outcome.failure is not None
    assert outcome.failure.message == message
    assert outcome.failure.application_failure_info.type == "UnsupportedFeatureError"
    assert not outcome.nondeterminism
    run.close()


def test_unsupported_events_in_history_fail_the_task() -> None:
    run = Run(SignalOrTimeout)
    run.task()
    run.history.add(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
        "workflow_execution_update_admitted_event_attributes",
    )
    outcome = run.task()
    assert outcome.failure is not None
    assert "WorkflowExecutionUpdateAdmitted" in outcome.failure.message
    assert not outcome.nondeterminism
    run.close()


def test_histories_without_sdk_metadata_still_replay_patches() -> None:
    run = Run(rep.Patched)
    run.task()
    run.fire_timer("1")
    run.task()
    # An engine that does not write sdk_metadata leaves the flags out.
    for event in run.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            event.workflow_task_completed_event_attributes.ClearField("sdk_metadata")
    assert run.replay().failure is None
    run.close()
