"""5.6.2's account entity through idle time, under ablauf's time-skipping test environment.

The chapter's account waits for transactions at most 30 seconds at a time. Printed,
that wait fails the workflow after 30 idle seconds (E8); the example catches the
timeout and waits again, so an account can sit idle between transactions.
"""

from __future__ import annotations

import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from ablauf import Worker
from ablauf.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import s5_6_2_account_entity
from s5_6_2_account_entity import AccountEntityWorkflow


async def test_an_account_idle_for_an_hour_books_and_shuts_down() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        queue = f"accounts-{uuid.uuid4().hex[:6]}"
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[AccountEntityWorkflow],
            activities=[s5_6_2_account_entity.process_transaction],
        ):
            handle = await env.client.start_workflow(
                AccountEntityWorkflow.run, id="account-idle", task_queue=queue
            )
            await handle.signal(AccountEntityWorkflow.deposit, 100.0)
            before = await env.get_current_time()
            await env.sleep(timedelta(hours=1))
            assert (await env.get_current_time()) - before >= timedelta(hours=1)
            description = await handle.describe()
            assert description.status == WorkflowExecutionStatus.RUNNING
            assert description.run_id == handle.result_run_id  # still the first run

            await handle.signal(AccountEntityWorkflow.withdraw, 30.0)
            await handle.signal(AccountEntityWorkflow.shutdown)
            assert await handle.result() is None
            assert await handle.query(AccountEntityWorkflow.get_balance) == 70.0
            assert await handle.query(AccountEntityWorkflow.get_transaction_count) == 2
            history = await handle.fetch_history()
        timers_fired = [e for e in history.events if e.HasField("timer_fired_event_attributes")]
        assert len(timers_fired) >= 119  # one 30-second wait after another
