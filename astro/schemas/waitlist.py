"""BookingAPI waiting-list models: joining with a party size, a traveler's entries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from astro.schemas.common import WHOLE, Request, Response

EntryStatus = Literal["waiting", "offered", "booked", "expired", "left", "closed"]


class WaitlistIn(Request):
    # Shaped like a booking's seats: a party beyond the seat limit (4, VIP 6) is 422 seat_limit, not 400.
    seats: Annotated[int, Field(ge=1, le=1000), WHOLE]


class WaitlistEntryOut(Response):
    id: str
    launch_id: str
    launch_slug: str
    mission: str
    scheduled_at: datetime
    launch_status: str
    price_cents: int
    seats: int
    status: EntryStatus
    position: int | None = Field(description="1 is next; null unless waiting")
    joined_at: datetime
    offer_expires_at: datetime | None = Field(description="while offered: book the seats before this")
    booking_id: str | None = None
    ended_at: datetime | None = None


class WaitlistEnvelope(Response):
    entry: WaitlistEntryOut


class WaitlistPage(Response):
    items: list[WaitlistEntryOut]
    next_cursor: str | None = None
