"""The composition root's resources: each builds its part of the platform, in one ordered list.

`RESOURCES` is every cleanup context of the app, in start-up order; aiohttp stops them in the reverse
order. Each context connects or builds its part, stores it under a typed key, yields, and closes it.
The order, and why:

1. `shipper_ctx`: the log shipper, on a MongoDB client of its own. First, so the start-up
   and shutdown entries of everything after it are stored, and logging never waits for a store.
2. `postgres_ctx`, 3. `mongo_ctx`, 4. `redis_ctx`: the three stores; every adapter below needs them.
5. `broadcaster_ctx`: needs Redis (fan-out between nodes); before the launch actors and the live
   publisher, which publish through it, and the snapshot providers launches_ctx gives it.
6. `smtp_ctx`: the SMTP server in use; the embedded sink keeps its mail in MongoDB.
7. `services_ctx`: authentication and the payment gateway; the desk promotes VIPs through the one
   and charges through the other.
8. `cluster_ctx`: this node among the others -- its row in the node registry, the keeper of its
   launch leases, the forwarder to the owners of other launches; before the launch actors, which
   take their leases through it, and stopped after them, so their leases are given up first.
9. `launches_ctx`: the actor system, the booking desk, the catalogue, scheduling, finance.
10. `sync_ctx`: the sync worker and job runner, which read users through services_ctx's adapter.
11. `notify_ctx`: the notify service and this node's dispatcher, an actor of the system
    started by launches_ctx, sending to smtp_ctx's server.
12. `sampler_ctx`: last, so it samples the figures of everything above, and stops first.

Adapters (astro.store) and drivers' clients (web/clients.py) are known here and nowhere else in web/:
handlers get services and actors through web/keys.py, each service the ports it declares.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from email.utils import parseaddr
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp import web
from argon2 import PasswordHasher

from actors.broadcast import Broadcaster
from actors.desk import LaunchDesk
from actors.dispatcher import DispatcherConfig, NotificationDispatcher
from actors.leases import LeaseKeeper
from actors.live_publisher import LivePublisher
from actors.log_shipper import LogShipper
from actors.loop import TaskSet
from actors.metric_sampler import MetricSampler
from actors.payments import Payments
from actors.recovery import RecoveryWorker
from actors.runtime import ActorSystem
from actors.sync import JobRunner, SyncMetrics, SyncWorker
from astro import logs
from astro.config import Settings
from astro.domain.leases import Owner
from astro.services.auth import AuthService
from astro.services.catalog import LaunchScheduler, PublicCatalog
from astro.services.changes import Changes, SyncJobs
from astro.services.documents import Documents, Party
from astro.services.finance import FinanceService
from astro.services.fleet import Fleet
from astro.services.nodes import NodeStatus
from astro.services.notify import Mailer, NotifyMetrics, NotifyService
from astro.services.passwords import PasswordResets
from astro.services.payment_webhooks import PaymentWebhooks
from astro.services.payments import PaymentEvents, PaymentGateway
from astro.services.reconciliation import Reconciliation
from astro.services.tokens import TokenIssuer
from astro.store import cache, mongo, postgres
from astro.store.attempts import PgAttempts
from astro.store.bookings import PgLedger
from astro.store.changes import MongoChanges, PgChanges, PgJobs
from astro.store.documents import PgDocumentSource
from astro.store.idempotency import PgIdempotency
from astro.store.invoices import PgInvoices
from astro.store.launches import PgCatalog
from astro.store.leases import PgLeases
from astro.store.live import RedisLiveStore
from astro.store.mail import SmtpSender, SmtpTarget, start_sink
from astro.store.mongo import MongoEntryLogs, MongoMetrics, MongoUsers
from astro.store.nodes import PgNodes
from astro.store.notifications import MongoMailbox, PgNotifications
from astro.store.payments import SandboxGateway
from astro.store.people import PgProfiles
from astro.store.reconciliation import PgReconciliation
from astro.store.resets import PgResets
from astro.store.sessions import MongoSessions
from astro.store.spool import Spool
from astro.store.stripe_events import PgStripeEvents, StripeSignatures
from astro.store.stripe_gateway import StripeGateway
from astro.store.sync_sources import MongoPeople, PgLaunchRows
from astro.store.waitlist import PgWaitlist
from web import live, monitoring
from web.clients import MONGO_DB, PG_POOL, REDIS, SMTP_ADDRESS
from web.cluster import Forwarder
from web.keys import (
    ACTORS,
    AUTH,
    BACKGROUND,
    BOOKING_OBSERVER,
    BROADCASTER,
    CATALOG,
    CATALOG_STORE,
    CHANGES,
    CLOCK,
    DESK,
    DISPATCHER,
    DOCUMENTS,
    FINANCE,
    FLEET,
    FORWARDER,
    IDEMPOTENCY,
    JOB_RUNNER,
    LEASES,
    LEDGER,
    LIVE,
    NODES,
    NOTIFY,
    PAYMENT_WEBHOOKS,
    PAYMENTS,
    PROBES,
    RECONCILIATION,
    RECOVERY,
    REGISTRY,
    RESETS,
    SCHEDULER,
    SETTINGS,
    SYNC,
    SYNC_JOBS,
    WAITLIST,
)
from web.monitoring import ENTRY_LOGS, LOG_SHIPPER, METRIC_SAMPLES, SAMPLER, read_figures

# Adapters only the composition root and the tests look at.
USERS = web.AppKey("users", MongoUsers)
GATEWAY: Final[web.AppKey[PaymentGateway]] = web.AppKey("gateway")

Resource = Callable[[web.Application], AsyncIterator[None]]
log = structlog.get_logger("astro.web")


async def postgres_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = await postgres.create_pool(app[SETTINGS].pg_dsn or "")
    try:
        await postgres.migrate(pool)
        app[PG_POOL] = pool
        app[PROBES]["postgres"] = lambda: pool.fetchval("SELECT 1")
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
        app[PROBES]["mongo"] = lambda: db.command("ping")
        yield
    finally:
        await client.close()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    client = cache.connect(app[SETTINGS].redis_url or "")
    try:
        await client.ping()
        app[REDIS] = client
        app[PROBES]["redis"] = client.ping
        yield
    finally:
        await client.aclose()
        await client.connection_pool.disconnect()


async def broadcaster_ctx(app: web.Application) -> AsyncIterator[None]:
    """The Broadcaster of this node, listening to the others through Redis; it needs redis_ctx before it
    and comes before whatever publishes or registers snapshots (launch actors, the live snapshots)."""
    broadcaster = Broadcaster(RedisLiveStore(app[REDIS], app[SETTINGS].node))
    await broadcaster.start()
    app[BROADCASTER] = broadcaster
    try:
        yield
    finally:
        await broadcaster.stop()


async def smtp_ctx(app: web.Application) -> AsyncIterator[None]:
    """The configured SMTP server, or the embedded sink started on a free local port."""
    app[PROBES]["smtp"] = lambda: _smtp_answers(app)
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


async def _smtp_answers(app: web.Application) -> None:
    """The SMTP server in use greets us (TLS and login included for smtps://)."""
    status = await app[NOTIFY].smtp_status()
    if not status["reachable"]:
        raise ConnectionError(status["error"])


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hasher = PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib)
    users = MongoUsers(app[MONGO_DB])
    gateway = payment_gateway(app)
    app[GATEWAY] = gateway
    auth = AuthService(
        users,
        PgProfiles(app[PG_POOL]),
        cache.AuthCache(app[REDIS]),
        TokenIssuer(settings.jwt_secret, settings.token_ttl),
        hasher,
        live=app[BROADCASTER],  # logout and disable close sockets on every node
        sessions=MongoSessions(app[MONGO_DB]),
        login_address_limit=settings.login_ip_limit,
        session_ttl=settings.session_ttl,
    )
    await auth.warm_cache()
    app[AUTH] = auth
    app[RESETS] = PasswordResets(auth, PgResets(app[PG_POOL]))
    app[BACKGROUND] = background = TaskSet()
    app[USERS] = users
    app[NODES] = NodeStatus(PgNodes(app[PG_POOL]), settings.lease_seconds)
    try:
        yield
    finally:
        await background.wait()  # reset e-mails being queued (each a few milliseconds)
        if isinstance(gateway, StripeGateway):
            await gateway.close()


