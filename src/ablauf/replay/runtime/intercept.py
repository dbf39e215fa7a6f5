"""Worker interceptors around a workflow run, as temporalio's worker chains them.

A worker with interceptors (``temporalio.worker.Interceptor``) runs each
workflow on an :class:`InterceptedRuntime`. When the run's start is known, it
builds temporalio's chain on the workflow's loop, as temporalio's workflow
instance does: each ``workflow_interceptor_class`` wraps the next
``WorkflowInboundInterceptor``, and the outermost one's ``init`` passes the
``WorkflowOutboundInterceptor`` inwards, where each may wrap it. The innermost
links (:class:`_InboundRoot`, :class:`_OutboundRoot`) do what the runtime's
parts do without interceptors, with the headers the interceptors made.

Only workers with interceptors import this module (and temporalio's worker
package): a run without interceptors pays nothing for them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
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
from ablauf.replay.runtime.facade import WorkflowRuntime

if TYPE_CHECKING:
    from temporalio.workflow import (
        ActivityCancellationType,
        ChildWorkflowCancellationType,
        ChildWorkflowHandle,
        ContinueAsNewVersioningBehavior,
        EventGroup,
        ParentClosePolicy,
        VersioningIntent,
    )

__all__ = ["InterceptedRuntime", "WorkflowInterceptors"]

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


class InterceptedRuntime(WorkflowRuntime):
    """A workflow runtime whose inbound and outbound calls go through interceptors."""

    def __init__(
        self,
        defn: temporalio.workflow._Definition,
        *,
        interceptors: WorkflowInterceptors,
        **kwargs: Any,
    ) -> None:
        super().__init__(defn, **kwargs)
        self._interceptors = interceptors
        self._outbound: WorkflowOutboundInterceptor | None = None

    def _run_once(self, *, check_conditions: bool) -> None:
        if self._outbound is None and self.workflow.args is not None and not self.context.evicting:
            self._build_chain()
        super()._run_once(check_conditions=check_conditions)

    def _build_chain(self) -> None:
        # On the loop, so that interceptors may call workflow APIs (info(),
        # extern_functions()) while they are made; before the workflow object
        # is, as in temporalio.
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self.loop)
        try:
            root = _InboundRoot(self)
            inbound: WorkflowInboundInterceptor = root
            for interceptor_class in reversed(self._interceptors.classes):
                inbound = interceptor_class(inbound)
            inbound.init(_OutboundRoot(self))
            assert root.outbound is not None
            self._outbound = outbound = root.outbound
            self.context.intercepted = _Chain(self, inbound, outbound)
        finally:
            asyncio.events._set_running_loop(previous)

    def evict(self) -> None:
        super().evict()
        # The chain refers back to the runtime: dropped, reference counting frees both.
        self.context.intercepted = None
        self._outbound = None

    @property
    def outbound(self) -> WorkflowOutboundInterceptor:
        """The outermost outbound interceptor."""
        if self._outbound is None:
            raise RuntimeError("The workflow has not started yet")
        return self._outbound

    # -- temporalio.workflow._Runtime: what goes through the outbound chain ------------------

    def workflow_info(self) -> temporalio.workflow.Info:
        if self._outbound is None:
            return super().workflow_info()
        return self._outbound.info()

    def workflow_extern_functions(self) -> Mapping[str, Callable[..., Any]]:
        return self._interceptors.extern_functions

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
        self.context.check_may_schedule("continue as new")
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
        self.outbound.continue_as_new(
            ContinueAsNewInput(
                workflow=name,
                args=args,
                task_queue=task_queue,
                run_timeout=run_timeout,
                task_timeout=task_timeout,
                backoff_start_interval=backoff_start_interval,
                retry_policy=retry_policy,
                memo=memo,
                search_attributes=search_attributes,
                headers={},
                arg_types=arg_types,
                versioning_intent=versioning_intent,
                initial_versioning_behavior=initial_versioning_behavior,
                event_groups=event_groups,
            )
        )

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
        self.context.check_may_schedule("start activity")
        name, arg_types, ret_type = _activity(activity, result_type)
        return self.outbound.start_activity(
            StartActivityInput(
                activity=name,
                args=args,
                activity_id=activity_id,
                task_queue=task_queue,
                schedule_to_close_timeout=schedule_to_close_timeout,
                schedule_to_start_timeout=schedule_to_start_timeout,
                start_to_close_timeout=start_to_close_timeout,
                heartbeat_timeout=heartbeat_timeout,
                retry_policy=retry_policy,
                cancellation_type=cancellation_type,
                headers={},
                disable_eager_execution=False,
                arg_types=arg_types,
                ret_type=ret_type,
                versioning_intent=versioning_intent,
                summary=summary,
                event_groups=event_groups,
                priority=priority,
            )
        )

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
        self.context.check_may_schedule("start local activity")
        name, arg_types, ret_type = _activity(activity, result_type)
        return self.outbound.start_local_activity(
            StartLocalActivityInput(
                activity=name,
                args=args,
                activity_id=activity_id,
                schedule_to_close_timeout=schedule_to_close_timeout,
                schedule_to_start_timeout=schedule_to_start_timeout,
                start_to_close_timeout=start_to_close_timeout,
                retry_policy=retry_policy,
                local_retry_threshold=local_retry_threshold,
                cancellation_type=cancellation_type,
                summary=summary,
                event_groups=event_groups,
                headers={},
                arg_types=arg_types,
                ret_type=ret_type,
            )
        )

    def workflow_start_child_workflow(
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
    ) -> Coroutine[Any, Any, ChildWorkflowHandle[Any, Any]]:
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
                id=id,
                task_queue=task_queue,
                cancellation_type=cancellation_type,
                parent_close_policy=parent_close_policy,
                execution_timeout=execution_timeout,
                run_timeout=run_timeout,
                task_timeout=task_timeout,
                id_reuse_policy=id_reuse_policy,
                retry_policy=retry_policy,
                cron_schedule=cron_schedule,
                memo=memo,
                search_attributes=search_attributes,
                headers={},
                arg_types=arg_types,
                ret_type=ret_type,
                versioning_intent=versioning_intent,
                versioning_override=versioning_override,
                static_summary=static_summary,
                static_details=static_details,
                event_groups=event_groups,
                priority=priority,
            )
        )


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


class _Chain:
    """The runtime's parts call the chain through this (``context.Intercepted``)."""

    def __init__(
        self,
        runtime: InterceptedRuntime,
        inbound: WorkflowInboundInterceptor,
        outbound: WorkflowOutboundInterceptor,
    ) -> None:
        self._runtime = runtime
        self._inbound = inbound
        self._outbound = outbound

    def execute_workflow(
        self, args: Sequence[Any], headers: Mapping[str, Payload]
    ) -> Coroutine[Any, Any, Any]:
        defn = self._runtime.context.defn
        return self._inbound.execute_workflow(
            ExecuteWorkflowInput(type=defn.cls, run_fn=defn.run_fn, args=args, headers=headers)
        )

    def handle_signal(
        self, name: str, args: Sequence[Any], headers: Mapping[str, Payload]
    ) -> Coroutine[Any, Any, None]:
        return self._inbound.handle_signal(
            HandleSignalInput(signal=name, args=args, headers=headers)
        )

    def handle_query(
        self, name: str, args: Sequence[Any], headers: Mapping[str, Payload]
    ) -> Coroutine[Any, Any, Any]:
        return self._inbound.handle_query(
            HandleQueryInput(id=_QUERY_ID, query=name, args=args, headers=headers)
        )

    def update_input(
        self, update_id: str, name: str, args: Sequence[Any], headers: Mapping[str, Payload]
    ) -> HandleUpdateInput:
        return HandleUpdateInput(id=update_id, update=name, args=args, headers=headers)

    def validate_update(self, update: object) -> None:
        assert isinstance(update, HandleUpdateInput)
        self._inbound.handle_update_validator(update)

    def handle_update(self, update: object, args: Sequence[Any]) -> Coroutine[Any, Any, Any]:
        assert isinstance(update, HandleUpdateInput)
        # The handler gets arguments decoded anew: a validator may have changed its own.
        update.args = args
        return self._inbound.handle_update_handler(update)

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
            return self._outbound.signal_child_workflow(
                SignalChildWorkflowInput(
                    signal=name,
                    args=args,
                    child_workflow_id=workflow_id,
                    headers={},
                    event_groups=event_groups,
                )
            )
        return self._outbound.signal_external_workflow(
            SignalExternalWorkflowInput(
                signal=name,
                args=args,
                namespace=self._runtime.context.namespace,
                workflow_id=workflow_id,
                workflow_run_id=run_id,
                headers={},
                event_groups=event_groups,
            )
        )


