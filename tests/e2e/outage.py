"""Helpers of the Redis-outage tests: an app on a private Redis, launches, bookings that are past their
authentication (the one step that needs Redis) when the test stops Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import Account, MakeClient, future, passengers
from tests.stoppable_redis import StoppableRedis
from web.resources import GATEWAY

Client = TestClient[web.Request, web.Application]
WAIT = 15.0


@asynccontextmanager
async def private_redis(directory: Path, *, persistent: bool = False) -> AsyncIterator[StoppableRedis]:
    """A private Redis for one test; without persistence a restarted one is empty, with it (as the
    embedded default) it keeps what it had."""
    server = StoppableRedis(directory, persistent=persistent)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def app_on(make_client: MakeClient, server: StoppableRedis, **changes: Any) -> Client:
    """The platform (create_app with the test settings) on the private Redis."""
    client: Client = await make_client(redis_url=server.url(), **changes)
    return client


async def new_launch(client: Client, agency: Account, *, capacity: int = 20, min_passengers: int = 20) -> str:
    resp = await client.post(
        "/api/agency/rockets",
        headers=agency.headers,
        json={"name": "Falcon Z", "capacity": capacity, "range": "mars"},
    )
    assert resp.status == 201, await resp.text()
    rocket = (await resp.json())["rocket"]
    resp = await client.post(
        "/api/agency/launches",
        headers=agency.headers,
        json={
            "rocket_id": rocket["id"],
            "mission": "Tranquility tour",
            "destination": "moon",
            "scheduled_at": future(30),
            "price_cents": 100_000,
            "min_passengers": min_passengers,
        },
    )
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["launch"]["id"])


async def book(client: Client, traveler: Account, launch_id: str, seats: int, card: str = "tok_ok") -> Any:
    return await client.post(
        "/api/booking/bookings",
        headers=traveler.headers,
        json={"launch_id": launch_id, "seats": seats, "passengers": passengers(seats), "card_token": card},
    )


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT) -> None:
    """Poll `check` until true, with a deadline: for what nothing signals (rows written in the background)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


async def past_authentication(
    client: Client, requests: list[Coroutine[Any, Any, Any]]
) -> list[asyncio.Task[Any]]:
    """Start the requests -- bookings with the slow sandbox card -- and return once each is at the
    gateway (authenticated; authentication reads Redis once for all the requests that ask together): from
    there on they need no Redis until their commit, so the test may stop it."""
    charging = client.app[GATEWAY].charging  # type: ignore[attr-defined]  # the sandbox's
    tasks = [asyncio.ensure_future(r) for r in requests]

    async def authenticated() -> bool:
        return len(charging) >= len(tasks)

    await until(authenticated, "every request authenticated and at the gateway")
    return tasks


async def subscribe(
    client: Client,
    channel: str,
    token: str | None = None,
    *,
    since: int | None = None,
    epoch: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """A WebSocket subscribed to `channel` (resuming from `since` in `epoch` when given), and its
    `subscribed` frame."""
    ws = await client.ws_connect("/ws")
    if token:
        await ws.send_json({"type": "auth", "token": token})
    message: dict[str, Any] = {"type": "subscribe", "channel": channel}
    if since is not None:
        message |= {"since": since, "epoch": epoch}
    await ws.send_json(message)
    first = await ws.receive_json(timeout=WAIT)
    assert first["type"] == "subscribed", first
    return ws, first


async def frames_until(ws: Any, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The frames a WebSocket receives until one satisfies `done` (that one included)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        while True:
            frame = await ws.receive_json()
            assert frame["type"] in ("event", "subscribed", "pong"), frame
            seen.append(frame)
            if done(frame):
                return seen


def seats(frame: dict[str, Any]) -> int | None:
    """The seats booked a frame of a launch channel shows: an occupancy event's, or a snapshot's."""
    if frame["type"] == "event" and frame["event"] == "occupancy":
        return int(frame["data"]["seats_booked"])
    if frame["type"] == "subscribed" and frame["snapshot"]:
        return int(frame["snapshot"]["launch"]["seats_booked"])
    return None