def payment_gateway(app: web.Application) -> SandboxGateway | StripeGateway:
    """The gateway ASTRO_PAYMENT_URL selects: Stripe (its API; the key is never logged), else the sandbox."""
    target = app[SETTINGS].stripe
    if target is None:
        return SandboxGateway(app[PG_POOL])
    log.info("payment_gateway", gateway="stripe", api=target.api_base)
    return StripeGateway(target.api_base, target.secret_key)


def payment_webhooks(app: web.Application, gateway: PaymentGateway, events: PaymentEvents) -> PaymentWebhooks:
    """Stripe's webhook (refused while ASTRO_STRIPE_WEBHOOK_SECRET is unset; absent with the sandbox)."""
    stripe = gateway if isinstance(gateway, StripeGateway) else None
    secret = app[SETTINGS].stripe_webhook_secret
    if stripe is not None and secret is None:
        log.warning("stripe_webhook_unconfigured", reason="ASTRO_STRIPE_WEBHOOK_SECRET is not set")
    verifier = StripeSignatures(secret) if stripe is not None and secret is not None else None
    return PaymentWebhooks(verifier, PgStripeEvents(app[PG_POOL]), stripe, events)


async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
    """This node's leases and registry row, and the forwarder to the other nodes (DESIGN 8.5)."""
    settings = app[SETTINGS]
    url = (settings.node_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    owner = Owner(settings.node, f"{settings.node}:{os.getpid()}:{secrets.token_hex(4)}", url)
    keeper = app[LEASES] = LeaseKeeper(PgLeases(app[PG_POOL]), owner, settings.lease_seconds)
    # Forwarded requests wait at most what the owner's desk may take (an ask, a payment, an ask).
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30))
    app[FORWARDER] = Forwarder(settings.node, settings.cluster_key, session, 3 * settings.ask_timeout)
    await keeper.start()
    try:
        yield
    finally:
        try:
            await keeper.stop()
        finally:
            await session.close()


