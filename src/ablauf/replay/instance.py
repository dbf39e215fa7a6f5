"""A workflow run driven by its history: the worker side of a workflow task.

:class:`WorkflowInstance` takes Temporal history events and answers each new
workflow task with Temporal commands, replaying every earlier task first and
checking that it produces the commands history recorded. It is what sdk-core
and ``temporalio``'s workflow instance are together, with no server involved.

Example::

    instance = WorkflowInstance(defn, namespace="default", workflow_id="wf", run_id=run_id,
                                data_converter=DataConverter.default)
    outcome = instance.activate(events)   # events 1..N, ending with WorkflowTaskStarted
    # write WorkflowTaskCompleted + events for outcome.commands, then later:
    outcome = instance.activate(new_events)  # events N+1.., starting with WorkflowTaskCompleted
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.api.command.v1 import Command
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import CommandType, WorkflowTaskFailedCause
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.protocol.v1 import Message
from temporalio.api.sdk.v1 import WorkflowTaskCompletedMetadata
from temporalio.api.update.v1 import Request

from ablauf.errors import UnsupportedFeatureError
from ablauf.history import catalog
from ablauf.replay import history
from ablauf.replay.commands import CommandMachines
from ablauf.replay.history import E, InternalFlags
from ablauf.replay.machines import (
    CancelWorkflow,
    DoUpdate,
    InitializeWorkflow,
    Job,
    LocalActivityRequest,
    LocalActivityResult,
    Nondeterminism,
    SignalWorkflow,
    UpdateRandomSeed,
    local_marker,
)
from ablauf.replay.runtime import QueryFailed, WorkflowRuntime

if TYPE_CHECKING:
    from ablauf.replay.runtime.intercept import WorkflowInterceptors

__all__ = ["QueryFailed", "WorkflowInstance", "WorkflowTaskOutcome"]

logger = logging.getLogger(__name__)

# temporal-python's flag for applying all jobs of an activation before running code.
_SINGLE_BATCH_FLAG: Final = 2

_DEFAULT_TASK_TIMEOUT: Final = timedelta(seconds=10)
_RESULT_EVENTS: Final = catalog.RESULT_EVENTS
_UNSUPPORTED_COMMAND_EVENTS: Final = catalog.UNSUPPORTED_COMMAND_EVENTS
_IGNORED_EVENTS: Final = catalog.IGNORED_BY_WORKFLOWS


@dataclass
class WorkflowTaskOutcome:
    """The answer to a workflow task.

    Attributes:
        commands: Commands for the server, in order; empty if ``failure`` is set.
        failure: Set if the workflow *task* failed: workflow code raised an error
            that does not fail the workflow, or replay was nondeterministic.
        nondeterminism: True if ``failure`` is a nondeterminism error.
        sdk_metadata: For ``WorkflowTaskCompletedEventAttributes.sdk_metadata`` of the
            completed task: the sdk-core and temporal-python flags this task used
            (sdk-core records them so later replays take the same code paths).
        messages: Protocol messages for the server (update acceptances, rejections and
            responses); each acceptance and response is named by a ProtocolMessage
            command in ``commands``.
        local_activities: Local activities the worker is to run now.
        local_cancels: Sequence numbers of running local activities to cancel.
        waiting_for_local_activities: The task cannot complete yet: the worker
            must hand the results of running local activities to
            :meth:`WorkflowInstance.resolve_local_activities`, which answers anew.
    """

    commands: list[Command]
    failure: Failure | None = None
    nondeterminism: bool = False
    sdk_metadata: WorkflowTaskCompletedMetadata | None = None
    messages: list[Message] = field(default_factory=list)
    local_activities: list[LocalActivityRequest] = field(default_factory=list)
    local_cancels: list[int] = field(default_factory=list)
    waiting_for_local_activities: bool = False


class WorkflowInstance:
    """One workflow run, replayed from its history and answering its workflow tasks."""

    def __init__(
        self,
        defn: temporalio.workflow._Definition,
        *,
        namespace: str,
        workflow_id: str,
        run_id: str,
        data_converter: temporalio.converter.DataConverter,
        failure_exception_types: Sequence[type[BaseException]] = (),
        metric_meter: temporalio.common.MetricMeter | None = None,
        interceptors: WorkflowInterceptors | None = None,
        workflow_type: str | None = None,
    ) -> None:
        """Create the instance; nothing runs until :meth:`activate`.

        Args:
            defn: The workflow definition (``temporalio.workflow._Definition.must_from_class``).
            namespace: The run's namespace.
            workflow_id: The workflow id.
            run_id: The run id.
            data_converter: Converts payloads and failures; payloads in events must
                already be decoded (no codec is applied here).
            failure_exception_types: Exception types that fail the workflow instead
                of the workflow task, in addition to the definition's.
            metric_meter: What ``workflow.metric_meter()`` records into (with the
                workflow's labels, nothing while replaying); None: a no-op meter.
            interceptors: The worker's workflow interceptors, if it has any.
            workflow_type: The run's workflow type (a dynamic workflow's is the
                type it was started as); the definition's name if not given.
        """
        self.workflow_type = workflow_type or defn.name or ""
        self.steps = 0
        """How many times workflow code has run: a watchdog's sign of progress
        while a long history replays."""
        self._jobs: list[Job] = []
        self._flags = InternalFlags()
        self._machines = CommandMachines(self._jobs, self._flags)
        self._runtime = WorkflowRuntime(
            defn,
            workflow_id=workflow_id,
            namespace=namespace,
            data_converter=data_converter,
            failure_exception_types=failure_exception_types,
            machines=self._machines,
            flags=self._flags,
            run_id=run_id,
            metric_meter=metric_meter,
            interceptors=interceptors,
        )
        self._last_event_id = 0
        self._answered = False  # a new task was answered; its WorkflowTaskCompleted comes next
        # A task answered without commands may have been speculative (only rejected
        # updates): the server then drops its events, and they come again from here.
        self._rollback_from: int | None = None
        self._flags_before: tuple[set[int], set[int]] | None = None
        self._broken: str | None = None
        self._closed = False
        self._previous: HistoryEvent | None = None  # the event before the answered task's start

    @property
    def last_event_id(self) -> int:
        """Id of the last event fed in that the server is sure to keep.

        After a task answered without commands, which may have been a speculative
        task the server drops, this is the event before that task.
        """
        if self._rollback_from is not None:
            return self._rollback_from - 1
        return self._last_event_id

    def activate(
        self, events: Sequence[HistoryEvent], messages: Sequence[Message] = ()
    ) -> WorkflowTaskOutcome:
        """Feed the events since the last call and answer the new workflow task, if any.

        The first call gets the history from event 1. Each recorded workflow task is
        replayed and its commands matched against the command events that follow
        its WorkflowTaskCompleted. If ``events`` ends with a WorkflowTaskStarted, that
        task is run for real and its commands returned; otherwise the outcome is
        empty. After a task this instance answered, the next call must start with
        its WorkflowTaskCompleted and the events of the returned commands.

        Args:
            events: Events continuing from :attr:`last_event_id`.
            messages: Protocol messages of the new task: update requests.

        Returns:
            The commands for the new task, or the failure of the task.

        Raises:
            ValueError: The event ids are not contiguous, or the answered task did not
                complete (evict this instance and replay the history in a new one).
            RuntimeError: The instance was closed or failed a task before.
        """
        if self._closed:
            raise RuntimeError("The workflow instance is closed")
        if self._broken is not None:
            raise RuntimeError(self._broken)
        rollback = self._rollback_from
        self._rollback_from = None
        if self._answered and rollback is not None and events and events[0].event_id == rollback:
            kept = (
                len(events) > 2
                and events[1].event_id == self._last_event_id
                and events[1].event_type == E.WORKFLOW_TASK_STARTED
                and events[2].event_type == E.WORKFLOW_TASK_COMPLETED
            )
            if kept:
                # The server kept the answered task: skip what this instance has seen.
                events = events[2:]
            else:
                # The answered task only rejected updates and left no events.
                self._answered = False
                self._last_event_id = rollback - 1
                if self._flags_before is not None:
                    self._flags.core, self._flags.lang = self._flags_before
        expected = self._last_event_id + 1
        for offset, event in enumerate(events):
            if event.event_id != expected + offset:
                raise ValueError(
                    f"Event ids must continue from {expected - 1} without gaps; "
                    f"got event {event.event_id} at position {offset}"
                )
        try:
            return self._process(events, messages)
        except UnsupportedFeatureError as err:
            return self._task_failed(err)
        except Nondeterminism as mismatch:
            self._broken = "The workflow instance failed a task on nondeterminism; evict it"
            logger.warning(
                "Nondeterminism in workflow %s (run %s): %s",
                self._runtime.context.workflow_id,
                self._runtime.context.run_id,
                mismatch,
            )
            return WorkflowTaskOutcome(
                commands=[],
                failure=history.nondeterminism_failure(str(mismatch)),
                nondeterminism=True,
            )

    @property
    def start_time(self) -> datetime:
        """When the run started (its WorkflowExecutionStarted event)."""
        return self._runtime.workflow.get_info().workflow_start_time

    @property
    def task_timeout(self) -> timedelta:
        """The run's workflow task timeout."""
        return self._runtime.workflow.get_info().task_timeout or _DEFAULT_TASK_TIMEOUT

    def query(
        self, name: str, args: Sequence[Payload], headers: Mapping[str, Payload] | None = None
    ) -> Payload:
        """Run a query handler against the state after the last processed task.

        Raises:
            QueryFailed: No handler for ``name`` (worded like Temporal), or it raised.
        """
        if self._closed:
            raise RuntimeError("The workflow instance is closed")
        return self._runtime.query(name, args, headers)

    def close(self) -> None:
        """Evict: cancel every coroutine of the run without producing commands."""
        if not self._closed:
            self._closed = True
            self._runtime.evict()

    # -- processing -------------------------------------------------------------------------------

    def _process(
        self, events: Sequence[HistoryEvent], messages: Sequence[Message]
    ) -> WorkflowTaskOutcome:
        machines = self._machines
        count = len(events)
        index = 0
        while index < count:
            event = events[index]
            event_type = event.event_type
            if self._answered:
                if event_type != E.WORKFLOW_TASK_COMPLETED:
                    self._broken = "The workflow task this instance answered did not complete"
                    raise ValueError(
                        f"Expected WorkflowTaskCompleted for the answered task, got "
                        f"{history.describe_event(event)}; evict this instance and replay"
                    )
                self._answered = False
            elif event_type in _UNSUPPORTED_COMMAND_EVENTS:
                raise UnsupportedFeatureError(
                    f"{history.describe_event(event)} is not supported yet"
                )
            elif event_type in history.COMMAND_EVENT_TYPES:
                following = events[index + 1] if index + 1 < count else None
                if machines.handle_command_event(event, following):
                    self._last_event_id = event.event_id
                    index += 1
                    event = events[index]
            elif event_type in _RESULT_EVENTS:
                machines.handle_event(event)
            elif event_type == E.WORKFLOW_TASK_STARTED:
                self._last_event_id = event.event_id
                following = events[index + 1] if index + 1 < count else None
                if following is None:
                    if messages:
                        self._deliver_updates(messages)
                    return self._answer(event, events[index - 1] if index else None)
                if following.event_type == E.WORKFLOW_TASK_COMPLETED:
                    outcome = self._replay(event, following, events, index)
                    if outcome is not None:
                        return outcome
                # Otherwise the task failed or timed out: it produced nothing and its
                # jobs go to the next task.
            else:
                self._apply_event(event)
            self._last_event_id = event.event_id
            index += 1
        return WorkflowTaskOutcome(commands=[])

    def _apply_event(self, event: HistoryEvent) -> None:
        event_type = event.event_type
        jobs = self._jobs
        if event_type == E.WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            jobs.append(
                SignalWorkflow(
                    name=attrs.signal_name,
                    input=list(attrs.input.payloads),
                    headers=dict(attrs.header.fields),
                    event_id=event.event_id,
                )
            )
        elif event_type == E.WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            jobs.append(
                CancelWorkflow(event.workflow_execution_cancel_requested_event_attributes.cause)
            )
        elif event_type == E.WORKFLOW_EXECUTION_STARTED:
            # Workflow time starts at the start event, so early queries see a time.
            self._runtime.loop.time_ns = event.event_time.ToNanoseconds()
            jobs.append(
                InitializeWorkflow(
                    event.workflow_execution_started_event_attributes,
                    history.event_datetime(event),
                )
            )
        elif event_type == E.WORKFLOW_TASK_COMPLETED:
            self._flags.add_from_completed(event.workflow_task_completed_event_attributes)
        elif event_type == E.WORKFLOW_TASK_FAILED:
            failed = event.workflow_task_failed_event_attributes
            if (
                failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
                and failed.new_run_id
            ):
                # A reset run draws its random numbers from the new run id, like sdk-core.
                jobs.append(UpdateRandomSeed(history.randomness_seed(failed.new_run_id)))
        elif event_type in _IGNORED_EVENTS or event.worker_may_ignore:
            pass
        else:
            raise UnsupportedFeatureError(f"{history.describe_event(event)} is not supported yet")

    def _replay(
        self,
        started: HistoryEvent,
        completed: HistoryEvent,
        events: Sequence[HistoryEvent],
        index: int,
    ) -> WorkflowTaskOutcome | None:
        """Re-run a recorded task; its command events are matched as they come next."""
        self._flags.add_from_completed(completed.workflow_task_completed_event_attributes)
        # sdk-core looks ahead at the task's command events so patched() answers as
        # it did when the task ran.
        machines = self._machines
        for later in events[index + 2 :]:
            if later.event_type == E.WORKFLOW_TASK_STARTED:
                break
            if later.event_type == E.WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                # Accepted updates run again, without their validators.
                accepted = later.workflow_execution_update_accepted_event_attributes
                self._jobs.append(
                    DoUpdate(
                        request=accepted.accepted_request,
                        request_message_id=accepted.accepted_request_message_id,
                        sequencing_event_id=accepted.accepted_request_sequencing_event_id,
                        protocol_instance_id=accepted.protocol_instance_id,
                        run_validator=False,
                    )
                )
            elif later.event_type == E.MARKER_RECORDED:
                details = history.patch_marker_details(later)
                if details is not None:
                    machines.note_patch_marker(details[0])
                else:
                    # Local activities resolve from their markers in the activation
                    # that resolved them when the task ran: they are not run again.
                    marker = local_marker(later)
                    if marker is not None:
                        machines.note_local_marker(marker)
        error = self._run_task(
            started, replaying=True, single_batch=_SINGLE_BATCH_FLAG in self._flags.lang
        )
        if error is None:
            return None
        return self._task_failed(error)

    def _deliver_updates(self, messages: Sequence[Message]) -> None:
        for message in messages:
            request = Request()
            if not message.body.Unpack(request):
                raise ValueError(f"Unexpected protocol message {message.body.type_url}")
            self._jobs.append(
                DoUpdate(
                    request=request,
                    request_message_id=message.id,
                    sequencing_event_id=message.event_id,
                    protocol_instance_id=message.protocol_instance_id,
                    run_validator=True,
                )
            )

    def _answer(self, started: HistoryEvent, previous: HistoryEvent | None) -> WorkflowTaskOutcome:
        """Run the new task and return its commands."""
        self._machines.messages = []
        self._previous = previous
        # Local activities whose marker replay never met run now.
        self._machines.start_new_task()
        # Like temporalio, a flag the history already used keeps applying to new tasks.
        error = self._run_task(
            started, replaying=False, single_batch=_SINGLE_BATCH_FLAG in self._flags.lang
        )
        if error is not None:
            return self._task_failed(error)
        self._answered = True
        return self._outcome()

    def resolve_local_activities(
        self, results: Sequence[LocalActivityResult]
    ) -> WorkflowTaskOutcome:
        """Hand workflow code the results of local activities and answer the task anew.

        Call it only after an outcome that was ``waiting_for_local_activities``;
        the outcome it returns holds every command of the task so far.
        """
        if self._closed:
            raise RuntimeError("The workflow instance is closed")
        if self._broken is not None:
            raise RuntimeError(self._broken)
        machines = self._machines
        for result in results:
            machines.local_activity_result(result)
        try:
            error = self._run_jobs(
                replaying=False, single_batch=_SINGLE_BATCH_FLAG in self._flags.lang
            )
        except UnsupportedFeatureError as err:
            return self._task_failed(err)
        except Nondeterminism as mismatch:
            self._broken = "The workflow instance failed a task on nondeterminism; evict it"
            return WorkflowTaskOutcome(
                commands=[],
                failure=history.nondeterminism_failure(str(mismatch)),
                nondeterminism=True,
            )
        if error is not None:
            return self._task_failed(error)
        return self._outcome()

    def _outcome(self) -> WorkflowTaskOutcome:
        """The answer to the running task, as far as it got."""
        machines = self._machines
        requests, machines.local_requests = machines.local_requests, []
        cancels, machines.local_cancels = machines.local_cancels, []
        if machines.waiting_for_local_activities():
            return WorkflowTaskOutcome(
                commands=[],
                local_activities=requests,
                local_cancels=cancels,
                waiting_for_local_activities=True,
            )
        commands = machines.outgoing()
        if commands and _is_terminal(commands[-1]):
            self._runtime.warn_unfinished_handlers()
        previous = self._previous
        if (
            not commands
            and previous is not None
            and previous.event_type == E.WORKFLOW_TASK_SCHEDULED
        ):
            self._rollback_from = previous.event_id
            # Running the task only noted flags as used; gather() below adds them.
            self._flags_before = (set(self._flags.core), set(self._flags.lang))
        return WorkflowTaskOutcome(
            commands=commands,
            sdk_metadata=self._flags.gather(),
            messages=list(machines.messages),
            local_activities=requests,
            local_cancels=cancels,
        )

    def _run_task(
        self, started: HistoryEvent, *, replaying: bool, single_batch: bool
    ) -> BaseException | None:
        runtime = self._runtime
        context = runtime.context
        attrs = started.workflow_task_started_event_attributes
        stamp = started.event_time
        # Timestamp.ToNanoseconds without its range check (a Python call of its own).
        time_ns = stamp.seconds * 1_000_000_000 + stamp.nanos
        if time_ns > runtime.loop.time_ns:
            runtime.loop.time_ns = time_ns
        context.history_length = started.event_id
        context.history_size = attrs.history_size_bytes
        context.continue_as_new_suggested = attrs.suggest_continue_as_new
        machines = self._machines
        machines.replaying = replaying
        if machines.time_ns < runtime.loop.time_ns:
            machines.time_ns = runtime.loop.time_ns
        return self._run_jobs(replaying=replaying, single_batch=single_batch)

    def _run_jobs(self, *, replaying: bool, single_batch: bool) -> BaseException | None:
        machines = self._machines
        loop = self._runtime.loop
        jobs = self._jobs
        # Cancelling an activity can resolve it at once; sdk-core then runs another
        # activation within the same task, and so do we.
        while jobs:
            batch = list(jobs)
            jobs.clear()
            # A resolved local activity moves workflow time to when it completed.
            if machines.time_ns > loop.time_ns:
                loop.time_ns = machines.time_ns
            self.steps += 1
            error = self._runtime.activate(batch, replaying=replaying, single_batch=single_batch)
            machines.time_ns = loop.time_ns
            if error is not None:
                machines.discard_current()
                return error
            machines.prepare()
        return None

    def _task_failed(self, error: BaseException) -> WorkflowTaskOutcome:
        context = self._runtime.context
        logger.warning(
            "Failed activation on workflow %s with ID %s and run ID %s",
            context.defn.name,
            context.workflow_id,
            context.run_id,
            exc_info=error,
        )
        self._broken = "The workflow instance failed a workflow task; evict it"
        failure = Failure()
        try:
            context.failure_converter.to_failure(error, context.payload_converter, failure)
        except Exception as inner:
            failure = Failure(
                message=f"Failed converting activation exception: {inner}",
                application_failure_info=ApplicationFailureInfo(),
            )
        return WorkflowTaskOutcome(commands=[], failure=failure)


_TERMINAL = frozenset(
    {
        CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        CommandType.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
        CommandType.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION,
        CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
    }
)


def _is_terminal(command: Command) -> bool:
    # Every command the machines make has its type set (CommandMachines._add).
    return command.command_type in _TERMINAL
