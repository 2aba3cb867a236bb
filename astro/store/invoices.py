"""Invoices in PostgreSQL: issued in the launch's own transaction, numbered gaplessly, paid in parts."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final

import asyncpg

from astro.domain import invoices as rules
from astro.domain.errors import Conflict, NotFound
from astro.domain.events import InvoiceDue, InvoiceIssued
from astro.domain.ids import new_id
from astro.domain.launches import Status
from astro.services.announcements import notices
from astro.services.finance import (
    SUMMED,
    AgencyFigures,
    InvoiceView,
    MonthFigures,
    PaymentLine,
    UninvoicedLaunch,
)
from astro.store.errors import unavailable_as
from astro.store.notices import write_notices
from astro.store.postgres import write_tx

INVOICE_COLUMNS: Final = """i.id, i.number, i.agency_id, a.name AS agency_name, i.launch_id, l.mission,
    i.kind, i.net_revenue_cents, i.rate_bp, i.amount_cents, i.paid_cents, i.pending_cents, i.status,
    i.issued_at, i.due_at"""
INVOICE_FROM: Final = "invoices i JOIN agencies a ON a.id = i.agency_id JOIN launches l ON l.id = i.launch_id"
# rules.shown_status in SQL, only to filter a page by status ($1 is now): the one copy of the overdue rule
# outside the domain; tests/integration/test_invoices_store.py pins that the two agree at its boundaries.
SHOWN_STATUS: Final = f"""CASE WHEN i.amount_cents - i.paid_cents > 0 AND $1::timestamptz > i.due_at
    THEN '{rules.OVERDUE}' ELSE i.status END"""


def _view(row: asyncpg.Record, now: datetime, payments: tuple[PaymentLine, ...] | None = None) -> InvoiceView:
    balance = row["amount_cents"] - row["paid_cents"]
    return InvoiceView(
        id=row["id"],
        number=row["number"],
        agency_id=row["agency_id"],
        agency_name=row["agency_name"],
        launch_id=row["launch_id"],
        mission=row["mission"],
        kind=row["kind"],
        net_revenue_cents=row["net_revenue_cents"],
        rate_bp=row["rate_bp"],
        amount_cents=row["amount_cents"],
        paid_cents=row["paid_cents"],
        pending_cents=row["pending_cents"],
        status=rules.shown_status(row["status"], row["due_at"], balance, now),
        issued_at=row["issued_at"],
        due_at=row["due_at"],
        payments=payments,
    )


async def _facts(conn: asyncpg.Connection, launch_id: str) -> rules.InvoiceFacts:
    """What a launch's invoice is computed from, in one round trip: its net revenue (bookings less
    refunds) and how many of the agency's launches scheduled before it were successful."""
    row = await conn.fetchrow(
        """SELECT l.agency_id, l.mission,
                  (SELECT COALESCE(sum(b.total_cents - COALESCE(b.refund_cents, 0)), 0) FROM bookings b
                   WHERE b.launch_id = l.id) AS net,
                  (SELECT count(*) FROM launches e
                   WHERE e.agency_id = l.agency_id AND e.status = $2 AND e.id <> l.id
                     AND e.scheduled_at < l.scheduled_at) AS earlier
           FROM launches l WHERE l.id = $1""",
        launch_id,
        rules.RELIABLE_STATUS,
    )
    if row is None:
        raise NotFound("no such launch")
    return rules.InvoiceFacts(
        launch_id, row["agency_id"], row["mission"], int(row["net"]), int(row["earlier"])
    )


