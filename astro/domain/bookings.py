"""Booking rules: seat limits, passenger ages, and the cancellation refund policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from astro.domain.errors import RuleViolation
from astro.domain.launches import FINAL, Status
from astro.origin import Origin

MAX_SEATS: Final = 4
MAX_SEATS_VIP: Final = 6
MIN_AGE: Final = 18
MAX_AGE: Final = 70
# Cancellation by the traveler, by how long before the launch (DESIGN 5).
REFUND_TIERS: Final = ((timedelta(days=365), 90), (timedelta(days=90), 70))


@dataclass(frozen=True, slots=True)
class Passenger:
    name: str
    birth_date: date


def check_seats(seats: int, passengers: int, vip: bool) -> None:
    limit = MAX_SEATS_VIP if vip else MAX_SEATS
    if not 1 <= seats <= limit:
        raise RuleViolation(
            f"a booking has 1 to {limit} seats" + ("" if vip else " (6 for VIP travelers)"),
            {"fields": {"seats": f"1..{limit}"}, "max_seats": limit},
            code="seat_limit",
        )
    if passengers != seats:
        raise RuleViolation(
            f"give exactly one passenger per seat: {seats} seats, {passengers} passengers",
            {"fields": {"passengers": f"{seats} expected"}},
            code="seat_limit",
        )


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def check_ages(passengers: list[Passenger], launch_day: date) -> None:
    """Every passenger must be 18 to 70 years old on the launch date."""
    wrong = {
        f"passengers.{i}.birth_date": f"{age_on(p.birth_date, launch_day)} years old on the launch date"
        for i, p in enumerate(passengers)
        if not MIN_AGE <= age_on(p.birth_date, launch_day) <= MAX_AGE
    }
    if wrong:
        raise RuleViolation(
            f"passengers must be {MIN_AGE} to {MAX_AGE} years old on the launch date",
            {"fields": wrong},
            code="passenger_age",
        )


def percent_of(total_cents: int, pct: int) -> int:
    """pct % of an amount in cents, rounded half up."""
    return (total_cents * pct + 50) // 100


def cancellation_refund_pct(*, now: datetime, launch_at: datetime, delayed_since_booking: bool) -> int:
    """The share refunded when the traveler cancels: 100 after a delay, else by time left."""
    if delayed_since_booking:
        return 100
    left = launch_at - now
    for at_least, pct in REFUND_TIERS:
        if left >= at_least:
            return pct
    return 0


def refund_pct_if_cancelled(
    *, status: str, launch_status: Status, launch_at: datetime, delayed_since_booking: bool, now: datetime
) -> int | None:
    """What cancelling a booking now would refund, in percent; None when it cannot be cancelled."""
    if status != "confirmed" or launch_status in FINAL:
        return None
    return cancellation_refund_pct(now=now, launch_at=launch_at, delayed_since_booking=delayed_since_booking)


@dataclass(frozen=True, slots=True)
class BookingRecord:
    """A stored booking, as the launch's rules need it to cancel or refund it."""

    id: str
    launch_id: str
    traveler_id: str
    seats: int
    total_cents: int
    status: str  # confirmed | cancelled
    created_at: datetime
    charge_ref: str


@dataclass(frozen=True, slots=True)
class RefundOwed:
    """A refund owed to a traveler, committed as pending and then paid through the gateway."""

    payment_id: str
    booking_id: str
    traveler_id: str
    amount_cents: int
    charge_ref: str


@dataclass(frozen=True, slots=True)
class BookingView:
    """A booking as its traveler sees it, with its launch as it stands now."""

    id: str
    launch_id: str
    traveler_id: str
    seats: int
    price_cents: int
    total_cents: int
    status: str
    created_at: datetime
    launch_status: Status
    launch_slug: str
    mission: str
    scheduled_at: datetime
    delayed_since_booking: bool = False
    cancel_reason: str | None = None
    refund_pct: int | None = None
    refund_cents: int | None = None
    cancelled_at: datetime | None = None
    passengers: tuple[Passenger, ...] | None = None

    def refund_pct_if_cancelled(self, now: datetime) -> int | None:
        return refund_pct_if_cancelled(
            status=self.status,
            launch_status=self.launch_status,
            launch_at=self.scheduled_at,
            delayed_since_booking=self.delayed_since_booking,
            now=now,
        )


@dataclass(frozen=True, slots=True)
class NewBooking:
    """A booking the launch actor has accepted, to be committed with its passengers and its charge."""

    id: str
    launch_id: str
    traveler_id: str
    seats: int
    price_cents: int
    passengers: tuple[Passenger, ...]
    charge_ref: str
    created_at: datetime
    origin: Origin | None = None
    attempt_id: str = ""  # its payment attempt, moved authorized -> booked in the same transaction

    @property
    def total_cents(self) -> int:
        return self.seats * self.price_cents
