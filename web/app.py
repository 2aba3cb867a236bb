"""create_app(settings): builds the whole application; each resource is one cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry

from actors.desk import LaunchDesk
from actors.live_publisher import LivePublisher
from actors.runtime import ActorSystem
from actors.sync import JobRunner, SyncMetrics, SyncWorker
from astro.config import Settings
from astro.domain.clock import Clock, SystemClock
from astro.services.auth import AuthService
from astro.services.catalog import LaunchScheduler, PublicCatalog
from astro.services.finance import FinanceService
from astro.services.tokens import TokenIssuer
from astro.store import cache, mongo, postgres
from astro.store.bookings import PgLedger
from astro.store.changes import MongoChanges, PgChanges, PgJobs
from astro.store.idempotency import PgIdempotency
from astro.store.invoices import PgInvoices
from astro.store.launches import PgCatalog
from astro.store.mail import start_sink
from astro.store.mongo import MongoUsers
from astro.store.payments import SandboxGateway
from astro.store.people import PgProfiles
from astro.store.sync_sources import MongoPeople, PgLaunchRows
from web import agency_api, booking_api, finance_api, live, notify_api, pages, sync_api, system_api, ws
from web.keys import (
    ACTORS,
    AUTH,
    BROADCASTER,
    CATALOG,
    CATALOG_STORE,
    CLOCK,
    DESK,
    FINANCE,
    GATEWAY,
    IDEMPOTENCY,
    JOB_RUNNER,
    JOBS,
    LEDGER,
    LIVE,
    MONGO_CHANGES,
    MONGO_DB,
    NOTIFY,
    PG_CHANGES,
    PG_POOL,
    PROFILES,
    REDIS,
    REGISTRY,
    SCHEDULER,
    SETTINGS,
    SMTP_ADDRESS,
    SYNC,
    USERS,
)
from web.metrics import HttpMetrics, prometheus
from web.middlewares import make_middleware
from web.monitoring import actor_events, setup_monitoring
from web.openapi import openapi_docs, openapi_json

READY_TIMEOUT = 2.0


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """The application for these settings; nothing connects until it starts."""
    for name in ("pg_dsn", "mongo_url", "redis_url"):
        if getattr(settings, name) is None:
            raise ValueError(f"create_app needs settings.{name}; run.py starts the embedded server first")
    registry = CollectorRegistry()
    app = web.Application(
        middlewares=[make_middleware(HttpMetrics(registry), settings.node)], client_max_size=1024 * 1024
    )
    app[SETTINGS] = settings
    app[REGISTRY] = registry
    app[CLOCK] = clock or SystemClock()
    app.cleanup_ctx.extend(
        [postgres_ctx, mongo_ctx, redis_ctx, smtp_ctx, services_ctx, launches_ctx, sync_ctx]
    )
    app.cleanup_ctx.append(notify_api.notify_ctx)
    setup_monitoring(app)  # the log shipper first, the metric sampler last
    app.router.add_get("/health", health, allow_head=False)
    app.router.add_get("/ready", ready, allow_head=False)
    app.router.add_get("/metrics", prometheus, allow_head=False)
    app.router.add_get("/api/openapi.json", openapi_json, allow_head=False)
    app.router.add_get("/api/docs", openapi_docs, allow_head=False)
    system_api.setup(app)
    agency_api.setup(app)
    booking_api.setup(app)
    finance_api.setup(app)
    sync_api.setup(app)
    notify_api.setup(app)
    ws.setup(app)
    pages.setup(app)
    return app


@contextlib.asynccontextmanager
async def started(app: web.Application) -> AsyncIterator[None]:
    """Run the app's cleanup contexts without serving HTTP (commands, in-process benchmarks)."""
    app.freeze()
    await app.startup()
    try:
        yield
    finally:
        await app.shutdown()
        await app.cleanup()


async def postgres_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = await postgres.create_pool(app[SETTINGS].pg_dsn or "")
    try:
        await postgres.migrate(pool)
        app[PG_POOL] = pool
        yield
    finally:
        await pool.close()


async def mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = mongo.connect(settings.mongo_url or "")
    try:
        db = client[settings.mongo_db]
        await mongo.ensure_indexes(db)
        app[MONGO_DB] = db
        yield
    finally:
        await client.close()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    client = cache.connect(app[SETTINGS].redis_url or "")
    try:
        await client.ping()
        app[REDIS] = client
        yield
    finally:
        await client.aclose()
        await client.connection_pool.disconnect()


