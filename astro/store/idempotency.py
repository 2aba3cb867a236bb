"""Idempotency records: the first answer to a keyed POST, kept 24 hours (DESIGN 6)."""

from __future__ import annotations

from typing import Final

import asyncpg

from astro.domain.errors import RuleViolation
from astro.services.batching import GroupWriter
from astro.services.idempotency import InFlight, InProgress, StoredResponse
from astro.store.errors import unavailable_as

KEEP_HOURS: Final = 24
# A key in progress with no payment attempt and no sign of life for this long belongs to a request that
# died (a crash between claiming the key and starting the payment): a retry takes it over.
STALE_SECONDS: Final = 30


@unavailable_as("PostgreSQL")
class PgIdempotency:
    """Idempotency records in PostgreSQL: an IdempotencyStore.

    Every booking the apps send carries a key: claiming it and keeping the answer are each one statement
    for all the requests that arrive together (group commit), not a transaction per request."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._claims = GroupWriter(self._claim_many)
        self._finishes = GroupWriter(self._finish_many)

    async def begin(self, user_id: str, key: str, request_hash: str) -> StoredResponse | InFlight | None:
        """Claim the key (None: go ahead), the first response, or InFlight; refuse another body."""
        if await self._claims.submit((user_id, key, request_hash)):
            return None  # a new key, claimed with the others of its batch: the usual case
        return await self._begin_taken(user_id, key, request_hash)

    async def _claim_many(self, keys: list[tuple[str, str, str]]) -> list[bool]:
        """Claim every key nobody holds, in one statement; whether each was claimed (a key twice in one
        batch: the first)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """INSERT INTO idempotency_keys (user_id, key, request_hash, status)
                   SELECT user_id, key, request_hash, 'in_progress'
                   FROM unnest($1::text[], $2::text[], $3::text[]) AS x(user_id, key, request_hash)
                   ON CONFLICT DO NOTHING RETURNING user_id, key""",
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
            )
        claimed = {(r["user_id"], r["key"]) for r in rows}
        results = []
        for user_id, key, _ in keys:
            results.append((user_id, key) in claimed)
            claimed.discard((user_id, key))
        return results

    async def _begin_taken(
        self, user_id: str, key: str, request_hash: str
    ) -> StoredResponse | InFlight | None:
        """The key is held: its first answer, InFlight, or a claim after all when it had expired or its
        request died."""
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
        await self._finishes.submit((user_id, key, status, body))

    async def _finish_many(self, answers: list[tuple[str, str, int, bytes]]) -> list[None]:
        """Keep the answers of a batch of keys in one statement."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE idempotency_keys k SET status = 'done', response_code = x.code,
                          response_body = x.body
                   FROM unnest($1::text[], $2::text[], $3::integer[], $4::bytea[])
                        AS x(user_id, key, code, body)
                   WHERE k.user_id = x.user_id AND k.key = x.key""",
                [a[0] for a in answers],
                [a[1] for a in answers],
                [a[2] for a in answers],
                [a[3] for a in answers],
            )
        return [None] * len(answers)

    async def abandon(self, user_id: str, key: str) -> None:
        """Forget the key so the client can retry (the first attempt failed on our side)."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND attempt_id IS NULL",
                user_id,
                key,
            )
