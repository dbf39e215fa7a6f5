"""The worker API: what an unregistering worker leaves for others."""

from __future__ import annotations

from ablauf.engine import executions
from ablauf.engine.engine import Engine
from ablauf.engine.matching import TaskRef
from ablauf.engine.worker_api import ActivityWorker, WorkerApi
from ablauf.store.base import ACTIVITY_TASK, WORKFLOW_TASK

from .conftest import start_request
from .test_transitions import schedule_activity, take


async def test_attempts_no_worker_here_took_are_given_back_on_unregister(
    engine: Engine,
) -> None:
    engine.matching.register(WORKFLOW_TASK, "q")
    api = WorkerApi(engine)
    refused: list[TaskRef] = []

    def busy(ref: TaskRef) -> bool:
        refused.append(ref)
        return False  # no free slot: the attempt stays queued here

    reg = api.register(
        "q", activities=ActivityWorker(take=busy, cancel=lambda *_: None), on_lost=print
    )
    run_id = executions.start(engine, start_request())[0]
    ref = await take(engine, WORKFLOW_TASK)
    assert api.receive_workflow_task(ref, 0) is not None
    assert api.complete_workflow_task(ref, [schedule_activity("1")])
    assert len(refused) == 1
    attempt = engine.state_of(run_id).activities
    (pending,) = attempt.values()
    assert pending.task is not None and pending.task.lease_owner == engine.owner_id

    await api.unregister(reg)

    (task,) = [t for t in engine.store.tasks_of_run(run_id) if t.kind == ACTIVITY_TASK]
    assert task.lease_owner is None
    assert task.visible_at <= engine.clock.now()
    # Another worker takes it at once, not after its start-to-close timeout.
    taken: list[TaskRef] = []
    api.register(
        "q",
        activities=ActivityWorker(take=lambda r: taken.append(r) is None, cancel=lambda *_: None),
        on_lost=print,
    )
    engine.service.tick()
    assert [r.run_id for r in taken] == [run_id]
    assert api.receive_activity_task(taken[0]) is not None
