"""Updates: validate, accept, run and respond, as the Python SDK does.

A DoUpdate job runs the validator (unless an accepted update is replayed),
then the handler; the update machines turn acceptance, rejection and the
outcome into protocol messages.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import warnings
from typing import Any

import temporalio.exceptions
import temporalio.workflow
from temporalio.api.failure.v1 import Failure
from temporalio.workflow._event_groups import _inbound_update_event_group

from ablauf.payloads import to_payloads
from ablauf.replay.commands import CommandMachines
from ablauf.replay.handles import ContinueAsNew
from ablauf.replay.machines import DoUpdate
from ablauf.replay.runtime.context import ReadOnly, RunContext
from ablauf.replay.runtime.signals import Handlers

__all__ = ["Updates"]


class Updates:
    """The updates in progress, by update id."""

    def __init__(self, context: RunContext, machines: CommandMachines, handlers: Handlers) -> None:
        self._context = context
        self._machines = machines
        self._handlers = handlers
        self.in_progress: dict[str, tuple[str, Any]] = {}

    def run(self, job: DoUpdate) -> None:
        """Validate (unless replaying an accepted update), accept, run, respond; like the SDK."""
        context = self._context
        machines = self._machines
        handlers = self._handlers
        in_progress = self.in_progress

        async def run_update() -> None:
            temporalio.workflow._set_current_update_info(
                temporalio.workflow.UpdateInfo(id=job.update_id, name=job.name)
            )
            request_input = job.request.input
            payloads = list(request_input.args.payloads)
            past_validation = False
            try:
                updates = handlers.updates
                defn = updates.get(job.name) or updates.get(None)
                if defn is None:
                    known = " ".join(sorted(k for k in updates if k))
                    raise RuntimeError(
                        f"Update handler for '{job.name}' expected but not found, and there "
                        f"is no dynamic handler. known updates: [{known}]"
                    )
                in_progress[job.update_id] = (job.name, defn.unfinished_policy)
                args = handlers.handler_args(
                    job.name, payloads, defn.name, defn.arg_types, defn.dynamic_vararg
                )
                intercepted = context.intercepted
                update_input: object = None
                if intercepted is not None:
                    update_input = intercepted.update_input(
                        job.update_id, job.name, args, request_input.header.fields
                    )
                if job.run_validator and defn.validator is not None:
                    with ReadOnly(context, in_query=True):
                        if intercepted is not None:
                            intercepted.validate_update(update_input)
                        else:
                            validator = handlers.update_validator(job.name)
                            if validator is not None:
                                validator(*args)
                        # Fresh arguments: the validator may have changed them.
                        args = handlers.handler_args(
                            job.name, payloads, defn.name, defn.arg_types, defn.dynamic_vararg
                        )
                past_validation = True
                context.check_may_schedule("add command")
                machines.update_accepted(job)
                with _inbound_update_event_group(job.update_id).scope():
                    if intercepted is not None:
                        result = await intercepted.handle_update(update_input, args)
                    else:
                        handler = handlers.update_handler(job.name) or handlers.update_handler(None)
                        assert handler is not None
                        if inspect.iscoroutinefunction(handler):
                            result = await handler(*args)
                        else:
                            result = handler(*args)
                result_payloads = to_payloads(context.payload_converter, [result])
                if len(result_payloads) != 1:
                    raise ValueError(f"Expected 1 result payload, got {len(result_payloads)}")
                context.check_may_schedule("add command")
                machines.update_completed(job, result_payloads[0], None)
            except ContinueAsNew:
                context.loop.failure = RuntimeError("Cannot continue as new from an update handler")
            except (Exception, asyncio.CancelledError) as err:
                if context.evicting:
                    return
                error: BaseException = err
                if isinstance(err, asyncio.CancelledError):
                    error = temporalio.exceptions.CancelledError(
                        f"Cancellation raised within update {err}"
                    )
                if isinstance(error, temporalio.workflow.ReadOnlyContextError):
                    context.loop.failure = error
                    return
                if not past_validation or context.is_failure_exception(error):
                    failure = Failure()
                    context.failure_converter.to_failure(error, context.payload_converter, failure)
                    if past_validation:
                        machines.update_completed(job, None, failure)
                    else:
                        machines.update_rejected(job, failure)
                else:
                    context.loop.failure = error
            finally:
                in_progress.pop(job.update_id, None)

        context.loop.create_task(run_update(), name=f"update: {job.name}")

    def warn_unfinished(self) -> None:
        """Warn, like the Python SDK, when the run ends while update handlers still run."""
        policy = temporalio.workflow.HandlerUnfinishedPolicy.WARN_AND_ABANDON
        updates = [
            {"name": name, "id": update_id}
            for update_id, (name, p) in self.in_progress.items()
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
                stacklevel=3,
            )
