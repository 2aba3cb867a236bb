"""The WebSocket transport on a fake socket: direct writes, the bounded queue, coalescing, closing."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from aiohttp import WSCloseCode, WSMessage, WSMsgType
from prometheus_client import CollectorRegistry

from web.ws.const import WsLimits
from web.ws.transport import DIRECT_WRITE_LIMIT, Connection, WsMetrics, text_frame

WAIT = 5.0


class FakeTransport:
    """An asyncio transport that keeps what is written; `buffered` is what it says still waits to go out."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.buffered = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return self if name == "socket" else None

    def frames(self) -> list[bytes]:
        """The payloads of the text frames written, in order (RFC 6455 5.2, unmasked)."""
        out, data, at = [], bytes(self.data), 0
        while at < len(data):
            assert data[at] == 0x81, "a final text frame"
            size, at = data[at + 1], at + 2
            if size == 126:
                (size,), at = struct.unpack_from("!H", data, at), at + 2
            elif size == 127:
                (size,), at = struct.unpack_from("!Q", data, at), at + 8
            out.append(data[at : at + size])
            at += size
        return out


class FakeSocket:
    """What the transport uses of aiohttp's WebSocketResponse. Like aiohttp's writer, send_frame writes the
    whole frame to the transport before its first await; `drained` held clear keeps it waiting after that."""

    prepared = True

    def __init__(self, transport: FakeTransport, compress: int = 0) -> None:
        self.transport = transport
        self.compress = compress
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = b""
        self.inbox: asyncio.Queue[WSMessage] = asyncio.Queue()
        self.drained = asyncio.Event()
        self.drained.set()
        self.sent = asyncio.Condition()
        self.sent_count = 0
        self.reading = asyncio.Event()

    async def send_frame(self, payload: bytes, opcode: WSMsgType) -> None:
        assert opcode is WSMsgType.TEXT
        self.transport.write(text_frame(payload))
        async with self.sent:
            self.sent_count += 1
            self.sent.notify_all()
        await self.drained.wait()

    async def until_sent(self, count: int) -> None:
        async with self.sent:
            await asyncio.wait_for(self.sent.wait_for(lambda: self.sent_count >= count), WAIT)

    def get_extra_info(self, name: str) -> Any:
        return self.transport.get_extra_info(name)

    async def receive(self, timeout: float | None = None) -> WSMessage:  # noqa: ASYNC109 (aiohttp's own)
        self.reading.set()
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def close(self, *, code: int, message: bytes, drain: bool) -> bool:
        self.closed, self.close_code, self.close_reason = True, code, message
        self.inbox.put_nowait(WSMessage(WSMsgType.CLOSED, None, None))  # as aiohttp ends a receive()
        return True


class FakeSession:
    """A session that records what the transport hands it."""

    def __init__(self) -> None:
        self.handled: list[str | bytes] = []
        self.stopped = 0
        self.closed = False
        self.handled_one = asyncio.Event()

    @property
    def subscriptions(self) -> int:
        return 0

    async def handle(self, data: str | bytes) -> None:
        self.handled.append(data)
        self.handled_one.set()

    def stop(self) -> None:
        self.stopped += 1

    async def close(self) -> None:
        self.closed = True


