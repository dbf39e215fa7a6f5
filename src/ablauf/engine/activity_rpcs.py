"""The RPCs that complete, fail, cancel or heartbeat an activity from outside
its worker: temporalio's ``AsyncActivityHandle`` after the activity called
``activity.raise_complete_async()``.

An attempt is named by its task token (``activity.info().task_token``) or by
workflow id, run id and activity id; either way only the attempt that is
running now can be reported on, as on Temporal.
"""

from __future__ import annotations

from temporalio.api.common.v1 import Payloads
from temporalio.api.workflowservice.v1 import (
    RecordActivityTaskHeartbeatByIdRequest,
    RecordActivityTaskHeartbeatByIdResponse,
    RecordActivityTaskHeartbeatRequest,
    RecordActivityTaskHeartbeatResponse,
    RespondActivityTaskCanceledByIdRequest,
    RespondActivityTaskCanceledByIdResponse,
    RespondActivityTaskCanceledRequest,
    RespondActivityTaskCanceledResponse,
    RespondActivityTaskCompletedByIdRequest,
    RespondActivityTaskCompletedByIdResponse,
    RespondActivityTaskCompletedRequest,
    RespondActivityTaskCompletedResponse,
    RespondActivityTaskFailedByIdRequest,
    RespondActivityTaskFailedByIdResponse,
    RespondActivityTaskFailedRequest,
    RespondActivityTaskFailedResponse,
)

from ablauf.engine import activities
from ablauf.engine.context import EngineContext
from ablauf.engine.errors import InvalidArgumentError
from ablauf.engine.limits import check_request
from ablauf.engine.matching import TaskRef
from ablauf.history.tasks import (
    ActivityCanceled,
    ActivityCompleted,
    ActivityFailed,
    ActivityOutcome,
)

__all__ = ["ActivityRpcs"]


def _ref(token: bytes) -> TaskRef:
    try:
        return TaskRef.from_token(token)
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgumentError("Error deserializing task token.") from None


def _completed(result: Payloads) -> ActivityCompleted:
    return ActivityCompleted(result.payloads[0] if result.payloads else None)


def _details(details: Payloads) -> Payloads | None:
    return details if details.payloads else None


class ActivityRpcs:
    """Asynchronous activity completion, by task token or by ids."""

    def __init__(self, engine: EngineContext) -> None:
        self.engine = engine

    def _by_id(self, namespace: str, workflow_id: str, run_id: str, activity_id: str) -> TaskRef:
        if not workflow_id or not activity_id:
            raise InvalidArgumentError("workflow id and activity id are required")
        exe = self.engine.execution(namespace, workflow_id, run_id)
        return activities.running_attempt(self.engine, exe.run_id, activity_id)

    def _report(self, ref: TaskRef, outcome: ActivityOutcome, details: Payloads | None) -> None:
        activities.report_from_client(self.engine, ref, outcome, details)

    async def rpc_respond_activity_task_completed(
        self, req: RespondActivityTaskCompletedRequest, timeout: float | None
    ) -> RespondActivityTaskCompletedResponse:
        check_request(req.result)
        self._report(_ref(req.task_token), _completed(req.result), None)
        return RespondActivityTaskCompletedResponse()

    async def rpc_respond_activity_task_completed_by_id(
        self, req: RespondActivityTaskCompletedByIdRequest, timeout: float | None
    ) -> RespondActivityTaskCompletedByIdResponse:
        check_request(req.result)
        ref = self._by_id(req.namespace, req.workflow_id, req.run_id, req.activity_id)
        self._report(ref, _completed(req.result), None)
        return RespondActivityTaskCompletedByIdResponse()

    async def rpc_respond_activity_task_failed(
        self, req: RespondActivityTaskFailedRequest, timeout: float | None
    ) -> RespondActivityTaskFailedResponse:
        check_request(req.failure)
        outcome = ActivityFailed(req.failure)
        self._report(_ref(req.task_token), outcome, _details(req.last_heartbeat_details))
        return RespondActivityTaskFailedResponse()

    async def rpc_respond_activity_task_failed_by_id(
        self, req: RespondActivityTaskFailedByIdRequest, timeout: float | None
    ) -> RespondActivityTaskFailedByIdResponse:
        check_request(req.failure)
        ref = self._by_id(req.namespace, req.workflow_id, req.run_id, req.activity_id)
        self._report(ref, ActivityFailed(req.failure), _details(req.last_heartbeat_details))
        return RespondActivityTaskFailedByIdResponse()

    async def rpc_respond_activity_task_canceled(
        self, req: RespondActivityTaskCanceledRequest, timeout: float | None
    ) -> RespondActivityTaskCanceledResponse:
        check_request(req.details)
        outcome = ActivityCanceled(tuple(req.details.payloads))
        self._report(_ref(req.task_token), outcome, None)
        return RespondActivityTaskCanceledResponse()

    async def rpc_respond_activity_task_canceled_by_id(
        self, req: RespondActivityTaskCanceledByIdRequest, timeout: float | None
    ) -> RespondActivityTaskCanceledByIdResponse:
        check_request(req.details)
        ref = self._by_id(req.namespace, req.workflow_id, req.run_id, req.activity_id)
        self._report(ref, ActivityCanceled(tuple(req.details.payloads)), None)
        return RespondActivityTaskCanceledByIdResponse()

    async def rpc_record_activity_task_heartbeat(
        self, req: RecordActivityTaskHeartbeatRequest, timeout: float | None
    ) -> RecordActivityTaskHeartbeatResponse:
        check_request(req.details)
        cancel = activities.heartbeat_from_client(self.engine, _ref(req.task_token), req.details)
        return RecordActivityTaskHeartbeatResponse(cancel_requested=cancel)

    async def rpc_record_activity_task_heartbeat_by_id(
        self, req: RecordActivityTaskHeartbeatByIdRequest, timeout: float | None
    ) -> RecordActivityTaskHeartbeatByIdResponse:
        check_request(req.details)
        ref = self._by_id(req.namespace, req.workflow_id, req.run_id, req.activity_id)
        cancel = activities.heartbeat_from_client(self.engine, ref, req.details)
        return RecordActivityTaskHeartbeatByIdResponse(cancel_requested=cancel)
