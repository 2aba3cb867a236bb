"""The Broadcaster against the real Redis: offsets, epochs, history, and fan-out between nodes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from actors.broadcast import PACE, Broadcaster
from astro.config import Settings
from astro.domain.errors import NotFound, Unavailable
from astro.domain.users import Principal, Role
from astro.services.live import agency_channel, launch_channel
from astro.store import cache
from astro.store.live import RedisLiveStore

WAIT = 5.0


class Recorder:
    """A listener that keeps what it was given and lets a test await a number of events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, str, bytes, str | None]] = []
        self.restarts: list[str] = []
        self._changed = asyncio.Event()

    def deliver(self, channel: str, offset: int, event: str, frame: bytes, coalesce: str | None) -> None:
        self.events.append((channel, offset, event, frame, coalesce))
        self._changed.set()

    def restart(self, channel: str) -> None:
        self.restarts.append(channel)
        self._changed.set()

    @property
    def offsets(self) -> list[int]:
        return [e[1] for e in self.events]

    async def until(self, done: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not done():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), WAIT)

    async def count(self, n: int) -> None:
        await self.until(lambda: len(self.events) >= n)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = cache.connect(settings.redis_url or "")
    yield client
    await client.aclose()


MakeNode = Callable[..., Awaitable[Broadcaster]]


@pytest.fixture
async def make_node(redis: aioredis.Redis) -> AsyncIterator[MakeNode]:
    """Started Broadcasters on the test Redis, each one a node; all stopped after the test."""
    nodes: list[Broadcaster] = []

    async def make(node: str = "node-a", **kwargs: Any) -> Broadcaster:
        broadcaster = Broadcaster(RedisLiveStore(redis, node, **kwargs))
        await broadcaster.start()
        nodes.append(broadcaster)
        return broadcaster

    yield make
    for broadcaster in nodes:
        await broadcaster.stop()


async def test_offsets_strictly_increase_per_channel(make_node: MakeNode) -> None:
    node = await make_node()
    a = [await node.publish(launch_channel("a"), "occupancy", {"n": i}) for i in range(3)]
    b = [await node.publish(launch_channel("b"), "occupancy", {"n": i}) for i in range(2)]
    assert a == [1, 2, 3] and b == [1, 2]
    epoch, offset = await node.position(launch_channel("a"))
    assert offset == 3 and epoch
    never_epoch, never_offset = await node.position(launch_channel("never"))
    assert never_offset == 0 and await node.position(launch_channel("never")) == (never_epoch, 0)


async def test_epoch_is_shared_by_all_nodes(make_node: MakeNode) -> None:
    a, b = await make_node("node-a"), await make_node("node-b")
    first = await a.position("launches")
    assert await b.position("launches") == first
    await b.publish("launches", "launch_added", {"id": "l1"})
    assert await a.position("launches") == (first[0], 1)


async def test_two_nodes_deliver_each_others_events_exactly_once(make_node: MakeNode) -> None:
    a, b = await make_node("node-a"), await make_node("node-b")
    channel = launch_channel("l1")
    seen_a, seen_b = Recorder(), Recorder()
    a.subscribe(channel, seen_a)
    b.subscribe(channel, seen_b)
    await a.position(channel)
    await b.position(channel)
    for i in range(5):
        await a.publish(channel, "occupancy", {"from": "a", "i": i})
        await b.publish(channel, "occupancy", {"from": "b", "i": i})
    # A last event from each node: once both are seen, any duplicate would have been seen too.
    await a.publish(channel, "status", {"last": "a"})
    await b.publish(channel, "status", {"last": "b"})
    await seen_a.count(12)
    await seen_b.count(12)
    assert seen_a.offsets == seen_b.offsets == list(range(1, 13))
    assert [json.loads(e[3]) for e in seen_a.events] == [json.loads(e[3]) for e in seen_b.events]
    assert json.loads(seen_b.events[0][3]) == {
        "type": "event",
        "channel": channel,
        "offset": 1,
        "event": "occupancy",
        "data": {"from": "a", "i": 0},
    }