async def launches_ctx(app: web.Application) -> AsyncIterator[None]:
    """Launch actors, the booking desk, the live publisher, the catalogue, the fleet and finance."""
    settings, pool, clock = app[SETTINGS], app[PG_POOL], app[CLOCK]
    store, ledger = PgCatalog(pool), PgLedger(pool, stall_limit=settings.lease_seconds)
    publisher = LivePublisher(cache.LaunchCache(app[REDIS]), lambda: app.get(BROADCASTER))
    idle = settings.actor_idle_seconds
    # The reaper looks a tenth as often as an actor may stay idle (every 10 s at the default 300 s).
    system = ActorSystem(
        on_event=monitoring.actor_events(app),
        passivate_after=float(idle),
        reap_interval=min(10.0, max(0.5, idle / 10)),
    )
    payments = Payments(PgAttempts(pool), app[GATEWAY], clock)
    app[PAYMENT_WEBHOOKS] = payment_webhooks(app, app[GATEWAY], payments)  # the webhook feeds the saga
    desk = LaunchDesk(
        system=system,
        ledger=ledger,
        live=publisher,
        payments=payments,
        leases=app[LEASES],
        users=app[AUTH],
        observer=app[BOOKING_OBSERVER],
        clock=clock,
        hold_for=timedelta(seconds=settings.hold_seconds),
        offer_for=timedelta(seconds=settings.waitlist_offer_seconds),
        ask_timeout=settings.ask_timeout,
    )
    idempotency = PgIdempotency(pool)
    waitlist = app[WAITLIST] = PgWaitlist(pool)

    async def wake_waitlists() -> int:
        return await desk.wake_waitlists(await waitlist.launches_with_offers_due(clock.now()))

    app[CATALOG_STORE], app[LEDGER], app[IDEMPOTENCY] = store, ledger, idempotency
    app[LIVE], app[ACTORS], app[DESK], app[PAYMENTS] = publisher, system, desk, payments
    app[CATALOG] = PublicCatalog(store, cache.LaunchCache(app[REDIS]), clock)
    app[SCHEDULER] = LaunchScheduler(
        store, publisher, clock, settings.vip_window, settings.agency_launches_per_day
    )
    app[FLEET] = Fleet(store, ledger)
    finance = app[FINANCE] = FinanceService(PgInvoices(pool), app[GATEWAY], clock)
    app[DOCUMENTS] = Documents(PgDocumentSource(pool), finance, platform_party(settings), clock)
    app[RECONCILIATION] = Reconciliation(PgReconciliation(pool), app[GATEWAY], clock)
    recovery = app[RECOVERY] = RecoveryWorker(
        node=settings.node,
        payments=payments,
        clock=clock,
        pay_refunds=desk.pay_pending_refunds,
        settle_invoice_payments=finance.resolve_card_payments,
        idempotency=idempotency,
        interval=settings.recovery_interval,
        wake_waitlists=wake_waitlists,
    )
    live.register_snapshots(app)
    publisher.start()
    await system.start()
    recovery.start()  # its first round at once: whatever a crash left is finished first
    try:
        yield
    finally:
        await recovery.stop()
        await system.stop()
        await desk.wait_background()
        await publisher.stop()


