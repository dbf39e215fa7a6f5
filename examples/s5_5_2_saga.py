"""5.5.2 SAGA Pattern für Compensation (the saga pattern for compensation): book car, hotel and
flight, or undo what was booked.

The chapter's workflow, corrected where it fails on Temporal:
- E13: without a retry policy a failing booking is retried forever (Temporal's
  default), so the rollback never runs; the bookings get ``maximum_attempts=3``.
  And ``str(e)`` of an activity failure is only "Activity task failed": the
  workflow reports the cause.
- E15: ``timedelta`` and ``RetryPolicy`` are used but not imported.

The chapter does not show the booking activities; here they call the fake travel
agency in ``fake_services.py``, whose airline has no flights to Atlantis. A trip to
Lisbon is booked; a trip to Atlantis books car and hotel, fails three times on the
flight (1 s and 2 s apart) and cancels hotel and car, in that order.

    python examples/s5_5_2_saga.py [--target sqlite:///trips.db | localhost:7233]
"""

# ruff: noqa: UP006, UP035 - the chapter spells the types typing.List and typing.Callable

import uuid
from datetime import timedelta  # E15: timedelta and RetryPolicy are not imported
from typing import Callable, List

from _cli import run_standalone
from fake_services import travel_agency
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from ablauf import Client, Worker

TASK_QUEUE = "s5-5-2-saga"


@activity.defn
async def book_car(booking_data: dict) -> str:
    return await travel_agency.book("car", booking_data)


@activity.defn
async def book_hotel(booking_data: dict) -> str:
    return await travel_agency.book("hotel", booking_data)


@activity.defn
async def book_flight(booking_data: dict) -> str:
    return await travel_agency.book("flight", booking_data)


@activity.defn
async def undo_book_car(booking_data: dict) -> None:
    await travel_agency.cancel("car", booking_data)


@activity.defn
async def undo_book_hotel(booking_data: dict) -> None:
    await travel_agency.cancel("hotel", booking_data)


@activity.defn
async def undo_book_flight(booking_data: dict) -> None:
    await travel_agency.cancel("flight", booking_data)


# --- the chapter's code ----------------------------------------------------------


@workflow.defn
class BookingWorkflow:
    """
    SAGA pattern: on failure, roll back all previous steps.
    """

    @workflow.run
    async def run(self, booking_data: dict) -> dict:
        compensations: List[Callable] = []

        try:
            # Step 1: book the car
            car_result = await workflow.execute_activity(
                book_car,
                booking_data,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),  # E13: else retried forever
            )
            # Register the compensation
            compensations.append(
                lambda: workflow.execute_activity(
                    undo_book_car,
                    booking_data,
                    start_to_close_timeout=timedelta(seconds=10),
                )
            )

            # Step 2: book the hotel
            hotel_result = await workflow.execute_activity(
                book_hotel,
                booking_data,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),  # E13: else retried forever
            )
            compensations.append(
                lambda: workflow.execute_activity(
                    undo_book_hotel,
                    booking_data,
                    start_to_close_timeout=timedelta(seconds=10),
                )
            )

            # Step 3: book the flight
            flight_result = await workflow.execute_activity(
                book_flight,
                booking_data,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),  # E13: else retried forever
            )
            compensations.append(
                lambda: workflow.execute_activity(
                    undo_book_flight,
                    booking_data,
                    start_to_close_timeout=timedelta(seconds=10),
                )
            )

            return {
                "status": "success",
                "car": car_result,
                "hotel": hotel_result,
                "flight": flight_result,
            }

        except Exception as e:
            # E13: str(e) of an ActivityError is "Activity task failed"; report its cause
            error = e.cause if isinstance(e, ActivityError) else e

            # Failure - run the compensations in reverse order
            workflow.logger.error(f"Booking failed: {error}, rolling back...")

            for compensation in reversed(compensations):
                try:
                    await compensation()
                except Exception as comp_error:
                    workflow.logger.error(f"Compensation failed: {comp_error}")

            return {"status": "rolled_back", "error": str(error)}


# --- running it ------------------------------------------------------------------


async def main(client: Client) -> dict:
    """Book a trip to Lisbon and one to Atlantis.

    Returns both workflow results, the booking ids, what stays reserved for each
    trip, and the travel agency's log for the Atlantis trip.
    """
    run = uuid.uuid4().hex[:8]
    trips = {"Lisbon": f"{run}-lisbon", "Atlantis": f"{run}-atlantis"}
    results = {}
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[BookingWorkflow],
        activities=[
            book_car,
            book_hotel,
            book_flight,
            undo_book_car,
            undo_book_hotel,
            undo_book_flight,
        ],
    ):
        for destination, booking_id in trips.items():
            results[destination] = await client.execute_workflow(
                BookingWorkflow.run,
                {"booking_id": booking_id, "destination": destination},
                id=f"booking-{booking_id}",
                task_queue=TASK_QUEUE,
            )
            print(f"{destination}: {results[destination]}")

    reserved = {trip: travel_agency.reservations.get(trip, []) for trip in trips.values()}
    atlantis_log = [entry for entry in travel_agency.log if entry.endswith(trips["Atlantis"])]
    print(f"still reserved: {reserved}")
    print(f"travel agency log for Atlantis: {atlantis_log}")
    return {
        "booked": results["Lisbon"],
        "rolled_back": results["Atlantis"],
        "booking_ids": trips,
        "reserved": reserved,
        "atlantis_log": atlantis_log,
    }


if __name__ == "__main__":
    run_standalone(main, __doc__)
