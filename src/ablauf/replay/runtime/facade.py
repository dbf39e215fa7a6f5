"""ablauf's ``temporalio.workflow._Runtime``: where ``workflow.*`` calls land.

Every public ``temporalio.workflow`` function calls ``_Runtime.current()``,
which finds the runtime on the running :class:`WorkflowEventLoop`.
:class:`WorkflowRuntime` only composes and delegates: each kind of work has
its own object, which owns its state and is handed the shared pieces it needs
(:class:`RunContext`, the loop, the command machines):

- :class:`Timers`: timers and ``wait_condition``;
- :class:`Activities`: scheduling, cancelling and resolving activities;
- :class:`Children`: child workflows, signals and cancels to other workflows;
- :class:`Handlers`: signal, query and update handlers, signals and queries;
- :class:`Updates`: running updates;
- :class:`WorkflowRun`: start and close, info, memo, search attributes,
  patches, randomness.

Activations follow temporalio 1.35's rules: jobs are applied in three groups
(patches, then signals, then everything else), the loop runs until every
coroutine is blocked after each group, and ``wait_condition`` predicates are
checked whenever the loop goes idle after signal or other jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import timedelta
from random import Random
from typing import TYPE_CHECKING, Any, NoReturn

import nexusrpc
import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure

from ablauf.errors import UnsupportedFeatureError
from ablauf.replay.commands import CommandMachines
from ablauf.replay.handles import close_coroutine
from ablauf.replay.history import InternalFlags
from ablauf.replay.loop import WorkflowEventLoop
from ablauf.replay.machines import (
    JOB_GROUPS,
    OTHER_GROUP,
    CancelWorkflow,
    DoUpdate,
    FireTimer,
    InitializeWorkflow,
    Job,
    NotifyHasPatch,
    ResolveActivity,
    ResolveCancelExternal,
    ResolveChild,
    ResolveChildStart,
    ResolveSignalExternal,
    SignalWorkflow,
    UpdateRandomSeed,
)
from ablauf.replay.runtime.activities import Activities
from ablauf.replay.runtime.children import Children
from ablauf.replay.runtime.context import Intercepted, RunContext
from ablauf.replay.runtime.signals import Handlers, QueryFailed
from ablauf.replay.runtime.timers import Timers
from ablauf.replay.runtime.updates import Updates
from ablauf.replay.runtime.workflow import WorkflowRun

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

    from ablauf.replay.runtime.intercept import WorkflowInterceptors

__all__ = ["WorkflowRuntime"]


class WorkflowRuntime(temporalio.workflow._Runtime):
    """The runtime of one workflow run, and what the instance needs to drive it."""

    def __init__(
        self,
        defn: temporalio.workflow._Definition,
        *,
        workflow_id: str,
        run_id: str,
        namespace: str,
        data_converter: temporalio.converter.DataConverter,
        failure_exception_types: Sequence[type[BaseException]],
        machines: CommandMachines,
        flags: InternalFlags,
        metric_meter: temporalio.common.MetricMeter | None = None,
        interceptors: WorkflowInterceptors | None = None,
    ) -> None:
        super().__init__()
        self._metric_meter = metric_meter
        self._workflow_meter: temporalio.common.MetricMeter | None = None
        self.context = context = RunContext(
            defn,
            namespace=namespace,
            workflow_id=workflow_id,
            run_id=run_id,
            data_converter=data_converter,
            failure_exception_types=failure_exception_types,
        )
        self.timers = Timers(context, machines)
        # AbstractEventLoop's I/O methods stay unimplemented on purpose (see loop.py).
        self.loop = context.loop = WorkflowEventLoop(self.timers)  # type: ignore[abstract]
        self.activities = Activities(context, machines, flags)
        self.children = Children(context, machines)
        self.workflow = WorkflowRun(context, machines)
        self.handlers = Handlers(context, self.workflow.top_level)
        self.updates = Updates(context, machines, self.handlers)
        self.intercepted: Intercepted | None = None
        if interceptors is not None:
            # Imported only here: it imports temporalio's worker package.
            from ablauf.replay.runtime.intercept import Interception

            self.intercepted = context.intercepted = Interception(
                interceptors,
                context=context,
                workflow=self.workflow,
                handlers=self.handlers,
                activities=self.activities,
                children=self.children,
            )
        temporalio.workflow._Runtime.set_on_loop(self.loop, self)

    # -- activations ---------------------------------------------------------------------------

    def activate(
        self, jobs: Sequence[Job], *, replaying: bool, single_batch: bool
    ) -> BaseException | None:
        """Apply ``jobs`` and run workflow code until blocked; return a task-failing error."""
        context = self.context
        context.replaying = replaying
        context.single_batch = single_batch
        groups: tuple[list[Job], list[Job], list[Job]] = ([], [], [])
        start: InitializeWorkflow | None = None
        for job in jobs:
            groups[JOB_GROUPS.get(type(job), OTHER_GROUP)].append(job)
            if type(job) is InitializeWorkflow:
                start = job
        try:
            if start is not None:
                self.workflow.prepare_start(start)
            if single_batch:
                for group in groups:
                    for job in group:
                        self._apply(job)
                if jobs:
                    self._run_once(check_conditions=bool(groups[1] or groups[2]))
            else:
                for index, group in enumerate(groups):
                    if group:
                        for job in group:
                            self._apply(job)
                        self._run_once(check_conditions=index > 0)
        except Exception as err:
            if context.evicting:
                return None
            if not context.is_failure_exception(err):
                return err
            try:
                self.workflow.fail(err)
            except Exception as inner:
                return inner
        return None

    def _run_once(self, *, check_conditions: bool) -> None:
        loop = self.loop
        context = self.context
        timers = self.timers
        # The loop is the thread's running loop while workflow code runs (not a
        # context manager: this runs once per activation).
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(loop)
        try:
            # The workflow object is built on the loop so __init__ may use workflow APIs.
            if context.object is None and self.workflow.args is not None and not context.evicting:
                if self.intercepted is not None:
                    self.intercepted.build()
                context.object = self.workflow.instantiate()
            while loop.has_ready():
                loop.run_ready()
                if check_conditions:
                    timers.check_conditions()
        finally:
            asyncio.events._set_running_loop(previous)

    def _apply(self, job: Job) -> None:
        """Hand a job to the part of the runtime that owns its kind."""
        kind = type(job)
        if kind is ResolveActivity:
            self.activities.resolve(job)  # type: ignore[arg-type]
        elif kind is FireTimer:
            self.timers.fire(job.seq)  # type: ignore[attr-defined]
        elif kind is SignalWorkflow:
            self.handlers.signal(job)  # type: ignore[arg-type]
        elif kind is InitializeWorkflow:
            self.workflow.start()
        elif kind is CancelWorkflow:
            self.workflow.cancel(job.reason)  # type: ignore[attr-defined]
        elif kind is NotifyHasPatch:
            self.workflow.patches_notified.add(job.patch_id)  # type: ignore[attr-defined]
        elif kind is ResolveChildStart:
            self.children.resolve_start(job)  # type: ignore[arg-type]
        elif kind is ResolveChild:
            self.children.resolve(job)  # type: ignore[arg-type]
        elif kind is ResolveSignalExternal:
            self.children.resolve_signal(job)  # type: ignore[arg-type]
        elif kind is ResolveCancelExternal:
            self.children.resolve_cancel(job)  # type: ignore[arg-type]
        elif kind is DoUpdate:
            self.updates.run(job)  # type: ignore[arg-type]
        elif kind is UpdateRandomSeed:
            self.workflow.reseed(job.seed)  # type: ignore[attr-defined]
        else:
            raise RuntimeError(f"Unrecognized job: {job!r}")

    def warn_unfinished_handlers(self) -> None:
        """Warn, like the Python SDK, when the run ends while handlers still run."""
        self.updates.warn_unfinished()
        self.handlers.warn_unfinished_signals()

    def query(
        self, name: str, args: Sequence[Payload], headers: Mapping[str, Payload] | None = None
    ) -> Payload:
        """Answer a query against the current state, without changing it."""
        context = self.context
        coro = self.handlers.query(name, args, headers or {})
        # Query activations are always replaying, as in sdk-core.
        replaying = context.replaying
        context.replaying = True
        try:
            task = self.loop.create_task(coro, name=f"query: {name}")
            self._run_once(check_conditions=False)
            if not task.done():
                task.cancel()
                self._run_once(check_conditions=False)
                raise QueryFailed(f"Query handler for '{name}' did not complete")
        finally:
            context.replaying = replaying
        error = task.exception() if not task.cancelled() else asyncio.CancelledError()
        if error is None:
            return task.result()
        failure = Failure()
        try:
            context.failure_converter.to_failure(error, context.payload_converter, failure)
        except Exception:
            failure = Failure(message=str(error))
        raise QueryFailed(failure.message, failure)

    def evict(self) -> None:
        """Cancel every coroutine without producing commands, then drop the loop."""
        loop = self.loop
        self.context.evicting = loop.evicting = True
        self.context.replaying = True
        tasks = loop.live_tasks()
        for task in tasks:
            task.cancel()
        if tasks or loop.has_ready():
            # Nothing that happens during teardown matters.
            with contextlib.suppress(BaseException):
                self._run_once(check_conditions=False)
        for task in loop.live_tasks():
            # A coroutine that swallowed its cancellation is closed by force.
            close_coroutine(task.get_coro())  # type: ignore[arg-type]
        loop.forget_tasks()
        self.timers.conditions.clear()
        temporalio.workflow._Runtime.set_on_loop(loop, None)
        # Break the run's reference cycles (loop, tasks, bound built-in handlers) so
        # that plain reference counting frees a closed workflow, not the cyclic GC.
        loop.close_scheduler()
        self.workflow.primary_task = None
        self.handlers.clear()
        if self.intercepted is not None:
            self.intercepted.drop()

    # -- temporalio.workflow._Runtime: information -------------------------------------------

    def workflow_info(self) -> temporalio.workflow.Info:
        if self.intercepted is not None:
            return self.intercepted.info()
        return self.workflow.get_info()

    def workflow_instance(self) -> Any:
        return self.context.object

    def workflow_time_ns(self) -> int:
        return self.loop.time_ns

    def workflow_is_replaying(self) -> bool:
        return self.context.replaying

    def workflow_is_replaying_history_events(self) -> bool:
        return self.context.replaying and not self.context.in_query

    def workflow_is_read_only(self) -> bool:
        return self.context.read_only

    def workflow_get_current_history_length(self) -> int:
        return self.context.history_length

    def workflow_get_current_history_size(self) -> int:
        return self.context.history_size

    def workflow_is_continue_as_new_suggested(self) -> bool:
        return self.context.continue_as_new_suggested

    def workflow_is_target_worker_deployment_version_changed(self) -> bool:
        return False

    def workflow_get_current_build_id(self) -> str:
        return ""

    def workflow_get_current_deployment_version(
        self,
    ) -> temporalio.common.WorkerDeploymentVersion | None:
        return None

    def workflow_cancellation_reason(self) -> str | None:
        return self.context.cancel_reason

    def workflow_extern_functions(self) -> Mapping[str, Callable[..., Any]]:
        if self.intercepted is not None:
            return self.intercepted.extern_functions()
        return {}

    def workflow_metric_meter(self) -> temporalio.common.MetricMeter:
        meter = self._workflow_meter
        if meter is None:
            if self._metric_meter is None:
                return temporalio.common.MetricMeter.noop
            # Imported only when the runtime exports metrics.
            from ablauf.replay.runtime.metrics import ReplaySafeMeter

            context = self.context
            meter = self._workflow_meter = ReplaySafeMeter(
                self._metric_meter.with_additional_attributes(
                    {
                        "namespace": context.namespace,
                        "task_queue": context.task_queue,
                        "workflow_type": context.workflow_type,
                    }
                ),
                lambda: context.replaying,
            )
        return meter

    def workflow_payload_converter(self) -> temporalio.converter.PayloadConverter:
        return self.context.payload_converter

    def workflow_get_current_details(self) -> str:
        return self.context.current_details

    def workflow_set_current_details(self, details: str) -> None:
        self.context.check_may_schedule("set current details")
        self.context.current_details = details

    def workflow_is_failure_exception(self, err: BaseException) -> bool:
        return self.context.is_failure_exception(err)

    def workflow_has_last_completion_result(self) -> bool:
        return self.workflow.has_last_completion_result()

    def workflow_last_completion_result(self, type_hint: type | None) -> Any | None:
        return self.workflow.last_completion_result(type_hint)

    def workflow_last_failure(self) -> BaseException | None:
        return self.workflow.last_failure()

    def workflow_memo(self) -> Mapping[str, Any]:
        return self.workflow.memo()

    def workflow_memo_value(self, key: str, default: Any, *, type_hint: type | None) -> Any:
        return self.workflow.memo_value(key, default, type_hint=type_hint)

    def workflow_upsert_memo(
        self, updates: Mapping[str, Any], *, event_groups: Sequence[EventGroup] | None = None
    ) -> None:
        self.workflow.upsert_memo(updates, event_groups=event_groups)

    def workflow_upsert_search_attributes(
        self,
        attributes: (
            temporalio.common.SearchAttributes
            | Sequence[temporalio.common.SearchAttributeUpdate[Any]]
        ),
        *,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> None:
        self.workflow.upsert_search_attributes(attributes, event_groups=event_groups)

    def workflow_patch(
        self, id: str, *, deprecated: bool, event_groups: Sequence[EventGroup] | None = None
    ) -> bool:
        return self.workflow.patch(id, deprecated=deprecated, event_groups=event_groups)

    def workflow_random(self) -> Random:
        self.context.check_may_schedule("random")
        return self.workflow.random

    def workflow_random_seed(self) -> int:
        return self.workflow.seed

    def workflow_register_random_seed_callback(self, callback: Callable[[int], None]) -> None:
        self.context.check_may_schedule("register random seed callback")
        self.workflow.register_seed_callback(callback)

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
        if self.intercepted is not None:
            self.intercepted.continue_as_new(
                args,
                workflow=workflow,
                task_queue=task_queue,
                run_timeout=run_timeout,
                task_timeout=task_timeout,
                backoff_start_interval=backoff_start_interval,
                retry_policy=retry_policy,
                memo=memo,
                search_attributes=search_attributes,
                versioning_intent=versioning_intent,
                initial_versioning_behavior=initial_versioning_behavior,
                event_groups=event_groups,
            )
        self.workflow.request_continue_as_new(
            args,
            workflow=workflow,
            task_queue=task_queue,
            run_timeout=run_timeout,
            task_timeout=task_timeout,
            backoff_start_interval=backoff_start_interval,
            retry_policy=retry_policy,
            memo=memo,
            search_attributes=search_attributes,
            versioning_intent=versioning_intent,
            initial_versioning_behavior=initial_versioning_behavior,
            event_groups=event_groups,
        )

    # -- temporalio.workflow._Runtime: handlers ----------------------------------------------

    def workflow_get_query_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.query_handler(name)

    def workflow_get_signal_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.signal_handler(name)

    def workflow_get_update_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.update_handler(name)

    def workflow_get_update_validator(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.update_validator(name)

    def workflow_set_query_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        self.handlers.set_query_handler(name, handler)

    def workflow_set_signal_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        self.handlers.set_signal_handler(name, handler)

    def workflow_set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., Any] | None,
    ) -> None:
        self.handlers.set_update_handler(name, handler, validator)

    def workflow_all_handlers_finished(self) -> bool:
        return not self.handlers.in_progress_signals and not self.updates.in_progress

    # -- temporalio.workflow._Runtime: timers ------------------------------------------------

    # The coroutines are the collaborators' own: no extra frame to resume on each step.

    def workflow_sleep(
        self,
        duration: float,
        *,
        summary: str | None = None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> Coroutine[Any, Any, None]:
        return self.timers.sleep(duration, summary=summary, event_groups=event_groups)

    def workflow_wait_condition(
        self,
        fn: Callable[[], bool],
        *,
        timeout: float | None = None,
        timeout_summary: str | None = None,
        event_groups: Sequence[EventGroup] | None = None,
    ) -> Coroutine[Any, Any, None]:
        return self.timers.wait_condition(
            fn, timeout=timeout, timeout_summary=timeout_summary, event_groups=event_groups
        )

    # -- temporalio.workflow._Runtime: activities --------------------------------------------

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
        if self.intercepted is not None:
            return self.intercepted.start_activity(
                activity,
                args,
                task_queue=task_queue,
                result_type=result_type,
                schedule_to_close_timeout=schedule_to_close_timeout,
                schedule_to_start_timeout=schedule_to_start_timeout,
                start_to_close_timeout=start_to_close_timeout,
                heartbeat_timeout=heartbeat_timeout,
                retry_policy=retry_policy,
                cancellation_type=cancellation_type,
                activity_id=activity_id,
                versioning_intent=versioning_intent,
                summary=summary,
                event_groups=event_groups,
                priority=priority,
            )
        return self.activities.start(
            activity,
            args,
            task_queue=task_queue,
            result_type=result_type,
            schedule_to_close_timeout=schedule_to_close_timeout,
            schedule_to_start_timeout=schedule_to_start_timeout,
            start_to_close_timeout=start_to_close_timeout,
            heartbeat_timeout=heartbeat_timeout,
            retry_policy=retry_policy,
            cancellation_type=cancellation_type,
            activity_id=activity_id,
            versioning_intent=versioning_intent,
            summary=summary,
            event_groups=event_groups,
            priority=priority,
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
        if event_groups:
            raise UnsupportedFeatureError("Event groups on local activities are not supported yet")
        if self.intercepted is not None:
            return self.intercepted.start_local_activity(
                activity,
                args,
                result_type=result_type,
                schedule_to_close_timeout=schedule_to_close_timeout,
                schedule_to_start_timeout=schedule_to_start_timeout,
                start_to_close_timeout=start_to_close_timeout,
                retry_policy=retry_policy,
                local_retry_threshold=local_retry_threshold,
                cancellation_type=cancellation_type,
                activity_id=activity_id,
                summary=summary,
                event_groups=event_groups,
            )
        return self.activities.start_local(
            activity,
            args,
            result_type=result_type,
            schedule_to_close_timeout=schedule_to_close_timeout,
            schedule_to_start_timeout=schedule_to_start_timeout,
            start_to_close_timeout=start_to_close_timeout,
            retry_policy=retry_policy,
            local_retry_threshold=local_retry_threshold,
            cancellation_type=cancellation_type,
            activity_id=activity_id,
            summary=summary,
        )

    # -- temporalio.workflow._Runtime: child and external workflows --------------------------

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
        if self.intercepted is not None:
            return self.intercepted.start_child_workflow(
                workflow,
                args,
                id=id,
                task_queue=task_queue,
                result_type=result_type,
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
                versioning_intent=versioning_intent,
                static_summary=static_summary,
                static_details=static_details,
                event_groups=event_groups,
                priority=priority,
                versioning_override=versioning_override,
            )
        return self.children.start_child(
            workflow,
            args,
            id=id,
            task_queue=task_queue,
            result_type=result_type,
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
            versioning_intent=versioning_intent,
            static_summary=static_summary,
            static_details=static_details,
            event_groups=event_groups,
            priority=priority,
            versioning_override=versioning_override,
        )

    def workflow_get_external_workflow_handle(
        self, id: str, *, run_id: str | None
    ) -> ExternalWorkflowHandle[Any]:
        return self.children.external_handle(id, run_id)

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
