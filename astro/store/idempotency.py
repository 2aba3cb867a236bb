"""Idempotency records: the first answer to a keyed POST, kept 24 hours (DESIGN 6)."""

from __future__ import annotations

from typing import Final

import asyncpg

from astro.domain.errors import RuleViolation
from astro.services.idempotency import InFlight, InProgress, StoredResponse
from astro.store.errors import unavailable_as

KEEP_HOURS: Final = 24
# A key in progress with no payment attempt and no sign of life for this long belongs to a request that
# died (a crash between claiming the key and starting the payment): a retry takes it over.
STALE_SECONDS: Final = 30


@unavailable_as("PostgreSQL")
class PgIdempotency:
    """Idempotency records in PostgreSQL: an IdempotencyStore."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def begin(self, user_id: str, key: str, request_hash: str) -> StoredResponse | InFlight | None:
        """Claim the key (None: go ahead), the first response, or InFlight; refuse another body."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""WITH gone AS (
                        DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2
                        AND created_at < now() - interval '{KEEP_HOURS} hours'),
                    claimed AS (
                        INSERT INTO idempotency_keys (user_id, key, request_hash, status)
                        VALUES ($1, $2, $3, 'in_progress')
                        ON CONFLICT DO NOTHING RETURNING 1)
                    SELECT (SELECT count(*) FROM claimed) AS claimed, k.request_hash, k.status,
                           k.response_code, k.response_body, k.attempt_id,
                           k.updated_at < now() - interval '{STALE_SECONDS} seconds' AS stale
                    FROM (SELECT 1) one
                    LEFT JOIN idempotency_keys k ON k.user_id = $1 AND k.key = $2""",
                user_id,
                key,
                request_hash,
            )
            if row["claimed"]:
                return None
            if row["status"] is None:  # expired and deleted just now by a concurrent request
                raise InProgress()
            if row["request_hash"] != request_hash:
                raise RuleViolation(
                    "this Idempotency-Key was used with a different request", code="idempotency_mismatch"
                )
            if row["status"] == "done":
                return StoredResponse(row["response_code"], bytes(row["response_body"]))
            if row["attempt_id"] is None and row["stale"]:
                # Its request died before starting a payment: nothing to wait for, take it over.
                taken = await conn.fetchval(
                    f"""UPDATE idempotency_keys SET updated_at = now()
                        WHERE user_id = $1 AND key = $2 AND status = 'in_progress' AND attempt_id IS NULL
                          AND updated_at < now() - interval '{STALE_SECONDS} seconds'
                        RETURNING 1""",
                    user_id,
                    key,
                )
                if taken:
                    return None
            return InFlight(row["attempt_id"])

    async def restart(self, user_id: str, key: str, attempt_id: str) -> bool:
        async with self._pool.acquire() as conn:
            taken = await conn.fetchval(
                """UPDATE idempotency_keys SET attempt_id = NULL, updated_at = now()
                   WHERE user_id = $1 AND key = $2 AND status = 'in_progress' AND attempt_id = $3
                   RETURNING 1""",
                user_id,
                key,
                attempt_id,
            )
        return taken is not None

    async def sweep(self) -> int:
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                f"""DELETE FROM idempotency_keys WHERE ctid IN (
                        SELECT ctid FROM idempotency_keys
                        WHERE created_at < now() - interval '{KEEP_HOURS} hours' LIMIT 1000)"""
            )
        return int(status.split()[-1])

    async def finish(self, user_id: str, key: str, status: int, body: bytes) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE idempotency_keys SET status = 'done', response_code = $3, response_body = $4
                   WHERE user_id = $1 AND key = $2""",
                user_id,
                key,
                status,
                body,
            )

    async def abandon(self, user_id: str, key: str) -> None:
        """Forget the key so the client can retry (the first attempt failed on our side)."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND attempt_id IS NULL",
                user_id,
                key,
            )
