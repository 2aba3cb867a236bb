"""An agency's fleet and its own launches: rockets, the launches it runs, their manifests, its report."""

from __future__ import annotations

from datetime import date
from typing import Any, Final, Protocol

from astro.domain.bookings import BookingView
from astro.domain.errors import NotFound
from astro.domain.invoices import ABORT_FEE_CENTS
from astro.domain.launch import Launch
from astro.domain.launches import Status

Row = dict[str, Any]
REPORT_SUMS: Final = ("total_cents", "refund_cents", "net_cents")
# The agency's notifications that tell what happened to its launches and bookings, by the live feed's kind.
ACTIVITY_KINDS: Final = {
    "launch_scheduled": "launch_added",
    **{f"launch_{s.value}": "status" for s in Status if s is not Status.SCHEDULED},
    "booking_confirmed": "booking",
    "booking_cancelled": "cancel",
}


class FleetStore(Protocol):
    """Rockets, and launches as their agency reads them."""

    async def rockets(self, agency_id: str, after: str | None, limit: int) -> list[Row]: ...
    async def rocket(self, agency_id: str, rocket_id: str) -> Row: ...
    async def create_rocket(self, agency_id: str, name: str, capacity: int, range_: str) -> Row: ...
    async def update_rocket(
        self, agency_id: str, rocket_id: str, name: str, capacity: int, range_: str
    ) -> Row: ...
    async def delete_rocket(self, agency_id: str, rocket_id: str) -> None: ...
    async def launch(self, launch_id: str) -> Launch: ...
    async def agency_launches(self, agency_id: str, after: str | None, limit: int) -> list[Launch]: ...


class BookingRecords(Protocol):
    """What the booking ledger answers about bookings made: an agency's manifests and report, a
    traveler's bookings (read by the booking handlers)."""

    async def manifest(self, launch_id: str) -> list[Row]: ...
    async def bookings_report(self, agency_id: str, start: date | None, end: date | None) -> list[Row]: ...
    async def agency_activity(self, agency_id: str, events: list[str], limit: int) -> list[Row]: ...
    async def traveler_bookings(
        self, traveler_id: str, after: str | None, limit: int
    ) -> list[BookingView]: ...
    async def traveler_booking(self, traveler_id: str, booking_id: str) -> BookingView: ...


class Fleet:
    """What an agency manages and reads of its own: another agency's rocket or launch is not found."""

    def __init__(self, store: FleetStore, bookings: BookingRecords) -> None:
        self._store = store
        self._bookings = bookings

    async def rockets(self, agency_id: str, after: str | None, limit: int) -> list[Row]:
        return await self._store.rockets(agency_id, after, limit)

    async def rocket(self, agency_id: str, rocket_id: str) -> Row:
        return await self._store.rocket(agency_id, rocket_id)

    async def add_rocket(self, agency_id: str, *, name: str, capacity: int, range_: str) -> Row:
        return await self._store.create_rocket(agency_id, name, capacity, range_)

    async def change_rocket(
        self, agency_id: str, rocket_id: str, *, name: str, capacity: int, range_: str
    ) -> Row:
        """Launches already scheduled on the rocket keep the capacity they were scheduled with."""
        return await self._store.update_rocket(agency_id, rocket_id, name, capacity, range_)

    async def remove_rocket(self, agency_id: str, rocket_id: str) -> None:
        """Only a rocket with no unfinished launch (409 rocket_in_use otherwise)."""
        await self._store.delete_rocket(agency_id, rocket_id)

    async def launches(self, agency_id: str, after: str | None, limit: int) -> list[Launch]:
        return await self._store.agency_launches(agency_id, after, limit)

    async def launch(self, agency_id: str, launch_id: str) -> Launch:
        """One of the agency's launches."""
        launch = await self._store.launch(launch_id)
        if launch.agency_id != agency_id:
            raise NotFound("no such launch")
        return launch

    async def manifest(self, agency_id: str, launch_id: str) -> Row:
        """Every booking of one of the agency's launches, with its passengers."""
        launch = await self.launch(agency_id, launch_id)
        items = await self._bookings.manifest(launch.id)
        active = [b for b in items if b["status"] == "confirmed"]
        return {
            "launch_id": launch.id,
            "seats_booked": launch.seats_booked,
            "items": items,
            # What ending it early costs (DESIGN 5): aborting or failing refunds every active booking in
            # full; aborting is invoiced a flat fee.
            "active_bookings": len(active),
            "refund_all_cents": sum(b["total_cents"] for b in active),
            "abort_fee_cents": ABORT_FEE_CENTS,
        }

    async def bookings_report(self, agency_id: str, start: date | None, end: date | None) -> Row:
        """Bookings of the agency's successful launches in [start, end), with their sums."""
        items = await self._bookings.bookings_report(agency_id, start, end)
        return {"items": items, **{name: sum(item[name] for item in items) for name in REPORT_SUMS}}

    async def activity(self, agency_id: str, limit: int) -> list[Row]:
        """What happened lately to the agency's launches and bookings, newest first (the durable record of
        its live feed): launches scheduled, status changes, bookings and cancellations."""
        rows = await self._bookings.agency_activity(agency_id, list(ACTIVITY_KINDS), limit)
        items = []
        for r in rows:
            data = r["data"]
            kind = ACTIVITY_KINDS[r["event"]]
            item: Row = {
                "id": r["id"],
                "at": r["created_at"],
                "kind": kind,
                "launch_id": data.get("launch_id"),
                "mission": data.get("mission"),
            }
            if kind == "status":
                item["status"] = r["event"].removeprefix("launch_")
                item["reason"] = data.get("reason") or None
            elif kind in ("booking", "cancel"):
                item |= {"booking_id": data.get("booking_id"), "seats": data.get("seats")}
                item["total_cents"] = r["total_cents"]
                if kind == "cancel":
                    item |= {
                        "refund_cents": r["refund_cents"],
                        "refund_pct": r["refund_pct"],
                        "seats_released": r["seats_released"],
                    }
            items.append(item)
        return items
