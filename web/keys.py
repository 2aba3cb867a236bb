"""Typed application keys: what handlers use, one key each, typed by services, actors and ports.

Adapters and drivers' clients are not here: they are built and held by the composition root
(web/resources.py, web/clients.py), which hands each service the ports it declares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from actors.broadcast import Broadcaster
from actors.desk import LaunchDesk
from actors.dispatcher import NotificationDispatcher
from actors.leases import LeaseKeeper
from actors.live_publisher import LivePublisher
from actors.loop import TaskSet
from actors.payments import Payments
from actors.recovery import RecoveryWorker
from actors.runtime import ActorSystem
from actors.sync import JobRunner, SyncWorker
from astro.config import Settings
from astro.domain.clock import Clock
from astro.domain.users import Principal
from astro.services.auth import AuthService
from astro.services.catalog import LaunchScheduler, PublicCatalog
from astro.services.changes import Changes, SyncJobs
from astro.services.documents import Documents
from astro.services.finance import FinanceService
from astro.services.fleet import BookingRecords, Fleet, FleetStore
from astro.services.idempotency import IdempotencyStore
from astro.services.monitor import BookingObserver
from astro.services.nodes import NodeStatus
from astro.services.notify import NotifyService
from astro.services.passwords import PasswordResets
from astro.services.payment_webhooks import PaymentWebhooks
from astro.services.reconciliation import Reconciliation
from astro.services.waitlist import WaitlistReads

if TYPE_CHECKING:
    from web.cluster import Forwarder

# A readiness check: returns when its part answers, raises when it does not.
Probe = Callable[[], Awaitable[object]]

SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", CollectorRegistry)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
# The parts /ready checks, by name, in the order they answer in; each resource adds its own.
PROBES: web.AppKey[dict[str, Probe]] = web.AppKey("probes")

AUTH = web.AppKey("auth", AuthService)
CATALOG = web.AppKey("catalog", PublicCatalog)
SCHEDULER = web.AppKey("scheduler", LaunchScheduler)
FLEET = web.AppKey("fleet", Fleet)
FINANCE = web.AppKey("finance", FinanceService)
DOCUMENTS = web.AppKey("documents", Documents)
RECONCILIATION = web.AppKey("reconciliation", Reconciliation)
NODES = web.AppKey("nodes", NodeStatus)
RESETS = web.AppKey("resets", PasswordResets)
# Work a handler starts after answering (a reset e-mail queued), waited for at shutdown.
BACKGROUND = web.AppKey("background", TaskSet)
NOTIFY = web.AppKey("notify", NotifyService)
CHANGES = web.AppKey("changes", Changes)
SYNC_JOBS = web.AppKey("sync_jobs", SyncJobs)
IDEMPOTENCY: web.AppKey[IdempotencyStore] = web.AppKey("idempotency")
PAYMENT_WEBHOOKS = web.AppKey("payment_webhooks", PaymentWebhooks)
BOOKING_OBSERVER: web.AppKey[BookingObserver] = web.AppKey("booking_observer")
# Reads handlers still make of the stores themselves (web/live.py, web/booking_api.py).
CATALOG_STORE: web.AppKey[FleetStore] = web.AppKey("catalog_store")
LEDGER: web.AppKey[BookingRecords] = web.AppKey("ledger")
WAITLIST: web.AppKey[WaitlistReads] = web.AppKey("waitlist")

ACTORS = web.AppKey("actors", ActorSystem)
LIVE = web.AppKey("live", LivePublisher)
DESK = web.AppKey("desk", LaunchDesk)
BROADCASTER = web.AppKey("broadcaster", Broadcaster)
DISPATCHER = web.AppKey("dispatcher", NotificationDispatcher)
SYNC = web.AppKey("sync", SyncWorker)
JOB_RUNNER = web.AppKey("job_runner", JobRunner)

REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
PAYMENTS = web.AppKey("payments", Payments)
RECOVERY = web.AppKey("recovery", RecoveryWorker)
LEASES = web.AppKey("leases", LeaseKeeper)
# web/cluster.py's Forwarder (a string key: web/cluster.py imports this module).
FORWARDER: web.AppKey[Forwarder] = web.AppKey("forwarder")
