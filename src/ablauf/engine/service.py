"""The engine's background work: fire due timers, pick up tasks and queries that
other processes left in the store, renew this process's owner lease and free
the leases of processes that are gone.

Only a process that hosts workers fires timers and takes tasks, unless no live
process hosts any (then a client's process keeps durable time, e.g. a run's
timeout, so that nothing waits on a worker that may never come).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from temporalio.api.enums.v1 import EventType, RetryState, TimeoutType, WorkflowExecutionStatus
from temporalio.api.failure.v1 import Failure, TimeoutFailureInfo
from temporalio.api.history.v1 import (
    TimerFiredEventAttributes,
    WorkflowExecutionTimedOutEventAttributes,
)

from ablauf.engine import activities, children
from ablauf.engine.context import EngineContext, Transition
from ablauf.engine.cron import next_cron_run
from ablauf.engine.errors import InvalidArgumentError, NotFoundError
from ablauf.engine.owners import RENEW_INTERVAL, Owners
from ablauf.engine.queries import Queries
from ablauf.engine.timers import TimerKind
from ablauf.engine.workflow_tasks import WorkflowTasks
from ablauf.errors import StoreError, StoreLostError
from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK, TaskRecord, TimerRecord

if TYPE_CHECKING:
    from ablauf.engine.schedules import Schedules

__all__ = ["Service"]

logger = logging.getLogger(__name__)

# Another process's commits are seen by polling SQLite's data_version, which
# costs a few microseconds; work inside this process never waits for it.
POLL_INTERVAL = 0.02
SCAN_INTERVAL = 1.0
BATCH = 256
# Timers fired in one group commit: the first workflows a burst of timers
# wakes commit (and resume) without waiting for the whole burst.
FIRE_GROUP = 16
# While the store fails (a full disk, say), the service tries again this often
# and logs the same error at most this often.
STORE_RETRY = 0.5
STORE_LOG_INTERVAL = 10.0
# A background step that keeps failing is tried again at most this far apart (s).
STEP_RETRY_MAX = 60.0
# A timer whose firing failed is tried again after 1, 2, 4, ... seconds, at
# most this long apart: a bug in one handler costs a log line a minute, not a
# busy loop, and a cause that passes (a locked file) lets the run go on.
FIRE_RETRY_MAX = 60.0


_jitter = random.Random()


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _timer_key(timer: TimerRecord) -> tuple[str, int, str, int]:
    return timer.run_id, timer.kind, timer.ref, timer.attempt


class Service:
    """Runs as one asyncio task per engine."""

    def __init__(
        self,
        engine: EngineContext,
        owners: Owners,
        queries: Queries,
        workflow_tasks: WorkflowTasks,
        schedules: Callable[[], Schedules],
    ) -> None:
        self.engine = engine
        self.owners = owners
        self.queries = queries
        self.workflow_tasks = workflow_tasks
        # Schedules' code is imported on first use.
        self._schedules = schedules
        self._task: asyncio.Task[None] | None = None
        self._last_version: int | None = None
        self._next_scan = 0.0
        self._next_owner_step = 0.0
        # The last scan took a full batch: more tasks may wait in the store.
        self._backlog = False
        self._logged: tuple[str, float] = ("", 0.0)
        # Background steps that failed in a row: each waits twice as long as the last.
        self._step_failures = 0
        # Failures in a row of the timers that failed to fire, by what they stand for.
        self._fire_failures: dict[tuple[str, int, str, int], int] = {}
        # When the service looks again by itself.
        self.deadline = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ablauf-engine")

    def request_scan(self) -> None:
        """Looks for tasks in the store at the next step (e.g. when a worker starts)."""
        self._next_scan = 0.0
        self._next_owner_step = 0.0
        self.engine.wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        engine = self.engine
        while True:
            engine.wake.clear()
            try:
                more = self.tick()
                self._step_failures = 0
            except StoreLostError as err:
                logger.error("ablauf: %s", err)
                engine.lost(err)
                return
            except StoreError as err:
                self._log_store_error(err)
                await asyncio.sleep(STORE_RETRY)
                continue
            except Exception:
                self._step_failures += 1
                delay = min(STEP_RETRY_MAX, POLL_INTERVAL * 2 ** min(self._step_failures, 16))
                logger.exception(
                    "ablauf engine background step failed %d time(s) in a row; retrying in %.2f s",
                    self._step_failures,
                    delay,
                )
                more = False
                await asyncio.sleep(delay)
            if more:
                # Let what the fired timers woke (workers, waiting clients) run
                # before the next group.
                await asyncio.sleep(0)
                continue
            now = engine.clock.now()
            next_timer = (
                _earliest(engine.store.next_timer_at(), engine.local_timers.next_at())
                if self.keeps_time()
                else None
            )
            # Time-skipping: with nothing left to run, jump to the next timer.
            if (
                engine.clock.can_skip()
                and (next_timer is None or next_timer > now)
                # Attempts running here may have no task row (their timers are local).
                and not engine.local_timers
                and not engine.store.has_runnable_tasks(now)
                # As on Temporal's test server, a workflow task holds time until
                # it completes: one that keeps failing is retried in real time,
                # not by jumps from one backoff to the next.
                and not engine.store.has_retrying_workflow_tasks()
                and engine.clock.skip_to(next_timer)
            ):
                # Workflow tasks run inline, so a chain of skips never awaits:
                # yield, or nothing else on the loop (a caller's wait_for) runs.
                await asyncio.sleep(0)
                continue
            # Jittered: of several processes waiting for work on one store, the
            # first to see a commit takes its tasks, and that should not always
            # be the same one.
            deadline = now + POLL_INTERVAL * (0.5 + _jitter.random())
            if next_timer is not None and next_timer < deadline:
                deadline = next_timer
            self.deadline = deadline
            await engine.clock.sleep_until(deadline, engine.wake)
            self.deadline = 0.0

    def _log_store_error(self, err: StoreError) -> None:
        # The same cause every half second for as long as it lasts: once in a while.
        message, at = self._logged
        now = time.monotonic()
        if str(err) != message or now - at >= STORE_LOG_INTERVAL:
            logger.error("ablauf: %s; retrying", err)
            self._logged = (str(err), now)

    def keeps_time(self) -> bool:
        """Whether this process fires due timers: it hosts workers, or no live process does."""
        return bool(self.owners.lease_until) or not self.owners.workers_elsewhere

    def tick(self) -> bool:
        """One round of background work; True if more may be due already."""
        engine = self.engine
        now = engine.clock.now()
        more = False
        monotonic = time.monotonic()
        if monotonic >= self._next_owner_step:
            self._next_owner_step = monotonic + RENEW_INTERVAL
            self.owners.step()
        if self.keeps_time():
            # A second round takes timers the first made due at once (transfer steps).
            for _ in range(2):
                due = engine.store.due_timers(now, FIRE_GROUP)
                due += engine.local_timers.due(now, FIRE_GROUP)
                if not due or not self._fire_all(due):
                    break
                if len(due) >= FIRE_GROUP:
                    more = True
                    break
        version = engine.store.data_version()
        foreign_commit = version != self._last_version
        if foreign_commit or now >= self._next_scan or self._backlog:
            self._last_version = version
            self._next_scan = now + SCAN_INTERVAL
            self._backlog = self.scan(now)
            self.queries.dispatch()
            if foreign_commit:
                # Only then can a waiting client's run have changed unseen: waking
                # every waiter on each periodic scan would stall what is due then.
                engine.notify_external_change()
        return more or self._backlog

    def _fire_all(self, due: list[TimerRecord]) -> bool:
        """Fires timers that came due together in one group commit; False if
        one of them failed (it is tried again later, see :meth:`_postpone`)."""
        ok = True
        with self.engine.group():
            for timer in due:
                try:
                    self.fire(timer)
                except Exception:
                    self._postpone(timer)
                    ok = False
                else:
                    if self._fire_failures:
                        self._fire_failures.pop(_timer_key(timer), None)
        return ok

    def _postpone(self, timer: TimerRecord) -> None:
        """Logs why ``timer`` failed to fire and makes it due again after a
        backoff. Left due, it would be fired and fail again at once, round
        after round."""
        key = _timer_key(timer)
        failures = self._fire_failures.get(key, 0) + 1
        if len(self._fire_failures) >= 1024:
            # Keys of timers gone for good (their run closed) would pile up.
            self._fire_failures.clear()
        self._fire_failures[key] = failures
        delay = min(FIRE_RETRY_MAX, 2.0 ** min(failures - 1, 6))
        logger.exception(
            "firing timer %s (kind %d, ref %r) of run %s failed (%d in a row); "
            "trying again in %.0f s",
            timer.id,
            timer.kind,
            timer.ref,
            timer.run_id,
            failures,
            delay,
        )
        engine = self.engine
        at = engine.clock.now() + delay
        if timer.id < 0:
            if engine.local_timers.take(timer):
                engine.local_timers.add_many(
                    [(timer.run_id, timer.kind, timer.ref, timer.attempt, at)]
                )
            return
        store = engine.store
        with store.transaction():
            if store.delete_timer(timer.id):
                store.insert_timer(timer.run_id, timer.kind, timer.ref, timer.attempt, at)

    def fire(self, timer: TimerRecord) -> None:
        engine = self.engine
        if timer.kind == TimerKind.SCHEDULE:
            self._schedules().fire(timer)
            return

        local = timer.id < 0

        def change(tx: Transition) -> None:
            store = engine.store
            armed = engine.local_timers.armed(timer) if local else store.delete_timer(timer.id)
            if not armed or not tx.state.running:
                return
            state = tx.state
            if timer.kind == TimerKind.USER_TIMER:
                started_id = state.timers.get(timer.ref)
                if started_id is not None:
                    tx.add_external(
                        EventType.EVENT_TYPE_TIMER_FIRED,
                        TimerFiredEventAttributes(timer_id=timer.ref, started_event_id=started_id),
                    )
            elif timer.kind == TimerKind.WORKFLOW_RUN_TIMEOUT:
                self._time_out(tx)
            elif timer.kind == TimerKind.WORKFLOW_BACKOFF:
                if state.awaiting_backoff:
                    tx.needs_workflow_task = tx.end_backoff = True
            elif timer.kind >= TimerKind.TRANSFER_START_CHILD:
                children.fire(tx, timer.kind, timer.ref)
            elif timer.kind == TimerKind.WORKFLOW_TASK_RETRY:
                wft = state.wft
                if wft is not None and wft.attempt == timer.attempt and wft.lease_owner is None:
                    self.workflow_tasks.offer(tx)
            else:
                activities.fire_timer(tx, timer.kind, timer.ref, timer.attempt)

        try:
            engine.transition(timer.run_id, change)
        except NotFoundError:
            if not local:
                with engine.store.transaction():
                    engine.store.delete_timer(timer.id)
        except InvalidArgumentError:
            # The history would outgrow its limit: the engine has terminated
            # the run instead, which removed this timer too.
            pass
        if local:
            # Disarmed only now: a change that failed leaves the timer due.
            engine.local_timers.take(timer)

    @staticmethod
    def _time_out(tx: Transition) -> None:
        """Times the run out; a cron run whose execution has not expired goes on
        with its next run, as on Temporal."""
        started = tx.state.started
        timed_out = WorkflowExecutionTimedOutEventAttributes(
            retry_state=RetryState.RETRY_STATE_TIMEOUT
        )
        expired = started.HasField("workflow_execution_expiration_time") and (
            tx.now >= started.workflow_execution_expiration_time.ToNanoseconds() / 1e9
        )
        if started.cron_schedule and not expired:
            last = (
                started.last_completion_result
                if started.HasField("last_completion_result")
                else None
            )
            failure = Failure(
                message="workflow timeout",
                source="Server",
                timeout_failure_info=TimeoutFailureInfo(
                    timeout_type=TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
                ),
            )
            timed_out.new_execution_run_id = next_cron_run(tx, result=last, failure=failure)
            if timed_out.new_execution_run_id:
                timed_out.retry_state = RetryState.RETRY_STATE_RETRY_POLICY_NOT_SET
        tx.engine.close_run(
            tx,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
            timed_out,
            WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
        )

    def scan(self, now: float) -> bool:
        """Leases tasks in the store that local workers can take, in one group
        commit; True if there may be more (a full batch was taken and the
        local workers keep up)."""
        engine = self.engine
        store = engine.store
        matching = engine.matching
        wf_queues = matching.task_queues(WORKFLOW_TASK)
        act_queues = matching.task_queues(ACTIVITY_TASK)
        workflow_tasks = (
            store.ready_tasks(WORKFLOW_TASK, wf_queues, now, BATCH) if wf_queues else []
        )
        activity_tasks = (
            store.ready_tasks(ACTIVITY_TASK, act_queues, now, BATCH) if act_queues else []
        )
        if not workflow_tasks and not activity_tasks:
            return False
        with engine.group():
            for task in workflow_tasks:
                self._take(self._take_workflow_task, task)
            for task in activity_tasks:
                self._take(self._take_activity, task)
        full = len(workflow_tasks) == BATCH or len(activity_tasks) == BATCH
        # Tasks waiting in local queues: the workers are behind, the store can wait.
        return full and not matching.waiting()

    @staticmethod
    def _take(take: Callable[[TaskRecord], None], task: TaskRecord) -> None:
        try:
            take(task)
        except StoreError:
            raise
        except Exception:
            # Its transition was undone; the others of the group go on.
            logger.exception("taking task %s of run %s failed", task.id, task.run_id)

    def _take_workflow_task(self, task: TaskRecord) -> None:
        engine = self.engine

        def change(tx: Transition) -> None:
            wft = tx.state.wft
            if wft is None or wft.id != task.id or not tx.state.running:
                return
            if wft.lease_owner is not None and (wft.lease_until or 0) >= tx.now:
                return
            if wft.visible_at > tx.now:
                return
            # Events that waited for a lost lease join the history before the new start.
            wft.lease_owner = None
            tx.flush_buffered()
            tx.needs_workflow_task = False
            self.workflow_tasks.offer(tx)

        with contextlib.suppress(NotFoundError):
            engine.transition(task.run_id, change)

    def _take_activity(self, task: TaskRecord) -> None:
        engine = self.engine

        def change(tx: Transition) -> None:
            pending = tx.state.activities.get(task.ref)
            if pending is None or pending.task is None or pending.task.id != task.id:
                return
            if pending.task.lease_owner is not None or pending.task.visible_at > tx.now:
                return
            activities.offer(tx, pending)

        with contextlib.suppress(NotFoundError):
            engine.transition(task.run_id, change)
