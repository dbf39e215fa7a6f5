"""Reading and writing Temporal history the way sdk-core does.

Classifies events, extracts what the runtime needs from them (workflow info,
patch markers, the randomness seed, the ``sdk_metadata`` flags of completed
tasks) and builds the failures sdk-core hands to workflow code, so workflows
see exactly what they would see on Temporal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Final

import temporalio
import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import CommandType, EventType, RetryState
from temporalio.api.failure.v1 import (
    ActivityFailureInfo,
    ApplicationFailureInfo,
    CanceledFailureInfo,
    Failure,
)
from temporalio.api.history.v1 import (
    HistoryEvent,
    WorkflowExecutionStartedEventAttributes,
    WorkflowTaskCompletedEventAttributes,
)
from temporalio.api.sdk.v1 import WorkflowTaskCompletedMetadata

from ablauf.history import catalog

__all__ = [
    "COMMAND_EVENT_TYPES",
    "PATCH_MARKER_NAME",
    "VERSION_SEARCH_ATTRIBUTE",
    "C",
    "CoreFlag",
    "E",
    "InternalFlags",
    "activity_cancelled_failure",
    "activity_failed_failure",
    "activity_timed_out_failure",
    "describe_event",
    "nondeterminism_failure",
    "patch_marker_details",
    "patch_marker_payloads",
    "randomness_seed",
    "workflow_info",
]

PATCH_MARKER_NAME: Final = "core_patch"
"""Marker name sdk-core records for ``workflow.patched``."""

VERSION_SEARCH_ATTRIBUTE: Final = "TemporalChangeVersion"
"""Search attribute sdk-core upserts with every patch id the run has used."""

_PATCH_DETAILS_KEY: Final = "patch-data"


class E:
    """Event types as plain ints; protobuf enum attribute lookups are slow in hot loops."""

    CHILD_WORKFLOW_EXECUTION_CANCELED: Final = int(
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED
    )
    CHILD_WORKFLOW_EXECUTION_COMPLETED: Final = int(
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED
    )
    CHILD_WORKFLOW_EXECUTION_FAILED: Final = int(
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED
    )
    CHILD_WORKFLOW_EXECUTION_STARTED: Final = int(
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
    )
    CHILD_WORKFLOW_EXECUTION_TERMINATED: Final = int(
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED
    )
    CHILD_WORKFLOW_EXECUTION_TIMED_OUT: Final = int(
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT
    )
    EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED: Final = int(
        EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED
    )
    EXTERNAL_WORKFLOW_EXECUTION_SIGNALED: Final = int(
        EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED
    )
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED: Final = int(
        EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
    )
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED: Final = int(
        EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
    )
    START_CHILD_WORKFLOW_EXECUTION_FAILED: Final = int(
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED
    )
    ACTIVITY_PROPERTIES_MODIFIED_EXTERNALLY: Final = int(
        EventType.EVENT_TYPE_ACTIVITY_PROPERTIES_MODIFIED_EXTERNALLY
    )
    ACTIVITY_TASK_CANCELED: Final = int(EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED)
    ACTIVITY_TASK_CANCEL_REQUESTED: Final = int(EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED)
    ACTIVITY_TASK_COMPLETED: Final = int(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
    ACTIVITY_TASK_FAILED: Final = int(EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
    ACTIVITY_TASK_SCHEDULED: Final = int(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    ACTIVITY_TASK_STARTED: Final = int(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    ACTIVITY_TASK_TIMED_OUT: Final = int(EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT)
    MARKER_RECORDED: Final = int(EventType.EVENT_TYPE_MARKER_RECORDED)
    NEXUS_OPERATION_CANCEL_REQUESTED: Final = int(
        EventType.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED
    )
    NEXUS_OPERATION_SCHEDULED: Final = int(EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED)
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: Final = int(
        EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    )
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: Final = int(
        EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    )
    START_CHILD_WORKFLOW_EXECUTION_INITIATED: Final = int(
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    )
    TIMER_CANCELED: Final = int(EventType.EVENT_TYPE_TIMER_CANCELED)
    TIMER_FIRED: Final = int(EventType.EVENT_TYPE_TIMER_FIRED)
    TIMER_STARTED: Final = int(EventType.EVENT_TYPE_TIMER_STARTED)
    UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: Final = int(
        EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    )
    WORKFLOW_EXECUTION_CANCELED: Final = int(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED)
    WORKFLOW_EXECUTION_CANCEL_REQUESTED: Final = int(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED
    )
    WORKFLOW_EXECUTION_COMPLETED: Final = int(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)
    WORKFLOW_EXECUTION_CONTINUED_AS_NEW: Final = int(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    )
    WORKFLOW_EXECUTION_FAILED: Final = int(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED)
    WORKFLOW_EXECUTION_OPTIONS_UPDATED: Final = int(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED
    )
    WORKFLOW_EXECUTION_PAUSED: Final = int(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_PAUSED)
    WORKFLOW_EXECUTION_SIGNALED: Final = int(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    WORKFLOW_EXECUTION_STARTED: Final = int(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    WORKFLOW_EXECUTION_TERMINATED: Final = int(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED)
    WORKFLOW_EXECUTION_TIMED_OUT: Final = int(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT)
    WORKFLOW_EXECUTION_TIME_SKIPPING_TRANSITIONED: Final = int(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIME_SKIPPING_TRANSITIONED
    )
    WORKFLOW_EXECUTION_UNPAUSED: Final = int(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UNPAUSED)
    WORKFLOW_EXECUTION_UPDATE_ACCEPTED: Final = int(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )
    WORKFLOW_EXECUTION_UPDATE_COMPLETED: Final = int(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
    )
    WORKFLOW_EXECUTION_UPDATE_REJECTED: Final = int(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED
    )
    WORKFLOW_PROPERTIES_MODIFIED: Final = int(EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED)
    WORKFLOW_PROPERTIES_MODIFIED_EXTERNALLY: Final = int(
        EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED_EXTERNALLY
    )
    WORKFLOW_TASK_COMPLETED: Final = int(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    WORKFLOW_TASK_FAILED: Final = int(EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    WORKFLOW_TASK_SCHEDULED: Final = int(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)
    WORKFLOW_TASK_STARTED: Final = int(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
    WORKFLOW_TASK_TIMED_OUT: Final = int(EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT)


class C:
    """Command types as plain ints, for the same reason as :class:`E`."""

    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION: Final = int(
        CommandType.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION
    )
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION: Final = int(
        CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION
    )
    START_CHILD_WORKFLOW_EXECUTION: Final = int(
        CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION
    )
    PROTOCOL_MESSAGE: Final = int(CommandType.COMMAND_TYPE_PROTOCOL_MESSAGE)
    CANCEL_TIMER: Final = int(CommandType.COMMAND_TYPE_CANCEL_TIMER)
    CANCEL_WORKFLOW_EXECUTION: Final = int(CommandType.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION)
    COMPLETE_WORKFLOW_EXECUTION: Final = int(CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION)
    CONTINUE_AS_NEW_WORKFLOW_EXECUTION: Final = int(
        CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION
    )
    FAIL_WORKFLOW_EXECUTION: Final = int(CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION)
    MODIFY_WORKFLOW_PROPERTIES: Final = int(CommandType.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES)
    RECORD_MARKER: Final = int(CommandType.COMMAND_TYPE_RECORD_MARKER)
    REQUEST_CANCEL_ACTIVITY_TASK: Final = int(CommandType.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK)
    SCHEDULE_ACTIVITY_TASK: Final = int(CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK)
    START_TIMER: Final = int(CommandType.COMMAND_TYPE_START_TIMER)
    UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: Final = int(
        CommandType.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    )


COMMAND_EVENT_TYPES: Final = catalog.COMMAND_EVENT_TYPES
"""Events the server writes for commands of a completed workflow task."""


# --- sdk_metadata flags ------------------------------------------------------------------------


class CoreFlag(IntEnum):
    """sdk-core's internal flags; ablauf follows all of them on new workflow tasks."""

    ID_AND_TYPE_DETERMINISM_CHECKS = 1
    UPSERT_SEARCH_ATTRIBUTE_ON_PATCH = 2
    MOVE_TERMINAL_COMMANDS = 3
    IMPROVED_HEARTBEAT_HEURISTIC = 4


