"""Cron workflows: a start's ``cron_schedule``, read as Temporal's server reads it.

Temporal parses a workflow's cron schedule with robfig/cron's standard parser:
five fields (minute, hour, day of month, month, day of week), an optional
``CRON_TZ=``/``TZ=`` prefix, the ``@hourly``-style descriptors and
``@every <duration>``. The fields are compiled by the schedules' cron reader
(:mod:`ablauf.engine.schedule_spec`); what robfig reads differently is
handled here: ``?`` means ``*``, day of month and day of week restricted
together match either, and ``@every`` counts from the previous time rather
than from the epoch.

Each run starts at the schedule's first time after the previous run's
scheduled time that is not yet past (missed times are skipped), the delay
rounded up to whole seconds (``GetBackoffForNextSchedule`` in Temporal's
``common/backoff/cron.go``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import ContinueAsNewInitiator
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import WorkflowExecutionStartedEventAttributes
from temporalio.api.schedule.v1 import ScheduleSpec

from ablauf.engine.context import Transition
from ablauf.engine.errors import InvalidArgumentError
from ablauf.history.events import seconds_of

if TYPE_CHECKING:
    from ablauf.engine.schedule_spec import CompiledSpec

__all__ = [
    "CronSchedule",
    "check_cron",
    "cron_backoff",
    "next_cron_run",
    "parse_cron",
    "start_cron",
]

INVALID = "invalid CronSchedule."
NO_TIME = "invalid CronSchedule, no time can be found to satisfy the schedule"

_DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
# Go's time.ParseDuration: a sign, then decimal numbers with units.
_GO_DURATION = re.compile(r"([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_FIELD = re.compile(r"^[0-9A-Za-z*?,/-]+$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron schedule: calendars, or a constant delay (``@every``)."""

    spec: CompiledSpec | None
    every: int = 0

    def next_after(self, t: float) -> float | None:
        """The first time of the schedule after ``t`` (epoch seconds), or None."""
        if self.spec is None:
            # robfig's ConstantDelaySchedule: whole seconds on from t's second.
            return float(math.floor(t) + self.every)
        nxt = self.spec.next_time(t)
        return None if nxt is None else float(nxt.nominal)


def parse_cron(text: str) -> CronSchedule:
    """Parses a workflow's cron schedule.

    Raises:
        InvalidArgumentError: The schedule is malformed, or no time satisfies it;
            the message is Temporal's.
    """
    # Imported on first use, as the engine imports schedules: only cron
    # workflows need the calendar code and zoneinfo.
    from ablauf.engine.schedule_spec import CompiledSpec, SpecError, canonical_spec, load_zone

    c = text.strip()
    tz = ""
    if c.startswith(("TZ=", "CRON_TZ=")):
        head, found, rest = c.partition(" ")
        if not found:
            raise InvalidArgumentError(INVALID)
        tz, c = head, rest.strip()
    if c.startswith("@every "):
        if tz:
            try:
                load_zone(ScheduleSpec(timezone_name=tz.partition("=")[2]))
            except SpecError:
                raise InvalidArgumentError(INVALID) from None
        return CronSchedule(None, _every(c.removeprefix("@every ").strip()))
    if c.startswith("@"):
        if c not in _DESCRIPTORS:
            raise InvalidArgumentError(INVALID)
        strings = [c]
    else:
        fields = c.split()
        if len(fields) != 5 or not all(_FIELD.match(f) for f in fields):
            raise InvalidArgumentError(INVALID)
        fields = [f.replace("?", "*") for f in fields]
        minute, hour, dom, month, dow = fields
        _check_names(month, _MONTHS)
        _check_names(dow, _DAYS)
        for field, names in ((minute, ()), (hour, ()), (dom, ()), (month, _MONTHS), (dow, _DAYS)):
            _check_ranges(field, names)
        for part in dow.split(","):
            if any(int(n) > 6 for n in re.findall(r"\d+", part.split("/")[0])):
                raise InvalidArgumentError(INVALID)  # robfig's day of week is 0-6, no 7
        if dom.startswith("*") or dow.startswith("*"):
            strings = [" ".join(fields)]
        else:
            # robfig matches either day field when both are restricted.
            strings = [f"{minute} {hour} {dom} {month} *", f"{minute} {hour} * {month} {dow}"]
    if tz:
        strings = [f"{tz} {s}" for s in strings]
    try:
        spec = CompiledSpec(canonical_spec(ScheduleSpec(cron_string=strings)), "")
    except SpecError:
        raise InvalidArgumentError(INVALID) from None
    return CronSchedule(spec)


