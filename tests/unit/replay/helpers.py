"""Test helpers: build Temporal histories and play the server for a WorkflowInstance.

:class:`Run` drives a :class:`WorkflowInstance` like the engine will: it writes
the events a Temporal server writes for each command, lets tests add results
(activity completed, timer fired, signal ...) and hands the new events to the
instance at each workflow task.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import temporalio.workflow
from temporalio.api.command.v1 import Command
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import CommandType, EventType, RetryState, TimeoutType
from temporalio.api.failure.v1 import Failure, TimeoutFailureInfo
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.protocol.v1 import Message
from temporalio.api.sdk.v1 import WorkflowTaskCompletedMetadata
from temporalio.api.update.v1 import Acceptance, Request, Response
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from ablauf.replay import WorkflowInstance, WorkflowTaskOutcome
from ablauf.replay.history import COMMAND_EVENT_TYPES

CONVERTER = DataConverter.default
START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def payload(value: Any) -> Payload:
    """A value as a payload with the default converter."""
    return CONVERTER.payload_converter.to_payloads([value])[0]


def value(p: Payload) -> Any:
    """A payload's value with the default converter."""
    return CONVERTER.payload_converter.from_payloads([p])[0]


def kinds(commands: Sequence[Command]) -> list[str]:
    """Command types without the prefix, for readable assertions."""
    return [CommandType.Name(c.command_type)[len("COMMAND_TYPE_") :] for c in commands]


class HistoryBuilder:
    """Appends history events with increasing ids and times."""

    def __init__(self) -> None:
        self.events: list[HistoryEvent] = []
        self.now = START

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def add(self, event_type: int, attribute: str | None = None, **attrs: Any) -> HistoryEvent:
        event = HistoryEvent(event_id=len(self.events) + 1, event_type=event_type)  # type: ignore[arg-type]
        event.event_time.FromDatetime(self.now)
        if attribute is not None:
            target = getattr(event, attribute)
            target.SetInParent()
            for key, val in attrs.items():
                field = getattr(target, key)
                if hasattr(field, "CopyFrom") and not isinstance(val, (str, bytes)):
                    field.CopyFrom(val)
                else:
                    setattr(target, key, val)
        self.now += timedelta(milliseconds=1)
        return self._append(event)

    def _append(self, event: HistoryEvent) -> HistoryEvent:
        self.events.append(event)
        return event

    def last_id(self) -> int:
        return len(self.events)


