"""Replay, nondeterminism, workflow results and everything workflow code can observe."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

from ablauf.replay import history as replay_history

from .helpers import START, Run, kinds, payload, value


def _result(run: Run) -> object:
    command = run.outcomes[-1].commands[-1]
    return value(command.complete_workflow_execution_command_attributes.result.payloads[0])


@workflow.defn
class TwoSteps:
    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(
            "greet", name, start_to_close_timeout=timedelta(seconds=5)
        )
        await workflow.sleep(10)
        return f"{greeting}!"


def _two_steps_done() -> Run:
    run = Run(TwoSteps, "World")
    run.task()
    run.complete_activity("1", "Hello, World")
    run.task()
    run.fire_timer("1")
    run.task()
    return run


def test_a_finished_history_replays_without_commands() -> None:
    run = _two_steps_done()
    assert _result(run) == "Hello, World!"
    outcome = run.replay()
    assert outcome.failure is None
    assert outcome.commands == []
    run.close()


def test_each_task_replays_to_the_commands_history_recorded() -> None:
    run = _two_steps_done()
    events = run.history.events
    started = [
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    ]
    for index in started:
        outcome = run.replay(events[: index + 1])
        recorded = [
            e.event_type
            for e in events[index + 2 :]
            if e.event_type in replay_history.COMMAND_EVENT_TYPES
        ]
        assert outcome.failure is None
        assert len(outcome.commands) >= 1
        assert len(recorded) >= len(outcome.commands)
    run.close()


def test_an_altered_recorded_command_is_nondeterminism() -> None:
    run = _two_steps_done()
    events = list(run.history.events)
    timer = next(e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)
    timer.timer_started_event_attributes.timer_id = "7"
    outcome = run.replay(events)
    assert outcome.nondeterminism
    assert outcome.failure is not None
    assert outcome.failure.message.startswith("[TMPRL1100] Nondeterminism error: ")
    assert outcome.commands == []
    run.close()


@workflow.defn(name="TwoSteps")
class TwoStepsChanged:
    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.sleep(10)
        return name


def test_different_code_on_replay_is_nondeterminism() -> None:
    run = _two_steps_done()
    changed = Run(TwoStepsChanged, "World")
    outcome = changed.replay(run.history.events)
    assert outcome.nondeterminism
    assert outcome.failure is not None
    assert outcome.failure.message == (
        "[TMPRL1100] Nondeterminism error: Timer machine does not handle this event: "
        "HistoryEvent(id: 5, ActivityTaskScheduled)"
    )
    run.close()


def test_a_missing_command_is_nondeterminism() -> None:
    run = _two_steps_done()
    events = list(run.history.events)
    # Pretend the first task recorded one more command than the code makes.
    extra = events[4].__class__()
    extra.CopyFrom(events[4])
    events.insert(5, extra)
    for i, event in enumerate(events):
        event.event_id = i + 1
    outcome = run.replay(events)
    assert outcome.nondeterminism
    assert outcome.failure is not None
    assert (
        "No command scheduled for event HistoryEvent(id: 6, ActivityTaskScheduled)"
        in outcome.failure.message
    )
    run.close()


def test_sticky_events_must_continue_without_gaps() -> None:
    run = Run(TwoSteps, "World")
    run.task()
    run.complete_activity("1", "hi")
    with pytest.raises(ValueError, match="without gaps"):
        run.instance.activate(run.history.events[run.fed + 1 :])
    assert run.instance.last_event_id == run.fed
    run.close()


def test_the_answered_task_must_complete_before_more_events() -> None:
    run = Run(TwoSteps, "World")
    run.task()
    # The worker was too slow: the server timed the task out instead of completing it.
    timed_out = run.history.events[run.fed].__class__()
    timed_out.CopyFrom(run.history.events[run.fed])
    timed_out.event_type = EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
    with pytest.raises(ValueError, match="Expected WorkflowTaskCompleted"):
        run.instance.activate([timed_out])
    with pytest.raises(RuntimeError, match="did not complete"):
        run.instance.activate([])
    run.close()


class Flaky:
    broken = True


@workflow.defn
class SometimesBroken:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(1)
        if Flaky.broken:
            raise RuntimeError("transient bug")
        return "fixed"


def test_a_failed_task_is_retried_and_its_events_replay() -> None:
    Flaky.broken = True
    run = Run(SometimesBroken)
    run.task()
    run.fire_timer("1")
    failed = run.task()
    assert failed.failure is not None
    assert failed.failure.message == "transient bug"
    assert failed.failure.application_failure_info.type == "RuntimeError"
    Flaky.broken = False
    # The worker evicted the instance; the retry replays the history, skipping the failed task.
    retried = run.task()
    assert kinds(retried.commands) == ["COMPLETE_WORKFLOW_EXECUTION"]
    assert run.replay().failure is None
    run.close()


@workflow.defn
class Randomness:
    @workflow.run
    async def run(self) -> list[str]:
        before = [str(workflow.uuid4()), str(workflow.random().randint(0, 1000))]
        await workflow.sleep(1)
        return [*before, str(workflow.uuid4()), str(workflow.new_random("x").random())]


def test_random_and_uuid4_are_deterministic_and_match_the_python_sdk() -> None:
    # Same values the Python SDK drew for this run id on a real Temporal server.
    run = Run(Randomness, run_id="01a21394-25c1-7080-85dd-a39a3cc808af")
    run.task()
    run.fire_timer("1")
    run.task()
    first = _result(run)
    assert first[:2] == ["0f788a8d-2e1f-4cd3-9fa3-1a0e398c7ee9", "305"]  # type: ignore[index]
    again = Run(Randomness, run_id="01a21394-25c1-7080-85dd-a39a3cc808af")
    outcome = again.replay(run.history.events[: len(run.history.events) - 2])
    assert outcome.failure is None
    assert (
        value(outcome.commands[0].complete_workflow_execution_command_attributes.result.payloads[0])
        == first
    )
    run.close()


@workflow.defn
class Patched:
    @workflow.run
    async def run(self) -> list[bool]:
        first = workflow.patched("feature-a")
        again = workflow.patched("feature-a")
        workflow.deprecate_patch("old-b")
        await workflow.sleep(1)
        return [first, again]


def test_new_patches_record_markers_and_the_version_search_attribute() -> None:
    run = Run(Patched)
    outcome = run.task()
    assert kinds(outcome.commands) == [
        "RECORD_MARKER",
        "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
        "RECORD_MARKER",
        "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
        "START_TIMER",
    ]
    marker = outcome.commands[0].record_marker_command_attributes
    assert marker.marker_name == "core_patch"
    assert marker.details["patch-data"].payloads[0].data == b'{"id":"feature-a","deprecated":false}'
    version = outcome.commands[3].upsert_workflow_search_attributes_command_attributes
    assert (
        version.search_attributes.indexed_fields["TemporalChangeVersion"].data
        == b'["feature-a","old-b"]'
    )
    run.fire_timer("1")
    run.task()
    assert _result(run) == [True, True]
    assert run.replay().failure is None
    run.close()


@workflow.defn(name="Patched")
class PatchedOldCode:
    @workflow.run
    async def run(self) -> list[bool]:
        await workflow.sleep(1)
        return []


@workflow.defn(name="Patched")
class PatchedAfterDeprecation:
    @workflow.run
    async def run(self) -> list[bool]:
        workflow.deprecate_patch("feature-a")
        await workflow.sleep(1)
        return []


def test_patches_on_replay() -> None:
    old = Run(PatchedOldCode)
    old.task()
    old.fire_timer("1")
    old.start_task()
    # New code replaying an old history takes the old path: there is no marker.
    new = Run(Patched)
    outcome = new.replay(old.history.events)
    assert outcome.failure is None
    assert kinds(outcome.commands) == ["COMPLETE_WORKFLOW_EXECUTION"]
    assert value(
        outcome.commands[0].complete_workflow_execution_command_attributes.result.payloads[0]
    ) == [
        False,
        False,
    ]
    old = Run(PatchedOldCode)
    old.task()
    # Old code cannot replay a history with a non-deprecated marker ...
    patched = Run(Patched)
    patched.task()
    outcome = old.replay(patched.history.events)
    assert outcome.nondeterminism
    assert outcome.failure is not None
    assert "Non-deprecated patch marker encountered for change feature-a" in outcome.failure.message
    # ... but deprecated markers may stay behind after the code is gone.
    deprecated = Run(PatchedAfterDeprecation)
    deprecated.task()
    assert old.replay(deprecated.history.events).failure is None
    for r in (old, new, patched, deprecated):
        r.close()


@workflow.defn
class Outcomes:
    @workflow.run
    async def run(self, how: str) -> str:
        await workflow.sleep(1)
        if how == "fail":
            raise ApplicationError("nope", "detail", type="Business", non_retryable=True)
        if how == "custom":
            raise KeyError("custom failure type")
        if how == "continue":
            workflow.continue_as_new("done", memo={"round": 2})
        if how == "timeout":
            await workflow.wait_condition(lambda: False, timeout=0.5)
        return how


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("ok", "COMPLETE_WORKFLOW_EXECUTION"),
        ("fail", "FAIL_WORKFLOW_EXECUTION"),
        ("continue", "CONTINUE_AS_NEW_WORKFLOW_EXECUTION"),
    ],
)
def test_workflow_outcomes_become_closing_commands(how: str, expected: str) -> None:
    run = Run(Outcomes, how, memo={"round": 1})
    run.task()
    run.fire_timer("1")
    outcome = run.task()
    assert kinds(outcome.commands) == [expected]
    command = outcome.commands[0]
    if how == "fail":
        failure = command.fail_workflow_execution_command_attributes.failure
        assert (failure.message, failure.application_failure_info.type) == ("nope", "Business")
        assert failure.application_failure_info.non_retryable
    if how == "continue":
        attrs = command.continue_as_new_workflow_execution_command_attributes
        assert value(attrs.input.payloads[0]) == "done"
        assert value(attrs.memo.fields["round"]) == 2
        assert attrs.workflow_type.name == "Outcomes"
        assert attrs.task_queue.name == "tq"
    assert run.replay().failure is None
    run.close()


def test_failure_exception_types_fail_the_workflow_and_others_the_task() -> None:
    run = Run(Outcomes, "custom")
    run.task()
    run.fire_timer("1")
    outcome = run.task()
    assert outcome.failure is not None and outcome.commands == []
    run = Run(Outcomes, "custom", failure_exception_types=[KeyError])
    run.task()
    run.fire_timer("1")
    assert kinds(run.task().commands) == ["FAIL_WORKFLOW_EXECUTION"]
    run.close()


def test_an_uncaught_wait_condition_timeout_fails_the_workflow() -> None:
    run = Run(Outcomes, "timeout")
    run.task()
    run.fire_timer("1")
    run.task()
    run.fire_timer("2")
    outcome = run.task()
    assert kinds(outcome.commands) == ["FAIL_WORKFLOW_EXECUTION"]
    run.close()


@workflow.defn
class Cancellable:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.sleep(3600)
        except asyncio.CancelledError:
            assert workflow.cancellation_reason() == "enough"
            await workflow.execute_activity("cleanup", start_to_close_timeout=timedelta(seconds=5))
            raise
        return "slept"


def test_a_cancel_request_cancels_the_run_and_the_cancelled_error_cancels_the_workflow() -> None:
    run = Run(Cancellable)
    run.task()
    run.request_cancel("enough")
    outcome = run.task()
    assert kinds(outcome.commands) == ["CANCEL_TIMER", "SCHEDULE_ACTIVITY_TASK"]
    run.complete_activity("1", None)
    assert kinds(run.task().commands) == ["CANCEL_WORKFLOW_EXECUTION"]
    assert run.replay().failure is None
    run.close()


@workflow.defn
class Observer:
    def __init__(self) -> None:
        workflow.logger.info("constructed")

    @workflow.run
    async def run(self) -> dict[str, object]:
        workflow.logger.info("first task, replaying=%s", workflow.unsafe.is_replaying())
        workflow.upsert_memo({"added": 1, "gone": None})
        workflow.upsert_search_attributes(
            [SearchAttributeKey.for_keyword("CustomKeywordField").value_set("v1")]
        )
        await workflow.sleep(1)
        info = workflow.info()
        return {
            "id": info.workflow_id,
            "run": info.run_id,
            "type": info.workflow_type,
            "queue": info.task_queue,
            "attempt": info.attempt,
            "ns": info.namespace,
            "start": info.workflow_start_time.isoformat(),
            "memo": dict(workflow.memo()),
            "memo_value": workflow.memo_value("added", type_hint=int),
            "sa": info.typed_search_attributes.get(
                SearchAttributeKey.for_keyword("CustomKeywordField")
            ),
            "length": info.get_current_history_length(),
            "size": info.get_current_history_size(),
            "suggested": info.is_continue_as_new_suggested(),
            "now": workflow.now().isoformat(),
        }


def test_workflow_info_memo_search_attributes_and_history_facts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = Run(Observer, workflow_id="observed", memo={"gone": "x", "kept": True}, attempt=2)
    with caplog.at_level(logging.INFO):
        outcome = run.task()
    assert kinds(outcome.commands) == [
        "MODIFY_WORKFLOW_PROPERTIES",
        "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
        "START_TIMER",
    ]
    memo = outcome.commands[0].modify_workflow_properties_command_attributes.upserted_memo.fields
    assert value(memo["added"]) == 1 and memo["gone"].metadata["encoding"] == b"binary/null"
    assert any("first task, replaying=False" in r.getMessage() for r in caplog.records)
    run.fire_timer("1")
    run.task()
    result = _result(run)
    assert result == {
        "id": "observed",
        "run": run.run_id,
        "type": "Observer",
        "queue": "tq",
        "attempt": 2,
        "ns": "default",
        "start": START.isoformat(),
        "memo": {"kept": True, "added": 1},
        "memo_value": 1,
        "sa": "v1",
        "length": 10,
        "size": 900,
        "suggested": False,
        "now": run.history.events[9]
        .event_time.ToDatetime()
        .replace(tzinfo=START.tzinfo)
        .isoformat(),
    }
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert run.replay().failure is None
    # workflow.logger is silent while replaying.
    assert not [r for r in caplog.records if "first task" in r.getMessage()]
    run.close()


@workflow.defn
class Forever:
    def __init__(self) -> None:
        self.cleaned = False

    @workflow.run
    async def run(self) -> None:
        try:
            await asyncio.gather(
                workflow.sleep(100),
                workflow.execute_activity("a", start_to_close_timeout=timedelta(seconds=1)),
            )
        finally:
            self.cleaned = True


def test_close_tears_down_coroutines_without_commands() -> None:
    run = Run(Forever)
    run.task()
    instance = run.instance
    instance.close()
    assert instance._runtime.context.object.cleaned
    assert instance._runtime.loop.live_tasks() == []
    with pytest.raises(RuntimeError, match="closed"):
        instance.activate([])
    assert payload(1).data == b"1"


@workflow.defn(failure_exception_types=[KeyError])
class DeclaresFailureTypes:
    @workflow.signal
    def described(self) -> None:
        """Signal with a description."""

    @workflow.run
    async def run(self) -> None:
        workflow.set_current_details("about to fail")
        await workflow.sleep(1)
        raise KeyError("declared on the definition")


def test_definition_failure_exception_types_fail_the_workflow() -> None:
    run = Run(DeclaresFailureTypes)
    run.task()
    metadata = run.instance.query("__temporal_workflow_metadata", [])
    assert metadata.metadata["encoding"] == b"json/protobuf"
    assert b"about to fail" in metadata.data and b"described" in metadata.data
    run.fire_timer("1")
    outcome = run.task()
    assert kinds(outcome.commands) == ["FAIL_WORKFLOW_EXECUTION"]
    failure = outcome.commands[0].fail_workflow_execution_command_attributes.failure
    assert "declared on the definition" in failure.message
    run.close()
