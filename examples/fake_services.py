"""In-memory fakes of the external services the chapter's activities talk to.

The chapter's activities call an e-mail service, a payment API, web pages, a shop,
an order desk and a travel agency. These fakes answer in milliseconds, never touch
the network, and remember what they were asked, so an example can print what
happened and a test can assert on it.

They live in the worker's process: activities run there, workflows never call them.
"""

import asyncio
from dataclasses import dataclass, field

__all__ = [
    "Booking",
    "Email",
    "EmailResult",
    "ProcessedItem",
    "Transaction",
    "bank",
    "carrier",
    "datacenter",
    "email_service",
    "item_processor",
    "order_desk",
    "payment_api",
    "shop",
    "task_board",
    "travel_agency",
    "warehouse",
    "web",
]


# --- 5.1.2: e-mail and payment -------------------------------------------------


@dataclass
class Email:
    to: str
    subject: str
    body: str


@dataclass
class EmailResult:
    success: bool


class FakeEmailService:
    """Keeps every sent e-mail in ``outbox``."""

    def __init__(self) -> None:
        self.outbox: list[Email] = []

    async def send(self, to: str, subject: str, body: str) -> EmailResult:
        await asyncio.sleep(0.005)
        self.outbox.append(Email(to, subject, body))
        return EmailResult(success=True)


@dataclass
class Transaction:
    id: str
    amount: float


class FakePaymentApi:
    """Charges always succeed; the transaction id is derived from card and amount."""

    def __init__(self) -> None:
        self.charges: list[Transaction] = []

    async def charge(self, amount: float, card_token: str) -> Transaction:
        await asyncio.sleep(0.005)
        transaction = Transaction(id=f"txn-{card_token[-4:]}-{round(amount * 100)}", amount=amount)
        self.charges.append(transaction)
        return transaction


# --- 5.2: web pages to scrape ---------------------------------------------------


@dataclass
class Page:
    url: str
    title: str
    content: str


class FakeWeb:
    """A few pages; each answers after its own small delay, to show parallelism.

    ``fetched`` lists the URLs in the order their responses arrived.
    """

    PAGES = {
        "https://example.com/durable-execution": (
            "Durable Execution",
            "A workflow survives crashes because its history is stored and replayed",
            0.06,
        ),
        "https://example.com/activities": (
            "Activities",
            "Activities do the side effects and are retried on failure",
            0.04,
        ),
        "https://example.com/timers": (
            "Timers",
            "A durable timer can wait thirty days without a running process",
            0.02,
        ),
    }

    def __init__(self) -> None:
        self.fetched: list[str] = []

    async def fetch(self, url: str) -> Page:
        title, content, delay = self.PAGES[url]
        await asyncio.sleep(delay)
        self.fetched.append(url)
        return Page(url, title, content)


# --- 5.3.2: the order desk that rejects unapproved orders ------------------------


class FakeOrderDesk:
    def __init__(self) -> None:
        self.rejected: list[str] = []

    async def reject(self, order_id: str) -> None:
        await asyncio.sleep(0.005)
        self.rejected.append(order_id)


# --- 5.4.1: the shop that knows what is in an order ------------------------------


class FakeShop:
    ORDERS = {
        "A-100": [
            {"sku": "book", "price": 24.5},
            {"sku": "lamp", "price": 35.25},
        ],
        "B-200": [
            {"sku": "laptop", "price": 999.0},
            {"sku": "monitor", "price": 250.5},
        ],
    }

    async def items_for(self, order_id: str) -> list[dict]:
        await asyncio.sleep(0.005)
        return [dict(item) for item in self.ORDERS[order_id]]


# --- 5.5.2: car rental, hotel and airline behind one travel agency ---------------


class NoAvailabilityError(Exception):
    """Raised by the fake airline; a plain exception, so Temporal retries it."""


