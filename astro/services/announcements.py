"""The one translation of each domain event into (a) its live WebSocket events and (b) its notification rows.

Whatever caused an event (a traveler, an agency, a launch reaching its minimum), it has one payload here.
Recipients of a notification are named symbolically; the store addresses them inside the transaction that
writes the change, so an e-mail goes to whoever the committed data says."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from astro.domain.events import (
    BookingCancelled,
    DomainEvent,
    InvoiceIssued,
    LaunchFacts,
    LaunchScheduled,
    LaunchStatusChanged,
    OfferExpired,
    PaymentReceived,
    SeatsBooked,
    SeatsOffered,
    WaitlistClosed,
    WaitlistMoved,
)
from astro.domain.launches import destination_phrase
from astro.services.live import (
    LAUNCHES,
    LAUNCHES_VIP,
    LiveEvent,
    agency_channel,
    launch_channel,
    launches_channels,
    traveler_channel,
)
from astro.services.views import booking_json, launch_card, view_of_booked

# -- notification rows ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToAgency:
    agency_id: str


@dataclass(frozen=True, slots=True)
class ToTraveler:
    traveler_id: str


@dataclass(frozen=True, slots=True)
class ToVipTravelers:
    """Every VIP traveler (the exclusive early notice of a new launch)."""


Recipients = ToAgency | ToTraveler | ToVipTravelers


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification for its recipients: an event name (its template) and the template's values."""

    event: str
    to: Recipients
    data: dict[str, Any]


def money(cents: int) -> str:
    """Cents as dollars for an e-mail: 123457 -> $1,234.57."""
    return f"${cents // 100:,}.{cents % 100:02d}"


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def launch_values(launch: LaunchFacts) -> dict[str, Any]:
    """The placeholders every launch event shares."""
    return {
        "launch_id": launch.id,
        "mission": launch.mission,
        "destination": destination_phrase(str(launch.destination)),
        "date": when(launch.scheduled_at),
        "link_path": f"/launches/{launch.slug}",
        "price": money(launch.price_cents),
        "seats_available": launch.occupancy.seats_available,
    }


def notices(events: Sequence[DomainEvent]) -> list[Notice]:
    """The notification rows of these events, in order."""
    out: list[Notice] = []
    shared: dict[int, dict[str, Any]] = {}  # the events of one batch share their launch's facts
    for event in events:
        out += _notices(event, shared)
    return out


def _launch(launch: LaunchFacts, shared: dict[int, dict[str, Any]]) -> dict[str, Any]:
    values = shared.get(id(launch))
    if values is None:
        values = shared[id(launch)] = launch_values(launch)
    return values


