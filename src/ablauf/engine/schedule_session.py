"""One schedule's state within a change: catching up, the buffer, the overlap
policy, starting workflows, and what describe and list show.

:class:`ablauf.engine.schedules.Schedules` opens a session per transaction
(see there for the steps of a change) and saves it at the end.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import temporalio.api.enums.v1.workflow_pb2 as S
from temporalio.api.common.v1 import (
    Memo,
    Payload,
    Payloads,
    SearchAttributes,
    WorkflowExecution,
)
from temporalio.api.enums.v1 import ScheduleOverlapPolicy, WorkflowIdReusePolicy
from temporalio.api.failure.v1 import Failure
from temporalio.api.schedule.v1 import (
    BackfillRequest,
    Schedule,
    ScheduleActionResult,
    ScheduleInfo,
    ScheduleListEntry,
    ScheduleListInfo,
    SchedulePatch,
)
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest

from ablauf.engine import executions
from ablauf.engine.context import EngineContext
from ablauf.engine.errors import NotFoundError
from ablauf.engine.schedule_spec import CompiledSpec, SpecError
from ablauf.engine.timers import TimerKind
from ablauf.store.base import ScheduleRecord

__all__ = [
    "SCHEDULED_BY",
    "SCHEDULED_START_TIME",
    "Book",
    "ScheduleSession",
    "seconds_of_proto",
    "stamp",
    "timer_key",
]

logger = logging.getLogger(__name__)

OP = ScheduleOverlapPolicy

# Temporal's scheduler constants (service/worker/scheduler/workflow.go).
MAX_BUFFER = 1000
RECENT_ACTIONS = 10
FUTURE_ACTIONS = 10
LIST_RECENT_ACTIONS = 5
LIST_FUTURE_ACTIONS = 5
LIST_SPEC_ENTRIES = 10
SCHEDULED_START_TIME = "TemporalScheduledStartTime"
SCHEDULED_BY = "TemporalScheduledById"
# Due actions taken per transaction; the rest follow at once in the next one.
ACTIONS_PER_STEP = 10_000
# While a buffered start waits for a running workflow, look again now and then:
# a close in this process or another wakes the schedule at once, this covers a
# process killed between the close and the wake-up. The pause grows with the
# wait (as long again as the start has waited), from one minute to one hour.
WATCH_MIN, WATCH_MAX = 60.0, 3600.0


def timer_key(schedule_id: str) -> str:
    """The timers table's ``run_id`` for a schedule (never a run's uuid)."""
    return f"schedule:{schedule_id}"


def seconds_of_proto(ts: Any) -> float:
    """A Timestamp or Duration proto in seconds."""
    return float(ts.ToNanoseconds()) / 1e9


def stamp(target: Any, at: float) -> None:
    """Sets a Timestamp proto to ``at`` (epoch seconds)."""
    target.FromNanoseconds(round(at * 1e9))


def _id_time(nominal: float) -> str:
    """RFC 3339 at second precision, as Temporal appends it to workflow ids."""
    return datetime.fromtimestamp(int(nominal), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _search_attribute(value: str, kind: str) -> Payload:
    return Payload(
        metadata={"encoding": b"json/plain", "type": kind.encode()},
        data=json.dumps(value).encode(),
    )


@dataclass
class _Start:
    """A buffered start: an action waiting for the overlap policy's decision."""

    nominal: float
    actual: float
    overlap: int
    manual: bool


@dataclass
class Book:
    """The engine's bookkeeping for a schedule (Temporal: the scheduler's InternalState)."""

    last: float
    token: int = 1
    buffer: list[_Start] = field(default_factory=list)
    result: bytes | None = None  # last completion result (Payloads)
    failure: bytes | None = None  # continued failure (Failure)

    def dump(self) -> str:
        return json.dumps(
            {
                "last": self.last,
                "token": self.token,
                "buffer": [[s.nominal, s.actual, s.overlap, s.manual] for s in self.buffer],
                "result": base64.b64encode(self.result).decode() if self.result else None,
                "failure": base64.b64encode(self.failure).decode() if self.failure else None,
            }
        )

    @classmethod
    def load(cls, text: str) -> Book:
        d = json.loads(text)
        return cls(
            last=d["last"],
            token=d["token"],
            buffer=[_Start(n, a, o, m) for n, a, o, m in d["buffer"]],
            result=base64.b64decode(d["result"]) if d.get("result") else None,
            failure=base64.b64decode(d["failure"]) if d.get("failure") else None,
        )


