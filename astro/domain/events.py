"""Domain events: what happened, raised once by the rule that made it happen; immutable.

One place (`astro.services.announcements`) turns each event into its live WebSocket events and its
notification rows, so an event has one payload whatever caused it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from astro.domain.launches import Occupancy, Status


@dataclass(frozen=True, slots=True)
class LaunchFacts:
    """A launch as it stands right after the event that carries it."""

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
    seats_booked: int
    min_passengers: int
    status: Status
    status_reason: str | None
    public_from: datetime
    agency_verified: bool = True
    seats_offered: int = 0  # seats under waiting-list offers: taken for everyone but their travelers

    @property
    def occupancy(self) -> Occupancy:
        return Occupancy(self.capacity, self.seats_booked, self.min_passengers, self.seats_offered)


@dataclass(frozen=True, slots=True)
class PassengerFacts:
    name: str
    birth_date: date


@dataclass(frozen=True, slots=True)
class LaunchScheduled:
    """An agency scheduled a launch: VIPs hear of it first."""

    launch: LaunchFacts


@dataclass(frozen=True, slots=True)
class SeatsBooked:
    """A booking was committed: its seats are sold."""

    launch: LaunchFacts
    booking_id: str
    traveler_id: str
    seats: int
    price_cents: int
    total_cents: int
    passengers: tuple[PassengerFacts, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BookingCancelled:
    """A booking was cancelled, by its traveler or because its launch was aborted or failed."""

    launch: LaunchFacts
    booking_id: str
    traveler_id: str
    seats: int
    total_cents: int
    refund_cents: int
    refund_pct: int
    seats_released: bool
    reason: str  # traveler | launch_aborted | launch_failed
    cancelled_at: datetime

    @property
    def by_traveler(self) -> bool:
        return self.reason == "traveler"


@dataclass(frozen=True, slots=True)
class LaunchStatusChanged:
    """A launch moved to a new status (by its agency, or confirmed on reaching its minimum)."""

    launch: LaunchFacts
    previous: Status
    travelers: tuple[str, ...]  # with an active booking when it changed (before any refund)
    refunds: Mapping[str, int] = field(default_factory=dict)  # refund cents per traveler (aborted, failed)
    automatic: bool = False

    @property
    def status(self) -> Status:
        return self.launch.status


@dataclass(frozen=True, slots=True)
class InvoiceDue:
    """A launch ended in a way that is invoiced: its invoice is issued in the same transaction."""

    launch_id: str
    agency_id: str
    kind: str  # commission | abort_fee
    at: datetime


@dataclass(frozen=True, slots=True)
class InvoiceIssued:
    invoice_id: str
    number: str
    agency_id: str
    launch_id: str
    mission: str
    kind: str  # commission | abort_fee
    amount_cents: int
    due_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentReceived:
    invoice_id: str
    number: str
    agency_id: str
    amount_cents: int
    balance_cents: int


@dataclass(frozen=True, slots=True)
class SeatsOffered:
    """Seats that came free are offered to a traveler on the launch's waiting list until `expires_at`."""

    launch: LaunchFacts
    entry_id: str
    traveler_id: str
    seats: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OfferExpired:
    """A waiting-list offer was not used in time: its seats pass on."""

    launch: LaunchFacts
    entry_id: str
    traveler_id: str
    seats: int


@dataclass(frozen=True, slots=True)
class WaitlistClosed:
    """The launch ended (aborted, successful, failed): everyone still on its waiting list is told."""

    launch: LaunchFacts
    travelers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WaitingPosition:
    """Where one entry stands on the waiting list now (position 1 is next; None: it holds an offer or it
    left the list)."""

    entry_id: str
    traveler_id: str
    status: str
    position: int | None


@dataclass(frozen=True, slots=True)
class WaitlistMoved:
    """The waiting list changed: the entries whose position moved, and the demand the agency sees."""

    launch: LaunchFacts
    moved: tuple[WaitingPosition, ...]
    waiting: int  # entries waiting
    seats_wanted: int  # the seats they want
    seats_offered: int  # seats under offers not booked yet


DomainEvent = (
    LaunchScheduled
    | SeatsBooked
    | BookingCancelled
    | LaunchStatusChanged
    | InvoiceDue
    | InvoiceIssued
    | PaymentReceived
    | SeatsOffered
    | OfferExpired
    | WaitlistClosed
    | WaitlistMoved
)
