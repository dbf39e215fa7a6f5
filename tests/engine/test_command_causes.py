"""A refused command fails its workflow task with Temporal's cause, recorded by the engine."""

from __future__ import annotations

import pytest
from temporalio.api.command.v1 import (
    CancelTimerCommandAttributes,
    Command,
    ProtocolMessageCommandAttributes,
    RequestCancelActivityTaskCommandAttributes,
    ScheduleActivityTaskCommandAttributes,
    ScheduleNexusOperationCommandAttributes,
    StartTimerCommandAttributes,
)
from temporalio.api.common.v1 import ActivityType
from temporalio.api.enums.v1 import CommandType, EventType, WorkflowTaskFailedCause

from ablauf.engine import commands, executions
from ablauf.engine.engine import Engine
from ablauf.history import catalog
from ablauf.store.base import WORKFLOW_TASK

from .conftest import start_request
from .test_transitions import take

C = CommandType
F = WorkflowTaskFailedCause


def _timer(timer_id: str) -> Command:
    attrs = StartTimerCommandAttributes(timer_id=timer_id)
    attrs.start_to_fire_timeout.FromSeconds(5)
    return Command(command_type=C.COMMAND_TYPE_START_TIMER, start_timer_command_attributes=attrs)


REFUSED = {
    "activity without id": (
        [
            Command(
                command_type=C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
                schedule_activity_task_command_attributes=ScheduleActivityTaskCommandAttributes(
                    activity_type=ActivityType(name="act")
                ),
            )
        ],
        F.WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES,
    ),
    "cancel of an unknown activity": (
        [
            Command(
                command_type=C.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK,
                request_cancel_activity_task_command_attributes=(
                    RequestCancelActivityTaskCommandAttributes(scheduled_event_id=99)
                ),
            )
        ],
        F.WORKFLOW_TASK_FAILED_CAUSE_BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES,
    ),
    "timer id twice": (
        [_timer("t"), _timer("t")],
        F.WORKFLOW_TASK_FAILED_CAUSE_START_TIMER_DUPLICATE_ID,
    ),
    "cancel of an unknown timer": (
        [
            Command(
                command_type=C.COMMAND_TYPE_CANCEL_TIMER,
                cancel_timer_command_attributes=CancelTimerCommandAttributes(timer_id="nope"),
            )
        ],
        F.WORKFLOW_TASK_FAILED_CAUSE_BAD_CANCEL_TIMER_ATTRIBUTES,
    ),
    "message that is not there": (
        [
            Command(
                command_type=C.COMMAND_TYPE_PROTOCOL_MESSAGE,
                protocol_message_command_attributes=ProtocolMessageCommandAttributes(
                    message_id="missing"
                ),
            )
        ],
        F.WORKFLOW_TASK_FAILED_CAUSE_BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE,
    ),
    "nexus operation": (
        [
            Command(
                command_type=C.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION,
                schedule_nexus_operation_command_attributes=(
                    ScheduleNexusOperationCommandAttributes(endpoint="e")
                ),
            )
        ],
        F.WORKFLOW_TASK_FAILED_CAUSE_FEATURE_DISABLED,
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_refused_command_is_recorded_with_its_cause(local: Engine, case: str) -> None:
    cmds, cause = REFUSED[case]
    run_id = executions.start(local, start_request())[0]
    ref = await take(local, WORKFLOW_TASK)
    local.workflow_tasks.read(ref, 0)
    assert not local.workflow_tasks.complete(ref, [_timer("before"), *cmds])
    events = local.history(run_id)
    kinds = [e.event_type for e in events]
    # Nothing the task asked for is kept, not even the commands before the bad one.
    assert EventType.EVENT_TYPE_TIMER_STARTED not in kinds
    assert kinds[-3:] == [
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    ]
    assert events[-2].workflow_task_failed_event_attributes.cause == cause


def test_one_handler_per_supported_command_kind() -> None:
    assert set(commands.HANDLERS) == catalog.SUPPORTED_COMMANDS
    unsupported = set(catalog.COMMANDS) - catalog.SUPPORTED_COMMANDS
    assert unsupported == {
        C.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION,
        C.COMMAND_TYPE_REQUEST_CANCEL_NEXUS_OPERATION,
    }