@dataclass
class FakeTravelAgency:
    """Books cars, hotels and flights; flights to ``Atlantis`` are never available.

    ``reservations`` maps a booking id to what is currently booked for it, and
    ``log`` records every booking and cancellation in order.
    """

    reservations: dict[str, list[str]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    async def book(self, kind: str, booking: dict) -> str:
        await asyncio.sleep(0.005)
        if kind == "flight" and booking["destination"] == "Atlantis":
            raise NoAvailabilityError("no flights to Atlantis")
        confirmation = f"{kind}-{booking['booking_id']}"
        self.reservations.setdefault(booking["booking_id"], []).append(kind)
        self.log.append(f"booked {confirmation}")
        return confirmation

    async def cancel(self, kind: str, booking: dict) -> None:
        await asyncio.sleep(0.005)
        booked = self.reservations.get(booking["booking_id"], [])
        if kind in booked:
            booked.remove(kind)
        self.log.append(f"cancelled {kind}-{booking['booking_id']}")


# --- 5.1.3, 5.2.3, 5.6.1: items processed one activity each ------------------------


@dataclass(frozen=True)
class ProcessedItem:
    workflow_id: str
    run_id: str
    item_id: int


class FakeItemProcessor:
    """Processes an item at once; ``processed`` says which workflow run did it."""

    def __init__(self) -> None:
        self.processed: list[ProcessedItem] = []

    async def process(self, workflow_id: str, run_id: str, item_id: int) -> None:
        await asyncio.sleep(0)
        self.processed.append(ProcessedItem(workflow_id, run_id, item_id))

    def by_workflow(self, prefix: str) -> dict[str, list[int]]:
        """The items (sorted) of each workflow whose id starts with ``prefix``.

        The workflows come in the order of their ids, ``batch-...-2`` before ``batch-...-10``.
        """
        items: dict[str, list[int]] = {}
        for entry in self.processed:
            if entry.workflow_id.startswith(prefix):
                items.setdefault(entry.workflow_id, []).append(entry.item_id)

        def natural(workflow_id: str) -> tuple[str, int]:
            stem = workflow_id.rstrip("0123456789")
            return stem, int(workflow_id[len(stem) :] or -1)

        return {key: sorted(items[key]) for key in sorted(items, key=natural)}

    def by_run(self, workflow_id: str) -> list[ProcessedItem]:
        """What the runs of one workflow processed, in the order they processed it."""
        return [entry for entry in self.processed if entry.workflow_id == workflow_id]


# --- 5.1.3: the inventory and shipping services, and a datacenter of hosts --------


class FakeWarehouse:
    """Reserves the goods of an order; ``reservations`` maps order id to task queue."""

    def __init__(self) -> None:
        self.reservations: dict[str, str] = {}

    async def reserve(self, order_id: str, task_queue: str) -> str:
        await asyncio.sleep(0.005)
        self.reservations[order_id] = task_queue
        return f"reservation-{order_id}"


class FakeCarrier:
    """Books a parcel for an order; ``shipments`` maps order id to task queue."""

    def __init__(self) -> None:
        self.shipments: dict[str, str] = {}

    async def ship(self, order_id: str, task_queue: str) -> str:
        await asyncio.sleep(0.005)
        self.shipments[order_id] = task_queue
        return f"parcel-{order_id}"


class FakeDatacenter:
    """Hosts that can be stopped, upgraded and started; ``log`` lists every operation."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    async def operate(self, operation: str, hostname: str) -> None:
        await asyncio.sleep(0.005)
        self.log.append((operation, hostname))

    def operations_on(self, hostname: str) -> list[str]:
        return [operation for operation, host in self.log if host == hostname]


# --- 5.1.4: the task steps the child workers do ----------------------------------


class FakeTaskBoard:
    """Records each step done for a task; a step takes 30 ms."""

    def __init__(self) -> None:
        self.steps: dict[str, list[int]] = {}

    async def do_step(self, task_id: str, step: int) -> None:
        await asyncio.sleep(0.03)
        self.steps.setdefault(task_id, []).append(step)


# --- 5.6.2: the bank that books an account's transactions -------------------------


@dataclass(frozen=True)
class Booking:
    account_id: str
    run_id: str
    type: str
    amount: float


class FakeBank:
    """Books every transaction it is given; ``bookings`` says which workflow run sent it."""

    def __init__(self) -> None:
        self.bookings: list[Booking] = []

    async def book(self, account_id: str, run_id: str, transaction: dict) -> dict:
        self.bookings.append(
            Booking(account_id, run_id, transaction["type"], transaction["amount"])
        )
        return {"type": transaction["type"], "amount": transaction["amount"]}

    def bookings_of(self, account_id: str) -> list[Booking]:
        return [booking for booking in self.bookings if booking.account_id == account_id]


email_service = FakeEmailService()
payment_api = FakePaymentApi()
web = FakeWeb()
order_desk = FakeOrderDesk()
shop = FakeShop()
travel_agency = FakeTravelAgency()
item_processor = FakeItemProcessor()
warehouse = FakeWarehouse()
carrier = FakeCarrier()
datacenter = FakeDatacenter()
task_board = FakeTaskBoard()
bank = FakeBank()
