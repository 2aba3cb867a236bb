"""create_app(settings): builds the whole application; its resources start in the order of one list."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry

from astro.config import Settings
from astro.domain.clock import Clock, SystemClock
from web import (
    agency_api,
    booking_api,
    finance_api,
    notify_api,
    pages,
    payments_api,
    sync_api,
    system_api,
    ws,
)
from web.keys import BOOKING_OBSERVER, CLOCK, PROBES, REGISTRY, SETTINGS, Probe
from web.metrics import BookingMetrics, HttpMetrics, prometheus
from web.middlewares import guard_answers, make_middleware, name_the_node
from web.monitoring import setup_monitoring
from web.openapi import openapi_docs, openapi_json
from web.resources import RESOURCES

READY_TIMEOUT: Final = 2.0


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


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: each part answers within its time limit; 503 names every part that does not."""
    probes = request.app[PROBES]
    results = await asyncio.gather(*(_check(probe) for probe in probes.values()))
    parts = dict(zip(probes, results, strict=True))
    down = [name for name, part in parts.items() if not part["ok"]]
    body = {"status": "unavailable" if down else "ready", "down": down, "parts": parts}
    headers = {"Retry-After": "5"} if down else None
    return web.json_response(body, status=503 if down else 200, headers=headers)


async def _check(probe: Probe) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), READY_TIMEOUT)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
