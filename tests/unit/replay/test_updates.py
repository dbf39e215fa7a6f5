"""Updates: validators, acceptance and response messages, rejection, replay."""

from __future__ import annotations

from temporalio import workflow
from temporalio.api.update.v1 import Acceptance, Rejection, Response
from temporalio.exceptions import ApplicationError

from .helpers import Run, kinds, value


def _result(run: Run) -> object:
    command = run.outcomes[-1].commands[-1]
    return value(command.complete_workflow_execution_command_attributes.result.payloads[0])


@workflow.defn
class Tally:
    def __init__(self) -> None:
        self.total = 0
        self.done = False
        self.validated = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done and workflow.all_handlers_finished())
        return self.total

    @workflow.update
    async def add(self, amount: int) -> int:
        if amount == 13:
            raise ApplicationError("unlucky")
        await workflow.sleep(1)
        self.total += amount
        return self.total

    @add.validator
    def check(self, amount: int) -> None:
        self.validated += 1 if amount >= 0 else 0
        if amount < 0:
            raise ValueError("negative")

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def handlers_finished(self) -> bool:
        return workflow.all_handlers_finished()


def test_accepted_update_runs_and_responds() -> None:
    run = Run(Tally)
    run.task()
    outcome = run.task([run.update_request("add", 5)])
    # Acceptance first, then the handler's timer.
    assert kinds(outcome.commands) == ["PROTOCOL_MESSAGE", "START_TIMER"]
    assert [m.id for m in outcome.messages] == ["u1/request/accept"]
    assert outcome.commands[0].protocol_message_command_attributes.message_id == (
        "u1/request/accept"
    )
    acceptance = Acceptance()
    assert outcome.messages[0].body.Unpack(acceptance)
    assert acceptance.accepted_request_message_id == "u1/request"
    assert acceptance.accepted_request.input.name == "add"
    assert value(run.instance.query("handlers_finished", [])) is False
    run.fire_timer("1")
    done = run.task()
    assert kinds(done.commands) == ["PROTOCOL_MESSAGE"]
    response = Response()
    assert done.messages[0].body.Unpack(response)
    assert done.messages[0].id == "u1/request/complete"
    assert response.meta.update_id == "u1"
    assert value(response.outcome.success.payloads[0]) == 5
    assert value(run.instance.query("handlers_finished", [])) is True
    run.signal("finish")
    run.task()
    assert _result(run) == 5
    # Replay delivers the accepted update again, without its validator.
    assert run.replay().failure is None
    run.close()


def test_rejected_update_leaves_only_a_message() -> None:
    run = Run(Tally)
    run.task()
    outcome = run.task([run.update_request("add", -1)])
    assert outcome.commands == []
    rejection = Rejection()
    assert [m.id for m in outcome.messages] == ["u1/request/reject"]
    assert outcome.messages[0].body.Unpack(rejection)
    assert rejection.rejected_request_message_id == "u1/request"
    assert rejection.failure.message == "negative"
    assert rejection.failure.application_failure_info.type == "ValueError"
    run.signal("finish")
    run.task()
    assert _result(run) == 0
    assert run.replay().failure is None
    run.close()


def test_handler_failure_is_the_update_outcome() -> None:
    run = Run(Tally)
    run.task()
    outcome = run.task([run.update_request("add", 13)])
    assert kinds(outcome.commands) == ["PROTOCOL_MESSAGE", "PROTOCOL_MESSAGE"]
    response = Response()
    assert outcome.messages[1].body.Unpack(response)
    assert response.outcome.failure.message == "unlucky"
    assert run.replay().failure is None
    run.close()


def test_unknown_update_is_rejected() -> None:
    run = Run(Tally)
    run.task()
    outcome = run.task([run.update_request("nope")])
    rejection = Rejection()
    assert outcome.messages[0].body.Unpack(rejection)
    assert rejection.failure.message.startswith("Update handler for 'nope' expected but not found")
    run.close()


def test_speculative_task_that_only_rejected_leaves_no_events() -> None:
    run = Run(Tally)
    run.task()
    before = len(run.history.events)
    started = run.start_task()
    outcome = run.instance.activate(
        run.history.events[run.fed :], [run.update_request("add", -1, update_id="u9")]
    )
    assert outcome.commands == [] and len(outcome.messages) == 1
    # The server drops the speculative task; the next one reuses its event ids.
    del run.history.events[before:]
    run.history.now = started.event_time.ToDatetime()
    run.fed = before
    run.signal("finish")
    run.task()
    assert _result(run) == 0
    assert run.replay().failure is None
    run.close()


def test_dropped_speculative_task_then_a_signal_takes_its_event_ids() -> None:
    run = Run(Tally)
    run.task()
    before = len(run.history.events)
    run.start_task()
    outcome = run.instance.activate(
        run.history.events[run.fed :], [run.update_request("add", -1, update_id="u9")]
    )
    assert outcome.commands == []
    # The worker asks for the events after the last one the server surely kept.
    assert run.instance.last_event_id == before
    del run.history.events[before:]
    run.fed = before
    run.signal("finish")  # takes the id the dropped WorkflowTaskScheduled had
    run.task()
    assert _result(run) == 0
    run.close()


@workflow.defn
class Quiet:
    def __init__(self) -> None:
        self.seen = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.seen == 2)
        return self.seen

    @workflow.signal
    def poke(self) -> None:
        self.seen += 1


def test_kept_task_without_commands_is_fed_again_from_its_scheduled_event() -> None:
    run = Run(Quiet)
    run.task()
    run.signal("poke")
    assert run.task().commands == []
    # Like the worker: events from last_event_id on, which now repeat the answered task.
    run.fed = run.instance.last_event_id
    run.signal("poke")
    run.task()
    assert _result(run) == 2
    assert run.replay().failure is None
    run.close()
