"""The Launch aggregate: one launch's seats, holds and status, with every booking rule applied once.

Each operation checks its rules, changes the launch, and returns the domain events it raised. It does no
I/O: the launch actor sequences the messages, persists what the operations changed, and replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from astro.domain.bookings import (
    BookingRecord,
    NewBooking,
    Passenger,
    cancellation_refund_pct,
    check_ages,
    check_seats,
    percent_of,
)
from astro.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RuleViolation,
    TooManyAttempts,
)
from astro.domain.events import (
    BookingCancelled,
    DomainEvent,
    InvoiceDue,
    LaunchFacts,
    LaunchScheduled,
    LaunchStatusChanged,
    PassengerFacts,
    SeatsBooked,
)
from astro.domain.ids import new_id
from astro.domain.invoices import invoice_kind_for
from astro.domain.launches import (
    FINAL,
    OPEN,
    REFUND_ALL,
    Occupancy,
    Range,
    Status,
    check_destination,
    check_transition,
    slugify,
)

HOLD_FOR: Final = timedelta(seconds=30)


class SlugTaken(Conflict):
    """Another launch has this slug (the same rocket, destination and day)."""

    code = "slug_taken"


class LaunchLimitReached(TooManyAttempts):
    """The agency created as many launches in the last 24 hours as it may (ASTRO_AGENCY_LAUNCHES_PER_DAY)."""

    code = "launch_limit"

    def __init__(self, per_day: int, wait: timedelta) -> None:
        super().__init__(
            f"an agency creates at most {per_day} launches in 24 hours; try again later",
            max(1, int(wait.total_seconds()) + 1),
        )
        self.details = {**self.details, "per_day": per_day}


@dataclass(frozen=True, slots=True)
class Rocket:
    """The rocket a launch is scheduled on, with its agency's name."""

    id: str
    agency_id: str
    agency_name: str
    name: str
    capacity: int
    range: Range
    agency_verified: bool = True


@dataclass(slots=True)
class Hold:
    """Seats set aside for one traveler while their card is charged; they expire."""

    traveler_id: str
    seats: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SeatsHeld:
    hold_id: str
    price_cents: int
    total_cents: int


