"""An activity's life in the engine: scheduled, leased, retried, timed out, closed.

Attempts that fail and are retried leave no events (as in Temporal); only the
final outcome is written, as ActivityTaskStarted plus the closing event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import temporalio.api.enums.v1.event_type_pb2 as E
from google.protobuf.duration_pb2 import Duration
from temporalio.api.command.v1 import ScheduleActivityTaskCommandAttributes
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import RetryState, TimeoutType, WorkflowTaskFailedCause
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure, TimeoutFailureInfo
from temporalio.api.history.v1 import (
    ActivityTaskCanceledEventAttributes,
    ActivityTaskCancelRequestedEventAttributes,
    ActivityTaskFailedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    ActivityTaskTimedOutEventAttributes,
    HistoryEvent,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.common import RetryPolicy

from ablauf.engine.context import EngineContext, Transition
from ablauf.engine.errors import CommandRejectedError, InvalidArgumentError, NotFoundError
from ablauf.engine.limits import PAYLOAD_LIMIT, PAYLOADS_TOO_LARGE, PAYLOADS_TOO_LARGE_TYPE
from ablauf.engine.matching import TaskRef
from ablauf.engine.state import NO_EXPIRY, PendingActivity, new_activity_task
from ablauf.engine.timers import TimerKind, activity_retry
from ablauf.history.events import payload_map, seconds_of, set_seconds
from ablauf.history.tasks import (
    ActivityCanceled,
    ActivityCompleted,
    ActivityFailed,
    ActivityOutcome,
    ActivityTask,
)
from ablauf.store.base import ACTIVITY_TASK, TaskRecord

__all__ = [
    "activity_task",
    "arm_lost",
    "cancel_local",
    "fire_timer",
    "heartbeat",
    "offer",
    "record_outcome",
    "request_cancel",
    "schedule",
]

_ALL_TIMERS = (
    TimerKind.ACTIVITY_SCHEDULE_TO_CLOSE,
    TimerKind.ACTIVITY_SCHEDULE_TO_START,
    TimerKind.ACTIVITY_START_TO_CLOSE,
    TimerKind.ACTIVITY_HEARTBEAT,
    TimerKind.ACTIVITY_RETRY,
)
_ATTEMPT_TIMERS = (
    TimerKind.ACTIVITY_START_TO_CLOSE,
    TimerKind.ACTIVITY_HEARTBEAT,
    TimerKind.ACTIVITY_SCHEDULE_TO_START,
)


_secs = seconds_of


def _fill_scheduled(
    attrs: ActivityTaskScheduledEventAttributes,
    cmd: ScheduleActivityTaskCommandAttributes,
    tx: Transition,
    wft_id: int,
) -> _Options:
    """Writes the command's ActivityTaskScheduled attributes into the event;
    returns its options as a worker shows them."""
    if not cmd.activity_id:
        raise InvalidArgumentError("ActivityId is not set on ScheduleActivityTaskCommand")
    queue = cmd.task_queue if cmd.task_queue.name else tx.state.started.task_queue
    template, options = _template_of(cmd, queue)
    attrs.MergeFromString(template)
    attrs.activity_id = cmd.activity_id
    # The template holds them present and empty, as most commands send them
    # (copying one that is present and empty changes nothing; HasField costs a
    # third of reaching into the sub-message).
    if cmd.HasField("header"):
        attrs.header.CopyFrom(cmd.header)
    if cmd.HasField("input"):
        attrs.input.CopyFrom(cmd.input)
    if cmd.HasField("priority"):
        attrs.priority.CopyFrom(cmd.priority)
    attrs.workflow_task_completed_event_id = wft_id
    return options


# Most activities of a workflow share their type, queue and options, and
# normalizing the options is a third of scheduling one. Kept serialized:
# merging bytes is the cheaper copy.
_templates: dict[tuple[object, ...], tuple[bytes, _Options]] = {}
_TEMPLATES_KEPT = 256


def _template_of(
    cmd: ScheduleActivityTaskCommandAttributes, queue: TaskQueue
) -> tuple[bytes, _Options]:
    """The command's type, queue, timeouts and retry policy as Temporal's server
    fills them in (serialized ActivityTaskScheduled attributes), and the options
    as a worker shows them."""
    s2c = cmd.schedule_to_close_timeout
    s2s = cmd.schedule_to_start_timeout
    stc = cmd.start_to_close_timeout
    hb = cmd.heartbeat_timeout
    key = (
        cmd.activity_type.name,
        queue.name,
        queue.kind,
        queue.normal_name,
        s2c.seconds,
        s2c.nanos,
        s2s.seconds,
        s2s.nanos,
        stc.seconds,
        stc.nanos,
        hb.seconds,
        hb.nanos,
        cmd.retry_policy.SerializeToString(deterministic=True)
        if cmd.HasField("retry_policy")
        else None,
    )
    known = _templates.get(key)
    if known is None:
        if len(_templates) >= _TEMPLATES_KEPT:
            _templates.clear()
        known = _templates[key] = _new_template(cmd, queue)
    return known


def _new_template(
    cmd: ScheduleActivityTaskCommandAttributes, queue: TaskQueue
) -> tuple[bytes, _Options]:
    if not cmd.activity_type.name:
        raise InvalidArgumentError("ActivityType is not set on ScheduleActivityTaskCommand")
    s2c, s2s, stc = (
        _secs(cmd.schedule_to_close_timeout),
        _secs(cmd.schedule_to_start_timeout),
        _secs(cmd.start_to_close_timeout),
    )
    if s2c <= 0 and stc <= 0:
        raise InvalidArgumentError(
            "A valid StartToClose or ScheduleToCloseTimeout is not set on "
            "ScheduleActivityTaskCommand"
        )
    if stc <= 0:
        stc = s2c
    if s2c > 0:
        stc = min(stc, s2c)
        s2s = min(s2s, s2c) if s2s > 0 else s2c
    filled = ActivityTaskScheduledEventAttributes()
    filled.activity_type.CopyFrom(cmd.activity_type)
    filled.task_queue.CopyFrom(queue)
    filled.header.SetInParent()
    filled.input.SetInParent()
    filled.priority.SetInParent()
    set_seconds(filled.start_to_close_timeout, stc)
    set_seconds(filled.schedule_to_close_timeout, s2c)
    set_seconds(filled.schedule_to_start_timeout, s2s)
    hb = _secs(cmd.heartbeat_timeout)
    set_seconds(filled.heartbeat_timeout, min(hb, stc) if hb > 0 else 0)
    rp = filled.retry_policy
    rp.CopyFrom(cmd.retry_policy)
    if not rp.HasField("initial_interval") or _secs(rp.initial_interval) <= 0:
        rp.initial_interval.FromSeconds(1)
    if rp.backoff_coefficient == 0:
        rp.backoff_coefficient = 2.0
    if not rp.HasField("maximum_interval") or _secs(rp.maximum_interval) <= 0:
        set_seconds(rp.maximum_interval, 100 * _secs(rp.initial_interval))
    return filled.SerializeToString(), _sdk_options(filled)


def schedule(tx: Transition, cmd: ScheduleActivityTaskCommandAttributes, wft_id: int) -> None:
    """ActivityTaskScheduled, its task row and its schedule-level timers."""
    state = tx.state
    store = tx.engine.store
    if cmd.activity_id in state.activity_ids:
        raise CommandRejectedError(
            f"activity id {cmd.activity_id} is already in use",
            WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_SCHEDULE_ACTIVITY_DUPLICATE_ID,
        )
    event = tx.new_event(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    attrs = event.activity_task_scheduled_event_attributes
    options = _fill_scheduled(attrs, cmd, tx, wft_id)
    tx.append(event)
    pending = state.activities[event.event_id]
    pending.timer_rows = False
    exe = state.exe
    task = pending.task = new_activity_task(exe, attrs, event.event_id, tx.now)
    pending.worker_options = options
    owner = tx.engine.owner_id
    if offer(tx, pending, fresh=True) and exe.activity_owner in (None, owner):
        # Leased here, the first attempt needs no row: most end before anything
        # must outlive this process (a retry, heartbeat or cancel writes it, see
        # _save). Should the process die, whoever finds it gone rebuilds the
        # attempt from the history and ``activity_owner`` (RunState.fold).
        exe.activity_owner = owner
    else:
        store.insert_task(task)
    s2c = _secs(attrs.schedule_to_close_timeout)
    if s2c > 0:
        pending.timer_rows = True
        store.insert_timer(
            state.exe.run_id,
            TimerKind.ACTIVITY_SCHEDULE_TO_CLOSE,
            str(event.event_id),
            0,
            tx.now + s2c,
        )


def offer(tx: Transition, pending: PendingActivity, fresh: bool = False) -> bool:
    """Leases the attempt to a local worker if one polls its queue (True); else
    arms schedule-to-start.

    ``fresh``: the attempt was just scheduled, so it has no timers yet.
    """
    engine = tx.engine
    task = pending.task
    assert task is not None
    queue = engine.matching.local(ACTIVITY_TASK, task.task_queue)
    if queue is None:
        s2s = _secs(pending.attrs.schedule_to_start_timeout)
        if s2s > 0:
            pending.timer_rows = True
            engine.store.insert_timer(
                task.run_id,
                TimerKind.ACTIVITY_SCHEDULE_TO_START,
                str(task.ref),
                task.attempt,
                tx.now + s2s,
            )
        tx.after_commit.append(engine.notify_timer_added)
        return False
    start(tx, pending, fresh)
    tx.handoffs.append((queue, _ref_of(task)))
    return True


def _ref_of(task: TaskRecord) -> TaskRef:
    # By scheduled event id, negated: an attempt may have no row (see schedule).
    return TaskRef(-task.ref, task.lease_nonce, task.run_id, task.attempt)


def _save(tx: Transition, task: TaskRecord) -> None:
    """Writes an activity's task row, the first time if it has none yet."""
    if task.id:
        tx.engine.store.update_task(task)
    else:
        tx.engine.store.insert_task(task)


