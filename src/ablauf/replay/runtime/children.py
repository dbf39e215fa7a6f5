"""Child workflows, and signals and cancel requests to other workflows.

Starting a child, signalling a workflow and asking one to cancel are commands
whose outcomes come back as ResolveChildStart, ResolveChild,
ResolveSignalExternal and ResolveCancelExternal jobs. :class:`Children` is the
:class:`~ablauf.replay.children.HandleOwner` of the handles workflow code holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, cast

import temporalio.common
import temporalio.converter
import temporalio.exceptions
import temporalio.workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import TaskQueueKind
from temporalio.api.failure.v1 import Failure

from ablauf.payloads import to_payloads
from ablauf.replay.children import ChildWorkflowHandle, ExternalWorkflowHandle, await_operation
from ablauf.replay.commands import CommandMachines
from ablauf.replay.machines import (
    ResolveCancelExternal,
    ResolveChild,
    ResolveChildStart,
    ResolveSignalExternal,
)
from ablauf.replay.runtime.context import (
    RunContext,
    add_markers,
    encode_search_attributes,
    markers,
)
from ablauf.serialization import with_context

if TYPE_CHECKING:
    from temporalio.workflow import (
        ChildWorkflowCancellationType,
        EventGroup,
        ParentClosePolicy,
        VersioningIntent,
    )

    from ablauf.replay.loop import WorkflowEventLoop

__all__ = ["Children"]

_NORMAL_QUEUE: Final = TaskQueueKind.TASK_QUEUE_KIND_NORMAL
_DEFAULT_PRIORITY: Final = temporalio.common.Priority.default
# StartChildWorkflowExecutionFailedCause.WORKFLOW_ALREADY_EXISTS
_WORKFLOW_ALREADY_EXISTS = 1


class Children:
    """Pending children, external signals and external cancels, by sequence number."""

    def __init__(self, context: RunContext, machines: CommandMachines) -> None:
        self._context = context
        self._machines = machines
        self._child_seq = 0
        self._signal_seq = 0
        self._cancel_seq = 0
        self._children: dict[int, ChildWorkflowHandle] = {}
        self._signals: dict[int, tuple[asyncio.Future[None], str]] = {}
        self._cancels: dict[int, tuple[asyncio.Future[None], str]] = {}

    # -- what the handles read (HandleOwner) -------------------------------------------------

    @property
    def loop(self) -> WorkflowEventLoop:
        """The run's event loop."""
        return self._context.loop

    @property
    def namespace(self) -> str:
        """The run's namespace."""
        return self._context.namespace

    @property
    def base_payload_converter(self) -> temporalio.converter.PayloadConverter:
        """The payload converter without a serialization context."""
        return self._context.base_payload_converter

    @property
    def base_failure_converter(self) -> temporalio.converter.FailureConverter:
        """The failure converter without a serialization context."""
        return self._context.base_failure_converter

    @property
    def evicting(self) -> bool:
        """Whether the instance is being torn down."""
        return self._context.evicting

    @property
    def single_batch(self) -> bool:
        """Whether the task applies its jobs in one batch."""
        return self._context.single_batch

    @property
    def cancel_reason(self) -> str | None:
        """Why the workflow was asked to cancel (None until it was)."""
        return self._context.cancel_reason

    def check_may_schedule(self, action: str, *, during_eviction: bool = False) -> None:
        """Raise if workflow code may not produce work now."""
        self._context.check_may_schedule(action, during_eviction=during_eviction)

    # -- child workflows -----------------------------------------------------------------------

    async def start_child(
        self,
        workflow: Any,
        args: Sequence[Any],
        *,
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
        static_summary: str | None,
        static_details: str | None,
        event_groups: Sequence[EventGroup] | None,
        priority: temporalio.common.Priority,
        versioning_override: temporalio.common.VersioningOverride | None,
        headers: Mapping[str, Payload] | None = None,
    ) -> ChildWorkflowHandle:
        """``workflow.start_child_workflow``: the command, then wait until the child started."""
        run = self._context
        run.check_may_schedule("start child workflow")
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
        self._child_seq += 1
        handle = ChildWorkflowHandle(
            self, self._child_seq, id, name, result_type, markers(event_groups)
        )
        handle.set_name(f"child: {name}")
        converter = handle.payload_converter
        # Convert before making the command so a conversion error leaves none behind.
        payloads = to_payloads(converter, args) if args else None
        memo_payloads = {k: converter.to_payloads([v])[0] for k, v in (memo or {}).items()}
        queue = task_queue or run.task_queue
        machine, command = self._machines.start_child(
            handle.seq, run.namespace, id, name, int(cancellation_type)
        )
        handle.machine = machine
        attrs = command.start_child_workflow_execution_command_attributes
        attrs.namespace = run.namespace
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
        if headers:
            fields = attrs.header.fields
            for key, payload in headers.items():
                fields[key].CopyFrom(payload)
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
        attrs.inherit_build_id = versioning_intent is None and queue == run.task_queue
        if static_summary:
            command.user_metadata.summary.CopyFrom(converter.to_payload(static_summary))
        if static_details:
            command.user_metadata.details.CopyFrom(converter.to_payload(static_details))
        add_markers(command, handle.markers)
        self._children[handle.seq] = handle
        await await_operation(
            self, handle.start_fut, handle.apply_cancel, reraise_on_workflow_cancellation=True
        )
        return handle

    def cancel_child(self, handle: ChildWorkflowHandle, reason: str) -> None:
        """Cancel a child per its cancellation type (the handle's task was cancelled)."""
        if handle.machine is None:
            return
        command = self._machines.cancel_child(handle.machine, reason)
        if command is not None:
            add_markers(command, handle.markers)

    def resolve_start(self, job: ResolveChildStart) -> None:
        """The child started, or could not start."""
        handle = self._children.get(job.seq)
        if handle is None:
            raise RuntimeError(f"Failed finding child workflow handle for sequence {job.seq}")
        if job.failure is not None:
            del self._children[job.seq]
            handle.resolve_failure(
                handle.failure_converter.from_failure(job.failure, handle.payload_converter)
            )
        elif job.cause:
            del self._children[job.seq]
            if job.cause == _WORKFLOW_ALREADY_EXISTS:
                handle.resolve_failure(
                    temporalio.exceptions.WorkflowAlreadyStartedError(
                        handle.id, handle.workflow_type
                    )
                )
            else:
                handle.resolve_failure(RuntimeError(f"Unknown child start fail cause: {job.cause}"))
        else:
            handle.resolve_start(job.run_id)

    def resolve(self, job: ResolveChild) -> None:
        """The child closed."""
        handle = self._children.pop(job.seq, None)
        if handle is None:
            raise RuntimeError(f"Failed finding child workflow handle for sequence {job.seq}")
        if job.failure is not None:
            handle.resolve_failure(
                handle.failure_converter.from_failure(job.failure, handle.payload_converter)
            )
            return
        value = None
        if job.result is not None:
            types = [handle.result_type] if handle.result_type else None
            value = self._context.convert([job.result], types, handle.payload_converter)[0]
        handle.resolve_success(value)

    # -- other workflows -----------------------------------------------------------------------

    def external_handle(self, workflow_id: str, run_id: str | None) -> ExternalWorkflowHandle:
        """``workflow.get_external_workflow_handle``."""
        return ExternalWorkflowHandle(self, workflow_id, run_id)

    async def signal_external(
        self,
        name: str,
        args: Sequence[Any],
        *,
        workflow_id: str,
        run_id: str | None,
        child: bool,
        event_groups: Sequence[EventGroup] | None,
        headers: Mapping[str, Payload] | None = None,
    ) -> None:
        """Signal a child (``child``) or another workflow and wait for the delivery.

        With interceptors, the call goes through them first; the innermost
        one calls back with the ``headers`` they made.
        """
        run = self._context
        intercepted = run.intercepted
        if intercepted is not None and headers is None:
            await intercepted.signal_external(
                name,
                args,
                workflow_id=workflow_id,
                run_id=run_id,
                child=child,
                event_groups=event_groups,
            )
            return
        context = temporalio.converter.WorkflowSerializationContext(
            namespace=run.namespace, workflow_id=workflow_id
        )
        converter = with_context(run.base_payload_converter, context)
        payloads = to_payloads(converter, args) if args else None
        command_markers = markers(event_groups)
        run.check_may_schedule("add command")
        self._signal_seq = seq = self._signal_seq + 1
        machine, command = self._machines.signal_external(seq)
        attrs = command.signal_external_workflow_execution_command_attributes
        attrs.namespace = run.namespace
        attrs.execution.workflow_id = workflow_id
        if run_id:
            attrs.execution.run_id = run_id
        attrs.signal_name = name
        if payloads:
            attrs.input.payloads.extend(payloads)
        attrs.child_workflow_only = child
        attrs.header.SetInParent()
        if headers:
            fields = attrs.header.fields
            for key, payload in headers.items():
                fields[key].CopyFrom(payload)
        add_markers(command, command_markers)
        fut: asyncio.Future[None] = run.loop.create_future()
        self._signals[seq] = (fut, workflow_id)
        machines = self._machines

        def apply_cancel(_: asyncio.CancelledError) -> None:
            machines.cancel_signal(machine)

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
        run = self._context
        command_markers = markers(event_groups)
        run.check_may_schedule("add command")
        self._cancel_seq = seq = self._cancel_seq + 1
        command = self._machines.cancel_external(seq)
        attrs = command.request_cancel_external_workflow_execution_command_attributes
        attrs.namespace = run.namespace
        attrs.workflow_id = workflow_id
        if run_id:
            attrs.run_id = run_id
        attrs.reason = reason
        add_markers(command, command_markers)
        fut: asyncio.Future[None] = run.loop.create_future()
        self._cancels[seq] = (fut, workflow_id)
        await fut

    def resolve_signal(self, job: ResolveSignalExternal) -> None:
        """A signal was delivered, or could not be."""
        self._resolve_external(self._signals, job.seq, job.failure)

    def resolve_cancel(self, job: ResolveCancelExternal) -> None:
        """A cancel request was delivered, or could not be."""
        self._resolve_external(self._cancels, job.seq, job.failure)

    def _resolve_external(
        self,
        pending: dict[int, tuple[asyncio.Future[None], str]],
        seq: int,
        failure: Failure | None,
    ) -> None:
        entry = pending.pop(seq, None)
        if entry is None:
            raise RuntimeError(f"Failed finding pending external operation for sequence {seq}")
        fut, workflow_id = entry
        if fut.cancelled():
            return
        if failure is None:
            fut.set_result(None)
            return
        run = self._context
        context = temporalio.converter.WorkflowSerializationContext(
            namespace=run.namespace, workflow_id=workflow_id
        )
        fut.set_exception(
            with_context(run.base_failure_converter, context).from_failure(
                failure, with_context(run.base_payload_converter, context)
            )
        )
