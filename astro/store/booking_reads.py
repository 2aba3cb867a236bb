"""Bookings as their travelers and agencies read them (PostgreSQL): a traveler's bookings, a launch's
manifest, an agency's bookings report."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Final

import asyncpg

from astro.domain.bookings import BookingView, Passenger
from astro.domain.errors import NotFound
from astro.domain.launches import Status
from astro.store.errors import unavailable_as

Row = dict[str, Any]
BOOKING_COLUMNS: Final = """b.id, b.launch_id, b.traveler_id, b.seats, b.price_cents, b.total_cents, b.status,
    b.cancel_reason, b.refund_pct, b.refund_cents, b.created_at, b.cancelled_at,
    l.slug AS launch_slug, l.mission, l.destination, l.scheduled_at, l.status AS launch_status,
    (l.last_delayed_at IS NOT NULL AND l.last_delayed_at > b.created_at) AS delayed_since_booking"""


def _view(row: asyncpg.Record, passengers: list[asyncpg.Record] | None = None) -> BookingView:
    return BookingView(
        id=row["id"],
        launch_id=row["launch_id"],
        traveler_id=row["traveler_id"],
        seats=row["seats"],
        price_cents=row["price_cents"],
        total_cents=row["total_cents"],
        status=row["status"],
        created_at=row["created_at"],
        launch_status=Status(row["launch_status"]),
        launch_slug=row["launch_slug"],
        mission=row["mission"],
        scheduled_at=row["scheduled_at"],
        delayed_since_booking=row["delayed_since_booking"],
        cancel_reason=row["cancel_reason"],
        refund_pct=row["refund_pct"],
        refund_cents=row["refund_cents"],
        cancelled_at=row["cancelled_at"],
        passengers=None
        if passengers is None
        else tuple(Passenger(p["name"], p["birth_date"]) for p in passengers),
    )


@unavailable_as("PostgreSQL")
class PgBookingReads:
    """The read models of bookings."""

    _pool: asyncpg.Pool

    async def traveler_bookings(self, traveler_id: str, after: str | None, limit: int) -> list[BookingView]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {BOOKING_COLUMNS} FROM bookings b JOIN launches l ON l.id = b.launch_id
                    WHERE b.traveler_id = $1 AND ($2::text IS NULL OR b.id < $2)
                    ORDER BY b.id DESC LIMIT $3""",
                traveler_id,
                after,
                limit,
            )
        return [_view(r) for r in rows]

    async def traveler_booking(self, traveler_id: str, booking_id: str) -> BookingView:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT {BOOKING_COLUMNS} FROM bookings b JOIN launches l ON l.id = b.launch_id
                    WHERE b.id = $1 AND b.traveler_id = $2""",
                booking_id,
                traveler_id,
            )
            if row is None:
                raise NotFound("no such booking")
            passengers = await conn.fetch(
                "SELECT name, birth_date FROM passengers WHERE booking_id = $1 ORDER BY position", booking_id
            )
        return _view(row, passengers)

    async def manifest(self, launch_id: str) -> list[Row]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT b.id, b.traveler_id, t.name AS traveler_name, t.email AS traveler_email, b.seats,
                          b.total_cents, b.status, b.refund_cents, b.created_at, b.cancelled_at,
                          COALESCE(json_agg(json_build_object('name', p.name, 'birth_date', p.birth_date)
                                   ORDER BY p.position) FILTER (WHERE p.booking_id IS NOT NULL), '[]')
                          AS passengers
                   FROM bookings b JOIN travelers t ON t.id = b.traveler_id
                   LEFT JOIN passengers p ON p.booking_id = b.id
                   WHERE b.launch_id = $1 GROUP BY b.id, t.id ORDER BY b.id""",
                launch_id,
            )
        return [dict(r.items()) for r in rows]

    async def agency_activity(self, agency_id: str, events: list[str], limit: int) -> list[Row]:
        """The agency's newest notifications of these events (what happened to its launches and bookings),
        each with its booking's amounts when it is about one."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT n.id, n.event, n.created_at, n.data, b.total_cents, b.refund_cents, b.refund_pct,
                          b.seats_released, b.cancel_reason
                   FROM notifications n LEFT JOIN bookings b ON b.id = n.data ->> 'booking_id'
                   WHERE n.recipient_id = $1 AND n.recipient_role = 'agency' AND n.event = ANY($2::text[])
                   ORDER BY n.id DESC LIMIT $3""",
                agency_id,
                events,
                limit,
            )
        out = []
        for r in rows:
            row = dict(r.items())
            if isinstance(row["data"], str):
                row["data"] = json.loads(row["data"])
            out.append(row)
        return out

    async def bookings_report(self, agency_id: str, start: date | None, end: date | None) -> list[Row]:
        """Bookings of the agency's successful launches in [start, end), with each traveler's tax data."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT b.id AS booking_id, l.id AS launch_id, l.mission, l.scheduled_at,
                          t.id AS traveler_id, t.name AS traveler_name, t.tax_id, t.address, t.contact_email,
                          b.seats, b.total_cents,
                          COALESCE(b.refund_cents, 0) AS refund_cents,
                          b.total_cents - COALESCE(b.refund_cents, 0) AS net_cents, b.status
                   FROM bookings b JOIN launches l ON l.id = b.launch_id
                   JOIN travelers t ON t.id = b.traveler_id
                   WHERE l.agency_id = $1 AND l.status = 'successful'
                     AND ($2::date IS NULL OR l.scheduled_at >= $2::date)
                     AND ($3::date IS NULL OR l.scheduled_at < $3::date)
                     AND b.total_cents - COALESCE(b.refund_cents, 0) > 0
                   ORDER BY l.scheduled_at, b.id""",
                agency_id,
                start,
                end,
            )
        return [dict(r.items()) for r in rows]