class Run:
    """One workflow run: a history, a live instance and a fake Temporal server."""

    def __init__(
        self,
        workflow: type,
        *args: Any,
        workflow_id: str = "wf-id",
        run_id: str | None = None,
        task_queue: str = "tq",
        memo: dict[str, Any] | None = None,
        signals_before_start: Sequence[tuple[str, Sequence[Any]]] = (),
        failure_exception_types: Sequence[type[BaseException]] = (),
        attempt: int = 1,
    ) -> None:
        self.defn = temporalio.workflow._Definition.must_from_class(workflow)
        self.workflow_id = workflow_id
        self.run_id = run_id or str(uuid.UUID(int=0x1234))
        self.failure_exception_types = failure_exception_types
        self.history = HistoryBuilder()
        self.instance = self.new_instance()
        self.fed = 0
        self.outcomes: list[WorkflowTaskOutcome] = []
        started = self.history.add(
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
            "workflow_execution_started_event_attributes",
            original_execution_run_id=self.run_id,
            first_execution_run_id=self.run_id,
            attempt=attempt,
            identity="test",
        )
        attrs = started.workflow_execution_started_event_attributes
        attrs.workflow_type.name = self.defn.name or "Dynamic"
        attrs.task_queue.name = task_queue
        attrs.workflow_task_timeout.FromSeconds(10)
        if args:
            attrs.input.CopyFrom(Payloads(payloads=CONVERTER.payload_converter.to_payloads(args)))
        for key, val in (memo or {}).items():
            attrs.memo.fields[key].CopyFrom(payload(val))
        for name, signal_args in signals_before_start:
            self.signal(name, *signal_args)
        self.activities: dict[str, int] = {}  # activity id -> scheduled event id
        self.timers: dict[str, int] = {}  # timer id -> started event id
        self.children: dict[str, int] = {}  # child workflow id -> initiated event id
        self.child_types: dict[str, str] = {}
        self.signals_sent: list[int] = []  # initiated event ids of signals to other workflows
        self.cancels_sent: list[int] = []  # initiated event ids of cancel requests
        self.messages: dict[str, Message] = {}  # protocol messages of the last task, by id
        self.accepted: dict[str, int] = {}  # update id -> accepted event id

    def new_instance(self) -> WorkflowInstance:
        return WorkflowInstance(
            self.defn,
            namespace="default",
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            data_converter=CONVERTER,
            failure_exception_types=self.failure_exception_types,
        )

    # -- events from "outside" ------------------------------------------------------------------

    def signal(self, name: str, *args: Any) -> None:
        event = self.history.add(
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
            "workflow_execution_signaled_event_attributes",
            signal_name=name,
            identity="test",
        )
        if args:
            event.workflow_execution_signaled_event_attributes.input.payloads.extend(
                CONVERTER.payload_converter.to_payloads(args)
            )

    def request_cancel(self, reason: str = "") -> None:
        self.history.add(
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
            "workflow_execution_cancel_requested_event_attributes",
            cause=reason,
        )

    def start_activity(self, activity_id: str) -> int:
        return self.history.add(
            EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
            "activity_task_started_event_attributes",
            scheduled_event_id=self.activities[activity_id],
            attempt=1,
        ).event_id

    def complete_activity(
        self, activity_id: str, result: Any = None, *, start: bool = True
    ) -> None:
        scheduled = self.activities[activity_id]
        started = self.start_activity(activity_id) if start else scheduled + 1
        event = self.history.add(
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            "activity_task_completed_event_attributes",
            scheduled_event_id=self.activities[activity_id],
            started_event_id=started,
        )
        event.activity_task_completed_event_attributes.result.payloads.append(payload(result))

    def fail_activity(
        self,
        activity_id: str,
        error: BaseException,
        retry_state: int = RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE,
    ) -> None:
        started = self.start_activity(activity_id)
        failure = Failure()
        CONVERTER.failure_converter.to_failure(error, CONVERTER.payload_converter, failure)
        self.history.add(
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            "activity_task_failed_event_attributes",
            scheduled_event_id=self.activities[activity_id],
            started_event_id=started,
            failure=failure,
            retry_state=retry_state,
            identity="worker",
        )

    def time_out_activity(self, activity_id: str) -> None:
        failure = Failure(
            message="activity StartToClose timeout",
            timeout_failure_info=TimeoutFailureInfo(
                timeout_type=TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
            ),
        )
        started = self.start_activity(activity_id)
        self.history.add(
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            "activity_task_timed_out_event_attributes",
            scheduled_event_id=self.activities[activity_id],
            started_event_id=started,
            failure=failure,
            retry_state=RetryState.RETRY_STATE_TIMEOUT,
        )

    def cancel_activity(self, activity_id: str, *, start: bool = True) -> None:
        started_id = self.start_activity(activity_id) if start else 0
        self.history.add(
            EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
            "activity_task_canceled_event_attributes",
            scheduled_event_id=self.activities[activity_id],
            started_event_id=started_id,
        )

    def fire_timer(self, timer_id: str) -> None:
        self.history.add(
            EventType.EVENT_TYPE_TIMER_FIRED,
            "timer_fired_event_attributes",
            timer_id=timer_id,
            started_event_id=self.timers[timer_id],
        )

    def child_started(self, workflow_id: str, run_id: str = "child-run") -> None:
        event = self.history.add(
            EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED,
            "child_workflow_execution_started_event_attributes",
            namespace="default",
            initiated_event_id=self.children[workflow_id],
        )
        attrs = event.child_workflow_execution_started_event_attributes
        attrs.workflow_execution.workflow_id = workflow_id
        attrs.workflow_execution.run_id = run_id
        attrs.workflow_type.name = self.child_types[workflow_id]

    def child_start_failed(self, workflow_id: str) -> None:
        event = self.history.add(
            EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
            "start_child_workflow_execution_failed_event_attributes",
            namespace="default",
            workflow_id=workflow_id,
            cause=1,  # WORKFLOW_ALREADY_EXISTS
            initiated_event_id=self.children[workflow_id],
        )
        attrs = event.start_child_workflow_execution_failed_event_attributes
        attrs.workflow_type.name = self.child_types[workflow_id]

    def child_closed(self, workflow_id: str, kind: str, **attrs: Any) -> None:
        """``kind``: completed, failed, canceled, timed_out or terminated."""
        event_type = EventType.Value(f"EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_{kind.upper()}")
        event = self.history.add(
            event_type,
            f"child_workflow_execution_{kind}_event_attributes",
            namespace="default",
            initiated_event_id=self.children[workflow_id],
            started_event_id=self.children[workflow_id] + 1,
            **attrs,
        )
        closed = getattr(event, f"child_workflow_execution_{kind}_event_attributes")
        closed.workflow_execution.workflow_id = workflow_id
        closed.workflow_execution.run_id = "child-run"
        closed.workflow_type.name = self.child_types[workflow_id]

    def external_signaled(self, index: int = 0) -> None:
        self.history.add(
            EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
            "external_workflow_execution_signaled_event_attributes",
            namespace="default",
            initiated_event_id=self.signals_sent[index],
        )

    def external_signal_failed(self, index: int = 0) -> None:
        self.history.add(
            EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
            "signal_external_workflow_execution_failed_event_attributes",
            namespace="default",
            cause=1,  # EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND
            initiated_event_id=self.signals_sent[index],
        )

    def external_cancel_requested(self, index: int = 0) -> None:
        self.history.add(
            EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
            "external_workflow_execution_cancel_requested_event_attributes",
            namespace="default",
            initiated_event_id=self.cancels_sent[index],
        )

    # -- workflow tasks -------------------------------------------------------------------------

    def start_task(self) -> HistoryEvent:
        """Schedule and start a workflow task without answering it."""
        history = self.history
        history.add(
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            "workflow_task_scheduled_event_attributes",
            attempt=1,
        )
        started = history.add(
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            "workflow_task_started_event_attributes",
            scheduled_event_id=history.last_id(),
            history_size_bytes=100 * history.last_id(),
        )
        return started

    def update_request(self, name: str, *args: Any, update_id: str = "u1") -> Message:
        """An update request as the server delivers it with the next workflow task."""
        request = Request()
        request.meta.update_id = update_id
        request.meta.identity = "test"
        request.input.name = name
        if args:
            request.input.args.payloads.extend(CONVERTER.payload_converter.to_payloads(args))
        message = Message(
            id=f"{update_id}/request",
            protocol_instance_id=update_id,
            event_id=self.history.last_id() + 1,  # the task's WorkflowTaskScheduled
        )
        message.body.Pack(request)
        return message

    def task(self, messages: Sequence[Message] = ()) -> WorkflowTaskOutcome:
        """Schedule and start a workflow task, answer it, and record its commands."""
        history = self.history
        started = self.start_task()
        outcome = self.instance.activate(history.events[self.fed :], messages)
        self.fed = len(history.events)
        self.outcomes.append(outcome)
        if outcome.failure is not None:
            history.add(
                EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                "workflow_task_failed_event_attributes",
                scheduled_event_id=started.event_id - 1,
                started_event_id=started.event_id,
                failure=outcome.failure,
            )
            self.instance.close()
            self.instance = self.new_instance()
            self.fed = 0
            return outcome
        self.messages = {m.id: m for m in outcome.messages}
        self.record(outcome.commands, outcome.sdk_metadata, started.event_id)
        return outcome

    def record(
        self,
        commands: Sequence[Command],
        metadata: WorkflowTaskCompletedMetadata | None,
        started_id: int,
    ) -> None:
        """Write WorkflowTaskCompleted and the events of the commands, as the server does."""
        history = self.history
        completed = history.add(
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            "workflow_task_completed_event_attributes",
            scheduled_event_id=started_id - 1,
            started_event_id=started_id,
            identity="test",
        )
        if metadata is not None:
            completed.workflow_task_completed_event_attributes.sdk_metadata.CopyFrom(metadata)
        for command in commands:
            self._command_event(command, completed.event_id)

    def _command_event(self, command: Command, completed_id: int) -> None:
        kind = command.command_type
        add = self.history.add
        if kind == CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK:
            a = command.schedule_activity_task_command_attributes
            event = add(
                EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
                "activity_task_scheduled_event_attributes",
                activity_id=a.activity_id,
                activity_type=a.activity_type,
                task_queue=a.task_queue,
                input=a.input,
                workflow_task_completed_event_id=completed_id,
            )
            self.activities[a.activity_id] = event.event_id
        elif kind == CommandType.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK:
            a = command.request_cancel_activity_task_command_attributes
            add(
                EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
                "activity_task_cancel_requested_event_attributes",
                scheduled_event_id=a.scheduled_event_id,
                workflow_task_completed_event_id=completed_id,
            )
        elif kind == CommandType.COMMAND_TYPE_START_TIMER:
            a = command.start_timer_command_attributes
            event = add(
                EventType.EVENT_TYPE_TIMER_STARTED,
                "timer_started_event_attributes",
                timer_id=a.timer_id,
                start_to_fire_timeout=a.start_to_fire_timeout,
                workflow_task_completed_event_id=completed_id,
            )
            self.timers[a.timer_id] = event.event_id
        elif kind == CommandType.COMMAND_TYPE_CANCEL_TIMER:
            a = command.cancel_timer_command_attributes
            add(
                EventType.EVENT_TYPE_TIMER_CANCELED,
                "timer_canceled_event_attributes",
                timer_id=a.timer_id,
                started_event_id=self.timers[a.timer_id],
                workflow_task_completed_event_id=completed_id,
            )
        elif kind == CommandType.COMMAND_TYPE_RECORD_MARKER:
            a = command.record_marker_command_attributes
            event = add(
                EventType.EVENT_TYPE_MARKER_RECORDED,
                "marker_recorded_event_attributes",
                marker_name=a.marker_name,
                workflow_task_completed_event_id=completed_id,
            )
            for key, payloads in a.details.items():
                event.marker_recorded_event_attributes.details[key].CopyFrom(payloads)
        elif kind == CommandType.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            a = command.upsert_workflow_search_attributes_command_attributes
            add(
                EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
                "upsert_workflow_search_attributes_event_attributes",
                search_attributes=a.search_attributes,
                workflow_task_completed_event_id=completed_id,
            )
        elif kind == CommandType.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES:
            a = command.modify_workflow_properties_command_attributes
            add(
                EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
                "workflow_properties_modified_event_attributes",
                upserted_memo=a.upserted_memo,
                workflow_task_completed_event_id=completed_id,
            )
        elif kind == CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION:
            a = command.start_child_workflow_execution_command_attributes
            event = add(
                EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
                "start_child_workflow_execution_initiated_event_attributes",
                namespace=a.namespace,
                workflow_id=a.workflow_id,
                workflow_type=a.workflow_type,
                task_queue=a.task_queue,
                input=a.input,
                parent_close_policy=a.parent_close_policy,
                workflow_task_completed_event_id=completed_id,
            )
            self.children[a.workflow_id] = event.event_id
            self.child_types[a.workflow_id] = a.workflow_type.name
        elif kind == CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION:
            a = command.signal_external_workflow_execution_command_attributes
            event = add(
                EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
                "signal_external_workflow_execution_initiated_event_attributes",
                namespace=a.namespace,
                workflow_execution=a.execution,
                signal_name=a.signal_name,
                input=a.input,
                child_workflow_only=a.child_workflow_only,
                workflow_task_completed_event_id=completed_id,
            )
            self.signals_sent.append(event.event_id)
        elif kind == CommandType.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION:
            a = command.request_cancel_external_workflow_execution_command_attributes
            event = add(
                EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
                "request_cancel_external_workflow_execution_initiated_event_attributes",
                namespace=a.namespace,
                child_workflow_only=a.child_workflow_only,
                reason=a.reason,
                workflow_task_completed_event_id=completed_id,
            )
            attrs = event.request_cancel_external_workflow_execution_initiated_event_attributes
            attrs.workflow_execution.workflow_id = a.workflow_id
            attrs.workflow_execution.run_id = a.run_id
            self.cancels_sent.append(event.event_id)
        elif kind == CommandType.COMMAND_TYPE_PROTOCOL_MESSAGE:
            message = self.messages[command.protocol_message_command_attributes.message_id]
            acceptance, response = Acceptance(), Response()
            if message.body.Unpack(acceptance):
                event = add(
                    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
                    "workflow_execution_update_accepted_event_attributes",
                    protocol_instance_id=message.protocol_instance_id,
                    accepted_request_message_id=acceptance.accepted_request_message_id,
                    accepted_request_sequencing_event_id=acceptance.accepted_request_sequencing_event_id,
                    accepted_request=acceptance.accepted_request,
                )
                self.accepted[message.protocol_instance_id] = event.event_id
            else:
                assert message.body.Unpack(response)
                add(
                    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
                    "workflow_execution_update_completed_event_attributes",
                    meta=response.meta,
                    accepted_event_id=self.accepted[message.protocol_instance_id],
                    outcome=response.outcome,
                )
        elif kind == CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION:
            add(
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
                "workflow_execution_completed_event_attributes",
                result=command.complete_workflow_execution_command_attributes.result,
                workflow_task_completed_event_id=completed_id,
            )
        elif kind == CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION:
            add(
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
                "workflow_execution_failed_event_attributes",
                failure=command.fail_workflow_execution_command_attributes.failure,
                workflow_task_completed_event_id=completed_id,
            )
        elif kind == CommandType.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION:
            add(
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
                "workflow_execution_canceled_event_attributes",
                workflow_task_completed_event_id=completed_id,
            )
        elif kind == CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION:
            a = command.continue_as_new_workflow_execution_command_attributes
            add(
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
                "workflow_execution_continued_as_new_event_attributes",
                new_execution_run_id=str(uuid.UUID(int=0x5678)),
                workflow_type=a.workflow_type,
                task_queue=a.task_queue,
                input=a.input,
                workflow_task_completed_event_id=completed_id,
            )
        else:
            raise AssertionError(f"fake server cannot record {CommandType.Name(kind)}")

    # -- checks ---------------------------------------------------------------------------------

    def replay(self, events: Sequence[HistoryEvent] | None = None) -> WorkflowTaskOutcome:
        """Replay the history (or ``events``) in a fresh instance and close it."""
        instance = self.new_instance()
        try:
            return instance.activate(self.history.events if events is None else events)
        finally:
            instance.close()

    def workflow_history(self) -> WorkflowHistory:
        """The history in the form ``temporalio`` clients and replayers use."""
        return WorkflowHistory(self.workflow_id, list(self.history.events))

    def close(self) -> None:
        self.instance.close()


