"""The WebSocket against an attacker (issue 14): sign-out closes sockets on every node, refused subscriptions
create nothing and count toward the cap, VIP-only launches reach only VIP subscribers, malformed frames."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestClient

from astro.config import Settings
from tests.conftest import Account, agency_body, create_launch, passengers, register, traveler_body
from web.app import create_app
from web.keys import AUTH, BROADCASTER
from web.ws import WS_LIMITS, WsLimits

WAIT = 5.0
SIGNED_OUT = 4401
POLICY = 1008
API = "/api/system"

Client = TestClient[web.Request, web.Application]


async def recv(ws: ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=WAIT)
    assert msg.type is WSMsgType.TEXT, msg
    frame: dict[str, Any] = json.loads(msg.data)
    return frame


async def closed_with(ws: ClientWebSocketResponse) -> int | None:
    """The close code the server sent (text frames before it are skipped)."""
    while True:
        msg = await ws.receive(timeout=WAIT)
        if msg.type is WSMsgType.CLOSE:
            return msg.data  # type: ignore[no-any-return]
        if msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING):
            return ws.close_code
        assert msg.type is WSMsgType.TEXT, msg


async def subscribe(ws: ClientWebSocketResponse, channel: str) -> dict[str, Any]:
    await ws.send_json({"type": "subscribe", "channel": channel})
    return await recv(ws)


async def signed_in(client: Client, account: Account, channel: str) -> ClientWebSocketResponse:
    """A socket authenticated as the account, subscribed to its own channel."""
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "auth", "token": account.token})
    assert (await subscribe(ws, channel))["type"] == "subscribed"
    return ws


@pytest.fixture
async def node_b(aiohttp_client: Any, settings: Settings) -> Client:
    """A second node on the same stores as `client`."""
    return await aiohttp_client(create_app(settings.replace(node="node-b")))  # type: ignore[no-any-return]


def without_sign_out_push(client: Client) -> None:
    """The push that closes sockets is lost: only the re-check on the next subscribe is left."""

    async def lost(*, user_id: str | None = None, jti: str | None = None) -> None:
        return None

    client.app[BROADCASTER].sign_out = lost  # type: ignore[method-assign]


# Finding 3: access outlives logout and disable


async def test_logout_closes_the_tokens_socket(client: Client, make_traveler: Any) -> None:
    traveler = await make_traveler()
    ws = await signed_in(client, traveler, "traveler")
    resp = await client.post(f"{API}/auth/logout", headers=traveler.headers)
    assert resp.status == 204
    assert await closed_with(ws) == SIGNED_OUT


async def test_after_logout_the_next_subscribe_is_refused_and_the_socket_closed(
    client: Client, make_agency: Any
) -> None:
    without_sign_out_push(client)
    agency = await make_agency()
    ws = await signed_in(client, agency, "launches")
    resp = await client.post(f"{API}/auth/logout", headers=agency.headers)
    assert resp.status == 204
    refused = await subscribe(ws, "agency")
    assert refused["type"] == "error" and refused["code"] == "unauthenticated", refused
    assert "revoked" in refused["message"]
    assert await closed_with(ws) == SIGNED_OUT


async def test_a_disabled_users_socket_is_closed(
    client: Client, make_traveler: Any, make_employee: Any
) -> None:
    traveler, it = await make_traveler(), await make_employee("it")
    ws = await signed_in(client, traveler, "traveler")
    resp = await client.patch(f"{API}/users/{traveler.id}", json={"disabled": True}, headers=it.headers)
    assert resp.status == 200
    assert await closed_with(ws) == SIGNED_OUT


async def test_a_disabled_user_cannot_subscribe_even_when_the_push_is_lost(
    client: Client, make_traveler: Any, make_employee: Any
) -> None:
    without_sign_out_push(client)
    traveler, it = await make_traveler(), await make_employee("it")
    ws = await signed_in(client, traveler, "launches")
    resp = await client.patch(f"{API}/users/{traveler.id}", json={"disabled": True}, headers=it.headers)
    assert resp.status == 200
    refused = await subscribe(ws, "traveler")
    assert refused["code"] == "unauthenticated" and "disabled" in refused["message"], refused
    assert await closed_with(ws) == SIGNED_OUT


async def test_logout_on_one_node_closes_the_socket_on_the_other(
    client: Client, node_b: Client, make_traveler: Any
) -> None:
    traveler = await make_traveler()
    on_b = await signed_in(node_b, traveler, "traveler")
    resp = await client.post(f"{API}/auth/logout", headers=traveler.headers)
    assert resp.status == 204
    assert await closed_with(on_b) == SIGNED_OUT


async def test_disable_on_one_node_closes_every_socket_of_the_user_on_the_other(
    client: Client, node_b: Client, make_traveler: Any, make_employee: Any
) -> None:
    traveler, other, it = await make_traveler(), await make_traveler(), await make_employee("it")
    login = await node_b.post(
        f"{API}/auth/login", json={"email": traveler.email, "password": traveler.password}
    )
    token = (await login.json())["token"]
    second = Account(traveler.id, traveler.email, traveler.password, token, "traveler")
    sockets = [await signed_in(node_b, a, "traveler") for a in (traveler, second)]
    bystander = await signed_in(node_b, other, "traveler")
    resp = await client.patch(f"{API}/users/{traveler.id}", json={"disabled": True}, headers=it.headers)
    assert resp.status == 200
    assert [await closed_with(ws) for ws in sockets] == [SIGNED_OUT, SIGNED_OUT]
    await bystander.send_json({"type": "ping"})
    assert await recv(bystander) == {"type": "pong"}


async def test_refresh_does_not_close_the_socket(client: Client, make_traveler: Any) -> None:
    traveler = await make_traveler()
    ws = await signed_in(client, traveler, "traveler")
    resp = await client.post(f"{API}/auth/refresh", headers=traveler.headers)
    assert resp.status == 200
    await ws.send_json({"type": "auth", "token": (await resp.json())["token"]})
    assert (await subscribe(ws, "launches"))["type"] == "subscribed"


# Finding 7: refused subscriptions fill Redis


async def live_keys(settings: Settings, pattern: str) -> int:
    redis = aioredis.from_url(settings.redis_url or "")
    try:
        return len([k async for k in redis.scan_iter(match=pattern, count=1000)])
    finally:
        await redis.aclose()


async def test_2000_refused_subscriptions_create_no_key_and_each_socket_is_closed_at_the_cap(
    client: Client, settings: Settings
) -> None:
    cap = WsLimits().max_subscriptions
    assert cap == 100
    for _ in range(20):
        ws = await client.ws_connect("/ws")
        codes = []
        for _ in range(cap):
            codes.append((await subscribe(ws, f"launch:junk{secrets.token_hex(6)}"))["code"])
        assert codes == ["not_found"] * cap
        assert await closed_with(ws) == POLICY
    assert await live_keys(settings, "astro:live:*junk*") == 0


async def test_refused_subscriptions_count_toward_the_cap(
    aiohttp_client: Any, settings: Settings, make_agency: Any, make_launch: Any
) -> None:
    app = create_app(settings.replace(node="capped"))
    app[WS_LIMITS] = WsLimits(max_subscriptions=4)
    capped = await aiohttp_client(app)
    ws = await capped.ws_connect("/ws")
    assert (await subscribe(ws, "launch:nope1"))["code"] == "not_found"
    assert (await subscribe(ws, "launch:nope2"))["code"] == "not_found"
    assert (await subscribe(ws, "launches"))["type"] == "subscribed"
    assert (await subscribe(ws, "launch:nope3"))["code"] == "not_found"
    assert (await subscribe(ws, "launch:nope4"))["code"] == "too_many_subscriptions"
    assert await closed_with(ws) == POLICY
    assert await live_keys(settings, "astro:live:{launch:nope*") == 0


# Finding 8: VIP-only launches on the public list


async def test_a_vip_only_launch_reaches_only_vip_subscribers_of_launches(make_client: Any) -> None:
    client = await make_client(vip_window=3600)
    vip = await register(client, traveler_body())
    await client.app[AUTH].set_flags(vip.id, vip=True, disabled=None)
    anonymous = await client.ws_connect("/ws")
    assert (await subscribe(anonymous, "launches"))["type"] == "subscribed"
    vip_ws = await signed_in(client, vip, "launches")

    launch = await create_launch(client, await register(client, agency_body()), capacity=10, min_passengers=1)
    assert launch["vip_only"] is True
    added = await recv(vip_ws)
    assert (added["channel"], added["event"]) == ("launches", "launch_added")
    assert added["data"]["id"] == launch["id"]
    resp = await client.post(
        "/api/booking/bookings",
        headers=vip.headers,
        json={"launch_id": launch["id"], "seats": 1, "passengers": passengers(1), "card_token": "tok_ok"},
    )
    assert resp.status == 201, await resp.text()
    occupancy, status = await recv(vip_ws), await recv(vip_ws)
    assert (occupancy["event"], occupancy["data"]["launch_id"]) == ("occupancy", launch["id"])
    assert (status["event"], status["data"]["status"]) == ("status", "confirmed")  # its minimum: 1 seat

    # Everything above was delivered to the VIP socket; a public event now is the anonymous one's next frame.
    await client.app[BROADCASTER].publish("launches", "marker", {"n": 1})
    marker = await recv(anonymous)
    assert (marker["event"], marker["data"]) == ("marker", {"n": 1}), marker

    refused = await subscribe(anonymous, f"launch:{launch['id']}")
    assert (refused["type"], refused["code"]) == ("error", "forbidden")


# Finding 9: malformed frames


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        ("[" * 5000, "invalid_message"),
        ('{"a":' * 5000 + "1" + "}" * 5000, "invalid_message"),
        ('{"type":"subscribe","channel":"launch:x","since":' + "9" * 5000 + "}", "invalid_message"),
        ('{"type":"subscribe","channel":"\\ud800"}', "unknown_channel"),
        ('{"type":"subscribe","channel":"launches","epoch":"\\udfff","since":1}', "subscribed"),
        ('{"type":"auth","token":"\\ud800.\\udfff.x"}', "unauthenticated"),
        ('{"type":"subscribe","channel":"launch:x","since":1e999}', "invalid_message"),
        ('{"type":"ping","extra":NaN}', "pong"),
    ],
    ids=[
        "5000-brackets",
        "5000-objects",
        "huge-int",
        "lone-surrogate",
        "surrogate-epoch",
        "surrogate-token",
        "infinity",
        "nan",
    ],
)
async def test_a_malformed_frame_gets_an_answer_and_the_socket_stays(
    client: Client, frame: str, answer: str
) -> None:
    ws = await client.ws_connect("/ws")
    await ws.send_str(frame)
    got = await recv(ws)
    assert got.get("code", got["type"]) == answer, got
    await ws.send_json({"type": "ping"})
    assert await recv(ws) == {"type": "pong"}
    assert (await subscribe(ws, "launch:x"))["code"] == "not_found"


async def test_a_sign_out_missed_while_the_fanout_was_lost_closes_the_socket_when_it_is_back(
    client: Client, node_b: Client, make_traveler: Any
) -> None:
    traveler = await make_traveler()
    on_b = await signed_in(node_b, traveler, "traveler")
    await node_b.app[BROADCASTER]._store.stop_listening()  # node b hears nothing until it listens again
    resp = await client.post(f"{API}/auth/logout", headers=traveler.headers)
    assert resp.status == 204
    assert await closed_with(on_b) == SIGNED_OUT  # node b listens again, then checks every session


async def test_a_traveler_who_loses_vip_leaves_the_vip_list(make_client: Any) -> None:
    client = await make_client(vip_window=3600)
    vip = await register(client, traveler_body())
    await client.app[AUTH].set_flags(vip.id, vip=True, disabled=None)
    ws = await signed_in(client, vip, "launches")
    await client.app[AUTH].set_flags(vip.id, vip=False, disabled=None)
    assert (await subscribe(ws, "launch:x"))["code"] == "forbidden"  # the VIP list, left at the re-check
    assert (await recv(ws))["code"] == "not_found"  # then launch:x itself
    assert (await subscribe(ws, "launches"))["type"] == "subscribed"
    launch = await create_launch(client, await register(client, agency_body()))
    await client.app[BROADCASTER].publish("launches", "marker", {})
    assert (await recv(ws))["event"] == "marker"  # the VIP-only launch_added never came
    assert launch["vip_only"] is True
