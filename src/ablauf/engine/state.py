"""A run's mutable state: the fold of its history plus its task rows.

Temporal's history service keeps the same picture ("mutable state"); ablauf
rebuilds it from the store whenever its cached copy is out of date.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import temporalio.api.enums.v1.event_type_pb2 as E
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import Memo, SearchAttributes
from temporalio.api.history.v1 import (
    ActivityTaskScheduledEventAttributes,
    HistoryEvent,
    StartChildWorkflowExecutionInitiatedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
)
from temporalio.api.sdk.v1 import UserMetadata

from ablauf.engine.search_attributes import merge_memo, merge_search_attributes
from ablauf.history.catalog import (
    ACTIVITY_CLOSED,
    CHILD_CLOSED,
    CLOSE_EVENTS,
    EXTERNAL_DONE,
    FOLDED,
)
from ablauf.history.events import ATTRIBUTE_FIELDS, attributes_of, parse_event
from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK, ExecutionRecord, TaskRecord

__all__ = [
    "CHILD_CLOSED",
    "CLOSE_EVENTS",
    "EXTERNAL_DONE",
    "FOLDED",
    "NO_EXPIRY",
    "PendingActivity",
    "PendingChild",
    "RunState",
    "new_activity_task",
]


_ACTIVITY_CLOSED = {t: ATTRIBUTE_FIELDS[t] for t in ACTIVITY_CLOSED}


@dataclass(slots=True)
class PendingActivity:
    """An activity between its ActivityTaskScheduled and its closing event."""

    scheduled_event_id: int
    attrs: ActivityTaskScheduledEventAttributes
    cancel_requested_event_id: int = 0
    task: TaskRecord | None = None
    timer_rows: bool = True
    """Whether the timers table may hold timers of this activity (unknown: True)."""
    worker_options: Any = None
    """Its timeouts and retry policy as a worker shows them, made once."""


NO_EXPIRY = 1e18
"""``lease_until`` of an attempt leased to a local worker: its timeouts end it."""


def new_activity_task(
    exe: ExecutionRecord, attrs: ActivityTaskScheduledEventAttributes, ref: int, at: float
) -> TaskRecord:
    """The task of an activity scheduled at ``at`` (event ``ref``): attempt 1,
    not leased, no row yet."""
    # Positional: a call naming its 18 fields costs three times as much.
    return TaskRecord(
        0,  # id
        ACTIVITY_TASK,  # kind
        exe.run_id,  # run_id
        exe.namespace,  # namespace
        attrs.task_queue.name,  # task_queue
        ref,  # ref
        1,  # attempt
        at,  # visible_at
        None,  # lease_owner
        None,  # lease_until
        0,  # lease_nonce
        None,  # started_at
        at,  # scheduled_at
        at,  # attempt_scheduled_at
        False,  # cancel_requested
        None,  # heartbeat_at
        None,  # heartbeat_details
        None,  # last_failure
    )


def _unwritten_attempt(
    exe: ExecutionRecord, pending: PendingActivity, scheduled: HistoryEvent
) -> TaskRecord:
    # A first attempt leased at schedule time by ``exe.activity_owner``, which
    # wrote no row for it: the task as Engine.lease left it then.
    assert scheduled.event_id == pending.scheduled_event_id
    at = scheduled.event_time.seconds + scheduled.event_time.nanos / 1e9
    task = new_activity_task(exe, pending.attrs, pending.scheduled_event_id, at)
    task.lease_owner = exe.activity_owner
    task.lease_until = NO_EXPIRY
    task.lease_nonce = 1
    task.started_at = at
    return task


@dataclass(slots=True)
class PendingChild:
    """A child between its StartChildWorkflowExecutionInitiated and its outcome."""

    initiated_event_id: int
    attrs: StartChildWorkflowExecutionInitiatedEventAttributes
    metadata: UserMetadata | None = None
    """The summary and details its start command gave, for the child's own start."""
    run_id: str = ""
    started_event_id: int = 0