class ScheduleSession:
    """One schedule inside one store transaction."""

    def __init__(self, engine: EngineContext, rec: ScheduleRecord, now: float) -> None:
        self.engine = engine
        self.store = engine.store
        self.rec = rec
        self.now = now
        self.namespace = rec.namespace
        self.schedule_id = rec.schedule_id
        self.schedule = Schedule.FromString(rec.schedule)
        self.info = ScheduleInfo.FromString(rec.info)
        self.memo = Memo.FromString(rec.memo)
        self.search_attributes = SearchAttributes.FromString(rec.search_attributes)
        self.book = Book.load(rec.state)
        self.spec = self._compile()
        self.after_commit: list[Callable[[], None]] = []

    def _compile(self) -> CompiledSpec | None:
        try:
            spec = CompiledSpec(self.schedule.spec, f"{self.namespace}-{self.schedule_id}")
        except SpecError as err:  # e.g. a time zone that vanished from the system
            self.info.invalid_schedule_error = str(err)
            return None
        self.info.invalid_schedule_error = ""
        return spec

    # policies

    @property
    def catchup_window(self) -> float:
        return seconds_of_proto(self.schedule.policies.catchup_window)

    def resolve(self, policy: int) -> int:
        if policy == OP.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED:
            policy = self.schedule.policies.overlap_policy
        return policy or OP.SCHEDULE_OVERLAP_POLICY_SKIP

    def can_take(self, manual: bool, decrement: bool = False) -> bool:
        """Temporal's canTakeScheduledAction: paused and out of actions stop scheduled ones."""
        if manual:
            return True
        state = self.schedule.state
        if state.paused:
            return False
        if not state.limited_actions:
            return True
        if state.remaining_actions > 0:
            if decrement:
                state.remaining_actions -= 1
                self.book.token += 1
            return True
        return False

    # taking actions into the buffer

    def catch_up(self) -> None:
        """Buffers the actions that came due since the last one, within the catch-up window."""
        if self.spec is None:
            return
        if not self.can_take(False):
            # Paused or out of actions: that time is skipped, not missed.
            self.book.last = max(self.book.last, self.now)
            return
        t = self.book.last
        for _ in range(ACTIONS_PER_STEP):
            nxt = self.spec.next_time(t)
            if nxt is None or nxt.next > self.now:
                break
            t = nxt.next
            if self.now - nxt.next > self.catchup_window:
                self.info.missed_catchup_window += 1
                continue
            self.add_start(nxt.nominal, nxt.next, OP.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED, False)
        self.book.last = t

    def add_start(self, nominal: float, actual: float, overlap: int, manual: bool) -> None:
        if len(self.book.buffer) >= MAX_BUFFER:
            self.info.buffer_dropped += 1
            return
        self.book.buffer.append(_Start(nominal, actual, overlap, manual))

    def backfill(self, req: BackfillRequest) -> None:
        """Takes every time of the range (start inclusive) as if it came due now."""
        if self.spec is None:
            return
        start = seconds_of_proto(req.start_time) - 0.001
        end = seconds_of_proto(req.end_time)
        for nxt in self.spec.times(start, MAX_BUFFER + 1, until=end):
            self.add_start(nxt.nominal, nxt.next, req.overlap_policy, True)

    def apply_patch(self, patch: SchedulePatch) -> None:
        if patch.HasField("trigger_immediately"):
            trigger = patch.trigger_immediately
            at = self.now
            if trigger.HasField("scheduled_time"):
                at = seconds_of_proto(trigger.scheduled_time)
            self.add_start(at, at, trigger.overlap_policy, True)
        for req in patch.backfill_request:
            self.backfill(req)
        state = self.schedule.state
        if patch.pause:
            state.paused = True
            state.notes = patch.pause
            self.book.token += 1
        if patch.unpause:
            state.paused = False
            state.notes = patch.unpause
            self.book.token += 1
            self.book.last = max(self.book.last, self.now)

    # running the buffer

    def run_buffer(self) -> None:
        """Starts, keeps or skips the buffered starts as the overlap policies say."""
        for _ in range(3):
            if not self._process_buffer():
                return

    def _process_buffer(self) -> bool:
        """Temporal's processBuffer; True when it terminated runs (go on at once)."""
        self.refresh()
        buffer = self.book.buffer
        if not buffer or not self.schedule.action.HasField("start_workflow"):
            self.book.buffer = []
            return False
        running = len(self.info.running_workflows) > 0
        overlapping: list[_Start] = []
        single: _Start | None = None
        keep: list[_Start] = []
        cancel = terminate = False
        for start in buffer:
            policy = self.resolve(start.overlap)
            if policy == OP.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL:
                overlapping.append(start)
            elif not running and single is None:
                single = start
            elif policy == OP.SCHEDULE_OVERLAP_POLICY_SKIP:
                self.info.overlap_skipped += 1
            elif policy == OP.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE:
                if keep:
                    self.info.overlap_skipped += 1
                else:
                    keep.append(start)
            elif policy == OP.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL:
                keep.append(start)
            elif running:  # CANCEL_OTHER or TERMINATE_OTHER: wait for the other to close
                cancel = cancel or policy == OP.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER
                terminate = terminate or policy == OP.SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER
                keep.append(start)
            else:  # replaces the one not yet started
                single = start
        if cancel or terminate:
            overlapping = []  # they would be cancelled or terminated at once
        self.book.buffer = keep
        candidates = [*overlapping, *([single] if single is not None else [])]
        for chosen in candidates:
            if not self.can_take(chosen.manual, decrement=True):
                continue
            result = self.start_workflow(chosen)
            if result is not None:
                self.record(result, tracked=chosen is single)
        if terminate:
            for ex in list(self.info.running_workflows):
                self._end_run(ex, terminate=True)
            return True
        if cancel:
            for ex in list(self.info.running_workflows):
                self._end_run(ex, terminate=False)
        return False

    def _end_run(self, ex: WorkflowExecution, terminate: bool) -> None:
        exe = self._latest(ex)
        if exe is None or exe.status != S.WORKFLOW_EXECUTION_STATUS_RUNNING:
            return
        identity = self._identity()
        with contextlib.suppress(NotFoundError):
            if terminate:
                reason = "terminated by schedule overlap policy"
                executions.terminate(self.engine, exe.run_id, reason, None, identity)
            else:
                reason = "cancelled by schedule overlap policy"
                executions.request_cancel(self.engine, exe.run_id, reason, identity)

    def _identity(self) -> str:
        return f"temporal-scheduler-{self.namespace}-{self.schedule_id}"

    def _current(self, workflow_id: str) -> Any:
        run_id = self.store.current_run_id(self.namespace, workflow_id)
        return self.store.get_execution(run_id) if run_id is not None else None

    def _latest(self, ex: WorkflowExecution) -> Any:
        """The latest run of the chain the schedule started (through continue-as-new)."""
        exe = self._current(ex.workflow_id)
        if exe is None or exe.run_id == ex.run_id:
            return exe
        if self.engine.state_of(exe.run_id).started.first_execution_run_id == ex.run_id:
            return exe
        return self.store.get_execution(ex.run_id)  # a later start took the id over

    def refresh(self) -> None:
        """Drops the started workflows that closed, as Temporal's watcher reports them."""
        still = []
        for ex in self.info.running_workflows:
            exe = self._latest(ex)
            if exe is not None and exe.status == S.WORKFLOW_EXECUTION_STATUS_RUNNING:
                still.append(ex)
                continue
            status = exe.status if exe is not None else S.WORKFLOW_EXECUTION_STATUS_COMPLETED
            for action in self.info.recent_actions:
                if action.start_workflow_result.run_id == ex.run_id:
                    action.start_workflow_status = status
            self._closed(ex.workflow_id, exe, status)
        if len(still) != len(self.info.running_workflows):
            del self.info.running_workflows[:]
            self.info.running_workflows.extend(still)

    def _closed(self, workflow_id: str, exe: Any, status: int) -> None:
        """Pause on failure, and keep the last result or failure for the next start."""
        close = self.engine.state_of(exe.run_id).close_event if exe is not None else None
        failure: Failure | None = None
        if close is not None and close.HasField("workflow_execution_failed_event_attributes"):
            failure = close.workflow_execution_failed_event_attributes.failure
        state = self.schedule.state
        failed = status in (
            S.WORKFLOW_EXECUTION_STATUS_FAILED,
            S.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
        )
        if self.schedule.policies.pause_on_failure and failed and not state.paused:
            state.paused = True
            if status == S.WORKFLOW_EXECUTION_STATUS_FAILED:
                message = failure.message if failure is not None else ""
                state.notes = f"paused due to workflow failure: {workflow_id}: {message}"
            else:
                state.notes = f"paused due to workflow timeout: {workflow_id}"
            self.book.token += 1
        if close is not None and close.HasField("workflow_execution_completed_event_attributes"):
            result = close.workflow_execution_completed_event_attributes.result
            self.book.result = result.SerializeToString()
            self.book.failure = None
        elif failure is not None:
            self.book.failure = failure.SerializeToString()

    def start_workflow(self, start: _Start) -> ScheduleActionResult | None:
        """Starts the action's workflow, named by schedule as Temporal names it."""
        action = self.schedule.action.start_workflow
        workflow_id = f"{action.workflow_id}-{_id_time(start.nominal)}"
        existing = self._current(workflow_id)
        if existing is not None and (
            existing.status == S.WORKFLOW_EXECUTION_STATUS_RUNNING or not start.manual
        ):
            # Temporal starts scheduled actions with REJECT_DUPLICATE, manual ones with
            # ALLOW_DUPLICATE; a refused start is logged and dropped.
            logger.warning(
                "schedule %s: workflow %s already started", self.schedule_id, workflow_id
            )
            return None
        search_attributes = SearchAttributes()
        search_attributes.CopyFrom(action.search_attributes)
        fields = search_attributes.indexed_fields
        fields[SCHEDULED_START_TIME].CopyFrom(
            _search_attribute(_id_time(start.nominal), "Datetime")
        )
        fields[SCHEDULED_BY].CopyFrom(_search_attribute(self.schedule_id, "Keyword"))
        reuse = (
            WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
            if start.manual
            else WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
        )
        req = StartWorkflowExecutionRequest(
            namespace=self.namespace,
            workflow_id=workflow_id,
            workflow_type=action.workflow_type,
            task_queue=action.task_queue,
            input=action.input,
            identity=self._identity(),
            request_id=str(uuid.uuid4()),
            workflow_id_reuse_policy=reuse,
            memo=action.memo,
            search_attributes=search_attributes,
            header=action.header,
        )
        for name in (
            "workflow_execution_timeout",
            "workflow_run_timeout",
            "workflow_task_timeout",
            "retry_policy",
        ):
            if action.HasField(name):
                getattr(req, name).CopyFrom(getattr(action, name))
        attrs = executions._started_attributes(req, self.now)
        if self.resolve(start.overlap) != OP.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL:
            # Overlapping runs take no part in last-result passing, as in Temporal.
            if self.book.result is not None:
                attrs.last_completion_result.CopyFrom(Payloads.FromString(self.book.result))
            if self.book.failure is not None:
                attrs.continued_failure.CopyFrom(Failure.FromString(self.book.failure))
        tx = self.engine.create_run(self.namespace, workflow_id, attrs, self.now)
        self.after_commit.append(lambda: self.engine.after_create_run(tx))
        result = ScheduleActionResult(
            start_workflow_result=WorkflowExecution(
                workflow_id=workflow_id, run_id=tx.state.exe.run_id
            ),
            start_workflow_status=S.WORKFLOW_EXECUTION_STATUS_RUNNING,
        )
        stamp(result.schedule_time, start.actual)
        stamp(result.actual_time, self.now)
        return result

    def record(self, result: ScheduleActionResult, tracked: bool) -> None:
        self.info.action_count += 1
        self.info.recent_actions.append(result)
        if len(self.info.recent_actions) > RECENT_ACTIONS:
            del self.info.recent_actions[: len(self.info.recent_actions) - RECENT_ACTIONS]
        # Runs started under ALLOW_ALL overlap others and are not tracked as running.
        if tracked:
            self.info.running_workflows.append(result.start_workflow_result)

    # reading

    def future_times(self, count: int) -> list[float]:
        if self.spec is None:
            return []
        state = self.schedule.state
        if state.limited_actions:
            count = min(count, state.remaining_actions)
        base = self.book.last
        if state.paused:
            base = max(base, self.now)
        update_time = (
            seconds_of_proto(self.info.update_time) if self.info.HasField("update_time") else 0
        )
        return [
            t.next for t in self.spec.times(base, count + FUTURE_ACTIONS) if t.next >= update_time
        ][:count]

    def view(self) -> ScheduleInfo:
        """The info as describe shows it, with run statuses from the store."""
        info = ScheduleInfo()
        info.CopyFrom(self.info)
        del info.running_workflows[:]
        for ex in self.info.running_workflows:
            exe = self._latest(ex)
            if exe is not None and exe.status == S.WORKFLOW_EXECUTION_STATUS_RUNNING:
                info.running_workflows.append(ex)
        for action in info.recent_actions:
            exe = self._latest(action.start_workflow_result)
            if exe is not None:
                action.start_workflow_status = exe.status
        for at in self.future_times(FUTURE_ACTIONS):
            stamp(info.future_action_times.add(), at)
        info.buffer_size = len(self.book.buffer)
        return info

    def list_entry(self) -> ScheduleListEntry:
        info = self.view()
        spec = type(self.schedule.spec)()
        spec.CopyFrom(self.schedule.spec)
        spec.ClearField("timezone_data")
        for name in ("structured_calendar", "interval", "exclude_structured_calendar"):
            del getattr(spec, name)[LIST_SPEC_ENTRIES:]
        entry = ScheduleListEntry(
            schedule_id=self.schedule_id,
            memo=self.memo,
            search_attributes=self.search_attributes,
            info=ScheduleListInfo(
                spec=spec,
                workflow_type=self.schedule.action.start_workflow.workflow_type,
                notes=self.schedule.state.notes,
                paused=self.schedule.state.paused,
                recent_actions=info.recent_actions[-LIST_RECENT_ACTIONS:],
                future_action_times=info.future_action_times[:LIST_FUTURE_ACTIONS],
            ),
        )
        return entry

    @property
    def token(self) -> bytes:
        return self.book.token.to_bytes(8, "big")

    # writing

    def next_wakeup(self) -> float | None:
        wake: float | None = None
        if self.spec is not None and self.can_take(False):
            nxt = self.spec.next_time(self.book.last)
            wake = nxt.next if nxt is not None else None
        if self.book.buffer and self.info.running_workflows:
            waited = self.now - self.book.buffer[0].actual
            watch = self.now + min(WATCH_MAX, max(WATCH_MIN, waited))
            wake = watch if wake is None else min(wake, watch)
        return wake

    def save(self) -> None:
        rec = replace(
            self.rec,
            schedule=self.schedule.SerializeToString(),
            info=self.info.SerializeToString(),
            memo=self.memo.SerializeToString(),
            search_attributes=self.search_attributes.SerializeToString(),
            state=self.book.dump(),
        )
        self.store.update_schedule(rec)
        self.rec = rec
        self._set_timer(self.next_wakeup())

    def _set_timer(self, at: float | None) -> None:
        self.store.delete_timers(timer_key(self.schedule_id), TimerKind.SCHEDULE, self.namespace)
        if at is not None:
            self.store.insert_timer(
                timer_key(self.schedule_id), TimerKind.SCHEDULE, self.namespace, 0, at
            )
            self.after_commit.append(self.engine.notify_timer_added)
