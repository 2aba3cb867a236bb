"""The launch catalogue: the public list from the cache, and what agencies schedule."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Protocol

import structlog

from astro.domain.clock import Clock
from astro.domain.errors import Forbidden, NotFound, RuleViolation
from astro.domain.events import LaunchScheduled
from astro.domain.ids import new_id
from astro.domain.launch import Launch, Rocket, SlugTaken, schedule
from astro.domain.launches import Range
from astro.services.announcements import live_events
from astro.services.live import LiveFeed
from astro.services.views import launch_card, with_visibility

__all__ = ["CardCache", "LaunchScheduler", "PublicCatalog", "launch_card", "with_visibility"]

log = structlog.get_logger("astro.catalog")


class CatalogStore(Protocol):
    async def launch(self, launch_id: str) -> Launch: ...
    async def launch_by_slug(self, slug: str) -> Launch: ...
    async def upcoming(self) -> list[Launch]: ...


class CardCache(Protocol):
    async def put(self, cards: list[dict[str, Any]]) -> None: ...
    async def fill(self, cards: list[dict[str, Any]]) -> None: ...
    async def get(self, launch_id: str) -> dict[str, Any] | None: ...
    async def id_by_slug(self, slug: str) -> str | None: ...
    async def upcoming(self) -> list[dict[str, Any]] | None: ...
    async def stamp(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class _Page:
    stamp: str
    body: bytes
    good_until: datetime  # the next moment a launch of the list opens to everyone or flies


# Pages kept per node: one per query (VIP or not, filters, page size, cursor) seen since the last change.
PAGES: Final = 512


class PublicCatalog:
    """What visitors and travelers see: served from Redis, rebuilt from PostgreSQL when missing.

    A rendered page of the list is kept in memory and served again while the list's stamp in Redis
    (bumped by every change of a card, on any node) is the same and no launch on it changed its
    visibility by the clock meanwhile: one Redis round trip per request instead of reading, decoding and
    rendering every card."""

    def __init__(self, store: CatalogStore, cache: CardCache, clock: Clock) -> None:
        self._store = store
        self._cache = cache
        self._clock = clock
        self._pages: dict[tuple[Any, ...], _Page] = {}
        self._pages_stamp: str | None = None

    async def upcoming(
        self, *, vip: bool, destination: str | None, start: date | None, end: date | None
    ) -> list[dict[str, Any]]:
        """Upcoming launches this visitor may see, with these filters, soonest first."""
        return (await self._upcoming(vip, destination, start, end))[0]

    async def upcoming_page(
        self,
        *,
        vip: bool,
        destination: str | None,
        start: date | None,
        end: date | None,
        query: tuple[Any, ...],
        render: Callable[[list[dict[str, Any]]], bytes],
    ) -> bytes:
        """The body `render` makes of upcoming(...), from memory when nothing it shows has changed;
        `query` names what else shapes the page (size, cursor)."""
        stamp = await self._cache.stamp()
        key = (vip, destination, start, end, *query)
        kept = self._pages.get(key)
        if kept is not None and kept.stamp == stamp and self._clock.now() < kept.good_until:
            return kept.body
        cards, good_until = await self._upcoming(vip, destination, start, end)
        body = render(cards)
        if stamp is not None:
            if stamp != self._pages_stamp or len(self._pages) >= PAGES:
                self._pages, self._pages_stamp = {}, stamp
            self._pages[key] = _Page(stamp, body, good_until)
        return body

    async def _upcoming(
        self, vip: bool, destination: str | None, start: date | None, end: date | None
    ) -> tuple[list[dict[str, Any]], datetime]:
        """The launches shown, and the next moment one of the list opens to everyone or flies."""
        cards = await self._cache.upcoming()
        if cards is None:
            cards = [launch_card(launch) for launch in await self._store.upcoming()]
            await self._cache.fill(cards)
            log.info("launch_cache_refilled", launches=len(cards))
        now = self._clock.now()
        out = []
        boundary = datetime.max.replace(tzinfo=UTC)
        for card in cards:
            for moment in (card["public_from"], card["scheduled_at"]):
                when = datetime.fromisoformat(moment)
                if now < when < boundary:
                    boundary = when
            if not card.get("agency_verified", True):  # an agency IT has not verified yet: not public
                continue
            shown = with_visibility(card, now)
            if shown["vip_only"] and not vip:
                continue
            when = datetime.fromisoformat(card["scheduled_at"])
            if when <= now:  # it has flown (or should have): no longer upcoming
                continue
            day = when.date()
            if destination and card["destination"] != destination:
                continue
            if (start and day < start) or (end and day > end):
                continue
            out.append(shown)
        return out, boundary

    async def launch(self, id_or_slug: str, *, vip: bool) -> dict[str, Any]:
        card = await self.card(id_or_slug)
        if not card.get("agency_verified", True):
            raise NotFound("no such launch")  # not public until IT verifies its agency
        shown = with_visibility(card, self._clock.now())
        if shown["vip_only"] and not vip:
            raise Forbidden(
                "this launch is open to VIP travelers only for now",
                {"public_from": card["public_from"]},
                code="vip_only",
            )
        return shown

    async def card(self, id_or_slug: str) -> dict[str, Any]:
        launch_id = id_or_slug if id_or_slug.startswith("lch_") else await self._cache.id_by_slug(id_or_slug)
        card = await self._cache.get(launch_id) if launch_id else None
        if card is None:
            launch = await (
                self._store.launch(id_or_slug)
                if id_or_slug.startswith("lch_")
                else self._store.launch_by_slug(id_or_slug)
            )
            card = launch_card(launch)
            await self._cache.put([card])
        return card


class SchedulingStore(Protocol):
    async def rocket_for_launch(self, agency_id: str, rocket_id: str) -> Rocket: ...
    async def create_launch(self, launch: Launch, scheduled: LaunchScheduled, per_day: int) -> None: ...
    async def verify_agency(
        self, agency_id: str, by: str, now: datetime, vip_window: timedelta
    ) -> list[Launch]: ...


# A second launch of one rocket to one destination on one day gets a suffixed slug; tries at most.
SLUG_TRIES: Final = 5


class LaunchScheduler:
    """An agency schedules a launch on one of its rockets; it is announced live at once."""

    def __init__(
        self, store: SchedulingStore, live: LiveFeed, clock: Clock, vip_window: int, per_day: int = 20
    ) -> None:
        self._store = store
        self._live = live
        self._clock = clock
        self._vip_window = timedelta(seconds=vip_window)
        self._per_day = per_day

    @property
    def vip_window_seconds(self) -> int:
        """How long a new launch is for VIP travelers only (public_from = scheduling time + this)."""
        return int(self._vip_window.total_seconds())

    @property
    def launches_per_day(self) -> int:
        return self._per_day

    async def agency_verified(self, agency_id: str, by: str) -> int:
        """IT verified the agency: its launches not flown yet are public from now, as if scheduled now
        (announced to VIP travelers, who alone see them for the VIP window). How many."""
        launches = await self._store.verify_agency(agency_id, by, self._clock.now(), self._vip_window)
        for launch in launches:
            self._live.emit(
                live_events([LaunchScheduled(launch.facts())], self._clock.now()), launch_card(launch)
            )
        log.info("agency_verified", agency_id=agency_id, launches=len(launches))
        return len(launches)

    async def schedule(
        self,
        agency_id: str,
        *,
        rocket_id: str,
        mission: str,
        destination: str,
        scheduled_at: datetime,
        price_cents: int,
        min_passengers: int,
    ) -> Launch:
        try:
            rocket = await self._store.rocket_for_launch(agency_id, rocket_id)
        except NotFound:
            raise RuleViolation(
                "no such rocket in your fleet", {"fields": {"rocket_id": "unknown"}}, code="unknown_rocket"
            ) from None
        launch_id, slug = new_id("lch"), None
        for _ in range(SLUG_TRIES):
            launch, scheduled = schedule(
                launch_id=launch_id,
                rocket=rocket,
                mission=mission,
                destination=Range(destination),
                scheduled_at=scheduled_at,
                price_cents=price_cents,
                min_passengers=min_passengers,
                now=self._clock.now(),
                vip_window=self._vip_window,
                slug=slug,
            )
            try:
                await self._store.create_launch(launch, scheduled, self._per_day)
            except SlugTaken:
                slug = f"{launch.slug}-{secrets.token_hex(2)}"  # another launch of that rocket that day
                continue
            self._live.emit(live_events([scheduled], self._clock.now()), launch_card(launch))
            log.info("launch_scheduled", launch_id=launch.id, agency_id=agency_id)
            return launch
        raise SlugTaken("could not find a free slug for this launch; try again")
