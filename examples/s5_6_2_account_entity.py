"""5.6.2 Infinite Loop mit Continue-As-New (an infinite loop with continue-as-new): a bank
account as an entity workflow.

The chapter's workflow, corrected where it fails on Temporal:
- E8: ``wait_condition(..., timeout=30s)`` raises ``asyncio.TimeoutError`` after 30
  idle seconds, which fails the account's workflow. The loop catches it and waits again.
- E9: ``transaction_count % 1000 == 0`` is true at 0 and is checked before the
  shutdown flag: a shutdown sent to a fresh account (or one that just continued as
  new) continues as new, and the new run forgets the shutdown and runs on. The check
  needs ``count > 0`` and ``not self.should_shutdown``.
- E15: ``asyncio``, ``timedelta`` and ``List`` are used but not imported.

The threshold of 1000 transactions per run stays. The scenario's parameters decide
how many transactions the client sends and what state the account starts from: by
default an account taken over with 940 transactions gets 100 more, so the run
continues as new once (about 5 seconds on a Temporal dev server, where each
transaction's activity takes about 45 ms); from a fresh account, 3,000 transactions
are booked by three runs of 1,000.

The run checks the count only when nothing is pending: a transaction that arrives
while the 1000th is booked takes the count past the multiple, and that run goes on.
So the client never sends past a multiple of 1000 before the account has booked up
to it, and then sends the next transactions at once, while the run continues as new;
they reach the new run. Then it sends ``shutdown`` and checks the final balance and
count. A second, fresh account is shut down at once (E9). The chapter does not show
``process_transaction``; here the fake bank in ``fake_services.py`` books it and
records which run sent it.

    python examples/s5_6_2_account_entity.py [--target sqlite:///accounts.db | localhost:7233]
"""

# ruff: noqa: UP006, UP035 - the chapter spells the type typing.List

import asyncio  # E15: asyncio, timedelta and List are used but not imported in the chapter
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import List

from _cli import run_standalone
from fake_services import bank
from temporalio import activity, workflow
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from ablauf import Client, Worker

TASK_QUEUE = "s5-6-2-account-entity"


@activity.defn
async def process_transaction(transaction: dict) -> dict:
    info = activity.info()
    return await bank.book(info.workflow_id, info.workflow_run_id, transaction)


# --- the chapter's code ----------------------------------------------------------


@dataclass
class AccountState:
    account_id: str
    balance: float = 0.0
    transaction_count: int = 0


@workflow.defn
class AccountEntityWorkflow:
    """
    Runs indefinitely - an entity workflow for a bank account.
    """

    def __init__(self) -> None:
        self.state: AccountState = None
        self.pending_transactions: List[dict] = []
        self.should_shutdown = False

    @workflow.run
    async def run(self, initial_state: AccountState = None) -> None:
        # Initialize or restore
        if initial_state:
            self.state = initial_state
        else:
            self.state = AccountState(account_id=workflow.info().workflow_id)

        workflow.logger.info(
            f"Account {self.state.account_id} started. "
            f"Balance: {self.state.balance}, "
            f"Transactions: {self.state.transaction_count}"
        )

        # Infinite loop
        while not self.should_shutdown:
            # Wait for transactions or the timeout
            try:
                await workflow.wait_condition(
                    lambda: len(self.pending_transactions) > 0 or self.should_shutdown,
                    timeout=timedelta(seconds=30),
                )
            except asyncio.TimeoutError:  # noqa: UP041 - E8: else 30 idle seconds fail the run
                continue

            # Process the transactions
            while self.pending_transactions:
                transaction = self.pending_transactions.pop(0)

                try:
                    result = await workflow.execute_activity(
                        process_transaction,
                        transaction,
                        start_to_close_timeout=timedelta(seconds=10),
                    )

                    self.state.balance += result["amount"]
                    self.state.transaction_count += 1

                except Exception as e:
                    workflow.logger.error(f"Transaction failed: {e}")

            # Continue-as-new after 1000 transactions
            count = self.state.transaction_count
            if count > 0 and count % 1000 == 0 and not self.should_shutdown:  # E9
                workflow.logger.info(
                    f"Continuing as new after {self.state.transaction_count} transactions"
                )
                workflow.continue_as_new(self.state)

        # Graceful Shutdown
        workflow.logger.info("Account workflow shutting down gracefully")

    @workflow.signal
    def deposit(self, amount: float) -> None:
        """Signal: deposit money."""
        self.pending_transactions.append(
            {"type": "deposit", "amount": amount, "timestamp": workflow.time()}
        )

    @workflow.signal
    def withdraw(self, amount: float) -> None:
        """Signal: withdraw money."""
        self.pending_transactions.append(
            {"type": "withdraw", "amount": -amount, "timestamp": workflow.time()}
        )

    @workflow.signal
    def shutdown(self) -> None:
        """Signal: end the workflow."""
        self.should_shutdown = True

    @workflow.query
    def get_balance(self) -> float:
        """Query: the current balance."""
        return self.state.balance

    @workflow.query
    def get_transaction_count(self) -> int:
        """Query: the number of transactions."""
        return self.state.transaction_count


