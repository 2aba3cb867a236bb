"""Log shipping and export: entries/s the shipper stores, what an offer costs, memory of a big export.

    python -m bench.log_shipping [--entries 100000] [--export 1000000] [--mongo-url mongodb://...]

Starts the embedded MongoDB wire server (SecantusDB) in a temporary directory unless --mongo-url is
given, then (1) offers --entries typical request entries to a LogShipper as fast as it can and
times until every one is stored; (2) fills `entry_logs` up to --export entries and downloads
`GET /api/system/logs/export` over HTTP, reading the stream chunk by chunk, watching the process's
resident memory (the filling keeps only the time index the export reads by). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from actors.log_shipper import LogShipper
from astro.domain.users import Principal, Role
from astro.embedded import EmbeddedServers, free_port
from astro.services.monitor import EntryIds, LogQuery, entry_document
from astro.store.mongo import MongoEntryLogs
from astro.store.spool import Spool
from bench.common import machine, now_iso, progress
from web.http import Handler
from web.keys import PRINCIPAL, REQUEST_ID
from web.monitor_api import export_logs
from web.monitoring import ENTRY_LOGS


def request_entry(i: int) -> dict[str, Any]:
    return {
        "event": "request",
        "level": "info",
        "logger": "astro.web",
        "timestamp": datetime.now(UTC).isoformat(),
        "method": "POST",
        "path": "/api/booking/bookings",
        "route": "/api/booking/bookings",
        "status": 201,
        "duration_ms": 12.5,
        "request_id": f"req-{i}",
        "user_id": f"usr_{i % 500}",
        "launch_id": f"lch_{i % 50}",
    }


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def shipping(store: MongoEntryLogs, entries: int, spool: Path) -> dict[str, Any]:
    shipper = LogShipper(store, node="bench", spool=Spool(spool), max_queue=entries + 1)
    await shipper.start()
    started = time.perf_counter()
    for i in range(entries):
        shipper.offer(request_entry(i))
    offered = time.perf_counter() - started
    while shipper.shipped < entries:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    await shipper.stop()
    return {
        "entries": entries,
        "offer_us_per_entry": round(offered / entries * 1e6, 2),
        "stored_per_second": round(entries / elapsed, 1),
        "seconds": round(elapsed, 2),
    }


async def fill(store: MongoEntryLogs, db: Any, total: int) -> float:
    # The export reads windows of time; the other indexes would just slow the filling down.
    for name in await db["entry_logs"].index_information():
        if name not in ("_id_", "time_ttl_30d"):
            await db["entry_logs"].drop_index(name)
    have = await store.count(LogQuery())
    started = time.perf_counter()
    ids = EntryIds()
    # One entry a second, ending now: a million is the last 11.6 days of a steady platform.
    base = datetime.now(UTC) - timedelta(seconds=total)
    while have < total:
        n = min(5000, total - have)
        docs = []
        for i in range(have, have + n):
            moment = base + timedelta(seconds=i)
            docs.append(
                entry_document(
                    {**request_entry(i), "timestamp": moment.isoformat()},
                    node="bench",
                    entry_id=ids.next(moment),
                )
            )
        await store.insert(docs)
        have += n
        if have % 100_000 < 5000:
            progress(f"entry_logs holds {have}")
    return time.perf_counter() - started


async def export(store: MongoEntryLogs) -> dict[str, Any]:
    @web.middleware
    async def as_it(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[REQUEST_ID] = "bench"
        request[PRINCIPAL] = Principal("usr_it", Role.IT, "jti", 2**40)
        return await handler(request)

    app = web.Application(middlewares=[as_it])
    app[ENTRY_LOGS] = store
    app.router.add_get("/export", export_logs)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    before = peak = rss_mib()
    lines = size = 0
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/export") as resp:
            async for chunk in resp.content.iter_chunked(1 << 16):
                lines += chunk.count(b"\n")
                size += len(chunk)
                if lines % 50_000 < 200:
                    peak = max(peak, rss_mib())
    finally:
        await runner.cleanup()
    peak = max(peak, rss_mib())
    elapsed = time.perf_counter() - started
    return {
        "entries": lines,
        "mib": round(size / 2**20, 1),
        "seconds": round(elapsed, 1),
        "entries_per_second": round(lines / elapsed, 1),
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(peak, 1),
        "rss_growth_mib": round(peak - before, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="astro-bench-logs-") as tmp:
        servers = None
        url = args.mongo_url
        if url is None:
            servers = EmbeddedServers(Path(tmp) / "servers")
            url = (await servers.start(postgres=False, mongo=True, redis=False))["mongo_url"]
        client = MongoEntryLogs.connect(url)
        try:
            await client.drop_database("astro_bench_ship")
            shipping_store = MongoEntryLogs(client["astro_bench_ship"])
            await shipping_store.prepare()
            progress(f"shipping {args.entries} entries")
            shipped = await shipping(shipping_store, args.entries, Path(tmp) / "spool.ndjson")
            progress(f"shipper: {json.dumps(shipped)}")
            result: dict[str, Any] = {"shipper": shipped}
            if args.export:
                # Kept between runs on a server of your own (--mongo-url): filling is the slow part.
                db = client["astro_bench_logs"]
                store = MongoEntryLogs(db)
                await store.prepare()
                progress(f"filling entry_logs to {args.export}")
                result["fill_seconds"] = round(await fill(store, db, args.export), 1)
                progress("exporting")
                result["export"] = await export(store)
            return result
        finally:
            await client.close()
            if servers is not None:
                servers.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.log_shipping", description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument(
        "--export", type=int, default=0, help="entries in entry_logs before the export (0: skip)"
    )
    parser.add_argument("--mongo-url", default=None)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps({"bench": "log_shipping", "at": now_iso(), "machine": machine(), **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
