"""Factories for the booking-core unit tests: a Launch, its passengers and bookings at a fixed time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from astro.domain.bookings import BookingRecord, NewBooking, Passenger
from astro.domain.launch import Launch
from astro.domain.launches import Status

NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)
# Far enough ahead that a traveler's cancellation refunds 90 %.
LAUNCH_AT = NOW + timedelta(days=400)
LAUNCH_DAY = LAUNCH_AT.date()
AGENCY = "usr_agency"
PRICE = 100_000


def make_launch(**overrides: Any) -> Launch:
    """A public, scheduled launch of 10 seats (3 to fly), none booked, at LAUNCH_AT."""
    fields: dict[str, Any] = {
        "id": "lch_1",
        "agency_id": AGENCY,
        "agency_name": "Orbital Co",
        "rocket_id": "rkt_1",
        "rocket_name": "Falcon X",
        "slug": "falcon-x-moon-2028-02-05",
        "mission": "Artemis Tour",
        "destination": "moon",
        "scheduled_at": LAUNCH_AT,
        "price_cents": PRICE,
        "capacity": 10,
        "min_passengers": 3,
        "seats_booked": 0,
        "status": Status.SCHEDULED,
        "status_reason": None,
        "public_from": NOW - timedelta(days=1),
        "last_delayed_at": None,
        "confirmed_at": None,
        "created_at": NOW - timedelta(days=2),
        "updated_at": NOW - timedelta(days=2),
    }
    fields.update(overrides)
    return Launch(**fields)


def adults(n: int, launch_day: date = LAUNCH_DAY) -> tuple[Passenger, ...]:
    """n passengers aged 30 on the launch day."""
    born = launch_day.replace(year=launch_day.year - 30)
    return tuple(Passenger(f"Passenger {i}", born) for i in range(n))


def new_booking(
    booking_id: str,
    traveler_id: str,
    seats: int,
    *,
    launch_id: str = "lch_1",
    created_at: datetime = NOW,
    price_cents: int = PRICE,
) -> NewBooking:
    return NewBooking(
        id=booking_id,
        launch_id=launch_id,
        traveler_id=traveler_id,
        seats=seats,
        price_cents=price_cents,
        passengers=adults(seats),
        charge_ref=f"ch_{booking_id}",
        created_at=created_at,
    )


def record(
    booking_id: str,
    traveler_id: str,
    seats: int,
    *,
    launch_id: str = "lch_1",
    created_at: datetime = NOW - timedelta(days=1),
    status: str = "confirmed",
    price_cents: int = PRICE,
) -> BookingRecord:
    """A stored booking."""
    return BookingRecord(
        id=booking_id,
        launch_id=launch_id,
        traveler_id=traveler_id,
        seats=seats,
        total_cents=seats * price_cents,
        status=status,
        created_at=created_at,
        charge_ref=f"ch_{booking_id}",
    )
