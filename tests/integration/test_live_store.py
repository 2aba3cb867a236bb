"""The live channels' Redis adapter: its errors leave it as Unavailable; a node hears only the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from astro.config import Settings
from astro.domain.errors import Unavailable
from astro.services.live import SignedOut
from astro.store import cache
from astro.store.live import RedisLiveStore

WAIT = 5.0


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = cache.connect(settings.redis_url or "")
    yield client
    await client.aclose()


@pytest.fixture
async def nowhere() -> AsyncIterator[aioredis.Redis]:
    """A client of a Redis that is not there: nothing listens on port 1."""
    client = cache.connect("redis://127.0.0.1:1/0")
    yield client
    await client.aclose()


async def test_every_operation_on_an_unreachable_redis_raises_unavailable(nowhere: aioredis.Redis) -> None:
    store = RedisLiveStore(nowhere, "node-a")
    calls = [
        store.append([("launch:l1", "occupancy", '{"seats":1}', None)]),
        store.position("launch:l1"),
        store.peek("launch:l1"),
        store.sign_out(SignedOut("usr_1", None)),
        store.history_after("launch:l1", "epoch", 0),
        store.listen(),
    ]
    for call in calls:
        with pytest.raises(Unavailable) as caught:
            await call
        assert caught.value.code == "unavailable"
        assert isinstance(caught.value.__cause__, RedisError | OSError)
    assert not store.listening
    with pytest.raises(Unavailable):
        await store.receive()
    await store.stop_listening()  # never raises


async def test_a_node_receives_the_events_of_the_others_and_never_its_own(redis: aioredis.Redis) -> None:
    a, b = RedisLiveStore(redis, "node-a"), RedisLiveStore(redis, "node-b")
    await a.listen()
    await b.listen()
    try:
        (mine,) = await a.append([("launch:l1", "occupancy", '{"seats":1}', "occupancy:l1")])
        (theirs,) = await b.append([("launch:l1", "status", '{"status":"confirmed"}', None)])
        assert mine[0] == theirs[0] and (mine[1], theirs[1]) == (1, 2)
        heard_by_a = await asyncio.wait_for(a.receive(), WAIT)
        assert heard_by_a == ("launch:l1", theirs[0], 2, "status", '{"status":"confirmed"}', None)
        heard_by_b = await asyncio.wait_for(b.receive(), WAIT)
        assert heard_by_b == ("launch:l1", mine[0], 1, "occupancy", '{"seats":1}', "occupancy:l1")
        assert await a.history_after("launch:l1", mine[0], 0) == [
            (1, "occupancy", {"seats": 1}, "occupancy:l1"),
            (2, "status", {"status": "confirmed"}, None),
        ]
    finally:
        await a.stop_listening()
        await b.stop_listening()
    assert not a.listening and not b.listening


async def test_peek_writes_nothing_for_an_unknown_channel(redis: aioredis.Redis) -> None:
    store = RedisLiveStore(redis, "node-a")
    assert await store.peek("launch:nobody") is None
    assert await redis.exists("astro:live:{launch:nobody}", "astro:live:{launch:nobody}:history") == 0
    (position,) = await store.append([("launch:nobody", "occupancy", '{"seats":1}', None)])
    assert await store.peek("launch:nobody") == position


async def test_a_sign_out_reaches_the_other_nodes_only(redis: aioredis.Redis) -> None:
    a, b = RedisLiveStore(redis, "node-a"), RedisLiveStore(redis, "node-b")
    await a.listen()
    await b.listen()
    try:
        await a.sign_out(SignedOut("usr_1", None))
        await b.sign_out(SignedOut(None, "jti_2"))
        assert await asyncio.wait_for(b.receive(), WAIT) == SignedOut("usr_1", None)
        assert await asyncio.wait_for(a.receive(), WAIT) == SignedOut(None, "jti_2")
    finally:
        await a.stop_listening()
        await b.stop_listening()
