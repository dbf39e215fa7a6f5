"""The run itself: its start and close, info, memo, search attributes, patches, randomness.

:class:`WorkflowRun` builds the workflow object, runs its ``@workflow.run``
method, and turns how it ends (a result, a failure, a cancellation, a
continue-as-new) into the closing command.
"""

from __future__ import annotations

import asyncio
import functools
import warnings
from collections.abc import Callable, Coroutine, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from random import Random
from typing import TYPE_CHECKING, Any, NoReturn, cast

import temporalio.common
import temporalio.converter
import temporalio.exceptions
import temporalio.workflow
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.enums.v1 import ContinueAsNewVersioningBehavior
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import WorkflowExecutionStartedEventAttributes

from ablauf.payloads import to_payloads
from ablauf.replay import history
from ablauf.replay.commands import CommandMachines
from ablauf.replay.handles import ContinueAsNew, ContinueAsNewRequest
from ablauf.replay.history import C
from ablauf.replay.machines import InitializeWorkflow
from ablauf.replay.runtime.context import (
    ReadOnly,
    RunContext,
    add_markers,
    encode_search_attributes,
    markers,
)

if TYPE_CHECKING:
    from temporalio.workflow import ContinueAsNewVersioningBehavior as VersioningBehavior
    from temporalio.workflow import EventGroup, VersioningIntent

__all__ = ["WorkflowRun", "continued_workflow"]


def continued_workflow(workflow: object) -> tuple[str | None, list[type] | None]:
    """The type name and argument types of what a run continues as (None: its own)."""
    if isinstance(workflow, str):
        return workflow, None
    if callable(workflow):
        defn = temporalio.workflow._Definition.must_from_run_fn(workflow)
        return defn.name, defn.arg_types
    if workflow is not None:
        raise TypeError("Workflow must be None, a string, or callable")
    return None, None