class _InboundRoot(WorkflowInboundInterceptor):
    """The innermost inbound interceptor: runs the workflow and its handlers."""

    def __init__(self, runtime: InterceptedRuntime) -> None:
        # Like temporalio's innermost link: no next interceptor to call.
        self._runtime = runtime
        self.outbound: WorkflowOutboundInterceptor | None = None

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        self.outbound = outbound

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        return await input.run_fn(self._runtime.context.object, *input.args)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        handlers = self._runtime.handlers
        handler = handlers.signal_handler(input.signal) or handlers.signal_handler(None)
        assert handler is not None
        if inspect.iscoroutinefunction(handler):
            await handler(*input.args)
        else:
            handler(*input.args)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        handlers = self._runtime.handlers
        handler = handlers.query_handler(input.query) or handlers.query_handler(None)
        assert handler is not None
        if inspect.iscoroutinefunction(handler):
            return await handler(*input.args)
        return handler(*input.args)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        validator = self._runtime.handlers.update_validator(input.update)
        if validator is not None:
            validator(*input.args)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        handlers = self._runtime.handlers
        handler = handlers.update_handler(input.update) or handlers.update_handler(None)
        assert handler is not None
        if inspect.iscoroutinefunction(handler):
            return await handler(*input.args)
        return handler(*input.args)


class _OutboundRoot(WorkflowOutboundInterceptor):
    """The innermost outbound interceptor: makes the commands, with their headers."""

    def __init__(self, runtime: InterceptedRuntime) -> None:
        # Like temporalio's innermost link: no next interceptor to call.
        self._runtime = runtime

    def info(self) -> temporalio.workflow.Info:
        return self._runtime.workflow.get_info()

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        self._runtime.workflow.request_continue_as_new(
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
        await self._runtime.children.signal_external(
            input.signal,
            input.args,
            workflow_id=input.child_workflow_id,
            run_id=None,
            child=True,
            event_groups=input.event_groups,
            headers=input.headers,
        )

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        await self._runtime.children.signal_external(
            input.signal,
            input.args,
            workflow_id=input.workflow_id,
            run_id=input.workflow_run_id,
            child=False,
            event_groups=input.event_groups,
            headers=input.headers,
        )

    def start_activity(self, input: StartActivityInput) -> temporalio.workflow.ActivityHandle[Any]:
        return self._runtime.activities.start(
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
        return self._runtime.activities.start_local(
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
        return await self._runtime.children.start_child(
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