def start(tx: Transition, pending: PendingActivity, fresh: bool = False) -> None:
    """Leases the current attempt to this process and arms its timeouts (in memory)."""
    engine = tx.engine
    task = pending.task
    assert task is not None
    engine.lease(tx, task, NO_EXPIRY)
    ref = str(task.ref)
    if not fresh:
        engine.store.delete_timers(task.run_id, TimerKind.ACTIVITY_SCHEDULE_TO_START, ref)
    run_id, attempt = task.run_id, task.attempt
    for kind, at in _attempt_deadlines(pending, task.started_at or tx.now):
        tx.arms.append((run_id, kind, ref, attempt, at))


def _attempt_deadlines(
    pending: PendingActivity, started_at: float, heartbeat_at: float | None = None
) -> list[tuple[TimerKind, float]]:
    """When the running attempt times out: start-to-close, and heartbeat if it has one."""
    stc = _secs(pending.attrs.start_to_close_timeout)
    deadlines = [(TimerKind.ACTIVITY_START_TO_CLOSE, started_at + stc)]
    hb = _secs(pending.attrs.heartbeat_timeout)
    if hb > 0:
        deadlines.append((TimerKind.ACTIVITY_HEARTBEAT, (heartbeat_at or started_at) + hb))
    return deadlines


