"""The live publisher: events and launch cards go out after their commit, in order, off the caller's path;
what Redis cannot take now waits (bounded) and goes out, in order, when it answers again."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any, Final, Protocol

import structlog

from actors.loop import BackgroundLoop, LoopStopped
from astro.domain.errors import Unavailable
from astro.services.catalog import CardCache
from astro.services.live import LiveEvent

log = structlog.get_logger("astro.live")

# (channel, event, data, coalescing key)
Outgoing = tuple[str, str, dict[str, Any], str | None]


class Publisher(Protocol):
    async def publish_many(
        self,
        events: Sequence[Outgoing],
        *,
        sender: str | None = None,
        numbers: Sequence[int] | None = None,
    ) -> list[int]:
        """Publish in order; an event numbered by `sender` that was recorded already is not again."""
        ...

    async def restart_channels(self, channels: Sequence[str]) -> None:
        """Start these channels over in a new epoch: their listeners everywhere take a fresh snapshot."""
        ...


# Events published in one round trip to Redis at most (a launch's status change reaches every traveler).
PUBLISH_CHUNK: Final = 500
# Events kept while Redis does not answer. A minute of a busy node's events (a booking makes about five),
# a few MB, sent again in twenty round trips: a Redis restart, even a slow one, loses nothing. Past it a
# replay no longer helps anyone (a channel's history keeps 200 events, so a resuming client would get a
# snapshot anyway) and memory must not grow with the outage: the channels with the oldest events are
# dropped and restarted instead (a tenth of the bound at a time, so shedding is rare even under load).
BACKLOG: Final = 10_000
RETRY_FIRST: Final = 0.05  # seconds before the first retry; doubled on each failure ...
RETRY_MAX: Final = 2.0  # ... up to this: Redis back means events out within two seconds
STOP_GRACE: Final = 5.0  # how long stop() tries to publish what is waiting


# (number, emission, event): the publisher's count of the event (Redis recognises a retry of one it
# recorded already by it) and the emit() it came with (drain). A plain tuple: made for every event.
_Waiting = tuple[int, int, LiveEvent]


class LivePublisher:
    """One task publishes events and refreshes launch cards in the order they were emitted.

    Whatever was emitted while the previous round trip was under way goes out together: the newest card
    of each launch in one pipeline, then every event, in order, in another. Under load an event waits
    for at most one round trip before it, not for one per event queued ahead of it.

    When Redis does not answer, events and the newest card of each launch wait and the round is retried
    with backoff. Past the bound, a channel's waiting events are dropped and the channel is marked lost:
    before anything else goes out on it, it restarts in a new epoch, so every listener and every client
    resuming it takes a fresh snapshot (which holds what was dropped) instead of silently missing events.
    """

    def __init__(
        self, cache: CardCache, publisher: Callable[[], Publisher | None], *, limit: int = BACKLOG
    ) -> None:
        self._cache = cache
        self._publisher = publisher
        self.limit = limit  # events kept while Redis does not answer
        self._sender = secrets.token_hex(8)
        self._waiting: deque[_Waiting] = deque()
        self._cards: dict[str, tuple[int, dict[str, Any]]] = {}  # launch id: (emission, newest card)
        # Channels that lost events: the number of the newest event lost; restarted before the next send.
        self._lost: dict[str, int] = {}
        self._restarting: frozenset[str] = frozenset()
        self._numbers = 0
        self._emissions = 0
        self._drains: list[tuple[int, asyncio.Future[None]]] = []
        self._delay = 0.0  # the current backoff; 0 while Redis answers
        self._retry: asyncio.TimerHandle | None = None
        self._stopping = False
        self.dropped = 0  # events dropped (the bound, or an event Redis refused); their channels restarted
        # Runs only when woken: emit() wakes it; one emitted during a round gets the next round.
        self.background = BackgroundLoop(
            self._round, interval=None, name="live-publisher", first_round_at_start=False
        )

    @property
    def waiting(self) -> int:
        """Events emitted and not yet published."""
        return len(self._waiting)

    def start(self) -> None:
        self._stopping = False
        self.background.start()

    async def stop(self) -> None:
        """Publish what is waiting (trying for STOP_GRACE when Redis does not answer), then stop."""
        self._stopping = True
        self._cancel_retry()
        await self.background.stop(grace=STOP_GRACE)
        if self._waiting or self._cards or self._lost:  # nothing can tell the listeners any more
            log.error(
                "live_events_lost_at_stop",
                events=len(self._waiting),
                cards=len(self._cards),
                channels=len(self._lost),
            )
        self._waiting.clear()
        self._cards.clear()
        self._lost.clear()
        drains, self._drains = self._drains, []
        for _, waiter in drains:
            if not waiter.done():
                waiter.set_exception(LoopStopped("the live publisher stopped"))

    async def drain(self) -> None:
        """Wait until everything emitted so far is published (or dropped and its channels restarted)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drains.append((self._emissions, waiter))
        self._settle()
        await waiter

    def emit(self, events: list[LiveEvent], card: dict[str, Any] | None) -> None:
        self._emissions += 1
        emission, lost, waiting = self._emissions, self._lost, self._waiting
        for e in events:
            if lost and e.channel in lost and e.channel not in self._restarting:
                continue  # the channel restarts before anything else goes out on it: its snapshot has this
            self._numbers += 1
            waiting.append((self._numbers, emission, e))
        if card is not None:
            self._cards[card["id"]] = (emission, card)
        if len(self._waiting) > self.limit:
            self._shed()
        self.background.wake()

    # One round

    async def _round(self) -> None:
        """Everything emitted so far and not published yet, published together (unless backing off)."""
        if self._retry is not None and not self._stopping:
            return  # woken by an emit while backing off: the retry timer wakes the loop
        try:
            await self._send()
        except Unavailable as exc:
            self._back_off(exc)
        else:
            if self._delay:
                log.info("live_publish_resumed")
                self._delay = 0.0
        finally:
            self._settle()

    async def _send(self) -> None:
        # One coroutine for the whole round (no helper to await on the usual path): this runs once per
        # Redis round trip.
        if self._cards:
            cards = dict(self._cards)
            try:
                await self._cache.put([card for _, card in cards.values()])
            except Unavailable:
                raise
            except Exception:  # a card Redis refuses is not retried for ever; the next change writes it
                log.exception("live_cards_failed", cards=len(cards))
            for key, entry in cards.items():
                if self._cards.get(key) is entry:
                    del self._cards[key]
        publisher = self._publisher()
        if publisher is None:  # no Broadcaster (not started, or stopped): no one to tell
            self._remove(lambda w: True)
            return
        while self._waiting or self._lost:
            if self._lost:
                await self._restart(publisher)
                continue
            chunk = list(islice(self._waiting, PUBLISH_CHUNK))
            try:
                await publisher.publish_many(
                    [(e.channel, e.event, e.data, e.coalesce) for _, _, e in chunk],
                    sender=self._sender,
                    numbers=[number for number, _, _ in chunk],
                )
            except Unavailable:
                raise
            except Exception:  # not an outage: retrying would fail again; the channels restart instead
                log.exception("live_publish_failed", events=len(chunk))
                self.dropped += len(chunk)
                self._mark_lost((e.channel, number) for number, _, e in chunk)
            last, waiting = chunk[-1][0], self._waiting  # (the bound may have dropped some meanwhile)
            while waiting and waiting[0][0] <= last:
                waiting.popleft()

    async def _restart(self, publisher: Publisher) -> None:
        """The lost channels start over in a new epoch; what was waiting for them until now is in the
        snapshot each of their listeners takes, so it is not sent."""
        lost, start = dict(self._lost), self._numbers
        self._restarting = frozenset(lost)
        try:
            await publisher.restart_channels(sorted(lost))
        finally:
            self._restarting = frozenset()
        for channel in lost:
            if self._lost.get(channel, 0) <= start:  # nothing newer of it was dropped meanwhile
                self._lost.pop(channel, None)
        self._remove(lambda w: w[2].channel in lost and w[0] <= start)
        log.warning("live_channels_restarted", channels=sorted(lost))

    def _back_off(self, exc: Unavailable) -> None:
        if not self._delay:
            cause = exc.__cause__ or exc
            log.warning(
                "live_publish_deferred", waiting=len(self._waiting), error=f"{type(cause).__name__}: {cause}"
            )
        self._delay = min(RETRY_MAX, self._delay * 2) if self._delay else RETRY_FIRST
        if not self._stopping:
            self._retry = asyncio.get_running_loop().call_later(self._delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self.background.wake()

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    # The waiting events

    def _shed(self) -> None:
        """Over the bound: drop every waiting event of the channels with the oldest ones until a tenth of
        the bound is free again; those channels restart before anything else goes out on them."""
        target = self.limit - self.limit // 10
        per_channel = Counter(e.channel for _, _, e in self._waiting)
        victims: set[str] = set()
        left = len(self._waiting)
        for _, _, e in self._waiting:
            if left <= target:
                break
            if e.channel not in victims:
                victims.add(e.channel)
                left -= per_channel[e.channel]
        shed = [(e.channel, number) for number, _, e in self._waiting if e.channel in victims]
        self._remove(lambda w: w[2].channel in victims)
        self.dropped += len(shed)
        self._mark_lost(shed)
        log.warning("live_events_dropped", events=len(shed), channels=len(victims), limit=self.limit)

    def _mark_lost(self, events: Iterable[tuple[str, int]]) -> None:
        for channel, number in events:
            self._lost[channel] = max(self._lost.get(channel, 0), number)

    def _remove(self, which: Callable[[_Waiting], bool]) -> None:
        kept = deque(w for w in self._waiting if not which(w))
        if len(kept) != len(self._waiting):
            self._waiting = kept

    def _settle(self) -> None:
        """Release the drain() calls whose emissions are all out."""
        if not self._drains:
            return
        if self._lost:
            return  # a restart is still owed
        pending = [self._waiting[0][1]] if self._waiting else []
        pending += [emission for emission, _ in self._cards.values()]
        done = min(pending) - 1 if pending else self._emissions
        still = []
        for target, waiter in self._drains:
            if target > done:
                still.append((target, waiter))
            elif not waiter.done():
                waiter.set_result(None)
        self._drains = still