class WorkflowRun:
    """The workflow object and what the run knows of itself."""

    def __init__(self, context: RunContext, machines: CommandMachines) -> None:
        self._context = context
        self._machines = machines
        self.info: temporalio.workflow.Info | None = None
        # Builds ``info`` when first asked for: most workflows never do.
        self._make_info: Callable[[], temporalio.workflow.Info] | None = None
        self._started: WorkflowExecutionStartedEventAttributes | None = None
        self.args: list[Any] | None = None
        """The workflow's arguments, once the start is known."""
        # Raw search attribute values (started event plus upserts), for continue-as-new.
        self._search_attributes: dict[str, Payload] = {}
        self._last_completion_result: list[Payload] = []
        self._last_failure: Failure | None = None
        self._memo: dict[str, Any] | None = None
        self.primary_task: asyncio.Task[None] | None = None
        self._cancel_pending = False
        self.patches_notified: set[str] = set()
        self._patches_memoized: dict[str, bool] = {}
        # Hashing the run id and seeding a generator cost more than a short
        # workflow's whole task, so both wait until workflow code asks.
        self._seed: int | None = 0
        self._seed_run_id = ""
        self._random: Random | None = None
        self._seed_callbacks: list[Callable[[int], None]] = []

    # -- start, completion, cancellation -------------------------------------------------------

    def prepare_start(self, job: InitializeWorkflow) -> None:
        """Take in the start event: info, seed, arguments (the object is built later)."""
        context = self._context
        attrs = job.attributes
        self._started = attrs
        context.task_queue = attrs.task_queue.name
        context.workflow_type = attrs.workflow_type.name
        self._make_info = functools.partial(
            history.workflow_info,
            attrs,
            namespace=context.namespace,
            workflow_id=context.workflow_id,
            run_id=context.run_id,
            start_event_time=job.start_time,
            first_task_time=datetime.fromtimestamp(context.loop.time_ns / 1e9, UTC),
        )
        self._search_attributes = dict(attrs.search_attributes.indexed_fields)
        self._last_completion_result = list(attrs.last_completion_result.payloads)
        self._last_failure = (
            attrs.continued_failure if attrs.HasField("continued_failure") else None
        )
        self.seed_from_run(attrs.original_execution_run_id)
        payloads = attrs.input.payloads
        converter = context.payload_converter
        if context.defn.name is None:
            # Dynamic workflows get all arguments as one list of raw values.
            raw = [temporalio.common.RawValue] * len(payloads)
            self.args = [context.convert(payloads, raw, converter)]
        else:
            self.args = context.convert(payloads, context.defn.arg_types, converter)

    def instantiate(self) -> Any:
        """Build the workflow object (on the loop, so ``__init__`` may use workflow APIs)."""
        context = self._context
        defn = context.defn
        cls = defn.cls
        if hasattr(cls.__init__, "__temporal_workflow_init"):  # type: ignore[misc]
            obj = cls(*(self.args or ()))
        else:
            obj = cls()
        if defn.name is None and defn.dynamic_config_fn is not None:
            with ReadOnly(context, in_query=False):
                config = defn.dynamic_config_fn(obj)
            if config is not None and config.failure_exception_types is not None:
                context.dynamic_failure_types = config.failure_exception_types
        return obj

    def start(self) -> None:
        """Run ``@workflow.run``; its result completes the workflow."""
        context = self._context
        machines = self._machines
        run_fn = context.defn.run_fn

        async def run_workflow() -> None:
            try:
                intercepted = context.intercepted
                if intercepted is None:
                    result = await run_fn(context.object, *(self.args or ()))
                else:
                    result = await intercepted.execute_workflow(self.args or (), self.headers())
                payloads = to_payloads(context.payload_converter, [result])
                if len(payloads) != 1:
                    raise ValueError(f"Expected 1 result payload, got {len(payloads)}")
                context.check_may_schedule("add command")
                command = machines.close_workflow(C.COMPLETE_WORKFLOW_EXECUTION)
                command.complete_workflow_execution_command_attributes.result.payloads.extend(
                    payloads
                )
            except Exception:
                if context.evicting:
                    return
                raise

        loop = context.loop
        self.primary_task = loop.create_task(self.top_level(run_workflow()), name="run")
        if self._cancel_pending:
            self._cancel_pending = False
            loop.call_soon(self.primary_task.cancel)

    async def top_level(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run the workflow or a signal handler, turning its outcome into commands."""
        context = self._context
        try:
            await coro
        except ContinueAsNew as request:
            self._continue_as_new(request.request)
        except (Exception, asyncio.CancelledError) as err:
            if context.evicting:
                return
            error: BaseException = err
            if isinstance(err, asyncio.CancelledError):
                error = temporalio.exceptions.CancelledError(str(err))
            # Cancellation is a state on Temporal: once requested, any cancellation
            # error that escapes cancels the workflow.
            if context.cancel_reason is not None and temporalio.exceptions.is_cancelled_exception(
                error
            ):
                context.check_may_schedule("add command")
                command = self._machines.close_workflow(C.CANCEL_WORKFLOW_EXECUTION)
                command.cancel_workflow_execution_command_attributes.SetInParent()
            elif context.is_failure_exception(error):
                try:
                    self.fail(error)
                except Exception as inner:
                    context.loop.failure = inner
            else:
                context.loop.failure = error

    def fail(self, err: BaseException) -> None:
        """Fail the workflow with ``err``."""
        context = self._context
        failure = Failure()
        try:
            context.failure_converter.to_failure(err, context.payload_converter, failure)
        except Exception as inner:
            raise ValueError("Failed converting workflow exception") from inner
        context.check_may_schedule("add command")
        command = self._machines.close_workflow(C.FAIL_WORKFLOW_EXECUTION)
        command.fail_workflow_execution_command_attributes.failure.CopyFrom(failure)

    def cancel(self, reason: str) -> None:
        """The workflow was asked to cancel: cancel its main coroutine."""
        context = self._context
        context.cancel_reason = reason
        if self.primary_task is not None:
            # Deferred so a workflow that has not started yet can still see the cancel.
            context.loop.call_soon(self.primary_task.cancel)
        elif context.single_batch:
            self._cancel_pending = True

    # -- continue-as-new -----------------------------------------------------------------------

    def request_continue_as_new(
        self,
        args: Sequence[Any],
        *,
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
        initial_versioning_behavior: VersioningBehavior | None,
        event_groups: Sequence[EventGroup] | None,
        headers: Mapping[str, Payload] | None = None,
    ) -> NoReturn:
        """``workflow.continue_as_new``: raise what the top-level coroutine turns into one."""
        self._context.check_may_schedule("continue as new")
        name, arg_types = continued_workflow(workflow)
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
                markers=markers(event_groups),
                headers=headers,
            )
        )

    def _continue_as_new(self, request: ContinueAsNewRequest) -> None:
        context = self._context
        converter = context.payload_converter
        payloads = to_payloads(converter, request.args) if request.args else None
        memo = (
            {k: converter.to_payloads([v])[0] for k, v in request.memo.items()}
            if request.memo
            else None
        )
        context.check_may_schedule("add command")
        command = self._machines.close_workflow(C.CONTINUE_AS_NEW_WORKFLOW_EXECUTION)
        attrs = command.continue_as_new_workflow_execution_command_attributes
        info = self.get_info()
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
        started = self._started
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
            for key, payload in self._search_attributes.items():
                attrs.search_attributes.indexed_fields[key].CopyFrom(payload)
        if request.initial_versioning_behavior:
            attrs.initial_versioning_behavior = cast(
                ContinueAsNewVersioningBehavior.ValueType, request.initial_versioning_behavior
            )
        if request.headers:
            fields = attrs.header.fields
            for key, payload in request.headers.items():
                fields[key].CopyFrom(payload)
        command.event_group_markers.extend(request.markers)

    # -- information ---------------------------------------------------------------------------

    def get_info(self) -> temporalio.workflow.Info:
        """``workflow.info()``, built when first asked for."""
        if self.info is None:
            if self._make_info is None:
                raise RuntimeError("The workflow has not started yet")
            self.info = self._make_info()
        return self.info

    def headers(self) -> dict[str, Payload]:
        """The headers the run was started with."""
        started = self._started
        return dict(started.header.fields) if started is not None else {}

    def has_last_completion_result(self) -> bool:
        """Whether the run has the result of the last cron or schedule run."""
        return bool(self._last_completion_result)

    def last_completion_result(self, type_hint: type | None) -> Any | None:
        """The result of the last cron or schedule run."""
        results = self._last_completion_result
        if len(results) != 1:
            if results:
                warnings.warn(
                    f"Expected single last completion result, got {len(results)}",
                    stacklevel=3,
                )
            return None
        converter = self._context.payload_converter
        if type_hint is None:
            return converter.from_payload(results[0])
        return converter.from_payload(results[0], type_hint)

    def last_failure(self) -> BaseException | None:
        """The failure of the last cron or schedule run, or of the last attempt."""
        if self._last_failure is None:
            return None
        context = self._context
        return context.failure_converter.from_failure(self._last_failure, context.payload_converter)

    # -- memo and search attributes ------------------------------------------------------------

    def memo(self) -> Mapping[str, Any]:
        """``workflow.memo()``, decoded once."""
        if self._memo is None:
            converter = self._context.payload_converter
            self._memo = {k: converter.from_payload(v) for k, v in self.get_info().raw_memo.items()}
        return self._memo

    def memo_value(self, key: str, default: Any, *, type_hint: type | None) -> Any:
        """``workflow.memo_value()``."""
        payload = self.get_info().raw_memo.get(key)
        if not payload:
            if default is temporalio.common._arg_unset:
                raise KeyError(f"Memo does not have a value for key {key}")
            return default
        return self._context.payload_converter.from_payload(payload, type_hint)  # type: ignore[arg-type]

    def upsert_memo(
        self, updates: Mapping[str, Any], *, event_groups: Sequence[EventGroup] | None
    ) -> None:
        """``workflow.upsert_memo``: a ModifyWorkflowProperties command; None removes a key."""
        context = self._context
        converter = context.payload_converter
        upserted = {}
        removed = []
        for key, value in updates.items():
            if value is None:
                # Removing a key that is not there still shows up in history, as on Temporal.
                removed.append(key)
            else:
                upserted[key] = converter.to_payload(value)
        if not upserted and not removed:
            return
        command_markers = markers(event_groups)
        context.check_may_schedule("add command")
        command = self._machines.modify_workflow_properties()
        add_markers(command, command_markers)
        fields = command.modify_workflow_properties_command_attributes.upserted_memo.fields
        raw_memo = cast(MutableMapping[str, Payload], self.get_info().raw_memo)
        for key, payload in upserted.items():
            fields[key].CopyFrom(payload)
            raw_memo[key] = payload
        if removed:
            null = converter.to_payload(None)
            for key in removed:
                fields[key].CopyFrom(null)
                raw_memo.pop(key, None)
        if self._memo is not None:
            for key, payload in upserted.items():
                self._memo[key] = converter.from_payload(payload)
            for key in removed:
                self._memo.pop(key, None)

    def upsert_search_attributes(
        self,
        attributes: (
            temporalio.common.SearchAttributes
            | Sequence[temporalio.common.SearchAttributeUpdate[Any]]
        ),
        *,
        event_groups: Sequence[EventGroup] | None,
    ) -> None:
        """``workflow.upsert_search_attributes``, kept in step in ``info`` as the SDK does."""
        self._context.check_may_schedule("add command")
        command_markers = markers(event_groups)
        info = self.get_info()
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
        command = self._machines.upsert_search_attributes(fields)
        add_markers(command, command_markers)
        self._search_attributes.update(fields.indexed_fields)

    # -- patches -------------------------------------------------------------------------------

    def patch(
        self, id: str, *, deprecated: bool, event_groups: Sequence[EventGroup] | None
    ) -> bool:
        """``workflow.patched`` and ``deprecate_patch``: decided once per patch id."""
        context = self._context
        context.check_may_schedule("patch")
        use_patch = self._patches_memoized.get(id)
        if use_patch is not None:
            return use_patch
        use_patch = not context.replaying or id in self.patches_notified
        self._patches_memoized[id] = use_patch
        if use_patch:
            command_markers = markers(event_groups)
            command = self._machines.set_patch_marker(id, deprecated)
            if command is not None:
                add_markers(command, command_markers)
        return use_patch

    # -- randomness ----------------------------------------------------------------------------

    @property
    def seed(self) -> int:
        """The current seed of ``workflow.random()``."""
        if self._seed is None:
            self._seed = history.randomness_seed(self._seed_run_id)
        return self._seed

    @property
    def random(self) -> Random:
        """The generator behind ``workflow.random()``."""
        if self._random is None:
            self._random = Random(self.seed)
        return self._random

    def seed_from_run(self, run_id: str) -> None:
        """Seed ``workflow.random()`` from ``run_id`` as sdk-core does (when first used)."""
        self._seed, self._seed_run_id = None, run_id
        if self._random is not None:
            self._random.seed(self.seed)

    def register_seed_callback(self, callback: Callable[[int], None]) -> None:
        """Call ``callback`` with each new seed."""
        self._seed_callbacks.append(callback)

    def reseed(self, seed: int) -> None:
        """Seed ``workflow.random()``; callbacks keep derived generators in step."""
        self._seed = seed
        if self._random is not None:
            self._random.seed(seed)
        for callback in self._seed_callbacks:
            try:
                callback(seed)
            except Exception:
                continue


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
