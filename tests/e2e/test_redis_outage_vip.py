"""Redis down and back empty: the VIP flag lives in MongoDB and PostgreSQL only, so a traveler promoted while
Redis was down is VIP as soon as it answers again (no manual step), and no one else is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pymongo import AsyncMongoClient

from astro.config import Settings
from astro.domain.errors import Unavailable
from tests.conftest import MakeClient, agency_body, register, traveler_body
from tests.e2e.outage import app_on, book, new_launch, past_authentication, private_redis, until
from tests.stoppable_redis import StoppableRedis
from web.keys import AUTH


@pytest.fixture(params=[False, True], ids=["restarted-empty", "restarted-persistent"])
async def server(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[StoppableRedis]:
    """Either kind of restart: empty, or with what it had (then the flags cached before the outage are
    still there, as the embedded default's append-only file keeps them)."""
    async with private_redis(tmp_path / "redis", persistent=request.param) as redis:
        yield redis


async def vip_in_both_stores(settings: Settings, user_id: str) -> tuple[bool, bool]:
    """(MongoDB user's flag, PostgreSQL traveler's flag)."""
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url or "")
    try:
        user = await mongo[settings.mongo_db]["users"].find_one({"_id": user_id})
    finally:
        await mongo.close()
    conn = await asyncpg.connect(settings.pg_dsn or "")
    try:
        row = await conn.fetchval("SELECT vip FROM travelers WHERE id = $1", user_id)
    finally:
        await conn.close()
    return bool(user and user.get("vip")), bool(row)


async def test_a_traveler_promoted_while_redis_is_down_is_vip_when_it_is_back(
    make_client: MakeClient, settings: Settings, server: StoppableRedis
) -> None:
    client = await app_on(make_client, server)
    agency = await register(client, agency_body())
    promoted, helper, never = [await register(client, traveler_body()) for _ in range(3)]
    first = await new_launch(client, agency, min_passengers=1)
    second = await new_launch(client, agency, min_passengers=2)
    later = await new_launch(client, agency, capacity=20)
    assert (await book(client, promoted, first, 1)).status == 201  # confirmed at once: one of two
    assert (await book(client, promoted, second, 1)).status == 201  # one seat of the two it needs
    assert (await client.get("/api/system/auth/me", headers=helper.headers)).status == 200  # flags cached
    for traveler in (promoted, helper, never):  # none of them is VIP yet
        assert (await book(client, traveler, later, 6)).status == 422

    # The helper's booking confirms the second launch while Redis is down: the desk promotes in the
    # background, and dropping the cached flags cannot reach Redis.
    (booking,) = await past_authentication(client, [book(client, helper, second, 1, card="tok_slow")])
    await server.stop()
    assert (await booking).status == 201

    async def stored() -> bool:
        return await vip_in_both_stores(settings, promoted.id) == (True, True)

    await until(stored, "the promotion stored in MongoDB and PostgreSQL")
    assert await vip_in_both_stores(settings, helper.id) == (False, False)  # one confirmed launch only
    assert (await client.get("/api/system/auth/me", headers=promoted.headers)).status == 503  # no guess

    await server.start()  # empty: nothing of the cache survived, nothing had to be repaired by hand
    resp = await book(client, promoted, later, 6)  # six seats: VIPs only
    assert resp.status == 201, await resp.text()
    for traveler in (helper, never):
        resp = await book(client, traveler, later, 6)
        assert resp.status == 422 and (await resp.json())["error"]["code"] == "seat_limit"
    me = await client.get("/api/system/auth/me", headers=promoted.headers)
    assert (await me.json())["user"]["vip"] is True


async def test_flags_cached_before_an_outage_are_never_taken_for_vip_after_it(
    make_client: MakeClient, settings: Settings, server: StoppableRedis
) -> None:
    client = await app_on(make_client, server)
    agency = await register(client, agency_body())
    it_was_vip = await register(client, traveler_body())
    later = await new_launch(client, agency, capacity=20)
    # A VIP whose flag IT clears while Redis is down (through the service: no request authenticates).
    await client.app[AUTH].set_flags(it_was_vip.id, vip=True, disabled=None)
    assert (await book(client, it_was_vip, later, 5)).status == 201  # five seats, and cached as VIP
    await server.stop()
    with pytest.raises(Unavailable):  # IT is told to retry ...
        await client.app[AUTH].set_flags(it_was_vip.id, vip=False, disabled=None)
    assert await vip_in_both_stores(settings, it_was_vip.id) == (False, False)  # ... yet it is stored
    await server.start()
    resp = await book(client, it_was_vip, later, 6)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "seat_limit"
