"""What every benchmark shares: fresh stores, server processes, HTTP load clients and figures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from astro.embedded import EmbeddedServers
from astro.store import postgres

ROOT: Final = Path(__file__).resolve().parents[1]


def _bench_database() -> str:
    """ASTRO_BENCH_DATABASE, else astro_bench: two benches sharing one PostgreSQL server each name their own
    (the bench drops and makes it); a plain identifier, since it goes into DROP/CREATE DATABASE."""
    name = os.environ.get("ASTRO_BENCH_DATABASE") or "astro_bench"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", name):
        raise SystemExit(f"ASTRO_BENCH_DATABASE must be a lower-case identifier, not {name!r}")
    return name


BENCH_DATABASE: Final = _bench_database()
# ASTRO_BENCH_REDIS_DB, else 14: the Redis database the bench empties (one per bench sharing a server).
BENCH_REDIS_DB: Final = int(os.environ.get("ASTRO_BENCH_REDIS_DB") or 14)
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"


def idempotency_key() -> str:
    """A fresh Idempotency-Key: the browser apps send one with every booking, and so does the bench."""
    return "bk-" + uuid.uuid4().hex


def progress(message: str) -> None:
    """Progress goes to stderr; stdout carries only the one JSON line."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


# -- stores ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stores:
    """The benchmark's own database, Redis db and MongoDB database, and where each server came from."""

    pg_dsn: str
    mongo_url: str
    redis_url: str
    sources: dict[str, str]
    admin_pg_dsn: str = ""  # the server's own database, from which astro_bench is dropped and made


@contextlib.asynccontextmanager
async def bench_stores(work_dir: Path, *, keep_data: bool = False) -> AsyncIterator[Stores]:
    """ASTRO_PG_DSN / ASTRO_MONGO_URL / ASTRO_REDIS_URL when set, else embedded servers; fresh data in each.

    Only the benchmark's own database (`astro_bench`, or ASTRO_BENCH_DATABASE), Redis db 14 (or
    ASTRO_BENCH_REDIS_DB) and MongoDB database are touched.
    """
    given = {
        "postgres": os.environ.get("ASTRO_PG_DSN") or None,
        "mongo": os.environ.get("ASTRO_MONGO_URL") or None,
        "redis": os.environ.get("ASTRO_REDIS_URL") or None,
    }
    sources = {name: "real" if url else "embedded" for name, url in given.items()}
    embedded: EmbeddedServers | None = None
    urls: dict[str, str] = {}
    if not all(given.values()):
        missing = {name: url is None for name, url in given.items()}
        progress(f"starting embedded servers: {', '.join(n for n, m in missing.items() if m)}")
        embedded = EmbeddedServers(work_dir / "embedded")
        urls = await embedded.start(**missing)
    try:
        base_pg = given["postgres"] or urls["pg_dsn"]
        stores = Stores(
            pg_dsn=with_path(base_pg, "/" + BENCH_DATABASE),
            mongo_url=with_path(given["mongo"] or urls["mongo_url"], "/" + BENCH_DATABASE),
            redis_url=with_path(given["redis"] or urls["redis_url"], f"/{BENCH_REDIS_DB}"),
            sources=sources,
            admin_pg_dsn=base_pg,
        )
        await reset_stores(stores)
        try:
            yield stores
        finally:
            if not keep_data:
                with contextlib.suppress(Exception):
                    await _drop_postgres(base_pg)
                with contextlib.suppress(Exception):
                    await _fresh_redis(stores.redis_url)
                with contextlib.suppress(Exception):
                    await _fresh_mongo(stores.mongo_url)
    finally:
        if embedded is not None:
            progress("stopping embedded servers")
            embedded.stop()


async def reset_stores(stores: Stores, *, mongo: bool = True) -> None:
    """Fresh, migrated data: between two scenarios of one invocation, with no server using it."""
    await _fresh_postgres(stores.admin_pg_dsn, stores.pg_dsn)
    await _fresh_redis(stores.redis_url)
    if mongo:
        await _fresh_mongo(stores.mongo_url)


async def drop_mongo(url: str) -> None:
    await _fresh_mongo(url)


async def _drop_postgres(base_dsn: str) -> None:
    conn = await asyncpg.connect(base_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
    finally:
        await conn.close()


async def _fresh_postgres(base_dsn: str, dsn: str) -> None:
    await _drop_postgres(base_dsn)
    conn = await asyncpg.connect(base_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    finally:
        await conn.close()
    pool = await postgres.create_pool(dsn, min_size=1, max_size=2)
    try:
        await postgres.migrate(pool)
    finally:
        await pool.close()


async def _fresh_redis(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def _fresh_mongo(url: str) -> None:
    """Drop the database the URL names (SecantusDB drops slowly: give each run a database of its own)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        await client.drop_database(urlsplit(url).path.strip("/") or BENCH_DATABASE)
    finally:
        await client.close()


# -- HTTP ------------------------------------------------------------------------------------------


class ApiError(RuntimeError):
    pass


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    expect: int = 200,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, json=body, headers=headers) as resp:
        text = await resp.text()
        if resp.status != expect:
            raise ApiError(f"{method} {url}: HTTP {resp.status}, expected {expect}: {text[:500]}")
        data: dict[str, Any] = json.loads(text)
        return data


async def bounded(jobs: list[Callable[[], Any]], concurrency: int) -> list[Any]:
    """Run coroutine factories with at most `concurrency` at a time; results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Any]) -> Any:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(j) for j in jobs)))


# -- figures ---------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


