"""5.1.2 Wann Activities nutzen (when to use activities): an order that charges a card,
then sends a confirmation.

The chapter's code, unchanged. ``email_service`` and ``payment_api`` are the fakes
from ``fake_services.py``.

    python examples/s5_1_2_order.py [--target sqlite:///orders.db | localhost:7233]
"""

import uuid
from datetime import timedelta

from _cli import run_standalone
from fake_services import email_service, payment_api
from temporalio import activity, workflow

from ablauf import Client, Worker

TASK_QUEUE = "s5-1-2-orders"


# --- the chapter's code ----------------------------------------------------------


@activity.defn
async def send_email(to: str, subject: str, body: str) -> bool:
    """Activity that sends an e-mail (non-deterministic)."""
    # External API call - a perfect fit for an activity
    result = await email_service.send(to, subject, body)
    return result.success


@activity.defn
async def charge_credit_card(amount: float, card_token: str) -> str:
    """Activity that processes a payment."""
    # External payment API
    transaction = await payment_api.charge(amount, card_token)
    return transaction.id


@workflow.defn
class OrderWorkflow:
    @workflow.run
    async def run(self, order_data: dict) -> dict:
        # Activities for the business logic
        transaction_id = await workflow.execute_activity(
            charge_credit_card,
            args=[order_data["amount"], order_data["card_token"]],
            start_to_close_timeout=timedelta(seconds=30),
        )

        await workflow.execute_activity(
            send_email,
            args=[
                order_data["customer_email"],
                "Order Confirmation",
                f"Your order is confirmed. Transaction: {transaction_id}",
            ],
            start_to_close_timeout=timedelta(seconds=10),
        )

        return {"transaction_id": transaction_id, "status": "completed"}


# --- running it ------------------------------------------------------------------


async def main(client: Client) -> dict:
    """Place one order; returns the workflow's result."""
    order = {"amount": 129.90, "card_token": "tok_visa_4242", "customer_email": "ada@example.com"}
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[OrderWorkflow],
        activities=[charge_credit_card, send_email],
    ):
        result = await client.execute_workflow(
            OrderWorkflow.run,
            order,
            id=f"order-{uuid.uuid4().hex[:8]}",
            task_queue=TASK_QUEUE,
        )
    email = email_service.outbox[-1]
    print(f"charged {order['amount']:.2f} to {order['card_token']}: {result['transaction_id']}")
    print(f"e-mail to {email.to}: {email.subject!r} - {email.body!r}")
    print(f"result: {result}")
    return result


if __name__ == "__main__":
    run_standalone(main, __doc__)
