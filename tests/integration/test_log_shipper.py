"""The log shipper against real MongoDB wire servers: batches, a full queue, a store that goes away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from actors.log_shipper import LogShipper
from astro.config import Settings
from astro.services.monitor import LogQuery
from astro.store import mongo
from astro.store.mongo import MongoEntryLogs
from astro.store.spool import Spool
from tests.stoppable_mongo import StoppableMongo

Doc = dict[str, Any]


class RecordingEntryLogs(MongoEntryLogs):
    """The real store, remembering each insert's ids in the order they were sent."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.batches: list[list[str]] = []

    async def insert(self, docs: list[Doc]) -> None:
        await super().insert(docs)
        self.batches.append([d["_id"] for d in docs])


def entry(i: int, **more: Any) -> Doc:
    return {
        "event": f"step {i}",
        "level": "info",
        "logger": "astro.test",
        "timestamp": datetime.now(UTC).isoformat(),
        "seq": i,
        **more,
    }


async def stored(store: MongoEntryLogs) -> list[Doc]:
    return [d async for d in store.stream(LogQuery())]


@pytest.fixture
async def entry_store(settings: Settings) -> AsyncIterator[RecordingEntryLogs]:
    client: AsyncMongoClient[Doc] = mongo.connect(settings.mongo_url or "")
    try:
        yield RecordingEntryLogs(client[settings.mongo_db])
    finally:
        await client.close()


@pytest.fixture
async def log_server(tmp_path: Path) -> AsyncIterator[StoppableMongo]:
    server = StoppableMongo(tmp_path / "log-mongo")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def server_store(log_server: StoppableMongo) -> AsyncIterator[RecordingEntryLogs]:
    client: AsyncMongoClient[Doc] = MongoEntryLogs.connect(log_server.url())
    try:
        yield RecordingEntryLogs(client["astro_logs"])
    finally:
        await client.close()


def shipper(store: MongoEntryLogs, tmp_path: Path, **options: Any) -> LogShipper:
    options.setdefault("retry_interval", 0.05)
    return LogShipper(store, node="n1", spool=Spool(tmp_path / "spool" / "entry_logs.ndjson"), **options)


async def test_entries_are_stored_in_batches_in_the_order_they_were_made(
    entry_store: RecordingEntryLogs, tmp_path: Path
) -> None:
    s = shipper(entry_store, tmp_path, batch_size=500, flush_interval=60)
    await s.start()
    for i in range(1200):
        s.offer(entry(i))
    await s.flush()
    docs = await stored(entry_store)
    assert [d["data"]["seq"] for d in docs] == list(range(1200))
    assert [len(b) for b in entry_store.batches] == [500, 500, 200]
    assert (s.shipped, s.spooled, s.dropped, s.backlog) == (1200, 0, 0, 0)
    assert docs[0]["service"] == "test" and docs[0]["message"] == "step 0" and docs[0]["node"] == "n1"
    await s.stop()


async def test_a_full_batch_is_shipped_without_waiting_for_the_interval(
    entry_store: RecordingEntryLogs, tmp_path: Path
) -> None:
    s = shipper(entry_store, tmp_path, batch_size=100, flush_interval=3600)
    await s.start()
    for i in range(100):
        s.offer(entry(i))
    async with asyncio.timeout(5):  # the 100th entry wakes the shipper; it has a network round trip to make
        while s.shipped < 100:
            await s.background.round_end()
    assert s.shipped == 100
    await s.stop()


async def test_stop_ships_what_is_queued(entry_store: RecordingEntryLogs, tmp_path: Path) -> None:
    s = shipper(entry_store, tmp_path, flush_interval=3600)
    await s.start()
    for i in range(10):
        s.offer(entry(i))
    await s.stop()
    assert len(await stored(entry_store)) == 10
    s.offer(entry(11))  # after stop: refused at once, counted
    assert s.dropped == 1


async def test_offering_never_waits_and_a_full_queue_drops_and_counts(
    entry_store: RecordingEntryLogs, tmp_path: Path
) -> None:
    s = shipper(entry_store, tmp_path, max_queue=1000, flush_interval=3600)
    await s.start()
    started = time.perf_counter()
    for i in range(1500):
        s.offer(entry(i))
    elapsed = time.perf_counter() - started
    assert (s.queued, s.dropped) == (1000, 500)
    assert elapsed < 0.5  # 1500 offers: no I/O, no waiting
    await s.flush()
    assert [d["data"]["seq"] for d in await stored(entry_store)] == list(range(1000))
    await s.stop()


async def test_storing_a_batch_again_skips_what_is_there(entry_store: RecordingEntryLogs) -> None:
    from astro.services.monitor import entry_document

    docs = [entry_document(entry(i), node="n1") for i in range(5)]
    await entry_store.insert(docs[:3])
    await entry_store.insert(docs)  # a replay after a failure in the middle of a batch
    assert [d["data"]["seq"] for d in await stored(entry_store)] == [0, 1, 2, 3, 4]


async def test_while_the_store_is_down_entries_are_spooled_then_replayed_in_order(
    log_server: StoppableMongo, server_store: RecordingEntryLogs, tmp_path: Path
) -> None:
    s = shipper(server_store, tmp_path, batch_size=50, flush_interval=3600)
    await s.start()
    for i in range(30):
        s.offer(entry(i))
    await s.flush()
    assert s.shipped == 30 and s.store_up

    await log_server.stop()
    for i in range(30, 130):
        s.offer(entry(i))
        if i % 40 == 0:
            await s.flush()  # every round fails over to the spool, in order
    await s.flush()
    spool = tmp_path / "spool" / "entry_logs.ndjson"
    assert not s.store_up and s.spooled >= 100 and s.spool_pending == s.spooled
    lines = spool.read_text().splitlines()
    spooled_seqs = [int(line.split('"seq": ')[1].split("}")[0].split(",")[0]) for line in lines]
    assert spooled_seqs[:100] == list(range(30, 130))

    await log_server.start()
    for i in range(130, 140):
        s.offer(entry(i))
    await s.flush()
    assert s.store_up and s.spool_pending == 0 and not spool.exists()
    docs = await stored(server_store)
    seqs = [d["data"]["seq"] for d in docs if "seq" in d["data"]]
    assert seqs == list(range(140))
    sent = [i for batch in server_store.batches for i in batch]
    assert sent == sorted(sent), "batches went to the store out of order"
    assert s.replayed == s.spooled and s.dropped == 0
    await s.stop()


async def test_a_spool_left_by_a_stopped_shipper_is_replayed_by_the_next_one(
    log_server: StoppableMongo, server_store: RecordingEntryLogs, tmp_path: Path
) -> None:
    await log_server.stop()
    first = shipper(server_store, tmp_path, flush_interval=3600)
    await first.start()
    for i in range(75):
        first.offer(entry(i))
    await first.stop()  # the store is down: everything goes to the spool
    spool = tmp_path / "spool" / "entry_logs.ndjson"
    assert first.spooled >= 75 and len(spool.read_text().splitlines()) == first.spooled

    await log_server.start()
    second = shipper(server_store, tmp_path, flush_interval=3600)
    await second.start()
    assert second.spool_pending == first.spooled
    second.offer(entry(75))
    await second.flush()
    seqs = [d["data"]["seq"] for d in await stored(server_store) if "seq" in d["data"]]
    assert seqs == list(range(76)) and not spool.exists()
    await second.stop()
