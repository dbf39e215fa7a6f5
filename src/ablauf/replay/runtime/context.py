"""What every part of the runtime shares: the run's identity, converters and flags.

:class:`RunContext` is the narrow piece each collaborator of the runtime
receives (with the loop and the command machines), instead of the runtime
itself; it imports none of them, so they can all import it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import temporalio.api.sdk.v1
import temporalio.common
import temporalio.converter
import temporalio.exceptions
import temporalio.workflow
from temporalio.api.command.v1 import Command
from temporalio.api.common.v1 import Payload
from temporalio.workflow._event_groups import _capture_event_group_markers

from ablauf.payloads import from_payloads
from ablauf.replay.handles import EvictedError
from ablauf.serialization import with_context

if TYPE_CHECKING:
    from temporalio.workflow import EventGroup

    from ablauf.replay.loop import WorkflowEventLoop

__all__ = [
    "Intercepted",
    "ReadOnly",
    "RunContext",
    "add_markers",
    "encode_search_attributes",
    "markers",
]

Headers = Mapping[str, Payload]


class Intercepted(Protocol):
    """A worker's interceptors around one run (``intercept.py``'s ``Interception``).

    The runtime's parts call it where temporalio's instance calls its
    interceptor chain; the chain's innermost links call the parts back, with
    the headers the interceptors made.
    """

    def build(self) -> None:
        """Build the chain (on the loop, once the start is known, before the workflow object)."""

    def drop(self) -> None:
        """Forget the chain (at eviction): it refers back to the run."""

    # -- outbound: what the facade hands over ---------------------------------------------------

    def info(self) -> temporalio.workflow.Info:
        """``WorkflowOutboundInterceptor.info``."""

    def extern_functions(self) -> Mapping[str, Callable[..., Any]]:
        """What ``workflow_interceptor_class`` put into the extern functions."""

    def start_activity(
        self, activity: Any, args: Sequence[Any], **options: Any
    ) -> temporalio.workflow.ActivityHandle[Any]:
        """``WorkflowOutboundInterceptor.start_activity`` (options named as the facade's)."""

    def start_local_activity(
        self, activity: Any, args: Sequence[Any], **options: Any
    ) -> temporalio.workflow.ActivityHandle[Any]:
        """``WorkflowOutboundInterceptor.start_local_activity``."""

    def start_child_workflow(
        self, workflow: Any, args: Sequence[Any], **options: Any
    ) -> Coroutine[Any, Any, Any]:
        """``WorkflowOutboundInterceptor.start_child_workflow``."""

    def continue_as_new(self, args: Sequence[Any], **options: Any) -> NoReturn:
        """``WorkflowOutboundInterceptor.continue_as_new``."""

    def signal_external(
        self,
        name: str,
        args: Sequence[Any],
        *,
        workflow_id: str,
        run_id: str | None,
        child: bool,
        event_groups: Sequence[EventGroup] | None,
    ) -> Awaitable[None]:
        """``WorkflowOutboundInterceptor.signal_child_workflow`` or ``signal_external_workflow``."""

    # -- inbound -------------------------------------------------------------------------------

    def execute_workflow(self, args: Sequence[Any], headers: Headers) -> Awaitable[Any]:
        """``WorkflowInboundInterceptor.execute_workflow``."""

    def handle_signal(self, name: str, args: Sequence[Any], headers: Headers) -> Awaitable[None]:
        """``WorkflowInboundInterceptor.handle_signal``."""

    def handle_query(self, name: str, args: Sequence[Any], headers: Headers) -> Awaitable[Any]:
        """``WorkflowInboundInterceptor.handle_query``."""

    def update_input(
        self, update_id: str, name: str, args: Sequence[Any], headers: Headers
    ) -> object:
        """The ``HandleUpdateInput`` that the validator and the handler of an update see."""

    def validate_update(self, update: object) -> None:
        """``WorkflowInboundInterceptor.handle_update_validator``."""

    def handle_update(self, update: object, args: Sequence[Any]) -> Awaitable[Any]:
        """``WorkflowInboundInterceptor.handle_update_handler`` with the update's input."""


class RunContext:
    """The run's identity, converters and what workflow code can observe of the task."""

    loop: WorkflowEventLoop
    """The run's event loop; set once the timers that back it exist."""

    def __init__(
        self,
        defn: temporalio.workflow._Definition,
        *,
        namespace: str,
        workflow_id: str,
        run_id: str,
        data_converter: temporalio.converter.DataConverter,
        failure_exception_types: Sequence[type[BaseException]],
    ) -> None:
        self.defn = defn
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.run_id = run_id
        context = temporalio.converter.WorkflowSerializationContext(
            namespace=namespace, workflow_id=workflow_id
        )
        self.payload_converter: temporalio.converter.PayloadConverter = with_context(
            data_converter.payload_converter, context
        )
        self.failure_converter: temporalio.converter.FailureConverter = with_context(
            data_converter.failure_converter, context
        )
        self.base_payload_converter = data_converter.payload_converter
        self.base_failure_converter = data_converter.failure_converter
        self.worker_failure_types = tuple(failure_exception_types)
        self.dynamic_failure_types: Sequence[type[BaseException]] | None = None
        self.task_queue = ""
        self.workflow_type = ""
        self.object: Any = None
        """The workflow object, once built on the loop."""
        # What workflow code can observe about the current task.
        self.replaying = False
        self.history_length = 0
        self.history_size = 0
        self.continue_as_new_suggested = False
        self.cancel_reason: str | None = None
        self.current_details = ""
        self.read_only = False
        self.in_query = False
        self.evicting = False
        self.single_batch = False
        self.intercepted: Intercepted | None = None
        """The worker's interceptors around this run; None without any."""

    def check_may_schedule(self, action: str, *, during_eviction: bool = False) -> None:
        """Raise if workflow code may not produce work now."""
        if self.evicting and not during_eviction:
            raise EvictedError(f"Ignoring {action} while evicting workflow. This is not an error.")
        if self.read_only:
            raise temporalio.workflow.ReadOnlyContextError(
                f"While in read-only function, action attempted: {action}"
            )

    def is_failure_exception(self, err: BaseException) -> bool:
        """Whether ``err`` fails the workflow rather than the workflow task."""
        types = self.defn.failure_exception_types
        if self.dynamic_failure_types is not None:
            types = self.dynamic_failure_types
        return (
            isinstance(err, temporalio.exceptions.FailureError | asyncio.TimeoutError)
            or any(isinstance(err, t) for t in types)
            or any(isinstance(err, t) for t in self.worker_failure_types)
        )

    def convert(
        self,
        payloads: Sequence[Payload],
        types: Sequence[type] | None,
        converter: temporalio.converter.PayloadConverter,
    ) -> list[Any]:
        """Decode payloads; a decoding error fails the task unless it is a failure type."""
        if not payloads:
            return []
        if types and len(types) != len(payloads):
            types = None
        try:
            return from_payloads(converter, payloads, list(types) if types else None)
        except temporalio.exceptions.FailureError:
            raise
        except Exception as err:
            if self.is_failure_exception(err):
                raise
            raise RuntimeError("Failed decoding arguments") from err

    def summary(self, summary: str | None) -> Payload | None:
        """A user metadata summary as a payload (None for no summary)."""
        return self.payload_converter.to_payload(summary) if summary else None


class ReadOnly:
    """Runs a block (query, validator) that must not change workflow state."""

    def __init__(self, context: RunContext, *, in_query: bool) -> None:
        self._context = context
        self._in_query = in_query
        self._previous = (False, False)

    def __enter__(self) -> None:
        context = self._context
        self._previous = (context.read_only, context.in_query)
        context.read_only, context.in_query = True, self._in_query

    def __exit__(self, *_: object) -> None:
        self._context.read_only, self._context.in_query = self._previous


def markers(
    event_groups: Sequence[EventGroup] | None,
) -> list[temporalio.api.sdk.v1.EventGroupMarker]:
    """The event group markers a command carries."""
    return _capture_event_group_markers(event_groups)


def add_markers(
    command: Command, markers: Sequence[temporalio.api.sdk.v1.EventGroupMarker]
) -> None:
    """Add event group markers to a command."""
    # Extending a repeated field costs even when there is nothing to add.
    if markers:
        command.event_group_markers.extend(markers)


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
