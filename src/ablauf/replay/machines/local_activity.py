"""The local activity machine: run by the worker, then recorded as a marker.

sdk-core's ``local_activity_state_machine.rs``. Asking for a local activity
makes no command: the worker runs it within the workflow task, and its result
comes back as a RESOLVE, which hands workflow code the result and makes the
RECORD_MARKER command (marker ``core_local_activity``) that records it.
Replaying, the marker is read ahead: the machine resolves from it and the
activity never runs again. A replay that reaches a new workflow task without
the marker (the first run was lost mid-task) runs the activity after all.

TRY_CANCEL and ABANDON resolve workflow code at once with a cancellation (and
record it); WAIT_CANCELLATION_COMPLETED asks the worker to cancel the attempt
and waits for its outcome.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

import temporalio.common
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import RetryState
from temporalio.api.failure.v1 import ActivityFailureInfo, CanceledFailureInfo, Failure
from temporalio.api.history.v1 import HistoryEvent

from ablauf.history import catalog
from ablauf.replay import history
from ablauf.replay.history import C, E
from ablauf.replay.machines.base import (
    CANCEL,
    CANCEL_ABANDON,
    CANCEL_TRY,
    CANCELS,
    RESOLVE,
    RUN_NOW,
    SCHEDULE,
    SCHEDULE_REPLAYING,
    SCHEDULE_RESOLVED,
    CommandEntry,
    Machine,
    Nondeterminism,
    Transitions,
    table_events,
    transition_map,
)
from ablauf.replay.machines.jobs import LocalBackoff, ResolveActivity

__all__ = [
    "LOCAL_ACTIVITY_MARKER_NAME",
    "TRANSITIONS",
    "LocalActivityMachine",
    "LocalActivityRequest",
    "LocalActivityResult",
    "LocalActivityState",
    "LocalMarker",
    "LocalStatus",
    "local_marker",
]

LOCAL_ACTIVITY_MARKER_NAME: Final = "core_local_activity"
"""Marker name sdk-core records for local activities."""


class LocalActivityState:
    """States of a local activity machine."""

    CREATED: Final = 0
    REQUEST_SENT: Final = 1
    """The worker runs it."""
    MARKER_CREATED: Final = 2
    """Resolved; the marker command goes out with the task."""
    WAITING_MARKER: Final = 3
    """Replaying: its marker is still ahead."""
    WAITING_MARKER_RESOLVED: Final = 4
    """Replaying, resolved from the marker read ahead; the marker itself is still ahead."""
    DONE: Final = 5


_S = LocalActivityState
_M: Final = E.MARKER_RECORDED

TRANSITIONS: Final[Transitions] = (
    (_S.CREATED, SCHEDULE, _S.REQUEST_SENT),
    (_S.CREATED, SCHEDULE_REPLAYING, _S.WAITING_MARKER),
    (_S.CREATED, SCHEDULE_RESOLVED, _S.WAITING_MARKER_RESOLVED),
    # Nothing has run or gone out before the machine is scheduled.
    *((_S.CREATED, cancel, _S.DONE) for cancel in CANCELS),
    (_S.REQUEST_SENT, RESOLVE, _S.MARKER_CREATED),
    # The worker cancels the attempt; its outcome resolves the machine.
    (_S.REQUEST_SENT, CANCEL, _S.REQUEST_SENT),
    # Resolved at once with a cancellation, which the marker records.
    (_S.REQUEST_SENT, CANCEL_TRY, _S.MARKER_CREATED),
    (_S.REQUEST_SENT, CANCEL_ABANDON, _S.MARKER_CREATED),
    (_S.MARKER_CREATED, _M, _S.DONE),
    # An attempt that ends after a cancel resolved the machine changes nothing.
    (_S.MARKER_CREATED, RESOLVE, _S.MARKER_CREATED),
    *((_S.MARKER_CREATED, cancel, _S.MARKER_CREATED) for cancel in CANCELS),
    (_S.WAITING_MARKER, _M, _S.DONE),
    (_S.WAITING_MARKER, RESOLVE, _S.WAITING_MARKER),
    (_S.WAITING_MARKER, RUN_NOW, _S.REQUEST_SENT),
    # Replaying, a cancel still waits for the marker, which records how it ended.
    *((_S.WAITING_MARKER, cancel, _S.WAITING_MARKER) for cancel in CANCELS),
    (_S.WAITING_MARKER_RESOLVED, _M, _S.DONE),
    *((_S.WAITING_MARKER_RESOLVED, cancel, _S.WAITING_MARKER_RESOLVED) for cancel in CANCELS),
    (_S.DONE, RESOLVE, _S.DONE),
    *((_S.DONE, cancel, _S.DONE) for cancel in CANCELS),
)

# Cancellation types of temporalio.workflow.ActivityCancellationType.
_CANCEL_TRIGGERS: Final = {0: CANCEL_TRY, 1: CANCEL, 2: CANCEL_ABANDON}


class LocalStatus:
    """How an attempt (or the last of them) ended."""

    COMPLETED: Final = 0
    FAILED: Final = 1
    TIMED_OUT: Final = 2
    CANCELLED: Final = 3


# sdk-core's "failed" results: a marker with a failure records them.
_FAILED: Final = (LocalStatus.FAILED, LocalStatus.TIMED_OUT)


@dataclass(slots=True)
class LocalActivityRequest:
    """A local activity for the worker to run (sdk-core's ``ValidScheduleLA``)."""

    seq: int
    activity_id: str
    activity_type: str
    input: Sequence[Payload]
    headers: dict[str, Payload]
    schedule_to_close_timeout: timedelta | None
    schedule_to_start_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    retry_policy: temporalio.common.RetryPolicy | None
    local_retry_threshold: timedelta
    cancellation_type: int
    attempt: int = 1
    original_schedule_time_ns: int | None = None
    """Wall-clock time of the first attempt's scheduling, kept across timer backoffs."""
    summary: Payload | None = None
    """The marker command's user metadata summary."""


@dataclass(slots=True)
class LocalActivityResult:
    """What the worker reports for a local activity (sdk-core's resolution)."""

    seq: int
    status: int
    """A :class:`LocalStatus`."""
    result: Payload | None = None
    failure: Failure | None = None
    attempt: int = 1
    runtime_ns: int = 0
    backoff: timedelta | None = None
    """Set if the next attempt must wait for a durable timer."""
    original_schedule_time_ns: int | None = None


@dataclass(slots=True)
class LocalMarker:
    """The content of a ``core_local_activity`` marker (sdk-core's ``LocalActivityMarkerData``)."""

    seq: int
    attempt: int
    activity_id: str
    activity_type: str
    complete_time_ns: int | None
    backoff: timedelta | None
    original_schedule_time_ns: int | None
    result: Payload | None = None
    failure: Failure | None = field(default=None)

    def as_result(self) -> LocalActivityResult:
        """The resolution the marker records, as sdk-core reads it back."""
        failure = self.failure
        if failure is None:
            status = LocalStatus.COMPLETED
        elif failure.HasField("canceled_failure_info") or failure.cause.HasField(
            "canceled_failure_info"
        ):
            status = LocalStatus.CANCELLED
        else:
            # A timeout reads back as a failure: sdk-core hands workflow code the
            # bare timeout on replay, where the first run saw it wrapped.
            status = LocalStatus.FAILED
        return LocalActivityResult(
            self.seq,
            status,
            result=self.result,
            failure=failure,
            attempt=self.attempt,
            backoff=self.backoff,
            original_schedule_time_ns=self.original_schedule_time_ns,
        )

    def details(self) -> dict[str, Payloads]:
        """Marker details byte for byte as sdk-core writes them."""
        data = {
            "seq": self.seq,
            "attempt": self.attempt,
            "activity_id": self.activity_id,
            "activity_type": self.activity_type,
            "complete_time": _timestamp(self.complete_time_ns),
            "backoff": _duration(self.backoff),
            "original_schedule_time": _timestamp(self.original_schedule_time_ns),
        }
        text = json.dumps(data, separators=(",", ":"))
        details = {
            "data": Payloads(
                payloads=[Payload(metadata={"encoding": b"json/plain"}, data=text.encode())]
            )
        }
        if self.result is not None:
            details["result"] = Payloads(payloads=[self.result])
        return details


def _timestamp(ns: int | None) -> dict[str, int] | None:
    if ns is None:
        return None
    return {"seconds": ns // 1_000_000_000, "nanos": ns % 1_000_000_000}


def _duration(value: timedelta | None) -> dict[str, int] | None:
    if value is None:
        return None
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    return {"seconds": micros // 1_000_000, "nanos": micros % 1_000_000 * 1000}


def _read_timestamp(value: object) -> int | None:
    if not isinstance(value, dict):
        return None
    return int(value.get("seconds", 0)) * 1_000_000_000 + int(value.get("nanos", 0))


def _read_duration(value: object) -> timedelta | None:
    if not isinstance(value, dict):
        return None
    return timedelta(
        seconds=int(value.get("seconds", 0)), microseconds=int(value.get("nanos", 0)) // 1000
    )


def local_marker(event: HistoryEvent) -> LocalMarker | None:
    """The local activity marker ``event`` records, or None if it records another.

    Raises:
        Nondeterminism: It is a local activity marker that cannot be read.
    """
    if event.event_type != E.MARKER_RECORDED:
        return None
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != LOCAL_ACTIVITY_MARKER_NAME:
        return None
    try:
        data = json.loads(attrs.details["data"].payloads[0].data)
        marker = LocalMarker(
            seq=int(data["seq"]),
            attempt=int(data.get("attempt", 1)),
            activity_id=str(data.get("activity_id", "")),
            activity_type=str(data.get("activity_type", "")),
            complete_time_ns=_read_timestamp(data.get("complete_time")),
            backoff=_read_duration(data.get("backoff")),
            original_schedule_time_ns=_read_timestamp(data.get("original_schedule_time")),
        )
    except (KeyError, IndexError, ValueError, TypeError):
        raise Nondeterminism(
            f"Local activity marker was unparsable: {history.describe_event(event)}"
        ) from None
    result = attrs.details.get("result")
    if result is not None and result.payloads:
        marker.result = result.payloads[0]
    if attrs.HasField("failure"):
        marker.failure = attrs.failure
    return marker


class LocalActivityMachine(Machine):
    """A local activity, named by its sequence number."""

    __slots__ = ("already_resolved", "outcome", "replaying_when_invoked", "request", "wf_time_ns")
    label = "Local activity machine"
    family = catalog.MARKER
    marker_name = LOCAL_ACTIVITY_MARKER_NAME
    commands = (C.RECORD_MARKER,)
    table = TRANSITIONS
    transitions = transition_map(TRANSITIONS)
    events = table_events(TRANSITIONS)

    def __init__(self, request: LocalActivityRequest, replaying: bool, wf_time_ns: int) -> None:
        super().__init__()
        self.request = request
        self.replaying_when_invoked = replaying
        self.wf_time_ns = wf_time_ns  # workflow time when asked for: complete times count from it
        self.already_resolved = False
        self.outcome = LocalStatus.COMPLETED  # of the result the marker command records

    @property
    def seq(self) -> int:
        """The sequence number workflow code knows the activity by."""
        return self.request.seq

    def name(self) -> str:
        return f"{self.label} (seq {self.seq})"

    def cancel_trigger(self) -> int:
        """The action a cancel from workflow code takes, by cancellation type."""
        return _CANCEL_TRIGGERS.get(self.request.cancellation_type, CANCEL)

    def no_wait_cancel(self) -> LocalActivityResult:
        """The resolution of a TRY_CANCEL or ABANDON: cancelled, at no time."""
        failure = Failure(message="Activity cancelled", canceled_failure_info=CanceledFailureInfo())
        request = self.request
        return LocalActivityResult(
            request.seq,
            LocalStatus.CANCELLED,
            failure=failure,
            attempt=request.attempt,
            runtime_ns=-1,  # no complete time: the workflow's clock stays
            original_schedule_time_ns=request.original_schedule_time_ns,
        )

    def complete_time_ns(self, result: LocalActivityResult) -> int | None:
        """The workflow time at which ``result`` counts as done (sdk-core's "perceived" time)."""
        return None if result.runtime_ns < 0 else self.wf_time_ns + result.runtime_ns

    def resolution(self, result: LocalActivityResult) -> ResolveActivity:
        """The job that hands workflow code ``result``."""
        request = self.request
        if result.backoff is not None:
            backoff = LocalBackoff(
                result.attempt + 1, result.backoff, result.original_schedule_time_ns
            )
            return ResolveActivity(request.seq, backoff=backoff)
        status = result.status
        if status == LocalStatus.COMPLETED:
            return ResolveActivity(request.seq, result=result.result)
        failure = result.failure or Failure()
        if status == LocalStatus.TIMED_OUT and failure.HasField("timeout_failure_info"):
            failure = self._wrapped("Local Activity timed out", failure)
        elif status == LocalStatus.CANCELLED and failure.HasField("canceled_failure_info"):
            failure = self._wrapped("Local Activity cancelled", failure)
        return ResolveActivity(request.seq, failure=failure)

    def _wrapped(self, message: str, cause: Failure) -> Failure:
        info = ActivityFailureInfo(
            activity_id=self.request.activity_id,
            retry_state=RetryState.RETRY_STATE_CANCEL_REQUESTED,
        )
        info.activity_type.name = self.request.activity_type
        wrapped = Failure(message=message, activity_failure_info=info)
        wrapped.cause.CopyFrom(cause)
        return wrapped

    def marker(self, result: LocalActivityResult, complete_ns: int | None) -> LocalMarker:
        """What the marker command records for ``result``."""
        request = self.request
        return LocalMarker(
            seq=request.seq,
            attempt=result.attempt,
            activity_id=request.activity_id,
            activity_type=request.activity_type,
            complete_time_ns=complete_ns,
            backoff=result.backoff,
            original_schedule_time_ns=result.original_schedule_time_ns,
            result=result.result if result.status == LocalStatus.COMPLETED else None,
            failure=None if result.status == LocalStatus.COMPLETED else result.failure,
        )

    def check_marker(self, marker: LocalMarker) -> None:
        """Compare a recorded marker with this activity (sdk-core's marker data check).

        Raises:
            Nondeterminism: The marker records another activity.
        """
        request = self.request
        if marker.seq != request.seq:
            raise Nondeterminism(
                f"Local activity marker data has sequence number {marker.seq} but matched "
                f"against LA command with sequence number {request.seq}"
            )
        if marker.activity_id != request.activity_id:
            raise Nondeterminism(
                f"Activity id of recorded marker '{marker.activity_id}' does not match "
                f"activity id of local activity command '{request.activity_id}'"
            )
        if marker.activity_type != request.activity_type:
            raise Nondeterminism(
                f"Activity type of recorded marker '{marker.activity_type}' does not match "
                f"activity type of local activity command '{request.activity_type}'"
            )

    def on_command_event(self, entry: CommandEntry, event: HistoryEvent) -> None:
        marker = local_marker(event)
        if marker is None:
            raise self.unexpected(event)
        if self.outcome == LocalStatus.COMPLETED and marker.failure is not None:
            raise Nondeterminism(
                f"Local activity (seq {self.seq}) completed successfully locally, but "
                "history said it failed!"
            )
        if self.outcome in _FAILED and marker.failure is None:
            raise Nondeterminism(
                f"Local activity (seq {self.seq}) failed locally, but history said it completed!"
            )
        self.check_marker(marker)
        self.state = self.step(event.event_type, event)

    def on_replayed_marker(
        self, event: HistoryEvent, marker: LocalMarker
    ) -> ResolveActivity | None:
        """The marker of a replayed activity; the job resolving it unless already resolved."""
        to = self.step(event.event_type, event)
        self.check_marker(marker)
        job = None
        if self.state == LocalActivityState.WAITING_MARKER and not self.already_resolved:
            job = self.resolution(marker.as_result())
        self.state = to
        return job