def app_error(
    message: str, *, type: str = "MyError", non_retryable: bool = True
) -> ApplicationError:
    return ApplicationError(message, {"detail": 1}, type=type, non_retryable=non_retryable)


def command_events(events: Sequence[HistoryEvent], started_index: int) -> list[HistoryEvent]:
    """The command events recorded for the task started at ``started_index``."""
    end = started_index + 2
    while end < len(events) and events[end].event_type in COMMAND_EVENT_TYPES:
        end += 1
    return list(events[started_index + 2 : end])


_EVENT_OF_COMMAND = {
    CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK: EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    CommandType.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK: (
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
    ),
    CommandType.COMMAND_TYPE_START_TIMER: EventType.EVENT_TYPE_TIMER_STARTED,
    CommandType.COMMAND_TYPE_CANCEL_TIMER: EventType.EVENT_TYPE_TIMER_CANCELED,
    CommandType.COMMAND_TYPE_RECORD_MARKER: EventType.EVENT_TYPE_MARKER_RECORDED,
    CommandType.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: (
        EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ),
    CommandType.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES: (
        EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED
    ),
    CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION: (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    ),
    CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION: (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    ),
    CommandType.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION: (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
    ),
    CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION: (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    ),
}


def assert_commands_match(commands: Sequence[Command], events: Sequence[HistoryEvent]) -> None:
    """Commands equal, field by field where the server copies them, the recorded events."""
    assert [_EVENT_OF_COMMAND[c.command_type] for c in commands] == [e.event_type for e in events]
    for command, event in zip(commands, events, strict=True):
        kind = command.command_type
        if kind == CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK:
            a = command.schedule_activity_task_command_attributes
            b = event.activity_task_scheduled_event_attributes
            assert (a.activity_id, a.activity_type, a.input) == (
                b.activity_id,
                b.activity_type,
                b.input,
            )
            assert a.task_queue.name == b.task_queue.name
            for timeout in ("start_to_close_timeout", "heartbeat_timeout"):
                if a.HasField(timeout):
                    assert getattr(a, timeout) == getattr(b, timeout)
        elif kind == CommandType.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK:
            assert (
                command.request_cancel_activity_task_command_attributes.scheduled_event_id
                == event.activity_task_cancel_requested_event_attributes.scheduled_event_id
            )
        elif kind == CommandType.COMMAND_TYPE_START_TIMER:
            a = command.start_timer_command_attributes
            b = event.timer_started_event_attributes
            assert (a.timer_id, a.start_to_fire_timeout) == (b.timer_id, b.start_to_fire_timeout)
        elif kind == CommandType.COMMAND_TYPE_CANCEL_TIMER:
            assert (
                command.cancel_timer_command_attributes.timer_id
                == event.timer_canceled_event_attributes.timer_id
            )
        elif kind == CommandType.COMMAND_TYPE_RECORD_MARKER:
            a = command.record_marker_command_attributes
            b = event.marker_recorded_event_attributes
            assert (a.marker_name, dict(a.details)) == (b.marker_name, dict(b.details))
        elif kind == CommandType.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            assert (
                command.upsert_workflow_search_attributes_command_attributes.search_attributes
                == event.upsert_workflow_search_attributes_event_attributes.search_attributes
            )
        elif kind == CommandType.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES:
            assert (
                command.modify_workflow_properties_command_attributes.upserted_memo
                == event.workflow_properties_modified_event_attributes.upserted_memo
            )
        elif kind == CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION:
            assert (
                command.complete_workflow_execution_command_attributes.result
                == event.workflow_execution_completed_event_attributes.result
            )
        elif kind == CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION:
            a_failure = command.fail_workflow_execution_command_attributes.failure
            b_failure = event.workflow_execution_failed_event_attributes.failure
            while True:
                assert a_failure.message == b_failure.message
                assert a_failure.WhichOneof("failure_info") == b_failure.WhichOneof("failure_info")
                if not b_failure.HasField("cause"):
                    break
                a_failure, b_failure = a_failure.cause, b_failure.cause
        elif kind == CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION:
            a = command.continue_as_new_workflow_execution_command_attributes
            b = event.workflow_execution_continued_as_new_event_attributes
            assert (a.input, a.workflow_type.name) == (b.input, b.workflow_type.name)


