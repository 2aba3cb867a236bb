"""The idempotency records: keys claimed and answers kept together (group commit), with the same outcome
for each request as one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from astro.config import Settings
from astro.domain.errors import RuleViolation
from astro.services.idempotency import InFlight, StoredResponse
from astro.store import postgres
from astro.store.idempotency import PgIdempotency
from tests.integration.counting_pool import CountingPool

USER = "usr_keys"


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[CountingPool]:
    pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=10)
    yield CountingPool(pool)
    await pool.close()


async def test_keys_claimed_together_take_one_statement_and_answers_one_more(pool: CountingPool) -> None:
    keys = PgIdempotency(pool)  # type: ignore[arg-type]
    claimed = await asyncio.gather(*(keys.begin(USER, f"k-{i}", f"h-{i}") for i in range(64)))
    assert claimed == [None] * 64
    assert pool.taken == 1  # was 64: one transaction per keyed request
    await asyncio.gather(*(keys.finish(USER, f"k-{i}", 201, f'{{"n":{i}}}'.encode()) for i in range(64)))
    assert pool.taken == 2
    replays = await asyncio.gather(*(keys.begin(USER, f"k-{i}", f"h-{i}") for i in range(64)))
    assert replays == [StoredResponse(201, f'{{"n":{i}}}'.encode()) for i in range(64)]


async def test_one_key_twice_in_a_batch_is_claimed_once(pool: CountingPool) -> None:
    keys = PgIdempotency(pool)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(
        keys.begin(USER, "twice", "same"),
        keys.begin(USER, "twice", "same"),
        keys.begin(USER, "twice", "other body"),
        return_exceptions=True,
    )
    assert outcomes[0] is None
    assert outcomes[1] == InFlight(None)  # the first request has not answered: 409 in progress
    assert isinstance(outcomes[2], RuleViolation) and outcomes[2].code == "idempotency_mismatch"
    async with pool.pool.acquire() as conn:
        rows = await conn.fetch("SELECT request_hash, status FROM idempotency_keys WHERE key = 'twice'")
    assert [(r["request_hash"], r["status"]) for r in rows] == [("same", "in_progress")]


async def test_an_answer_kept_in_a_batch_belongs_to_its_own_key(pool: CountingPool) -> None:
    keys = PgIdempotency(pool)  # type: ignore[arg-type]
    assert await asyncio.gather(keys.begin(USER, "a", "ha"), keys.begin(USER, "b", "hb")) == [None, None]
    await asyncio.gather(keys.finish(USER, "a", 201, b"A"), keys.finish(USER, "b", 402, b"B"))
    assert await keys.begin(USER, "a", "ha") == StoredResponse(201, b"A")
    assert await keys.begin(USER, "b", "hb") == StoredResponse(402, b"B")
    assert await keys.begin("usr_someone_else", "a", "ha") is None  # keys are per caller