@dataclass(slots=True)
class Launch:
    """A scheduled flight and its seat inventory."""

    id: str
    agency_id: str
    agency_name: str
    rocket_id: str
    rocket_name: str
    slug: str
    mission: str
    destination: str
    scheduled_at: datetime
    price_cents: int
    capacity: int
    min_passengers: int
    seats_booked: int
    status: Status
    status_reason: str | None
    public_from: datetime
    last_delayed_at: datetime | None
    confirmed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    holds: dict[str, Hold] = field(default_factory=dict)
    # Its agency was verified by IT: until then the launch is not public, bookable nor announced.
    agency_verified: bool = True

    # -- reading ---------------------------------------------------------------------------------

    @property
    def occupancy(self) -> Occupancy:
        return Occupancy(self.capacity, self.seats_booked, self.min_passengers)

    def facts(self) -> LaunchFacts:
        """The launch as it stands now, for the events raised now."""
        return LaunchFacts(
            id=self.id,
            agency_id=self.agency_id,
            agency_name=self.agency_name,
            rocket_id=self.rocket_id,
            rocket_name=self.rocket_name,
            slug=self.slug,
            mission=self.mission,
            destination=self.destination,
            scheduled_at=self.scheduled_at,
            price_cents=self.price_cents,
            capacity=self.capacity,
            seats_booked=self.seats_booked,
            min_passengers=self.min_passengers,
            status=self.status,
            status_reason=self.status_reason,
            public_from=self.public_from,
            agency_verified=self.agency_verified,
        )

    def seats_held(self, now: datetime) -> int:
        """Seats under unexpired holds (expired ones are let go)."""
        for hold_id in [h for h, hold in self.holds.items() if hold.expires_at <= now]:
            del self.holds[hold_id]
        return sum(h.seats for h in self.holds.values())

    def seats_free(self, now: datetime) -> int:
        return self.capacity - self.seats_booked - self.seats_held(now)

    def vip_only(self, now: datetime) -> bool:
        """During its first hours (until public_from) a launch is for VIP travelers only."""
        return now < self.public_from

    def reached_minimum(self) -> bool:
        """A scheduled launch is confirmed once its bookings reach min_passengers."""
        return self.status is Status.SCHEDULED and self.occupancy.viable

    # -- booking ---------------------------------------------------------------------------------

    def hold(
        self,
        *,
        traveler_id: str,
        seats: int,
        passengers: tuple[Passenger, ...],
        vip: bool,
        now: datetime,
        hold_for: timedelta = HOLD_FOR,
        hold_id: str | None = None,
    ) -> SeatsHeld:
        """Set seats aside for a traveler who is about to pay, if every booking rule allows it."""
        check_seats(seats, len(passengers), vip)
        if not self.agency_verified:
            raise Conflict(
                "this launch's agency is not verified yet: its launches cannot be booked",
                code="agency_not_verified",
            )
        self._check_bookable(now)
        if self.vip_only(now) and not vip:
            raise Forbidden(
                "this launch is open to VIP travelers only until public_from",
                {"public_from": self.public_from.isoformat()},
                code="vip_only",
            )
        check_ages(list(passengers), self.scheduled_at.date())
        self._check_free(seats, now)
        hold_id = hold_id or new_id("hld")
        self.holds[hold_id] = Hold(traveler_id, seats, now + hold_for)
        return SeatsHeld(hold_id, self.price_cents, self.price_cents * seats)

    def release(self, hold_id: str) -> None:
        """The traveler will not pay: the held seats are free again."""
        self.holds.pop(hold_id, None)

    def confirm_hold(self, hold_id: str, booking: NewBooking, now: datetime) -> None:
        """The held seats are sold to the booking (committed with the others accepted with it, then told
        by `sold`). Without its hold (expired, the launch reloaded, or a hold for other seats), the seats
        are taken again only if the launch still takes bookings and they are free."""
        hold = self.holds.pop(hold_id, None)
        if (
            hold is None
            or hold.expires_at <= now
            or (hold.traveler_id, hold.seats)
            != (
                booking.traveler_id,
                booking.seats,
            )
        ):
            self._check_bookable(now)
            self._check_free(booking.seats, now)
        self.seats_booked += booking.seats

    def withdraw(self, booking: NewBooking) -> None:
        """A booking confirmed in memory whose payment was released before it committed: its seats are
        free again (nothing of it was stored)."""
        self.seats_booked -= booking.seats

    def sold(self, bookings: list[NewBooking]) -> list[SeatsBooked]:
        """The events of bookings confirmed together, with the launch as it stands once they commit."""
        facts = self.facts()
        return [
            SeatsBooked(
                launch=facts,
                booking_id=b.id,
                traveler_id=b.traveler_id,
                seats=b.seats,
                price_cents=b.price_cents,
                total_cents=b.total_cents,
                passengers=tuple(PassengerFacts(p.name, p.birth_date) for p in b.passengers),
                created_at=b.created_at,
            )
            for b in bookings
        ]

    def confirm_at_minimum(self, now: datetime, travelers: tuple[str, ...]) -> LaunchStatusChanged:
        """Confirm a launch whose bookings reached its minimum (`reached_minimum()`); `travelers` hold
        its active bookings."""
        previous = self.status
        self.status, self.confirmed_at, self.updated_at = Status.CONFIRMED, now, now
        return LaunchStatusChanged(self.facts(), previous, travelers, automatic=True)

    def _check_bookable(self, now: datetime) -> None:
        if self.status not in OPEN or now >= self.scheduled_at:
            raise Conflict(
                f"this launch takes no bookings ({self.status.value})",
                {"status": self.status.value},
                code="launch_not_bookable",
            )

    def _check_free(self, seats: int, now: datetime) -> None:
        free = max(self.seats_free(now), 0)
        if seats > free:
            raise Conflict(
                f"only {free} seat{'' if free == 1 else 's'} left",
                {"seats_available": free, "seats_requested": seats},
                code="sold_out",
            )

    # -- cancelling ------------------------------------------------------------------------------

    def cancel(self, booking: BookingRecord | None, traveler_id: str, now: datetime) -> BookingCancelled:
        """The traveler cancels: refunded by the policy; with no refund the seats count as sold."""
        if booking is None or booking.traveler_id != traveler_id or booking.launch_id != self.id:
            raise NotFound("no such booking")
        if booking.status != "confirmed":
            raise Conflict("this booking is already cancelled", code="already_cancelled")
        if self.status in FINAL:
            raise Conflict(
                f"the launch is {self.status.value}; its bookings cannot be cancelled",
                {"status": self.status.value},
                code="launch_finished",
            )
        delayed = self.last_delayed_at is not None and self.last_delayed_at > booking.created_at
        pct = cancellation_refund_pct(now=now, launch_at=self.scheduled_at, delayed_since_booking=delayed)
        release = pct > 0  # DESIGN 5: with no refund the seats count as sold
        if release:
            self.seats_booked -= booking.seats
        return BookingCancelled(
            launch=self.facts(),
            booking_id=booking.id,
            traveler_id=booking.traveler_id,
            seats=booking.seats,
            total_cents=booking.total_cents,
            refund_cents=percent_of(booking.total_cents, pct),
            refund_pct=pct,
            seats_released=release,
            reason="traveler",
            cancelled_at=now,
        )

    # -- status ----------------------------------------------------------------------------------

    def change_status(
        self,
        *,
        agency_id: str,
        target: Status,
        now: datetime,
        scheduled_at: datetime | None,
        reason: str | None,
        active: list[BookingRecord],
    ) -> list[DomainEvent]:
        """The agency moves the launch (DESIGN 5 table); `active` are its confirmed bookings. Aborted and
        failed launches refund every one in full; an ended launch is invoiced."""
        if agency_id != self.agency_id:
            raise NotFound("no such launch")
        check_transition(
            self.status, target, now=now, scheduled_at=self.scheduled_at, new_scheduled_at=scheduled_at
        )
        previous = self.status
        if target is Status.DELAYED and scheduled_at is not None:
            self.scheduled_at, self.last_delayed_at = scheduled_at, now
        if target is Status.CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = now
        self.status, self.status_reason, self.updated_at = target, reason, now
        if target in FINAL:
            self.holds.clear()
        refunded = target in REFUND_ALL
        facts = self.facts()
        cancelled = [
            BookingCancelled(
                launch=facts,
                booking_id=b.id,
                traveler_id=b.traveler_id,
                seats=b.seats,
                total_cents=b.total_cents,
                refund_cents=b.total_cents,
                refund_pct=100,
                seats_released=False,
                reason=f"launch_{target.value}",
                cancelled_at=now,
            )
            for b in (active if refunded else [])
        ]
        refunds: dict[str, int] = {}
        for c in cancelled:
            refunds[c.traveler_id] = refunds.get(c.traveler_id, 0) + c.refund_cents
        travelers = tuple(sorted({b.traveler_id for b in active}))
        events: list[DomainEvent] = [LaunchStatusChanged(facts, previous, travelers, refunds)]
        events += cancelled
        kind = invoice_kind_for(target)
        if kind is not None:
            events.append(InvoiceDue(self.id, self.agency_id, kind, now))
        return events


