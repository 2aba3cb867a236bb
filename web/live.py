"""Snapshots of the live channels: what a WebSocket subscriber sees first (DESIGN 7)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from astro.domain.users import Principal, Role
from astro.services.views import launch_card, with_visibility
from astro.services.waitlist import no_demand
from web.booking_api import booking_out
from web.keys import BROADCASTER, CATALOG, CATALOG_STORE, CLOCK, LEDGER, WAITLIST

SNAPSHOT_LIMIT = 200


def register_snapshots(app: web.Application) -> None:
    """Give the broadcaster a snapshot provider for each kind of channel."""

    async def is_vip(principal: Principal | None) -> bool:
        return principal is not None and principal.role is Role.TRAVELER and principal.vip

    async def launch(principal: Principal | None, channel: str) -> dict[str, Any]:
        card = await app[CATALOG].launch(channel.split(":", 1)[1], vip=await is_vip(principal))
        return {"launch": card}

    async def launches(principal: Principal | None, channel: str) -> dict[str, Any]:
        cards = await app[CATALOG].upcoming(
            vip=await is_vip(principal), destination=None, start=None, end=None
        )
        return {"launches": cards}

    async def agency(principal: Principal | None, channel: str) -> dict[str, Any]:
        assert principal is not None  # the WebSocket layer only maps authenticated agencies here
        launches = await app[CATALOG_STORE].agency_launches(principal.user_id, None, SNAPSHOT_LIMIT)
        now = app[CLOCK].now()
        # With the demand on each launch's waiting list, as the agency's REST views show it.
        demand = await app[WAITLIST].demand([launch.id for launch in launches]) if launches else {}
        return {
            "launches": [
                {**with_visibility(launch_card(launch), now), **demand.get(launch.id, no_demand(launch.id))}
                for launch in launches
            ]
        }

    async def traveler(principal: Principal | None, channel: str) -> dict[str, Any]:
        assert principal is not None
        views = await app[LEDGER].traveler_bookings(principal.user_id, None, SNAPSHOT_LIMIT)
        now = app[CLOCK].now()
        return {"bookings": [booking_out(v, now).model_dump(mode="json") for v in views]}

    broadcaster = app[BROADCASTER]
    broadcaster.register_snapshot("launch", launch)
    broadcaster.register_snapshot("launches", launches)
    broadcaster.register_snapshot("agency", agency)
    broadcaster.register_snapshot("traveler", traveler)
