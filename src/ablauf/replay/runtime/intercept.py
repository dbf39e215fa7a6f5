"""Worker interceptors around a workflow run, as temporalio's worker chains them.

A worker with interceptors (``temporalio.worker.Interceptor``) gives each run
an :class:`Interception` (the runtime's ``intercepted``). When the run's start
is known, it builds temporalio's chain on the workflow's loop, as temporalio's
workflow instance does: each ``workflow_interceptor_class`` wraps the next
``WorkflowInboundInterceptor``, and the outermost one's ``init`` passes the
``WorkflowOutboundInterceptor`` inwards, where each may wrap it. The runtime's
facade and parts hand their calls to it; the innermost links
(:class:`_InboundRoot`, :class:`_OutboundRoot`) call the parts back, with the
headers the interceptors made.

Only workers with interceptors import this module (and temporalio's worker
package): a run without interceptors pays one ``is None`` test where a call
could be intercepted.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import temporalio.activity
import temporalio.common
import temporalio.workflow
from temporalio.api.common.v1 import Payload
from temporalio.worker import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    StartNexusOperationInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from ablauf.errors import UnsupportedFeatureError
from ablauf.replay.runtime.activities import Activities
from ablauf.replay.runtime.children import Children
from ablauf.replay.runtime.context import RunContext
from ablauf.replay.runtime.signals import Handlers
from ablauf.replay.runtime.workflow import WorkflowRun, continued_workflow

if TYPE_CHECKING:
    from temporalio.workflow import EventGroup

__all__ = ["Interception", "WorkflowInterceptors"]

# sdk-core's id of a query that does not come with a workflow task.
_QUERY_ID = "legacy_query"


@dataclass(frozen=True)
class WorkflowInterceptors:
    """What a worker's interceptors give its workflows, asked for once per worker."""

    classes: tuple[type[WorkflowInboundInterceptor], ...]
    extern_functions: Mapping[str, Callable[..., Any]]

    @classmethod
    def of(cls, interceptors: Sequence[Interceptor]) -> WorkflowInterceptors | None:
        """Ask each interceptor for its workflow interceptor class, in order, as
        temporalio's worker does; None if none has one."""
        extern_functions: MutableMapping[str, Callable[..., Any]] = {}
        class_input = WorkflowInterceptorClassInput(unsafe_extern_functions=extern_functions)
        classes = []
        for interceptor in interceptors:
            interceptor_class = interceptor.workflow_interceptor_class(class_input)
            if interceptor_class:
                classes.append(interceptor_class)
        if not classes and not extern_functions:
            return None
        return cls(tuple(classes), extern_functions)


