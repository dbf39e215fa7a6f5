"""Schedules on the embedded engine: Temporal's schedule RPCs and the timer behind them.

A schedule is a row in the store (Temporal's ``Schedule`` and ``ScheduleInfo``
protos plus the engine's bookkeeping) and at most one durable timer for when it
next has work to do. Every change is one store transaction that does what
Temporal's scheduler workflow does on a wake-up:

1. take the actions that came due since the last one (with the spec as it was),
   each within the catch-up window, into the buffer;
2. apply the change (trigger, backfill, pause, unpause, update);
3. look up which started workflows still run (their status in the store) and
   let the overlap policy decide what of the buffer starts, waits or is skipped;
4. set the timer anew.

A timer firing deletes its row in that same transaction, so an action is taken
once, in one process, however many processes share the store file. A started
workflow that closes wakes its schedule, so buffered starts go on at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from temporalio.api.common.v1 import SearchAttributes
from temporalio.api.enums.v1 import TaskQueueKind
from temporalio.api.schedule.v1 import (
    Schedule,
    ScheduleInfo,
)
from temporalio.api.workflowservice.v1 import (
    CreateScheduleRequest,
    CreateScheduleResponse,
    DeleteScheduleRequest,
    DeleteScheduleResponse,
    DescribeScheduleRequest,
    DescribeScheduleResponse,
    ListScheduleMatchingTimesRequest,
    ListScheduleMatchingTimesResponse,
    ListSchedulesRequest,
    ListSchedulesResponse,
    PatchScheduleRequest,
    PatchScheduleResponse,
    UpdateScheduleRequest,
    UpdateScheduleResponse,
)

from ablauf.engine import search_attributes
from ablauf.engine.context import EngineContext
from ablauf.engine.errors import (
    AlreadyStartedError,
    EngineError,
    InvalidArgumentError,
    NotFoundError,
)
from ablauf.engine.limits import check_request
from ablauf.engine.schedule_session import (
    OP,
    SCHEDULED_BY,
    SCHEDULED_START_TIME,
    Book,
    ScheduleSession,
    seconds_of_proto,
    stamp,
    timer_key,
)
from ablauf.engine.schedule_spec import SpecError, canonical_spec
from ablauf.engine.timers import TimerKind
from ablauf.store.base import ScheduleRecord, TimerRecord

__all__ = ["SCHEDULED_BY", "SCHEDULED_START_TIME", "Schedules"]

logger = logging.getLogger(__name__)

# Temporal's scheduler limits for the RPCs (service/worker/scheduler, frontend).
DEFAULT_CATCHUP_WINDOW = 365 * 24 * 3600.0
MIN_CATCHUP_WINDOW = 10.0
MATCHING_TIMES = 1000
MAX_ID_LENGTH = 1000
APPENDED_TIMESTAMP = "-2009-11-10T23:00:00Z"

_NOT_FOUND = "schedule not found"


def _check_policies(schedule: Schedule) -> None:
    """Fills in Temporal's defaults so that describe shows them."""
    policies = schedule.policies
    if policies.overlap_policy == OP.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED:
        policies.overlap_policy = OP.SCHEDULE_OVERLAP_POLICY_SKIP
    window = DEFAULT_CATCHUP_WINDOW
    if policies.HasField("catchup_window"):
        window = max(MIN_CATCHUP_WINDOW, seconds_of_proto(policies.catchup_window))
    policies.catchup_window.FromNanoseconds(round(window * 1e9))


def _check_schedule(schedule: Schedule) -> None:
    """Validates and completes a schedule from a create or update request."""
    try:
        spec = canonical_spec(schedule.spec)
    except SpecError as err:
        raise InvalidArgumentError(f"Invalid schedule spec: {err}") from None
    schedule.spec.CopyFrom(spec)
    if schedule.action.HasField("start_workflow"):
        action = schedule.action.start_workflow
        if len(action.workflow_id) + len(APPENDED_TIMESTAMP) > MAX_ID_LENGTH:
            raise InvalidArgumentError("WorkflowId length exceeds limit.")
        if not action.workflow_type.name:
            raise InvalidArgumentError("WorkflowType is not set on request.")
        if not action.task_queue.name:
            raise InvalidArgumentError("missing task queue name")
        action.task_queue.kind = TaskQueueKind.TASK_QUEUE_KIND_NORMAL
        check_request(action)
    _check_policies(schedule)


