"""What the sync reads in bulk: launch rows from PostgreSQL, traveler and agency users from MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import asyncpg
from pymongo.asynchronous.database import AsyncDatabase

from astro.domain.launch import Launch
from astro.store.errors import unavailable_as
from astro.store.launches import LAUNCH_COLUMNS, LAUNCH_FROM, launch_of

Row = dict[str, Any]
PEOPLE: Final = {"role": {"$in": ["traveler", "agency"]}}
PERSON_FIELDS: Final = {"name": 1, "email": 1, "vip": 1, "role": 1}


@unavailable_as("PostgreSQL")
class PgLaunchRows:
    """Launches with their rocket and agency, as launch cards are made from them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def by_ids(self, launch_ids: list[str]) -> list[Launch]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM} WHERE l.id = ANY($1::text[])", launch_ids
            )
        return [launch_of(r) for r in rows]

    async def count(self) -> int:
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM launches"))

    async def after(self, launch_id: str, limit: int) -> list[Launch]:
        """Up to `limit` launches whose id sorts after `launch_id`, in id order."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM} WHERE l.id > $1 ORDER BY l.id LIMIT $2",
                launch_id,
                limit,
            )
        return [launch_of(r) for r in rows]


@unavailable_as("MongoDB")
class MongoPeople:
    """Traveler and agency users of SystemDB (`users`), with the fields the sync keeps equal."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._users = db["users"]

    async def count(self) -> int:
        return await self._users.count_documents(PEOPLE)

    async def batches(self, size: int) -> AsyncIterator[list[Row]]:
        """Every traveler and agency user, in `_id` order, `size` at a time."""
        batch: list[Row] = []
        async for user in self._users.find(PEOPLE, PERSON_FIELDS).sort("_id", 1):
            batch.append(user)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
