"""What tickets and invoices are made of, read from PostgreSQL (the documents service's DocumentSource)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg

from astro.domain.errors import NotFound
from astro.services.documents import MoneyMove, Party, TicketFacts, TicketPassenger
from astro.store.errors import unavailable_as

TICKET: Final = """SELECT b.id, b.status, b.seats, b.price_cents, b.total_cents, b.created_at, b.cancelled_at,
           b.cancel_reason, b.refund_pct, b.refund_cents,
           l.mission, l.destination, l.scheduled_at, l.status AS launch_status, l.slug,
           r.name AS rocket, a.name AS agency, t.name AS traveler, t.email AS traveler_email
    FROM bookings b JOIN launches l ON l.id = b.launch_id JOIN rockets r ON r.id = l.rocket_id
    JOIN agencies a ON a.id = l.agency_id JOIN travelers t ON t.id = b.traveler_id
    WHERE b.id = $1 AND b.traveler_id = $2"""


@unavailable_as("PostgreSQL")
class PgDocumentSource:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ticket(self, traveler_id: str, booking_id: str) -> TicketFacts:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(TICKET, booking_id, traveler_id)
            if row is None:
                raise NotFound("no such booking")
            passengers = await conn.fetch(
                "SELECT name, birth_date FROM passengers WHERE booking_id = $1 ORDER BY position", booking_id
            )
            moves = await conn.fetch(
                """SELECT kind, amount_cents, status, created_at, updated_at FROM traveler_payments
                   WHERE booking_id = $1""",
                booking_id,
            )
        by_kind = {m["kind"]: MoneyMove(m["amount_cents"], m["status"], m["updated_at"]) for m in moves}
        return TicketFacts(
            booking_id=row["id"],
            status=row["status"],
            seats=row["seats"],
            price_cents=row["price_cents"],
            total_cents=row["total_cents"],
            booked_at=row["created_at"],
            cancelled_at=row["cancelled_at"],
            cancel_reason=row["cancel_reason"],
            refund_pct=row["refund_pct"],
            refund_cents=row["refund_cents"],
            mission=row["mission"],
            destination=row["destination"],
            scheduled_at=row["scheduled_at"],
            launch_status=row["launch_status"],
            launch_slug=row["slug"],
            rocket=row["rocket"],
            agency=row["agency"],
            traveler=row["traveler"],
            traveler_email=row["traveler_email"],
            passengers=tuple(TicketPassenger(p["name"], p["birth_date"]) for p in passengers),
            charge=by_kind.get("charge"),
            refund=by_kind.get("refund"),
        )

    async def invoice_parties(self, agency_id: str, launch_id: str) -> tuple[Party, datetime, str]:
        row = await self._pool.fetchrow(
            """SELECT a.name, a.legal_name, a.legal_address, a.tax_id,
                      COALESCE(a.contact_email, a.email) AS email, l.scheduled_at, l.destination
               FROM agencies a JOIN launches l ON l.agency_id = a.id WHERE a.id = $1 AND l.id = $2""",
            agency_id,
            launch_id,
        )
        if row is None:
            raise NotFound("no such invoice")
        party = Party(row["name"], row["legal_name"], row["legal_address"], row["tax_id"], row["email"])
        return party, row["scheduled_at"], row["destination"]