def _notices(event: DomainEvent, shared: dict[int, dict[str, Any]]) -> list[Notice]:
    if isinstance(event, SeatsBooked):
        data = {
            **_launch(event.launch, shared),
            "booking_id": event.booking_id,
            "seats": event.seats,
            "amount": money(event.total_cents),
        }
        # The traveler's copy links to the booking, where its e-ticket is; the agency's does not.
        ticket = {**data, "ticket_path": f"/traveler#bookings/{event.booking_id}"}
        return [
            Notice("booking_confirmed", ToTraveler(event.traveler_id), ticket),
            Notice("booking_confirmed", ToAgency(event.launch.agency_id), data),
        ]
    if isinstance(event, BookingCancelled):
        if not event.by_traveler:  # the launch's own e-mail (aborted, failed) tells of the refund
            return []
        data = {
            **launch_values(event.launch),
            "booking_id": event.booking_id,
            "seats": event.seats,
            "refund": money(event.refund_cents),
            "refund_pct": event.refund_pct,
        }
        return _to_traveler_and_agency("booking_cancelled", event.traveler_id, event.launch.agency_id, data)
    if isinstance(event, LaunchStatusChanged):
        name = f"launch_{event.status.value}"
        data = {**launch_values(event.launch), "reason": event.launch.status_reason or ""}
        out = [Notice(name, ToAgency(event.launch.agency_id), data)]
        for traveler in event.travelers:
            values = {**data, "refund": money(event.refunds.get(traveler, 0))}
            out.append(Notice(name, ToTraveler(traveler), values))
        return out
    if isinstance(event, LaunchScheduled):
        data = launch_values(event.launch)
        out = [Notice("launch_scheduled", ToAgency(event.launch.agency_id), data)]
        if event.launch.agency_verified:  # a pending agency's launch is announced when IT verifies it
            out.append(announcement(event.launch))
        return out
    if isinstance(event, InvoiceIssued):
        data = {
            "invoice_id": event.invoice_id,
            "invoice_number": event.number,
            "mission": event.mission,
            "launch_id": event.launch_id,
            "kind": "commission" if event.kind == "commission" else "abort fee",
            "amount": money(event.amount_cents),
            "due_date": event.due_at.date().isoformat(),
            "invoice_path": f"/agency#invoices/{event.invoice_id}",
        }
        return [Notice("invoice_issued", ToAgency(event.agency_id), data)]
    if isinstance(event, PaymentReceived):
        data = {
            "invoice_id": event.invoice_id,
            "invoice_number": event.number,
            "amount": money(event.amount_cents),
            "balance": money(event.balance_cents),
        }
        return [Notice("payment_received", ToAgency(event.agency_id), data)]
    if isinstance(event, SeatsOffered):
        data = {
            **launch_values(event.launch),
            "entry_id": event.entry_id,
            "seats": event.seats,
            "offer_until": event.expires_at.strftime("%H:%M UTC"),
            "offer_until_date": event.expires_at.strftime("%A %d %B %Y"),
            "offer_expires_at": event.expires_at.isoformat(),
            # The link opens the traveler's waiting list, where the offer's "Book now" is.
            "link_path": "/traveler#waitlist",
        }
        return [Notice("waitlist_offer", ToTraveler(event.traveler_id), data)]
    if isinstance(event, WaitlistClosed):
        data = {**launch_values(event.launch), "status_text": event.launch.status.value}
        return [Notice("waitlist_closed", ToTraveler(t), data) for t in event.travelers]
    # InvoiceDue: a step inside the transaction, told through the InvoiceIssued it makes; OfferExpired and
    # WaitlistMoved are told live only.
    return []


def announcement(launch: LaunchFacts) -> Notice:
    """The VIP travelers' early notice of a new launch."""
    return Notice("launch_scheduled", ToVipTravelers(), launch_values(launch))


def _to_traveler_and_agency(
    name: str, traveler_id: str, agency_id: str, data: dict[str, Any]
) -> list[Notice]:
    return [Notice(name, ToTraveler(traveler_id), data), Notice(name, ToAgency(agency_id), data)]


# -- live events ---------------------------------------------------------------------------------


def occupancy_events(launch: LaunchFacts, now: datetime) -> list[LiveEvent]:
    """The launch's seat counts on every channel that shows them; a newer value replaces an unsent one."""
    data = {"launch_id": launch.id, **launch.occupancy.as_dict()}
    key = f"occupancy:{launch.id}"
    channels = [launch_channel(launch.id), *launches_channels(launch.public_from, now)]
    channels.append(agency_channel(launch.agency_id))
    return [LiveEvent(c, "occupancy", data, key) for c in channels]


def live_events(events: Sequence[DomainEvent], now: datetime) -> list[LiveEvent]:
    """The live events of these events, in order; the seat counts once per launch, the newest, first."""
    seats: dict[str, LaunchFacts] = {}
    for event in events:
        # Seats sold, released, offered to the waiting list or no longer offered (an offer expired, left
        # or booked: the list then moves) change what is available.
        if isinstance(event, SeatsBooked | SeatsOffered | OfferExpired | WaitlistMoved) or (
            isinstance(event, BookingCancelled) and event.seats_released
        ):
            seats[event.launch.id] = event.launch
    out = [e for launch in seats.values() for e in occupancy_events(launch, now)]
    hidden: set[str] = set()  # launches of agencies IT has not verified: their agency alone sees them
    for event in events:
        out += _live(event, now)
        launch = getattr(event, "launch", None)
        if isinstance(launch, LaunchFacts) and not launch.agency_verified:
            hidden |= {LAUNCHES, LAUNCHES_VIP, launch_channel(launch.id)}
    return [e for e in out if e.channel not in hidden] if hidden else out