def platform_party(settings: Settings) -> Party:
    """The platform as the issuer of invoices: ASTRO_COMPANY_*, its e-mail the sender's by default."""
    email = settings.company_email or parseaddr(settings.mail_from)[1] or None
    name = settings.company_name
    return Party(name, name, settings.company_address, settings.company_tax_id, email)


async def sync_ctx(app: web.Application) -> AsyncIterator[None]:
    """The sync worker and the sync job runner of this node; IT's change log and jobs."""
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
    app[CHANGES], app[SYNC_JOBS] = Changes(pg, mongo_changes), SyncJobs(jobs, runner.wake)
    app[SYNC], app[JOB_RUNNER] = worker, runner
    await worker.start()
    await runner.start()
    try:
        yield
    finally:
        await runner.stop()
        await worker.stop()


async def shipper_ctx(app: web.Application) -> AsyncIterator[None]:
    """The log shipper, on its own client: logging never waits for MongoDB, even at start-up."""
    settings = app[SETTINGS]
    url = settings.log_mongo_url or settings.mongo_url or ""
    client, reader = MongoEntryLogs.connect(url), MongoEntryLogs.connect(url, reader=True)
    shipper = LogShipper(
        MongoEntryLogs(client[settings.log_mongo_db]),
        node=settings.node,
        spool=Spool(settings.data_dir / "spool" / "entry_logs.ndjson"),
        batch_size=settings.log_batch_size,
        flush_interval=settings.log_flush_interval,
        max_queue=settings.log_queue_size,
    )
    await shipper.start()
    logs.add_sink(shipper)
    app[LOG_SHIPPER], app[ENTRY_LOGS] = shipper, MongoEntryLogs(reader[settings.log_mongo_db])
    try:
        yield
    finally:
        try:
            await shipper.stop()
        finally:
            logs.remove_sink(shipper)
            await client.close()
            await reader.close()


async def notify_ctx(app: web.Application) -> AsyncIterator[None]:
    """The notify service and this node's dispatcher, sending to the SMTP server in use."""
    settings = app[SETTINGS]
    store = PgNotifications(app[PG_POOL])
    target = SmtpTarget.of(settings.smtp_url, app[SMTP_ADDRESS], settings.smtp_timeout)
    mailer = Mailer(SmtpSender(target), settings.mail_from)
    app[NOTIFY] = NotifyService(store, MongoMailbox(app[MONGO_DB]), mailer, settings.base_url)
    config = DispatcherConfig(
        node=settings.node,
        base_url=settings.base_url,
        poll_interval=settings.notify_poll_interval,
        batch_size=settings.notify_batch_size,
        connections=settings.notify_connections,
        retry_base=settings.notify_retry_base,
        retry_cap=settings.notify_retry_cap,
        claim_timeout=settings.notify_claim_timeout,
    )
    metrics = NotifyMetrics(app[REGISTRY])
    dispatcher = NotificationDispatcher(app[ACTORS], store, mailer, metrics, config, app[CLOCK])
    app[DISPATCHER] = dispatcher
    await dispatcher.start()
    try:
        yield
    finally:
        await dispatcher.stop()


async def sampler_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    samples = MongoMetrics(app[MONGO_DB])
    registry = app[REGISTRY]
    sampler = MetricSampler(
        lambda: read_figures(registry),
        samples,
        node=settings.node,
        interval=settings.metrics_interval,
        clock=app[CLOCK],
    )
    app[METRIC_SAMPLES], app[SAMPLER] = samples, sampler
    sampler.start()
    try:
        yield
    finally:
        await sampler.stop()


RESOURCES: Final[tuple[Resource, ...]] = (
    shipper_ctx,
    postgres_ctx,
    mongo_ctx,
    redis_ctx,
    broadcaster_ctx,
    smtp_ctx,
    services_ctx,
    cluster_ctx,
    launches_ctx,
    sync_ctx,
    notify_ctx,
    sampler_ctx,
)
