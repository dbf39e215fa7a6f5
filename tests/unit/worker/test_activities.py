"""ActivityRunner: real activities, run one attempt at a time."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.common import RawValue, RetryPolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from ablauf.history.tasks import (
    ActivityCanceled,
    ActivityCompleted,
    ActivityCompletesAsync,
    ActivityFailed,
    ActivityOutcome,
    ActivityTask,
)
from ablauf.worker.activities import (
    ActivityRunner,
    cancellation_details_for,
    worker_shutdown_failure,
)

CONVERTER = DataConverter.default
SCHEDULED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def encode(*values: Any) -> list[Payload]:
    return CONVERTER.payload_converter.to_payloads(list(values))


def decode(payloads: Sequence[Payload], *types: type) -> list[Any]:
    return CONVERTER.payload_converter.from_payloads(payloads, list(types) or None)


def make_task(activity_type: str, *args: Any, **overrides: Any) -> ActivityTask:
    fields: dict[str, Any] = {
        "token": f"token-{activity_type}".encode(),
        "namespace": "default",
        "workflow_id": "wf-1",
        "run_id": "run-1",
        "workflow_type": "MyWorkflow",
        "activity_id": "1",
        "activity_type": activity_type,
        "task_queue": "tq",
        "input": encode(*args),
        "attempt": 1,
        "scheduled_time": SCHEDULED,
        "current_attempt_scheduled_time": SCHEDULED,
        "started_time": SCHEDULED + timedelta(seconds=1),
        "schedule_to_close_timeout": None,
        "start_to_close_timeout": timedelta(seconds=30),
        "heartbeat_timeout": None,
        "retry_policy": RetryPolicy(),
    }
    fields.update(overrides)
    return ActivityTask(**fields)


@dataclass
class Heartbeats:
    """A heartbeat callback that records what it receives, and on which thread."""

    received: list[list[Payload]] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, details: Sequence[Payload]) -> None:
        self.received.append(list(details))
        self.threads.add(threading.get_ident())
        self.arrived.set()

    def values(self) -> list[list[Any]]:
        return [decode(details) for details in self.received]


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


async def run(
    runner: ActivityRunner, task: ActivityTask, heartbeat: Heartbeats | None = None
) -> ActivityOutcome | ActivityCompletesAsync:
    return await asyncio.wait_for(runner.execute(task, heartbeat or Heartbeats()), 10)


def value_of(outcome: ActivityOutcome | ActivityCompletesAsync, *types: type) -> Any:
    assert isinstance(outcome, ActivityCompleted), outcome
    assert outcome.result is not None
    return decode([outcome.result], *types)[0]


def failure_of(outcome: ActivityOutcome | ActivityCompletesAsync) -> Failure:
    assert isinstance(outcome, ActivityFailed), outcome
    return outcome.failure


@dataclass
class Order:
    item: str
    quantity: int


@dataclass
class Receipt:
    summary: str
    total: float


@activity.defn
async def place_order(order: Order, unit_price: float) -> Receipt:
    return Receipt(f"{order.quantity} x {order.item}", order.quantity * unit_price)


@activity.defn(name="place_order_sync")
def place_order_sync(order: Order, unit_price: float) -> Receipt:
    thread = threading.current_thread().name
    return Receipt(
        f"{order.quantity} x {order.item} ({thread}, {activity.info().activity_type})", 0.0
    )


# -- results and failures ---------------------------------------------------------


async def test_async_activity_decodes_dataclass_args_and_encodes_result() -> None:
    runner = ActivityRunner([place_order], data_converter=CONVERTER)
    outcome = await run(runner, make_task("place_order", Order("tea", 3), 2.5))
    assert value_of(outcome, Receipt) == Receipt("3 x tea", 7.5)


async def test_sync_activity_runs_in_the_executor(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    runner = ActivityRunner([place_order_sync], data_converter=CONVERTER, executor=executor)
    outcome = await run(runner, make_task("place_order_sync", Order("tea", 2), 1.0))
    receipt = value_of(outcome, Receipt)
    assert receipt.summary.startswith("2 x tea (ThreadPoolExecutor")
    assert receipt.summary.endswith(", place_order_sync)")


async def test_application_error_is_preserved_with_its_cause() -> None:
    @activity.defn
    async def charge() -> None:
        try:
            raise ValueError("card expired")
        except ValueError as err:
            raise ApplicationError(
                "payment refused",
                {"code": 51},
                type="PaymentError",
                non_retryable=True,
                next_retry_delay=timedelta(seconds=7),
            ) from err

    outcome = await run(ActivityRunner([charge], data_converter=CONVERTER), make_task("charge"))
    failure = failure_of(outcome)
    info = failure.application_failure_info
    assert failure.message == "payment refused"
    assert (info.type, info.non_retryable) == ("PaymentError", True)
    assert info.next_retry_delay.ToTimedelta() == timedelta(seconds=7)
    assert decode(info.details.payloads) == [{"code": 51}]
    assert failure.cause.message == "card expired"
    assert failure.cause.application_failure_info.type == "ValueError"


async def test_plain_exception_type_is_its_class_name() -> None:
    @activity.defn
    async def lookup() -> None:
        raise KeyError("missing")

    failure = failure_of(
        await run(ActivityRunner([lookup], data_converter=CONVERTER), make_task("lookup"))
    )
    assert failure.application_failure_info.type == "KeyError"
    assert failure.application_failure_info.non_retryable is False
    assert "missing" in failure.message


async def test_result_the_converter_cannot_encode_fails_the_attempt() -> None:
    @activity.defn
    async def opaque() -> object:
        return object()

    failure = failure_of(
        await run(ActivityRunner([opaque], data_converter=CONVERTER), make_task("opaque"))
    )
    assert failure.application_failure_info.type == "TypeError"


async def test_arguments_that_do_not_decode_fail_the_attempt() -> None:
    failure = failure_of(
        await run(
            ActivityRunner([place_order], data_converter=CONVERTER),
            make_task("place_order", "not an order", 1.0),
        )
    )
    assert failure.message == "Failed decoding arguments"
    assert failure.application_failure_info.non_retryable is False


async def test_unknown_activity_type_fails_with_temporals_wording(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    runner = ActivityRunner(
        [place_order, place_order_sync],
        data_converter=CONVERTER,
        executor=executor,
    )
    assert runner.knows("place_order") and not runner.knows("ship")
    failure = failure_of(await run(runner, make_task("ship")))
    assert failure.message == (
        "Activity function ship for workflow wf-1 is not registered on this worker, "
        "available activities: place_order, place_order_sync"
    )
    assert failure.application_failure_info.type == "NotFoundError"


async def test_complete_async_leaves_the_outcome_to_a_client() -> None:
    @activity.defn
    async def later() -> None:
        activity.raise_complete_async()

    outcome = await run(ActivityRunner([later], data_converter=CONVERTER), make_task("later"))
    assert outcome == ActivityCompletesAsync()


# -- context ------------------------------------------------------------------------


async def test_info_is_filled_from_the_task() -> None:
    seen: list[activity.Info] = []

    @activity.defn
    async def inspect_info() -> None:
        seen.append(activity.info())

    task = make_task(
        "inspect_info",
        attempt=3,
        heartbeat_timeout=timedelta(seconds=5),
        schedule_to_close_timeout=timedelta(minutes=5),
        heartbeat_details=encode("page-7", 42),
        current_attempt_scheduled_time=SCHEDULED + timedelta(seconds=9),
    )
    assert isinstance(
        await run(ActivityRunner([inspect_info], data_converter=CONVERTER), task),
        ActivityCompleted,
    )
    [info] = seen
    assert (info.activity_id, info.activity_type, info.attempt) == ("1", "inspect_info", 3)
    assert info.heartbeat_details == ["page-7", 42]
    assert info.heartbeat_timeout == timedelta(seconds=5)
    assert info.schedule_to_close_timeout == timedelta(minutes=5)
    assert info.start_to_close_timeout == timedelta(seconds=30)
    assert info.scheduled_time == SCHEDULED
    assert info.current_attempt_scheduled_time == SCHEDULED + timedelta(seconds=9)
    assert info.started_time == SCHEDULED + timedelta(seconds=1)
    assert (info.namespace, info.workflow_namespace, info.task_queue) == ("default",) * 2 + ("tq",)
    assert (info.workflow_id, info.workflow_run_id, info.workflow_type) == (
        "wf-1",
        "run-1",
        "MyWorkflow",
    )
    assert info.task_token == task.token
    assert info.is_local is False and info.in_workflow
    assert info.retry_policy == RetryPolicy()


async def test_an_activity_changing_its_retry_policy_leaves_the_task_s_alone() -> None:
    shared = RetryPolicy(maximum_attempts=3, non_retryable_error_types=["Fatal"])

    @activity.defn
    async def meddle() -> int:
        policy = activity.info().retry_policy
        assert policy is not None
        policy.maximum_attempts = 99
        assert policy.non_retryable_error_types is not None
        policy.non_retryable_error_types.append("Other")
        return 0

    runner = ActivityRunner([meddle], data_converter=CONVERTER)
    for _ in range(2):
        value_of(await run(runner, make_task("meddle", retry_policy=shared)), int)
    assert shared == RetryPolicy(maximum_attempts=3, non_retryable_error_types=["Fatal"])


async def test_client_is_given_to_async_activities_only(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    client = object()

    @activity.defn
    async def with_client() -> bool:
        return activity.client() is client

    @activity.defn
    def sync_with_client() -> None:
        activity.client()

    runner = ActivityRunner(
        [with_client, sync_with_client], data_converter=CONVERTER, executor=executor, client=client
    )
    outcome = await run(runner, make_task("with_client"))
    assert value_of(outcome) is True
    failure = failure_of(await run(runner, make_task("sync_with_client")))
    assert failure.message.startswith("No client available.")


async def test_dynamic_activity_gets_raw_values_and_its_real_type() -> None:
    @activity.defn(dynamic=True)
    async def anything(args: Sequence[RawValue]) -> str:
        values = [activity.payload_converter().from_payload(a.payload) for a in args]
        return f"{activity.info().activity_type}{values}"

    runner = ActivityRunner([anything], data_converter=CONVERTER)
    assert runner.knows("whatever")
    outcome = await run(runner, make_task("whatever", 1, "two"))
    assert value_of(outcome) == "whatever[1, 'two']"


# -- registration -------------------------------------------------------------------


def test_registration_errors_match_temporalio() -> None:
    async def undecorated() -> None:
        pass

    @activity.defn(name="place_order")
    async def same_name() -> None:
        pass

    @activity.defn(dynamic=True)
    async def dynamic_one(args: Sequence[RawValue]) -> None:
        pass

    @activity.defn(dynamic=True)
    async def dynamic_two(args: Sequence[RawValue]) -> None:
        pass

    with pytest.raises(TypeError, match=r"was it decorated with @activity\.defn"):
        ActivityRunner([undecorated], data_converter=CONVERTER)
    with pytest.raises(ValueError, match="More than one activity named place_order"):
        ActivityRunner([place_order, same_name], data_converter=CONVERTER)
    with pytest.raises(TypeError, match="More than one dynamic activity"):
        ActivityRunner([dynamic_one, dynamic_two], data_converter=CONVERTER)
    with pytest.raises(ValueError, match="activity_executor must be present"):
        ActivityRunner([place_order_sync], data_converter=CONVERTER)
    with (
        concurrent.futures.ProcessPoolExecutor(max_workers=1) as processes,
        pytest.raises(ValueError, match="not thread-pool executor"),
    ):
        ActivityRunner([place_order_sync], data_converter=CONVERTER, executor=processes)


def test_cancel_reasons_map_to_cancellation_details() -> None:
    assert cancellation_details_for("CANCELLED").cancel_requested
    assert cancellation_details_for("timed out").timed_out
    assert cancellation_details_for("HEARTBEAT_TIMEOUT").timed_out
    assert cancellation_details_for("WORKER_SHUTDOWN").worker_shutdown
    assert cancellation_details_for("NOT_FOUND").not_found


# -- heartbeats ----------------------------------------------------------------------


async def test_heartbeats_from_async_activity_reach_the_callback() -> None:
    @activity.defn
    async def beating() -> None:
        activity.heartbeat("step", 1)
        activity.heartbeat(Order("tea", 2))
        activity.heartbeat()

    heartbeats = Heartbeats()
    runner = ActivityRunner([beating], data_converter=CONVERTER)
    assert isinstance(await run(runner, make_task("beating"), heartbeats), ActivityCompleted)
    assert heartbeats.values() == [["step", 1], [{"item": "tea", "quantity": 2}], []]


async def test_heartbeats_from_a_thread_reach_the_callback_on_the_loop(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    @activity.defn
    def beating_sync() -> None:
        for i in range(3):
            activity.heartbeat(i)

    heartbeats = Heartbeats()
    runner = ActivityRunner([beating_sync], data_converter=CONVERTER, executor=executor)
    assert isinstance(await run(runner, make_task("beating_sync"), heartbeats), ActivityCompleted)
    assert heartbeats.values() == [[0], [1], [2]]
    assert heartbeats.threads == {threading.get_ident()}


async def test_a_heartbeat_that_cannot_be_recorded_fails_the_attempt() -> None:
    @activity.defn
    async def beating_forever() -> None:
        while True:
            activity.heartbeat("x")
            await asyncio.sleep(0.01)

    def broken(details: Sequence[Payload]) -> None:
        raise ApplicationError("store is gone", type="StoreDown")

    runner = ActivityRunner([beating_forever], data_converter=CONVERTER)
    outcome = await asyncio.wait_for(runner.execute(make_task("beating_forever"), broken), 10)
    assert failure_of(outcome).application_failure_info.type == "StoreDown"


# -- cancellation and shutdown --------------------------------------------------------


async def test_cancelled_async_activity_ends_canceled() -> None:
    seen: list[Any] = []

    @activity.defn
    async def waiting() -> None:
        activity.heartbeat()
        try:
            await asyncio.sleep(60)
        finally:
            seen.append((activity.is_cancelled(), activity.cancellation_details()))

    heartbeats = Heartbeats()
    runner = ActivityRunner([waiting], data_converter=CONVERTER)
    task = make_task("waiting")
    running = asyncio.create_task(run(runner, task, heartbeats))
    await heartbeats.arrived.wait()
    runner.cancel(task.token, "CANCELLED")
    assert await running == ActivityCanceled()
    [(cancelled, details)] = seen
    assert cancelled and details == activity.ActivityCancellationDetails(cancel_requested=True)
    runner.cancel(task.token, "CANCELLED")  # no longer running: ignored


async def test_timed_out_async_activity_ends_failed() -> None:
    seen: list[activity.ActivityCancellationDetails | None] = []

    @activity.defn
    async def slow() -> None:
        activity.heartbeat()
        try:
            await activity.wait_for_cancelled()
        finally:
            seen.append(activity.cancellation_details())

    heartbeats = Heartbeats()
    runner = ActivityRunner([slow], data_converter=CONVERTER)
    task = make_task("slow")
    running = asyncio.create_task(run(runner, task, heartbeats))
    await heartbeats.arrived.wait()
    runner.cancel(task.token, "TIMED_OUT")
    # As on Temporal: the engine has recorded the timeout and drops this failure.
    assert failure_of(await running).application_failure_info.type == "CancelledError"
    assert seen == [activity.ActivityCancellationDetails(timed_out=True)]


@pytest.mark.parametrize("waiting_before", [True, False], ids=["before", "after"])
async def test_async_activity_can_wait_for_its_cancel_from_a_thread(waiting_before: bool) -> None:
    woke: list[float] = []

    def wait_in_thread() -> asyncio.Task[None]:
        # to_thread carries the activity context into the thread.
        return asyncio.create_task(asyncio.to_thread(activity.wait_for_cancelled_sync, 10))

    @activity.defn
    async def waits_in_a_thread() -> None:
        waiting = wait_in_thread() if waiting_before else None
        activity.heartbeat()
        try:
            await asyncio.sleep(60)
        finally:
            start = time.monotonic()
            await asyncio.shield(waiting or wait_in_thread())
            woke.append(time.monotonic() - start)

    heartbeats = Heartbeats()
    runner = ActivityRunner([waits_in_a_thread], data_converter=CONVERTER)
    task = make_task("waits_in_a_thread")
    running = asyncio.create_task(run(runner, task, heartbeats))
    await heartbeats.arrived.wait()
    await asyncio.sleep(0.05)  # a thread started before is waiting by now
    runner.cancel(task.token, "CANCELLED")
    assert await running == ActivityCanceled()
    [seconds] = woke
    assert seconds < 5


async def test_cancelled_sync_activity_gets_an_exception_in_its_thread(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    @activity.defn
    def heartbeating() -> None:
        while True:
            activity.heartbeat("alive")
            time.sleep(0.01)

    heartbeats = Heartbeats()
    runner = ActivityRunner([heartbeating], data_converter=CONVERTER, executor=executor)
    task = make_task("heartbeating")
    running = asyncio.create_task(run(runner, task, heartbeats))
    await heartbeats.arrived.wait()
    runner.cancel(task.token, "CANCELLED")
    assert await running == ActivityCanceled()


async def test_sync_activity_without_thread_exception_polls_is_cancelled(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    @activity.defn(no_thread_cancel_exception=True)
    def polite() -> str:
        activity.heartbeat()
        activity.wait_for_cancelled_sync(timeout=10)
        return f"stopped: {activity.is_cancelled()}"

    heartbeats = Heartbeats()
    runner = ActivityRunner([polite], data_converter=CONVERTER, executor=executor)
    task = make_task("polite")
    running = asyncio.create_task(run(runner, task, heartbeats))
    await heartbeats.arrived.wait()
    runner.cancel(task.token, "CANCELLED")
    outcome = await running
    assert value_of(outcome) == "stopped: True"


async def test_shielded_sync_code_sees_the_cancel_when_the_shield_ends(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    finished_shielded_work = threading.Event()

    @activity.defn
    def careful() -> None:
        with activity.shield_thread_cancel_exception():
            activity.heartbeat()
            activity.wait_for_cancelled_sync(timeout=10)
            time.sleep(0.05)
            finished_shielded_work.set()
        time.sleep(10)

    heartbeats = Heartbeats()
    runner = ActivityRunner([careful], data_converter=CONVERTER, executor=executor)
    task = make_task("careful")
    running = asyncio.create_task(run(runner, task, heartbeats))
    await heartbeats.arrived.wait()
    runner.cancel(task.token, "CANCELLED")
    assert await running == ActivityCanceled()
    assert finished_shielded_work.is_set()


async def test_shutdown_signals_activities_and_waits_for_them(
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    @activity.defn
    async def until_shutdown() -> str:
        activity.heartbeat()
        await activity.wait_for_worker_shutdown()
        return "async done"

    @activity.defn
    def until_shutdown_sync() -> str:
        activity.heartbeat()
        activity.wait_for_worker_shutdown_sync(timeout=10)
        return f"sync done: {activity.is_worker_shutdown()}"

    runner = ActivityRunner(
        [until_shutdown, until_shutdown_sync], data_converter=CONVERTER, executor=executor
    )
    beats = [Heartbeats(), Heartbeats()]
    running = [
        asyncio.create_task(run(runner, make_task(name), hb))
        for name, hb in zip(["until_shutdown", "until_shutdown_sync"], beats, strict=True)
    ]
    await asyncio.gather(*(hb.arrived.wait() for hb in beats))
    await asyncio.wait_for(runner.shutdown(), 10)
    assert all(t.done() for t in running)
    assert [value_of(t.result()) for t in running] == ["async done", "sync done: True"]


async def test_shutdown_cancels_what_outlives_the_graceful_timeout() -> None:
    @activity.defn
    async def stubborn() -> None:
        activity.heartbeat()
        await asyncio.sleep(60)

    heartbeats = Heartbeats()
    runner = ActivityRunner([stubborn], data_converter=CONVERTER)
    running = asyncio.create_task(run(runner, make_task("stubborn"), heartbeats))
    await heartbeats.arrived.wait()
    await asyncio.wait_for(runner.shutdown(graceful_timeout=timedelta(milliseconds=10)), 10)
    # As sdk-core reports it: a failure, so the attempt is retried at once.
    assert await running == ActivityFailed(worker_shutdown_failure())


async def test_shutdown_cancels_attempts_that_start_while_it_waits() -> None:
    """An attempt that starts during shutdown (its task was handed out just
    before) is cancelled too: a shutdown that missed it waited for it forever."""

    @activity.defn
    async def waits_for_cancel() -> str:
        activity.heartbeat()
        await activity.wait_for_cancelled()
        return "saw the cancel"

    runner = ActivityRunner([waits_for_cancel], data_converter=CONVERTER)
    early_beats = Heartbeats()
    early = asyncio.create_task(run(runner, make_task("waits_for_cancel"), early_beats))
    await early_beats.arrived.wait()
    shutdown = asyncio.create_task(runner.shutdown(graceful_timeout=timedelta(milliseconds=200)))
    await asyncio.sleep(0.05)
    # Starts within the grace period: cancelled when it ends.
    within = asyncio.create_task(run(runner, make_task("waits_for_cancel", token=b"within")))
    await asyncio.wait_for(shutdown, 10)
    # Starts after it: cancelled before its code runs, as in temporalio.
    late = await asyncio.wait_for(run(runner, make_task("waits_for_cancel", token=b"late")), 10)
    shut_down = ActivityFailed(worker_shutdown_failure())
    assert [await early, await within, late] == [shut_down, shut_down, shut_down]


async def test_cancelling_execute_tells_the_activity_and_propagates() -> None:
    seen: list[activity.ActivityCancellationDetails | None] = []

    @activity.defn
    async def abandoned() -> None:
        activity.heartbeat()
        try:
            await asyncio.sleep(60)
        finally:
            seen.append(activity.cancellation_details())

    heartbeats = Heartbeats()
    runner = ActivityRunner([abandoned], data_converter=CONVERTER)
    running = asyncio.create_task(runner.execute(make_task("abandoned"), heartbeats))
    await heartbeats.arrived.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.wait_for(runner.shutdown(), 10)
    assert seen == [activity.ActivityCancellationDetails(worker_shutdown=True)]


async def test_sync_activity_cancelled_while_queued_never_starts() -> None:
    started: list[str] = []
    release = threading.Event()

    @activity.defn
    def queued() -> None:
        started.append("queued")

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as single:
        blocker = single.submit(release.wait, 10)  # the only thread is busy
        runner = ActivityRunner([queued], data_converter=CONVERTER, executor=single)
        task = make_task("queued")
        running = asyncio.create_task(run(runner, task))
        await asyncio.sleep(0.01)
        runner.cancel(task.token, "CANCELLED")
        release.set()
        assert await running == ActivityCanceled()
        assert blocker.result() is True
    assert started == []
