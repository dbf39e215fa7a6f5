"""5.5.1 try/except in Workflows: items that fail are counted, the workflow goes on.

The chapter's workflow, corrected where it fails on Temporal:
- E6: ``e.retry_state`` is a ``RetryState`` enum without ``attempt``; the workflow
  records ``e.retry_state.name`` (MAXIMUM_ATTEMPTS_REACHED, NON_RETRYABLE_FAILURE).
- E15: ``List``, ``timedelta`` and ``RetryPolicy`` are used but not imported.

The chapter does not show ``process_item``; here it fails on purpose, by item name:
- "...-invalid" raises ``ApplicationError(type="InvalidInput")``, which the retry
  policy lists as non-retryable: one attempt, then the workflow catches it;
- "...-offline" raises ``ConnectionError`` every time: three attempts, then caught;
- "...-flaky" raises ``ConnectionError`` on its first attempt only: retried, succeeds.
Retries wait 1 s, then 2 s (Temporal's default backoff), so the example takes ~4 s.

    python examples/s5_5_1_error_handling.py [--target sqlite:///items.db | localhost:7233]
"""

# ruff: noqa: UP006, UP035 - the chapter spells the type typing.List

import uuid
from datetime import timedelta  # E15: timedelta, List and RetryPolicy are not imported
from typing import List

from _cli import run_standalone
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from ablauf import Client, Worker

TASK_QUEUE = "s5-5-1-error-handling"

# (workflow id, item) -> number of the last attempt, to show how often each was tried
attempts: dict[tuple[str, str], int] = {}


@activity.defn
async def process_item(item: str) -> str:
    info = activity.info()
    attempts[(info.workflow_id, item)] = info.attempt
    if item.endswith("-invalid"):
        raise ApplicationError(f"{item} is not a valid item", type="InvalidInput")
    if item.endswith("-offline") or (item.endswith("-flaky") and info.attempt == 1):
        raise ConnectionError(f"warehouse service unreachable for {item}")
    return f"{item} processed"


# --- the chapter's code ----------------------------------------------------------


@workflow.defn
class ErrorHandlingWorkflow:
    @workflow.run
    async def run(self, items: List[str]) -> dict:
        successful = []
        failed = []

        for item in items:
            try:
                result = await workflow.execute_activity(
                    process_item,
                    item,
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=RetryPolicy(
                        maximum_attempts=3,
                        non_retryable_error_types=["InvalidInput"],
                    ),
                )
                successful.append(result)

            except ActivityError as e:
                # The activity failed after all retries
                workflow.logger.warning(f"Failed to process {item}: {e.cause}")
                failed.append(
                    {
                        "item": item,
                        "error": str(e.cause),
                        # E6: RetryState is an enum; it has a name, not an attempt count
                        "attempts": e.retry_state.name if e.retry_state else 0,
                    }
                )
                # The workflow goes on!

        return {
            "successful": len(successful),
            "failed": len(failed),
            "total": len(items),
        }


# --- running it ------------------------------------------------------------------


async def main(client: Client) -> dict:
    """Process five items, two of which fail; returns the result and the attempts per item."""
    items = ["item-1", "item-2-flaky", "item-3-invalid", "item-4-offline", "item-5"]
    workflow_id = f"error-handling-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[ErrorHandlingWorkflow],
        activities=[process_item],
    ):
        result = await client.execute_workflow(
            ErrorHandlingWorkflow.run,
            items,
            id=workflow_id,
            task_queue=TASK_QUEUE,
        )
    tries = {item: attempts[(workflow_id, item)] for item in items}
    print(f"attempts per item: {tries}")
    print(f"result: {result}")
    return {"result": result, "attempts": tries}


if __name__ == "__main__":
    run_standalone(main, __doc__)