def arm_lost(tx: Transition, owner_ids: Sequence[str]) -> None:
    """Arms durable timeouts for the run's attempts held by processes that are gone.

    Their deadlines were kept in the owner's memory only; now they fire from the
    timers table, and the attempts time out and retry as on Temporal.
    """
    exe = tx.state.exe
    for pending in tx.state.activities.values():
        task = pending.task
        if task is None or task.lease_owner not in owner_ids:
            continue
        if not task.id:
            # Its owner kept it in memory only (see schedule); the row keeps it now.
            tx.engine.store.insert_task(task)
        pending.timer_rows = True
        for kind, at in _attempt_deadlines(pending, task.started_at or tx.now, task.heartbeat_at):
            tx.engine.store.insert_timer(task.run_id, kind, str(task.ref), task.attempt, at)
    if exe.activity_owner in owner_ids:
        exe.activity_owner = None
    tx.after_commit.append(tx.engine.notify_timer_added)


def give_back(tx: Transition, ref: TaskRef) -> None:
    """Hands back an attempt leased to this process that no worker here took:
    its row, unleased and due now, is for any worker of any process."""
    pending = _current(tx, ref)
    if pending is None or pending.task is None:
        return
    task = pending.task
    task.lease_owner = None
    task.lease_until = None
    task.started_at = None
    task.visible_at = tx.now
    _save(tx, task)
    # Its deadlines were armed in this process's memory when it was leased.
    tx.disarms.append((task.run_id, str(task.ref)))


