"""Local activities in the replay core: requests, markers, replay from markers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from temporalio import workflow

from ablauf.replay.instance import WorkflowTaskOutcome
from ablauf.replay.machines import LocalActivityResult, LocalStatus
from tests.unit.replay.helpers import Run, kinds, payload, value


@workflow.defn
class TwoLocals:
    @workflow.run
    async def run(self) -> list[Any]:
        first = await workflow.execute_local_activity(
            "double", 2, start_to_close_timeout=timedelta(seconds=1)
        )
        await workflow.sleep(1)
        second = await workflow.execute_local_activity(
            "double", first, start_to_close_timeout=timedelta(seconds=1)
        )
        return [first, second]


def _task(run: Run, results: dict[int, Any]) -> WorkflowTaskOutcome:
    """Run a task, answering its local activities from ``results`` by seq."""
    started = run.start_task()
    outcome = run.instance.activate(run.history.events[run.fed :])
    run.fed = len(run.history.events)
    while outcome.waiting_for_local_activities:
        answers = [
            LocalActivityResult(r.seq, LocalStatus.COMPLETED, result=payload(results[r.seq]))
            for r in outcome.local_activities
        ]
        outcome = run.instance.resolve_local_activities(answers)
    assert outcome.failure is None
    run.record(outcome.commands, outcome.sdk_metadata, started.event_id)
    return outcome


def test_a_local_activity_holds_the_task_and_is_recorded_as_a_marker() -> None:
    run = Run(TwoLocals)
    started = run.start_task()
    outcome = run.instance.activate(run.history.events)
    run.fed = len(run.history.events)
    assert outcome.waiting_for_local_activities
    assert outcome.commands == []
    [request] = outcome.local_activities
    assert (request.seq, request.activity_type, request.activity_id) == (1, "double", "1")
    outcome = run.instance.resolve_local_activities(
        [LocalActivityResult(1, LocalStatus.COMPLETED, result=payload(4), runtime_ns=5)]
    )
    assert not outcome.waiting_for_local_activities
    assert kinds(outcome.commands) == ["RECORD_MARKER", "START_TIMER"]
    marker = outcome.commands[0].record_marker_command_attributes
    assert marker.marker_name == "core_local_activity"
    data = json.loads(marker.details["data"].payloads[0].data)
    assert data["seq"] == 1 and data["activity_type"] == "double" and data["backoff"] is None
    assert value(marker.details["result"].payloads[0]) == 4
    run.record(outcome.commands, outcome.sdk_metadata, started.event_id)
    run.fire_timer("1")
    outcome = _task(run, {2: 8})
    assert kinds(outcome.commands) == ["RECORD_MARKER", "COMPLETE_WORKFLOW_EXECUTION"]
    # Replay resolves both from their markers without running them.
    replayed = run.replay()
    assert replayed.failure is None
    assert replayed.local_activities == []
    run.close()


def test_a_marker_for_another_activity_type_is_nondeterminism() -> None:
    run = Run(TwoLocals)
    _task(run, {1: 4})
    for event in run.history.events:
        if event.event_type == 0 or not event.HasField("marker_recorded_event_attributes"):
            continue
        payloads = event.marker_recorded_event_attributes.details["data"].payloads[0]
        data = json.loads(payloads.data)
        data["activity_type"] = "triple"
        payloads.data = json.dumps(data).encode()
    outcome = run.replay()
    assert outcome.nondeterminism
    assert "Activity type of recorded marker 'triple'" in outcome.failure.message  # type: ignore[union-attr]
    run.close()
