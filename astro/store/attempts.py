"""Payment attempts in PostgreSQL: written before money moves, moved only by conditional updates."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import asyncpg

from astro.domain.payments import OPEN, Attempt, AttemptState, RowBusy
from astro.store.errors import unavailable_as
from astro.store.postgres import write_tx

COLUMNS: Final = """id, booking_id, traveler_id, launch_id, seats, amount_cents, state, gateway_ref, deadline,
    created_at, error"""


def _attempt(row: asyncpg.Record) -> Attempt:
    return Attempt(
        id=row["id"],
        booking_id=row["booking_id"],
        traveler_id=row["traveler_id"],
        launch_id=row["launch_id"],
        seats=row["seats"],
        amount_cents=row["amount_cents"],
        state=AttemptState(row["state"]),
        gateway_ref=row["gateway_ref"],
        deadline=row["deadline"],
        created_at=row["created_at"],
        error=row["error"],
    )


@unavailable_as("PostgreSQL")
class PgAttempts:
    """The PaymentAttempts port (actors/desk.py, actors/recovery.py)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def open(self, attempt: Attempt, idempotency: tuple[str, str] | None) -> None:
        """The attempt, written before the card is touched; tied to the request's Idempotency-Key (user,
        key) when it has one, so a retry after a crash learns this attempt's outcome."""
        async with write_tx(self._pool) as conn:
            await conn.execute(
                """INSERT INTO payment_attempts
                       (id, booking_id, traveler_id, launch_id, seats, amount_cents, state, deadline,
                        created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                attempt.id,
                attempt.booking_id,
                attempt.traveler_id,
                attempt.launch_id,
                attempt.seats,
                attempt.amount_cents,
                attempt.state.value,
                attempt.deadline,
                attempt.created_at,
            )
            if idempotency is not None:
                await conn.execute(
                    """UPDATE idempotency_keys SET attempt_id = $3, updated_at = now()
                       WHERE user_id = $1 AND key = $2 AND status = 'in_progress'""",
                    *idempotency,
                    attempt.id,
                )

    async def move(
        self,
        attempt_id: str,
        source: AttemptState,
        target: AttemptState,
        *,
        gateway_ref: str | None = None,
        error: str | None = None,
        wait: float | None = None,
    ) -> bool:
        """The conditional transition source -> target; False when the attempt is no longer in `source`
        (someone else decided first). With `wait`, RowBusy when another transaction holds the row longer."""
        async with self._pool.acquire() as conn, conn.transaction():
            if wait is not None:
                await conn.execute(f"SET LOCAL lock_timeout = '{int(wait * 1000)}ms'")
            try:
                moved = await self._move(conn, attempt_id, source, target, gateway_ref, error)
            except asyncpg.LockNotAvailableError:
                raise RowBusy(attempt_id) from None
        return moved

    @staticmethod
    async def _move(
        conn: asyncpg.Connection,
        attempt_id: str,
        source: AttemptState,
        target: AttemptState,
        gateway_ref: str | None,
        error: str | None,
    ) -> bool:
        moved = await conn.fetchval(
            """UPDATE payment_attempts
                   SET state = $3, gateway_ref = COALESCE($4, gateway_ref), error = COALESCE($5, error),
                       claimed_by = NULL, claimed_at = NULL, updated_at = now()
                   WHERE id = $1 AND state = $2 RETURNING 1""",
            attempt_id,
            source.value,
            target.value,
            gateway_ref,
            error,
        )
        return moved is not None

    async def get(self, attempt_id: str) -> Attempt | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {COLUMNS} FROM payment_attempts WHERE id = $1", attempt_id)
        return _attempt(row) if row is not None else None

    async def by_booking(self, booking_id: str) -> Attempt | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {COLUMNS} FROM payment_attempts WHERE booking_id = $1", booking_id
            )
        return _attempt(row) if row is not None else None

    async def claim_due(self, node: str, now: datetime, limit: int, lease: timedelta) -> list[Attempt]:
        """Open attempts past their deadline that no node is recovering now, claimed for `node` (any number
        of nodes may run recovery: SKIP LOCKED and the claim's lease keep them apart)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""UPDATE payment_attempts SET claimed_by = $1, claimed_at = $2
                    WHERE id IN (
                        SELECT id FROM payment_attempts
                        WHERE state = ANY($5::text[]) AND deadline <= $2
                          AND (claimed_at IS NULL OR claimed_at < $2 - $4::interval)
                        ORDER BY deadline LIMIT $3 FOR UPDATE SKIP LOCKED)
                    RETURNING {COLUMNS}""",
                node,
                now,
                limit,
                lease,
                sorted(OPEN),
            )
        return [_attempt(r) for r in rows]

    async def open_count(self) -> int:
        """Attempts not final yet (a gauge for operators)."""
        async with self._pool.acquire() as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM payment_attempts WHERE state = ANY($1::text[])",
                    sorted(OPEN),
                )
            )
