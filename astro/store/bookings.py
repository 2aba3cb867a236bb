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
from astro.domain.ids import new_id
from astro.store import outbox
from astro.store.invoices import KIND_BY_STATUS, issue_invoice
from astro.store.launches import fetch_launch
from astro.store.postgres import write_tx

Row = dict[str, Any]
# The tables whose inserts commit_bookings writes to the change log itself (migration 006).
RECORDED: Final = ("bookings", "passengers", "traveler_payments")
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
        """One transaction: a batch's accepted bookings, their passengers, charges and notifications."""
        # One statement per table whatever the batch's size; each row's change is recorded by the same
        # statement, with the origin of the request that made its booking.
        fallback = origin.current()
        origins = [json.dumps((b.origin or fallback).as_dict()) for b in bookings]
        ids = [b.id for b in bookings]
        seated = [(b, i, p) for b in bookings for i, p in enumerate(b.passengers)]
        async with write_tx(self._pool, recorded=RECORDED) as conn:
            await conn.execute(
                """WITH o AS (SELECT * FROM unnest($8::text[], $9::text[]) AS o(id, origin)),
                        ins AS (
                            INSERT INTO bookings
                                (id, launch_id, traveler_id, seats, price_cents, total_cents, created_at)
                            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[],
                                                 $5::bigint[], $6::bigint[], $7::timestamptz[])
                            RETURNING *)
                   INSERT INTO changes (entity, entity_id, op, fields, origin)
                   SELECT 'bookings', ins.id, 'insert', to_jsonb(ins), o.origin::jsonb
                   FROM ins JOIN o ON o.id = ins.id ORDER BY ins.id""",
                ids,
                [b.launch_id for b in bookings],
                [b.traveler_id for b in bookings],
                [b.seats for b in bookings],
                [b.price_cents for b in bookings],
                [b.total_cents for b in bookings],
                [b.created_at for b in bookings],
                ids,
                origins,
            )
            await conn.execute(
                """WITH o AS (SELECT * FROM unnest($5::text[], $6::text[]) AS o(id, origin)),
                        ins AS (
                            INSERT INTO passengers (booking_id, position, name, birth_date)
                            SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::date[])
                            RETURNING *)
                   INSERT INTO changes (entity, entity_id, op, fields, origin)
                   SELECT 'passengers', ins.booking_id, 'insert', to_jsonb(ins), o.origin::jsonb
                   FROM ins JOIN o ON o.id = ins.booking_id ORDER BY ins.booking_id, ins.position""",
                [b.id for b, _, _ in seated],
                [i for _, i, _ in seated],
                [p.name for _, _, p in seated],
                [p.birth_date for _, _, p in seated],
                ids,
                origins,
            )
            await conn.execute(
                """WITH o AS (SELECT * FROM unnest($5::text[], $6::text[]) AS o(id, origin)),
                        ins AS (
                            INSERT INTO traveler_payments
                                (id, booking_id, kind, amount_cents, status, gateway_ref)
                            SELECT p.id, p.booking_id, 'charge', p.amount, 'done', p.ref
                            FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
                                 AS p(id, booking_id, amount, ref)
                            RETURNING *)
                   INSERT INTO changes (entity, entity_id, op, fields, origin)
                   SELECT 'traveler_payments', ins.id, 'insert', to_jsonb(ins), o.origin::jsonb
                   FROM ins JOIN o ON o.id = ins.booking_id ORDER BY ins.booking_id""",
                [new_id("pay") for _ in bookings],
                ids,
                [b.total_cents for b in bookings],
                [b.charge_ref for b in bookings],
                ids,
                origins,
            )
            await conn.execute(
                """UPDATE launches SET seats_booked = $2, updated_at = now(),
                       status = CASE WHEN $3::timestamptz IS NULL THEN status ELSE 'confirmed' END,
                       confirmed_at = COALESCE($3::timestamptz, confirmed_at)
                   WHERE id = $1""",
                launch_id,
                seats_booked,
                confirmed_at,
            )
            mail = outbox.Outbox()
            shared = outbox.launch_data(launch)
            agency = await outbox.agency(conn, launch["agency_id"])
            travelers = {t.id: t for t in await outbox.travelers(conn, [b.traveler_id for b in bookings])}
            for b in bookings:
                data = {**shared, "booking_id": b.id, "seats": b.seats, "amount": outbox.money(b.total_cents)}
                mail.add("booking_confirmed", [travelers[b.traveler_id], *agency], data)
            if confirmed_at is not None:
                mail.add(
                    "launch_confirmed", agency + await outbox.travelers_booked_on(conn, launch_id), shared
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
            mail = outbox.Outbox()
            data = {
                **outbox.launch_data(launch),
                "booking_id": booking["id"],
                "seats": booking["seats"],
                "refund": outbox.money(refund_cents),
                "refund_pct": refund_pct,
            }
            recipients = await outbox.travelers(conn, [booking["traveler_id"]])
            mail.add("booking_cancelled", recipients + await outbox.agency(conn, launch["agency_id"]), data)
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
            agency = await outbox.agency(conn, launch["agency_id"])
            travelers = await outbox.travelers_booked_on(conn, launch_id)
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
            mail = outbox.Outbox()
            data = {**outbox.launch_data({**launch, "scheduled_at": scheduled_at}), "reason": reason or ""}
            mail.add(f"launch_{status}", agency, data)
            for traveler in travelers:
                refunded = sum(r.amount_cents for r in refunds if r.traveler_id == traveler.id)
                mail.add(f"launch_{status}", [traveler], {**data, "refund": outbox.money(refunded)})
            if status in KIND_BY_STATUS:  # the launch ended: its invoice, in this same transaction
                await issue_invoice(conn, launch_id, KIND_BY_STATUS[status], now, mail)
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
                               AND l.confirmed_at IS NOT NULL AND l.status NOT IN ('aborted', 'failed')
                             LIMIT 2) two) = 2
                   ORDER BY t.id""",
                launch_id,
                among,
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