# The last conversion: the activities one transition schedules share their time.
_last_dt = (0.0, datetime.fromtimestamp(0, UTC))


def _dt(at: float) -> datetime:
    global _last_dt
    last_at, last = _last_dt
    if at != last_at:
        last = datetime.fromtimestamp(at, UTC)
        _last_dt = (at, last)
    return last


def activity_task(engine: EngineContext, ref: TaskRef) -> ActivityTask | None:
    """What a worker needs to run a leased attempt, or None if the lease is gone."""
    # The lease is this process's: no other process changes it while it lasts,
    # and the attempt's outcome is checked against the run when it is recorded.
    state = engine.last_state_of(ref.run_id)
    if not state.running:
        return None
    pending = state.activity_of_ref(ref.task_id)
    if pending is None or pending.task is None or pending.task.lease_nonce != ref.nonce:
        return None
    task = pending.task
    attrs = pending.attrs
    options = pending.worker_options
    if options is None:
        options = pending.worker_options = _sdk_options(attrs)
    s2c, stc, hb, retry_policy = options
    details: list[Payload] = []
    if task.heartbeat_details:
        payloads = Payloads()
        payloads.ParseFromString(task.heartbeat_details)
        details = list(payloads.payloads)
    exe = state.exe
    scheduled_time = _dt(task.scheduled_at)
    attempt_time = (
        scheduled_time
        if task.attempt_scheduled_at == task.scheduled_at
        else _dt(task.attempt_scheduled_at)
    )
    started_time = (
        scheduled_time
        if task.started_at == task.scheduled_at
        else _dt(task.started_at or engine.clock.now())
    )
    # Positional: a call naming its 19 fields costs three times as much.
    return ActivityTask(
        ref.token(),  # token
        exe.namespace,  # namespace
        exe.workflow_id,  # workflow_id
        exe.run_id,  # run_id
        exe.workflow_type,  # workflow_type
        attrs.activity_id,  # activity_id
        attrs.activity_type.name,  # activity_type
        task.task_queue,  # task_queue
        # The event's own container: the event never changes once made.
        attrs.input.payloads,  # input
        task.attempt,  # attempt
        scheduled_time,  # scheduled_time
        attempt_time,  # current_attempt_scheduled_time
        started_time,  # started_time
        s2c,  # schedule_to_close_timeout
        stc,  # start_to_close_timeout
        hb,  # heartbeat_timeout
        # Shared by the activities with these options: the worker copies it
        # into the (mutable) Info an activity sees.
        retry_policy,  # retry_policy
        details,  # heartbeat_details
        payload_map(attrs.header.fields),  # headers
    )


_Options = tuple[timedelta | None, timedelta | None, timedelta | None, RetryPolicy]


def _sdk_options(attrs: ActivityTaskScheduledEventAttributes) -> _Options:
    """Schedule-to-close, start-to-close and heartbeat timeouts and retry policy, SDK-typed."""

    def timeout(d: Duration) -> timedelta | None:
        return d.ToTimedelta() if _secs(d) > 0 else None

    return (
        timeout(attrs.schedule_to_close_timeout),
        timeout(attrs.start_to_close_timeout),
        timeout(attrs.heartbeat_timeout),
        RetryPolicy.from_proto(attrs.retry_policy),
    )


def _current(tx: Transition, ref: TaskRef) -> PendingActivity | None:
    if not tx.state.running:
        # As on Temporal, a closed run takes no results: its history ends at the close event.
        return None
    pending = tx.state.activity_of_ref(ref.task_id)
    task = pending.task if pending is not None else None
    if (
        task is not None
        and task.lease_nonce == ref.nonce
        and task.attempt == ref.attempt
        and task.lease_owner
    ):
        return pending
    return None


Outcome = tuple[TaskRef, ActivityOutcome, Payloads | None]


def record_outcome(
    engine: EngineContext, ref: TaskRef, outcome: ActivityOutcome, details: Payloads | None
) -> None:
    """Applies the result of one attempt; a stale attempt's result is dropped."""
    record_outcomes(engine, ref.run_id, [(ref, outcome, details)])