class Schedules:
    """The schedule RPCs of Temporal's WorkflowService, and the schedules' timers."""

    def __init__(self, engine: EngineContext) -> None:
        self.engine = engine
        engine.on_commit.append(self._run_committed)

    def _check_search_attributes(
        self, namespace: str, schedule: Schedule, own: SearchAttributes
    ) -> None:
        store = self.engine.store
        search_attributes.check_request(store, namespace, own)
        action = schedule.action.start_workflow
        search_attributes.check_request(store, namespace, action.search_attributes)

    # the transaction every change runs in

    def _change(
        self,
        namespace: str,
        schedule_id: str,
        change: Callable[[ScheduleSession], None],
        *,
        create: Callable[[float], ScheduleRecord] | None = None,
        timer_id: int | None = None,
    ) -> ScheduleSession | None:
        """Catches up, applies ``change``, runs the buffer and saves, in one transaction.

        With ``timer_id``, only the process that deletes that timer row goes on.
        """
        engine = self.engine
        store = engine.store
        namespace = namespace or "default"
        with store.transaction():
            if timer_id is not None and not store.delete_timer(timer_id):
                return None  # another process took it
            now = engine.clock.now()
            if create is not None:
                if store.get_schedule(namespace, schedule_id) is not None:
                    raise AlreadyStartedError(f"temporal-sys-scheduler:{schedule_id}", "")
                store.insert_schedule(create(now))
            rec = store.get_schedule(namespace, schedule_id)
            if rec is None:
                if timer_id is not None:
                    return None
                raise NotFoundError(_NOT_FOUND)
            session = ScheduleSession(engine, rec, now)
            session.catch_up()
            change(session)
            session.run_buffer()
            session.save()
        for action in session.after_commit:
            action()
        return session

    def _read(self, namespace: str, schedule_id: str) -> ScheduleSession:
        store = self.engine.store
        with store.transaction():
            rec = store.get_schedule(namespace or "default", schedule_id)
            if rec is None:
                raise NotFoundError(_NOT_FOUND)
            return ScheduleSession(self.engine, rec, self.engine.clock.now())

    # RPCs

    async def rpc_create_schedule(
        self, req: CreateScheduleRequest, timeout: float | None
    ) -> CreateScheduleResponse:
        namespace = req.namespace or "default"
        if not req.schedule_id:
            raise InvalidArgumentError("ScheduleId is not set on request.")
        if len(req.schedule_id) > MAX_ID_LENGTH:
            raise InvalidArgumentError("ScheduleId length exceeds limit.")
        schedule = Schedule()
        schedule.CopyFrom(req.schedule)
        _check_schedule(schedule)
        self._check_search_attributes(namespace, schedule, req.search_attributes)

        def create(now: float) -> ScheduleRecord:
            info = ScheduleInfo()
            stamp(info.create_time, now)
            return ScheduleRecord(
                namespace=namespace,
                schedule_id=req.schedule_id,
                schedule=schedule.SerializeToString(),
                info=info.SerializeToString(),
                memo=req.memo.SerializeToString(),
                search_attributes=req.search_attributes.SerializeToString(),
                state=Book(last=now).dump(),
                created_at=now,
            )

        session = self._change(
            namespace, req.schedule_id, lambda s: s.apply_patch(req.initial_patch), create=create
        )
        assert session is not None
        return CreateScheduleResponse(conflict_token=session.token)

    async def rpc_describe_schedule(
        self, req: DescribeScheduleRequest, timeout: float | None
    ) -> DescribeScheduleResponse:
        s = self._read(req.namespace, req.schedule_id)
        with self.engine.store.transaction():
            info = s.view()
        return DescribeScheduleResponse(
            schedule=s.schedule,
            info=info,
            memo=s.memo,
            search_attributes=s.search_attributes,
            conflict_token=s.token,
        )

    async def rpc_patch_schedule(
        self, req: PatchScheduleRequest, timeout: float | None
    ) -> PatchScheduleResponse:
        self._change(req.namespace, req.schedule_id, lambda s: s.apply_patch(req.patch))
        return PatchScheduleResponse()

    async def rpc_update_schedule(
        self, req: UpdateScheduleRequest, timeout: float | None
    ) -> UpdateScheduleResponse:
        schedule = Schedule()
        schedule.CopyFrom(req.schedule)
        _check_schedule(schedule)
        self._check_search_attributes(req.namespace or "default", schedule, req.search_attributes)

        def update(s: ScheduleSession) -> None:
            if req.conflict_token and req.conflict_token != s.token:
                # Temporal drops an update made against an older state.
                logger.warning("schedule %s: update conflicts with a newer change", s.schedule_id)
                return
            s.schedule.CopyFrom(schedule)
            if req.HasField("search_attributes"):
                s.search_attributes.CopyFrom(req.search_attributes)
            if req.HasField("memo"):
                s.memo.CopyFrom(req.memo)
            s.spec = s._compile()
            # Times before the update belong to the old spec.
            s.book.last = max(s.book.last, s.now)
            stamp(s.info.update_time, s.now)
            s.book.token += 1

        self._change(req.namespace, req.schedule_id, update)
        return UpdateScheduleResponse()

    async def rpc_delete_schedule(
        self, req: DeleteScheduleRequest, timeout: float | None
    ) -> DeleteScheduleResponse:
        store = self.engine.store
        with store.transaction():
            if not store.delete_schedule(req.namespace or "default", req.schedule_id):
                raise NotFoundError(_NOT_FOUND)
            store.delete_timers(
                timer_key(req.schedule_id), TimerKind.SCHEDULE, req.namespace or "default"
            )
        return DeleteScheduleResponse()

    async def rpc_list_schedules(
        self, req: ListSchedulesRequest, timeout: float | None
    ) -> ListSchedulesResponse:
        if req.query:
            raise InvalidArgumentError(
                "list queries are not supported by ablauf's embedded engine; list without a query"
            )
        offset = int(req.next_page_token.decode()) if req.next_page_token else 0
        size = req.maximum_page_size or 1000
        store = self.engine.store
        resp = ListSchedulesResponse()
        with store.transaction():
            recs = store.list_schedules(req.namespace or "default", offset, size + 1)
            now = self.engine.clock.now()
            for rec in recs[:size]:
                resp.schedules.append(ScheduleSession(self.engine, rec, now).list_entry())
        if len(recs) > size:
            resp.next_page_token = str(offset + size).encode()
        return resp

    async def rpc_list_schedule_matching_times(
        self, req: ListScheduleMatchingTimesRequest, timeout: float | None
    ) -> ListScheduleMatchingTimesResponse:
        s = self._read(req.namespace, req.schedule_id)
        if s.spec is None:
            raise InvalidArgumentError(f"invalid schedule: {s.info.invalid_schedule_error}")
        resp = ListScheduleMatchingTimesResponse()
        start, end = seconds_of_proto(req.start_time), seconds_of_proto(req.end_time)
        for t in s.spec.times(start, MATCHING_TIMES, until=end):
            stamp(resp.start_time.add(), t.next)
        return resp

    # timers and closing runs

    def fire(self, timer: TimerRecord) -> None:
        """A schedule's timer came due: take its actions (once, in one process)."""
        schedule_id = timer.run_id.removeprefix("schedule:")
        self._change(timer.ref, schedule_id, lambda s: None, timer_id=timer.id)

    def _run_committed(self, run_id: str) -> None:
        """Wakes the schedule of a workflow that just closed, so its buffer moves on."""
        try:
            self._wake_for(run_id)
        except EngineError:
            pass
        except Exception:
            logger.exception("could not wake the schedule of run %s", run_id)

    def _wake_for(self, run_id: str) -> None:
        engine = self.engine
        state = engine.state_of(run_id)
        if state.running:
            return
        by = state.started.search_attributes.indexed_fields.get(SCHEDULED_BY)
        if by is None:
            return
        schedule_id = json.loads(by.data)
        namespace = state.exe.namespace
        with engine.store.transaction():
            if engine.store.get_schedule(namespace, schedule_id) is None:
                return
            engine.store.delete_timers(timer_key(schedule_id), TimerKind.SCHEDULE, namespace)
            engine.store.insert_timer(
                timer_key(schedule_id), TimerKind.SCHEDULE, namespace, 0, engine.clock.now()
            )
        engine.notify_timer_added()
