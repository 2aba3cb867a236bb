"""The WebSocket transport: the socket, its reader loop, a bounded send queue and its writer (DESIGN 7).

It moves frames and knows no message: the session (session.py) reads what the client sends and decides
what goes out. A reader that falls behind gets the newest occupancy, not a backlog, and is dropped (1013)
when even that does not fit. An idle connection (thousands per node) holds no queue and no writer task:
they exist only while frames wait for the socket."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque
from typing import Final, Protocol

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client import CollectorRegistry, Counter, Gauge

from web.ws.const import WsLimits

log = structlog.get_logger("astro.ws")

CLOSE_TIMEOUT: Final = 5.0  # for the close handshake
ABORT_AFTER: Final = 10.0  # a dropped client that still does not read loses its socket then
# A frame is handed to the socket directly while less than this waits in its buffer (RFC 6455 5.2).
DIRECT_WRITE_LIMIT: Final = 64 * 1024

# (Broadcaster channel, coalescing key): a queued frame with the same key is replaced by a newer one
CoalesceKey = tuple[str, str]


class WsMetrics:
    """The WebSocket metrics of one app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge("astro_ws_connections", "WebSocket connections open", registry=registry)
        self.sent = Counter("astro_ws_messages_sent", "WebSocket frames sent", registry=registry)
        self.slow = Counter(
            "astro_ws_slow_dropped", "WebSocket connections closed for falling behind", registry=registry
        )
        self.coalesced = Counter(
            "astro_ws_coalesced", "Events replaced by a newer one before being sent", registry=registry
        )


class Receiver(Protocol):
    """What the transport needs of its session."""

    @property
    def subscriptions(self) -> int:
        """Channels subscribed (for the log)."""
        ...

    async def handle(self, data: str | bytes) -> None:
        """One client frame; never raises."""
        ...

    def stop(self) -> None:
        """No more deliveries: the socket is closing."""
        ...

    async def close(self) -> None:
        """Finish: the session's own tasks end."""
        ...