def check_history(workflow: type, history: WorkflowHistory) -> None:
    """Replay ``history`` task by task, fresh and sticky, asserting the recorded commands."""
    defn = temporalio.workflow._Definition.must_from_class(workflow)
    events = list(history.events)
    run_id = events[0].workflow_execution_started_event_attributes.original_execution_run_id

    def instance() -> WorkflowInstance:
        return WorkflowInstance(
            defn,
            namespace="default",
            workflow_id=history.workflow_id,
            run_id=run_id,
            data_converter=CONVERTER,
        )

    tasks = [
        i
        for i, e in enumerate(events[:-1])
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
        and events[i + 1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]
    assert tasks, "history has no completed workflow task"
    for index in tasks:
        fresh = instance()
        outcome = fresh.activate(events[: index + 1])
        fresh.close()
        assert outcome.failure is None, outcome.failure.message
        assert_commands_match(outcome.commands, command_events(events, index))
    sticky = instance()
    fed = 0
    for index in tasks:
        outcome = sticky.activate(events[fed : index + 1])
        fed = index + 1
        assert outcome.failure is None, outcome.failure.message
        assert_commands_match(outcome.commands, command_events(events, index))
    assert sticky.activate(events[fed:]).failure is None
    assert sticky.last_event_id == events[-1].event_id
    sticky.close()
    whole = instance()
    outcome = whole.activate(events)
    whole.close()
    assert outcome.failure is None and outcome.commands == []