class Interception:
    """A worker's interceptors around one run (``context.Intercepted``)."""

    def __init__(
        self,
        interceptors: WorkflowInterceptors,
        *,
        context: RunContext,
        workflow: WorkflowRun,
        handlers: Handlers,
        activities: Activities,
        children: Children,
    ) -> None:
        self._interceptors = interceptors
        self.context = context
        self.workflow = workflow
        self.handlers = handlers
        self.activities = activities
        self.children = children
        self._inbound: WorkflowInboundInterceptor | None = None
        self._outbound: WorkflowOutboundInterceptor | None = None

    def build(self) -> None:
        if self._outbound is not None:
            return
        root = _InboundRoot(self)
        inbound: WorkflowInboundInterceptor = root
        for interceptor_class in reversed(self._interceptors.classes):
            inbound = interceptor_class(inbound)
        inbound.init(_OutboundRoot(self))
        assert root.outbound is not None
        self._inbound = inbound
        self._outbound = root.outbound

    def drop(self) -> None:
        # Both refer back to this object, as the context does: reference counting
        # frees an evicted run.
        self._inbound = self._outbound = None
        self.context.intercepted = None

    @property
    def inbound(self) -> WorkflowInboundInterceptor:
        """The outermost inbound interceptor."""
        if self._inbound is None:
            raise RuntimeError("The workflow has not started yet")
        return self._inbound

    @property
    def outbound(self) -> WorkflowOutboundInterceptor:
        """The outermost outbound interceptor."""
        if self._outbound is None:
            raise RuntimeError("The workflow has not started yet")
        return self._outbound

    # -- outbound ------------------------------------------------------------------------------

    def info(self) -> temporalio.workflow.Info:
        if self._outbound is None:
            # Asked while the chain is being made.
            return self.workflow.get_info()
        return self._outbound.info()

    def extern_functions(self) -> Mapping[str, Callable[..., Any]]:
        return self._interceptors.extern_functions

    def continue_as_new(self, args: Sequence[Any], **options: Any) -> NoReturn:
        self.context.check_may_schedule("continue as new")
        name, arg_types = continued_workflow(options.pop("workflow"))
        self.outbound.continue_as_new(
            ContinueAsNewInput(workflow=name, args=args, headers={}, arg_types=arg_types, **options)
        )

    def start_activity(
        self, activity: Any, args: Sequence[Any], **options: Any
    ) -> temporalio.workflow.ActivityHandle[Any]:
        self.context.check_may_schedule("start activity")
        name, arg_types, ret_type = _activity(activity, options.pop("result_type"))
        return self.outbound.start_activity(
            StartActivityInput(
                activity=name,
                args=args,
                headers={},
                disable_eager_execution=False,
                arg_types=arg_types,
                ret_type=ret_type,
                **options,
            )
        )

    def start_local_activity(
        self, activity: Any, args: Sequence[Any], **options: Any
    ) -> temporalio.workflow.ActivityHandle[Any]:
        self.context.check_may_schedule("start local activity")
        name, arg_types, ret_type = _activity(activity, options.pop("result_type"))
        return self.outbound.start_local_activity(
            StartLocalActivityInput(
                activity=name,
                args=args,
                headers={},
                arg_types=arg_types,
                ret_type=ret_type,
                **options,
            )
        )

    def start_child_workflow(
        self, workflow: Any, args: Sequence[Any], **options: Any
    ) -> Coroutine[Any, Any, temporalio.workflow.ChildWorkflowHandle[Any, Any]]:
        result_type = options.pop("result_type")
        if isinstance(workflow, str):
            name, arg_types, ret_type = workflow, None, result_type
        elif callable(workflow):
            defn = temporalio.workflow._Definition.must_from_run_fn(workflow)
            if not defn.name:
                raise TypeError("Cannot invoke dynamic workflow explicitly")
            name, arg_types, ret_type = defn.name, defn.arg_types, defn.ret_type
        else:
            raise TypeError("Workflow must be a string or callable")
        return self.outbound.start_child_workflow(
            StartChildWorkflowInput(
                workflow=name,
                args=args,
                headers={},
                arg_types=arg_types,
                ret_type=ret_type,
                **options,
            )
        )

    def signal_external(
        self,
        name: str,
        args: Sequence[Any],
        *,
        workflow_id: str,
        run_id: str | None,
        child: bool,
        event_groups: Sequence[EventGroup] | None,
    ) -> Coroutine[Any, Any, None]:
        if child:
            return self.outbound.signal_child_workflow(
                SignalChildWorkflowInput(
                    signal=name,
                    args=args,
                    child_workflow_id=workflow_id,
                    headers={},
                    event_groups=event_groups,
                )
            )
        return self.outbound.signal_external_workflow(
            SignalExternalWorkflowInput(
                signal=name,
                args=args,
                namespace=self.context.namespace,
                workflow_id=workflow_id,
                workflow_run_id=run_id,
                headers={},
                event_groups=event_groups,
            )
        )

    # -- inbound -------------------------------------------------------------------------------

    def execute_workflow(
        self, args: Sequence[Any], headers: Mapping[str, Payload]
    ) -> Coroutine[Any, Any, Any]:
        defn = self.context.defn
        return self.inbound.execute_workflow(
            ExecuteWorkflowInput(type=defn.cls, run_fn=defn.run_fn, args=args, headers=headers)
        )

    def handle_signal(
        self, name: str, args: Sequence[Any], headers: Mapping[str, Payload]
    ) -> Coroutine[Any, Any, None]:
        signal = HandleSignalInput(signal=name, args=args, headers=headers)
        return self.inbound.handle_signal(signal)

    def handle_query(
        self, name: str, args: Sequence[Any], headers: Mapping[str, Payload]
    ) -> Coroutine[Any, Any, Any]:
        return self.inbound.handle_query(
            HandleQueryInput(id=_QUERY_ID, query=name, args=args, headers=headers)
        )

    def update_input(
        self, update_id: str, name: str, args: Sequence[Any], headers: Mapping[str, Payload]
    ) -> HandleUpdateInput:
        return HandleUpdateInput(id=update_id, update=name, args=args, headers=headers)

    def validate_update(self, update: object) -> None:
        assert isinstance(update, HandleUpdateInput)
        self.inbound.handle_update_validator(update)

    def handle_update(self, update: object, args: Sequence[Any]) -> Coroutine[Any, Any, Any]:
        assert isinstance(update, HandleUpdateInput)
        # The handler gets arguments decoded anew: a validator may have changed its own.
        update.args = args
        return self.inbound.handle_update_handler(update)


def _activity(activity: Any, result_type: type | None) -> tuple[str, list[type] | None, Any]:
    """The activity type, argument types and result type ``activity`` names."""
    if isinstance(activity, str):
        return activity, None, result_type
    if callable(activity):
        defn = temporalio.activity._Definition.must_from_callable(activity)
        if not defn.name:
            raise ValueError("Cannot invoke dynamic activity explicitly")
        return defn.name, defn.arg_types, defn.ret_type
    raise TypeError("Activity must be a string or callable")


