"""Channels restarted after lost events, and retries Redis recognises (real Redis): a restart gives every
node's listeners a new epoch at offset 0 and leaves nothing to resume; an event recorded by a try whose answer
was lost is not recorded twice, and this node's listeners still get it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from actors.broadcast import Broadcaster
from astro.config import Settings
from astro.services.live import agency_channel, launch_channel
from astro.store import cache
from astro.store.live import RedisLiveStore
from tests.integration.test_broadcast import Recorder


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = cache.connect(settings.redis_url or "")
    yield client
    await client.aclose()


@pytest.fixture
async def nodes(redis: aioredis.Redis) -> AsyncIterator[tuple[Broadcaster, Broadcaster]]:
    a, b = Broadcaster(RedisLiveStore(redis, "node-a")), Broadcaster(RedisLiveStore(redis, "node-b"))
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


async def test_a_restarted_channel_starts_a_new_epoch_on_every_node(
    nodes: tuple[Broadcaster, Broadcaster],
) -> None:
    a, b = nodes
    channel, other = launch_channel("l1"), launch_channel("l2")
    here, there, bystander = Recorder(), Recorder(), Recorder()
    a.subscribe(channel, here)
    b.subscribe(channel, there)
    b.subscribe(other, bystander)
    old, _ = await a.position(channel)
    await b.position(channel)
    await b.position(other)
    for seats in (1, 2):
        await a.publish(channel, "occupancy", {"seats": seats})
    await there.count(2)

    await a.restart_channels([channel])
    await there.until(lambda: there.restarts == [channel])
    assert here.restarts == [channel] and bystander.restarts == []
    new, offset = await b.position(channel)
    assert new != old and offset == 0
    assert await a.since(channel, old, 2) is None  # a client resuming the old epoch gets a snapshot
    assert await a.since(channel, new, 0) == []
    # Offsets start over, and both nodes deliver from 1 on.
    assert await a.publish(channel, "occupancy", {"seats": 3}) == 1
    await there.count(3)
    assert here.offsets == there.offsets == [1, 2, 1]


async def test_a_retry_of_events_recorded_already_is_not_recorded_twice_and_still_reaches_listeners(
    nodes: tuple[Broadcaster, Broadcaster], redis: aioredis.Redis
) -> None:
    a, b = nodes
    channel = agency_channel("usr_1")
    here, there = Recorder(), Recorder()
    a.subscribe(channel, here)
    b.subscribe(channel, there)
    await a.position(channel)
    await b.position(channel)
    events = [(channel, "booking_confirmed", {"n": n}, None) for n in range(3)]
    # The first try reached Redis (recorded, sent to the other nodes) but its answer was lost.
    store = RedisLiveStore(redis, "node-a")
    first = [(c, e, json.dumps(d), k) for c, e, d, k in events]
    assert [o for _, o in await store.append(first[:2], sender="s1", numbers=[1, 2])] == [1, 2]
    await there.count(2)
    assert here.events == []
    # The retry: the two recorded are recognised, the third is new.
    assert await a.publish_many(events, sender="s1", numbers=[1, 2, 3]) == [-1, -1, 3]
    await here.count(3)
    await there.count(3)
    assert here.offsets == there.offsets == [1, 2, 3]
    assert [json.loads(e[3])["data"]["n"] for e in here.events] == [0, 1, 2]
    history = await a.since(channel, (await a.position(channel))[0], 0)
    assert history is not None and [e["data"]["n"] for e in history] == [0, 1, 2]
    # Another publisher (a new process under the same node name) is never taken for a retry.
    assert await a.publish_many(events[:1], sender="s2", numbers=[1]) == [4]