async def issue_invoice(conn: asyncpg.Connection, due: InvoiceDue) -> InvoiceIssued:
    """Issue the launch's invoice inside the caller's transaction, with its notification rows.

    The number is the next of the year; a second invoice of one launch and kind violates a unique
    constraint (Conflict invoice_exists), which rolls the whole transaction back, the number with it:
    numbers stay gapless."""
    facts = await _facts(conn, due.launch_id)
    seq = await conn.fetchval(
        """INSERT INTO invoice_counters (year, last) VALUES ($1, 1)
           ON CONFLICT (year) DO UPDATE SET last = invoice_counters.last + 1 RETURNING last""",
        due.at.year,
    )
    invoice = rules.issue(due.kind, facts, invoice_id=new_id("inv"), seq=int(seq), now=due.at)
    try:
        await conn.execute(
            """INSERT INTO invoices (id, number, year, seq, agency_id, launch_id, kind, net_revenue_cents,
                   rate_bp, amount_cents, paid_cents, status, issued_at, due_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $13)""",
            invoice.id,
            invoice.number,
            invoice.year,
            invoice.seq,
            invoice.agency_id,
            invoice.launch_id,
            invoice.kind,
            invoice.net_revenue_cents,
            invoice.rate_bp,
            invoice.amount_cents,
            invoice.status,
            invoice.issued_at,
            invoice.due_at,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("this launch already has its invoice", code="invoice_exists") from exc
    issued = invoice.issued()
    await write_notices(conn, notices([issued]))
    return issued


@unavailable_as("PostgreSQL")
class PgInvoices:
    """Invoices and their payments in PostgreSQL (the finance service's InvoiceLedger)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_for(self, launch_id: str, now: datetime) -> InvoiceView:
        """An invoice on demand for a finished launch that has none."""
        async with write_tx(self._pool) as conn:
            launch = await conn.fetchrow(
                "SELECT agency_id, status FROM launches WHERE id = $1 FOR UPDATE", launch_id
            )
            if launch is None:
                raise NotFound("no such launch")
            kind = rules.invoice_kind_for(Status(launch["status"]))
            if kind is None:
                raise Conflict(
                    f"a {launch['status']} launch is not invoiced; successful and aborted launches are",
                    {"status": launch["status"]},
                    code="launch_not_invoiceable",
                )
            # Checked first so that a second request does not take (and give back) a number.
            if await conn.fetchval(
                "SELECT 1 FROM invoices WHERE launch_id = $1 AND kind = $2", launch_id, kind
            ):
                raise Conflict("this launch already has its invoice", code="invoice_exists")
            issued = await issue_invoice(conn, InvoiceDue(launch_id, launch["agency_id"], kind, now))
        return await self.get(issued.invoice_id, now)

    async def get(self, invoice_id: str, now: datetime, agency_id: str | None = None) -> InvoiceView:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT {INVOICE_COLUMNS} FROM {INVOICE_FROM}
                    WHERE i.id = $1 AND ($2::text IS NULL OR i.agency_id = $2)""",
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
        return _view(row, now, tuple(PaymentLine(**dict(p.items())) for p in payments))

    async def page(
        self,
        now: datetime,
        *,
        agency_id: str | None,
        status: str | None,
        year: int | None,
        after: str | None,
        limit: int,
    ) -> list[InvoiceView]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {INVOICE_COLUMNS} FROM {INVOICE_FROM}
                    WHERE ($2::text IS NULL OR i.agency_id = $2) AND ($3::int IS NULL OR i.year = $3)
                      AND ($4::text IS NULL OR {SHOWN_STATUS} = $4) AND ($5::text IS NULL OR i.number > $5)
                    ORDER BY i.number LIMIT $6""",
                now,
                agency_id,
                year,
                status,
                after,
                limit,
            )
        return [_view(r, now) for r in rows]

    async def uninvoiced(self, after: str | None, limit: int) -> list[UninvoicedLaunch]:
        kinds = {status.value: kind for status, kind in rules.KIND_BY_STATUS.items()}
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT l.id, l.mission, l.agency_id, a.name AS agency_name, l.status, l.scheduled_at
                   FROM launches l JOIN agencies a ON a.id = l.agency_id
                   WHERE l.status = ANY($1::text[]) AND ($2::text IS NULL OR l.id > $2)
                     AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.launch_id = l.id)
                   ORDER BY l.id LIMIT $3""",
                list(kinds),
                after,
                limit,
            )
        return [
            UninvoicedLaunch(
                launch_id=r["id"],
                mission=r["mission"],
                agency_id=r["agency_id"],
                agency_name=r["agency_name"],
                status=r["status"],
                kind=kinds[r["status"]],
                scheduled_at=r["scheduled_at"],
            )
            for r in rows
        ]

    # -- payments ----------------------------------------------------------------------------------

    async def reserve(self, invoice_id: str, agency_id: str, amount_cents: int, user_id: str) -> str:
        """Set aside part of the balance for a card payment under way, so two payments never overpay."""
        async with write_tx(self._pool) as conn:
            invoice = await self._lock(conn, invoice_id, agency_id)
            rules.check_payable(
                amount_cents, invoice["amount_cents"], invoice["paid_cents"], invoice["pending_cents"]
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
        return payment_id

    async def pending_card_payments(self, older_than: timedelta) -> list[str]:
        """Card payments still pending that were reserved more than `older_than` ago, oldest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT id FROM invoice_payments
                   WHERE method = 'card' AND status = 'pending' AND created_at < now() - $1::interval
                   ORDER BY created_at LIMIT 100""",
                older_than,
            )
        return [r["id"] for r in rows]

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
            rules.check_payable(
                amount_cents, invoice["amount_cents"], invoice["paid_cents"], invoice["pending_cents"]
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

    async def _lock(self, conn: asyncpg.Connection, invoice_id: str, agency_id: str | None) -> asyncpg.Record:
        row = await conn.fetchrow(
            """SELECT amount_cents, paid_cents, pending_cents, agency_id, number FROM invoices
               WHERE id = $1 AND ($2::text IS NULL OR agency_id = $2) FOR UPDATE""",
            invoice_id,
            agency_id,
        )
        if row is None:
            raise NotFound("no such invoice")
        return row

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
        credit = rules.credit(
            invoice_id=invoice_id,
            number=row["number"],
            agency_id=row["agency_id"],
            amount_cents=amount_cents,
            total_cents=row["amount_cents"],
            paid_cents=row["paid_cents"],
        )
        await conn.execute("UPDATE invoices SET status = $2 WHERE id = $1", invoice_id, credit.status)
        await write_notices(conn, notices([credit.received]))

    # -- reports -----------------------------------------------------------------------------------

    async def agency_report(
        self, agency_id: str | None, start: date | None, end: date | None
    ) -> list[AgencyFigures]:
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
        # sum() is numeric in PostgreSQL: whole cents all the same
        return [AgencyFigures(r["agency_id"], r["agency_name"], *(int(r[k]) for k in SUMMED)) for r in rows]

    async def annual(self, year: int) -> list[MonthFigures]:
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
        return [MonthFigures(int(r["month"]), int(r["actual_cents"]), int(r["pending_cents"])) for r in rows]
