"""The waiting lists' read port: what the BookingAPI and the agency views read of them (PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

Row = dict[str, Any]


class WaitlistReads(Protocol):
    async def traveler_entries(self, traveler_id: str, after: str | None, limit: int) -> list[Row]: ...
    async def entry(self, entry_id: str) -> Row | None: ...
    async def demand(self, launch_ids: list[str]) -> dict[str, Row]: ...
    async def launches_with_offers_due(self, now: datetime, limit: int = 100) -> list[str]: ...


def entry_json(row: Row) -> Row:
    """An entry as its traveler reads it; the offer's deadline only while it is offered or expired."""
    out = {
        k: row[k]
        for k in (
            "id",
            "launch_id",
            "launch_slug",
            "mission",
            "scheduled_at",
            "launch_status",
            "price_cents",
            "seats",
            "status",
            "position",
            "joined_at",
            "offer_expires_at",
            "booking_id",
            "ended_at",
        )
    }
    if row["status"] not in ("offered", "expired", "booked"):
        out["offer_expires_at"] = None
    return out


def no_demand(launch_id: str) -> Row:
    return {"launch_id": launch_id, "waitlist_length": 0, "waitlist_seats": 0, "seats_offered": 0}
