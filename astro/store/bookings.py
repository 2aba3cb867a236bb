"""Bookings in PostgreSQL: the launch actor's writes (group commit) and the read models."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import asyncpg

from astro import origin
from astro.domain.bookings import NewBooking
from astro.domain.errors import NotFound
from astro.domain.events import InvoiceDue
from astro.domain.ids import new_id
from astro.domain.invoices import invoice_kind_for
from astro.domain.launches import REFUND_ALL, Status
from astro.store import notices
from astro.store.invoices import issue_invoice
from astro.store.launches import fetch_launch
from astro.store.postgres import write_tx

Row = dict[str, Any]
# The tables whose inserts commit_bookings writes to the change log itself (migration 006).
RECORDED: Final = ("bookings", "passengers", "traveler_payments")
# A group commit in one statement: bookings, passengers and charges with a change row each (the
# booking's origin), the launch's seat count (its trigger records that change), and the booking
# e-mails to each traveler and the agency, addressed from their rows.
COMMIT_BOOKINGS: Final = f"""
WITH o AS (SELECT * FROM unnest($1::text[], $7::text[]) AS o(id, origin)),
b AS (
    INSERT INTO bookings (id, launch_id, traveler_id, seats, price_cents, total_cents, created_at)
    SELECT x.id, $14, x.traveler_id, x.seats, x.price, x.total, x.at
    FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::bigint[], $6::timestamptz[])
         AS x(id, traveler_id, seats, price, total, at)
    RETURNING *),
bc AS (
    INSERT INTO changes (entity, entity_id, op, fields, origin)
    SELECT 'bookings', b.id, 'insert', to_jsonb(b), o.origin::jsonb FROM b JOIN o ON o.id = b.id),
p AS (
    INSERT INTO passengers (booking_id, position, name, birth_date)
    SELECT * FROM unnest($8::text[], $9::integer[], $10::text[], $11::date[])
    RETURNING *),
pc AS (
    INSERT INTO changes (entity, entity_id, op, fields, origin)
    SELECT 'passengers', p.booking_id, 'insert', to_jsonb(p), o.origin::jsonb
    FROM p JOIN o ON o.id = p.booking_id),
t AS (
    INSERT INTO traveler_payments (id, booking_id, kind, amount_cents, status, gateway_ref)
    SELECT x.id, x.booking_id, 'charge', x.amount, 'done', x.ref
    FROM unnest($12::text[], $1::text[], $5::bigint[], $13::text[]) AS x(id, booking_id, amount, ref)
    RETURNING *),
tc AS (
    INSERT INTO changes (entity, entity_id, op, fields, origin)
    SELECT 'traveler_payments', t.id, 'insert', to_jsonb(t), o.origin::jsonb
    FROM t JOIN o ON o.id = t.booking_id),
l AS (
    UPDATE launches SET seats_booked = $15, updated_at = now(),
        status = CASE WHEN $16::timestamptz IS NULL THEN status ELSE 'confirmed' END,
        confirmed_at = COALESCE($16::timestamptz, confirmed_at)
    WHERE id = $14
    RETURNING id),
r AS (
    {notices.TRAVELERS} WHERE id = ANY($2::text[])
    UNION ALL
    {notices.AGENCIES} WHERE id = $17),
n AS (
    INSERT INTO notifications (id, event, recipient_id, recipient_role, recipient_email, data)
    SELECT x.id, 'booking_confirmed', x.recipient_id, x.role, r.email,
           x.data::jsonb || jsonb_build_object('name', r.name)
    FROM unnest($18::text[], $19::text[], $20::text[], $21::text[]) WITH ORDINALITY
         AS x(id, recipient_id, role, data, n)
    JOIN r ON r.id = x.recipient_id
    ORDER BY x.n)
SELECT count(*) FROM l
"""
BOOKING_COLUMNS: Final = """b.id, b.launch_id, b.traveler_id, b.seats, b.price_cents, b.total_cents, b.status,
    b.cancel_reason, b.refund_pct, b.refund_cents, b.created_at, b.cancelled_at,
    l.slug AS launch_slug, l.mission, l.destination, l.scheduled_at, l.status AS launch_status,
    (l.last_delayed_at IS NOT NULL AND l.last_delayed_at > b.created_at) AS delayed_since_booking"""


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund owed to a traveler, committed as pending and then paid through the gateway."""

    payment_id: str
    booking_id: str
    traveler_id: str
    amount_cents: int
    charge_ref: str


