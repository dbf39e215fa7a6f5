"""Turning a completed workflow task's commands into events, tasks and timers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Final

import temporalio.api.enums.v1.command_type_pb2 as C
import temporalio.api.enums.v1.event_type_pb2 as E
import temporalio.api.enums.v1.workflow_pb2 as S
from temporalio.api.command.v1 import Command
from temporalio.api.enums.v1 import (
    CommandType,
    ContinueAsNewInitiator,
    RetryState,
    WorkflowTaskFailedCause,
)
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import (
    MarkerRecordedEventAttributes,
    TimerCanceledEventAttributes,
    TimerStartedEventAttributes,
    UpsertWorkflowSearchAttributesEventAttributes,
    WorkflowExecutionCanceledEventAttributes,
    WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionContinuedAsNewEventAttributes,
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowPropertiesModifiedEventAttributes,
)
from temporalio.api.protocol.v1 import Message

from ablauf.engine import activities, children, search_attributes, updates
from ablauf.engine.context import Transition
from ablauf.engine.cron import next_cron_run
from ablauf.engine.errors import CommandRejectedError, InvalidArgumentError
from ablauf.engine.limits import check_payloads
from ablauf.engine.timers import TimerKind, activity_retry
from ablauf.history.catalog import COMMANDS
from ablauf.history.events import seconds_of

__all__ = ["HANDLERS", "Handler", "apply"]


def apply(
    tx: Transition,
    commands: Sequence[Command],
    completed_event_id: int,
    messages: Sequence[Message] = (),
) -> None:
    """Applies the commands in order; a closing command ends the list.

    Protocol-message commands place the worker's update messages among the
    other commands; rejections, which no command names, leave no event.

    Raises:
        CommandRejectedError: A command is malformed or not allowed now; its
            cause is Temporal's for that command kind.
    """
    for command in commands:
        check_payloads(command)
    by_id = {m.id: m for m in messages} if messages else {}
    for command in commands:
        if not tx.state.running:
            break
        t = command.command_type
        handler = HANDLERS.get(t)
        if handler is None:
            raise CommandRejectedError(
                f"command {CommandType.Name(t)} is not supported by the embedded engine yet",
                _UNSUPPORTED,
            )
        if command.HasField("user_metadata"):
            # The event the command records carries its summary and details.
            tx.metadata = command.user_metadata
        try:
            handler(tx, command, completed_event_id, by_id)
            tx.metadata = None
        except CommandRejectedError:
            raise
        except InvalidArgumentError as err:
            raise CommandRejectedError(str(err), COMMANDS[t].cause) from None
    if messages:
        updates.reject_unanswered(tx, list(messages))


# One handler per command kind: (transition, command, id of the
# WorkflowTaskCompleted event, the completion's protocol messages by id).
Handler = Callable[[Transition, Command, int, Mapping[str, Message]], None]

_UNSUPPORTED = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FEATURE_DISABLED


def _schedule_activity(
    tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]
) -> None:
    activities.schedule(tx, command.schedule_activity_task_command_attributes, wft_id)


def _request_cancel_activity(
    tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]
) -> None:
    scheduled_event_id = command.request_cancel_activity_task_command_attributes.scheduled_event_id
    activities.request_cancel(tx, scheduled_event_id, wft_id)


def _start_timer(tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]) -> None:
    a = command.start_timer_command_attributes
    if a.timer_id in tx.state.timers:
        raise CommandRejectedError(
            f"timer id {a.timer_id} is already in use",
            WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_START_TIMER_DUPLICATE_ID,
        )
    tx.add(
        E.EVENT_TYPE_TIMER_STARTED,
        TimerStartedEventAttributes(
            timer_id=a.timer_id,
            start_to_fire_timeout=a.start_to_fire_timeout,
            workflow_task_completed_event_id=wft_id,
        ),
    )
    engine = tx.engine
    fire_at = tx.now + seconds_of(a.start_to_fire_timeout)
    engine.store.insert_timer(tx.state.exe.run_id, TimerKind.USER_TIMER, a.timer_id, 0, fire_at)
    tx.after_commit.append(engine.notify_timer_added)


def _cancel_timer(tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]) -> None:
    timer_id = command.cancel_timer_command_attributes.timer_id
    started_id = tx.state.timers.get(timer_id)
    if started_id is None:
        raise InvalidArgumentError(f"cannot cancel unknown timer {timer_id}")
    engine = tx.engine
    tx.add(
        E.EVENT_TYPE_TIMER_CANCELED,
        TimerCanceledEventAttributes(
            timer_id=timer_id,
            started_event_id=started_id,
            workflow_task_completed_event_id=wft_id,
            identity=engine.identity,
        ),
    )
    engine.store.delete_timers(tx.state.exe.run_id, TimerKind.USER_TIMER, timer_id)


def _complete(tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]) -> None:
    result = command.complete_workflow_execution_command_attributes.result
    attrs = WorkflowExecutionCompletedEventAttributes(
        result=result, workflow_task_completed_event_id=wft_id
    )
    # A cron workflow goes on with its next run.
    attrs.new_execution_run_id = next_cron_run(tx, result=result)
    tx.engine.close_run(
        tx, E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, attrs, S.WORKFLOW_EXECUTION_STATUS_COMPLETED
    )


def _fail_workflow(tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]) -> None:
    _fail(tx, command.fail_workflow_execution_command_attributes.failure, wft_id)


def _cancel_workflow(
    tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]
) -> None:
    canceled = WorkflowExecutionCanceledEventAttributes(
        details=command.cancel_workflow_execution_command_attributes.details,
        workflow_task_completed_event_id=wft_id,
    )
    tx.engine.close_run(
        tx, E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, canceled, S.WORKFLOW_EXECUTION_STATUS_CANCELED
    )


def _continue_as_new_workflow(
    tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]
) -> None:
    _continue_as_new(tx, command, wft_id)


def _start_child(tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]) -> None:
    children.start_child(tx, command.start_child_workflow_execution_command_attributes, wft_id)


def _signal_external(
    tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]
) -> None:
    children.signal_external(
        tx, command.signal_external_workflow_execution_command_attributes, wft_id
    )


def _request_cancel_external(
    tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]
) -> None:
    children.request_cancel_external(
        tx, command.request_cancel_external_workflow_execution_command_attributes, wft_id
    )


def _record_marker(tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]) -> None:
    m = command.record_marker_command_attributes
    marker = MarkerRecordedEventAttributes(
        marker_name=m.marker_name, details=m.details, workflow_task_completed_event_id=wft_id
    )
    if m.HasField("header"):
        marker.header.CopyFrom(m.header)
    if m.HasField("failure"):
        marker.failure.CopyFrom(m.failure)
    tx.add(E.EVENT_TYPE_MARKER_RECORDED, marker)


def _upsert_search_attributes(
    tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]
) -> None:
    given = command.upsert_workflow_search_attributes_command_attributes.search_attributes
    search_attributes.check_command(tx.engine.store, tx.state.exe.namespace, given)
    tx.add(
        E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        UpsertWorkflowSearchAttributesEventAttributes(
            workflow_task_completed_event_id=wft_id,
            search_attributes=command.upsert_workflow_search_attributes_command_attributes.search_attributes,
        ),
    )


def _modify_properties(
    tx: Transition, command: Command, wft_id: int, _: Mapping[str, Message]
) -> None:
    tx.add(
        E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
        WorkflowPropertiesModifiedEventAttributes(
            workflow_task_completed_event_id=wft_id,
            upserted_memo=command.modify_workflow_properties_command_attributes.upserted_memo,
        ),
    )


def _protocol_message(
    tx: Transition, command: Command, wft_id: int, messages: Mapping[str, Message]
) -> None:
    message_id = command.protocol_message_command_attributes.message_id
    message = messages.get(message_id)
    if message is None:
        raise InvalidArgumentError(f"no protocol message with id {message_id!r}")
    updates.apply_message(tx, message)


HANDLERS: Final[dict[int, Handler]] = {
    C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK: _schedule_activity,
    C.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK: _request_cancel_activity,
    C.COMMAND_TYPE_START_TIMER: _start_timer,
    C.COMMAND_TYPE_CANCEL_TIMER: _cancel_timer,
    C.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION: _complete,
    C.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION: _fail_workflow,
    C.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION: _cancel_workflow,
    C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION: _continue_as_new_workflow,
    C.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION: _start_child,
    C.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION: _signal_external,
    C.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION: _request_cancel_external,
    C.COMMAND_TYPE_RECORD_MARKER: _record_marker,
    C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: _upsert_search_attributes,
    C.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES: _modify_properties,
    C.COMMAND_TYPE_PROTOCOL_MESSAGE: _protocol_message,
}
"""The engine's handler of each command kind it supports (the catalogue's SUPPORTED_COMMANDS)."""


def _fail(tx: Transition, failure: Failure, wft_id: int) -> None:
    """Fails the run; with a retry policy that allows it, the next attempt starts as a new run."""
    engine = tx.engine
    state = tx.state
    prev = state.started
    failed = WorkflowExecutionFailedEventAttributes(
        failure=failure,
        retry_state=RetryState.RETRY_STATE_RETRY_POLICY_NOT_SET,
        workflow_task_completed_event_id=wft_id,
    )
    if prev.HasField("retry_policy") and prev.retry_policy.ByteSize() > 0:
        deadline = None
        if prev.HasField("workflow_execution_expiration_time"):
            deadline = prev.workflow_execution_expiration_time.ToNanoseconds() / 1e9
        delay, failed.retry_state = activity_retry(
            prev.retry_policy, prev.attempt, failure, tx.now, deadline
        )
        if delay is not None:
            retry = WorkflowExecutionStartedEventAttributes()
            retry.CopyFrom(prev)
            retry.ClearField("original_execution_run_id")
            retry.attempt = prev.attempt + 1
            retry.continued_execution_run_id = state.exe.run_id
            retry.initiator = ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_RETRY
            retry.continued_failure.CopyFrom(failure)
            retry.first_workflow_task_backoff.FromTimedelta(timedelta(seconds=delay))
            retry.identity = engine.identity
            new_tx = engine.create_run(state.exe.namespace, state.exe.workflow_id, retry, tx.now)
            failed.new_execution_run_id = new_tx.state.exe.run_id
            tx.after_commit.append(lambda: engine.after_create_run(new_tx))
    if not failed.new_execution_run_id:
        # Retries exhausted (or none): a cron workflow goes on with its next run.
        last = prev.last_completion_result if prev.HasField("last_completion_result") else None
        failed.new_execution_run_id = next_cron_run(tx, result=last, failure=failure)
    engine.close_run(
        tx, E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, failed, S.WORKFLOW_EXECUTION_STATUS_FAILED
    )


def _continue_as_new(tx: Transition, command: Command, wft_id: int) -> None:
    engine = tx.engine
    state = tx.state
    a = command.continue_as_new_workflow_execution_command_attributes
    prev = state.started
    search_attributes.check_command(engine.store, state.exe.namespace, a.search_attributes)
    started = WorkflowExecutionStartedEventAttributes(
        workflow_type=a.workflow_type if a.workflow_type.name else prev.workflow_type,
        task_queue=a.task_queue if a.task_queue.name else prev.task_queue,
        input=a.input,
        workflow_run_timeout=a.workflow_run_timeout
        if a.HasField("workflow_run_timeout")
        else prev.workflow_run_timeout,
        workflow_task_timeout=a.workflow_task_timeout
        if a.HasField("workflow_task_timeout") and a.workflow_task_timeout.ToNanoseconds()
        else prev.workflow_task_timeout,
        continued_execution_run_id=state.exe.run_id,
        initiator=ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_WORKFLOW,
        first_execution_run_id=prev.first_execution_run_id,
        attempt=1,
        identity=engine.identity,
        workflow_id=state.exe.workflow_id,
        header=a.header,
        # Unless the command gives its own, what the run's upserts left.
        memo=a.memo if a.HasField("memo") else state.memo,
        search_attributes=a.search_attributes
        if a.HasField("search_attributes")
        else state.search_attributes,
    )
    if prev.HasField("workflow_execution_timeout"):
        started.workflow_execution_timeout.CopyFrom(prev.workflow_execution_timeout)
    if prev.HasField("parent_workflow_execution"):
        # A child that continues as new is still its parent's child.
        started.parent_workflow_namespace = prev.parent_workflow_namespace
        started.parent_workflow_execution.CopyFrom(prev.parent_workflow_execution)
        started.parent_initiated_event_id = prev.parent_initiated_event_id
    if prev.HasField("root_workflow_execution"):
        started.root_workflow_execution.CopyFrom(prev.root_workflow_execution)
    if prev.HasField("workflow_execution_expiration_time"):
        started.workflow_execution_expiration_time.CopyFrom(prev.workflow_execution_expiration_time)
    if a.HasField("retry_policy"):
        started.retry_policy.CopyFrom(a.retry_policy)
    # As on Temporal, the command's cron schedule (which temporalio's workflows
    # never set): a cron run that continues as new leaves the cron chain.
    started.cron_schedule = a.cron_schedule
    if a.HasField("backoff_start_interval"):
        # The new run's first workflow task waits this long.
        started.first_workflow_task_backoff.CopyFrom(a.backoff_start_interval)
    new_tx = engine.create_run(state.exe.namespace, state.exe.workflow_id, started, tx.now)
    attrs = WorkflowExecutionContinuedAsNewEventAttributes(
        new_execution_run_id=new_tx.state.exe.run_id,
        workflow_type=started.workflow_type,
        task_queue=started.task_queue,
        input=a.input,
        workflow_run_timeout=started.workflow_run_timeout,
        workflow_task_timeout=started.workflow_task_timeout,
        workflow_task_completed_event_id=wft_id,
        initiator=ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_WORKFLOW,
        header=a.header,
    )
    if a.HasField("backoff_start_interval"):
        attrs.backoff_start_interval.CopyFrom(a.backoff_start_interval)
    engine.close_run(
        tx,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        attrs,
        S.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW,
    )
    tx.after_commit.append(lambda: engine.after_create_run(new_tx))