@dataclass(slots=True)
class RunState:
    """Everything the engine needs to apply a transition to one run."""

    exe: ExecutionRecord
    started: WorkflowExecutionStartedEventAttributes
    activities: dict[int, PendingActivity] = field(default_factory=dict)
    # Index into ``activities`` by activity id.
    activity_ids: dict[str, int] = field(default_factory=dict)
    timers: dict[str, int] = field(default_factory=dict)
    children: dict[int, PendingChild] = field(default_factory=dict)
    # Signal and cancel requests to other workflows, by initiated event id.
    externals: dict[int, HistoryEvent] = field(default_factory=dict)
    wft: TaskRecord | None = None
    close_event: HistoryEvent | None = None
    running: bool = True
    """False once the close event is applied (read on every transition)."""
    cancel_requested: bool = False
    completed_workflow_tasks: int = 0
    start_event_time: Timestamp | None = None
    metadata: UserMetadata | None = None
    """The static summary and details its start gave (for describe)."""
    upserted_search_attributes: SearchAttributes | None = None
    upserted_memo: Memo | None = None
    """Search attributes and memo as the run's upserts left them (None: as it started)."""
    # Updates requested but not yet accepted or rejected.
    requested_updates: int = 0
    # Events waiting in the store's buffer for the running workflow task.
    buffered: int = 0
    # Events from ``recent_from`` on, kept so a sticky worker gets only what it
    # has not seen without a read from the store.
    recent: list[HistoryEvent] = field(default_factory=list)
    recent_from: int = 1
    # The attributes of its WorkflowTaskScheduled events, serialized (made at the first).
    wft_scheduled: bytes = b""

    @property
    def awaiting_backoff(self) -> bool:
        """Whether the run waits out its first workflow task backoff (a start
        delay, a retry interval or the time to its cron run): until then new
        events do not schedule a workflow task (Temporal's
        ``IsWorkflowPendingOnWorkflowTaskBackoff``)."""
        return (
            self.running
            and self.wft is None
            and self.completed_workflow_tasks == 0
            and self.started.HasField("first_workflow_task_backoff")
            and self.started.first_workflow_task_backoff.ToNanoseconds() > 0
        )

    def apply(self, event: HistoryEvent) -> None:
        """Folds one event into the state."""
        t = event.event_type
        # A type handled below must be in FOLDED too.
        if t not in FOLDED:
            return
        if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            self.start_event_time = event.event_time
            if event.HasField("user_metadata"):
                self.metadata = event.user_metadata
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            self.activities[event.event_id] = PendingActivity(event.event_id, scheduled)
            self.activity_ids[scheduled.activity_id] = event.event_id
        elif t in _ACTIVITY_CLOSED:
            self.drop_activity(getattr(event, _ACTIVITY_CLOSED[t]).scheduled_event_id)
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
            pending = self.activities.get(
                event.activity_task_cancel_requested_event_attributes.scheduled_event_id
            )
            if pending is not None:
                pending.cancel_requested_event_id = event.event_id
        elif t == E.EVENT_TYPE_TIMER_STARTED:
            self.timers[event.timer_started_event_attributes.timer_id] = event.event_id
        elif t == E.EVENT_TYPE_TIMER_FIRED:
            self.timers.pop(event.timer_fired_event_attributes.timer_id, None)
        elif t == E.EVENT_TYPE_TIMER_CANCELED:
            self.timers.pop(event.timer_canceled_event_attributes.timer_id, None)
        elif t == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            self.children[event.event_id] = PendingChild(
                event.event_id,
                event.start_child_workflow_execution_initiated_event_attributes,
                event.user_metadata if event.HasField("user_metadata") else None,
            )
        elif t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            attrs = event.child_workflow_execution_started_event_attributes
            child = self.children.get(attrs.initiated_event_id)
            if child is not None:
                child.run_id = attrs.workflow_execution.run_id
                child.started_event_id = event.event_id
        elif t in CHILD_CLOSED:
            self.children.pop(attributes_of(event).initiated_event_id, None)
        elif t in (
            E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
            E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        ):
            self.externals[event.event_id] = event
        elif t in EXTERNAL_DONE:
            self.externals.pop(attributes_of(event).initiated_event_id, None)
        elif t == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            self.completed_workflow_tasks += 1
        elif t == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            merge_search_attributes(
                self.search_attributes,
                event.upsert_workflow_search_attributes_event_attributes.search_attributes,
            )
        elif t == E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
            merge_memo(self.memo, event.workflow_properties_modified_event_attributes.upserted_memo)
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            self.cancel_requested = True
        elif t in CLOSE_EVENTS:
            self.close_event = event
            self.running = False

    @property
    def search_attributes(self) -> SearchAttributes:
        """The run's search attributes now: its start's, with its upserts applied."""
        if self.upserted_search_attributes is None:
            self.upserted_search_attributes = SearchAttributes()
            self.upserted_search_attributes.CopyFrom(self.started.search_attributes)
        return self.upserted_search_attributes

    @property
    def memo(self) -> Memo:
        """The run's memo now: its start's, with its upserts applied."""
        if self.upserted_memo is None:
            self.upserted_memo = Memo()
            self.upserted_memo.CopyFrom(self.started.memo)
        return self.upserted_memo

    def drop_activity(self, scheduled_event_id: int) -> None:
        """Forgets a pending activity (it closed)."""
        pending = self.activities.pop(scheduled_event_id, None)
        if pending is not None:
            self.activity_ids.pop(pending.attrs.activity_id, None)

    def activity_of_ref(self, ref_id: int) -> PendingActivity | None:
        """The pending activity (with its task) that a worker's task ref names."""
        pending = self.activities.get(-ref_id)
        if pending is None or pending.task is None:
            return None
        return pending

    def attach_tasks(self, tasks: Iterable[TaskRecord]) -> None:
        """Links the task rows of the run to the folded state."""
        for task in tasks:
            if task.kind == WORKFLOW_TASK:
                self.wft = task
            elif task.kind == ACTIVITY_TASK and task.ref in self.activities:
                self.activities[task.ref].task = task

    @classmethod
    def fold(
        cls, exe: ExecutionRecord, datas: Sequence[bytes], tasks: Iterable[TaskRecord]
    ) -> RunState:
        """Rebuilds the state of a run from its stored history (serialized events) and tasks.

        Each event is parsed alone and dropped once applied unless the state
        keeps part of it: a long history never sits in memory parsed whole.
        """
        first = parse_event(datas[0])
        state = cls(exe=exe, started=first.workflow_execution_started_event_attributes)
        state.apply(first)
        for data in itertools.islice(datas, 1, None):
            state.apply(parse_event(data))
        state.attach_tasks(tasks)
        if exe.activity_owner is not None:
            for pending in state.activities.values():
                if pending.task is None:
                    scheduled = parse_event(datas[pending.scheduled_event_id - 1])
                    pending.task = _unwritten_attempt(exe, pending, scheduled)
        state.recent_from = exe.next_event_id
        return state
