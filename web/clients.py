"""The drivers' clients of the app (pool, database, Redis, SMTP address): the composition root's keys.

Only the cleanup contexts that build adapters read these (web/resources.py and the contexts its list
names); a handler gets a service instead (web/keys.py). import-linter holds that: see pyproject.toml."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

PG_POOL = web.AppKey("pg_pool", asyncpg.Pool)
MONGO_DB = web.AppKey("mongo_db", AsyncDatabase[dict[str, Any]])
REDIS = web.AppKey("redis", aioredis.Redis)
SMTP_ADDRESS = web.AppKey("smtp_address", tuple)  # (host, port) of the SMTP server in use
