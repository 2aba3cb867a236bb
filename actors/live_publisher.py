"""The live publisher: events and launch cards go out after their commit, in order, off the caller's path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import structlog

from actors.loop import BackgroundLoop
from astro.services.catalog import CardCache
from astro.services.live import LiveEvent

log = structlog.get_logger("astro.live")

# (channel, event, data, coalescing key)
Outgoing = tuple[str, str, dict[str, Any], str | None]


class Publisher(Protocol):
    async def publish_many(self, events: Sequence[Outgoing]) -> list[int]: ...


# Events published in one round trip to Redis at most (a launch's status change reaches every traveler).
PUBLISH_CHUNK: Final = 500


class LivePublisher:
    """One task publishes events and refreshes launch cards in the order they were emitted.

    Whatever was emitted while the previous round trip was under way goes out together: the newest card
    of each launch in one pipeline, then every event, in order, in another. Under load an event waits
    for at most one round trip before it, not for one per event queued ahead of it."""

    def __init__(self, cache: CardCache, publisher: Callable[[], Publisher | None]) -> None:
        self._cache = cache
        self._publisher = publisher
        self._queue: asyncio.Queue[tuple[list[LiveEvent], dict[str, Any] | None]] = asyncio.Queue()
        # Runs only when woken: emit() wakes it; one emitted during a round gets the next round.
        self.background = BackgroundLoop(
            self._publish_emitted, interval=None, name="live-publisher", first_round_at_start=False
        )

    def start(self) -> None:
        self.background.start()

    async def stop(self) -> None:
        await self.drain()
        await self.background.stop()

    async def drain(self) -> None:
        """Wait until everything emitted so far is published."""
        await self._queue.join()

    def emit(self, events: list[LiveEvent], card: dict[str, Any] | None) -> None:
        self._queue.put_nowait((events, card))
        self.background.wake()

    async def _publish_emitted(self) -> None:
        """One round: everything emitted since the previous round, published together."""
        emitted: list[tuple[list[LiveEvent], dict[str, Any] | None]] = []
        while not self._queue.empty():
            emitted.append(self._queue.get_nowait())
        if not emitted:
            return
        # One coroutine for the whole round (no helper to await): this runs once per Redis round trip.
        try:
            newest = {card["id"]: card for _, card in emitted if card is not None}
            if newest:
                await self._cache.put(list(newest.values()))
            publisher = self._publisher()
            if publisher is None:
                return
            events = [(e.channel, e.event, e.data, e.coalesce) for batch, _ in emitted for e in batch]
            for start in range(0, len(events), PUBLISH_CHUNK):
                await publisher.publish_many(events[start : start + PUBLISH_CHUNK])
        except Exception:
            log.exception("live_publish_failed", events=sum(len(events) for events, _ in emitted))
        finally:
            for _ in emitted:
                self._queue.task_done()
