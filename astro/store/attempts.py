"""Payment attempts in PostgreSQL: written before money moves, moved only by conditional updates."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import asyncpg

from astro.domain.payments import OPEN, Attempt, AttemptState, RowBusy, may_move
from astro.store.errors import unavailable_as

COLUMNS: Final = """id, booking_id, traveler_id, launch_id, seats, amount_cents, state, gateway_ref, deadline,
    created_at, error"""


def attempt_of_row(row: asyncpg.Record) -> Attempt:
    """An attempt from a row holding COLUMNS (also read by the reconciliation adapter)."""
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

    async def open_many(self, opened: list[tuple[Attempt, tuple[str, str] | None]]) -> list[None]:
        """Attempts written before their cards are touched, in one statement (one commit for all); each
        tied to its request's Idempotency-Key (user, key) when it has one, so a retry after a crash
        learns its outcome. No change-log trigger runs on payment attempts: no origin to state."""
        rows = [
            {
                "id": a.id,
                "booking_id": a.booking_id,
                "traveler_id": a.traveler_id,
                "launch_id": a.launch_id,
                "seats": a.seats,
                "amount_cents": a.amount_cents,
                "state": a.state.value,
                "deadline": a.deadline.isoformat(),
                "created_at": a.created_at.isoformat(),
                "user_id": key[0] if key else None,
                "key": key[1] if key else None,
            }
            for a, key in opened
        ]
        async with self._pool.acquire() as conn:
            await conn.execute(
                """WITH x AS (
                       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
                           id text, booking_id text, traveler_id text, launch_id text, seats integer,
                           amount_cents bigint, state text, deadline timestamptz, created_at timestamptz,
                           user_id text, key text)),
                   a AS (
                       INSERT INTO payment_attempts (id, booking_id, traveler_id, launch_id, seats,
                           amount_cents, state, deadline, created_at)
                       SELECT id, booking_id, traveler_id, launch_id, seats, amount_cents, state, deadline,
                              created_at FROM x
                       RETURNING id)
                   UPDATE idempotency_keys k SET attempt_id = x.id, updated_at = now()
                   FROM x JOIN a ON a.id = x.id
                   WHERE k.user_id = x.user_id AND k.key = x.key AND k.status = 'in_progress'""",
                rows,
            )
        return [None] * len(opened)

    async def open(self, attempt: Attempt, idempotency: tuple[str, str] | None) -> None:
        """open_many of one attempt."""
        await self.open_many([(attempt, idempotency)])

    async def authorized_many(self, refs: list[tuple[str, str]]) -> list[bool]:
        """created -> authorized for each (attempt id, gateway ref), in one statement; whether each moved
        (False: recovery decided about it first)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """UPDATE payment_attempts a SET state = 'authorized', gateway_ref = x.ref, updated_at = now()
                   FROM unnest($1::text[], $2::text[]) AS x(id, ref)
                   WHERE a.id = x.id AND a.state = 'created' RETURNING a.id""",
                [r[0] for r in refs],
                [r[1] for r in refs],
            )
        moved = {r["id"] for r in rows}
        return [attempt_id in moved for attempt_id, _ in refs]

    async def captured_many(self, attempt_ids: list[str]) -> list[bool]:
        """booked -> captured for each attempt, in one statement; whether each moved."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """UPDATE payment_attempts SET state = 'captured', claimed_by = NULL, claimed_at = NULL,
                       updated_at = now()
                   WHERE id = ANY($1::text[]) AND state = 'booked' RETURNING id""",
                attempt_ids,
            )
        moved = {r["id"] for r in rows}
        return [attempt_id in moved for attempt_id in attempt_ids]

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
        if not may_move(source, target):
            raise ValueError(f"a payment attempt cannot move from {source.value} to {target.value}")
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
        return attempt_of_row(row) if row is not None else None

    async def by_booking(self, booking_id: str) -> Attempt | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {COLUMNS} FROM payment_attempts WHERE booking_id = $1", booking_id
            )
        return attempt_of_row(row) if row is not None else None

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
        return [attempt_of_row(r) for r in rows]

    async def open_count(self) -> int:
        """Attempts not final yet (a gauge for operators)."""
        async with self._pool.acquire() as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM payment_attempts WHERE state = ANY($1::text[])",
                    sorted(OPEN),
                )
            )