class _Out:
    """A frame waiting in a send queue; a coalesced one is emptied and skipped."""

    __slots__ = ("frame", "key")

    def __init__(self, frame: bytes, key: CoalesceKey | None) -> None:
        self.frame: bytes | None = frame
        self.key = key


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked, uncompressed text frame as a server sends it (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class Connection:
    """One client's socket: a reader loop, a bounded send queue with coalescing and its writer task."""

    __slots__ = (
        "_closer",
        "_coalescing",
        "_limits",
        "_live",
        "_metrics",
        "_queue",
        "_session",
        "_transport",
        "_writer",
        "closing",
        "ws",
    )

    @classmethod
    async def accept(cls, request: web.Request, limits: WsLimits, metrics: WsMetrics) -> Connection:
        """Complete the handshake; the socket never compresses (the direct write path needs that)."""
        ws = web.WebSocketResponse(
            heartbeat=limits.heartbeat, compress=False, max_msg_size=limits.max_message, timeout=CLOSE_TIMEOUT
        )
        await ws.prepare(request)
        return cls(ws, request.transport, limits, metrics)

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        limits: WsLimits,
        metrics: WsMetrics,
    ) -> None:
        # Preconditions of the direct write path (_write_now): frames are not compressed, and they go into
        # the very transport aiohttp's writer uses, so the two write into one ordered buffer.
        assert ws.prepared and not ws.compress, "the socket must be prepared with compress=False"
        assert transport is None or ws.get_extra_info("socket") is transport.get_extra_info("socket")
        self.ws = ws
        self._transport = transport
        self._limits = limits
        self._metrics = metrics
        self._session: Receiver | None = None
        # The queue, its coalescing index and the writer task exist only while frames wait (see _write).
        self._queue: deque[_Out] | None = None
        self._live = 0  # frames in the queue that will be sent
        self._coalescing: dict[CoalesceKey, _Out] | None = None
        self.closing = False  # the socket is closing: nothing more is sent (an attribute: read per event)
        self._closer: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Frames waiting to be sent."""
        return self._live

    async def run(self, session: Receiver) -> None:
        """Hand client frames to the session until the socket closes; then everything is torn down."""
        self._session = session
        try:
            while not self.closing:
                try:
                    msg = await self.ws.receive(timeout=self._limits.idle_timeout)
                except TimeoutError:
                    self._begin_close(WSCloseCode.OK, "idle timeout")
                    break
                if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
                    await session.handle(msg.data)
                else:
                    break
        finally:
            self._stop_delivery()
            if self._closer is not None:
                await self._closer
            writer = self._writer
            if writer is not None:
                writer.cancel()
            await asyncio.gather(
                session.close(), *(() if writer is None else (writer,)), return_exceptions=True
            )

    async def shutdown(self) -> None:
        """Close with 1001: the server is going away."""
        self._begin_close(WSCloseCode.GOING_AWAY, "server shutdown")
        if self._closer is not None:
            await self._closer

    # The send queue and its writer

    def send(self, frame: bytes, key: CoalesceKey | None = None) -> None:
        """Send a text frame's payload, in order; a queued one with the same key gives way to it."""
        if self.closing:
            return
        if self._live == 0 and self._write_now(frame):
            return
        coalescing = self._coalescing
        if key is not None and coalescing is not None:
            older = coalescing.pop(key, None)
            if older is not None:  # not sent yet: the newer value takes its place, at the end
                older.frame = None
                self._live -= 1
                self._metrics.coalesced.inc()
        if self._live >= self._limits.queue_size:
            self.overflow()
            return
        item = _Out(frame, key)
        queue = self._queue
        if queue is None:
            self._queue = queue = deque()
        queue.append(item)
        self._live += 1
        if key is not None:
            if coalescing is None:
                self._coalescing = coalescing = {}
            coalescing[key] = item
        if len(queue) > 2 * self._limits.queue_size:
            self._queue = deque(i for i in queue if i.frame is not None)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    def _write_now(self, frame: bytes) -> bool:
        """Nothing waits to be sent and the socket keeps up: hand the frame to it at once.

        With thousands of watchers of one launch, waking each connection's writer task for every event
        cost more than the sending itself; a writer (which waits for the socket to drain) only runs
        for a connection that has frames queued.

        Writing raw RFC 6455 frames past aiohttp is correct only because:
        - the socket never compresses (compress=False, asserted in __init__), so a frame is its header and
          its payload as they are, and aiohttp's writer never holds a frame back to compress it;
        - nothing else writes to this transport but aiohttp's writer of this socket (the writer task's
          frames, pings, pongs, the close frame), and each of those writes a whole frame in one call, so
          frames never interleave; after the close frame nothing may follow, hence `ws.closed` below;
        - no frame awaits before it is written: the caller checked that nothing is queued, and the frame
          the writer task took last was written by send_frame before its first await (see _write), so
          this one cannot overtake it."""
        transport = self._transport
        if (
            transport is None
            or transport.is_closing()
            or self.ws.closed
            or transport.get_write_buffer_size() > DIRECT_WRITE_LIMIT
        ):
            return False
        transport.write(text_frame(frame))
        self._metrics.sent.inc()
        return True

    async def _write(self) -> None:
        """Send the queued frames in order, then end: one writer at a time, started by the frame that found
        none running. Nothing between finding the queue empty and ending awaits, so a frame queued after
        that starts the next writer, and an idle socket keeps neither task nor queue."""
        sent = self._metrics.sent
        try:
            while self._queue:
                item = self._queue.popleft()
                frame = item.frame
                if frame is None:
                    continue
                self._live -= 1
                coalescing = self._coalescing
                if item.key is not None and coalescing is not None and coalescing.get(item.key) is item:
                    del coalescing[item.key]
                # From here `_live` may be 0 and a new frame take the direct path (_write_now). It cannot
                # overtake this one: without compression send_frame writes the frame to the transport
                # before its first await, which only waits for the socket to drain.
                await self.ws.send_frame(frame, WSMsgType.TEXT)
                sent.inc()
        except ConnectionError:
            self._stop_delivery()
        else:
            self._queue = self._coalescing = self._writer = None

    # Closing

    def overflow(self) -> None:
        """The reader fell too far behind: close with 1013."""
        if self.closing:
            return
        self._metrics.slow.inc()
        subscriptions = self._session.subscriptions if self._session is not None else 0
        log.warning("ws_slow_reader_dropped", queued=self._live, subscriptions=subscriptions)
        self._begin_close(WSCloseCode.TRY_AGAIN_LATER, "too slow: the send queue is full")

    def end(self, code: int, reason: str) -> None:
        """Close with this code, for the session (signed out, a probing client); what the session sent before
        still goes out first when it was already written (the direct path) — the reason says it again."""
        if self.closing:
            return
        log.info("ws_closed_by_session", code=code, reason=reason)
        self._begin_close(code, reason)

    def _stop_delivery(self) -> None:
        self.closing = True
        if self._session is not None:
            self._session.stop()
        self._queue = self._coalescing = None
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
                self.ws.close(code=code, message=reason.encode(), drain=False), CLOSE_TIMEOUT + 1
            )
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()
        if transport is not None and transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(ABORT_AFTER, transport.abort)