def schedule(
    *,
    launch_id: str,
    rocket: Rocket,
    mission: str,
    destination: Range,
    scheduled_at: datetime,
    price_cents: int,
    min_passengers: int,
    now: datetime,
    vip_window: timedelta,
    slug: str | None = None,
) -> tuple[Launch, LaunchScheduled]:
    """A new launch on an agency's rocket: in the future, within the rocket's range, its minimum within
    the rocket's capacity; VIP travelers alone see it during `vip_window`. It copies the rocket's capacity,
    so editing the rocket later changes no scheduled launch."""
    if scheduled_at <= now:
        raise RuleViolation(
            "scheduled_at must be in the future",
            {"fields": {"scheduled_at": "in the past"}},
            code="date_in_past",
        )
    check_destination(rocket.range, destination)
    if not 1 <= min_passengers <= rocket.capacity:  # a rule of this rocket, not of the field's shape
        raise RuleViolation(
            f"min_passengers must be from 1 to the rocket's capacity {rocket.capacity}",
            {"fields": {"min_passengers": f"1..{rocket.capacity}"}},
            code="over_capacity",
        )
    launch = Launch(
        id=launch_id,
        agency_id=rocket.agency_id,
        agency_name=rocket.agency_name,
        rocket_id=rocket.id,
        rocket_name=rocket.name,
        slug=slug or slugify(rocket.name, destination.value, scheduled_at),
        mission=mission,
        destination=destination.value,
        scheduled_at=scheduled_at,
        price_cents=price_cents,
        capacity=rocket.capacity,
        min_passengers=min_passengers,
        seats_booked=0,
        status=Status.SCHEDULED,
        status_reason=None,
        public_from=now + vip_window,
        last_delayed_at=None,
        confirmed_at=None,
        created_at=now,
        updated_at=now,
        agency_verified=rocket.agency_verified,
    )
    return launch, LaunchScheduled(launch.facts())
