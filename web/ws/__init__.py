"""The WebSocket `/ws` (DESIGN 7): the route and the hub of open connections.

transport.py moves frames (bounded queue and its writer, coalescing, direct writes); session.py speaks the
messages (auth, channels, subscribe with a snapshot or a resume); const.py names every type and code."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final

import structlog
from aiohttp import web

from actors.loop import TaskSet
from astro.domain.errors import Unavailable
from web.keys import AUTH, BROADCASTER, REGISTRY
from web.ws.const import WsLimits
from web.ws.session import Session
from web.ws.transport import Connection, WsMetrics

log = structlog.get_logger("astro.ws")

__all__ = ["WS_HUB", "WS_LIMITS", "Connection", "Hub", "Session", "WsLimits", "setup"]


@dataclass(eq=False, slots=True)
class Hub:
    """The open connections of this app and their metrics."""

    metrics: WsMetrics
    connections: set[Connection] = field(default_factory=set)
    sessions: set[Session] = field(default_factory=set)
    stopping: bool = False
    tasks: TaskSet = field(default_factory=TaskSet)

    def signed_out(self, user_id: str | None, jti: str | None) -> None:
        """Close (4401) the sockets of this user, or of this token, open on this node."""
        closed = sum(session.signed_out(user_id, jti) for session in list(self.sessions))
        if closed:
            log.info("ws_signed_out", user_id=user_id, sockets=closed)

    def missed_sign_outs(self) -> None:
        """Sign-outs may have been told while this node did not listen: every session checks its token."""
        for session in list(self.sessions):
            self.tasks.spawn(session.recheck())


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
    hub.sessions.add(session)
    hub.metrics.open.inc()
    try:
        await connection.run(session)
    finally:
        hub.connections.discard(connection)
        hub.sessions.discard(session)
        hub.metrics.open.dec()
    return connection.ws


async def close_all(app: web.Application) -> None:
    """on_shutdown: every socket is closed with 1001."""
    hub = app[WS_HUB]
    hub.stopping = True
    await asyncio.gather(*(c.shutdown() for c in list(hub.connections)), return_exceptions=True)
    await hub.tasks.cancel()


async def _listen_for_sign_outs(app: web.Application) -> None:
    """Sign-outs on any node (logout, a disabled user) close the sockets here (after the cleanup contexts
    started: the Broadcaster is one of them)."""
    app[BROADCASTER].on_sign_out(app[WS_HUB])


def setup(app: web.Application, limits: WsLimits | None = None) -> None:
    """The /ws route and socket closing on shutdown (the Broadcaster is a resource in web/resources.py)."""
    app[WS_LIMITS] = limits or WsLimits()
    app[WS_HUB] = Hub(WsMetrics(app[REGISTRY]))
    app.on_startup.append(_listen_for_sign_outs)
    app.on_shutdown.append(close_all)
    app.router.add_get("/ws", websocket, allow_head=False)
