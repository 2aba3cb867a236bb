"""Reconciliation's reads in PostgreSQL: the payment attempts of a period with their bookings, charges and
refunds, and the period's totals."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import asyncpg

from astro.domain.payments import AttemptState
from astro.domain.reconciliation import AttemptSide, BookingSide, Totals
from astro.store.attempts import attempt_of_row
from astro.store.errors import unavailable_as

# Each attempt with the booking it paid for (booking_id is unique among attempts), that booking's charge
# record and its refund records (paid: done; anything else is still owed). Ages by the database's clock,
# which also stamps the refund records.
ATTEMPTS: Final = """
SELECT a.id, a.booking_id, a.traveler_id, a.launch_id, a.seats, a.amount_cents, a.state, a.gateway_ref,
       a.deadline, a.created_at, a.error,
       b.id AS b_id, b.status AS b_status, b.total_cents AS b_total, COALESCE(b.refund_cents, 0) AS b_due,
       c.amount_cents AS charge_cents,
       COALESCE(r.paid, 0)::bigint AS refunds_paid, COALESCE(r.pending, 0)::bigint AS refunds_pending,
       r.pending_age
FROM payment_attempts a
LEFT JOIN bookings b ON b.id = a.booking_id
LEFT JOIN traveler_payments c ON c.booking_id = b.id AND c.kind = 'charge'
LEFT JOIN LATERAL (
    SELECT sum(t.amount_cents) FILTER (WHERE t.status = 'done') AS paid,
           sum(t.amount_cents) FILTER (WHERE t.status <> 'done') AS pending,
           now() - min(t.created_at) FILTER (WHERE t.status <> 'done') AS pending_age
    FROM traveler_payments t WHERE t.booking_id = b.id AND t.kind = 'refund') r ON true
WHERE a.created_at >= $1 AND a.created_at < $2
  AND ($3::timestamptz IS NULL OR (a.created_at, a.id) > ($3::timestamptz, $4::text))
ORDER BY a.created_at, a.id
LIMIT $5
"""
# Per state: how many attempts, what they captured, their bookings' totals, refunds due and paid.
TOTALS: Final = """
SELECT a.state, count(*) AS n,
       COALESCE(sum(a.amount_cents) FILTER (WHERE a.state = 'captured'), 0)::bigint AS captured,
       COALESCE(sum(b.total_cents), 0)::bigint AS booked,
       COALESCE(sum(b.refund_cents), 0)::bigint AS due,
       COALESCE(sum(r.paid), 0)::bigint AS refunded
FROM payment_attempts a
LEFT JOIN bookings b ON b.id = a.booking_id
LEFT JOIN LATERAL (
    SELECT sum(t.amount_cents) AS paid FROM traveler_payments t
    WHERE t.booking_id = b.id AND t.kind = 'refund' AND t.status = 'done') r ON true
WHERE a.created_at >= $1 AND a.created_at < $2
GROUP BY a.state
"""


def _side(row: asyncpg.Record) -> AttemptSide:
    attempt = attempt_of_row(row)
    if row["b_id"] is None:
        return AttemptSide(attempt, None)
    booking = BookingSide(
        id=row["b_id"],
        status=row["b_status"],
        total_cents=row["b_total"],
        refund_due_cents=row["b_due"],
        charge_cents=row["charge_cents"],
        refunds_paid_cents=row["refunds_paid"],
        refunds_pending_cents=row["refunds_pending"],
        oldest_pending_refund_age=row["pending_age"],
    )
    return AttemptSide(attempt, booking)


@unavailable_as("PostgreSQL")
class PgReconciliation:
    """The ReconciliationStore port (astro/services/reconciliation.py)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def attempts(
        self, start: datetime, end: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[AttemptSide]:
        at, attempt_id = after if after is not None else (None, None)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(ATTEMPTS, start, end, at, attempt_id, limit)
        return [_side(r) for r in rows]

    async def totals(self, start: datetime, end: datetime) -> tuple[Totals, dict[AttemptState, int]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(TOTALS, start, end)
        totals = Totals(
            captured_cents=sum(r["captured"] for r in rows),
            refunded_cents=sum(r["refunded"] for r in rows),
            booked_cents=sum(r["booked"] for r in rows),
            refunds_due_cents=sum(r["due"] for r in rows),
        )
        return totals, {AttemptState(r["state"]): r["n"] for r in rows}
