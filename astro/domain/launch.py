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
    OfferExpired,
    PassengerFacts,
    SeatsBooked,
    SeatsOffered,
    WaitingPosition,
    WaitlistClosed,
    WaitlistMoved,
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
from astro.domain.waitlist import AlreadyWaiting, Entry, NotWaiting, SeatsAvailable, Waitlist

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
    entry_id: str | None = None  # the waiting-list offer these seats come from, in part or whole


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
    # Its waiting list: entries in joining order, some holding offers of seats that came free.
    waitlist: Waitlist = field(default_factory=Waitlist)
    # Seats on offer as a read of the launch's row counted them, its list not loaded (a catalogue read);
    # the launch's actor loads the list and counts its offers instead (0 here).
    seats_offered_read: int = 0

    # -- reading ---------------------------------------------------------------------------------

    @property
    def occupancy(self) -> Occupancy:
        return Occupancy(self.capacity, self.seats_booked, self.min_passengers, self.seats_on_offer())

    def seats_on_offer(self) -> int:
        """Every seat under a waiting-list offer, those its traveler is paying for right now included: the
        public count shows them taken (a hold let go gives them back to the offer, never to anyone else)."""
        return self.seats_offered_read + sum(e.seats for e in self.waitlist.offers())

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
            seats_offered=self.seats_on_offer(),
        )

    def seats_held(self, now: datetime) -> int:
        """Seats under unexpired holds (expired ones are let go)."""
        for hold_id in [h for h, hold in self.holds.items() if hold.expires_at <= now]:
            del self.holds[hold_id]
        return sum(h.seats for h in self.holds.values())

    def seats_offered(self, now: datetime) -> int:
        """Seats offered to travelers on the waiting list, less those their holds are booking now."""
        self.seats_held(now)  # expired holds let go first: their offered seats are offered again
        return sum(e.seats - (e.from_offer if e.hold_id in self.holds else 0) for e in self.waitlist.offers())

    def seats_free(self, now: datetime) -> int:
        """Capacity less sold, held and offered seats: sold + held + offered + free = capacity."""
        return self.capacity - self.seats_booked - self.seats_held(now) - self.seats_offered(now)

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
        self._check_open_to(vip, now)
        check_ages(list(passengers), self.scheduled_at.date())
        hold_id = hold_id or new_id("hld")
        offer = self._offer_of(traveler_id, now)
        from_offer = min(seats, offer.seats) if offer is not None else 0
        self._check_free(seats - from_offer, now)
        if offer is not None:  # the offered seats pass from the offer to the hold (back if it is let go)
            offer.hold_id, offer.from_offer = hold_id, from_offer
        entry_id = offer.id if offer is not None else None
        self.holds[hold_id] = Hold(traveler_id, seats, now + hold_for, entry_id)
        return SeatsHeld(hold_id, self.price_cents, self.price_cents * seats)

    def _offer_of(self, traveler_id: str, now: datetime) -> Entry | None:
        """The traveler's offer, when they hold one no live hold of theirs is booking already."""
        entry = self.waitlist.of(traveler_id)
        if entry is None or not entry.offered:
            return None
        self.seats_held(now)
        return None if entry.hold_id in self.holds else entry

    def release(self, hold_id: str) -> None:
        """The traveler will not pay: the held seats are free again (offered again, when an offer's)."""
        hold = self.holds.pop(hold_id, None)
        entry = self.waitlist.get(hold.entry_id) if hold is not None and hold.entry_id else None
        if entry is not None and entry.hold_id == hold_id:
            entry.hold_id, entry.from_offer = None, 0

    def confirm_hold(self, hold_id: str, booking: NewBooking, now: datetime) -> Entry | None:
        """The held seats are sold to the booking (committed with the others accepted with it, then told
        by `sold`). Without its hold (expired, the launch reloaded, or a hold for other seats), the seats
        are taken again only if the launch still takes bookings and they are free -- or offered to its
        traveler. The waiting-list entry whose offer the booking uses is returned: it leaves the list
        (what the offer held beyond the booking's seats is free again)."""
        hold = self.holds.pop(hold_id, None)
        entry = self.waitlist.get(hold.entry_id) if hold is not None and hold.entry_id else None
        if (
            hold is None
            or hold.expires_at <= now
            or (hold.traveler_id, hold.seats) != (booking.traveler_id, booking.seats)
            or (entry is not None and entry.hold_id != hold_id)
        ):
            if entry is not None and entry.hold_id == hold_id:
                entry.hold_id, entry.from_offer = None, 0
            self._check_bookable(now)
            entry = self._offer_of(booking.traveler_id, now)
            self._check_free(booking.seats - (min(booking.seats, entry.seats) if entry else 0), now)
        if entry is not None:
            self.waitlist.remove(entry)
        self.seats_booked += booking.seats
        return entry

    def withdraw(self, booking: NewBooking, entry: Entry | None = None) -> None:
        """A booking confirmed in memory whose payment was released before it committed: its seats are
        free again (nothing of it was stored), and the offer it would have used is the traveler's again."""
        self.seats_booked -= booking.seats
        if entry is not None:
            entry.hold_id, entry.from_offer = None, 0
            self.waitlist.restore(entry)

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

    def _check_open_to(self, vip: bool, now: datetime) -> None:
        """This traveler may book (or wait for) this launch now: its agency verified, the launch bookable,
        and past its VIP window unless the traveler is VIP."""
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

    # -- waiting list ----------------------------------------------------------------------------

    def join_waitlist(
        self, *, entry_id: str, traveler_id: str, seats: int, vip: bool, now: datetime
    ) -> Entry:
        """Put a party on the waiting list, last: only when the launch is sold out for it (its seats are
        not free: sold, held or offered) and it would take the booking otherwise."""
        check_seats(seats, seats, vip)
        self._check_open_to(vip, now)
        existing = self.waitlist.of(traveler_id)
        if existing is not None:
            raise AlreadyWaiting(existing.id)
        free = max(self.seats_free(now), 0)
        if seats <= free:
            raise SeatsAvailable(free, seats)
        # Joining order is the order the actor took the joins in: stored times follow it strictly, so the
        # list reads back in the same order (two requests' clocks may disagree with their arrival).
        last = self.waitlist.entries[-1].joined_at if self.waitlist.entries else None
        joined_at = now if last is None or now > last else last + timedelta(microseconds=1)
        entry = Entry(entry_id, traveler_id, seats, joined_at)
        self.waitlist.entries.append(entry)
        return entry

    def leave_waitlist(self, traveler_id: str) -> Entry:
        """The traveler leaves the list; an offer they held is free for the next entries."""
        entry = self.waitlist.of(traveler_id)
        if entry is None:
            raise NotWaiting()
        self.waitlist.remove(entry)
        return entry

    def make_offers(self, now: datetime, offer_for: timedelta) -> list[SeatsOffered]:
        """Offer the free seats to the first waiting entries whose party fits, in joining order, each
        until `now + offer_for`. Nothing is offered once the launch takes no bookings."""
        if self.status not in OPEN or now >= self.scheduled_at or not self.agency_verified:
            return []
        chosen = self.waitlist.fitting(max(self.seats_free(now), 0))
        if not chosen:
            return []
        deadline = min(now + offer_for, self.scheduled_at)
        for entry in chosen:
            entry.offer_expires_at = deadline
        facts = self.facts()  # the launch with these offers made: their seats are taken
        return [SeatsOffered(facts, e.id, e.traveler_id, e.seats, deadline) for e in chosen]

    def expire_offer(self, entry_id: str, now: datetime) -> OfferExpired | None:
        """An offer past its deadline leaves the list (its seats are free for the next entries); None when
        it is not due, or gone, or its traveler is paying for it right now (it expires after that hold)."""
        entry = self.waitlist.get(entry_id)
        if entry is None or entry.offer_expires_at is None or entry.offer_expires_at > now:
            return None
        self.seats_held(now)
        if entry.hold_id in self.holds:
            return None
        self.waitlist.remove(entry)
        return OfferExpired(self.facts(), entry.id, entry.traveler_id, entry.seats)

    def offers_due(self, now: datetime) -> list[str]:
        """The offers whose deadline has passed."""
        return [e.id for e in self.waitlist.offers() if e.offer_expires_at and e.offer_expires_at <= now]

    def waitlist_positions(self) -> dict[str, WaitingPosition]:
        return self.waitlist.positions()

    def waitlist_moved(
        self, before: dict[str, WaitingPosition], now: datetime, gone: dict[str, str] | None = None
    ) -> WaitlistMoved:
        """The list as it stands against `before`: the entries whose place changed (those gone with the
        status `gone` names for them), and the demand."""
        after = self.waitlist.positions()
        moved = [p for k, p in after.items() if before.get(k) != p]
        moved += [
            WaitingPosition(k, p.traveler_id, (gone or {}).get(k, "left"), None)
            for k, p in before.items()
            if k not in after
        ]
        waiting = self.waitlist.waiting()
        return WaitlistMoved(
            self.facts(),
            tuple(moved),
            len(waiting),
            sum(e.seats for e in waiting),
            self.seats_offered(now),
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
        closed: list[Entry] = []
        if target in FINAL:
            self.holds.clear()
            closed = self.waitlist.close()
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
        if closed:
            events.append(WaitlistClosed(facts, tuple(e.traveler_id for e in closed)))
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