async def test_one_frame_is_shared_by_every_listener_and_names_the_public_channel(
    make_node: MakeNode,
) -> None:
    a, b = await make_node("node-a"), await make_node("node-b")
    channel = agency_channel("usr_1")
    local, local2, remote, remote2 = Recorder(), Recorder(), Recorder(), Recorder()
    for node, listener in ((a, local), (a, local2), (b, remote), (b, remote2)):
        node.subscribe(channel, listener)
        await node.position(channel)
    await a.publish(channel, "occupancy", {"seats": 3}, coalesce="occupancy:l1")
    for listener in (local, local2, remote, remote2):
        await listener.count(1)
    assert local.events[0][3] is local2.events[0][3]
    assert remote.events[0][3] is remote2.events[0][3]
    assert local.events[0][3] == remote.events[0][3]
    assert json.loads(local.events[0][3])["channel"] == "agency"
    assert local.events[0][4] == remote.events[0][4] == "occupancy:l1"


async def test_since_returns_exactly_the_missed_events(make_node: MakeNode) -> None:
    node = await make_node()
    channel = launch_channel("l1")
    for i in range(1, 8):
        await node.publish(channel, "occupancy", {"seats": i})
    epoch, offset = await node.position(channel)
    assert offset == 7
    missed = await node.since(channel, epoch, 4)
    assert missed == [{"offset": i, "event": "occupancy", "data": {"seats": i}} for i in (5, 6, 7)]
    assert await node.since(channel, epoch, 7) == []
    assert await node.since(channel, epoch, 0) == [
        {"offset": i, "event": "occupancy", "data": {"seats": i}} for i in range(1, 8)
    ]
    assert await node.since(channel, epoch, 8) is None  # an offset this channel never reached
    assert await node.since(channel, "another-epoch", 4) is None


async def test_since_is_none_when_history_was_trimmed(make_node: MakeNode) -> None:
    node = await make_node(history=5)
    channel = launch_channel("l1")
    for i in range(1, 11):
        await node.publish(channel, "occupancy", {"seats": i})
    epoch, _ = await node.position(channel)
    assert await node.since(channel, epoch, 4) is None
    assert [e["offset"] for e in await node.since(channel, epoch, 5) or []] == [6, 7, 8, 9, 10]


async def test_since_is_none_when_history_expired(make_node: MakeNode, redis: aioredis.Redis) -> None:
    node = await make_node(history_ttl=1)
    channel = launch_channel("l1")
    await node.publish(channel, "occupancy", {"seats": 1})
    epoch, _ = await node.position(channel)
    await redis.delete(f"astro:live:{{{channel}}}:history")  # what the expiry does, without waiting for it
    assert await node.since(channel, epoch, 0) is None
    assert await node.since(channel, epoch, 1) == []
    assert 0 < await redis.ttl(f"astro:live:{{{channel}}}") <= 30 * 86400


async def test_new_epoch_when_redis_lost_the_channel(make_node: MakeNode, redis: aioredis.Redis) -> None:
    a, b = await make_node("node-a"), await make_node("node-b")
    channel = launch_channel("l1")
    listener = Recorder()
    b.subscribe(channel, listener)
    old_epoch, _ = await b.position(channel)
    await a.publish(channel, "occupancy", {"seats": 1})
    await a.publish(channel, "occupancy", {"seats": 2})
    await listener.count(2)

    await redis.flushdb()
    assert await a.publish(channel, "occupancy", {"seats": 9}) == 1
    new_epoch, offset = await a.position(channel)
    assert new_epoch != old_epoch and offset == 1
    assert await a.since(channel, old_epoch, 2) is None
    await listener.until(lambda: listener.restarts == [channel])
    await listener.count(3)  # the new epoch's events follow the restart
    assert listener.offsets == [1, 2, 1]


