"""Temporal's WorkflowService, answered by the embedded engine.

``temporalio.client.Client`` talks to this exactly as it talks to a Temporal
frontend over gRPC, so handles, data classes, converters and errors are the
SDK's own. Each supported RPC is a method named like the SDK's service stub.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.message import Message
from temporalio.api.common.v1 import GrpcStatus, Payloads, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import (
    HistoryEventFilterType,
    PendingActivityState,
    PendingWorkflowTaskState,
    QueryRejectCondition,
    TaskQueueKind,
    WorkflowExecutionStatus,
)
from temporalio.api.errordetails.v1 import (
    MultiOperationExecutionFailure,
    WorkflowExecutionAlreadyStartedFailure,
)
from temporalio.api.failure.v1 import MultiOperationExecutionAborted
from temporalio.api.history.v1 import History
from temporalio.api.query.v1 import QueryRejected
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.update.v1 import UpdateRef
from temporalio.api.workflow.v1 import (
    PendingActivityInfo,
    PendingChildExecutionInfo,
    PendingWorkflowTaskInfo,
    WorkflowExecutionConfig,
    WorkflowExecutionInfo,
)
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    ExecuteMultiOperationRequest,
    ExecuteMultiOperationResponse,
    GetWorkflowExecutionHistoryRequest,
    GetWorkflowExecutionHistoryResponse,
    PollWorkflowExecutionUpdateRequest,
    PollWorkflowExecutionUpdateResponse,
    QueryWorkflowRequest,
    QueryWorkflowResponse,
    RequestCancelWorkflowExecutionRequest,
    RequestCancelWorkflowExecutionResponse,
    SignalWithStartWorkflowExecutionRequest,
    SignalWithStartWorkflowExecutionResponse,
    SignalWorkflowExecutionRequest,
    SignalWorkflowExecutionResponse,
    StartWorkflowExecutionRequest,
    StartWorkflowExecutionResponse,
    TerminateWorkflowExecutionRequest,
    TerminateWorkflowExecutionResponse,
    UpdateWorkflowExecutionRequest,
    UpdateWorkflowExecutionResponse,
)
from temporalio.service import RPCError, RPCStatusCode

from ablauf.engine import executions, search_attributes, update_with_start, updates
from ablauf.engine.activity_rpcs import ActivityRpcs
from ablauf.engine.engine import Engine
from ablauf.engine.errors import (
    ABORTED,
    AlreadyStartedError,
    DeadlineExceededError,
    EngineError,
    InvalidArgumentError,
    MultiOperationError,
    NotFoundError,
    QueryFailedError,
    ResourceExhaustedError,
)
from ablauf.engine.limits import check_request
from ablauf.engine.operator import OperatorRpcs

__all__ = ["Frontend", "rpc_error"]

DEFAULT_QUERY_TIMEOUT = 30.0
_LONG_POLL = 20.0


def rpc_error(status: RPCStatusCode, message: str, *details: Message) -> RPCError:
    """An RPCError shaped like the one a Temporal frontend returns."""
    grpc = GrpcStatus(code=int(status), message=message)
    for detail in details:
        packed = AnyProto()
        packed.Pack(detail)
        grpc.details.append(packed)
    return RPCError(message, status, grpc.SerializeToString())


def _status_of(err: EngineError) -> tuple[RPCStatusCode, list[Message]]:
    """The status code and details Temporal's frontend answers an error with."""
    if isinstance(err, AlreadyStartedError):
        return RPCStatusCode.ALREADY_EXISTS, [
            WorkflowExecutionAlreadyStartedFailure(run_id=err.run_id)
        ]
    if err is ABORTED:
        return RPCStatusCode.ABORTED, [MultiOperationExecutionAborted()]
    if isinstance(err, MultiOperationError):
        statuses = MultiOperationExecutionFailure()
        for one in err.errors:
            status = statuses.statuses.add()
            if one is not None:
                code, details = _status_of(one)
                status.code, status.message = int(code), str(one)
                for detail in details:
                    status.details.add().Pack(detail)
        return _status_of(err.cause)[0], [statuses]
    if isinstance(err, NotFoundError):
        return RPCStatusCode.NOT_FOUND, []
    if isinstance(err, DeadlineExceededError):
        return RPCStatusCode.DEADLINE_EXCEEDED, []
    if isinstance(err, ResourceExhaustedError):
        return RPCStatusCode.RESOURCE_EXHAUSTED, []
    if isinstance(err, QueryFailedError | InvalidArgumentError):
        return RPCStatusCode.INVALID_ARGUMENT, []
    return RPCStatusCode.INTERNAL, []


def _to_rpc_error(err: EngineError) -> RPCError:
    code, details = _status_of(err)
    return rpc_error(code, str(err), *details)


