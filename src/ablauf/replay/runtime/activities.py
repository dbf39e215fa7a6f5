"""Activities: scheduling, cancelling and resolving them.

``workflow.start_activity`` becomes a ScheduleActivityTask command and an
:class:`~ablauf.replay.handles.ActivityHandle`; a ResolveActivity job settles
the handle. ``workflow.start_local_activity`` becomes a request the worker
runs within the task (and a marker once it is resolved) and a
:class:`~ablauf.replay.handles.LocalActivityHandle`. :class:`Activities` is the
handles' :class:`ActivityOwner`; activities and local activities share one
sequence of numbers, as in temporalio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import temporalio.activity
import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.api.command.v1 import ScheduleActivityTaskCommandAttributes
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import TaskQueueKind

from ablauf.payloads import payloads_field, to_payloads
from ablauf.replay.commands import CommandMachines
from ablauf.replay.handles import ActivityHandle, LocalActivityHandle
from ablauf.replay.history import InternalFlags
from ablauf.replay.machines import LocalActivityRequest, LocalBackoff, ResolveActivity
from ablauf.replay.runtime.context import RunContext, add_markers, markers
from ablauf.serialization import ignores_context, with_context

if TYPE_CHECKING:
    from temporalio.workflow import ActivityCancellationType, EventGroup, VersioningIntent

    from ablauf.replay.loop import WorkflowEventLoop

__all__ = ["Activities"]

_NORMAL_QUEUE: Final = TaskQueueKind.TASK_QUEUE_KIND_NORMAL
# Its proto is empty: commands only mark the field present, as the SDK does.
_DEFAULT_PRIORITY: Final = temporalio.common.Priority.default
# sdk-core's default: retries waiting longer than this wait on a durable timer.
_LOCAL_RETRY_THRESHOLD: Final = timedelta(minutes=1)


class Activities:
    """Pending activities by sequence number."""

    def __init__(
        self, context: RunContext, machines: CommandMachines, flags: InternalFlags
    ) -> None:
        self._context = context
        self._machines = machines
        self._flags = flags
        self._seq = 0
        self._pending: dict[int, ActivityHandle] = {}

    # -- what the handles read (ActivityOwner) -----------------------------------------------

    @property
    def loop(self) -> WorkflowEventLoop:
        """The run's event loop."""
        return self._context.loop

    @property
    def evicting(self) -> bool:
        """Whether the instance is being torn down."""
        return self._context.evicting

    @property
    def replaying(self) -> bool:
        """Whether the current task replays history."""
        return self._context.replaying

    def check_may_schedule(self, action: str, *, during_eviction: bool = False) -> None:
        """Raise if workflow code may not produce work now."""
        self._context.check_may_schedule(action, during_eviction=during_eviction)

    def lang_flag_in_history(self, flag: int) -> bool:
        """Whether the replayed task recorded a temporal-python flag."""
        return flag in self._flags.lang

    def use_lang_flag(self, flag: int) -> None:
        """Record that a new task relied on a temporal-python flag."""
        if not self._context.replaying:
            self._flags.use_lang(flag)

    # -- operations ----------------------------------------------------------------------------

    def start(
        self,
        activity: Any,
        args: Sequence[Any],
        *,
        task_queue: str | None,
        result_type: type | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        heartbeat_timeout: timedelta | None,
        retry_policy: temporalio.common.RetryPolicy | None,
        cancellation_type: ActivityCancellationType,
        activity_id: str | None,
        versioning_intent: VersioningIntent | None,
        summary: str | None,
        event_groups: Sequence[EventGroup] | None,
        priority: temporalio.common.Priority,
        headers: Mapping[str, Payload] | None = None,
    ) -> ActivityHandle:
        """``workflow.start_activity``: the command and the handle that resolves with it."""
        run = self._context
        run.check_may_schedule("start activity")
        name, result_type = _activity_name(activity, result_type)
        if not start_to_close_timeout and not schedule_to_close_timeout:
            raise ValueError(
                "Activity must have start_to_close_timeout or schedule_to_close_timeout"
            )
        command_markers = markers(event_groups)
        self._seq = seq = self._seq + 1
        activity_id = activity_id or str(seq)
        queue = task_queue or run.task_queue
        converter = run.base_payload_converter
        context = None
        if not (ignores_context(converter) and ignores_context(run.base_failure_converter)):
            context = temporalio.converter.ActivitySerializationContext(
                namespace=run.namespace,
                workflow_id=run.workflow_id,
                workflow_type=run.workflow_type,
                activity_type=name,
                activity_id=activity_id,
                activity_task_queue=queue,
                is_local=False,
            )
            converter = with_context(converter, context)
        handle = ActivityHandle(self, seq, name, result_type, context, converter)
        handle.set_name(f"activity: {name}")
        # Convert before making the command so a conversion error leaves none behind.
        # Plain values come serialized: the input field is merged with the options.
        payloads = None
        data = payloads_field(converter, args, _INPUT_FIELD) if args else b""
        if data is None:
            payloads = to_payloads(converter, args)
            data = b""
        summary_payload = converter.to_payload(summary) if summary else None
        machine, command = self._machines.schedule_activity(
            seq, activity_id, name, int(cancellation_type)
        )
        handle.machine = machine
        attrs = command.schedule_activity_task_command_attributes
        # sdk-core asks to stay on compatible workers when the queue is the workflow's.
        same_build = versioning_intent is None and queue == run.task_queue
        key = (
            name,
            queue,
            schedule_to_close_timeout,
            schedule_to_start_timeout,
            start_to_close_timeout,
            heartbeat_timeout,
            same_build,
        )
        if retry_policy is None and priority is _DEFAULT_PRIORITY:
            # The options of most calls repeat: filled in once, then merged.
            options = _activity_options.get(key)
            if options is None:
                if len(_activity_options) >= _ACTIVITY_OPTIONS_KEPT:
                    _activity_options.clear()
                filled = ScheduleActivityTaskCommandAttributes()
                _fill_activity_options(filled, *key, None, priority)
                options = _activity_options[key] = filled.SerializeToString()
            attrs.MergeFromString(options + data)
        else:
            _fill_activity_options(attrs, *key, retry_policy, priority)
            if data:
                attrs.MergeFromString(data)
        attrs.activity_id = activity_id
        if payloads:
            attrs.input.payloads.extend(payloads)
        if summary_payload is not None:
            command.user_metadata.summary.CopyFrom(summary_payload)
        if headers:
            fields = attrs.header.fields
            for header, payload in headers.items():
                fields[header].CopyFrom(payload)
        add_markers(command, command_markers)
        self._pending[seq] = handle
        return handle

    def start_local(
        self,
        activity: Any,
        args: Sequence[Any],
        *,
        result_type: type | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        retry_policy: temporalio.common.RetryPolicy | None,
        local_retry_threshold: timedelta | None,
        cancellation_type: ActivityCancellationType,
        activity_id: str | None,
        summary: str | None,
        headers: Mapping[str, Payload] | None = None,
    ) -> ActivityHandle:
        """``workflow.start_local_activity``: a request for the worker and its handle."""
        run = self._context
        run.check_may_schedule("start local activity")
        name, result_type = _activity_name(activity, result_type)
        if not start_to_close_timeout and not schedule_to_close_timeout:
            raise ValueError(
                "Activity must have start_to_close_timeout or schedule_to_close_timeout"
            )
        self._seq = seq = self._seq + 1
        converter = run.base_payload_converter
        context = None
        if not (ignores_context(converter) and ignores_context(run.base_failure_converter)):
            context = temporalio.converter.ActivitySerializationContext(
                namespace=run.namespace,
                workflow_id=run.workflow_id,
                workflow_type=run.workflow_type,
                activity_type=name,
                activity_id=activity_id or str(seq),
                activity_task_queue=run.task_queue,
                is_local=True,
            )
            converter = with_context(converter, context)
        handle = LocalActivityHandle(self, seq, name, result_type, context, converter)
        handle.set_name(f"activity: {name}")
        request = LocalActivityRequest(
            seq=seq,
            activity_id=activity_id or str(seq),
            activity_type=name,
            # Converted before the machine exists, so a conversion error leaves none.
            input=to_payloads(converter, args) if args else [],
            headers=dict(headers) if headers else {},
            schedule_to_close_timeout=schedule_to_close_timeout,
            schedule_to_start_timeout=schedule_to_start_timeout,
            start_to_close_timeout=start_to_close_timeout,
            retry_policy=retry_policy,
            local_retry_threshold=local_retry_threshold or _LOCAL_RETRY_THRESHOLD,
            cancellation_type=int(cancellation_type),
            summary=converter.to_payload(summary) if summary else None,
        )
        handle.explicit_id = activity_id
        handle.local_machine = self._machines.schedule_local_activity(request)
        self._pending[seq] = handle
        return handle

    def retry_local_activity(self, handle: LocalActivityHandle, backoff: LocalBackoff) -> None:
        """Ask for a local activity again, after its backoff timer fired."""
        self._context.check_may_schedule("start local activity")
        previous = handle.local_machine
        assert previous is not None
        old = previous.request
        seq = handle.seq
        request = LocalActivityRequest(
            seq=seq,
            activity_id=handle.explicit_id or str(seq),
            activity_type=old.activity_type,
            input=old.input,
            headers=old.headers,
            schedule_to_close_timeout=old.schedule_to_close_timeout,
            schedule_to_start_timeout=old.schedule_to_start_timeout,
            start_to_close_timeout=old.start_to_close_timeout,
            retry_policy=old.retry_policy,
            local_retry_threshold=old.local_retry_threshold,
            cancellation_type=old.cancellation_type,
            attempt=backoff.attempt,
            original_schedule_time_ns=backoff.original_schedule_time_ns,
            summary=old.summary,
        )
        handle.local_machine = self._machines.schedule_local_activity(request)
        self._pending[seq] = handle

    def request_cancel_activity(self, handle: ActivityHandle) -> None:
        """Send the activity's cancellation (or drop its unsent command)."""
        self._context.check_may_schedule("add command")
        if handle.machine is not None:
            self._machines.cancel_activity(handle.machine)
        elif isinstance(handle, LocalActivityHandle) and handle.local_machine is not None:
            self._machines.cancel_local_activity(handle.local_machine)

    def resolve(self, job: ResolveActivity) -> None:
        """The activity completed, failed, timed out or was cancelled."""
        handle = self._pending.pop(job.seq, None)
        if handle is None:
            raise RuntimeError(f"Failed finding activity handle for sequence {job.seq}")
        if job.backoff is not None:
            assert isinstance(handle, LocalActivityHandle)
            self._seq = seq = self._seq + 1
            handle.resolve_backoff(job.backoff, seq)
            return
        converter = handle.payload_converter
        if job.failure is None:
            value = None
            if job.result is not None:
                types = [handle.result_type] if handle.result_type else None
                value = self._context.convert([job.result], types, converter)[0]
            handle.resolve_success(value)
            return
        failure_converter = self._context.base_failure_converter
        if handle.context is not None:
            failure_converter = with_context(failure_converter, handle.context)
        handle.resolve_failure(failure_converter.from_failure(job.failure, converter))