async def test_concurrent_publishes_get_unique_consecutive_offsets(make_node: MakeNode) -> None:
    a, b = await make_node("node-a"), await make_node("node-b")
    channel = launch_channel("hot")
    local, remote = Recorder(), Recorder()
    a.subscribe(channel, local)
    b.subscribe(channel, remote)
    await a.position(channel)
    await b.position(channel)

    async def burst(node: Broadcaster, worker: int) -> list[int]:
        return [await node.publish(channel, "occupancy", {"w": worker, "i": i}) for i in range(25)]

    results = await asyncio.gather(*(burst(a if w % 2 else b, w) for w in range(20)))
    offsets = sorted(o for r in results for o in r)
    assert offsets == list(range(1, 501))
    assert all(r == sorted(r) for r in results)
    await local.count(500)
    await remote.count(500)
    assert local.offsets == remote.offsets == list(range(1, 501))


async def test_an_event_lost_on_the_wire_is_recovered_from_history(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await make_node("node-a"), await make_node("node-b")
    channel = launch_channel("l1")
    listener = Recorder()
    b.subscribe(channel, listener)
    await b.position(channel)
    dropped: list[str] = []
    remote = b._remote

    def lossy(message: str) -> None:
        if not dropped:
            dropped.append(message)
            return
        remote(message)

    monkeypatch.setattr(b, "_remote", lossy)
    for i in range(1, 4):
        await a.publish(channel, "occupancy", {"seats": i})
    await listener.count(3)
    assert dropped and listener.offsets == [1, 2, 3]
    assert [json.loads(e[3])["data"]["seats"] for e in listener.events] == [1, 2, 3]


async def test_unsubscribed_listener_gets_nothing(make_node: MakeNode) -> None:
    node = await make_node()
    channel = launch_channel("l1")
    gone, stays = Recorder(), Recorder()
    node.subscribe(channel, gone)
    node.subscribe(channel, stays)
    await node.position(channel)
    node.unsubscribe(channel, gone)
    await node.publish(channel, "occupancy", {"seats": 1})
    assert gone.events == [] and stays.offsets == [1]


async def test_snapshot_providers_by_kind(make_node: MakeNode) -> None:
    node = await make_node()
    caller = Principal(user_id="usr_1", role=Role.AGENCY, jti="j", expires_at=0)
    calls: list[tuple[Principal | None, str]] = []

    async def launch(principal: Principal | None, channel: str) -> dict[str, Any]:
        calls.append((principal, channel))
        if channel == "launch:gone":
            raise NotFound("no such launch")
        return {"seats": 1}

    node.register_snapshot("launch", launch)
    assert await node.snapshot(caller, "launch:l1") == {"seats": 1}
    assert calls == [(caller, "launch:l1")]
    with pytest.raises(NotFound):
        await node.snapshot(None, "launch:gone")
    with pytest.raises(Unavailable):
        await node.snapshot(None, "launches")
    with pytest.raises(ValueError):
        node.register_snapshot("nope", launch)


async def test_unknown_channels_are_refused(make_node: MakeNode) -> None:
    node = await make_node()
    for channel in ("nope", "launch:", "agency", "launches:x", "traveler:"):
        with pytest.raises(ValueError):
            await node.publish(channel, "x", {})


async def test_listeners_start_over_when_a_lost_event_is_gone_from_history(
    make_node: MakeNode, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await make_node("node-a"), await make_node("node-b")
    channel = launch_channel("l1")
    listener = Recorder()
    b.subscribe(channel, listener)
    await b.position(channel)
    remote = b._remote
    dropped: list[str] = []

    def lossy(message: str) -> None:
        if not dropped:
            dropped.append(message)
            return
        remote(message)

    monkeypatch.setattr(b, "_remote", lossy)
    await a.publish(channel, "occupancy", {"seats": 1})
    await redis.delete(f"astro:live:{{{channel}}}:history")
    await a.publish(channel, "occupancy", {"seats": 2})
    await listener.count(1)
    assert dropped and listener.restarts == [channel] and listener.offsets == [2]


async def test_values_published_together_reach_listeners_newest_only(make_node: MakeNode) -> None:
    node = await make_node()
    channel, other = launch_channel("l1"), launch_channel("l2")
    seen, seen_other = Recorder(), Recorder()
    node.subscribe(channel, seen)
    node.subscribe(other, seen_other)
    await node.position(channel)
    await node.position(other)
    offsets = await node.publish_many(
        [
            (channel, "occupancy", {"seats_booked": 1}, "occ:l1"),
            (other, "occupancy", {"seats_booked": 7}, "occ:l2"),
            (channel, "occupancy", {"seats_booked": 2}, "occ:l1"),
            (channel, "occupancy", {"seats_booked": 3}, "occ:l1"),
            (channel, "status", {"status": "confirmed"}, None),
            (channel, "occupancy", {"seats_booked": 4}, "occ:l1"),
        ]
    )
    assert offsets == [1, 1, 2, 3, 4, 5]
    # 1 and 2 were superseded by 3 before anyone got them; 3 stays: the status change came between;
    # 5 comes at the end of the pace (3 was an occupancy just now).
    assert seen.offsets == [3, 4] and node.superseded == 2
    await seen.until(lambda: len(seen.events) == 3)
    assert seen.offsets == [3, 4, 5] and node.superseded == 2
    assert [json.loads(e[3])["data"] for e in seen.events] == [
        {"seats_booked": 3},
        {"status": "confirmed"},
        {"seats_booked": 4},
    ]
    assert seen_other.offsets == [1]
    # Nothing is lost for a client catching up: the history keeps every event.
    history = await node.since(channel, (await node.position(channel))[0], 0)
    assert history is not None and [e["offset"] for e in history] == [1, 2, 3, 4, 5]


async def test_a_node_that_lost_the_fanout_listens_again_and_catches_up(
    make_node: MakeNode, redis: aioredis.Redis, settings: Settings
) -> None:
    a, b = await make_node("node-a"), await make_node("node-b")
    channel = launch_channel("l1")
    listener = Recorder()
    b.subscribe(channel, listener)
    await b.position(channel)
    # Cut the fan-out of this test's Redis database (other databases' subscribers are someone else's).
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    subscribers = [c for c in await redis.client_list() if int(c["db"]) == int(db) and int(c["sub"]) > 0]
    assert len(subscribers) == 2
    for c in subscribers:
        await redis.client_kill_filter(_id=c["id"])
    # Published after the cut: no node hears these; b gets them from the history once it listens again.
    for seats in (1, 2, 3):
        await a.publish(channel, "occupancy", {"seats": seats})
    await listener.count(3)
    assert listener.offsets == [1, 2, 3] and listener.restarts == []
    assert [json.loads(e[3])["data"]["seats"] for e in listener.events] == [1, 2, 3]
    await b.publish(channel, "status", {"status": "confirmed"})
    await a.publish(channel, "occupancy", {"seats": 4})
    await listener.count(5)  # and the fan-out works again: the last one came from node a
    assert listener.offsets == [1, 2, 3, 4, 5]


async def test_a_channels_occupancy_reaches_listeners_at_most_once_per_pace(make_node: MakeNode) -> None:
    node = await make_node()
    channel = launch_channel("l1")
    seen = Recorder()
    node.subscribe(channel, seen)
    await node.position(channel)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for seats in range(1, 21):  # twenty commits in quick succession, each published on its own
        await node.publish(channel, "occupancy", {"seats_booked": seats}, coalesce="occ:l1")
    published = loop.time()

    def values() -> list[int]:
        return [json.loads(e[3])["data"]["seats_booked"] for e in seen.events]

    await seen.until(lambda: bool(seen.events) and values()[-1] == 20)
    assert values()[0] == 1 and values() == sorted(values())  # the first at once, never an older after
    # At most one per pace while they were published, and the newest after it (was: one per event).
    assert len(values()) <= 2 + int((published - started) / PACE), values()
    assert node.superseded == 20 - len(values())