def record_outcomes(engine: EngineContext, run_id: str, outcomes: Sequence[Outcome]) -> None:
    """Applies the results of attempts of one run, in order, in one transition."""

    def change(tx: Transition) -> None:
        for ref, outcome, details in outcomes:
            _apply_outcome(tx, ref, outcome, details)

    engine.transition(run_id, change)


def _apply_outcome(
    tx: Transition, ref: TaskRef, outcome: ActivityOutcome, details: Payloads | None
) -> None:
    engine = tx.engine
    pending = _current(tx, ref)
    if pending is None:
        return
    if details is not None:
        assert pending.task is not None
        pending.task.heartbeat_details = details.SerializeToString()
    result = outcome.result if isinstance(outcome, ActivityCompleted) else None
    if result is not None and result.ByteSize() > PAYLOAD_LIMIT:
        # temporalio's worker refuses to upload such a result and fails the attempt.
        too_large = Failure(
            message=PAYLOADS_TOO_LARGE,
            application_failure_info=ApplicationFailureInfo(type=PAYLOADS_TOO_LARGE_TYPE),
        )
        _fail_attempt(tx, pending, too_large, None)
        return
    if isinstance(outcome, ActivityCompleted):
        completed = tx.new_event(E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
        attrs = completed.activity_task_completed_event_attributes
        if result is not None:
            attrs.result.payloads.append(result)
        else:
            attrs.result.SetInParent()
        attrs.scheduled_event_id = pending.scheduled_event_id
        attrs.identity = engine.identity
        _close(tx, pending, completed)
    elif isinstance(outcome, ActivityCanceled) and pending.cancel_requested_event_id:
        _close(
            tx,
            pending,
            tx.new_event(
                E.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
                ActivityTaskCanceledEventAttributes(
                    details=Payloads(payloads=list(outcome.details)),
                    latest_cancel_requested_event_id=pending.cancel_requested_event_id,
                    scheduled_event_id=pending.scheduled_event_id,
                    identity=engine.identity,
                ),
            ),
        )
    else:
        failure = (
            outcome.failure
            if isinstance(outcome, ActivityFailed)
            else Failure(message="activity canceled")
        )
        _fail_attempt(tx, pending, failure, None)


def _close(tx: Transition, pending: PendingActivity, closing: HistoryEvent) -> None:
    """Records the attempt's started event and ``closing`` (from ``tx.new_event``)."""
    task = pending.task
    assert task is not None
    started_event = tx.new_event(E.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    started = started_event.activity_task_started_event_attributes
    started.scheduled_event_id = pending.scheduled_event_id
    started.identity = tx.engine.identity
    started.request_id = str(task.lease_nonce)
    started.attempt = task.attempt
    if task.last_failure:
        started.last_failure.ParseFromString(task.last_failure)
    tx.add_external_event(started_event)
    tx.add_external_event(closing)
    if task.id:
        tx.engine.store.delete_task(task.id)
    _drop_timers(tx, pending)
    # The closing event may wait in the buffer; the activity is done either way.
    tx.state.drop_activity(pending.scheduled_event_id)


def _drop_timers(
    tx: Transition, pending: PendingActivity, kinds: Sequence[int] = _ALL_TIMERS
) -> None:
    task = pending.task
    assert task is not None
    run_id, ref = task.run_id, str(task.ref)
    if pending.timer_rows:
        tx.engine.store.delete_ref_timers(run_id, ref, kinds)
    if task.lease_owner == tx.engine.owner_id:
        tx.disarms.append((run_id, ref))


def _rearm(tx: Transition, pending: PendingActivity, kind: int, at: float) -> None:
    """Arms a timeout of the running attempt again, in memory if it runs here."""
    task = pending.task
    assert task is not None
    engine, run_id, ref, attempt = tx.engine, task.run_id, str(task.ref), task.attempt
    if task.lease_owner == engine.owner_id:
        tx.arms.append((run_id, kind, ref, attempt, at))
    else:
        pending.timer_rows = True
        engine.store.insert_timer(run_id, kind, ref, attempt, at)
        tx.after_commit.append(lambda: engine.notify_timer_added(at))


def _timeout_failure(
    timeout_type: TimeoutType.ValueType, task: TaskRecord, cause: Failure | None
) -> Failure:
    name = {
        TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE: "StartToClose",
        TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START: "ScheduleToStart",
        TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE: "ScheduleToClose",
        TimeoutType.TIMEOUT_TYPE_HEARTBEAT: "Heartbeat",
    }[timeout_type]
    info = TimeoutFailureInfo(timeout_type=timeout_type)
    if task.heartbeat_details:
        info.last_heartbeat_details.ParseFromString(task.heartbeat_details)
    failure = Failure(
        message=f"activity {name} timeout", source="Server", timeout_failure_info=info
    )
    if cause is not None:
        failure.cause.CopyFrom(cause)
    return failure


def _fail_attempt(
    tx: Transition,
    pending: PendingActivity,
    failure: Failure,
    timeout_type: TimeoutType.ValueType | None,
) -> None:
    task = pending.task
    assert task is not None
    attrs = pending.attrs
    s2c = _secs(attrs.schedule_to_close_timeout)
    deadline = task.scheduled_at + s2c if s2c > 0 else None
    check = failure if timeout_type is None else None
    if timeout_type == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START:
        delay, retry_state = None, RetryState.RETRY_STATE_TIMEOUT
    else:
        delay, retry_state = activity_retry(
            attrs.retry_policy, task.attempt, check, tx.now, deadline
        )
    if delay is None:
        if timeout_type is not None:
            last = Failure()
            if task.last_failure:
                last.ParseFromString(task.last_failure)
            timed_out = ActivityTaskTimedOutEventAttributes(
                failure=_timeout_failure(timeout_type, task, last if task.last_failure else None),
                scheduled_event_id=pending.scheduled_event_id,
                retry_state=retry_state
                if retry_state != RetryState.RETRY_STATE_IN_PROGRESS
                else RetryState.RETRY_STATE_TIMEOUT,
            )
            _close(tx, pending, tx.new_event(E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, timed_out))
        else:
            failed = ActivityTaskFailedEventAttributes(
                failure=failure,
                scheduled_event_id=pending.scheduled_event_id,
                retry_state=retry_state,
                identity=tx.engine.identity,
            )
            _close(tx, pending, tx.new_event(E.EVENT_TYPE_ACTIVITY_TASK_FAILED, failed))
        return
    store = tx.engine.store
    ref = str(task.ref)
    _drop_timers(tx, pending, _ATTEMPT_TIMERS)
    task.attempt += 1
    task.lease_owner = None
    task.lease_until = None
    task.started_at = None
    task.visible_at = tx.now + delay
    task.attempt_scheduled_at = task.visible_at
    failure_to_keep = (
        failure if timeout_type is None else _timeout_failure(timeout_type, task, None)
    )
    task.last_failure = failure_to_keep.SerializeToString()
    _save(tx, task)
    pending.timer_rows = True
    store.insert_timer(task.run_id, TimerKind.ACTIVITY_RETRY, ref, task.attempt, task.visible_at)
    tx.after_commit.append(tx.engine.notify_timer_added)


def request_cancel(tx: Transition, scheduled_event_id: int, wft_id: int) -> None:
    """ActivityTaskCancelRequested; an attempt not running is canceled at once."""
    pending = tx.state.activities.get(scheduled_event_id)
    if pending is None:
        raise InvalidArgumentError(
            f"cannot cancel unknown activity (scheduled event {scheduled_event_id})"
        )
    event = tx.add(
        E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
        ActivityTaskCancelRequestedEventAttributes(
            scheduled_event_id=scheduled_event_id, workflow_task_completed_event_id=wft_id
        ),
    )
    task = pending.task
    assert task is not None
    pending.cancel_requested_event_id = event.event_id
    task.cancel_requested = True
    _save(tx, task)
    if task.lease_owner is None:
        store = tx.engine.store
        tx.add(
            E.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
            ActivityTaskCanceledEventAttributes(
                latest_cancel_requested_event_id=event.event_id,
                scheduled_event_id=scheduled_event_id,
                identity=tx.engine.identity,
            ),
        )
        tx.needs_workflow_task = True
        store.delete_task(task.id)
        _drop_timers(tx, pending)
    elif task.lease_owner == tx.engine.owner_id:
        tx.after_commit.append(lambda: cancel_local(tx.engine, task, "CANCELLED"))


def cancel_local(engine: EngineContext, task: TaskRecord, reason: str) -> None:
    """Tells this process's worker to stop the attempt of ``task``."""
    canceller = engine.matching.activity_cancellers.get(task.task_queue)
    if canceller is not None:
        canceller(_ref_of(task).token(), reason)


def heartbeat(engine: EngineContext, ref: TaskRef, details: Payloads) -> bool:
    """Records heartbeat details; returns whether cancellation was requested."""

    def change(tx: Transition) -> bool:
        pending = _current(tx, ref)
        if pending is None or pending.task is None:
            return True
        return _beat(tx, pending.task, details)

    return engine.transition(ref.run_id, change)


def _beat(tx: Transition, task: TaskRecord, details: Payloads) -> bool:
    task.heartbeat_at = tx.now
    task.heartbeat_details = details.SerializeToString()
    _save(tx, task)
    return task.cancel_requested


_GONE = "activity task not found"


def running_attempt(engine: EngineContext, run_id: str, activity_id: str) -> TaskRef:
    """The attempt of the run's activity ``activity_id`` that is running now.

    Raises:
        NotFoundError: The run has no such activity, or it is not running.
    """
    state = engine.state_of(run_id)
    scheduled_event_id = state.activity_ids.get(activity_id) if state.running else None
    pending = state.activities.get(scheduled_event_id) if scheduled_event_id else None
    if pending is None or pending.task is None or not pending.task.lease_owner:
        raise NotFoundError(_GONE)
    return _ref_of(pending.task)


def report_from_client(
    engine: EngineContext, ref: TaskRef, outcome: ActivityOutcome, details: Payloads | None
) -> None:
    """Records an outcome a client reports for an attempt completed asynchronously.

    Raises:
        NotFoundError: The attempt is no longer running (it timed out, was
            retried, or its run closed).
    """

    def change(tx: Transition) -> None:
        if _current(tx, ref) is None:
            raise NotFoundError(_GONE)
        _apply_outcome(tx, ref, outcome, details)

    engine.transition(ref.run_id, change)


def heartbeat_from_client(engine: EngineContext, ref: TaskRef, details: Payloads) -> bool:
    """:func:`heartbeat` from a client; raises NotFoundError for an attempt not running."""

    def change(tx: Transition) -> bool:
        pending = _current(tx, ref)
        if pending is None or pending.task is None:
            raise NotFoundError(_GONE)
        return _beat(tx, pending.task, details)

    return engine.transition(ref.run_id, change)


def fire_timer(tx: Transition, kind: int, ref: str, attempt: int) -> None:
    """Applies a due activity timer."""
    pending = tx.state.activities.get(int(ref))
    if pending is None or pending.task is None:
        return
    task = pending.task
    running_here = task.lease_owner == tx.engine.owner_id
    if kind == TimerKind.ACTIVITY_RETRY:
        if task.attempt == attempt and task.lease_owner is None:
            offer(tx, pending)
        return
    timeout_type: TimeoutType.ValueType
    if kind == TimerKind.ACTIVITY_SCHEDULE_TO_CLOSE:
        timeout_type = TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE
    elif task.attempt != attempt:
        return
    elif kind == TimerKind.ACTIVITY_SCHEDULE_TO_START:
        if task.lease_owner is not None:
            return
        timeout_type = TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
    elif kind == TimerKind.ACTIVITY_HEARTBEAT:
        hb = _secs(pending.attrs.heartbeat_timeout)
        if task.heartbeat_at is not None and task.heartbeat_at + hb > tx.now:
            _rearm(tx, pending, kind, task.heartbeat_at + hb)
            return
        timeout_type = TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    else:
        timeout_type = TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
    snapshot = dataclasses.replace(task)
    if kind == TimerKind.ACTIVITY_SCHEDULE_TO_CLOSE:
        last = Failure()
        if task.last_failure:
            last.ParseFromString(task.last_failure)
        timed_out = ActivityTaskTimedOutEventAttributes(
            failure=_timeout_failure(timeout_type, task, last if task.last_failure else None),
            scheduled_event_id=pending.scheduled_event_id,
            retry_state=RetryState.RETRY_STATE_TIMEOUT,
        )
        _close(tx, pending, tx.new_event(E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, timed_out))
    else:
        _fail_attempt(tx, pending, Failure(), timeout_type)
    if running_here:
        tx.after_commit.append(lambda: cancel_local(tx.engine, snapshot, "TIMED_OUT"))