def _activity_name(activity: Any, result_type: type | None) -> tuple[str, type | None]:
    """The activity type ``activity`` names, and the result type to convert to."""
    if isinstance(activity, str):
        return activity, result_type
    if callable(activity):
        # Read as the SDK does, without its per-call copy of the definition.
        defn = getattr(activity, "__temporal_activity_definition", None)
        if not isinstance(defn, temporalio.activity._Definition):
            defn = temporalio.activity._Definition.must_from_callable(activity)
        if not defn.name:
            raise ValueError("Cannot invoke dynamic activity explicitly")
        return defn.name, defn.ret_type
    raise TypeError("Activity must be a string or callable")


# Serialized activity options by what they are made of (see Activities.start).
_INPUT_FIELD: Final = ScheduleActivityTaskCommandAttributes.DESCRIPTOR.fields_by_name[
    "input"
].number
_activity_options: dict[tuple[object, ...], bytes] = {}
_ACTIVITY_OPTIONS_KEPT = 256


def _fill_activity_options(
    attrs: ScheduleActivityTaskCommandAttributes,
    name: str,
    queue: str,
    schedule_to_close_timeout: timedelta | None,
    schedule_to_start_timeout: timedelta | None,
    start_to_close_timeout: timedelta | None,
    heartbeat_timeout: timedelta | None,
    same_build: bool,
    retry_policy: temporalio.common.RetryPolicy | None,
    priority: temporalio.common.Priority,
) -> None:
    """Fills in a schedule-activity command's fields but its id and input."""
    attrs.activity_type.name = name
    attrs.task_queue.name = queue
    attrs.task_queue.kind = _NORMAL_QUEUE
    attrs.header.SetInParent()
    if schedule_to_close_timeout:
        attrs.schedule_to_close_timeout.FromTimedelta(schedule_to_close_timeout)
    if schedule_to_start_timeout:
        attrs.schedule_to_start_timeout.FromTimedelta(schedule_to_start_timeout)
    if start_to_close_timeout:
        attrs.start_to_close_timeout.FromTimedelta(start_to_close_timeout)
    if heartbeat_timeout:
        attrs.heartbeat_timeout.FromTimedelta(heartbeat_timeout)
    if retry_policy:
        retry_policy.apply_to_proto(attrs.retry_policy)
    if priority is _DEFAULT_PRIORITY:
        attrs.priority.SetInParent()
    elif priority:
        attrs.priority.CopyFrom(priority._to_proto())
    attrs.use_workflow_build_id = same_build
