"""How a launch and a booking are shown: one rendering each, for REST answers and live events alike."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Protocol

from astro.domain.bookings import BookingView, Passenger
from astro.domain.events import SeatsBooked
from astro.domain.launches import Occupancy, Status


class CardSource(Protocol):
    """What a launch card is made of (a Launch, or the LaunchFacts an event carries)."""

    @property
    def id(self) -> str: ...
    @property
    def agency_id(self) -> str: ...
    @property
    def agency_name(self) -> str: ...
    @property
    def rocket_id(self) -> str: ...
    @property
    def rocket_name(self) -> str: ...
    @property
    def slug(self) -> str: ...
    @property
    def mission(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def scheduled_at(self) -> datetime: ...
    @property
    def price_cents(self) -> int: ...
    @property
    def status(self) -> Status: ...
    @property
    def status_reason(self) -> str | None: ...
    @property
    def public_from(self) -> datetime: ...
    @property
    def occupancy(self) -> Occupancy: ...
    @property
    def agency_verified(self) -> bool: ...


def launch_card(launch: CardSource) -> dict[str, Any]:
    """A launch as everyone may see it, JSON-ready (the cached form); `vip_only` is added when read."""
    return {
        "id": launch.id,
        "slug": launch.slug,
        "mission": launch.mission,
        "destination": str(launch.destination),
        "scheduled_at": launch.scheduled_at.isoformat(),
        "price_cents": launch.price_cents,
        "status": launch.status.value,
        "status_reason": launch.status_reason,
        "public_from": launch.public_from.isoformat(),
        "rocket": {"id": launch.rocket_id, "name": launch.rocket_name},
        "agency": {"id": launch.agency_id, "name": launch.agency_name},
        # Only on a launch whose agency IT has not verified yet (its card is then not public).
        **({} if launch.agency_verified else {"agency_verified": False}),
        **launch.occupancy.as_dict(),
    }


def with_visibility(card: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**card, "vip_only": now < datetime.fromisoformat(card["public_from"])}


def view_of_booked(event: SeatsBooked) -> BookingView:
    """A booking just committed, as its traveler sees it."""
    launch = event.launch
    return BookingView(
        id=event.booking_id,
        launch_id=launch.id,
        traveler_id=event.traveler_id,
        seats=event.seats,
        price_cents=event.price_cents,
        total_cents=event.total_cents,
        status="confirmed",
        created_at=event.created_at,
        launch_status=launch.status,
        launch_slug=launch.slug,
        mission=launch.mission,
        scheduled_at=launch.scheduled_at,
        passengers=tuple(Passenger(p.name, p.birth_date) for p in event.passengers),
    )


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def booking_json(view: BookingView, now: datetime) -> dict[str, Any]:
    """A booking, JSON-ready, with what cancelling it now would refund (None: it cannot be cancelled)."""
    return {
        "id": view.id,
        "launch_id": view.launch_id,
        "traveler_id": view.traveler_id,
        "seats": view.seats,
        "price_cents": view.price_cents,
        "total_cents": view.total_cents,
        "status": view.status,
        "created_at": view.created_at.isoformat(),
        "launch_status": view.launch_status.value,
        "launch_slug": view.launch_slug,
        "mission": view.mission,
        "scheduled_at": view.scheduled_at.isoformat(),
        "delayed_since_booking": view.delayed_since_booking,
        "cancel_reason": view.cancel_reason,
        "refund_pct": view.refund_pct,
        "refund_cents": view.refund_cents,
        "cancelled_at": _iso(view.cancelled_at),
        "passengers": None
        if view.passengers is None
        else [{"name": p.name, "birth_date": p.birth_date.isoformat()} for p in view.passengers],
        "refund_pct_if_cancelled_now": view.refund_pct_if_cancelled(now),
    }