def _live(event: DomainEvent, now: datetime) -> list[LiveEvent]:
    if isinstance(event, SeatsBooked):
        data = booking_json(view_of_booked(event), now)
        return [
            LiveEvent(agency_channel(event.launch.agency_id), "booking_confirmed", data),
            LiveEvent(traveler_channel(event.traveler_id), "booking_confirmed", data),
        ]
    if isinstance(event, BookingCancelled):
        data = {
            "booking_id": event.booking_id,
            "launch_id": event.launch.id,
            "traveler_id": event.traveler_id,
            "seats": event.seats,
            "status": "cancelled",
            "cancel_reason": event.reason,
            "refund_cents": event.refund_cents,
            "refund_pct": event.refund_pct,
            "seats_released": event.seats_released,
            "cancelled_at": event.cancelled_at.isoformat(),
        }
        return [
            LiveEvent(agency_channel(event.launch.agency_id), "booking_cancelled", data),
            LiveEvent(traveler_channel(event.traveler_id), "booking_cancelled", data),
        ]
    if isinstance(event, LaunchStatusChanged):
        launch = event.launch
        data = {
            "launch_id": launch.id,
            "status": launch.status.value,
            "scheduled_at": launch.scheduled_at.isoformat(),
            "reason": launch.status_reason,
        }
        channels = [launch_channel(launch.id), *launches_channels(launch.public_from, now)]
        channels.append(agency_channel(launch.agency_id))
        channels += [traveler_channel(t) for t in event.travelers]
        return [LiveEvent(c, "status", data) for c in channels]
    if isinstance(event, SeatsOffered | OfferExpired | WaitlistMoved):
        return waitlist_events(event)
    if isinstance(event, LaunchScheduled):
        card = launch_card(event.launch)
        channels = [*launches_channels(event.launch.public_from, now), agency_channel(event.launch.agency_id)]
        return [LiveEvent(c, "launch_added", card) for c in channels]
    return []


def waitlist_events(event: SeatsOffered | OfferExpired | WaitlistMoved) -> list[LiveEvent]:
    """A traveler's offer (with its deadline), positions that moved (on each one's own channel), and the
    demand on the agency's channel."""
    launch = event.launch
    if isinstance(event, SeatsOffered):
        data = {
            "entry_id": event.entry_id,
            "launch_id": launch.id,
            "launch_slug": launch.slug,
            "mission": launch.mission,
            "seats": event.seats,
            "status": "offered",
            "position": None,
            "offer_expires_at": event.expires_at.isoformat(),
        }
        return [LiveEvent(traveler_channel(event.traveler_id), "waitlist_offer", data)]
    if isinstance(event, OfferExpired):
        data = {"entry_id": event.entry_id, "launch_id": launch.id, "seats": event.seats, "status": "expired"}
        return [LiveEvent(traveler_channel(event.traveler_id), "waitlist_expired", data)]
    out = [
        LiveEvent(
            traveler_channel(p.traveler_id),
            "waitlist_position",
            {"entry_id": p.entry_id, "launch_id": launch.id, "status": p.status, "position": p.position},
        )
        for p in event.moved
    ]
    demand = {
        "launch_id": launch.id,
        "waitlist_length": event.waiting,
        "waitlist_seats": event.seats_wanted,
        "seats_offered": event.seats_offered,
    }
    out.append(
        LiveEvent(agency_channel(launch.agency_id), "waitlist_demand", demand, f"waitlist:{launch.id}")
    )
    return out