async def smtp_ctx(app: web.Application) -> AsyncIterator[None]:
    """The configured SMTP server, or the embedded sink started on a free local port."""
    url = app[SETTINGS].smtp_url
    if url is not None:
        parts = urlsplit(url)
        app[SMTP_ADDRESS] = (
            parts.hostname or "127.0.0.1",
            parts.port or (465 if parts.scheme == "smtps" else 25),
        )
        yield
        return
    server = await start_sink(app[MONGO_DB])
    app[SMTP_ADDRESS] = server.sockets[0].getsockname()[:2]
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hasher = PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib)
    users, profiles = MongoUsers(app[MONGO_DB]), PgProfiles(app[PG_POOL])
    app[GATEWAY] = SandboxGateway()
    auth = AuthService(
        users,
        profiles,
        cache.AuthCache(app[REDIS]),
        TokenIssuer(settings.jwt_secret, settings.token_ttl),
        hasher,
    )
    await auth.warm_cache()
    app[AUTH] = auth
    app[USERS] = users
    app[PROFILES] = profiles
    yield


async def sync_ctx(app: web.Application) -> AsyncIterator[None]:
    """The sync worker and the sync job runner of this node."""
    settings, pool, db = app[SETTINGS], app[PG_POOL], app[MONGO_DB]
    pg, mongo_changes, jobs = PgChanges(pool), MongoChanges(db), PgJobs(pool)
    cards = cache.LaunchCache(app[REDIS])
    metrics = SyncMetrics(app[REGISTRY])
    launch_rows = PgLaunchRows(pool)
    worker = SyncWorker(
        node=settings.node,
        pg=pg,
        mongo=mongo_changes,
        users=app[USERS],
        launches=launch_rows,
        cache=cards,
        interval=settings.sync_interval,
        metrics=metrics,
    )
    runner = JobRunner(
        node=settings.node,
        jobs=jobs,
        launches=launch_rows,
        directory=MongoPeople(db),
        people=pg,
        cache=cards,
        interval=settings.sync_interval,
        metrics=metrics,
    )
    app[PG_CHANGES], app[MONGO_CHANGES], app[JOBS] = pg, mongo_changes, jobs
    app[SYNC], app[JOB_RUNNER] = worker, runner
    await worker.start()
    await runner.start()
    try:
        yield
    finally:
        await runner.stop()
        await worker.stop()


async def launches_ctx(app: web.Application) -> AsyncIterator[None]:
    """Launch actors, the booking desk, the live publisher and the launch catalogue."""
    settings, pool, clock = app[SETTINGS], app[PG_POOL], app[CLOCK]
    store, ledger = PgCatalog(pool), PgLedger(pool)
    publisher = LivePublisher(cache.LaunchCache(app[REDIS]), lambda: app.get(BROADCASTER))
    idle = app[SETTINGS].actor_idle_seconds
    # The reaper looks a tenth as often as an actor may stay idle (every 10 s at the default 300 s).
    system = ActorSystem(
        on_event=actor_events(app), passivate_after=float(idle), reap_interval=min(10.0, max(0.5, idle / 10))
    )
    desk = LaunchDesk(
        system=system,
        ledger=ledger,
        live=publisher,
        gateway=app[GATEWAY],
        users=app[AUTH],
        clock=clock,
        hold_seconds=settings.hold_seconds,
    )
    app[CATALOG_STORE], app[LEDGER], app[IDEMPOTENCY] = store, ledger, PgIdempotency(pool)
    app[LIVE], app[ACTORS], app[DESK] = publisher, system, desk
    app[CATALOG] = PublicCatalog(store, cache.LaunchCache(app[REDIS]), clock)
    app[SCHEDULER] = LaunchScheduler(store, publisher, clock, settings.vip_window)
    app[FINANCE] = FinanceService(PgInvoices(pool), app[GATEWAY], clock)
    live.register_snapshots(app)
    publisher.start()
    await system.start()
    await desk.retry_pending_refunds()
    try:
        yield
    finally:
        await system.stop()
        await desk.wait_background()
        await publisher.stop()


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: each part answers within its time limit; 503 names every part that does not."""
    app = request.app
    checks: dict[str, Callable[[], Awaitable[Any]]] = {
        "postgres": lambda: app[PG_POOL].fetchval("SELECT 1"),
        "mongo": lambda: app[MONGO_DB].command("ping"),
        "redis": lambda: app[REDIS].ping(),
        "smtp": lambda: _smtp_answers(app),
    }
    results = await asyncio.gather(*(_check(fn) for fn in checks.values()))
    parts = dict(zip(checks, results, strict=True))
    down = [name for name, part in parts.items() if not part["ok"]]
    body = {"status": "unavailable" if down else "ready", "down": down, "parts": parts}
    headers = {"Retry-After": "5"} if down else None
    return web.json_response(body, status=503 if down else 200, headers=headers)


async def _smtp_answers(app: web.Application) -> None:
    """The SMTP server in use greets us (TLS and login included for smtps://)."""
    status = await app[NOTIFY].smtp_status()
    if not status["reachable"]:
        raise ConnectionError(status["error"])


async def _check(fn: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(fn(), READY_TIMEOUT)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
