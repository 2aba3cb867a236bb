"""The WebSocket `/ws`: auth, subscribe with a snapshot or a resume, live events (DESIGN 7)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import struct
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.exceptions import RedisError

from actors.broadcast import LAUNCHES, Broadcaster, agency_channel, launch_channel, traveler_channel
from astro.domain.errors import DomainError, Forbidden, NotFound, Unauthenticated, Unavailable
from astro.domain.users import Principal, Role
from web.clients import REDIS
from web.keys import AUTH, BROADCASTER, REGISTRY, SETTINGS

log = structlog.get_logger("astro.ws")

# Message types
TYPE_AUTH: Final = "auth"
TYPE_SUBSCRIBE: Final = "subscribe"
TYPE_UNSUBSCRIBE: Final = "unsubscribe"
TYPE_PING: Final = "ping"
TYPE_SUBSCRIBED: Final = "subscribed"
TYPE_EVENT: Final = "event"
TYPE_ERROR: Final = "error"
TYPE_PONG: Final = "pong"

# Error codes: every `error` frame carries one of these
ERR_INVALID_MESSAGE: Final = "invalid_message"
ERR_UNAUTHENTICATED: Final = "unauthenticated"
ERR_FORBIDDEN: Final = "forbidden"
ERR_NOT_FOUND: Final = "not_found"
ERR_UNKNOWN_CHANNEL: Final = "unknown_channel"
ERR_TOO_MANY_SUBSCRIPTIONS: Final = "too_many_subscriptions"
ERR_UNAVAILABLE: Final = "unavailable"
ERR_INTERNAL: Final = "internal"

_DOMAIN_CODES: Final[tuple[tuple[type[DomainError], str], ...]] = (
    (Unauthenticated, ERR_UNAUTHENTICATED),
    (Forbidden, ERR_FORBIDDEN),
    (NotFound, ERR_NOT_FOUND),
    (Unavailable, ERR_UNAVAILABLE),
)
_LAUNCH_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
CLOSE_TIMEOUT: Final = 5.0  # for the close handshake
ABORT_AFTER: Final = 10.0  # a dropped client that still does not read loses its socket then


@dataclass(frozen=True, slots=True)
class WsLimits:
    """Per-connection limits; tests shrink them through app[WS_LIMITS] before the app starts."""

    queue_size: int = 256  # frames waiting to be sent; a reader this far behind is dropped (1013)
    idle_timeout: float | None = 300.0  # seconds without a client frame before the server closes
    heartbeat: float = 20.0  # seconds between server pings
    max_subscriptions: int = 100
    max_message: int = 64 * 1024


class WsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge("astro_ws_connections", "WebSocket connections open", registry=registry)
        self.sent = Counter("astro_ws_messages_sent", "WebSocket frames sent", registry=registry)
        self.slow = Counter(
            "astro_ws_slow_dropped", "WebSocket connections closed for falling behind", registry=registry
        )
        self.coalesced = Counter(
            "astro_ws_coalesced", "Events replaced by a newer one before being sent", registry=registry
        )


@dataclass(eq=False, slots=True)
class Hub:
    """The open connections of this app and their metrics."""

    metrics: WsMetrics
    connections: set[Connection] = field(default_factory=set)
    stopping: bool = False


WS_LIMITS: Final = web.AppKey("ws_limits", WsLimits)
WS_HUB: Final = web.AppKey("ws_hub", Hub)


class Refused(Exception):
    """A client request refused with an error frame; the connection stays open."""

    def __init__(self, code: str, message: str, channel: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.channel = code, message, channel


class _Out:
    """A frame waiting in a send queue; a coalesced one is emptied and skipped."""

    __slots__ = ("frame", "key")

    def __init__(self, frame: bytes, key: tuple[str, str] | None) -> None:
        self.frame: bytes | None = frame
        self.key = key


@dataclass(eq=False, slots=True)
class _Sub:
    name: str  # as the client says it
    key: str  # the Broadcaster's channel
    floor: int | None = None  # events up to here are in the snapshot; None: `subscribed` not sent yet
    held: list[tuple[int, bytes, str | None]] = field(default_factory=list)


def _frame(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


# A frame is handed to the socket directly while less than this waits in its buffer (RFC 6455 5.2).
DIRECT_WRITE_LIMIT: Final = 64 * 1024


def _text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame as a server sends it (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class Connection:
    """One client: a reader loop, one writer task, a bounded send queue; a Broadcaster listener."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, hub: Hub) -> None:
        app = request.app
        self._ws = ws
        self._transport = request.transport
        self._hub = hub
        self._limits = app[WS_LIMITS]
        self._broadcaster = app[BROADCASTER]
        self._authenticate = app[AUTH].authenticate
        self.principal: Principal | None = None
        self._subs: dict[str, _Sub] = {}  # by client channel name
        self._keys: dict[str, _Sub] = {}  # by Broadcaster channel
        self._queue: deque[_Out] = deque()
        self._live = 0  # frames in the queue that will be sent
        self._coalescing: dict[tuple[str, str], _Out] = {}
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closing = False
        self._closer: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            TYPE_AUTH: self._on_auth,
            TYPE_SUBSCRIBE: self._on_subscribe,
            TYPE_UNSUBSCRIBE: self._on_unsubscribe,
            TYPE_PING: self._on_ping,
        }

    @property
    def queued(self) -> int:
        """Frames waiting to be sent."""
        return self._live

    async def run(self) -> None:
        """Read client frames until the socket closes; everything is torn down on the way out."""
        self._writer = asyncio.get_running_loop().create_task(self._write())
        try:
            while not self._closing:
                try:
                    msg = await self._ws.receive(timeout=self._limits.idle_timeout)
                except TimeoutError:
                    self._begin_close(WSCloseCode.OK, "idle timeout")
                    break
                if msg.type is WSMsgType.TEXT:
                    await self._handle(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    self._error(ERR_INVALID_MESSAGE, "send JSON text frames")
                else:
                    break
        finally:
            self._stop_delivery()
            if self._closer is not None:
                await self._closer
            for task in [self._writer, *self._tasks]:
                task.cancel()
            await asyncio.gather(self._writer, *self._tasks, return_exceptions=True)

    async def shutdown(self) -> None:
        """Close with 1001: the server is going away."""
        self._begin_close(WSCloseCode.GOING_AWAY, "server shutdown")
        if self._closer is not None:
            await self._closer

    # Client frames

    async def _handle(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            self._error(ERR_INVALID_MESSAGE, "frames must be JSON objects")
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            known = ", ".join(self._handlers)
            self._error(ERR_INVALID_MESSAGE, f'a frame needs a "type": one of {known}')
            return
        try:
            async with self._lock:
                await handler(msg)
        except Refused as exc:
            self._error(exc.code, exc.message, exc.channel)
        except DomainError as exc:
            code = next((c for cls, c in _DOMAIN_CODES if isinstance(exc, cls)), exc.code)
            self._error(code, exc.message, msg.get("channel"))
        except (RedisError, OSError) as exc:
            log.warning("ws_store_unavailable", error=f"{type(exc).__name__}: {exc}")
            self._error(ERR_UNAVAILABLE, "live data is unavailable; retry shortly", msg.get("channel"))
        except Exception:
            log.exception("ws_unhandled_error", type=kind)
            self._error(ERR_INTERNAL, "something went wrong on our side", msg.get("channel"))

    async def _on_auth(self, msg: dict[str, Any]) -> None:
        token = msg.get("token")
        if not isinstance(token, str) or not token.strip():
            raise Refused(ERR_INVALID_MESSAGE, 'auth needs a "token"')
        principal = await self._authenticate(token.strip())
        if self.principal is not None and principal.user_id != self.principal.user_id:
            for sub in [s for s in self._subs.values() if s.name in (Role.AGENCY, Role.TRAVELER)]:
                self._drop(sub)
        self.principal = principal

    async def _on_subscribe(self, msg: dict[str, Any]) -> None:
        name, since, epoch = msg.get("channel"), msg.get("since"), msg.get("epoch")
        if not isinstance(name, str) or not name:
            raise Refused(ERR_INVALID_MESSAGE, 'subscribe needs a "channel"')
        if since is not None and (type(since) is not int or since < 0):
            raise Refused(ERR_INVALID_MESSAGE, '"since" must be an offset (a whole number ≥ 0)', name)
        if epoch is not None and not isinstance(epoch, str):
            raise Refused(ERR_INVALID_MESSAGE, '"epoch" must be a string', name)
        key = self._resolve(name)
        old = self._subs.get(name)
        if old is None and len(self._subs) >= self._limits.max_subscriptions:
            raise Refused(ERR_TOO_MANY_SUBSCRIPTIONS, "unsubscribe from a channel first", name)
        if old is not None:
            self._drop(old)
        sub = _Sub(name, key)
        self._subs[name], self._keys[key] = sub, sub
        # Listen before reading the position: no event falls between the snapshot and the live ones.
        self._broadcaster.subscribe(key, self)
        try:
            await self._activate(sub, since, epoch)
        except BaseException:
            self._drop(sub)
            raise

    async def _on_unsubscribe(self, msg: dict[str, Any]) -> None:
        name = msg.get("channel")
        if not isinstance(name, str) or not name:
            raise Refused(ERR_INVALID_MESSAGE, 'unsubscribe needs a "channel"')
        sub = self._subs.get(name)
        if sub is None:
            self._resolve(name)  # an unknown name is an error; a known one not subscribed is a no-op
            return
        self._drop(sub)

    async def _on_ping(self, msg: dict[str, Any]) -> None:
        self._send(_frame({"type": TYPE_PONG}))

    def _resolve(self, name: str) -> str:
        """The Broadcaster channel behind a client channel name, if this client may have it."""
        if name == LAUNCHES:
            return LAUNCHES
        if name.startswith("launch:"):
            if not _LAUNCH_ID.match(name.removeprefix("launch:")):
                raise Refused(ERR_UNKNOWN_CHANNEL, "launch:<id> needs a launch id", name)
            return launch_channel(name.removeprefix("launch:"))
        for role, channel in ((Role.AGENCY, agency_channel), (Role.TRAVELER, traveler_channel)):
            if name == role.value:
                principal = self.principal
                if principal is None or principal.expires_at < time.time():
                    raise Refused(
                        ERR_UNAUTHENTICATED, f"send auth with a valid {role.value} token first", name
                    )
                if principal.role != role:
                    raise Refused(ERR_FORBIDDEN, f"the {name} channel is for {role.value} accounts", name)
                return channel(principal.user_id)
        raise Refused(ERR_UNKNOWN_CHANNEL, "channels: launch:<id>, launches, agency, traveler", name)

    async def _activate(
        self, sub: _Sub, since: int | None, epoch: str | None, *, restarted: bool = False
    ) -> None:
        """Send `subscribed` (with the snapshot or the missed events), then the events held meanwhile."""
        broadcaster = self._broadcaster
        current, offset = await broadcaster.position(sub.key)
        missed: list[dict[str, Any]] | None = None
        if since is not None and epoch == current:
            events = await broadcaster.since(sub.key, current, since)
            if events is not None:
                missed = [e for e in events if e["offset"] <= offset]
        snapshot = None if missed is not None else await broadcaster.snapshot(self.principal, sub.key)
        if self._keys.get(sub.key) is not sub or self._closing:
            return
        message: dict[str, Any] = {
            "type": TYPE_SUBSCRIBED,
            "channel": sub.name,
            "epoch": current,
            "offset": offset,
            "snapshot": snapshot,
        }
        if since is not None or restarted:
            message["recovered"] = missed is not None
        if missed is not None:
            message["missed"] = [{"type": TYPE_EVENT, "channel": sub.name, **e} for e in missed]
        self._send(_frame(message))
        sub.floor = offset
        held, sub.held = sub.held, []
        for event_offset, frame, coalesce in held:
            self._forward(sub, event_offset, frame, coalesce)

    def _drop(self, sub: _Sub) -> None:
        if self._subs.get(sub.name) is sub:
            del self._subs[sub.name]
        if self._keys.get(sub.key) is sub:
            del self._keys[sub.key]
            self._broadcaster.unsubscribe(sub.key, self)

    # Broadcaster listener: called synchronously, never waits on the socket

    def deliver(self, channel: str, offset: int, event: str, frame: bytes, coalesce: str | None) -> None:
        sub = self._keys.get(channel)
        if sub is None or self._closing:
            return
        if sub.floor is None:
            sub.held.append((offset, frame, coalesce))
            if len(sub.held) > self._limits.queue_size:
                self._overflow()
            return
        self._forward(sub, offset, frame, coalesce)

    def restart(self, channel: str) -> None:
        sub = self._keys.get(channel)
        if sub is None or self._closing:
            return
        sub.floor, sub.held = None, []
        self._spawn(self._resubscribe(sub))

    async def _resubscribe(self, sub: _Sub) -> None:
        async with self._lock:
            if self._keys.get(sub.key) is not sub:
                return
            try:
                await self._activate(sub, None, None, restarted=True)
            except Exception as exc:
                self._drop(sub)
                message = exc.message if isinstance(exc, DomainError) else "live data is unavailable"
                self._error(ERR_UNAVAILABLE, f"the channel had to restart and could not: {message}", sub.name)

    def _forward(self, sub: _Sub, offset: int, frame: bytes, coalesce: str | None) -> None:
        if sub.floor is None or offset <= sub.floor:
            return
        sub.floor = offset
        self._send(frame, (sub.key, coalesce) if coalesce else None)

    # The send queue and its one writer

    def _send(self, frame: bytes, key: tuple[str, str] | None = None) -> None:
        if self._closing:
            return
        if self._live == 0 and self._write_now(frame):
            return
        if key is not None:
            older = self._coalescing.pop(key, None)
            if older is not None:  # not sent yet: the newer value takes its place, at the end
                older.frame = None
                self._live -= 1
                self._hub.metrics.coalesced.inc()
        if self._live >= self._limits.queue_size:
            self._overflow()
            return
        item = _Out(frame, key)
        self._queue.append(item)
        self._live += 1
        if key is not None:
            self._coalescing[key] = item
        if len(self._queue) > 2 * self._limits.queue_size:
            self._queue = deque(i for i in self._queue if i.frame is not None)
        self._wakeup.set()

    def _write_now(self, frame: bytes) -> bool:
        """Nothing waits to be sent and the socket keeps up: hand the frame to it at once.

        With thousands of watchers of one launch, waking each connection's writer task for every event
        cost more than the sending itself; the writer (which waits for the socket to drain) only runs
        for a connection that has frames queued."""
        transport = self._transport
        if (
            transport is None
            or transport.is_closing()
            or self._ws.closed
            or transport.get_write_buffer_size() > DIRECT_WRITE_LIMIT
        ):
            return False
        transport.write(_text_frame(frame))
        self._hub.metrics.sent.inc()
        return True

    def _error(self, code: str, message: str, channel: Any = None) -> None:
        frame: dict[str, Any] = {"type": TYPE_ERROR, "code": code, "message": message}
        if isinstance(channel, str):
            frame["channel"] = channel
        self._send(_frame(frame))

    async def _write(self) -> None:
        sent = self._hub.metrics.sent
        try:
            while True:
                if not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                item = self._queue.popleft()
                frame = item.frame
                if frame is None:
                    continue
                self._live -= 1
                if item.key is not None and self._coalescing.get(item.key) is item:
                    del self._coalescing[item.key]
                await self._ws.send_frame(frame, WSMsgType.TEXT)
                sent.inc()
        except ConnectionError:
            self._stop_delivery()

    # Closing

    def _overflow(self) -> None:
        if self._closing:
            return
        self._hub.metrics.slow.inc()
        log.warning("ws_slow_reader_dropped", queued=self._live, subscriptions=len(self._subs))
        self._begin_close(WSCloseCode.TRY_AGAIN_LATER, "too slow: the send queue is full")

    def _stop_delivery(self) -> None:
        self._closing = True
        for sub in list(self._subs.values()):
            self._drop(sub)
        self._queue.clear()
        self._coalescing.clear()
        self._live = 0

    def _begin_close(self, code: int, reason: str) -> None:
        """Close without waiting: the writer may be stuck on a socket that is not being read."""
        if self._closer is not None:
            return
        self._stop_delivery()
        if self._writer is not None:
            self._writer.cancel()
        self._closer = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self._ws.close(code=code, message=reason.encode(), drain=False), CLOSE_TIMEOUT + 1
            )
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()
        if transport is not None and transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(ABORT_AFTER, transport.abort)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /ws: live channels; JSON text frames as in DESIGN 7."""
    hub = request.app[WS_HUB]
    if hub.stopping:
        raise Unavailable("the server is shutting down")
    limits = request.app[WS_LIMITS]
    ws = web.WebSocketResponse(
        heartbeat=limits.heartbeat, compress=False, max_msg_size=limits.max_message, timeout=CLOSE_TIMEOUT
    )
    await ws.prepare(request)
    connection = Connection(ws, request, hub)
    hub.connections.add(connection)
    hub.metrics.open.inc()
    try:
        await connection.run()
    finally:
        hub.connections.discard(connection)
        hub.metrics.open.dec()
    return ws


async def broadcaster_ctx(app: web.Application) -> AsyncIterator[None]:
    """The Broadcaster of this node, listening to the others through Redis."""
    broadcaster = Broadcaster(app[REDIS], app[SETTINGS].node)
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
    """The /ws route and socket closing on shutdown (broadcaster_ctx is listed in web/resources.py)."""
    app[WS_LIMITS] = limits or WsLimits()
    app[WS_HUB] = Hub(WsMetrics(app[REGISTRY]))
    app.on_shutdown.append(close_all)
    app.router.add_get("/ws", websocket, allow_head=False)
