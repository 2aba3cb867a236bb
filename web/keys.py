"""Typed application keys: every shared resource of the app, one key each."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from astro.config import Settings
from astro.domain.users import Principal
from astro.services.auth import AuthService

SETTINGS = web.AppKey("settings", Settings)
PG_POOL = web.AppKey("pg_pool", asyncpg.Pool)
MONGO_DB = web.AppKey("mongo_db", AsyncDatabase[dict[str, Any]])
REDIS = web.AppKey("redis", aioredis.Redis)
SMTP_ADDRESS = web.AppKey("smtp_address", tuple)  # (host, port) of the SMTP server in use
REGISTRY = web.AppKey("registry", CollectorRegistry)
AUTH = web.AppKey("auth", AuthService)

REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