@dataclass
class LoadResult:
    """What the clients saw: latency of each successful booking, every other answer counted."""

    latencies: list[float] = field(default_factory=list)
    booking_ids: list[str] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    elapsed: float = 0.0
    timed_out: bool = False

    def figures(self) -> dict[str, Any]:
        done = sorted(self.latencies)
        server_errors = sum(n for k, n in self.answers.items() if k[:1] == "5")
        return {
            "bookings": len(done),
            "bookings_per_s": round(len(done) / self.elapsed, 1) if self.elapsed > 0 else None,
            "p50_ms": ms(percentile(done, 50)),
            "p99_ms": ms(percentile(done, 99)),
            "max_ms": ms(done[-1] if done else None),
            "requests": self.requests,
            "seconds": round(self.elapsed, 2),
            "http_5xx": server_errors,
            "answers": dict(sorted(self.answers.items())),
            "timed_out": self.timed_out,
        }


class LaunchPicker:
    """Which launch a client books next: `sequential` fills one launch after another, `spread` picks at
    random among those not yet sold out."""

    def __init__(self, launch_ids: list[str], mode: str, seed: int = 7) -> None:
        import random

        self.mode = mode
        self.order = list(launch_ids)
        self.open = list(launch_ids)
        self.index = 0
        self._random = random.Random(seed)

    def next(self) -> str | None:
        if self.mode == "sequential":
            return self.order[self.index] if self.index < len(self.order) else None
        return self._random.choice(self.open) if self.open else None

    def sold_out(self, launch_id: str) -> None:
        if self.mode == "sequential":
            if self.index < len(self.order) and self.order[self.index] == launch_id:
                self.index += 1
        elif launch_id in self.open:
            self.open.remove(launch_id)


async def book_until_sold_out(
    base_url: str,
    tokens: list[str],
    launch_ids: list[str],
    *,
    mode: str,
    clients: int,
    seconds: float,
    request_timeout: float = 30.0,
) -> LoadResult:
    """N clients POST one-seat bookings until every target launch answers 409 sold_out (or time is up)."""
    url = base_url + "/api/booking/bookings"
    picker = LaunchPicker(launch_ids, mode)
    result = LoadResult()
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=request_timeout)
    started = time.perf_counter()
    deadline = started + seconds

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}", "Content-Type": "application/json"}
        name = f"Passenger {n}"
        while time.perf_counter() < deadline:
            launch_id = picker.next()
            if launch_id is None:
                return
            body = json.dumps(
                {
                    "launch_id": launch_id,
                    "seats": 1,
                    "passengers": [{"name": name, "birth_date": "1990-01-01"}],
                    "card_token": "tok_ok",
                }
            )
            sent = time.perf_counter()
            result.requests += 1
            fresh = {**headers, IDEMPOTENCY_HEADER: idempotency_key()}
            try:
                async with session.post(url, data=body, headers=fresh) as resp:
                    status = resp.status
                    payload = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.answers[f"client_error:{type(exc).__name__}"] += 1
                await asyncio.sleep(0.05)
                continue
            took = time.perf_counter() - sent
            if status == 201:
                result.latencies.append(took)
                result.booking_ids.append(json.loads(payload)["booking"]["id"])
                continue
            code = _error_code(payload)
            if status == 409 and code == "sold_out":
                picker.sold_out(launch_id)
                continue
            result.answers[f"{status}:{code}"] += 1
            if status >= 500 or status == 429:
                await asyncio.sleep(0.05)  # do not spin on a server that is failing

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.ensure_future(client(n, session)) for n in range(clients)]
        _done, pending = await asyncio.wait(tasks, timeout=seconds + request_timeout + 5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result.elapsed = time.perf_counter() - started
    result.timed_out = picker.next() is not None
    return result


def _error_code(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


# -- correctness -----------------------------------------------------------------------------------


async def seat_audit(dsn: str, launch_ids: list[str], acked_ids: list[str]) -> dict[str, Any]:
    """Overbooking and durability of the launches of one run, from the database itself."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT l.id, l.capacity, l.seats_booked,
                      COALESCE((SELECT sum(b.seats) FROM bookings b
                                WHERE b.launch_id = l.id AND b.status = 'confirmed'), 0) AS confirmed_seats,
                      (SELECT count(*) FROM bookings b WHERE b.launch_id = l.id) AS booking_rows,
                      (SELECT count(*) FROM bookings b
                       WHERE b.launch_id = l.id AND NOT EXISTS (
                           SELECT 1 FROM traveler_payments p
                           WHERE p.booking_id = b.id AND p.kind = 'charge' AND p.status = 'done'))
                      AS uncharged
               FROM launches l WHERE l.id = ANY($1::text[])""",
            launch_ids,
        )
        found = await conn.fetchval(
            "SELECT count(*) FROM bookings WHERE id = ANY($1::text[]) AND status = 'confirmed'", acked_ids
        )
    finally:
        await conn.close()
    over = sum(max(0, r["seats_booked"] - r["capacity"]) for r in rows)
    mismatch = sum(abs(r["seats_booked"] - r["confirmed_seats"]) for r in rows)
    rows_total = sum(r["booking_rows"] for r in rows)
    return {
        "overbooked_seats": over + mismatch,
        "over_capacity_seats": over,
        "count_mismatch_seats": mismatch,
        "unsold_seats": sum(max(0, r["capacity"] - r["seats_booked"]) for r in rows),
        "acked_not_in_db": len(set(acked_ids)) - int(found),
        "db_bookings_not_acked": rows_total - len(set(acked_ids)),
        "bookings_without_charge": sum(r["uncharged"] for r in rows),
        "launches_checked": len(rows),
    }