# --- running it ------------------------------------------------------------------

RUN_LIMIT = 1000  # the chapter's transactions per run


def transaction(number: int) -> tuple[str, float]:
    """The account's ``number``-th transaction of the scenario: mostly deposits."""
    if number % 3 == 2:
        return "withdraw", 30.0
    return "deposit", 20.5 + number % 5  # exact in binary floating point: sums are exact


async def booked(handle: WorkflowHandle, count: int, deadline: float) -> None:
    """Wait until the account has booked ``count`` transactions."""
    started = time.monotonic()
    while True:
        try:
            if await handle.query(AccountEntityWorkflow.get_transaction_count) >= count:
                return
        except RPCError:
            pass  # a new run that has not completed its first workflow task
        if time.monotonic() - started > deadline:
            raise TimeoutError(f"{handle.id} did not book {count} transactions in {deadline} s")
        await asyncio.sleep(0.01)


async def main(
    client: Client,
    *,
    opening_count: int = 940,
    opening_balance: float = 500.0,
    transactions: int = 100,
    deadline: float = 120.0,
) -> dict:
    """Send ``transactions`` to an account that has booked ``opening_count``, shut it down.

    Returns the expected and the queried final balance and count, the transactions
    each run booked, and the end of a fresh account that was shut down at once.
    """
    run = uuid.uuid4().hex[:8]
    account_id = f"account-{run}"
    started = time.monotonic()
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[AccountEntityWorkflow],
        activities=[process_transaction],
    ):
        if opening_count:  # an account taken over with its balance and count
            opening = AccountState(account_id, opening_balance, opening_count)
            balance = opening_balance
        else:  # a new account
            opening, balance = None, 0.0
        handle = await client.start_workflow(
            AccountEntityWorkflow.run, opening, id=account_id, task_queue=TASK_QUEUE
        )
        count = opening_count
        for number in range(transactions):
            if count > opening_count and count % RUN_LIMIT == 0:
                # Sending more now would let the run book past the multiple of 1000
                # before it checks: wait until it has booked this far.
                await booked(handle, count, deadline)
            kind, amount = transaction(number)
            if kind == "deposit":
                await handle.signal(AccountEntityWorkflow.deposit, amount)
                balance += amount
            else:
                await handle.signal(AccountEntityWorkflow.withdraw, amount)
                balance -= amount
            count += 1
        await handle.signal(AccountEntityWorkflow.shutdown)
        await asyncio.wait_for(handle.result(), deadline)
        final_balance = await handle.query(AccountEntityWorkflow.get_balance)
        final_count = await handle.query(AccountEntityWorkflow.get_transaction_count)

        fresh = await client.start_workflow(
            AccountEntityWorkflow.run, id=f"account-{run}-fresh", task_queue=TASK_QUEUE
        )
        await fresh.signal(AccountEntityWorkflow.shutdown)
        fresh_result = await asyncio.wait_for(fresh.result(), deadline)
        fresh_latest = await fresh.describe()  # the latest run of that id

    per_run: dict[str, int] = {}
    for booking in bank.bookings_of(account_id):
        per_run[booking.run_id] = per_run.get(booking.run_id, 0) + 1
    print(
        f"{account_id}: {transactions} transactions sent after {opening_count}, "
        f"{len(per_run)} runs booked {list(per_run.values())} of them"
    )
    print(f"final balance {final_balance:.2f} (expected {balance:.2f}), {final_count} transactions")
    fresh_status = fresh_latest.status.name if fresh_latest.status else None
    fresh_run = "a later run" if fresh_latest.run_id != fresh.result_run_id else "its first run"
    print(f"a fresh account shut down at once: {fresh_status} in {fresh_run}")
    print(f"took {time.monotonic() - started:.1f} s")
    return {
        "expected_balance": balance,
        "expected_count": count,
        "balance": final_balance,
        "count": final_count,
        "booked_per_run": list(per_run.values()),
        "fresh_account": {
            "result": fresh_result,
            "status": fresh_status,
            "continued_as_new": fresh_latest.run_id != fresh.result_run_id,
        },
    }


if __name__ == "__main__":
    run_standalone(main, __doc__)