class _InboundRoot(WorkflowInboundInterceptor):
    """The innermost inbound interceptor: runs the workflow and its handlers."""

    def __init__(self, run: Interception) -> None:
        # Like temporalio's innermost link: no next interceptor to call.
        self._run = run
        self.outbound: WorkflowOutboundInterceptor | None = None

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        self.outbound = outbound

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        return await input.run_fn(self._run.context.object, *input.args)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        handlers = self._run.handlers
        handler = handlers.signal_handler(input.signal) or handlers.signal_handler(None)
        assert handler is not None
        if inspect.iscoroutinefunction(handler):
            await handler(*input.args)
        else:
            handler(*input.args)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        handlers = self._run.handlers
        handler = handlers.query_handler(input.query) or handlers.query_handler(None)
        assert handler is not None
        if inspect.iscoroutinefunction(handler):
            return await handler(*input.args)
        return handler(*input.args)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        validator = self._run.handlers.update_validator(input.update)
        if validator is not None:
            validator(*input.args)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        handlers = self._run.handlers
        handler = handlers.update_handler(input.update) or handlers.update_handler(None)
        assert handler is not None
        if inspect.iscoroutinefunction(handler):
            return await handler(*input.args)
        return handler(*input.args)


class _OutboundRoot(WorkflowOutboundInterceptor):
    """The innermost outbound interceptor: makes the commands, with their headers."""

    def __init__(self, run: Interception) -> None:
        # Like temporalio's innermost link: no next interceptor to call.
        self._run = run

    def info(self) -> temporalio.workflow.Info:
        return self._run.workflow.get_info()

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        self._run.workflow.request_continue_as_new(
            input.args,
            workflow=input.workflow,
            task_queue=input.task_queue,
            run_timeout=input.run_timeout,
            task_timeout=input.task_timeout,
            backoff_start_interval=input.backoff_start_interval,
            retry_policy=input.retry_policy,
            memo=input.memo,
            search_attributes=input.search_attributes,
            versioning_intent=input.versioning_intent,
            initial_versioning_behavior=input.initial_versioning_behavior,
            event_groups=input.event_groups,
            headers=input.headers,
        )

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        await self._run.children.signal_external(
            input.signal,
            input.args,
            workflow_id=input.child_workflow_id,
            run_id=None,
            child=True,
            event_groups=input.event_groups,
            headers=input.headers,
        )

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        await self._run.children.signal_external(
            input.signal,
            input.args,
            workflow_id=input.workflow_id,
            run_id=input.workflow_run_id,
            child=False,
            event_groups=input.event_groups,
            headers=input.headers,
        )

    def start_activity(self, input: StartActivityInput) -> temporalio.workflow.ActivityHandle[Any]:
        return self._run.activities.start(
            input.activity,
            input.args,
            task_queue=input.task_queue,
            result_type=input.ret_type,
            schedule_to_close_timeout=input.schedule_to_close_timeout,
            schedule_to_start_timeout=input.schedule_to_start_timeout,
            start_to_close_timeout=input.start_to_close_timeout,
            heartbeat_timeout=input.heartbeat_timeout,
            retry_policy=input.retry_policy,
            cancellation_type=input.cancellation_type,
            activity_id=input.activity_id,
            versioning_intent=input.versioning_intent,
            summary=input.summary,
            event_groups=input.event_groups,
            priority=input.priority,
            headers=input.headers,
        )

    def start_local_activity(
        self, input: StartLocalActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        if input.event_groups:
            raise UnsupportedFeatureError("Event groups on local activities are not supported yet")
        return self._run.activities.start_local(
            input.activity,
            input.args,
            result_type=input.ret_type,
            schedule_to_close_timeout=input.schedule_to_close_timeout,
            schedule_to_start_timeout=input.schedule_to_start_timeout,
            start_to_close_timeout=input.start_to_close_timeout,
            retry_policy=input.retry_policy,
            local_retry_threshold=input.local_retry_threshold,
            cancellation_type=input.cancellation_type,
            activity_id=input.activity_id,
            summary=input.summary,
            headers=input.headers,
        )

    async def start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> temporalio.workflow.ChildWorkflowHandle[Any, Any]:
        return await self._run.children.start_child(
            input.workflow,
            input.args,
            id=input.id,
            task_queue=input.task_queue,
            result_type=input.ret_type,
            cancellation_type=input.cancellation_type,
            parent_close_policy=input.parent_close_policy,
            execution_timeout=input.execution_timeout,
            run_timeout=input.run_timeout,
            task_timeout=input.task_timeout,
            id_reuse_policy=input.id_reuse_policy,
            retry_policy=input.retry_policy,
            cron_schedule=input.cron_schedule,
            memo=input.memo,
            search_attributes=input.search_attributes,
            versioning_intent=input.versioning_intent,
            static_summary=input.static_summary,
            static_details=input.static_details,
            event_groups=input.event_groups,
            priority=input.priority,
            versioning_override=input.versioning_override,
            headers=input.headers,
        )

    async def start_nexus_operation(
        self, input: StartNexusOperationInput[Any, Any]
    ) -> temporalio.workflow.NexusOperationHandle[Any]:
        raise UnsupportedFeatureError("Nexus operations are not supported yet")

    async def start_system_nexus_operation(
        self, input: StartNexusOperationInput[Any, Any]
    ) -> temporalio.workflow.NexusOperationHandle[Any]:
        raise UnsupportedFeatureError("Nexus operations are not supported yet")

    def _next_system_nexus_interceptor(self) -> Any:
        raise UnsupportedFeatureError("Nexus operations are not supported yet")