SDK_NAME: Final = "temporal-python"
# Lang flag numbers are temporal-python's, so ablauf histories name that SDK.
SDK_VERSION: Final = temporalio.__version__


_ALL_CORE_FLAGS: Final = frozenset(CoreFlag)


@dataclass(slots=True)
class InternalFlags:
    """Flags recorded in WorkflowTaskCompleted ``sdk_metadata``, as sdk-core keeps them.

    A flag changes how commands are produced; replaying, a flag applies only if
    the history says the original task used it.
    """

    core: set[int] = field(default_factory=set)
    lang: set[int] = field(default_factory=set)
    core_used: set[int] = field(default_factory=set)
    lang_used: set[int] = field(default_factory=set)
    sdk_name: str = ""
    sdk_version: str = ""

    def add_from_completed(self, attrs: WorkflowTaskCompletedEventAttributes) -> None:
        """Learn the flags a recorded workflow task used."""
        metadata = attrs.sdk_metadata
        self.core.update(metadata.core_used_flags)
        self.lang.update(metadata.lang_used_flags)
        if metadata.sdk_name:
            self.sdk_name = metadata.sdk_name
        if metadata.sdk_version:
            self.sdk_version = metadata.sdk_version

    def try_use_core(self, flag: CoreFlag, record: bool) -> bool:
        """Whether ``flag`` applies; ``record`` (on new tasks) means yes and note it."""
        if record:
            self.core_used.add(flag)
            return True
        return flag in self.core

    def use_lang(self, flag: int) -> None:
        """Note that workflow code relied on a temporal-python flag in a new task."""
        self.lang_used.add(flag)

    def gather(self) -> WorkflowTaskCompletedMetadata:
        """Metadata for the completion of a new task: newly used flags and SDK identity."""
        if (
            self.sdk_version == SDK_VERSION
            and self.sdk_name == SDK_NAME
            and self.core >= _ALL_CORE_FLAGS
            and self.core_used <= self.core
            and self.lang_used <= self.lang
        ):
            # Every task after the first: nothing new to record.
            self.core_used.clear()
            self.lang_used.clear()
            return WorkflowTaskCompletedMetadata()
        self.core_used.update(_ALL_CORE_FLAGS)
        metadata = WorkflowTaskCompletedMetadata(
            core_used_flags=sorted(self.core_used - self.core),
            lang_used_flags=sorted(self.lang_used - self.lang),
        )
        if self.sdk_name != SDK_NAME:
            metadata.sdk_name = self.sdk_name = SDK_NAME
        if self.sdk_version != SDK_VERSION:
            metadata.sdk_version = self.sdk_version = SDK_VERSION
        self.core |= self.core_used
        self.lang |= self.lang_used
        self.core_used.clear()
        self.lang_used.clear()
        return metadata