def check_cron(text: str, now: float) -> CronSchedule:
    """:func:`parse_cron`, and some time must satisfy the schedule."""
    schedule = parse_cron(text)
    if schedule.next_after(now) is None:
        raise InvalidArgumentError(NO_TIME)
    return schedule


def cron_backoff(text: str, scheduled: float, now: float) -> float | None:
    """Seconds from ``now`` to the run after the one scheduled at ``scheduled``.

    Times already past are skipped; None if the schedule has no time left.
    """
    try:
        schedule = parse_cron(text)
    except InvalidArgumentError:
        return None
    if now < scheduled:
        nxt: float | None = scheduled
    else:
        nxt = schedule.next_after(scheduled)
        while nxt is not None and nxt < now:
            nxt = schedule.next_after(nxt)
    if nxt is None:
        return None
    return float(math.ceil(nxt - now - 1e-9))


def _every(text: str) -> int:
    match = _GO_DURATION.fullmatch(text)
    if match is None:
        raise InvalidArgumentError(INVALID)
    seconds = sum(float(n) * _GO_UNITS[u] for n, u in _GO_PART.findall(text))
    if match.group(1) == "-":
        seconds = -seconds
    # robfig: at least one second, whole seconds only.
    return max(1, int(seconds))


def _check_ranges(field: str, names: tuple[str, ...]) -> None:
    # robfig refuses a range that ends before it begins (croniter would wrap it).
    for part in field.split(","):
        low, dash, high = part.split("/")[0].partition("-")
        if dash and _value(low, names) > _value(high, names):
            raise InvalidArgumentError(INVALID)


def _value(text: str, names: tuple[str, ...]) -> int:
    if text.isdigit():
        return int(text)
    if text.lower() in names:
        return names.index(text.lower()) + (1 if names is _MONTHS else 0)
    raise InvalidArgumentError(INVALID)


def _check_names(field: str, names: tuple[str, ...]) -> None:
    # robfig reads three-letter names only (``mon``, not ``monday``).
    for word in re.findall(r"[A-Za-z]+", field):
        if word.lower() not in names:
            raise InvalidArgumentError(INVALID)


def start_cron(attrs: WorkflowExecutionStartedEventAttributes, cron: str, now: float) -> None:
    """Makes ``attrs`` the first run of a cron workflow: it waits for the schedule's next time."""
    attrs.cron_schedule = cron
    attrs.initiator = ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
    backoff = cron_backoff(cron, now, now)
    if backoff is not None:
        attrs.first_workflow_task_backoff.FromTimedelta(timedelta(seconds=backoff))


def next_cron_run(
    tx: Transition, result: Payloads | None = None, failure: Failure | None = None
) -> str:
    """Starts the next run of a closing cron run, whatever its outcome; its run id.

    The next run carries the closing run's result (or, after a failure, the
    last result before it and the failure). Returns "" if the run has no cron
    schedule, or the schedule no time left.
    """
    state = tx.state
    prev = state.started
    if not prev.cron_schedule:
        return ""
    scheduled = state.exe.start_time + seconds_of(prev.first_workflow_task_backoff)
    backoff = cron_backoff(prev.cron_schedule, scheduled, tx.now)
    if backoff is None:
        return ""
    engine = tx.engine
    nxt = WorkflowExecutionStartedEventAttributes()
    nxt.CopyFrom(prev)
    nxt.ClearField("original_execution_run_id")
    nxt.ClearField("continued_failure")
    nxt.attempt = 1
    nxt.continued_execution_run_id = state.exe.run_id
    nxt.initiator = ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
    nxt.identity = engine.identity
    nxt.first_workflow_task_backoff.FromTimedelta(timedelta(seconds=backoff))
    if result is not None:
        nxt.last_completion_result.CopyFrom(result)
    if failure is not None:
        nxt.continued_failure.CopyFrom(failure)
    new_tx = engine.create_run(state.exe.namespace, state.exe.workflow_id, nxt, tx.now)
    tx.after_commit.append(lambda: engine.after_create_run(new_tx))
    return new_tx.state.exe.run_id
