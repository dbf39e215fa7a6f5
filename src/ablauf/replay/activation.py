"""Driving workflow code: applying activation jobs, running the loop, queries, eviction.

Follows temporalio 1.35's activation rules: jobs are applied in three groups
(patches, then signals, then everything else), the loop runs until every
coroutine is blocked after each group, and ``wait_condition`` predicates are
checked whenever the loop goes idle after signal or other jobs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import inspect
import json
import logging
import traceback
import warnings
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import temporalio.api.sdk.v1
import temporalio.common
import temporalio.converter
import temporalio.exceptions
import temporalio.workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import ContinueAsNewVersioningBehavior
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import WorkflowExecutionStartedEventAttributes
from temporalio.workflow._event_groups import _inbound_event_group, _inbound_update_event_group

from ablauf.payloads import from_payloads, to_payloads
from ablauf.replay import history
from ablauf.replay.handles import ContinueAsNew, ContinueAsNewRequest, close_coroutine
from ablauf.replay.history import C
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
from ablauf.replay.operations import WorkflowOperations, encode_search_attributes
from ablauf.serialization import with_context

__all__ = ["QueryFailed", "WorkflowDriver"]

logger = logging.getLogger(__name__)

# StartChildWorkflowExecutionFailedCause.WORKFLOW_ALREADY_EXISTS
_WORKFLOW_ALREADY_EXISTS = 1


class QueryFailed(Exception):
    """A query could not be answered; ``message`` is what a Temporal client would see."""

    def __init__(self, message: str, failure: Failure | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.failure = failure


class WorkflowDriver(WorkflowOperations):
    """The runtime plus what the instance needs to drive it."""

    def __init__(self, *args: Any, run_id: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_id = run_id
        self.buffered_signals: dict[str, list[SignalWorkflow]] = {}
        self.started: WorkflowExecutionStartedEventAttributes | None = None
        self._workflow_args: list[Any] | None = None
        self._signal_count = 0
        self._cancel_pending = False
        for name, fn, ret_type in (
            ("__stack_trace", self._stack_trace, str),
            ("__enhanced_stack_trace", self._enhanced_stack_trace, None),
            ("__temporal_workflow_metadata", self._workflow_metadata, None),
        ):
            self.queries[name] = temporalio.workflow._QueryDefinition(
                name=name, fn=fn, is_method=False, arg_types=[], ret_type=ret_type
            )

    # -- activations -----------------------------------------------------------------------------

    def activate(
        self, jobs: Sequence[Job], *, replaying: bool, single_batch: bool
    ) -> BaseException | None:
        """Apply ``jobs`` and run workflow code until blocked; return a task-failing error."""
        self.replaying = replaying
        self.single_batch = single_batch
        groups: tuple[list[Job], list[Job], list[Job]] = ([], [], [])
        start: InitializeWorkflow | None = None
        for job in jobs:
            groups[JOB_GROUPS.get(type(job), OTHER_GROUP)].append(job)
            if type(job) is InitializeWorkflow:
                start = job
        try:
            if start is not None:
                self._prepare_start(start)
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
            if self.evicting:
                return None
            if not self.workflow_is_failure_exception(err):
                return err
            try:
                self._fail_workflow(err)
            except Exception as inner:
                return inner
        return None

    def _run_once(self, *, check_conditions: bool) -> None:
        loop = self.loop
        # The loop is the thread's running loop while workflow code runs (not a
        # context manager: this runs once per activation).
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(loop)
        try:
            # The workflow object is built on the loop so __init__ may use workflow APIs.
            if self.object is None and self._workflow_args is not None and not self.evicting:
                self.object = self._instantiate()
            while loop.has_ready():
                loop.run_ready()
                if check_conditions and self.conditions:
                    self.conditions[:] = [
                        c for c in self.conditions if not c[1].done() and not _satisfied(*c)
                    ]
        finally:
            asyncio.events._set_running_loop(previous)

    def _apply(self, job: Job) -> None:
        kind = type(job)
        if kind is ResolveActivity:
            self._resolve_activity(job)  # type: ignore[arg-type]
        elif kind is FireTimer:
            self.fire_timer(job.seq)  # type: ignore[attr-defined]
        elif kind is SignalWorkflow:
            self._signal(job)  # type: ignore[arg-type]
        elif kind is InitializeWorkflow:
            self._start_run()
        elif kind is CancelWorkflow:
            self._cancel(job.reason)  # type: ignore[attr-defined]
        elif kind is NotifyHasPatch:
            self.patches_notified.add(job.patch_id)  # type: ignore[attr-defined]
        elif kind is ResolveChildStart:
            self._resolve_child_start(job)  # type: ignore[arg-type]
        elif kind is ResolveChild:
            self._resolve_child(job)  # type: ignore[arg-type]
        elif kind is ResolveSignalExternal:
            self._resolve_external(self.external_signals, job)  # type: ignore[arg-type]
        elif kind is ResolveCancelExternal:
            self._resolve_external(self.external_cancels, job)  # type: ignore[arg-type]
        elif kind is DoUpdate:
            self._do_update(job)  # type: ignore[arg-type]
        elif kind is UpdateRandomSeed:
            self.reseed(job.seed)  # type: ignore[attr-defined]
        else:
            raise RuntimeError(f"Unrecognized job: {job!r}")

    # -- start, completion, cancellation ---------------------------------------------------------

    def _prepare_start(self, job: InitializeWorkflow) -> None:
        attrs = job.attributes
        self.started = attrs
        self.task_queue = attrs.task_queue.name
        self.workflow_type = attrs.workflow_type.name
        # A partial, not a lambda over self: no reference cycle for the GC to find.
        self.make_info = functools.partial(
            history.workflow_info,
            attrs,
            namespace=self.namespace,
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            start_event_time=job.start_time,
            first_task_time=datetime.fromtimestamp(self.loop.time_ns / 1e9, UTC),
        )
        self.search_attributes = dict(attrs.search_attributes.indexed_fields)
        self.last_completion_result = list(attrs.last_completion_result.payloads)
        self.last_failure = attrs.continued_failure if attrs.HasField("continued_failure") else None
        self.seed_from_run(attrs.original_execution_run_id)
        payloads = attrs.input.payloads
        if self.defn.name is None:
            # Dynamic workflows get all arguments as one list of raw values.
            raw = [temporalio.common.RawValue] * len(payloads)
            self._workflow_args = [self._convert(payloads, raw, self.payload_converter)]
        else:
            self._workflow_args = self._convert(
                payloads, self.defn.arg_types, self.payload_converter
            )

    def _instantiate(self) -> Any:
        cls = self.defn.cls
        if hasattr(cls.__init__, "__temporal_workflow_init"):  # type: ignore[misc]
            obj = cls(*(self._workflow_args or ()))
        else:
            obj = cls()
        if self.defn.name is None and self.defn.dynamic_config_fn is not None:
            with self.as_read_only(in_query=False):
                config = self.defn.dynamic_config_fn(obj)
            if config is not None and config.failure_exception_types is not None:
                self.dynamic_failure_types = config.failure_exception_types
        return obj

    def _start_run(self) -> None:
        run_fn = self.defn.run_fn

        async def run_workflow() -> None:
            try:
                result = await run_fn(self.object, *(self._workflow_args or ()))
                payloads = to_payloads(self.payload_converter, [result])
                if len(payloads) != 1:
                    raise ValueError(f"Expected 1 result payload, got {len(payloads)}")
                self.check_may_schedule("add command")
                command = self.machines.close_workflow(C.COMPLETE_WORKFLOW_EXECUTION)
                command.complete_workflow_execution_command_attributes.result.payloads.extend(
                    payloads
                )
            except Exception:
                if self.evicting:
                    return
                raise

        self.primary_task = self.loop.create_task(self._top_level(run_workflow()), name="run")
        if self._cancel_pending:
            self._cancel_pending = False
            self.loop.call_soon(self.primary_task.cancel)

    async def _top_level(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run the workflow or a signal handler, turning its outcome into commands."""
        try:
            await coro
        except ContinueAsNew as request:
            self._continue_as_new(request.request)
        except (Exception, asyncio.CancelledError) as err:
            if self.evicting:
                return
            error: BaseException = err
            if isinstance(err, asyncio.CancelledError):
                error = temporalio.exceptions.CancelledError(str(err))
            # Cancellation is a state on Temporal: once requested, any cancellation
            # error that escapes cancels the workflow.
            if self.cancel_reason is not None and temporalio.exceptions.is_cancelled_exception(
                error
            ):
                self.check_may_schedule("add command")
                command = self.machines.close_workflow(C.CANCEL_WORKFLOW_EXECUTION)
                command.cancel_workflow_execution_command_attributes.SetInParent()
            elif self.workflow_is_failure_exception(error):
                try:
                    self._fail_workflow(error)
                except Exception as inner:
                    self.loop.failure = inner
            else:
                self.loop.failure = error

    def _fail_workflow(self, err: BaseException) -> None:
        failure = Failure()
        try:
            self.failure_converter.to_failure(err, self.payload_converter, failure)
        except Exception as inner:
            raise ValueError("Failed converting workflow exception") from inner
        self.check_may_schedule("add command")
        command = self.machines.close_workflow(C.FAIL_WORKFLOW_EXECUTION)
        command.fail_workflow_execution_command_attributes.failure.CopyFrom(failure)

    def _continue_as_new(self, request: ContinueAsNewRequest) -> None:
        converter = self.payload_converter
        payloads = to_payloads(converter, request.args) if request.args else None
        memo = (
            {k: converter.to_payloads([v])[0] for k, v in request.memo.items()}
            if request.memo
            else None
        )
        self.check_may_schedule("add command")
        command = self.machines.close_workflow(C.CONTINUE_AS_NEW_WORKFLOW_EXECUTION)
        attrs = command.continue_as_new_workflow_execution_command_attributes
        info = self._info()
        # Explicit values where Temporal would inherit them, so the engine need not guess.
        attrs.workflow_type.name = request.workflow or info.workflow_type
        attrs.task_queue.name = request.task_queue or info.task_queue
        if payloads:
            attrs.input.payloads.extend(payloads)
        if request.run_timeout:
            attrs.workflow_run_timeout.FromTimedelta(request.run_timeout)
        if request.task_timeout:
            attrs.workflow_task_timeout.FromTimedelta(request.task_timeout)
        if request.backoff_start_interval:
            attrs.backoff_start_interval.FromTimedelta(request.backoff_start_interval)
        started = self.started
        # Like sdk-core: unset memo and retry policy carry over from the start, unset
        # search attributes are the current ones.
        if request.retry_policy:
            request.retry_policy.apply_to_proto(attrs.retry_policy)
        elif started is not None and started.HasField("retry_policy"):
            attrs.retry_policy.CopyFrom(started.retry_policy)
        if memo:
            for key, payload in memo.items():
                attrs.memo.fields[key].CopyFrom(payload)
        elif started is not None:
            for key, payload in started.memo.fields.items():
                attrs.memo.fields[key].CopyFrom(payload)
        if request.search_attributes:
            encode_search_attributes(request.search_attributes, attrs)
        else:
            for key, payload in self.search_attributes.items():
                attrs.search_attributes.indexed_fields[key].CopyFrom(payload)
        if request.initial_versioning_behavior:
            attrs.initial_versioning_behavior = cast(
                ContinueAsNewVersioningBehavior.ValueType, request.initial_versioning_behavior
            )
        command.event_group_markers.extend(request.markers)

    def _cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        if self.primary_task is not None:
            # Deferred so a workflow that has not started yet can still see the cancel.
            self.loop.call_soon(self.primary_task.cancel)
        elif self.single_batch:
            self._cancel_pending = True

    # -- results ---------------------------------------------------------------------------------

    def _resolve_activity(self, job: ResolveActivity) -> None:
        handle = self.activities.pop(job.seq, None)
        if handle is None:
            raise RuntimeError(f"Failed finding activity handle for sequence {job.seq}")
        converter = handle.payload_converter
        if job.failure is None:
            value = None
            if job.result is not None:
                types = [handle.result_type] if handle.result_type else None
                value = self._convert([job.result], types, converter)[0]
            handle.resolve_success(value)
            return
        failure_converter = self.base_failure_converter
        if handle.context is not None:
            failure_converter = with_context(failure_converter, handle.context)
        handle.resolve_failure(failure_converter.from_failure(job.failure, converter))

    def _resolve_child_start(self, job: ResolveChildStart) -> None:
        handle = self.children.get(job.seq)
        if handle is None:
            raise RuntimeError(f"Failed finding child workflow handle for sequence {job.seq}")
        if job.failure is not None:
            del self.children[job.seq]
            handle.resolve_failure(
                handle.failure_converter.from_failure(job.failure, handle.payload_converter)
            )
        elif job.cause:
            del self.children[job.seq]
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

    def _resolve_child(self, job: ResolveChild) -> None:
        handle = self.children.pop(job.seq, None)
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
            value = self._convert([job.result], types, handle.payload_converter)[0]
        handle.resolve_success(value)

    def _resolve_external(
        self,
        pending: dict[int, tuple[asyncio.Future[None], str]],
        job: ResolveSignalExternal | ResolveCancelExternal,
    ) -> None:
        entry = pending.pop(job.seq, None)
        if entry is None:
            raise RuntimeError(f"Failed finding pending external operation for sequence {job.seq}")
        fut, workflow_id = entry
        if fut.cancelled():
            return
        if job.failure is None:
            fut.set_result(None)
            return
        context = temporalio.converter.WorkflowSerializationContext(
            namespace=self.namespace, workflow_id=workflow_id
        )
        fut.set_exception(
            with_context(self.base_failure_converter, context).from_failure(
                job.failure, with_context(self.base_payload_converter, context)
            )
        )

    def _convert(
        self,
        payloads: Sequence[Payload],
        types: Sequence[type] | None,
        converter: temporalio.converter.PayloadConverter,
    ) -> list[Any]:
        if not payloads:
            return []
        if types and len(types) != len(payloads):
            types = None
        try:
            return from_payloads(converter, payloads, list(types) if types else None)
        except temporalio.exceptions.FailureError:
            raise
        except Exception as err:
            if self.workflow_is_failure_exception(err):
                raise
            raise RuntimeError("Failed decoding arguments") from err

    # -- signals ---------------------------------------------------------------------------------

    def _signal(self, job: SignalWorkflow) -> None:
        defn = self.signals.get(job.name) or self.signals.get(None)
        if defn is None:
            # Kept until a handler for it is set.
            self.buffered_signals.setdefault(job.name, []).append(job)
            return
        self._process_signal(defn, job)

    def deliver_buffered_signals(
        self, name: str | None, defn: temporalio.workflow._SignalDefinition
    ) -> None:
        if name is not None:
            for job in self.buffered_signals.pop(name, []):
                self._process_signal(defn, job)
            return
        buffered = self.buffered_signals
        self.buffered_signals = {}
        for jobs in buffered.values():
            for job in jobs:
                self._process_signal(defn, job)

    def _handler_args(
        self,
        name: str,
        payloads: Sequence[Payload],
        defn_name: str | None,
        arg_types: list[type] | None,
        dynamic_vararg: bool,
    ) -> list[Any]:
        converter = self.payload_converter
        if defn_name is None and dynamic_vararg:
            return [name, *self._convert(payloads, arg_types[1:] if arg_types else None, converter)]
        if defn_name is None:
            raw = [temporalio.common.RawValue] * len(payloads)
            return [name, self._convert(payloads, raw, converter)]
        return self._convert(payloads, arg_types, converter)

    def _process_signal(
        self, defn: temporalio.workflow._SignalDefinition, job: SignalWorkflow
    ) -> None:
        try:
            args = self._handler_args(
                job.name, job.input, defn.name, defn.arg_types, defn.dynamic_vararg
            )
        except Exception:
            logger.exception(
                "Failed deserializing signal input for %s on workflow %s, dropping the signal",
                job.name,
                self.workflow_id,
            )
            return
        self._signal_count += 1
        signal_id = self._signal_count
        self.in_progress_signals[signal_id] = (job.name, defn.unfinished_policy)

        async def run_signal() -> None:
            with _inbound_event_group(job.event_id).scope():
                handler = self.workflow_get_signal_handler(
                    job.name
                ) or self.workflow_get_signal_handler(None)
                assert handler is not None
                if inspect.iscoroutinefunction(handler):
                    await handler(*args)
                else:
                    handler(*args)

        task = self.loop.create_task(self._top_level(run_signal()), name=f"signal: {job.name}")
        task.add_done_callback(lambda _: self.in_progress_signals.pop(signal_id, None))

    # -- updates ---------------------------------------------------------------------------------

    def _do_update(self, job: DoUpdate) -> None:
        """Validate (unless replaying an accepted update), accept, run, respond; like the SDK."""
        machines = self.machines

        async def run_update() -> None:
            temporalio.workflow._set_current_update_info(
                temporalio.workflow.UpdateInfo(id=job.update_id, name=job.name)
            )
            request_input = job.request.input
            payloads = list(request_input.args.payloads)
            past_validation = False
            try:
                defn = self.updates.get(job.name) or self.updates.get(None)
                if defn is None:
                    known = " ".join(sorted(k for k in self.updates if k))
                    raise RuntimeError(
                        f"Update handler for '{job.name}' expected but not found, and there "
                        f"is no dynamic handler. known updates: [{known}]"
                    )
                self.in_progress_updates[job.update_id] = (job.name, defn.unfinished_policy)
                args = self._handler_args(
                    job.name, payloads, defn.name, defn.arg_types, defn.dynamic_vararg
                )
                if job.run_validator and defn.validator is not None:
                    with self.as_read_only(in_query=True):
                        validator = self.workflow_get_update_validator(job.name)
                        if validator is not None:
                            validator(*args)
                        # Fresh arguments: the validator may have changed them.
                        args = self._handler_args(
                            job.name, payloads, defn.name, defn.arg_types, defn.dynamic_vararg
                        )
                past_validation = True
                self.check_may_schedule("add command")
                machines.update_accepted(job)
                with _inbound_update_event_group(job.update_id).scope():
                    handler = self.workflow_get_update_handler(
                        job.name
                    ) or self.workflow_get_update_handler(None)
                    assert handler is not None
                    if inspect.iscoroutinefunction(handler):
                        result = await handler(*args)
                    else:
                        result = handler(*args)
                result_payloads = to_payloads(self.payload_converter, [result])
                if len(result_payloads) != 1:
                    raise ValueError(f"Expected 1 result payload, got {len(result_payloads)}")
                self.check_may_schedule("add command")
                machines.update_completed(job, result_payloads[0], None)
            except ContinueAsNew:
                self.loop.failure = RuntimeError("Cannot continue as new from an update handler")
            except (Exception, asyncio.CancelledError) as err:
                if self.evicting:
                    return
                error: BaseException = err
                if isinstance(err, asyncio.CancelledError):
                    error = temporalio.exceptions.CancelledError(
                        f"Cancellation raised within update {err}"
                    )
                if isinstance(error, temporalio.workflow.ReadOnlyContextError):
                    self.loop.failure = error
                    return
                if not past_validation or self.workflow_is_failure_exception(error):
                    failure = Failure()
                    self.failure_converter.to_failure(error, self.payload_converter, failure)
                    if past_validation:
                        machines.update_completed(job, None, failure)
                    else:
                        machines.update_rejected(job, failure)
                else:
                    self.loop.failure = error
            finally:
                self.in_progress_updates.pop(job.update_id, None)

        self.loop.create_task(run_update(), name=f"update: {job.name}")

    def warn_unfinished_handlers(self) -> None:
        """Warn, like the Python SDK, when the run ends while signal handlers still run."""
        if not self.in_progress_updates and not self.in_progress_signals:
            return
        policy = temporalio.workflow.HandlerUnfinishedPolicy.WARN_AND_ABANDON
        updates = [
            {"name": name, "id": update_id}
            for update_id, (name, p) in self.in_progress_updates.items()
            if p == policy
        ]
        if updates:
            warnings.warn(
                temporalio.workflow.UnfinishedUpdateHandlersWarning(
                    "[TMPRL1102] Workflow finished while update handlers are still running. "
                    "This may have interrupted work that the update handler was doing, and "
                    "the client that sent the update will receive a 'workflow execution "
                    "already completed' RPCError instead of the update result. You can wait "
                    "for all update and signal handlers to complete by using `await "
                    "workflow.wait_condition(lambda: workflow.all_handlers_finished())`. "
                    "Alternatively, if both you and the clients sending the update are okay "
                    "with interrupting running handlers when the workflow finishes, and "
                    "causing clients to receive errors, then you can disable this warning via "
                    "the update handler decorator: `@workflow.update(unfinished_policy="
                    "workflow.HandlerUnfinishedPolicy.ABANDON)`. The following updates were "
                    "unfinished (and warnings were not disabled for their handler): "
                    + json.dumps(updates)
                ),
                stacklevel=2,
            )
        names = collections.Counter(
            name for name, p in self.in_progress_signals.values() if p == policy
        )
        if names:
            warnings.warn(
                temporalio.workflow.UnfinishedSignalHandlersWarning(
                    "[TMPRL1102] Workflow finished while signal handlers are still running. "
                    "Wait for them with `await workflow.wait_condition(lambda: "
                    "workflow.all_handlers_finished())`, or set "
                    "`unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON`. "
                    "The following signals were unfinished: "
                    + json.dumps([{"name": n, "count": c} for n, c in names.most_common()])
                ),
                stacklevel=2,
            )

    # -- queries ---------------------------------------------------------------------------------

    def query(self, name: str, args: Sequence[Payload]) -> Payload:
        """Answer a query against the current state, without changing it."""
        if self.object is None:
            raise QueryFailed("Workflow has not started yet, cannot answer queries")
        defn = self.queries.get(name) or self.queries.get(None)
        if defn is None:
            known = " ".join(sorted(k for k in self.queries if k))
            raise QueryFailed(
                f"Query handler for '{name}' expected but not found, known queries: [{known}]"
            )

        async def run_query() -> Payload:
            with self.as_read_only(in_query=True):
                handler_args = self._handler_args(
                    name, args, defn.name, defn.arg_types, defn.dynamic_vararg
                )
                handler = self.workflow_get_query_handler(name) or self.workflow_get_query_handler(
                    None
                )
                assert handler is not None
                if inspect.iscoroutinefunction(handler):
                    result = await handler(*handler_args)
                else:
                    result = handler(*handler_args)
                payloads = to_payloads(self.payload_converter, [result])
                if len(payloads) != 1:
                    raise ValueError(f"Expected 1 result payload, got {len(payloads)}")
                return payloads[0]

        # Query activations are always replaying, as in sdk-core.
        replaying = self.replaying
        self.replaying = True
        try:
            task = self.loop.create_task(run_query(), name=f"query: {name}")
            self._run_once(check_conditions=False)
            if not task.done():
                task.cancel()
                self._run_once(check_conditions=False)
                raise QueryFailed(f"Query handler for '{name}' did not complete")
        finally:
            self.replaying = replaying
        error = task.exception() if not task.cancelled() else asyncio.CancelledError()
        if error is None:
            return task.result()
        failure = Failure()
        try:
            self.failure_converter.to_failure(error, self.payload_converter, failure)
        except Exception:
            failure = Failure(message=str(error))
        raise QueryFailed(failure.message, failure)

    def _stack_trace(self) -> str:
        stacks = []
        for task in self.loop.live_tasks():
            frames = [
                traceback.FrameSummary(f.f_code.co_filename, f.f_lineno, f.f_code.co_name)
                for f in task.get_stack()
            ]
            stacks.append(
                f"Stack for {task!r} (most recent call last):\n"
                + "\n".join(traceback.format_list(frames))
            )
        return "\n\n".join(stacks)

    def _enhanced_stack_trace(self) -> temporalio.api.sdk.v1.EnhancedStackTrace:
        sources: dict[str, temporalio.api.sdk.v1.StackTraceFileSlice] = {}
        stacks = []
        for task in self.loop.live_tasks():
            locations = []
            for frame in task.get_stack():
                filename = frame.f_code.co_filename
                if filename not in sources:
                    try:
                        with open(filename) as f:
                            content = f.read()
                    except OSError as err:
                        content = f"Cannot access code.\n---\n{err.strerror}"
                    sources[filename] = temporalio.api.sdk.v1.StackTraceFileSlice(
                        line_offset=0, content=content
                    )
                locations.append(
                    temporalio.api.sdk.v1.StackTraceFileLocation(
                        file_path=filename,
                        line=frame.f_lineno,
                        column=-1,
                        function_name=frame.f_code.co_name,
                        internal_code=False,
                    )
                )
            stacks.append(temporalio.api.sdk.v1.StackTrace(locations=locations))
        return temporalio.api.sdk.v1.EnhancedStackTrace(
            sdk=temporalio.api.sdk.v1.StackTraceSDKInfo(
                name="sdk-python", version=temporalio.__version__
            ),
            sources=sources,
            stacks=stacks,
        )

    def _workflow_metadata(self) -> temporalio.api.sdk.v1.WorkflowMetadata:
        def definitions(handlers: dict[str | None, Any]) -> list[Any]:
            return sorted(
                (
                    temporalio.api.sdk.v1.WorkflowInteractionDefinition(
                        name=d.name or "", description=d.description or ""
                    )
                    for d in handlers.values()
                ),
                key=lambda d: d.name,
            )

        return temporalio.api.sdk.v1.WorkflowMetadata(
            definition=temporalio.api.sdk.v1.WorkflowDefinition(
                type=self._info().workflow_type,
                query_definitions=definitions(self.queries),
                signal_definitions=definitions(self.signals),
                update_definitions=definitions(self.updates),
            ),
            current_details=self.current_details,
        )

    # -- eviction --------------------------------------------------------------------------------

    def evict(self) -> None:
        """Cancel every coroutine without producing commands, then drop the loop."""
        self.evicting = self.loop.evicting = True
        self.replaying = True
        tasks = self.loop.live_tasks()
        for task in tasks:
            task.cancel()
        if tasks or self.loop.has_ready():
            # Nothing that happens during teardown matters.
            with contextlib.suppress(BaseException):
                self._run_once(check_conditions=False)
        for task in self.loop.live_tasks():
            # A coroutine that swallowed its cancellation is closed by force.
            close_coroutine(task.get_coro())  # type: ignore[arg-type]
        self.loop.forget_tasks()
        self.conditions.clear()
        temporalio.workflow._Runtime.set_on_loop(self.loop, None)
        # Break the driver's reference cycles (loop, tasks, bound built-in handlers) so
        # that plain reference counting frees a closed workflow, not the cyclic GC.
        self.loop.close_scheduler()
        self.primary_task = None
        self.queries.clear()
        self.signals.clear()
        self.updates.clear()


def _satisfied(fn: Any, fut: asyncio.Future[Any]) -> bool:
    if fn():
        fut.set_result(True)
        return True
    return False
