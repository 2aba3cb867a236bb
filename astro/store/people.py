"""Traveler and agency profile rows in PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import asyncpg

from astro.domain.errors import NotFound
from astro.domain.users import Role
from astro.store.errors import unavailable_as
from astro.store.postgres import translated, write_tx

TRAVELER_FIELDS: Final = ("phone", "contact_email", "tax_id", "address")
AGENCY_FIELDS: Final = ("legal_name", "tax_id", "legal_address", "description", "contact_email")
# Who set a VIP flag when the rule did (bookings on two active confirmed launches); IT's own id otherwise.
AUTO: Final = "auto"


@unavailable_as("PostgreSQL")
class PgProfiles:
    """Profiles of self-registered users; one row per traveler or agency, keyed by the user id."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ProfileTx]:
        async with write_tx(self._pool) as conn:
            yield ProfileTx(conn)

    async def get(self, user_id: str, role: Role) -> dict[str, Any] | None:
        table, fields = _table(role)
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {', '.join(fields)} FROM {table} WHERE id = $1", user_id)
        return dict(row.items()) if row is not None else None

    async def update(self, user_id: str, role: Role, profile: dict[str, Any]) -> dict[str, Any]:
        table, fields = _table(role)
        columns = (*fields, "name") if profile.get("name") else fields  # a new name when one is given
        sets = ", ".join(f"{f} = ${i}" for i, f in enumerate(columns, start=2))
        async with write_tx(self._pool) as conn, translated():
            row = await conn.fetchrow(
                f"UPDATE {table} SET {sets}, updated_at = now() WHERE id = $1 RETURNING {', '.join(fields)}",
                user_id,
                *(profile.get(f) for f in columns),
            )
        if row is None:
            raise NotFound("no profile for this user")
        return dict(row.items())

    async def set_vip(self, user_ids: list[str], vip: bool, by: str = AUTO) -> None:
        """Mirror the VIP flag (kept with the user in SystemDB) where notifications are addressed, with who
        set it: `by` AUTO (the rule) leaves alone a flag IT set by hand; an IT user's id sets it anyway."""
        # Rows locked in id order: two promotions of overlapping travelers (two launches confirmed at
        # once) wait for each other instead of deadlocking; rows already right are not written. NO KEY
        # UPDATE, as a plain UPDATE takes: bookings being inserted (their key share) never wait on it.
        async with write_tx(self._pool) as conn:
            await conn.execute(
                """UPDATE travelers SET vip = $2, vip_set_by = $3
                   WHERE id IN (SELECT id FROM travelers
                                WHERE id = ANY($1::text[])
                                  AND (vip IS DISTINCT FROM $2 OR vip_set_by IS DISTINCT FROM $3)
                                  AND ($3 <> 'auto' OR vip_set_by IS NULL OR vip_set_by = 'auto')
                                ORDER BY id FOR NO KEY UPDATE)""",
                user_ids,
                vip,
                by,
            )


@unavailable_as("PostgreSQL")
class ProfileTx:
    """Profile writes inside one open transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, user_id: str, role: Role, email: str, name: str, profile: dict[str, Any]) -> None:
        table, fields = _table(role)
        columns = ("id", "email", "name", *fields)
        values = (user_id, email, name, *(profile.get(f) for f in fields))
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        async with translated():
            await self._conn.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", *values
            )


def _table(role: Role) -> tuple[str, tuple[str, ...]]:
    if role is Role.TRAVELER:
        return "travelers", TRAVELER_FIELDS
    if role is Role.AGENCY:
        return "agencies", AGENCY_FIELDS
    raise ValueError(f"{role} users have no profile row")
