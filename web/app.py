"""create_app(settings): builds the whole application; its resources start in the order of one list."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry

from astro.config import Settings
from astro.domain.clock import Clock, SystemClock
from web import (
    agency_api,
    booking_api,
    documents_api,
    finance_api,
    health,
    notify_api,
    pages,
    password_api,
    payments_api,
    sync_api,
    system_api,
    ws,
)
from web.keys import BOOKING_OBSERVER, CLOCK, PROBES, REGISTRY, SETTINGS
from web.metrics import BookingMetrics, HttpMetrics, prometheus
from web.middlewares import guard_answers, make_middleware, name_the_node
from web.monitoring import setup_monitoring
from web.openapi import openapi_docs, openapi_json
from web.resources import RESOURCES


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """The application for these settings; nothing connects until it starts."""
    for name in ("pg_dsn", "mongo_url", "redis_url"):
        if getattr(settings, name) is None:
            raise ValueError(f"create_app needs settings.{name}; run.py starts the embedded server first")
    registry = CollectorRegistry()
    app = web.Application(
        middlewares=[make_middleware(HttpMetrics(registry), settings.node)], client_max_size=1024 * 1024
    )
    name_the_node(app, settings.node)
    guard_answers(app)
    app[SETTINGS] = settings
    app[REGISTRY] = registry
    app[CLOCK] = clock or SystemClock()
    app[PROBES] = {}
    app[BOOKING_OBSERVER] = BookingMetrics(registry)
    app.cleanup_ctx.extend(RESOURCES)  # the one list, in start-up order (web/resources.py says why)
    setup_monitoring(app)
    health.setup(app)
    app.router.add_get("/metrics", prometheus, allow_head=False)
    app.router.add_get("/api/openapi.json", openapi_json, allow_head=False)
    app.router.add_get("/api/docs", openapi_docs, allow_head=False)
    system_api.setup(app)
    password_api.setup(app)
    documents_api.setup(app)
    agency_api.setup(app)
    booking_api.setup(app)
    finance_api.setup(app)
    sync_api.setup(app)
    notify_api.setup(app)
    payments_api.setup(app)
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
