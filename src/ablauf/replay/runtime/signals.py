"""Signal, query and update handlers: registering them, running signals and queries.

Signals without a handler are buffered until one is set. Queries run read-only
against the current state; the built-in ``__stack_trace``,
``__enhanced_stack_trace`` and ``__temporal_workflow_metadata`` queries are
registered here. Updates run in :mod:`~ablauf.replay.runtime.updates`.
"""

from __future__ import annotations

import collections
import inspect
import json
import logging
import traceback
import warnings
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, cast

import temporalio.api.sdk.v1
import temporalio.common
import temporalio.workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.workflow._event_groups import _inbound_event_group

from ablauf.payloads import to_payloads
from ablauf.replay.machines import SignalWorkflow
from ablauf.replay.runtime.context import ReadOnly, RunContext

__all__ = ["Handlers", "QueryFailed"]

logger = logging.getLogger(__name__)

_TopLevel = Callable[[Coroutine[Any, Any, None]], Coroutine[Any, Any, None]]


class QueryFailed(Exception):
    """A query could not be answered; ``message`` is what a Temporal client would see."""

    def __init__(self, message: str, failure: Failure | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.failure = failure


class Handlers:
    """The run's signal, query and update handlers, and the signals they run."""

    def __init__(self, context: RunContext, top_level: _TopLevel) -> None:
        self._context = context
        # Signal handlers run as the workflow does: their outcome may close the run.
        self._top_level = top_level
        defn = context.defn
        self.signals: dict[str | None, temporalio.workflow._SignalDefinition] = dict(defn.signals)
        self.queries: dict[str | None, temporalio.workflow._QueryDefinition] = dict(defn.queries)
        self.updates: dict[str | None, temporalio.workflow._UpdateDefinition] = dict(defn.updates)
        self._buffered: dict[str, list[SignalWorkflow]] = {}
        self._signal_count = 0
        self.in_progress_signals: dict[int, tuple[str, Any]] = {}
        built_in: tuple[tuple[str, Callable[..., Any], type | None], ...] = (
            ("__stack_trace", self._stack_trace, str),
            ("__enhanced_stack_trace", self._enhanced_stack_trace, None),
            ("__temporal_workflow_metadata", self._workflow_metadata, None),
        )
        for name, fn, ret_type in built_in:
            self.queries[name] = temporalio.workflow._QueryDefinition(
                name=name, fn=fn, is_method=False, arg_types=[], ret_type=ret_type
            )

    # -- registry ------------------------------------------------------------------------------

    def _bound(self, defn: Any) -> Callable[..., Any] | None:
        if defn is None:
            return None
        obj = self._context.object
        return cast(Callable[..., Any], defn.bind_fn(obj) if defn.is_method else defn.fn)

    def query_handler(self, name: str | None) -> Callable[..., Any] | None:
        """The query handler registered for ``name``."""
        return self._bound(self.queries.get(name))

    def signal_handler(self, name: str | None) -> Callable[..., Any] | None:
        """The signal handler registered for ``name``."""
        return self._bound(self.signals.get(name))

    def update_handler(self, name: str | None) -> Callable[..., Any] | None:
        """The update handler registered for ``name``."""
        return self._bound(self.updates.get(name))

    def update_validator(self, name: str | None) -> Callable[..., Any] | None:
        """The validator of the update handler for ``name`` (or of the dynamic one)."""
        defn = self.updates.get(name) or self.updates.get(None)
        if defn is None or defn.validator is None:
            return None
        if defn.is_method:
            return defn.bind_validator(self._context.object)
        return defn.validator

    def set_query_handler(self, name: str | None, handler: Callable[..., Any] | None) -> None:
        """``workflow.set_query_handler`` (None removes it)."""
        self._context.check_may_schedule("set query handler")
        if handler is None:
            self.queries.pop(name, None)
            return
        if inspect.iscoroutinefunction(handler):
            warnings.warn(
                "Queries as async def functions are deprecated", DeprecationWarning, stacklevel=4
            )
        self.queries[name] = temporalio.workflow._QueryDefinition(
            name=name, fn=handler, is_method=False
        )

    def set_signal_handler(self, name: str | None, handler: Callable[..., Any] | None) -> None:
        """``workflow.set_signal_handler``; signals buffered for it are delivered to it."""
        self._context.check_may_schedule("set signal handler")
        if handler is None:
            self.signals.pop(name, None)
            return
        defn = temporalio.workflow._SignalDefinition(name=name, fn=handler, is_method=False)
        self.signals[name] = defn
        if name is not None:
            for job in self._buffered.pop(name, []):
                self._process_signal(defn, job)
            return
        buffered = self._buffered
        self._buffered = {}
        for jobs in buffered.values():
            for job in jobs:
                self._process_signal(defn, job)

    def set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., Any] | None,
    ) -> None:
        """``workflow.set_update_handler`` (None removes it)."""
        self._context.check_may_schedule("set update handler")
        if handler is None:
            self.updates.pop(name, None)
            return
        defn = temporalio.workflow._UpdateDefinition(name=name, fn=handler, is_method=False)
        if validator is not None:
            defn.set_validator(validator)
        self.updates[name] = defn

    def handler_args(
        self,
        name: str,
        payloads: Sequence[Payload],
        defn_name: str | None,
        arg_types: list[type] | None,
        dynamic_vararg: bool,
    ) -> list[Any]:
        """A handler's arguments; dynamic handlers get the name first."""
        context = self._context
        converter = context.payload_converter
        if defn_name is None and dynamic_vararg:
            return [
                name,
                *context.convert(payloads, arg_types[1:] if arg_types else None, converter),
            ]
        if defn_name is None:
            raw = [temporalio.common.RawValue] * len(payloads)
            return [name, context.convert(payloads, raw, converter)]
        return context.convert(payloads, arg_types, converter)

    def clear(self) -> None:
        """Drop every handler (at eviction): the built-in ones refer back to this object."""
        self.queries.clear()
        self.signals.clear()
        self.updates.clear()

    # -- signals -------------------------------------------------------------------------------

    def signal(self, job: SignalWorkflow) -> None:
        """Run the handler of a signal, or keep the signal until there is one."""
        defn = self.signals.get(job.name) or self.signals.get(None)
        if defn is None:
            self._buffered.setdefault(job.name, []).append(job)
            return
        self._process_signal(defn, job)

    def _process_signal(
        self, defn: temporalio.workflow._SignalDefinition, job: SignalWorkflow
    ) -> None:
        context = self._context
        try:
            args = self.handler_args(
                job.name, job.input, defn.name, defn.arg_types, defn.dynamic_vararg
            )
        except Exception:
            logger.exception(
                "Failed deserializing signal input for %s on workflow %s, dropping the signal",
                job.name,
                context.workflow_id,
            )
            return
        self._signal_count += 1
        signal_id = self._signal_count
        in_progress = self.in_progress_signals
        in_progress[signal_id] = (job.name, defn.unfinished_policy)

        async def run_signal() -> None:
            with _inbound_event_group(job.event_id).scope():
                intercepted = context.intercepted
                if intercepted is not None:
                    await intercepted.handle_signal(job.name, args, job.headers)
                    return
                handler = self.signal_handler(job.name) or self.signal_handler(None)
                assert handler is not None
                if inspect.iscoroutinefunction(handler):
                    await handler(*args)
                else:
                    handler(*args)

        task = context.loop.create_task(self._top_level(run_signal()), name=f"signal: {job.name}")
        task.add_done_callback(lambda _: in_progress.pop(signal_id, None))

    def warn_unfinished_signals(self) -> None:
        """Warn, like the Python SDK, when the run ends while signal handlers still run."""
        policy = temporalio.workflow.HandlerUnfinishedPolicy.WARN_AND_ABANDON
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
                stacklevel=3,
            )

    # -- queries -------------------------------------------------------------------------------

    def query(
        self, name: str, args: Sequence[Payload], headers: Mapping[str, Payload]
    ) -> Coroutine[Any, Any, Payload]:
        """The coroutine that answers a query; raises at once if there is no handler."""
        context = self._context
        if context.object is None:
            raise QueryFailed("Workflow has not started yet, cannot answer queries")
        defn = self.queries.get(name) or self.queries.get(None)
        if defn is None:
            known = " ".join(sorted(k for k in self.queries if k))
            raise QueryFailed(
                f"Query handler for '{name}' expected but not found, known queries: [{known}]"
            )

        async def run_query() -> Payload:
            with ReadOnly(context, in_query=True):
                handler_args = self.handler_args(
                    name, args, defn.name, defn.arg_types, defn.dynamic_vararg
                )
                intercepted = context.intercepted
                if intercepted is not None:
                    result = await intercepted.handle_query(name, handler_args, headers)
                else:
                    handler = self.query_handler(name) or self.query_handler(None)
                    assert handler is not None
                    if inspect.iscoroutinefunction(handler):
                        result = await handler(*handler_args)
                    else:
                        result = handler(*handler_args)
                payloads = to_payloads(context.payload_converter, [result])
                if len(payloads) != 1:
                    raise ValueError(f"Expected 1 result payload, got {len(payloads)}")
                return payloads[0]

        return run_query()

    def _stack_trace(self) -> str:
        stacks = []
        for task in self._context.loop.live_tasks():
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
        for task in self._context.loop.live_tasks():
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
                type=self._context.workflow_type,
                query_definitions=definitions(self.queries),
                signal_definitions=definitions(self.signals),
                update_definitions=definitions(self.updates),
            ),
            current_details=self._context.current_details,
        )