def event_type_name(event_type: int) -> str:
    """``EVENT_TYPE_TIMER_FIRED`` -> ``TimerFired``, as sdk-core prints event types."""
    try:
        name = EventType.Name(event_type)  # type: ignore[arg-type]
    except ValueError:
        return f"EventType({event_type})"
    return "".join(part.capitalize() for part in name[len("EVENT_TYPE_") :].split("_"))


def enum_label(enum_name: str, value: int) -> str:
    """``ENUM_NAME_SOME_VALUE`` of a Temporal enum as ``SomeValue``, as sdk-core prints it."""
    import temporalio.api.enums.v1 as enums

    enum = getattr(enums, enum_name)
    try:
        name: str = enum.Name(value)
    except ValueError:
        return str(value)
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"
    name = name.removeprefix(prefix)
    return "".join(part.capitalize() for part in name.split("_"))


def describe_event(event: HistoryEvent) -> str:
    """Short description used in nondeterminism messages, worded like sdk-core's."""
    return f"HistoryEvent(id: {event.event_id}, {event_type_name(event.event_type)})"


def nondeterminism_failure(message: str) -> Failure:
    """The task failure sdk-core reports when replay does not match history."""
    return Failure(
        message=f"[TMPRL1100] Nondeterminism error: {message}",
        application_failure_info=ApplicationFailureInfo(),
    )


