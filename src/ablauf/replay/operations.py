"""What workflow code asks for: each call becomes a command machine.

Timers (``asyncio.sleep``, ``workflow.sleep``, timeouts), activities, patches,
memo and search attribute upserts, continue-as-new, child workflows and
signals and cancel requests to other workflows. Local activities and Nexus operations raise
:class:`~ablauf.errors.UnsupportedFeatureError` until ablauf runs them.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, NoReturn, cast

import nexusrpc
import temporalio.activity
import temporalio.api.sdk.v1
import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.api.command.v1 import Command, ScheduleActivityTaskCommandAttributes
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.enums.v1 import TaskQueueKind
from temporalio.workflow._event_groups import _capture_event_group_markers

from ablauf.errors import UnsupportedFeatureError
from ablauf.payloads import payloads_field, to_payloads
from ablauf.replay.children import ChildWorkflowHandle as ChildHandle
from ablauf.replay.children import ExternalWorkflowHandle as ExternalHandle
from ablauf.replay.children import await_operation
from ablauf.replay.handles import ActivityHandle, ContinueAsNew, ContinueAsNewRequest
from ablauf.replay.loop import DurableTimer, WorkflowEventLoop
from ablauf.replay.machines import TimerMachine
from ablauf.replay.runtime import WorkflowRuntime
from ablauf.serialization import ignores_context, with_context

if TYPE_CHECKING:
    from temporalio.workflow import (
        ActivityCancellationType,
        ChildWorkflowCancellationType,
        ChildWorkflowHandle,
        ContinueAsNewVersioningBehavior,
        EventGroup,
        ExternalWorkflowHandle,
        NexusOperationCancellationType,
        NexusOperationHandle,
        ParentClosePolicy,
        VersioningIntent,
    )

__all__ = ["WorkflowOperations"]

_NORMAL_QUEUE: Final = TaskQueueKind.TASK_QUEUE_KIND_NORMAL
# Its proto is empty: commands only mark the field present, as the SDK does.
_DEFAULT_PRIORITY: Final = temporalio.common.Priority.default

# Summary of the timer a wait_condition timeout starts (set around asyncio.wait_for).
_timer_summary: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ablauf_timer_summary", default=None
)


class WorkflowOperations(WorkflowRuntime):
    """The runtime plus the operations that produce commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # AbstractEventLoop's I/O methods stay unimplemented on purpose (see loop.py).
        self.loop = WorkflowEventLoop(self)  # type: ignore[abstract]
        # Pending operations, by sequence number.
        self.timers: dict[int, tuple[DurableTimer, TimerMachine]] = {}
        self.activities: dict[int, ActivityHandle] = {}
        self._seqs = {"activity": 0, "timer": 0, "child": 0, "signal": 0, "cancel": 0}
        self.children: dict[int, ChildHandle] = {}
        self.external_signals: dict[int, tuple[asyncio.Future[None], str]] = {}
        self.external_cancels: dict[int, tuple[asyncio.Future[None], str]] = {}
        self.conditions: list[tuple[Callable[[], bool], asyncio.Future[Any]]] = []
        self.patches_notified: set[str] = set()
        self._patches_memoized: dict[str, bool] = {}
        temporalio.workflow._Runtime.set_on_loop(self.loop, self)

    # -- helpers ---------------------------------------------------------------------------------

    def _markers(
        self, event_groups: Sequence[EventGroup] | None
    ) -> list[temporalio.api.sdk.v1.EventGroupMarker]:
        return _capture_event_group_markers(event_groups)

    def _summary(self, summary: str | None) -> Payload | None:
        return self.payload_converter.to_payload(summary) if summary else None

    def next_seq(self, kind: str) -> int:
        """The next sequence number of a command kind, starting at 1 like sdk-core."""
        seq = self._seqs[kind] + 1
        self._seqs[kind] = seq
        return seq

    # -- timers ----------------------------------------------------------------------------------

    def new_timer(
        self,
        delay: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
        *,
        summary: str | None = None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> DurableTimer:
        """Start a durable timer (``call_later``, ``workflow.sleep``, timeouts)."""
        self.check_may_schedule("schedule timer")
        if delay < 0:
            raise RuntimeError("Attempting to schedule timer with negative delay")
        markers = self._markers(event_groups)
        if summary is None:
            summary = _timer_summary.get()
        seq = self.next_seq("timer")
        timer = DurableTimer(self.loop.time() + delay, callback, args, self.loop, context, seq)
        machine, command = self.machines.start_timer(seq)
        command.start_timer_command_attributes.start_to_fire_timeout.FromNanoseconds(
            int(delay * 1e9)
        )
        summary_payload = self._summary(summary)
        if summary_payload is not None:
            command.user_metadata.summary.CopyFrom(summary_payload)
        _add_markers(command, markers)
        self.timers[seq] = (timer, machine)
        return timer

    def cancel_timer(self, timer: DurableTimer) -> None:
        """A timer handle was cancelled: cancel its command (unless it already fired)."""
        pending = self.timers.pop(timer.seq, None)
        if pending is None or self.evicting:
            return
        self.check_may_schedule("add command")
        self.machines.cancel_timer(pending[1])

    def fire_timer(self, seq: int) -> None:
        """Run the callback of a fired timer (cancelled timers are gone already)."""
        pending = self.timers.pop(seq, None)
        if pending is not None:
            self.loop.schedule(pending[0])

    async def workflow_sleep(
        self,
        duration: float,
        *,
        summary: str | None = None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> None:
        fut = self.loop.create_future()

        def fire() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.new_timer(duration, fire, (), None, summary=summary, event_groups=event_groups)
        fut.add_done_callback(lambda f: timer.cancel() if f.cancelled() else None)
        await fut

    async def workflow_wait_condition(
        self,
        fn: Callable[[], bool],
        *,
        timeout: float | None = None,
        timeout_summary: str | None = None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> None:
        self.check_may_schedule("wait condition")
        cancel_before = self.cancel_reason is not None

        def cancellation_arrived() -> bool:
            # With single-batch activations a cancel and a ready condition can arrive
            # together; the cancel must win, as on Temporal.
            return self.single_batch and not cancel_before and self.cancel_reason is not None

        fut = self.loop.create_future()
        self.conditions.append((fn, fut))
        # The timeout timer is created synchronously inside wait_for, where it reads this.
        previous = _timer_summary.get()
        _timer_summary.set(timeout_summary)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            if cancellation_arrived():
                raise asyncio.CancelledError() from None
            raise
        finally:
            # Not reset(): a coroutine closed at eviction may finish in another context.
            _timer_summary.set(previous)
        if cancellation_arrived():
            raise asyncio.CancelledError()

    # -- activities ------------------------------------------------------------------------------

    def workflow_start_activity(
        self,
        activity: Any,
        *args: Any,
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
        summary: str | None = None,
        event_groups: Sequence[EventGroup] | None = None,
        priority: temporalio.common.Priority = temporalio.common.Priority.default,
    ) -> temporalio.workflow.ActivityHandle[Any]:
        self.check_may_schedule("start activity")
        if isinstance(activity, str):
            name = activity
        elif callable(activity):
            # Read as the SDK does, without its per-call copy of the definition.
            defn = getattr(activity, "__temporal_activity_definition", None)
            if not isinstance(defn, temporalio.activity._Definition):
                defn = temporalio.activity._Definition.must_from_callable(activity)
            if not defn.name:
                raise ValueError("Cannot invoke dynamic activity explicitly")
            name = defn.name
            result_type = defn.ret_type
        else:
            raise TypeError("Activity must be a string or callable")
        if not start_to_close_timeout and not schedule_to_close_timeout:
            raise ValueError(
                "Activity must have start_to_close_timeout or schedule_to_close_timeout"
            )
        markers = self._markers(event_groups)
        seq = self.next_seq("activity")
        activity_id = activity_id or str(seq)
        queue = task_queue or self.task_queue
        converter = self._base_payload_converter
        context = None
        if not (ignores_context(converter) and ignores_context(self.base_failure_converter)):
            context = temporalio.converter.ActivitySerializationContext(
                namespace=self.namespace,
                workflow_id=self.workflow_id,
                workflow_type=self.workflow_type,
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
        machine, command = self.machines.schedule_activity(
            seq, activity_id, name, int(cancellation_type)
        )
        handle.machine = machine
        attrs = command.schedule_activity_task_command_attributes
        # sdk-core asks to stay on compatible workers when the queue is the workflow's.
        same_build = versioning_intent is None and queue == self.task_queue
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
        _add_markers(command, markers)
        self.activities[seq] = handle
        return handle

    def request_cancel_activity(self, handle: ActivityHandle) -> None:
        """Send the activity's cancellation (or drop its unsent command)."""
        self.check_may_schedule("add command")
        if handle.machine is not None:
            self.machines.cancel_activity(handle.machine)

    def lang_flag_in_history(self, flag: int) -> bool:
        """Whether the replayed task recorded a temporal-python flag."""
        return flag in self.flags.lang

    def use_lang_flag(self, flag: int) -> None:
        """Record that a new task relied on a temporal-python flag."""
        if not self.replaying:
            self.flags.use_lang(flag)

    # -- patches, memo, search attributes --------------------------------------------------------

    def workflow_patch(
        self, id: str, *, deprecated: bool, event_groups: Sequence[EventGroup] | None = None
    ) -> bool:
        self.check_may_schedule("patch")
        use_patch = self._patches_memoized.get(id)
        if use_patch is not None:
            return use_patch
        use_patch = not self.replaying or id in self.patches_notified
        self._patches_memoized[id] = use_patch
        if use_patch:
            markers = self._markers(event_groups)
            command = self.machines.set_patch_marker(id, deprecated)
            if command is not None:
                _add_markers(command, markers)
        return use_patch

    def workflow_upsert_memo(
        self, updates: Mapping[str, Any], *, event_groups: Sequence[EventGroup] | None = None
    ) -> None:
        upserted = {}
        removed = []
        for key, value in updates.items():
            if value is None:
                # Removing a key that is not there still shows up in history, as on Temporal.
                removed.append(key)
            else:
                upserted[key] = self.payload_converter.to_payload(value)
        if not upserted and not removed:
            return
        markers = self._markers(event_groups)
        self.check_may_schedule("add command")
        command = self.machines.modify_workflow_properties()
        _add_markers(command, markers)
        fields = command.modify_workflow_properties_command_attributes.upserted_memo.fields
        raw_memo = cast(MutableMapping[str, Payload], self._info().raw_memo)
        for key, payload in upserted.items():
            fields[key].CopyFrom(payload)
            raw_memo[key] = payload
        if removed:
            null = self.payload_converter.to_payload(None)
            for key in removed:
                fields[key].CopyFrom(null)
                raw_memo.pop(key, None)
        if self._memo is not None:
            for key, payload in upserted.items():
                self._memo[key] = self.payload_converter.from_payload(payload)
            for key in removed:
                self._memo.pop(key, None)

    def workflow_upsert_search_attributes(
        self,
        attributes: (
            temporalio.common.SearchAttributes
            | Sequence[temporalio.common.SearchAttributeUpdate[Any]]
        ),
        *,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> None:
        self.check_may_schedule("add command")
        markers = self._markers(event_groups)
        info = self._info()
        untyped = cast(
            MutableMapping[str, temporalio.common.SearchAttributeValues], info.search_attributes
        )
        typed = cast(
            list[temporalio.common.SearchAttributePair[Any]],
            info.typed_search_attributes.search_attributes,
        )
        fields = SearchAttributes()
        if isinstance(attributes, Mapping):
            untyped.update(attributes)
            for name, values in attributes.items():
                fields.indexed_fields[name].CopyFrom(
                    temporalio.converter.encode_search_attribute_values(values)
                )
                _update_typed_from_untyped(typed, name, values)
        else:
            for update in attributes:
                key = update.key
                fields.indexed_fields[key.name].CopyFrom(
                    temporalio.converter.encode_typed_search_attribute_value(key, update.value)
                )
                index = next((i for i, p in enumerate(typed) if p.key.name == key.name), None)
                if update.value is None:
                    if index is not None:
                        del typed[index]
                    untyped[key.name] = cast(list[str], [])
                    continue
                pair = temporalio.common.SearchAttributePair(key, update.value)
                if index is None:
                    typed.append(pair)
                else:
                    typed[index] = pair
                keyword_list = temporalio.common.SearchAttributeIndexedValueType.KEYWORD_LIST
                untyped[key.name] = (
                    list(update.value) if key.indexed_value_type == keyword_list else [update.value]
                )
        command = self.machines.upsert_search_attributes(fields)
        _add_markers(command, markers)
        self.search_attributes.update(fields.indexed_fields)

    # -- continue-as-new -------------------------------------------------------------------------

    def workflow_continue_as_new(
        self,
        *args: Any,
        workflow: Callable[..., Any] | str | None,
        task_queue: str | None,
        run_timeout: timedelta | None,
        task_timeout: timedelta | None,
        backoff_start_interval: timedelta | None,
        retry_policy: temporalio.common.RetryPolicy | None,
        memo: Mapping[str, Any] | None,
        search_attributes: temporalio.common.SearchAttributes
        | temporalio.common.TypedSearchAttributes
        | None,
        versioning_intent: VersioningIntent | None,
        initial_versioning_behavior: ContinueAsNewVersioningBehavior | None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> NoReturn:
        self.check_may_schedule("continue as new")
        name: str | None = None
        arg_types: list[type] | None = None
        if isinstance(workflow, str):
            name = workflow
        elif callable(workflow):
            defn = temporalio.workflow._Definition.must_from_run_fn(workflow)
            name = defn.name
            arg_types = defn.arg_types
        elif workflow is not None:
            raise TypeError("Workflow must be None, a string, or callable")
        raise ContinueAsNew(
            ContinueAsNewRequest(
                workflow=name,
                args=args,
                arg_types=arg_types,
                task_queue=task_queue,
                run_timeout=run_timeout,
                task_timeout=task_timeout,
                backoff_start_interval=backoff_start_interval,
                retry_policy=retry_policy,
                memo=memo,
                search_attributes=search_attributes,
                initial_versioning_behavior=(
                    int(initial_versioning_behavior) if initial_versioning_behavior else None
                ),
                markers=self._markers(event_groups),
            )
        )

    # -- child workflows and other workflows ------------------------------------------------------

    def workflow_get_external_workflow_handle(
        self, id: str, *, run_id: str | None
    ) -> ExternalWorkflowHandle[Any]:
        return ExternalHandle(self, id, run_id)

    async def workflow_start_child_workflow(
        self,
        workflow: Any,
        *args: Any,
        id: str,
        task_queue: str | None,
        result_type: type | None,
        cancellation_type: ChildWorkflowCancellationType,
        parent_close_policy: ParentClosePolicy,
        execution_timeout: timedelta | None,
        run_timeout: timedelta | None,
        task_timeout: timedelta | None,
        id_reuse_policy: temporalio.common.WorkflowIDReusePolicy,
        retry_policy: temporalio.common.RetryPolicy | None,
        cron_schedule: str,
        memo: Mapping[str, Any] | None,
        search_attributes: temporalio.common.SearchAttributes
        | temporalio.common.TypedSearchAttributes
        | None,
        versioning_intent: VersioningIntent | None,
        static_summary: str | None = None,
        static_details: str | None = None,
        event_groups: Sequence[EventGroup] | None = None,
        priority: temporalio.common.Priority = temporalio.common.Priority.default,
        versioning_override: temporalio.common.VersioningOverride | None = None,
    ) -> ChildWorkflowHandle[Any, Any]:
        self.check_may_schedule("start child workflow")
        if isinstance(workflow, str):
            name = workflow
        elif callable(workflow):
            defn = temporalio.workflow._Definition.must_from_run_fn(workflow)
            if not defn.name:
                raise TypeError("Cannot invoke dynamic workflow explicitly")
            name = defn.name
            if result_type is None:
                result_type = defn.ret_type
        else:
            raise TypeError("Workflow must be a string or callable")
        handle = ChildHandle(
            self, self.next_seq("child"), id, name, result_type, self._markers(event_groups)
        )
        handle.set_name(f"child: {name}")
        converter = handle.payload_converter
        # Convert before making the command so a conversion error leaves none behind.
        payloads = to_payloads(converter, args) if args else None
        memo_payloads = {k: converter.to_payloads([v])[0] for k, v in (memo or {}).items()}
        queue = task_queue or self.task_queue
        machine, command = self.machines.start_child(
            handle.seq, self.namespace, id, name, int(cancellation_type)
        )
        handle.machine = machine
        attrs = command.start_child_workflow_execution_command_attributes
        attrs.namespace = self.namespace
        attrs.workflow_id = id
        attrs.workflow_type.name = name
        attrs.task_queue.name = queue
        attrs.task_queue.kind = _NORMAL_QUEUE
        if payloads:
            attrs.input.payloads.extend(payloads)
        if execution_timeout:
            attrs.workflow_execution_timeout.FromTimedelta(execution_timeout)
        if run_timeout:
            attrs.workflow_run_timeout.FromTimedelta(run_timeout)
        if task_timeout:
            attrs.workflow_task_timeout.FromTimedelta(task_timeout)
        attrs.parent_close_policy = cast(Any, int(parent_close_policy))
        attrs.workflow_id_reuse_policy = cast(Any, int(id_reuse_policy))
        if retry_policy:
            retry_policy.apply_to_proto(attrs.retry_policy)
        attrs.cron_schedule = cron_schedule
        attrs.header.SetInParent()
        for key, payload in memo_payloads.items():
            attrs.memo.fields[key].CopyFrom(payload)
        if search_attributes:
            encode_search_attributes(search_attributes, attrs)
        if priority is _DEFAULT_PRIORITY:
            attrs.priority.SetInParent()
        elif priority:
            attrs.priority.CopyFrom(priority._to_proto())
        if versioning_override:
            attrs.versioning_override.CopyFrom(versioning_override._to_proto())
        # sdk-core asks to stay on compatible workers when the queue is the workflow's.
        attrs.inherit_build_id = versioning_intent is None and queue == self.task_queue
        if static_summary:
            command.user_metadata.summary.CopyFrom(converter.to_payload(static_summary))
        if static_details:
            command.user_metadata.details.CopyFrom(converter.to_payload(static_details))
        _add_markers(command, handle.markers)
        self.children[handle.seq] = handle
        await await_operation(
            self, handle.start_fut, handle.apply_cancel, reraise_on_workflow_cancellation=True
        )
        return handle

    def cancel_child(self, handle: ChildHandle, reason: str) -> None:
        """Cancel a child per its cancellation type (the handle's task was cancelled)."""
        if handle.machine is None:
            return
        command = self.machines.cancel_child(handle.machine, reason)
        if command is not None:
            _add_markers(command, handle.markers)

    async def signal_external(
        self,
        name: str,
        args: Sequence[Any],
        *,
        workflow_id: str,
        run_id: str | None,
        child: bool,
        event_groups: Sequence[EventGroup] | None,
    ) -> None:
        """Signal a child (``child``) or another workflow and wait for the delivery."""
        context = temporalio.converter.WorkflowSerializationContext(
            namespace=self.namespace, workflow_id=workflow_id
        )
        converter = with_context(self._base_payload_converter, context)
        payloads = to_payloads(converter, args) if args else None
        markers = self._markers(event_groups)
        self.check_may_schedule("add command")
        seq = self.next_seq("signal")
        machine, command = self.machines.signal_external(seq)
        attrs = command.signal_external_workflow_execution_command_attributes
        attrs.namespace = self.namespace
        attrs.execution.workflow_id = workflow_id
        if run_id:
            attrs.execution.run_id = run_id
        attrs.signal_name = name
        if payloads:
            attrs.input.payloads.extend(payloads)
        attrs.child_workflow_only = child
        attrs.header.SetInParent()
        _add_markers(command, markers)
        fut: asyncio.Future[None] = self.loop.create_future()
        self.external_signals[seq] = (fut, workflow_id)

        def apply_cancel(_: asyncio.CancelledError) -> None:
            self.machines.cancel_signal(machine)

        await await_operation(self, fut, apply_cancel)

    async def cancel_external(
        self,
        workflow_id: str,
        run_id: str | None,
        *,
        reason: str,
        event_groups: Sequence[EventGroup] | None,
    ) -> None:
        """Ask another workflow to cancel and wait until the request is delivered."""
        markers = self._markers(event_groups)
        self.check_may_schedule("add command")
        seq = self.next_seq("cancel")
        command = self.machines.cancel_external(seq)
        attrs = command.request_cancel_external_workflow_execution_command_attributes
        attrs.namespace = self.namespace
        attrs.workflow_id = workflow_id
        if run_id:
            attrs.run_id = run_id
        attrs.reason = reason
        _add_markers(command, markers)
        fut: asyncio.Future[None] = self.loop.create_future()
        self.external_cancels[seq] = (fut, workflow_id)
        await fut

    # -- not supported yet -----------------------------------------------------------------------

    def workflow_start_local_activity(
        self,
        activity: Any,
        *args: Any,
        result_type: type | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        retry_policy: temporalio.common.RetryPolicy | None,
        local_retry_threshold: timedelta | None,
        cancellation_type: ActivityCancellationType,
        activity_id: str | None,
        summary: str | None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> temporalio.workflow.ActivityHandle[Any]:
        raise UnsupportedFeatureError("Local activities are not supported yet")

    async def workflow_start_nexus_operation(
        self,
        endpoint: str,
        service: str,
        operation: nexusrpc.Operation[Any, Any] | str | Callable[..., Any],
        input: Any,
        output_type: type[Any] | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        cancellation_type: NexusOperationCancellationType,
        headers: Mapping[str, str] | None,
        summary: str | None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> NexusOperationHandle[Any]:
        raise UnsupportedFeatureError("Nexus operations are not supported yet")


# Serialized activity options by what they are made of (see workflow_start_activity).
_INPUT_FIELD: Final = ScheduleActivityTaskCommandAttributes.DESCRIPTOR.fields_by_name[
    "input"
].number
_activity_options: dict[tuple[object, ...], bytes] = {}
_ACTIVITY_OPTIONS_KEPT = 256


def _add_markers(
    command: Command, markers: Sequence[temporalio.api.sdk.v1.EventGroupMarker]
) -> None:
    # Extending a repeated field costs even when there is nothing to add.
    if markers:
        command.event_group_markers.extend(markers)


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


def _update_typed_from_untyped(
    typed: list[temporalio.common.SearchAttributePair[Any]],
    name: str,
    values: temporalio.common.SearchAttributeValues,
) -> None:
    """Mirror a deprecated dict-form upsert into the typed attributes, as the SDK does."""
    index = next((i for i, p in enumerate(typed) if p.key.name == name), None)
    if not values:
        if index is not None:
            del typed[index]
        return
    key = temporalio.common.SearchAttributeKey._guess_from_untyped_values(name, values)
    if key is None:
        return
    value: Any = values
    if key.indexed_value_type != temporalio.common.SearchAttributeIndexedValueType.KEYWORD_LIST:
        if len(values) != 1:
            return
        value = values[0]
    pair = temporalio.common.SearchAttributePair(key, value)
    if index is None:
        typed.append(pair)
    else:
        typed[index] = pair


def encode_search_attributes(
    attributes: temporalio.common.SearchAttributes | temporalio.common.TypedSearchAttributes,
    attrs: Any,
) -> None:
    """Fill ``attrs.search_attributes`` from the SDK's search attribute types."""
    fields = attrs.search_attributes.indexed_fields
    if isinstance(attributes, temporalio.common.TypedSearchAttributes):
        for pair in attributes:
            fields[pair.key.name].CopyFrom(
                temporalio.converter.encode_typed_search_attribute_value(pair.key, pair.value)
            )
    else:
        for name, values in attributes.items():
            fields[name].CopyFrom(temporalio.converter.encode_search_attribute_values(values))
