"""Update-with-start: Temporal's ExecuteMultiOperation RPC in its one shape,
[start workflow, update workflow], answered as Temporal's history service does.

- If the workflow's current run (running or closed) has completed this update
  id, the answer is its outcome; nothing starts.
- If the current run is running and already has this update id, or the
  conflict policy is USE_EXISTING, the update goes to that run.
- Otherwise the start is applied with its id policies (FAIL refuses a running
  run, TERMINATE_EXISTING ends it, the reuse policy judges a closed one), and
  the update is admitted in the same change, so the new run's first workflow
  task carries it.

Errors are a :class:`MultiOperationError`: per operation its own error, or
aborted because of the other one.
"""

from __future__ import annotations

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowIdConflictPolicy
from temporalio.api.update.v1 import Outcome, UpdateRef
from temporalio.api.workflowservice.v1 import (
    ExecuteMultiOperationRequest,
    ExecuteMultiOperationResponse,
    StartWorkflowExecutionRequest,
    StartWorkflowExecutionResponse,
    UpdateWorkflowExecutionRequest,
    UpdateWorkflowExecutionResponse,
)

from ablauf.engine import executions, updates
from ablauf.engine.context import EngineContext
from ablauf.engine.errors import (
    ABORTED,
    EngineError,
    InvalidArgumentError,
    MultiOperationError,
)
from ablauf.engine.limits import check_request
from ablauf.store.base import UPDATE_ACCEPTED, UPDATE_REQUESTED

__all__ = ["apply", "check", "response"]

Response = ExecuteMultiOperationResponse.Response


def check(
    req: ExecuteMultiOperationRequest,
) -> tuple[StartWorkflowExecutionRequest, UpdateWorkflowExecutionRequest]:
    """The two operations; refuses what Temporal's frontend refuses, with its messages."""
    ops = req.operations
    if (
        len(ops) != 2
        or not ops[0].HasField("start_workflow")
        or not ops[1].HasField("update_workflow")
    ):
        raise InvalidArgumentError("Operations have to be exactly [Start, Update].")
    start, update = ops[0].start_workflow, ops[1].update_workflow
    start_error = _start_error(start)
    update_error = _update_error(update, start.workflow_id)
    if start_error is not None or update_error is not None:
        raise MultiOperationError(start_error or ABORTED, update_error or ABORTED)
    return start, update


def _start_error(start: StartWorkflowExecutionRequest) -> EngineError | None:
    try:
        executions.check_start(start)
    except EngineError as err:
        return err
    if start.cron_schedule:
        return InvalidArgumentError("CronSchedule is not allowed.")
    if start.request_eager_execution:
        return InvalidArgumentError("RequestEagerExecution is not supported.")
    if start.HasField("workflow_start_delay"):
        return InvalidArgumentError("WorkflowStartDelay is not supported.")
    return None


def _update_error(update: UpdateWorkflowExecutionRequest, workflow_id: str) -> EngineError | None:
    if update.workflow_execution.run_id:
        return InvalidArgumentError("RunId is not allowed.")
    if update.first_execution_run_id:
        return InvalidArgumentError("FirstExecutionRunId is not allowed.")
    try:
        updates.check(update.request)
        check_request(update.request.input.args)
    except EngineError as err:
        return err
    if update.workflow_execution.workflow_id != workflow_id:
        return InvalidArgumentError("WorkflowId is not consistent with previous operation(s).")
    return None


def apply(
    engine: EngineContext,
    start: StartWorkflowExecutionRequest,
    update: UpdateWorkflowExecutionRequest,
) -> tuple[str, bool]:
    """Starts or picks the run and admits the update, in one change; returns
    (run id, whether it was started)."""
    update_id = update.request.meta.update_id
    current = engine.store.current_run_id(start.namespace or "default", start.workflow_id)
    if current is not None:
        if updates.completed_outcome(engine, current, update_id) is not None:
            return current, False
        if engine.state_of(current).running:
            known = engine.store.get_update(current, update_id)
            if (
                known is not None and known.state in (UPDATE_REQUESTED, UPDATE_ACCEPTED)
            ) or start.workflow_id_conflict_policy == (
                WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
            ):
                try:
                    updates.request(engine, current, update.request)
                except EngineError as err:
                    raise MultiOperationError(ABORTED, err) from None
                return current, False
    try:
        run_id, started = executions.start(engine, start)
    except EngineError as err:
        raise MultiOperationError(err, ABORTED) from None
    # Checked beforehand, the update cannot be refused by a run just started.
    updates.request(engine, run_id, update.request)
    return run_id, started


def response(
    workflow_id: str,
    run_id: str,
    started: bool,
    update_id: str,
    stage: int,
    outcome: Outcome | None,
) -> ExecuteMultiOperationResponse:
    """The answer: the run's id, and the update's stage and outcome."""
    result = UpdateWorkflowExecutionResponse(
        update_ref=UpdateRef(
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            update_id=update_id,
        ),
        stage=stage,  # type: ignore[arg-type]
    )
    if outcome is not None:
        result.outcome.CopyFrom(outcome)
    return ExecuteMultiOperationResponse(
        responses=[
            Response(start_workflow=StartWorkflowExecutionResponse(run_id=run_id, started=started)),
            Response(update_workflow=result),
        ]
    )