class PgLedger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # -- the launch actor's writes ---------------------------------------------------------------

    async def load(self, launch_id: str) -> Row:
        return await fetch_launch(self._pool, launch_id)

    async def commit_bookings(
        self,
        launch_id: str,
        seats_booked: int,
        confirmed_at: datetime | None,
        bookings: list[NewBooking],
        launch: Row,
    ) -> None:
        """One transaction: a batch's accepted bookings, their passengers, charges and notifications.

        All of it in one statement, whatever the batch's size (BEGIN, the origin, the statement, COMMIT:
        four round trips); each row's change is recorded by the same statement, with the origin of the
        request that made its booking, and the launch's row change by its trigger."""
        fallback = origin.current()
        ids = [b.id for b in bookings]
        seated = [(b, i, p) for b in bookings for i, p in enumerate(b.passengers)]
        shared = notices.launch_data(launch)
        agency_id = launch["agency_id"]
        mails = []  # (id, recipient, role, data) of each booking's confirmation to its traveler and agency
        for b in bookings:
            data = json.dumps(
                {**shared, "booking_id": b.id, "seats": b.seats, "amount": notices.money(b.total_cents)},
                default=str,
            )
            mails.append((new_id("ntf"), b.traveler_id, "traveler", data))
            mails.append((new_id("ntf"), agency_id, "agency", data))
        async with write_tx(self._pool, recorded=RECORDED) as conn:
            await conn.execute(
                COMMIT_BOOKINGS,
                ids,
                [b.traveler_id for b in bookings],
                [b.seats for b in bookings],
                [b.price_cents for b in bookings],
                [b.total_cents for b in bookings],
                [b.created_at for b in bookings],
                [json.dumps((b.origin or fallback).as_dict()) for b in bookings],
                [b.id for b, _, _ in seated],
                [i for _, i, _ in seated],
                [p.name for _, _, p in seated],
                [p.birth_date for _, _, p in seated],
                [new_id("pay") for _ in bookings],
                [b.charge_ref for b in bookings],
                launch_id,
                seats_booked,
                confirmed_at,
                agency_id,
                [m[0] for m in mails],
                [m[1] for m in mails],
                [m[2] for m in mails],
                [m[3] for m in mails],
            )
            if confirmed_at is not None:
                mail = notices.NoticeRows()
                agency = await notices.agency(conn, agency_id)
                mail.add(
                    "launch_confirmed", agency + await notices.travelers_booked_on(conn, launch_id), shared
                )
                await mail.write(conn)

    async def booking_for_cancel(self, booking_id: str) -> Row | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT b.id, b.launch_id, b.traveler_id, b.seats, b.total_cents, b.status, b.created_at,
                          p.gateway_ref AS charge_ref
                   FROM bookings b LEFT JOIN traveler_payments p ON p.booking_id = b.id AND p.kind = 'charge'
                   WHERE b.id = $1""",
                booking_id,
            )
        return dict(row.items()) if row is not None else None

    async def booking_exists(self, booking_id: str) -> bool:
        async with self._pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT 1 FROM bookings WHERE id = $1", booking_id))

    async def commit_cancel(
        self,
        *,
        launch_id: str,
        booking: Row,
        refund_pct: int,
        refund_cents: int,
        release_seats: bool,
        seats_booked: int,
        now: datetime,
        launch: Row,
    ) -> Refund | None:
        async with write_tx(self._pool) as conn:
            await conn.execute(
                """UPDATE bookings SET status = 'cancelled', cancel_reason = 'traveler', refund_pct = $2,
                       refund_cents = $3, seats_released = $4, cancelled_at = $5
                   WHERE id = $1 AND status = 'confirmed'""",
                booking["id"],
                refund_pct,
                refund_cents,
                release_seats,
                now,
            )
            await conn.execute(
                "UPDATE launches SET seats_booked = $2, updated_at = now() WHERE id = $1",
                launch_id,
                seats_booked,
            )
            mail = notices.NoticeRows()
            data = {
                **notices.launch_data(launch),
                "booking_id": booking["id"],
                "seats": booking["seats"],
                "refund": notices.money(refund_cents),
                "refund_pct": refund_pct,
            }
            recipients = await notices.travelers(conn, [booking["traveler_id"]])
            mail.add("booking_cancelled", recipients + await notices.agency(conn, launch["agency_id"]), data)
            await mail.write(conn)
            return await _owe_refund(conn, booking, refund_cents)

    async def commit_status(
        self,
        *,
        launch_id: str,
        status: str,
        scheduled_at: datetime,
        reason: str | None,
        now: datetime,
        delayed: bool,
        refund_all: bool,
        launch: Row,
    ) -> list[Refund]:
        """The new status, its notifications; aborted and failed launches refund every active booking."""
        async with write_tx(self._pool) as conn:
            agency = await notices.agency(conn, launch["agency_id"])
            travelers = await notices.travelers_booked_on(conn, launch_id)
            await conn.execute(
                """UPDATE launches SET status = $2, scheduled_at = $3, status_reason = $4, updated_at = now(),
                       last_delayed_at = CASE WHEN $5 THEN $6 ELSE last_delayed_at END,
                       confirmed_at = CASE WHEN $2 = 'confirmed' THEN COALESCE(confirmed_at, $6)
                                           ELSE confirmed_at END
                   WHERE id = $1""",
                launch_id,
                status,
                scheduled_at,
                reason,
                delayed,
                now,
            )
            refunds: list[Refund] = []
            if refund_all:
                refunds = await self._refund_everyone(conn, launch_id, status, now)
            mail = notices.NoticeRows()
            data = {**notices.launch_data({**launch, "scheduled_at": scheduled_at}), "reason": reason or ""}
            mail.add(f"launch_{status}", agency, data)
            for traveler in travelers:
                refunded = sum(r.amount_cents for r in refunds if r.traveler_id == traveler.id)
                mail.add(f"launch_{status}", [traveler], {**data, "refund": notices.money(refunded)})
            if kind := invoice_kind_for(Status(status)):  # the launch ended: its invoice, in this transaction
                await issue_invoice(conn, InvoiceDue(launch_id, launch["agency_id"], kind, now))
            await mail.write(conn)
            return refunds

    async def _refund_everyone(
        self, conn: asyncpg.Connection, launch_id: str, status: str, now: datetime
    ) -> list[Refund]:
        """Every active booking of an aborted or failed launch, cancelled with a full refund owed."""
        rows = await conn.fetch(
            """UPDATE bookings b SET status = 'cancelled', cancel_reason = $2, refund_pct = 100,
                   refund_cents = b.total_cents, cancelled_at = $3
               WHERE b.launch_id = $1 AND b.status = 'confirmed'
               RETURNING b.id, b.traveler_id, b.total_cents,
                   (SELECT gateway_ref FROM traveler_payments p
                    WHERE p.booking_id = b.id AND p.kind = 'charge')
                   AS charge_ref""",
            launch_id,
            f"launch_{status}",
            now,
        )
        return [
            r for r in [await _owe_refund(conn, dict(row.items()), row["total_cents"]) for row in rows] if r
        ]

    async def finish_refund(self, payment_id: str, gateway_ref: str | None, error: str | None) -> None:
        async with write_tx(self._pool) as conn:
            await conn.execute(
                """UPDATE traveler_payments SET status = $2, gateway_ref = $3, error = $4, updated_at = now()
                   WHERE id = $1""",
                payment_id,
                "done" if gateway_ref else "pending",
                gateway_ref,
                error,
            )

    async def pending_refunds(self) -> list[Refund]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT r.id, r.booking_id, b.traveler_id, r.amount_cents, c.gateway_ref AS charge_ref
                   FROM traveler_payments r JOIN bookings b ON b.id = r.booking_id
                   JOIN traveler_payments c ON c.booking_id = r.booking_id AND c.kind = 'charge'
                   WHERE r.kind = 'refund' AND r.status = 'pending' ORDER BY r.created_at"""
            )
        return [
            Refund(r["id"], r["booking_id"], r["traveler_id"], r["amount_cents"], r["charge_ref"])
            for r in rows
        ]

    async def travelers_on(self, launch_id: str) -> list[str]:
        """Travelers with an active booking on the launch."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT DISTINCT traveler_id FROM bookings WHERE launch_id = $1 AND status = 'confirmed'",
                launch_id,
            )
        return [r["traveler_id"] for r in rows]

    async def vip_candidates(self, launch_id: str, among: list[str] | None = None) -> list[str]:
        """Travelers on this launch (or just `among` them), not VIP yet, with active bookings on at least
        two launches that were confirmed. (`travelers.vip` is set last when promoting, so a promotion
        that stopped half-way is found again.)"""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT t.id AS traveler_id FROM travelers t
                   WHERE NOT t.vip
                     AND t.id IN (
                         SELECT traveler_id FROM bookings WHERE launch_id = $1 AND status = 'confirmed')
                     AND ($2::text[] IS NULL OR t.id = ANY($2::text[]))
                     AND (SELECT count(*) FROM (
                             SELECT DISTINCT b.launch_id FROM bookings b JOIN launches l ON l.id = b.launch_id
                             WHERE b.traveler_id = t.id AND b.status = 'confirmed'
                               AND l.confirmed_at IS NOT NULL AND l.status <> ALL($3::text[])
                             LIMIT 2) two) = 2
                   ORDER BY t.id""",
                launch_id,
                among,
                sorted(REFUND_ALL),
            )
        return [r["traveler_id"] for r in rows]

    # -- read models -----------------------------------------------------------------------------

    async def traveler_bookings(self, traveler_id: str, after: str | None, limit: int) -> list[Row]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {BOOKING_COLUMNS} FROM bookings b JOIN launches l ON l.id = b.launch_id
                    WHERE b.traveler_id = $1 AND ($2::text IS NULL OR b.id < $2)
                    ORDER BY b.id DESC LIMIT $3""",
                traveler_id,
                after,
                limit,
            )
        return [dict(r.items()) for r in rows]

    async def traveler_booking(self, traveler_id: str, booking_id: str) -> Row:
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
        return {**dict(row.items()), "passengers": [dict(p.items()) for p in passengers]}

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


async def _owe_refund(conn: asyncpg.Connection, booking: Row, amount_cents: int) -> Refund | None:
    if amount_cents <= 0:
        return None
    payment_id = new_id("pay")
    await conn.execute(
        """INSERT INTO traveler_payments (id, booking_id, kind, amount_cents, status)
           VALUES ($1, $2, 'refund', $3, 'pending')""",
        payment_id,
        booking["id"],
        amount_cents,
    )
    return Refund(
        payment_id, booking["id"], booking["traveler_id"], amount_cents, booking.get("charge_ref") or ""
    )
