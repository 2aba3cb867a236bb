"""PostgreSQL `password_resets`: a link's token hash, its expiry and its use; its e-mail in the same
transaction (the notification outbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from astro.services.passwords import ResetState
from astro.store.errors import unavailable_as
from astro.store.notices import NoticeRows, Recipient


@unavailable_as("PostgreSQL")
class PgResets:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self,
        reset_id: str,
        user_id: str,
        token_hash: str,
        expires_at: datetime,
        to: tuple[str, str, str, str],
        data: dict[str, Any],
    ) -> None:
        """The reset row and its e-mail (a `password_reset` notification to `to`: id, role, email, name)."""
        rows = NoticeRows()
        rows.add("password_reset", [Recipient(*to)], data)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO password_resets (id, user_id, token_hash, expires_at)
                   VALUES ($1, $2, $3, $4)""",
                reset_id,
                user_id,
                token_hash,
                expires_at,
            )
            await rows.write(conn)

    async def state(self, token_hash: str) -> ResetState | None:
        row = await self._pool.fetchrow(
            """SELECT user_id, used_at IS NOT NULL AS used, expires_at <= now() AS expired
               FROM password_resets WHERE token_hash = $1""",
            token_hash,
        )
        return None if row is None else ResetState(row["user_id"], row["used"], row["expired"])

    async def spend(self, token_hash: str) -> str | None:
        """Mark the link used, when it is neither used nor expired (one winner); its user, else None.
        The user's other open links are spent with it."""
        async with self._pool.acquire() as conn, conn.transaction():
            user_id: str | None = await conn.fetchval(
                """UPDATE password_resets SET used_at = now()
                   WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
                   RETURNING user_id""",
                token_hash,
            )
            if user_id is not None:
                await conn.execute(
                    "UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
                    user_id,
                )
            return user_id
