"""The WebSocket /ws end to end: snapshot and events, resume, auth, bad frames, slow readers, shutdown."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientWebSocketResponse, WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestClient

from actors.broadcast import Broadcaster
from astro.config import Settings
from astro.domain.errors import NotFound
from astro.domain.users import Principal
from astro.services.live import agency_channel, traveler_channel
from astro.store import cache
from astro.store.live import RedisLiveStore
from tests.conftest import Account
from web.app import create_app
from web.keys import BROADCASTER, REGISTRY
from web.ws import WS_HUB, WS_LIMITS, Connection, WsLimits

WAIT = 5.0
BIG = "x" * 65536  # a frame this size fills socket buffers quickly

Client = TestClient[web.Request, web.Application]
MakeApp = Callable[..., Awaitable[Client]]


class Live:
    """Simple snapshot providers for every kind of channel; `seats` is the state they report."""

    def __init__(self, app: web.Application) -> None:
        self.broadcaster: Broadcaster = app[BROADCASTER]
        self.seats: dict[str, int] = {}
        for kind in ("launch", "launches", "agency", "traveler"):
            self.broadcaster.register_snapshot(kind, self.snapshot)

    async def snapshot(self, principal: Principal | None, channel: str) -> dict[str, Any]:
        if channel == "launch:gone":
            raise NotFound("no such launch")
        user = principal.user_id if principal else None
        return {"channel": channel, "user": user, "seats": self.seats.get(channel, 0)}

    async def publish(self, channel: str, event: str, data: dict[str, Any], **kw: Any) -> int:
        return await self.broadcaster.publish(channel, event, data, **kw)


@pytest.fixture
def make_app(aiohttp_client: Any, settings: Settings) -> MakeApp:
    """A started app with these WebSocket limits (and node name)."""

    async def make(node: str = "test-node", **limits: Any) -> Client:
        app = create_app(settings.replace(node=node))
        app[WS_LIMITS] = WsLimits(**limits)
        return await aiohttp_client(app)  # type: ignore[no-any-return]

    return make


@pytest.fixture
def live(client: Client) -> Live:
    return Live(client.app)


async def recv(ws: ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=WAIT)
    assert msg.type is WSMsgType.TEXT, msg
    frame: dict[str, Any] = json.loads(msg.data)
    return frame


async def subscribe(ws: ClientWebSocketResponse, channel: str, **extra: Any) -> dict[str, Any]:
    await ws.send_json({"type": "subscribe", "channel": channel, **extra})
    return await recv(ws)


async def auth(ws: ClientWebSocketResponse, account: Account) -> None:
    await ws.send_json({"type": "auth", "token": account.token})


def metric(client: Client, name: str) -> float:
    return client.app[REGISTRY].get_sample_value(name) or 0.0


def server_side(client: Client) -> Connection:
    (connection,) = client.app[WS_HUB].connections
    return connection


async def test_snapshot_first_then_events_in_offset_order(client: Client, live: Live) -> None:
    await live.publish("launch:l1", "occupancy", {"seats": 1})
    live.seats["launch:l1"] = 1
    ws = await client.ws_connect("/ws")
    subscribed = await subscribe(ws, "launch:l1")
    assert subscribed == {
        "type": "subscribed",
        "channel": "launch:l1",
        "epoch": subscribed["epoch"],
        "offset": 1,
        "snapshot": {"channel": "launch:l1", "user": None, "seats": 1},
    }
    for seats in range(2, 7):
        await live.publish("launch:l1", "occupancy", {"seats": seats})
    events = [await recv(ws) for _ in range(5)]
    assert events[0] == {
        "type": "event",
        "channel": "launch:l1",
        "offset": 2,
        "event": "occupancy",
        "data": {"seats": 2},
    }
    assert [e["offset"] for e in events] == [2, 3, 4, 5, 6]
    assert [e["data"]["seats"] for e in events] == [2, 3, 4, 5, 6]


async def test_launches_channel_is_public(client: Client, live: Live) -> None:
    ws = await client.ws_connect("/ws")
    assert (await subscribe(ws, "launches"))["snapshot"] == {"channel": "launches", "user": None, "seats": 0}
    await live.publish("launches", "launch_added", {"id": "l9"})
    assert (await recv(ws))["data"] == {"id": "l9"}


async def test_resume_with_since_gets_exactly_the_missed_events(client: Client, live: Live) -> None:
    ws = await client.ws_connect("/ws")
    first = await subscribe(ws, "launch:l1")
    for seats in (1, 2):
        await live.publish("launch:l1", "occupancy", {"seats": seats})
    seen = [await recv(ws) for _ in range(2)]
    await ws.close()
    for seats in (3, 4, 5):
        await live.publish("launch:l1", "occupancy", {"seats": seats})

    ws = await client.ws_connect("/ws")
    resumed = await subscribe(ws, "launch:l1", since=seen[-1]["offset"], epoch=first["epoch"])
    assert resumed["recovered"] is True and resumed["epoch"] == first["epoch"] and resumed["offset"] == 5
    assert resumed["missed"] == [
        {"type": "event", "channel": "launch:l1", "offset": n, "event": "occupancy", "data": {"seats": n}}
        for n in (3, 4, 5)
    ]
    await live.publish("launch:l1", "occupancy", {"seats": 6})
    assert (await recv(ws))["offset"] == 6


async def test_resume_with_unknown_epoch_gets_a_fresh_snapshot(client: Client, live: Live) -> None:
    for seats in (1, 2):
        await live.publish("launch:l1", "occupancy", {"seats": seats})
    live.seats["launch:l1"] = 2
    ws = await client.ws_connect("/ws")
    resumed = await subscribe(ws, "launch:l1", since=1, epoch="an-epoch-long-gone")
    assert resumed["recovered"] is False and "missed" not in resumed
    assert resumed["offset"] == 2 and resumed["snapshot"]["seats"] == 2
    without_epoch = await subscribe(ws, "launch:l1", since=1)
    assert without_epoch["recovered"] is False and without_epoch["snapshot"]["seats"] == 2


async def test_resume_too_far_back_gets_a_fresh_snapshot(client: Client, live: Live) -> None:
    ws = await client.ws_connect("/ws")
    epoch = (await subscribe(ws, "launch:l1"))["epoch"]
    await ws.close()
    for seats in range(1, 206):  # more than the history keeps
        await live.publish("launch:l1", "occupancy", {"seats": seats})
    ws = await client.ws_connect("/ws")
    resumed = await subscribe(ws, "launch:l1", since=1, epoch=epoch)
    assert resumed["recovered"] is False and resumed["offset"] == 205 and "snapshot" in resumed


async def test_lost_redis_state_sends_a_fresh_snapshot(
    client: Client, live: Live, settings: Settings
) -> None:
    ws = await client.ws_connect("/ws")
    old = await subscribe(ws, "launch:l1")
    redis = aioredis.Redis.from_url(settings.redis_url or "")
    await redis.flushdb()
    await redis.aclose()
    live.seats["launch:l1"] = 7
    await live.publish("launch:l1", "occupancy", {"seats": 7})
    again = await recv(ws)
    assert again["type"] == "subscribed" and again["recovered"] is False
    assert again["epoch"] != old["epoch"] and again["offset"] == 1 and again["snapshot"]["seats"] == 7
    await live.publish("launch:l1", "occupancy", {"seats": 8})
    assert (await recv(ws))["offset"] == 2


async def test_agency_channel_needs_an_authenticated_agency(
    client: Client,
    live: Live,
    make_agency: Callable[..., Awaitable[Account]],
    make_traveler: Callable[..., Awaitable[Account]],
) -> None:
    agency, other, traveler = await make_agency(), await make_agency(), await make_traveler()
    ws = await client.ws_connect("/ws")
    refused = await subscribe(ws, "agency")
    assert refused["type"] == "error" and refused["code"] == "unauthenticated"

    await auth(ws, traveler)
    assert (await subscribe(ws, "agency"))["code"] == "forbidden"
    mine = await subscribe(ws, "traveler")
    assert mine["type"] == "subscribed" and mine["snapshot"]["user"] == traveler.id

    ws = await client.ws_connect("/ws")
    await auth(ws, agency)
    subscribed = await subscribe(ws, "agency")
    assert subscribed["channel"] == "agency" and subscribed["snapshot"]["user"] == agency.id
    assert (await subscribe(ws, "traveler"))["code"] == "forbidden"
    await live.publish(agency_channel(other.id), "booking_confirmed", {"for": "other"})
    await live.publish(traveler_channel(traveler.id), "status", {"for": "traveler"})
    await live.publish(agency_channel(agency.id), "booking_confirmed", {"for": "me"})
    event = await recv(ws)
    assert event["channel"] == "agency" and event["data"] == {"for": "me"}


async def test_auth_with_a_bad_token_is_an_error_frame(client: Client, live: Live) -> None:
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "auth", "token": "not-a-token"})
    error = await recv(ws)
    assert error["type"] == "error" and error["code"] == "unauthenticated" and error["message"]
    await ws.send_json({"type": "auth"})
    assert (await recv(ws))["code"] == "invalid_message"
    assert (await subscribe(ws, "traveler"))["code"] == "unauthenticated"
    assert (await subscribe(ws, "launches"))["type"] == "subscribed"


async def test_bad_frames_get_error_frames_and_the_connection_stays_usable(
    client: Client, live: Live
) -> None:
    ws = await client.ws_connect("/ws")
    bad: list[tuple[Any, str]] = [
        ("not json", "invalid_message"),
        ("[1, 2]", "invalid_message"),
        ('{"no": "type"}', "invalid_message"),
        ('{"type": "launch_rocket"}', "invalid_message"),
        ('{"type": "subscribe"}', "invalid_message"),
        ('{"type": "subscribe", "channel": 7}', "invalid_message"),
        ('{"type": "subscribe", "channel": "launch:l1", "since": "x"}', "invalid_message"),
        ('{"type": "subscribe", "channel": "launch:l1", "since": -1}', "invalid_message"),
        ('{"type": "subscribe", "channel": "launch:l1", "epoch": 5}', "invalid_message"),
        ('{"type": "subscribe", "channel": "moon"}', "unknown_channel"),
        ('{"type": "subscribe", "channel": "launch:"}', "unknown_channel"),
        ('{"type": "subscribe", "channel": "agency:usr_1"}', "unknown_channel"),
        ('{"type": "unsubscribe", "channel": "moon"}', "unknown_channel"),
        ('{"type": "subscribe", "channel": "launch:gone"}', "not_found"),
    ]
    for text, code in bad:
        await ws.send_str(text)
        error = await recv(ws)
        assert error["type"] == "error" and error["code"] == code, (text, error)
    await ws.send_bytes(b"\x00\x01")
    assert (await recv(ws))["code"] == "invalid_message"
    # launch:gone was refused: its events do not arrive, and the socket still answers.
    await live.publish("launch:gone", "status", {"status": "aborted"})
    await ws.send_json({"type": "ping"})
    assert await recv(ws) == {"type": "pong"}
    assert (await subscribe(ws, "launch:l1"))["type"] == "subscribed"
    assert not ws.closed


async def test_an_unreachable_live_store_is_an_unavailable_frame_and_the_socket_stays(
    client: Client, live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = await client.ws_connect("/ws")
    nowhere = cache.connect("redis://127.0.0.1:1/0")  # nothing listens on port 1
    monkeypatch.setattr(live.broadcaster, "_store", RedisLiveStore(nowhere, "test-node"))
    error = await subscribe(ws, "launch:l1")
    assert error == {
        "type": "error",
        "code": "unavailable",
        "message": "live data is unavailable; retry shortly",
        "channel": "launch:l1",
    }
    monkeypatch.undo()
    await nowhere.aclose()
    await ws.send_json({"type": "ping"})
    assert await recv(ws) == {"type": "pong"}
    assert (await subscribe(ws, "launch:l1"))["type"] == "subscribed"


async def test_ping_gets_pong(client: Client) -> None:
    ws = await client.ws_connect("/ws")
    for _ in range(3):
        await ws.send_json({"type": "ping"})
        assert await recv(ws) == {"type": "pong"}


async def test_unsubscribe_stops_the_events(client: Client, live: Live) -> None:
    ws = await client.ws_connect("/ws")
    await subscribe(ws, "launch:l1")
    await subscribe(ws, "launch:l2")
    await ws.send_json({"type": "unsubscribe", "channel": "launch:l1"})
    await ws.send_json({"type": "unsubscribe", "channel": "launch:l1"})  # twice is fine
    await live.publish("launch:l1", "occupancy", {"seats": 1})
    await live.publish("launch:l2", "occupancy", {"seats": 2})
    event = await recv(ws)
    assert event["channel"] == "launch:l2"


async def test_events_cross_nodes(make_app: MakeApp) -> None:
    node_a, node_b = await make_app(node="node-a"), await make_app(node="node-b")
    publisher, watcher = Live(node_a.app), Live(node_b.app)
    ws = await node_b.ws_connect("/ws")
    await subscribe(ws, "launch:l1")
    for seats in (1, 2):
        await publisher.publish("launch:l1", "occupancy", {"seats": seats})
    await watcher.publish("launch:l1", "occupancy", {"seats": 3})
    assert [(await recv(ws))["data"]["seats"] for _ in range(3)] == [1, 2, 3]


async def test_a_reader_that_falls_behind_gets_the_newest_occupancy(make_app: MakeApp) -> None:
    client = await make_app(queue_size=64)
    live = Live(client.app)
    ws = await client.ws_connect("/ws")
    await subscribe(ws, "launches")
    await subscribe(ws, "launch:l1")
    connection = server_side(client)
    # Big frames the client does not read until the socket is full and frames wait in the queue.
    fillers = 0
    while connection.queued < 4:
        fillers += 1
        assert fillers < 2000, "the socket never filled up"
        await live.publish("launches", "launch_added", {"pad": BIG})
    for seats in range(1, 201):
        await live.publish("launch:l1", "occupancy", {"seats": seats}, coalesce="occupancy:l1")
        assert connection.queued < 64
    assert metric(client, "astro_ws_coalesced_total") > 0

    occupancy: list[int] = []
    offsets: list[int] = []
    while not occupancy or occupancy[-1] != 200:
        frame = await recv(ws)
        assert frame["type"] == "event"
        if frame["channel"] == "launch:l1":
            occupancy.append(frame["data"]["seats"])
            offsets.append(frame["offset"])
    assert len(occupancy) < 200 and occupancy == sorted(occupancy)
    assert offsets == sorted(set(offsets))
    await ws.send_json({"type": "ping"})
    assert await recv(ws) == {"type": "pong"}


async def test_a_reader_that_never_reads_is_dropped_without_delaying_others(make_app: MakeApp) -> None:
    client = await make_app(queue_size=16)
    live = Live(client.app)
    stuck = await client.ws_connect("/ws")
    normal = await client.ws_connect("/ws")
    await subscribe(stuck, "launch:l1")
    await subscribe(normal, "launch:l1")
    latencies: list[float] = []
    offset, after_drop = 0, 0
    while after_drop < 20:
        assert offset < 3000, "the stuck reader was never dropped"
        started = time.perf_counter()
        offset = await live.publish("launch:l1", "status", {"pad": BIG, "n": offset + 1})
        event = await recv(normal)
        latencies.append(time.perf_counter() - started)
        assert event["offset"] == offset
        if metric(client, "astro_ws_slow_dropped_total"):
            after_drop += 1
    assert metric(client, "astro_ws_slow_dropped_total") == 1
    assert len(latencies) == offset and max(latencies) < 1.0, max(latencies)

    got: list[int] = []
    while True:
        msg = await stuck.receive(timeout=WAIT)
        if msg.type is not WSMsgType.TEXT:
            break
        got.append(json.loads(msg.data)["offset"])
    assert msg.type is WSMsgType.CLOSE and msg.data == WSCloseCode.TRY_AGAIN_LATER
    assert got == list(range(1, len(got) + 1)) and len(got) < offset
    assert metric(client, "astro_ws_connections") == 1


async def test_idle_connection_is_closed(make_app: MakeApp) -> None:
    client = await make_app(idle_timeout=0.3)
    busy = await client.ws_connect("/ws")
    idle = await client.ws_connect("/ws")
    closed = asyncio.ensure_future(idle.receive(timeout=WAIT))
    # The busy one, opened first, talks until the idle one is closed and once more after: by then it is
    # older than the idle timeout, so only its frames can have kept it open.
    while not closed.done():
        await busy.send_json({"type": "ping"})
        assert await recv(busy) == {"type": "pong"}
    await busy.send_json({"type": "ping"})
    assert await recv(busy) == {"type": "pong"}
    msg = closed.result()
    assert msg.type is WSMsgType.CLOSE and msg.data == WSCloseCode.OK and msg.extra == "idle timeout"
    assert not busy.closed


async def test_shutdown_closes_every_socket_with_going_away(client: Client, live: Live) -> None:
    sockets = [await client.ws_connect("/ws") for _ in range(3)]
    for ws in sockets:
        await subscribe(ws, "launches")
    closing = asyncio.create_task(client.server.close())
    for ws in sockets:
        msg = await ws.receive(timeout=WAIT)
        assert msg.type is WSMsgType.CLOSE and msg.data == WSCloseCode.GOING_AWAY
    await asyncio.wait_for(closing, WAIT)


async def test_connection_metrics(client: Client, live: Live) -> None:
    sockets = [await client.ws_connect("/ws") for _ in range(2)]
    for ws in sockets:
        await subscribe(ws, "launches")
    assert metric(client, "astro_ws_connections") == 2
    assert metric(client, "astro_ws_messages_sent_total") >= 2
    await sockets[0].close()
    await subscribe(sockets[1], "launch:l1")  # a round trip: the first close has been handled
    assert metric(client, "astro_ws_connections") == 1
    text = await (await client.get("/metrics")).text()
    assert "astro_ws_connections 1.0" in text and "astro_ws_slow_dropped_total 0.0" in text


async def test_plain_get_is_refused_with_the_error_body(client: Client) -> None:
    resp = await client.get("/ws")
    assert resp.status == 400 and (await resp.json())["error"]["code"]
