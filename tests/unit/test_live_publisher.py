"""The live publisher: events go out in the order emitted; whatever is emitted while a round trip is under way
goes out together in the next one; drain() waits for all of it; a failed round trip does not stop it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from actors.live_publisher import LivePublisher, Outgoing
from astro.services.live import LiveEvent

WAIT = 5.0


class NoCards:
    """No launch is emitted in these tests: the card cache is never touched."""

    async def put(self, cards: list[dict[str, Any]]) -> None:
        raise AssertionError("no card was emitted")

    async def fill(self, cards: list[dict[str, Any]]) -> None:
        raise AssertionError("no card was emitted")

    async def get(self, launch_id: str) -> dict[str, Any] | None:
        raise AssertionError("not read")

    async def id_by_slug(self, slug: str) -> str | None:
        raise AssertionError("not read")

    async def upcoming(self) -> list[dict[str, Any]] | None:
        raise AssertionError("not read")

    async def stamp(self) -> str | None:
        raise AssertionError("not read")


class HeldPublisher:
    """Records each round trip; the first one waits for `release`, the one numbered `fail_at` fails."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.trips: list[list[str]] = []
        self.restarts: list[list[str]] = []
        self.first_started = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_at = fail_at

    async def publish_many(
        self, events: Sequence[Outgoing], *, sender: str | None = None, numbers: Sequence[int] | None = None
    ) -> list[int]:
        self.trips.append([data["n"] for _, _, data, _ in events])
        if len(self.trips) == 1:
            self.first_started.set()
            await self.release.wait()
        if len(self.trips) == self.fail_at:
            raise ConnectionError("redis went away")
        return [1] * len(events)

    async def restart_channels(self, channels: Sequence[str]) -> None:
        self.restarts.append(list(channels))


def event(n: int) -> LiveEvent:
    return LiveEvent("launch:l1", "seats_changed", {"n": n})


async def test_what_is_emitted_during_a_round_trip_goes_out_together_in_the_next() -> None:
    redis = HeldPublisher()
    publisher = LivePublisher(NoCards(), lambda: redis)
    publisher.start()
    publisher.emit([event(0)], None)
    async with asyncio.timeout(WAIT):
        await redis.first_started.wait()
    for n in range(1, 4):
        publisher.emit([event(n)], None)
    publisher.emit([event(4), event(5)], None)
    redis.release.set()
    async with asyncio.timeout(WAIT):
        await publisher.drain()
    assert redis.trips == [[0], [1, 2, 3, 4, 5]]
    await publisher.stop()


async def test_a_failed_round_trip_is_logged_and_later_events_still_go_out() -> None:
    redis = HeldPublisher(fail_at=1)
    redis.release.set()
    publisher = LivePublisher(NoCards(), lambda: redis)
    publisher.start()
    publisher.emit([event(0)], None)
    async with asyncio.timeout(WAIT):
        await publisher.drain()
    publisher.emit([event(1)], None)
    async with asyncio.timeout(WAIT):
        await publisher.drain()
    assert redis.trips == [[0], [1]]
    # Not an outage (that is retried): the event is dropped, and its channel restarted before event 1.
    assert redis.restarts == [["launch:l1"]] and publisher.dropped == 1
    await publisher.stop()
    assert not publisher.background.running


async def test_stop_publishes_everything_emitted_first() -> None:
    redis = HeldPublisher()
    redis.release.set()
    publisher = LivePublisher(NoCards(), lambda: redis)
    publisher.emit([event(0)], None)  # before start: kept, and sent once started
    publisher.start()
    publisher.emit([event(1)], None)
    async with asyncio.timeout(WAIT):
        await publisher.stop()
    assert [n for trip in redis.trips for n in trip] == [0, 1]