def _rejects(condition: int, status: int) -> bool:
    """Whether Temporal refuses a query with this reject condition on a run in this status."""
    if status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
        return False
    if condition == QueryRejectCondition.QUERY_REJECT_CONDITION_NOT_OPEN:
        return True
    return (
        condition == QueryRejectCondition.QUERY_REJECT_CONDITION_NOT_COMPLETED_CLEANLY
        and status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED
    )


def _run_of(
    engine: Engine, namespace: str, execution: WorkflowExecution, first_execution_run_id: str = ""
) -> str:
    """The run a request names; without a run id, the run current as the request
    is applied (after a continue-as-new committed in the same group: the new run).

    A request naming the first run of its chain reaches no run of another chain
    (a later start of the same workflow id): as Temporal, it is not found.
    """
    run_id = engine.execution(namespace, execution.workflow_id, execution.run_id).run_id
    if (
        first_execution_run_id
        and engine.state_of(run_id).started.first_execution_run_id != first_execution_run_id
    ):
        raise NotFoundError("workflow execution not found")
    return run_id


# Temporal's default and largest history page (its frontend counts batches of
# events; ablauf, which keeps none, counts events).
HISTORY_PAGE_SIZE = 256


class Frontend:
    """The RPCs ablauf's engine answers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.activities = ActivityRpcs(engine)
        self.operator = OperatorRpcs(engine)

    async def call(self, rpc: str, req: Message, timeout: float | None) -> Message:
        name = f"rpc_{rpc}"
        handler: Callable[[Any, float | None], Awaitable[Message]] | None = (
            getattr(self, name, None)
            or getattr(self.activities, name, None)
            or getattr(self.engine.schedules, name, None)
            or getattr(self.operator, name, None)
        )
        if handler is None:
            raise rpc_error(
                RPCStatusCode.UNIMPLEMENTED,
                f"{rpc} is not supported by ablauf's embedded engine",
            )
        try:
            return await handler(req, timeout)
        except EngineError as err:
            raise _to_rpc_error(err) from None

    async def rpc_start_workflow_execution(
        self, req: StartWorkflowExecutionRequest, timeout: float | None
    ) -> StartWorkflowExecutionResponse:
        executions.check_start(req)
        run_id, started = await self.engine.submit(lambda: executions.start(self.engine, req))
        return StartWorkflowExecutionResponse(run_id=run_id, started=started)

    async def rpc_signal_with_start_workflow_execution(
        self, req: SignalWithStartWorkflowExecutionRequest, timeout: float | None
    ) -> SignalWithStartWorkflowExecutionResponse:
        executions.check_start(req)
        check_request(req.signal_input)
        run_id, started = await self.engine.submit(lambda: executions.start(self.engine, req))
        return SignalWithStartWorkflowExecutionResponse(run_id=run_id, started=started)

    async def rpc_request_cancel_workflow_execution(
        self, req: RequestCancelWorkflowExecutionRequest, timeout: float | None
    ) -> RequestCancelWorkflowExecutionResponse:
        engine = self.engine

        def change() -> None:
            run_id = _run_of(
                engine, req.namespace, req.workflow_execution, req.first_execution_run_id
            )
            executions.request_cancel(engine, run_id, req.reason, req.identity)

        await engine.submit(change)
        return RequestCancelWorkflowExecutionResponse()

    async def rpc_terminate_workflow_execution(
        self, req: TerminateWorkflowExecutionRequest, timeout: float | None
    ) -> TerminateWorkflowExecutionResponse:
        engine = self.engine
        details = req.details if req.HasField("details") else None
        # Temporal's frontend names a terminate request that gives no reason.
        reason = req.reason or "terminated by user via frontend"

        def change() -> None:
            run_id = _run_of(
                engine, req.namespace, req.workflow_execution, req.first_execution_run_id
            )
            executions.terminate(engine, run_id, reason, details, req.identity)

        await engine.submit(change)
        return TerminateWorkflowExecutionResponse()

    async def rpc_signal_workflow_execution(
        self, req: SignalWorkflowExecutionRequest, timeout: float | None
    ) -> SignalWorkflowExecutionResponse:
        check_request(req.input)
        header = req.header if req.HasField("header") else None
        engine = self.engine
        namespace, execution = req.namespace, req.workflow_execution

        def apply(signals: list[executions.Signal]) -> None:
            executions.signal_many(engine, _run_of(engine, namespace, execution), signals)

        # Signals to one run that arrive together go into one transition.
        await engine.submit_batched(
            ("signals", namespace, execution.workflow_id, execution.run_id),
            executions.Signal(req.signal_name, req.input, req.identity, header),
            apply,
        )
        return SignalWorkflowExecutionResponse()

    async def rpc_query_workflow(
        self, req: QueryWorkflowRequest, timeout: float | None
    ) -> QueryWorkflowResponse:
        exe = self.engine.execution(req.namespace, req.execution.workflow_id, req.execution.run_id)
        if _rejects(req.query_reject_condition, exe.status):
            return QueryWorkflowResponse(query_rejected=QueryRejected(status=exe.status))  # type: ignore[arg-type]
        result = await self.engine.queries.ask(exe, req, timeout or DEFAULT_QUERY_TIMEOUT)
        return QueryWorkflowResponse(query_result=result)

    async def rpc_update_workflow_execution(
        self, req: UpdateWorkflowExecutionRequest, timeout: float | None
    ) -> UpdateWorkflowExecutionResponse:
        engine = self.engine
        execution = req.workflow_execution
        check_request(req.request.input.args)

        def change() -> str:
            run_id = _run_of(engine, req.namespace, execution, req.first_execution_run_id)
            updates.request(engine, run_id, req.request)
            return run_id

        run_id = await engine.submit(change)
        update_id = req.request.meta.update_id
        run_id, stage, outcome = await updates.wait(
            engine, run_id, update_id, req.wait_policy.lifecycle_stage, timeout
        )
        resp = UpdateWorkflowExecutionResponse(
            update_ref=UpdateRef(
                workflow_execution=WorkflowExecution(
                    workflow_id=execution.workflow_id, run_id=run_id
                ),
                update_id=update_id,
            ),
            stage=stage,  # type: ignore[arg-type]
        )
        if outcome is not None:
            resp.outcome.CopyFrom(outcome)
        return resp

    async def rpc_execute_multi_operation(
        self, req: ExecuteMultiOperationRequest, timeout: float | None
    ) -> ExecuteMultiOperationResponse:
        engine = self.engine
        start, update = update_with_start.check(req)
        update_id = update.request.meta.update_id
        retried = False
        while True:
            run_id, started = await engine.submit(
                lambda: update_with_start.apply(engine, start, update)
            )
            try:
                run_id, stage, outcome = await updates.wait(
                    engine, run_id, update_id, update.wait_policy.lifecycle_stage, timeout
                )
            except NotFoundError as err:
                # As Temporal's server: an update a run did not accept before it
                # closed is tried once more from the top (where a new run may start).
                if started or retried:
                    raise MultiOperationError(None if started else ABORTED, err) from None
                retried = True
                continue
            return update_with_start.response(
                start.workflow_id, run_id, started, update_id, stage, outcome
            )

    async def rpc_poll_workflow_execution_update(
        self, req: PollWorkflowExecutionUpdateRequest, timeout: float | None
    ) -> PollWorkflowExecutionUpdateResponse:
        engine = self.engine
        execution = req.update_ref.workflow_execution
        exe = engine.execution(req.namespace, execution.workflow_id, execution.run_id)
        _, stage, outcome = await updates.wait(
            engine,
            exe.run_id,
            req.update_ref.update_id,
            req.wait_policy.lifecycle_stage,
            timeout,
        )
        resp = PollWorkflowExecutionUpdateResponse(update_ref=req.update_ref, stage=stage)  # type: ignore[arg-type]
        if outcome is not None:
            resp.outcome.CopyFrom(outcome)
        return resp

    async def rpc_get_workflow_execution_history(
        self, req: GetWorkflowExecutionHistoryRequest, timeout: float | None
    ) -> GetWorkflowExecutionHistoryResponse:
        engine = self.engine
        exe = engine.execution(req.namespace, req.execution.workflow_id, req.execution.run_id)
        close_only = (
            req.history_event_filter_type
            == HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT
        )
        first = 1
        if req.next_page_token and not close_only:
            first = int(req.next_page_token.decode())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or _LONG_POLL)
        while True:
            state = engine.state_of(exe.run_id)
            if close_only:
                if state.close_event is not None:
                    return GetWorkflowExecutionHistoryResponse(
                        history=History(events=[state.close_event])
                    )
            elif not req.wait_new_event or state.exe.next_event_id > first or not state.running:
                # In pages, so a long history never sits in memory whole.
                # As Temporal's frontend: a larger page than its maximum is cut to it.
                page = min(req.maximum_page_size or HISTORY_PAGE_SIZE, HISTORY_PAGE_SIZE)
                resp = GetWorkflowExecutionHistoryResponse()
                # Parsed once, into the response: a caller keeps every page it reads.
                resp.history.MergeFromString(engine.history_data(exe.run_id, first, page))
                following = first + len(resp.history.events)
                if following < state.exe.next_event_id or (req.wait_new_event and state.running):
                    resp.next_page_token = str(following).encode()
                return resp
            if not req.wait_new_event:
                return GetWorkflowExecutionHistoryResponse(history=History())
            left = deadline - loop.time()
            if left <= 0:
                # Temporal answers an empty page with the same token; the SDK asks again.
                return GetWorkflowExecutionHistoryResponse(
                    history=History(), next_page_token=str(first).encode()
                )
            with engine.clock.unlocked():
                if engine.clock.can_skip():
                    # A waiting client lets time skip ahead: look again now.
                    engine.wake.set()
                # Every change wakes the wait (a close-only wait: the change that
                # closes the run; another process's change through the service's
                # data_version check), so it need not look again by itself: waking
                # every waiting client each second would stall timers due then.
                await engine.wait_run_change(exe.run_id, left, until_closed=close_only)

    async def rpc_describe_workflow_execution(
        self, req: DescribeWorkflowExecutionRequest, timeout: float | None
    ) -> DescribeWorkflowExecutionResponse:
        engine = self.engine
        exe = engine.execution(req.namespace, req.execution.workflow_id, req.execution.run_id)
        state = engine.state_of(exe.run_id)
        started = state.started
        info = WorkflowExecutionInfo(
            execution=WorkflowExecution(workflow_id=exe.workflow_id, run_id=exe.run_id),
            type=WorkflowType(name=exe.workflow_type),
            status=exe.status,  # type: ignore[arg-type]
            history_length=exe.next_event_id - 1,
            history_size_bytes=exe.history_size,
            task_queue=exe.task_queue,
            first_run_id=started.first_execution_run_id,
            memo=state.memo,
            search_attributes=search_attributes.typed(
                state.search_attributes, engine.store.search_attributes(exe.namespace)
            ),
        )
        if started.HasField("parent_workflow_execution"):
            info.parent_execution.CopyFrom(started.parent_workflow_execution)
        if started.HasField("root_workflow_execution"):
            info.root_execution.CopyFrom(started.root_workflow_execution)
        else:
            # A workflow no other started is the root of its own tree.
            info.root_execution.CopyFrom(info.execution)
        # Times as the history has them, to the nanosecond.
        if state.start_event_time is not None:
            info.start_time.CopyFrom(state.start_event_time)
            # When the first workflow task is due: after a start delay, a retry
            # interval or the wait for a cron time.
            info.execution_time.FromNanoseconds(
                state.start_event_time.ToNanoseconds()
                + started.first_workflow_task_backoff.ToNanoseconds()
            )
        if state.close_event is not None:
            info.close_time.CopyFrom(state.close_event.event_time)
            info.execution_duration.FromNanoseconds(
                state.close_event.event_time.ToNanoseconds() - info.start_time.ToNanoseconds()
            )
        config = WorkflowExecutionConfig(
            task_queue=TaskQueue(name=exe.task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            workflow_execution_timeout=started.workflow_execution_timeout,
            workflow_run_timeout=started.workflow_run_timeout,
            default_workflow_task_timeout=started.workflow_task_timeout,
        )
        if state.metadata is not None:
            config.user_metadata.CopyFrom(state.metadata)
        resp = DescribeWorkflowExecutionResponse(
            execution_config=config, workflow_execution_info=info
        )
        for pending in state.activities.values():
            task = pending.task
            if task is None:
                continue
            pa = PendingActivityInfo(
                activity_id=pending.attrs.activity_id,
                activity_type=pending.attrs.activity_type,
                state=PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                if task.lease_owner
                else PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED,
                attempt=task.attempt,
                maximum_attempts=pending.attrs.retry_policy.maximum_attempts,
            )
            if pending.cancel_requested_event_id:
                pa.state = PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED
            pa.scheduled_time.FromNanoseconds(int(task.attempt_scheduled_at * 1e9))
            if task.started_at:
                pa.last_started_time.FromNanoseconds(int(task.started_at * 1e9))
            if task.heartbeat_details:
                details = Payloads()
                details.ParseFromString(task.heartbeat_details)
                pa.heartbeat_details.CopyFrom(details)
            if task.heartbeat_at:
                pa.last_heartbeat_time.FromNanoseconds(int(task.heartbeat_at * 1e9))
            if task.last_failure:
                pa.last_failure.ParseFromString(task.last_failure)
            resp.pending_activities.append(pa)
        for child in state.children.values():
            if child.run_id:
                resp.pending_children.append(
                    PendingChildExecutionInfo(
                        workflow_id=child.attrs.workflow_id,
                        run_id=child.run_id,
                        workflow_type_name=child.attrs.workflow_type.name,
                        initiated_id=child.initiated_event_id,
                        parent_close_policy=child.attrs.parent_close_policy,
                    )
                )
        wft = state.wft
        if wft is not None and state.running:
            pw = PendingWorkflowTaskInfo(
                state=PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED
                if wft.lease_owner
                else PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED,
                attempt=wft.attempt,
            )
            pw.scheduled_time.FromNanoseconds(int(wft.attempt_scheduled_at * 1e9))
            pw.original_scheduled_time.FromNanoseconds(int(wft.scheduled_at * 1e9))
            resp.pending_workflow_task.CopyFrom(pw)
        return resp
