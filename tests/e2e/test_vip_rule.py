"""The VIP rule (issue 14, finding 5): bookings on two active confirmed launches earn VIP, and losing one
(cancelled, refunded, the launch aborted) takes it away again, everywhere it is kept; IT's hand-set flag
stays as IT set it."""

from __future__ import annotations

from typing import Any

import asyncpg
from pymongo import AsyncMongoClient

from tests.conftest import Settings
from tests.e2e.test_launch_status import accounts, book, launch_on, set_status
from web.keys import DESK

API = "/api/system"


async def is_vip(client: Any, traveler: Any) -> bool:
    me = await (await client.get(f"{API}/auth/me", headers=traveler.headers)).json()
    return bool(me["user"]["vip"])


async def stored_vip(settings: Settings, traveler_id: str) -> tuple[bool, bool]:
    """The flag in PostgreSQL and in MongoDB."""
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        pg = bool(await conn.fetchval("SELECT vip FROM travelers WHERE id = $1", traveler_id))
    finally:
        await conn.close()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    try:
        doc = await mongo.get_default_database()["users"].find_one({"_id": traveler_id})
    finally:
        await mongo.close()
    assert doc is not None
    return pg, bool(doc["vip"])


async def cheap_vip(client: Any) -> tuple[Any, Any, list[dict[str, Any]]]:
    """The attack: a shell agency's two 1-seat-minimum launches, one seat on each, both confirm at once."""
    agency, traveler = await accounts(client)
    launches = [await launch_on(client, agency, min_passengers=1) for _ in range(2)]
    bookings = []
    for launch in launches:
        resp = await book(client, traveler, launch["id"], 1)
        assert resp.status == 201, await resp.text()
        bookings.append((await resp.json())["booking"])
    await client.app[DESK].wait_background()
    assert await is_vip(client, traveler)
    return agency, traveler, bookings


async def test_cancelling_the_bookings_that_made_a_traveler_vip_takes_vip_away(
    client: Any, settings: Settings
) -> None:
    _, traveler, bookings = await cheap_vip(client)
    resp = await client.post(f"/api/booking/bookings/{bookings[0]['id']}/cancel", headers=traveler.headers)
    assert resp.status == 200, await resp.text()
    await client.app[DESK].wait_background()
    assert await is_vip(client, traveler) is False  # the Redis copy was dropped, not left stale
    assert await stored_vip(settings, traveler.id) == (False, False)
    resp = await book(client, traveler, bookings[1]["launch_id"], 6)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "seat_limit", await resp.text()


async def test_an_aborted_launch_takes_away_the_vip_it_gave(client: Any, settings: Settings) -> None:
    agency, traveler, bookings = await cheap_vip(client)
    resp = await set_status(client, agency, bookings[1]["launch_id"], "aborted", reason="engine")
    assert resp.status == 200
    await client.app[DESK].wait_background()
    assert await is_vip(client, traveler) is False
    assert await stored_vip(settings, traveler.id) == (False, False)


async def test_a_vip_with_two_other_active_launches_keeps_vip_after_cancelling_one(client: Any) -> None:
    agency, traveler, bookings = await cheap_vip(client)
    third = await launch_on(client, agency, min_passengers=1)
    assert (await book(client, traveler, third["id"], 1)).status == 201
    resp = await client.post(f"/api/booking/bookings/{bookings[0]['id']}/cancel", headers=traveler.headers)
    assert resp.status == 200
    await client.app[DESK].wait_background()
    assert await is_vip(client, traveler) is True


async def test_a_vip_set_by_it_stays_when_the_traveler_cancels(
    client: Any, settings: Settings, make_employee: Any
) -> None:
    it = await make_employee("it")
    _, traveler, bookings = await cheap_vip(client)
    resp = await client.patch(f"{API}/users/{traveler.id}", json={"vip": True}, headers=it.headers)
    assert resp.status == 200
    for booking in bookings:
        url = f"/api/booking/bookings/{booking['id']}/cancel"
        assert (await client.post(url, headers=traveler.headers)).status == 200
    await client.app[DESK].wait_background()
    assert await is_vip(client, traveler) is True
    assert await stored_vip(settings, traveler.id) == (True, True)


async def test_a_traveler_it_took_vip_from_is_not_promoted_again_by_the_rule(
    client: Any, settings: Settings, make_employee: Any
) -> None:
    it = await make_employee("it")
    agency, traveler = await accounts(client)
    resp = await client.patch(f"{API}/users/{traveler.id}", json={"vip": False}, headers=it.headers)
    assert resp.status == 200
    for _ in range(2):
        launch = await launch_on(client, agency, min_passengers=1)
        assert (await book(client, traveler, launch["id"], 1)).status == 201
    await client.app[DESK].wait_background()
    assert await is_vip(client, traveler) is False
    assert await stored_vip(settings, traveler.id) == (False, False)
