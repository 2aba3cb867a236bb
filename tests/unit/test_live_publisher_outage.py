"""The live publisher while Redis does not answer: events wait and go out in order when it is back; past the
bound the channels with the oldest events are dropped and restarted (a new epoch) before anything else goes
out on them; a retry carries the same event numbers, so Redis can recognise what it recorded already."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from actors.live_publisher import LivePublisher, Outgoing
from actors.loop import LoopStopped
from astro.domain.errors import Unavailable
from astro.services.live import LiveEvent
from tests.unit.test_live_publisher import NoCards

WAIT = 5.0


class FlakyStore:
    """The Broadcaster as the publisher sees it: refuses with Unavailable while `down`."""

    def __init__(self) -> None:
        self.down = False
        self.log: list[tuple[str, Any]] = []  # ("publish", [(channel, n)]) or ("restart", [channels])
        self.numbers: list[list[int]] = []
        self.refused = 0
        self.refusal = asyncio.Event()

    def _refuse(self) -> None:
        self.refused += 1
        self.refusal.set()
        raise Unavailable("Redis is unreachable; retry shortly")

    async def publish_many(
        self, events: Sequence[Outgoing], *, sender: str | None = None, numbers: Sequence[int] | None = None
    ) -> list[int]:
        assert sender and numbers is not None and len(numbers) == len(events)
        self.numbers.append(list(numbers))
        if self.down:
            self._refuse()
        self.log.append(("publish", [(c, d["n"]) for c, _, d, _ in events]))
        return list(range(1, len(events) + 1))

    async def restart_channels(self, channels: Sequence[str]) -> None:
        if self.down:
            self._refuse()
        self.log.append(("restart", list(channels)))

    @property
    def published(self) -> list[tuple[str, int]]:
        return [e for kind, items in self.log if kind == "publish" for e in items]

    async def refusals(self, n: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.refused < n:
                self.refusal.clear()
                await self.refusal.wait()


def ev(channel: str, n: int) -> LiveEvent:
    return LiveEvent(channel, "seats_changed", {"n": n})


async def test_events_emitted_while_redis_is_down_go_out_in_order_once_it_answers() -> None:
    store = FlakyStore()
    publisher = LivePublisher(NoCards(), lambda: store)
    publisher.start()
    store.down = True
    for n in range(5):
        publisher.emit([ev("launch:a", n), ev("agency:x", n)], None)
    await store.refusals(2)  # retried, not dropped
    assert publisher.waiting == 10 and store.published == []
    store.down = False
    async with asyncio.timeout(WAIT):
        await publisher.drain()
    assert store.published == [(c, n) for n in range(5) for c in ("launch:a", "agency:x")]
    assert [kind for kind, _ in store.log] == ["publish"] and publisher.dropped == 0
    # Every try of the same events carried the same numbers: Redis skips what it recorded already.
    assert len({tuple(numbers) for numbers in store.numbers}) == 1
    await publisher.stop()


async def test_past_the_bound_the_oldest_channels_are_dropped_and_restarted_before_anything_else() -> None:
    store = FlakyStore()
    publisher = LivePublisher(NoCards(), lambda: store, limit=4)
    publisher.start()
    store.down = True
    publisher.emit([ev("launch:a", 0), ev("launch:a", 1), ev("agency:x", 2)], None)
    await store.refusals(1)
    # Two more: six waiting, over the bound of four. launch:a has the oldest: both of its go.
    publisher.emit([ev("traveler:t", 3), ev("launch:a", 4), ev("launches", 5)], None)
    assert publisher.waiting == 3 and publisher.dropped == 3
    # launch:a is lost: what is emitted for it now is in the snapshot its listeners will take.
    publisher.emit([ev("launch:a", 6)], None)
    assert publisher.waiting == 3
    store.down = False
    async with asyncio.timeout(WAIT):
        await publisher.drain()
    assert store.log[0] == ("restart", ["launch:a"])
    assert store.published == [("agency:x", 2), ("traveler:t", 3), ("launches", 5)]
    # Restarted: launch:a's events go out again.
    publisher.emit([ev("launch:a", 7)], None)
    async with asyncio.timeout(WAIT):
        await publisher.drain()
    assert store.published[-1] == ("launch:a", 7)
    assert [kind for kind, _ in store.log].count("restart") == 1
    await publisher.stop()


async def test_a_channel_dropped_while_its_restart_is_under_way_is_restarted_again() -> None:
    store = FlakyStore()
    publisher = LivePublisher(NoCards(), lambda: store, limit=1)
    held = asyncio.Event()
    restarting = asyncio.Event()

    async def slow_restart(channels: Sequence[str]) -> None:
        if store.down:
            store._refuse()
        restarting.set()
        await held.wait()
        store.log.append(("restart", list(channels)))

    store.restart_channels = slow_restart  # type: ignore[method-assign]
    publisher.start()
    store.down = True
    publisher.emit([ev("launch:a", 0), ev("launch:b", 1)], None)  # launch:a dropped at once
    await store.refusals(1)
    store.down = False
    async with asyncio.timeout(WAIT):
        await restarting.wait()
    # During the restart launch:a's events are kept (they come after it) ... until the bound drops them.
    publisher.emit([ev("launch:a", 2), ev("launch:a", 3)], None)
    held.set()
    async with asyncio.timeout(WAIT):
        await publisher.drain()
    assert [entry for entry in store.log if entry[0] == "restart"] == [
        ("restart", ["launch:a"]),
        ("restart", ["launch:a", "launch:b"]),
    ]
    assert store.published == []
    await publisher.stop()


async def test_stop_gives_up_on_a_redis_that_does_not_answer_and_fails_drains() -> None:
    store = FlakyStore()
    publisher = LivePublisher(NoCards(), lambda: store)
    publisher.start()
    store.down = True
    publisher.emit([ev("launch:a", 0)], None)
    await store.refusals(1)
    drain = asyncio.ensure_future(publisher.drain())
    async with asyncio.timeout(WAIT):
        await publisher.stop()
    assert store.refused == 2  # stop tried once more, at once, without waiting for the backoff
    with pytest.raises(LoopStopped):
        await drain
    assert publisher.waiting == 0 and not publisher.background.running
