"""MongoEntryLogs reads windows of time: nothing is lost or repeated at their edges, dense or quiet."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from astro.config import Settings
from astro.services.monitor import EntryIds, LogQuery, entry_document
from astro.store import mongo
from astro.store.mongo import MongoEntryLogs

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[MongoEntryLogs]:
    client: AsyncMongoClient[dict[str, Any]] = mongo.connect(settings.mongo_url or "")
    try:
        logs = MongoEntryLogs(client[settings.mongo_db])
        await logs.prepare()
        yield logs
    finally:
        await client.close()


def entries(moments: list[datetime], level: str = "info") -> list[dict[str, Any]]:
    ids = EntryIds()
    return [
        entry_document(
            {"event": f"e{i}", "level": level, "timestamp": m.isoformat()}, node="n", entry_id=ids.next(m)
        )
        for i, m in enumerate(moments)
    ]


def spread() -> list[datetime]:
    """Quiet days, a dense burst (many entries in the same millisecond), a busy minute, now."""
    rng = random.Random(7)
    moments = [NOW - timedelta(days=d) for d in (20, 9, 2)]
    burst = NOW - timedelta(hours=3)
    moments += [burst + timedelta(microseconds=rng.randrange(0, 2000)) for _ in range(700)]
    moments += [
        NOW - timedelta(minutes=1) + timedelta(milliseconds=rng.randrange(60_000)) for _ in range(300)
    ]
    moments.append(NOW)
    return sorted(moments)


async def test_an_export_in_small_batches_crosses_dense_and_quiet_windows_exactly(
    store: MongoEntryLogs,
) -> None:
    docs = entries(spread())
    await store.insert(docs)
    got = [d["_id"] async for d in store.stream(LogQuery(), batch_size=7, now=NOW)]
    assert got == [d["_id"] for d in docs]
    since, until = NOW - timedelta(hours=3), NOW - timedelta(seconds=30)
    got = [d["_id"] async for d in store.stream(LogQuery(since=since, until=until), batch_size=5, now=NOW)]
    assert got == [d["_id"] for d in docs if since <= d["time"] < until]


async def test_pages_follow_each_other_without_gaps_or_repeats(store: MongoEntryLogs) -> None:
    docs = entries(spread())
    await store.insert(docs)
    seen: list[str] = []
    before = None
    while True:
        page = await store.page(LogQuery(), before=before, limit=37, now=NOW)
        seen += [d["_id"] for d in page]
        if len(page) < 37:
            break
        before = page[-1]["_id"]
    assert seen == [d["_id"] for d in reversed(docs)]


async def test_a_filter_reads_only_its_matches(store: MongoEntryLogs) -> None:
    moments = spread()
    docs = entries(moments[::2], level="error") + entries(moments[1::2], level="info")
    await store.insert(docs)
    errors = sorted(d["_id"] for d in docs if d["level"] == "error")
    assert [
        d["_id"] async for d in store.stream(LogQuery(levels=("error",)), batch_size=3, now=NOW)
    ] == errors
    page = await store.page(LogQuery(levels=("error",)), before=None, limit=1000, now=NOW)
    assert [d["_id"] for d in page] == errors[::-1]
