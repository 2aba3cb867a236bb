"""Typed application keys: every shared resource of the app, one key each."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from actors.broadcast import Broadcaster
from actors.desk import LaunchDesk
from actors.dispatcher import NotificationDispatcher
from actors.live_publisher import LivePublisher
from actors.runtime import ActorSystem
from actors.sync import JobRunner, SyncWorker
from astro.config import Settings
from astro.domain.clock import Clock
from astro.domain.users import Principal
from astro.services.auth import AuthService
from astro.services.catalog import LaunchScheduler, PublicCatalog
from astro.services.finance import FinanceService
from astro.services.notify import NotifyService
from astro.store.bookings import PgLedger
from astro.store.changes import MongoChanges, PgChanges, PgJobs
from astro.store.idempotency import PgIdempotency
from astro.store.launches import PgCatalog
from astro.store.mongo import MongoUsers
from astro.store.payments import SandboxGateway
from astro.store.people import PgProfiles

SETTINGS = web.AppKey("settings", Settings)
PG_POOL = web.AppKey("pg_pool", asyncpg.Pool)
MONGO_DB = web.AppKey("mongo_db", AsyncDatabase[dict[str, Any]])
REDIS = web.AppKey("redis", aioredis.Redis)
SMTP_ADDRESS = web.AppKey("smtp_address", tuple)  # (host, port) of the SMTP server in use
REGISTRY = web.AppKey("registry", CollectorRegistry)
AUTH = web.AppKey("auth", AuthService)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
USERS = web.AppKey("users", MongoUsers)
PROFILES = web.AppKey("profiles", PgProfiles)
CATALOG_STORE = web.AppKey("catalog_store", PgCatalog)
LEDGER = web.AppKey("ledger", PgLedger)
IDEMPOTENCY = web.AppKey("idempotency", PgIdempotency)
GATEWAY = web.AppKey("gateway", SandboxGateway)
ACTORS = web.AppKey("actors", ActorSystem)
LIVE = web.AppKey("live", LivePublisher)
DESK = web.AppKey("desk", LaunchDesk)
CATALOG = web.AppKey("catalog", PublicCatalog)
SCHEDULER = web.AppKey("scheduler", LaunchScheduler)
FINANCE = web.AppKey("finance", FinanceService)
PG_CHANGES = web.AppKey("pg_changes", PgChanges)
MONGO_CHANGES = web.AppKey("mongo_changes", MongoChanges)
JOBS = web.AppKey("jobs", PgJobs)
SYNC = web.AppKey("sync", SyncWorker)
JOB_RUNNER = web.AppKey("job_runner", JobRunner)

REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
BROADCASTER = web.AppKey("broadcaster", Broadcaster)
NOTIFY = web.AppKey("notify", NotifyService)
DISPATCHER = web.AppKey("dispatcher", NotificationDispatcher)