def randomness_seed(run_id: str) -> int:
    """Seed of ``workflow.random()``, equal to sdk-core's for the same run.

    sdk-core hashes the run id with SipHash-1-3 (zero key) the way Rust hashes a
    ``str``: its UTF-8 bytes followed by ``0xff``. Matching it means a workflow
    draws the same numbers and UUIDs on ablauf as on Temporal.
    """
    return _siphash13(run_id.encode() + b"\xff")


_MASK: Final = 0xFFFFFFFFFFFFFFFF


def _siphash13(data: bytes) -> int:
    v0, v1 = 0x736F6D6570736575, 0x646F72616E646F6D
    v2, v3 = 0x6C7967656E657261, 0x7465646279746573

    def rounds(count: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(count):
            v0 = (v0 + v1) & _MASK
            v1 = ((v1 << 13) | (v1 >> 51)) & _MASK ^ v0
            v0 = ((v0 << 32) | (v0 >> 32)) & _MASK
            v2 = (v2 + v3) & _MASK
            v3 = ((v3 << 16) | (v3 >> 48)) & _MASK ^ v2
            v0 = (v0 + v3) & _MASK
            v3 = ((v3 << 21) | (v3 >> 43)) & _MASK ^ v0
            v2 = (v2 + v1) & _MASK
            v1 = ((v1 << 17) | (v1 >> 47)) & _MASK ^ v2
            v2 = ((v2 << 32) | (v2 >> 32)) & _MASK

    length = len(data)
    whole = length - length % 8
    for offset in range(0, whole, 8):
        word = int.from_bytes(data[offset : offset + 8], "little")
        v3 ^= word
        rounds(1)
        v0 ^= word
    last = int.from_bytes(data[whole:], "little") | ((length & 0xFF) << 56)
    v3 ^= last
    rounds(1)
    v0 ^= last
    v2 ^= 0xFF
    rounds(3)
    return v0 ^ v1 ^ v2 ^ v3


def patch_marker_details(event: HistoryEvent) -> tuple[str, bool] | None:
    """``(patch_id, deprecated)`` if ``event`` is a patch marker, else None."""
    if event.event_type != E.MARKER_RECORDED:
        return None
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != PATCH_MARKER_NAME:
        return None
    payloads = attrs.details.get(_PATCH_DETAILS_KEY)
    if payloads is None or not payloads.payloads:
        return None
    try:
        data = json.loads(payloads.payloads[0].data)
        return str(data["id"]), bool(data.get("deprecated", False))
    except (ValueError, KeyError, TypeError):
        return None


def patch_marker_payloads(patch_id: str, deprecated: bool) -> dict[str, Payloads]:
    """Marker details for a patch, byte for byte what sdk-core records."""
    data = json.dumps({"id": patch_id, "deprecated": deprecated}, separators=(",", ":"))
    payload = Payload(metadata={"encoding": b"json/plain"}, data=data.encode())
    return {_PATCH_DETAILS_KEY: Payloads(payloads=[payload])}


def patch_search_attribute(patch_ids: list[str]) -> Payload:
    """The ``TemporalChangeVersion`` value sdk-core upserts alongside patch markers."""
    data = json.dumps(patch_ids, separators=(",", ":")).encode()
    return Payload(metadata={"encoding": b"json/plain", "type": b"KeywordList"}, data=data)


def _activity_info(
    activity_id: str, activity_type: str, scheduled_event_id: int, started_event_id: int
) -> ActivityFailureInfo:
    info = ActivityFailureInfo(
        scheduled_event_id=scheduled_event_id,
        started_event_id=started_event_id,
        activity_id=activity_id,
    )
    info.activity_type.name = activity_type
    return info


def activity_failed_failure(event: HistoryEvent, activity_id: str, activity_type: str) -> Failure:
    """Failure for ActivityTaskFailed: the event's failure wrapped in activity info."""
    attrs = event.activity_task_failed_event_attributes
    info = _activity_info(
        activity_id, activity_type, attrs.scheduled_event_id, attrs.started_event_id
    )
    info.identity = attrs.identity
    info.retry_state = attrs.retry_state
    failure = Failure(message="Activity task failed", activity_failure_info=info)
    if attrs.HasField("failure"):
        failure.cause.CopyFrom(attrs.failure)
    return failure


def activity_timed_out_failure(
    event: HistoryEvent, activity_id: str, activity_type: str
) -> Failure:
    """Failure for ActivityTaskTimedOut: the timeout wrapped in activity info."""
    attrs = event.activity_task_timed_out_event_attributes
    info = _activity_info(
        activity_id, activity_type, attrs.scheduled_event_id, attrs.started_event_id
    )
    info.retry_state = attrs.retry_state
    failure = Failure(message="Activity task timed out", activity_failure_info=info)
    if attrs.HasField("failure"):
        failure.cause.CopyFrom(attrs.failure)
    return failure


def activity_cancelled_failure(
    activity_id: str,
    activity_type: str,
    scheduled_event_id: int,
    started_event_id: int,
    details: Payloads | None = None,
) -> Failure:
    """Failure for a cancelled activity, with a CanceledFailure cause."""
    info = _activity_info(activity_id, activity_type, scheduled_event_id, started_event_id)
    info.retry_state = RetryState.RETRY_STATE_CANCEL_REQUESTED
    cause = Failure(canceled_failure_info=CanceledFailureInfo())
    if details is not None and details.payloads:
        cause.canceled_failure_info.details.CopyFrom(details)
    return Failure(message="Activity cancelled", cause=cause, activity_failure_info=info)


def workflow_info(
    attrs: WorkflowExecutionStartedEventAttributes,
    *,
    namespace: str,
    workflow_id: str,
    run_id: str,
    start_event_time: datetime,
    first_task_time: datetime,
) -> temporalio.workflow.Info:
    """Build ``workflow.info()`` from the WorkflowExecutionStarted event."""
    parent: temporalio.workflow.ParentInfo | None = None
    if attrs.HasField("parent_workflow_execution"):
        parent = temporalio.workflow.ParentInfo(
            namespace=attrs.parent_workflow_namespace,
            run_id=attrs.parent_workflow_execution.run_id,
            workflow_id=attrs.parent_workflow_execution.workflow_id,
        )
    root: temporalio.workflow.RootInfo | None = None
    if attrs.HasField("root_workflow_execution"):
        root = temporalio.workflow.RootInfo(
            run_id=attrs.root_workflow_execution.run_id,
            workflow_id=attrs.root_workflow_execution.workflow_id,
        )
    headers: Mapping[str, Payload] = dict(attrs.header.fields)
    return temporalio.workflow.Info(
        attempt=attrs.attempt or 1,
        continued_run_id=attrs.continued_execution_run_id or None,
        cron_schedule=attrs.cron_schedule or None,
        # Like temporalio: a timeout present in the event counts, even a zero one.
        execution_timeout=(
            attrs.workflow_execution_timeout.ToTimedelta()
            if attrs.HasField("workflow_execution_timeout")
            else None
        ),
        first_execution_run_id=attrs.first_execution_run_id or run_id,
        headers=headers,
        namespace=namespace,
        original_execution_run_id=attrs.original_execution_run_id or run_id,
        parent=parent,
        root=root,
        priority=temporalio.common.Priority._from_proto(attrs.priority),
        raw_memo=dict(attrs.memo.fields),
        retry_policy=(
            temporalio.common.RetryPolicy.from_proto(attrs.retry_policy)
            if attrs.HasField("retry_policy")
            else None
        ),
        run_id=run_id,
        run_timeout=(
            attrs.workflow_run_timeout.ToTimedelta()
            if attrs.HasField("workflow_run_timeout")
            else None
        ),
        search_attributes=temporalio.converter.decode_search_attributes(attrs.search_attributes),
        start_time=first_task_time,
        task_queue=attrs.task_queue.name,
        task_timeout=attrs.workflow_task_timeout.ToTimedelta(),
        typed_search_attributes=temporalio.converter.decode_typed_search_attributes(
            attrs.search_attributes
        ),
        workflow_id=workflow_id,
        workflow_start_time=start_event_time,
        workflow_type=attrs.workflow_type.name,
    )


def event_datetime(event: HistoryEvent) -> datetime:
    """The event's time as an aware UTC datetime."""
    return event.event_time.ToDatetime(tzinfo=UTC)
