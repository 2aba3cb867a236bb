"""Invoices in PostgreSQL: issued in the launch's own transaction, numbered gaplessly, paid in parts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import asyncpg

from astro.domain import invoices as rules
from astro.domain.errors import Conflict, NotFound, RuleViolation
from astro.domain.ids import new_id
from astro.store import notices
from astro.store.postgres import write_tx

Row = dict[str, Any]
KIND_BY_STATUS: Final = {"successful": "commission", "aborted": "abort_fee"}
INVOICE_COLUMNS: Final = """i.id, i.number, i.year, i.agency_id, a.name AS agency_name, i.launch_id,
    l.mission, l.scheduled_at, i.kind, i.net_revenue_cents, i.rate_bp, i.amount_cents, i.paid_cents,
    i.pending_cents, i.amount_cents - i.paid_cents AS balance_cents, i.status, i.issued_at, i.due_at,
    CASE WHEN i.amount_cents > i.paid_cents AND i.due_at < $1 THEN 'overdue' ELSE i.status END
        AS shown_status"""
INVOICE_FROM: Final = "invoices i JOIN agencies a ON a.id = i.agency_id JOIN launches l ON l.id = i.launch_id"


async def issue_invoice(
    conn: asyncpg.Connection, launch_id: str, kind: str, now: datetime, mail: notices.NoticeRows | None = None
) -> Row:
    """Issue the launch's invoice inside the caller's transaction: the next number of the year, or none.

    A second invoice of one launch and kind violates a unique constraint, which rolls the whole
    transaction back, the number with it: numbers stay gapless."""
    launch = await conn.fetchrow(
        "SELECT agency_id, scheduled_at, mission FROM launches WHERE id = $1", launch_id
    )
    net, rate, amount = 0, 0, rules.ABORT_FEE_CENTS
    if kind == "commission":
        net = int(
            await conn.fetchval(
                """SELECT COALESCE(sum(total_cents - COALESCE(refund_cents, 0)), 0) FROM bookings
                   WHERE launch_id = $1""",
                launch_id,
            )
        )
        earlier = int(
            await conn.fetchval(
                """SELECT count(*) FROM launches WHERE agency_id = $1 AND status = 'successful' AND id <> $2
               AND scheduled_at < $3""",
                launch["agency_id"],
                launch_id,
                launch["scheduled_at"],
            )
        )
        rate = rules.commission_rate_bp(earlier)
        amount = rules.commission_cents(net, rate)
    seq = int(
        await conn.fetchval(
            """INSERT INTO invoice_counters (year, last) VALUES ($1, 1)
           ON CONFLICT (year) DO UPDATE SET last = invoice_counters.last + 1 RETURNING last""",
            now.year,
        )
    )
    invoice_id = new_id("inv")
    try:
        await conn.execute(
            """INSERT INTO invoices (id, number, year, seq, agency_id, launch_id, kind, net_revenue_cents,
                   rate_bp,
                   amount_cents, paid_cents, status, issued_at, due_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
            invoice_id,
            rules.invoice_number(now.year, seq),
            now.year,
            seq,
            launch["agency_id"],
            launch_id,
            kind,
            net,
            rate,
            amount,
            0,
            rules.stored_status(amount, 0),
            now,
            rules.due_date(now),
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("this launch already has its invoice", code="invoice_exists") from exc
    own = mail is None
    mail = mail or notices.NoticeRows()
    number = rules.invoice_number(now.year, seq)
    mail.add(
        "invoice_issued",
        await notices.agency(conn, launch["agency_id"]),
        {
            "invoice_id": invoice_id,
            "invoice_number": number,
            "mission": launch["mission"],
            "launch_id": launch_id,
            "kind": "commission" if kind == "commission" else "abort fee",
            "amount": notices.money(amount),
            "due_date": rules.due_date(now).date().isoformat(),
        },
    )
    if own:
        await mail.write(conn)
    return {
        "id": invoice_id,
        "number": rules.invoice_number(now.year, seq),
        "agency_id": launch["agency_id"],
        "launch_id": launch_id,
        "kind": kind,
        "amount_cents": amount,
    }


@dataclass(frozen=True, slots=True)
class Reservation:
    payment_id: str
    invoice: Row


class PgInvoices:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_for(self, launch_id: str, now: datetime) -> Row:
        """An invoice on demand for a finished launch that has none."""
        async with write_tx(self._pool) as conn:
            launch = await conn.fetchrow("SELECT status FROM launches WHERE id = $1 FOR UPDATE", launch_id)
            if launch is None:
                raise NotFound("no such launch")
            kind = KIND_BY_STATUS.get(launch["status"])
            if kind is None:
                raise Conflict(
                    f"a {launch['status']} launch is not invoiced; successful and aborted launches are",
                    {"status": launch["status"]},
                    code="launch_not_invoiceable",
                )
            if await conn.fetchval(
                "SELECT 1 FROM invoices WHERE launch_id = $1 AND kind = $2", launch_id, kind
            ):
                raise Conflict("this launch already has its invoice", code="invoice_exists")
            issued = await issue_invoice(conn, launch_id, kind, now)
        return await self.get(issued["id"], now)

    async def get(self, invoice_id: str, now: datetime, agency_id: str | None = None) -> Row:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT {INVOICE_COLUMNS} FROM {INVOICE_FROM}
                    WHERE i.id = $2 AND ($3::text IS NULL OR i.agency_id = $3)""",
                now,
                invoice_id,
                agency_id,
            )
            if row is None:
                raise NotFound("no such invoice")
            payments = await conn.fetch(
                """SELECT id, amount_cents, method, status, reference, gateway_ref, created_at, paid_at
                   FROM invoice_payments WHERE invoice_id = $1 ORDER BY created_at, id""",
                invoice_id,
            )
        return {**dict(row.items()), "payments": [dict(p.items()) for p in payments]}

    async def page(
        self,
        now: datetime,
        *,
        agency_id: str | None,
        status: str | None,
        year: int | None,
        after: str | None,
        limit: int,
    ) -> list[Row]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT * FROM (SELECT {INVOICE_COLUMNS} FROM {INVOICE_FROM}
                        WHERE ($2::text IS NULL OR i.agency_id = $2) AND ($3::int IS NULL OR i.year = $3)) x
                    WHERE ($4::text IS NULL OR shown_status = $4) AND ($5::text IS NULL OR number > $5)
                    ORDER BY number LIMIT $6""",
                now,
                agency_id,
                year,
                status,
                after,
                limit,
            )
        return [dict(r.items()) for r in rows]

    # -- payments ----------------------------------------------------------------------------------

    async def reserve(self, invoice_id: str, agency_id: str, amount_cents: int, user_id: str) -> Reservation:
        """Set aside part of the balance for a card payment under way, so two payments never overpay."""
        async with write_tx(self._pool) as conn:
            invoice = await self._lock(conn, invoice_id, agency_id)
            rules.check_payment(
                amount_cents, invoice["amount_cents"] - invoice["paid_cents"] - invoice["pending_cents"]
            )
            payment_id = new_id("ipy")
            await conn.execute(
                """INSERT INTO invoice_payments (id, invoice_id, amount_cents, method, status, recorded_by)
                   VALUES ($1, $2, $3, 'card', 'pending', $4)""",
                payment_id,
                invoice_id,
                amount_cents,
                user_id,
            )
            await conn.execute(
                "UPDATE invoices SET pending_cents = pending_cents + $2 WHERE id = $1",
                invoice_id,
                amount_cents,
            )
        return Reservation(payment_id, invoice)

    async def settle(self, payment_id: str, gateway_ref: str | None, now: datetime) -> None:
        """A card payment went through (gateway_ref) or was declined (None)."""
        async with write_tx(self._pool) as conn:
            payment = await conn.fetchrow(
                """SELECT invoice_id, amount_cents FROM invoice_payments
                   WHERE id = $1 AND status = 'pending' FOR UPDATE""",
                payment_id,
            )
            if payment is None:
                return
            if gateway_ref is None:
                await conn.execute(
                    "UPDATE invoice_payments SET status = 'declined' WHERE id = $1", payment_id
                )
                await conn.execute(
                    "UPDATE invoices SET pending_cents = pending_cents - $2 WHERE id = $1",
                    payment["invoice_id"],
                    payment["amount_cents"],
                )
                return
            await conn.execute(
                "UPDATE invoice_payments SET status = 'done', gateway_ref = $2, paid_at = $3 WHERE id = $1",
                payment_id,
                gateway_ref,
                now,
            )
            await self._credit(conn, payment["invoice_id"], payment["amount_cents"], from_pending=True)

    async def record_transfer(
        self, invoice_id: str, amount_cents: int, reference: str, user_id: str, now: datetime
    ) -> str:
        async with write_tx(self._pool) as conn:
            invoice = await self._lock(conn, invoice_id, None)
            rules.check_payment(
                amount_cents, invoice["amount_cents"] - invoice["paid_cents"] - invoice["pending_cents"]
            )
            payment_id = new_id("ipy")
            await conn.execute(
                """INSERT INTO invoice_payments (id, invoice_id, amount_cents, method, status, reference,
                       recorded_by, paid_at)
                   VALUES ($1, $2, $3, 'transfer', 'done', $4, $5, $6)""",
                payment_id,
                invoice_id,
                amount_cents,
                reference,
                user_id,
                now,
            )
            await self._credit(conn, invoice_id, amount_cents, from_pending=False)
        return payment_id

    async def _lock(self, conn: asyncpg.Connection, invoice_id: str, agency_id: str | None) -> Row:
        row = await conn.fetchrow(
            """SELECT amount_cents, paid_cents, pending_cents, agency_id, number FROM invoices
               WHERE id = $1 AND ($2::text IS NULL OR agency_id = $2) FOR UPDATE""",
            invoice_id,
            agency_id,
        )
        if row is None:
            raise NotFound("no such invoice")
        if row["paid_cents"] >= row["amount_cents"]:
            raise RuleViolation("this invoice is paid in full", {"balance_cents": 0}, code="overpayment")
        return dict(row.items())

    async def _credit(
        self, conn: asyncpg.Connection, invoice_id: str, amount_cents: int, *, from_pending: bool
    ) -> None:
        row = await conn.fetchrow(
            """UPDATE invoices SET paid_cents = paid_cents + $2, pending_cents = pending_cents - $3
               WHERE id = $1 RETURNING amount_cents, paid_cents, agency_id, number""",
            invoice_id,
            amount_cents,
            amount_cents if from_pending else 0,
        )
        await conn.execute(
            "UPDATE invoices SET status = $2 WHERE id = $1",
            invoice_id,
            rules.stored_status(row["amount_cents"], row["paid_cents"]),
        )
        mail = notices.NoticeRows()
        mail.add(
            "payment_received",
            await notices.agency(conn, row["agency_id"]),
            {
                "invoice_id": invoice_id,
                "invoice_number": row["number"],
                "amount": notices.money(amount_cents),
                "balance": notices.money(row["amount_cents"] - row["paid_cents"]),
            },
        )
        await mail.write(conn)

    # -- reports -----------------------------------------------------------------------------------

    async def agency_report(self, agency_id: str | None, start: date | None, end: date | None) -> list[Row]:
        """Per agency, for launches scheduled in [start, end): bookings, refunds, invoices and payments."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """WITH l AS (
                       SELECT id, agency_id FROM launches
                       WHERE ($1::text IS NULL OR agency_id = $1)
                         AND ($2::date IS NULL OR scheduled_at >= $2::date)
                         AND ($3::date IS NULL OR scheduled_at < $3::date)),
                   b AS (SELECT l.agency_id, sum(b.total_cents) AS gross,
                                sum(COALESCE(b.refund_cents, 0)) AS refunds
                         FROM bookings b JOIN l ON l.id = b.launch_id GROUP BY l.agency_id),
                   i AS (SELECT l.agency_id,
                                sum(i.amount_cents) FILTER (WHERE i.kind = 'commission') AS commission,
                                sum(i.amount_cents) FILTER (WHERE i.kind = 'abort_fee') AS abort_fees,
                                sum(i.paid_cents) AS paid, sum(i.amount_cents - i.paid_cents) AS outstanding
                         FROM invoices i JOIN l ON l.id = i.launch_id GROUP BY l.agency_id),
                   n AS (SELECT agency_id, count(*) AS launches FROM l GROUP BY agency_id)
                   SELECT a.id AS agency_id, a.name AS agency_name, COALESCE(n.launches, 0) AS launches,
                          COALESCE(b.gross, 0) AS gross_cents, COALESCE(b.refunds, 0) AS refund_cents,
                          COALESCE(b.gross, 0) - COALESCE(b.refunds, 0) AS net_cents,
                          COALESCE(i.commission, 0) AS commission_cents,
                          COALESCE(i.abort_fees, 0) AS abort_fee_cents,
                          COALESCE(i.paid, 0) AS paid_cents, COALESCE(i.outstanding, 0) AS outstanding_cents
                   FROM agencies a LEFT JOIN n ON n.agency_id = a.id LEFT JOIN b ON b.agency_id = a.id
                   LEFT JOIN i ON i.agency_id = a.id
                   WHERE ($1::text IS NULL OR a.id = $1)
                   ORDER BY a.name, a.id""",
                agency_id,
                start,
                end,
            )
        return [
            {
                k: int(v) if isinstance(v, int | float) and k.endswith(("_cents", "launches")) else v
                for k, v in r.items()
            }
            for r in rows
        ]

    async def annual(self, year: int) -> list[Row]:
        """Per month: actual revenue (payments received) and pending revenue (issued, still unpaid)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT m.month,
                          COALESCE((SELECT sum(p.amount_cents) FROM invoice_payments p
                                    WHERE p.status = 'done' AND extract(year FROM p.paid_at) = $1
                                      AND extract(month FROM p.paid_at) = m.month), 0) AS actual_cents,
                          COALESCE((SELECT sum(i.amount_cents - i.paid_cents) FROM invoices i
                                    WHERE extract(year FROM i.issued_at) = $1
                                      AND extract(month FROM i.issued_at) = m.month), 0) AS pending_cents
                   FROM generate_series(1, 12) AS m(month) ORDER BY m.month""",
                year,
            )
        return [
            {
                "month": int(r["month"]),
                "actual_cents": int(r["actual_cents"]),
                "pending_cents": int(r["pending_cents"]),
            }
            for r in rows
        ]