class Wire:
    """A Connection on a fake socket, with its metrics; `start` runs it with a FakeSession."""

    def __init__(self, **limits: Any) -> None:
        self.transport = FakeTransport()
        self.socket = FakeSocket(self.transport)
        self.registry = CollectorRegistry()
        self.connection = Connection(
            self.socket,  # type: ignore[arg-type]
            self.transport,  # type: ignore[arg-type]
            WsLimits(**limits),
            WsMetrics(self.registry),
        )
        self.session = FakeSession()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run the connection; returns once it reads the client."""
        self.task = asyncio.get_running_loop().create_task(self.connection.run(self.session))
        await asyncio.wait_for(self.socket.reading.wait(), WAIT)

    async def finish(self) -> None:
        """The client closes; the connection's run ends."""
        self.socket.inbox.put_nowait(WSMessage(WSMsgType.CLOSE, None, None))
        await self.ended()

    async def ended(self) -> None:
        assert self.task is not None
        await asyncio.wait_for(self.task, WAIT)

    def metric(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0


async def test_a_frame_goes_straight_to_the_socket_when_nothing_waits() -> None:
    wire = Wire()
    wire.connection.send(b'{"n":1}')
    assert wire.transport.frames() == [b'{"n":1}']  # written before any await: no task woke for it
    assert wire.connection.queued == 0 and wire.socket.sent_count == 0
    assert wire.metric("astro_ws_messages_sent_total") == 1


async def test_frames_wait_in_order_while_the_socket_is_behind_then_go_direct_again() -> None:
    wire = Wire()
    wire.transport.buffered = DIRECT_WRITE_LIMIT + 1
    for n in (1, 2, 3):
        wire.connection.send(b"%d" % n)
    assert wire.connection.queued == 3 and wire.transport.frames() == []
    await wire.start()
    await wire.socket.until_sent(3)
    assert wire.connection.queued == 0
    wire.transport.buffered = 0
    wire.connection.send(b"4")
    assert wire.transport.frames() == [b"1", b"2", b"3", b"4"] and wire.socket.sent_count == 3
    assert wire.metric("astro_ws_messages_sent_total") == 4
    await wire.finish()


async def test_a_frame_waits_behind_queued_ones_even_when_the_socket_caught_up() -> None:
    wire = Wire()
    wire.transport.buffered = DIRECT_WRITE_LIMIT + 1
    wire.connection.send(b"1")
    wire.connection.send(b"2")
    wire.transport.buffered = 0
    wire.connection.send(b"3")
    assert wire.transport.frames() == [] and wire.connection.queued == 3
    await wire.start()
    await wire.socket.until_sent(3)
    assert wire.transport.frames() == [b"1", b"2", b"3"]
    await wire.finish()


async def test_a_direct_write_never_overtakes_the_frame_the_writer_is_sending() -> None:
    wire = Wire()
    wire.transport.buffered = DIRECT_WRITE_LIMIT + 1
    wire.socket.drained.clear()  # the writer's frame is written, its drain never ends
    wire.connection.send(b"first")
    await wire.start()
    await wire.socket.until_sent(1)
    wire.transport.buffered = 0
    wire.connection.send(b"second")  # nothing queued: straight to the socket
    assert wire.transport.frames() == [b"first", b"second"]
    wire.socket.drained.set()
    await wire.finish()


async def test_a_writer_task_runs_only_while_frames_wait_and_the_next_ones_keep_their_order() -> None:
    def writers() -> int:
        return sum(
            1 for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == "Connection._write"
        )

    wire = Wire()
    await wire.start()
    assert writers() == 0  # idle: no writer, nothing queued
    wire.transport.buffered = DIRECT_WRITE_LIMIT + 1
    wire.connection.send(b"1")
    wire.connection.send(b"2")
    assert writers() == 1 and wire.connection.queued == 2
    await wire.socket.until_sent(2)
    await asyncio.sleep(0)
    assert writers() == 0 and wire.connection.queued == 0  # drained: the writer ended
    wire.connection.send(b"3", ("launch:l1", "occupancy"))  # behind the socket still: a new writer
    wire.connection.send(b"4", ("launch:l1", "occupancy"))
    assert writers() == 1 and wire.connection.queued == 1
    await wire.socket.until_sent(3)
    await asyncio.sleep(0)
    assert writers() == 0
    wire.transport.buffered = 0
    wire.connection.send(b"5")  # caught up: direct
    assert wire.transport.frames() == [b"1", b"2", b"4", b"5"] and writers() == 0
    await wire.finish()


async def test_a_newer_value_replaces_the_queued_one_and_goes_last() -> None:
    wire = Wire()
    wire.transport.buffered = DIRECT_WRITE_LIMIT + 1
    wire.connection.send(b"seats=1", ("launch:l1", "occupancy"))
    wire.connection.send(b"status")
    wire.connection.send(b"other=7", ("launch:l2", "occupancy"))
    wire.connection.send(b"seats=2", ("launch:l1", "occupancy"))
    wire.connection.send(b"seats=3", ("launch:l1", "occupancy"))
    assert wire.connection.queued == 3 and wire.metric("astro_ws_coalesced_total") == 2
    await wire.start()
    await wire.socket.until_sent(3)
    assert wire.transport.frames() == [b"status", b"other=7", b"seats=3"]
    await wire.finish()


async def test_coalesced_values_never_fill_the_queue() -> None:
    wire = Wire(queue_size=4)
    wire.transport.buffered = DIRECT_WRITE_LIMIT + 1
    for n in range(3):
        wire.connection.send(b"filler %d" % n)
    for seats in range(1, 1001):
        wire.connection.send(b"seats=%d" % seats, ("launch:l1", "occupancy"))
        assert wire.connection.queued == 4
    assert not wire.connection.closing and wire.metric("astro_ws_slow_dropped_total") == 0
    await wire.start()
    await wire.socket.until_sent(4)
    assert wire.transport.frames() == [b"filler 0", b"filler 1", b"filler 2", b"seats=1000"]
    await wire.finish()


async def test_a_reader_past_the_bound_is_closed_with_1013_and_gets_nothing_more() -> None:
    wire = Wire(queue_size=4)
    wire.transport.buffered = DIRECT_WRITE_LIMIT + 1
    await wire.start()
    for n in range(4):
        wire.connection.send(b"%d" % n)
    assert not wire.connection.closing and wire.connection.queued == 4
    wire.connection.send(b"4")
    assert wire.connection.closing and wire.connection.queued == 0
    assert wire.session.stopped >= 1 and wire.metric("astro_ws_slow_dropped_total") == 1
    await wire.ended()
    assert wire.socket.close_code == WSCloseCode.TRY_AGAIN_LATER and wire.transport.closed
    wire.transport.buffered = 0
    wire.connection.send(b"late")
    assert wire.transport.frames() == [] and wire.socket.sent_count == 0
    assert wire.session.closed


async def test_the_session_gets_text_and_binary_frames_until_the_client_closes() -> None:
    wire = Wire()
    await wire.start()
    wire.socket.inbox.put_nowait(WSMessage(WSMsgType.TEXT, '{"type":"ping"}', None))
    wire.socket.inbox.put_nowait(WSMessage(WSMsgType.BINARY, b"\x00", None))
    await wire.finish()
    assert wire.session.handled == ['{"type":"ping"}', b"\x00"]
    assert wire.session.stopped >= 1 and wire.session.closed and wire.connection.closing


async def test_an_idle_client_is_closed_with_1000() -> None:
    wire = Wire(idle_timeout=0.05)
    await wire.start()
    await wire.ended()
    assert wire.socket.close_code == WSCloseCode.OK and wire.socket.close_reason == b"idle timeout"


async def test_shutdown_closes_with_1001() -> None:
    wire = Wire()
    await wire.start()
    await wire.connection.shutdown()
    assert wire.socket.close_code == WSCloseCode.GOING_AWAY and wire.connection.closing
    await wire.ended()


def test_a_compressing_socket_or_another_transport_is_refused() -> None:
    transport = FakeTransport()
    with pytest.raises(AssertionError, match="compress=False"):
        Connection(
            FakeSocket(transport, compress=15),  # type: ignore[arg-type]
            transport,  # type: ignore[arg-type]
            WsLimits(),
            WsMetrics(CollectorRegistry()),
        )
    with pytest.raises(AssertionError):
        Connection(
            FakeSocket(FakeTransport()),  # type: ignore[arg-type]
            transport,  # type: ignore[arg-type]
            WsLimits(),
            WsMetrics(CollectorRegistry()),
        )
