"""The VIP mirror in PostgreSQL under concurrent promotions (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import asyncpg
import pytest

from astro.config import Settings
from astro.store import postgres
from astro.store.people import PgProfiles


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=10)
    yield pool
    await pool.close()


async def test_overlapping_promotions_at_once_neither_deadlock_nor_miss_anyone(pool: asyncpg.Pool) -> None:
    ids = [f"usr_vipflag{i:03d}" for i in range(40)]
    async with pool.acquire() as conn:
        await conn.executemany(
            """INSERT INTO travelers (id, email, name, phone, contact_email, tax_id, address)
               VALUES ($1, $1 || '@example.com', $1, '+1 555 0100', NULL, 'TAX-' || $1, '1 Orbit Road')""",
            [(i,) for i in ids],
        )
    profiles = PgProfiles(pool)
    rng = random.Random(7)
    # Each promotion names a random half of them, in its own order, all at once (as when several
    # launches are confirmed together); an unordered multi-row UPDATE deadlocks on such overlaps.
    batches = [rng.sample(ids, 20) for _ in range(30)]
    results = await asyncio.gather(*(profiles.set_vip(b, True) for b in batches), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    promoted = {i for b in batches for i in b}
    async with pool.acquire() as conn:
        vip = {r["id"] for r in await conn.fetch("SELECT id FROM travelers WHERE vip AND id = ANY($1)", ids)}
        # Each traveler's flag is recorded once in the change log: a row already VIP is not written again.
        recorded = await conn.fetchval(
            """SELECT count(*) FROM changes
               WHERE entity = 'travelers' AND op = 'update' AND entity_id = ANY($1)""",
            ids,
        )
    assert vip == promoted and recorded == len(promoted)
