"""Handles for child workflows and for other workflows, as workflow code holds them.

A child handle is the task ``workflow.start_child_workflow`` returns: it resolves
with the child's result. Signals and cancel requests to children and other
workflows are commands whose outcome arrives as a job (see ``machines/``).
The handles reach the runtime through :class:`HandleOwner`, which
:class:`~ablauf.replay.runtime.children.Children` satisfies, so this module
does not import it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import temporalio.common
import temporalio.converter
import temporalio.workflow

from ablauf.replay.machines import ChildWorkflowMachine
from ablauf.serialization import with_context

if TYPE_CHECKING:
    from temporalio.workflow import EventGroup

    from ablauf.replay.loop import WorkflowEventLoop

__all__ = ["ChildWorkflowHandle", "ExternalWorkflowHandle", "HandleOwner", "await_operation"]

_T = TypeVar("_T")


class HandleOwner(Protocol):
    """What the handles of this module need of the workflow runtime."""

    @property
    def loop(self) -> WorkflowEventLoop:
        """The run's event loop."""

    @property
    def namespace(self) -> str:
        """The run's namespace."""

    @property
    def base_payload_converter(self) -> temporalio.converter.PayloadConverter:
        """The payload converter without a serialization context."""

    @property
    def base_failure_converter(self) -> temporalio.converter.FailureConverter:
        """The failure converter without a serialization context."""

    @property
    def evicting(self) -> bool:
        """Whether the instance is being torn down."""

    @property
    def single_batch(self) -> bool:
        """Whether the task applies its jobs in one batch."""

    @property
    def cancel_reason(self) -> str | None:
        """Why the workflow was asked to cancel (None until it was)."""

    def check_may_schedule(self, action: str, *, during_eviction: bool = False) -> None:
        """Raise if workflow code may not add a command now."""

    def cancel_child(self, handle: ChildWorkflowHandle, reason: str) -> None:
        """Cancel a child per its cancellation type."""

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
        """Signal a child or another workflow and wait for the delivery."""

    async def cancel_external(
        self,
        workflow_id: str,
        run_id: str | None,
        *,
        reason: str,
        event_groups: Sequence[EventGroup] | None,
    ) -> None:
        """Ask another workflow to cancel and wait until the request is delivered."""


async def await_operation(
    owner: HandleOwner,
    fut: asyncio.Future[_T],
    apply_cancel: Callable[[asyncio.CancelledError], None],
    *,
    reraise_on_workflow_cancellation: bool = False,
) -> _T:
    """Wait for ``fut``; a task cancel becomes a cancel command, the outcome decides.

    Like the Python SDK's ``_await_temporal_operation``.
    """
    while True:
        try:
            await asyncio.wait([fut])
            return fut.result()
        except asyncio.CancelledError as err:
            if owner.evicting or (fut.done() and owner.single_batch):
                raise
            apply_cancel(err)
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if reraise_on_workflow_cancellation and (
                owner.cancel_reason is not None or owner.evicting
            ):
                raise


class ChildWorkflowHandle(temporalio.workflow.ChildWorkflowHandle[Any, Any]):
    """A started child workflow; awaiting it gives its result."""

    def __init__(
        self,
        owner: HandleOwner,
        seq: int,
        workflow_id: str,
        workflow_type: str,
        result_type: type | None,
        markers: list[Any],
    ) -> None:
        self._owner = owner
        self.seq = seq
        self._id = workflow_id
        self.workflow_type = workflow_type
        self.result_type = result_type
        self.markers = markers
        self.machine: ChildWorkflowMachine | None = None
        loop = owner.loop
        self.start_fut: asyncio.Future[None] = loop.create_future()
        self.result_fut: asyncio.Future[Any] = loop.create_future()
        self._first_execution_run_id = "<unknown>"
        context = temporalio.converter.WorkflowSerializationContext(
            namespace=owner.namespace, workflow_id=workflow_id
        )
        self.payload_converter = with_context(owner.base_payload_converter, context)
        self.failure_converter = with_context(owner.base_failure_converter, context)
        super().__init__(self._run(), loop=loop)
        loop.register_task(self)

    def _run(self) -> Coroutine[Any, Any, Any]:
        return await_operation(self._owner, self.result_fut, self.apply_cancel)

    def apply_cancel(self, err: asyncio.CancelledError) -> None:
        """Send the child's cancellation (task cancel message as the reason)."""
        reason = err.args[0] if err.args and isinstance(err.args[0], str) else ""
        self._owner.check_may_schedule("add command")
        if self.machine is not None:
            self._owner.cancel_child(self, reason)

    @property
    def id(self) -> str:
        return self._id

    @property
    def first_execution_run_id(self) -> str | None:
        return self._first_execution_run_id

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = temporalio.common._arg_unset,
        *,
        args: Sequence[Any] = [],
        event_groups: Sequence[EventGroup] | None = None,
    ) -> None:
        self._owner.check_may_schedule("signal child handle")
        await self._owner.signal_external(
            temporalio.workflow._SignalDefinition.must_name_from_fn_or_str(signal),
            temporalio.common._arg_or_args(arg, args),
            workflow_id=self._id,
            run_id=None,
            child=True,
            event_groups=event_groups,
        )

    def resolve_start(self, run_id: str) -> None:
        """The child started."""
        self._first_execution_run_id = run_id
        self.start_fut.set_result(None)

    def resolve_success(self, value: Any) -> None:
        """The child completed."""
        self.result_fut.set_result(value)

    def resolve_failure(self, error: BaseException) -> None:
        """The child did not start, or did not complete."""
        if self.start_fut.done():
            self.result_fut.set_exception(error)
        else:
            self.start_fut.set_exception(error)
            self.result_fut.set_result(None)


class ExternalWorkflowHandle(temporalio.workflow.ExternalWorkflowHandle[Any]):
    """Another workflow, by id (and run id)."""

    def __init__(self, owner: HandleOwner, workflow_id: str, run_id: str | None) -> None:
        super().__init__()
        self._owner = owner
        self._id = workflow_id
        self._run_id = run_id

    @property
    def id(self) -> str:
        return self._id

    @property
    def run_id(self) -> str | None:
        return self._run_id

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = temporalio.common._arg_unset,
        *,
        args: Sequence[Any] = [],
        event_groups: Sequence[EventGroup] | None = None,
    ) -> None:
        self._owner.check_may_schedule("signal external handle")
        await self._owner.signal_external(
            temporalio.workflow._SignalDefinition.must_name_from_fn_or_str(signal),
            temporalio.common._arg_or_args(arg, args),
            workflow_id=self._id,
            run_id=self._run_id,
            child=False,
            event_groups=event_groups,
        )

    async def cancel(
        self, *, reason: str = "", event_groups: Sequence[EventGroup] | None = None
    ) -> None:
        self._owner.check_may_schedule("cancel external handle")
        await self._owner.cancel_external(
            self._id, self._run_id, reason=reason, event_groups=event_groups
        )
