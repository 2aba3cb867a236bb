"""Idempotency records: the first answer to a keyed POST, kept 24 hours (DESIGN 6)."""

from __future__ import annotations

from typing import Final

import asyncpg

from astro.domain.errors import Conflict, RuleViolation
from astro.services.idempotency import StoredResponse
from astro.store.errors import unavailable_as

KEEP_HOURS: Final = 24


@unavailable_as("PostgreSQL")
class PgIdempotency:
    """Idempotency records in PostgreSQL: an IdempotencyStore."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def begin(self, user_id: str, key: str, request_hash: str) -> StoredResponse | None:
        """Claim the key (None: go ahead) or return the first response; refuse another body or a race."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                f"""DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2
                    AND created_at < now() - interval '{KEEP_HOURS} hours'""",
                user_id,
                key,
            )
            claimed = await conn.fetchval(
                """INSERT INTO idempotency_keys (user_id, key, request_hash, status)
                   VALUES ($1, $2, $3, 'in_progress')
                   ON CONFLICT DO NOTHING RETURNING 1""",
                user_id,
                key,
                request_hash,
            )
            if claimed:
                return None
            row = await conn.fetchrow(
                """SELECT request_hash, status, response_code, response_body FROM idempotency_keys
                   WHERE user_id = $1 AND key = $2""",
                user_id,
                key,
            )
        if row is None:  # expired and deleted by a concurrent request between our statements
            raise Conflict(
                "a request with this Idempotency-Key is in progress; retry shortly",
                code="idempotency_in_progress",
            )
        if row["request_hash"] != request_hash:
            raise RuleViolation(
                "this Idempotency-Key was used with a different request", code="idempotency_mismatch"
            )
        if row["status"] == "in_progress":
            raise Conflict(
                "a request with this Idempotency-Key is in progress; retry shortly",
                code="idempotency_in_progress",
            )
        return StoredResponse(row["response_code"], bytes(row["response_body"]))

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
            await conn.execute("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2", user_id, key)
