"""The WebSocket `/ws` (DESIGN 7): the route, the hub of open connections, the Broadcaster's resource.

transport.py moves frames (writer task, bounded queue, coalescing, direct writes); session.py speaks the
messages (auth, channels, subscribe with a snapshot or a resume); const.py names every type and code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from actors.broadcast import Broadcaster
from astro.domain.errors import Unavailable
from astro.store.live import RedisLiveStore
from web.keys import AUTH, BROADCASTER, REDIS, REGISTRY, SETTINGS
from web.ws.const import WsLimits
from web.ws.session import Session
from web.ws.transport import Connection, WsMetrics

__all__ = ["WS_HUB", "WS_LIMITS", "Connection", "Hub", "Session", "WsLimits", "broadcaster_ctx", "setup"]


@dataclass(eq=False, slots=True)
class Hub:
    """The open connections of this app and their metrics."""

    metrics: WsMetrics
    connections: set[Connection] = field(default_factory=set)
    stopping: bool = False


WS_LIMITS: Final = web.AppKey("ws_limits", WsLimits)
WS_HUB: Final = web.AppKey("ws_hub", Hub)


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /ws: live channels; JSON text frames as in DESIGN 7."""
    app = request.app
    hub = app[WS_HUB]
    if hub.stopping:
        raise Unavailable("the server is shutting down")
    limits = app[WS_LIMITS]
    connection = await Connection.accept(request, limits, hub.metrics)
    session = Session(connection, app[BROADCASTER], app[AUTH].authenticate, limits)
    hub.connections.add(connection)
    hub.metrics.open.inc()
    try:
        await connection.run(session)
    finally:
        hub.connections.discard(connection)
        hub.metrics.open.dec()
    return connection.ws


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


async def close_all(app: web.Application) -> None:
    """on_shutdown: every socket is closed with 1001."""
    hub = app[WS_HUB]
    hub.stopping = True
    await asyncio.gather(*(c.shutdown() for c in list(hub.connections)), return_exceptions=True)


def setup(app: web.Application, limits: WsLimits | None = None) -> None:
    """The /ws route and socket closing on shutdown; the app lists broadcaster_ctx among its resources."""
    app[WS_LIMITS] = limits or WsLimits()
    app[WS_HUB] = Hub(WsMetrics(app[REGISTRY]))
    app.on_shutdown.append(close_all)
    app.router.add_get("/ws", websocket, allow_head=False)
