"""Redis down while bookings commit: the live events wait on the node and go out in order when Redis is back,
so watchers reach the final count and a resume recovers exactly what it missed; when events had to be dropped
(the bound), their channels restart in a new epoch and a resume gets a fresh snapshot, never `recovered: true`
with a gap. Watchers on another node follow too (fan-out or catch-up after its connection came back)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from actors.live_publisher import BACKLOG
from astro.services.live import agency_channel, launch_channel
from tests.conftest import Account, MakeClient, agency_body, register, traveler_body
from tests.e2e.outage import (
    Client,
    app_on,
    book,
    frames_until,
    new_launch,
    past_authentication,
    private_redis,
    seats,
    subscribe,
)
from tests.stoppable_redis import StoppableRedis
from web.keys import BROADCASTER, LIVE

DURING = 4  # bookings committed while Redis is down, one seat each
BEFORE = 1  # ... and before


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StoppableRedis]:
    """Redis that keeps what it had across a restart (as the embedded default does): without the fix, the
    events lost meanwhile are what makes a resume answer `recovered: true` with nothing missed."""
    async with private_redis(tmp_path / "redis", persistent=True) as redis:
        yield redis


@dataclass
class Scene:
    client: Client
    agency: Account
    travelers: list[Account]
    launch: str


async def scene(client: Client) -> Scene:
    agency = await register(client, agency_body())
    travelers = [await register(client, traveler_body()) for _ in range(BEFORE + DURING + 1)]
    for traveler in travelers:  # their flags cached: authenticating needs one Redis round trip, no more
        assert (await client.get("/api/system/auth/me", headers=traveler.headers)).status == 200
    launch = await new_launch(client, agency, capacity=30, min_passengers=30)
    return Scene(client, agency, travelers, launch)


async def book_through_an_outage(s: Scene, server: StoppableRedis, node: Client | None = None) -> list[str]:
    """DURING bookings authenticated, then Redis stopped: they commit while it is down. Their ids."""
    node = node or s.client
    travelers = s.travelers[BEFORE : BEFORE + DURING]
    tasks = await past_authentication(node, [book(node, t, s.launch, 1, "tok_slow") for t in travelers])
    await server.stop()
    ids = []
    for task in tasks:
        resp = await task
        assert resp.status == 201, await resp.text()
        ids.append((await resp.json())["booking"]["id"])
    # Kept on the node: the occupancy of each batch on three channels, and two events per booking.
    assert node.app[LIVE].waiting >= 3 + 2 * DURING or node.app[LIVE].dropped > 0
    return ids


async def test_events_of_an_outage_reach_watchers_and_a_resume_recovers_exactly_what_it_missed(
    make_client: MakeClient, server: StoppableRedis
) -> None:
    s = await scene(await app_on(make_client, server))
    watcher, _ = await subscribe(s.client, f"launch:{s.launch}")
    assert (await book(s.client, s.travelers[0], s.launch, 1)).status == 201
    await frames_until(watcher, lambda f: seats(f) == BEFORE)
    await s.client.app[LIVE].drain()
    broadcaster = s.client.app[BROADCASTER]
    launch_at = await broadcaster.position(launch_channel(s.launch))
    agency_at = await broadcaster.position(agency_channel(s.agency.id))

    ids = await book_through_an_outage(s, server)
    await server.start()

    final = BEFORE + DURING
    seen = await frames_until(watcher, lambda f: seats(f) == final)
    assert [f["type"] for f in seen] == ["event"] * len(seen)  # no restart: nothing was lost
    _, fresh = await subscribe(s.client, f"launch:{s.launch}")
    assert seats(fresh) == final
    await s.client.app[LIVE].drain()
    assert s.client.app[LIVE].dropped == 0

    epoch, offset = agency_at
    _, resumed = await subscribe(s.client, "agency", s.agency.token, since=offset, epoch=epoch)
    assert resumed["recovered"] is True and resumed["epoch"] == epoch and resumed["snapshot"] is None
    missed = resumed["missed"]
    assert [m["offset"] for m in missed] == list(range(offset + 1, resumed["offset"] + 1))
    confirmed = [m["data"]["id"] for m in missed if m["event"] == "booking_confirmed"]
    assert sorted(confirmed) == sorted(ids)  # each booking once, none missing
    assert [m["data"]["seats_booked"] for m in missed if m["event"] == "occupancy"][-1] == final

    epoch, offset = launch_at
    _, resumed = await subscribe(s.client, f"launch:{s.launch}", since=offset, epoch=epoch)
    assert resumed["recovered"] is True
    occupancy = [m["data"]["seats_booked"] for m in resumed["missed"]]
    assert [m["offset"] for m in resumed["missed"]] == list(range(offset + 1, resumed["offset"] + 1))
    assert occupancy == sorted(occupancy) and occupancy[-1] == final


async def test_when_events_were_dropped_their_channels_restart_and_a_resume_gets_a_snapshot(
    make_client: MakeClient, server: StoppableRedis
) -> None:
    s = await scene(await app_on(make_client, server))
    watcher, _ = await subscribe(s.client, f"launch:{s.launch}")
    assert (await book(s.client, s.travelers[0], s.launch, 1)).status == 201
    await frames_until(watcher, lambda f: seats(f) == BEFORE)
    await s.client.app[LIVE].drain()
    broadcaster = s.client.app[BROADCASTER]
    launch_at = await broadcaster.position(launch_channel(s.launch))
    agency_at = await broadcaster.position(agency_channel(s.agency.id))
    s.client.app[LIVE].limit = 2  # the first batch's occupancy and agency events go past it

    await book_through_an_outage(s, server)
    assert s.client.app[LIVE].dropped > 0
    await server.start()

    final = BEFORE + DURING
    # The watcher, connected throughout, is restarted: a fresh snapshot with the final count.
    seen = await frames_until(watcher, lambda f: f["type"] == "subscribed")
    assert seen[-1]["recovered"] is False and seats(seen[-1]) == final
    assert seen[-1]["epoch"] != launch_at[0] and seen[-1]["offset"] == 0

    for channel, token, (epoch, offset) in (
        (f"launch:{s.launch}", None, launch_at),
        ("agency", s.agency.token, agency_at),
    ):
        _, resumed = await subscribe(s.client, channel, token, since=offset, epoch=epoch)
        assert resumed["recovered"] is False and "missed" not in resumed and resumed["epoch"] != epoch
        snapshot = resumed["snapshot"]
        shown = (
            snapshot["launch"]
            if "launch" in snapshot
            else next(x for x in snapshot["launches"] if x["id"] == s.launch)
        )
        assert shown["seats_booked"] == final

    # Live again on the new epoch (with room for a batch's events): the next booking is its event 1.
    s.client.app[LIVE].limit = BACKLOG
    assert (await book(s.client, s.travelers[-1], s.launch, 1)).status == 201
    seen = await frames_until(watcher, lambda f: seats(f) == final + 1)
    assert seen[-1]["offset"] == 1


async def test_a_redis_restarted_empty_gives_resumes_a_snapshot_and_watchers_the_final_count(
    make_client: MakeClient, tmp_path: Path
) -> None:
    async with private_redis(tmp_path / "empty") as empty:
        s = await scene(await app_on(make_client, empty))
        watcher, _ = await subscribe(s.client, f"launch:{s.launch}")
        assert (await book(s.client, s.travelers[0], s.launch, 1)).status == 201
        await frames_until(watcher, lambda f: seats(f) == BEFORE)
        await s.client.app[LIVE].drain()
        epoch, offset = await s.client.app[BROADCASTER].position(launch_channel(s.launch))

        await book_through_an_outage(s, empty)
        await empty.start()  # the epochs and histories are gone with everything else

        final = BEFORE + DURING
        await frames_until(watcher, lambda f: seats(f) == final)
        _, resumed = await subscribe(s.client, f"launch:{s.launch}", since=offset, epoch=epoch)
        assert resumed["recovered"] is False and seats(resumed) == final


@pytest.mark.parametrize("limit", [10_000, 2], ids=["kept", "dropped"])
async def test_watchers_on_another_node_follow_the_events_of_an_outage(
    make_client: MakeClient, server: StoppableRedis, limit: int
) -> None:
    booking_node = await app_on(make_client, server, node="node-a")
    watching_node = await app_on(make_client, server, node="node-b")
    s = await scene(booking_node)
    watcher, _ = await subscribe(watching_node, f"launch:{s.launch}")
    assert (await book(booking_node, s.travelers[0], s.launch, 1)).status == 201
    await frames_until(watcher, lambda f: seats(f) == BEFORE)
    booking_node.app[LIVE].limit = limit

    await book_through_an_outage(s, server)
    await server.start()

    seen: list[dict[str, Any]] = await frames_until(watcher, lambda f: seats(f) == BEFORE + DURING)
    restarted = [f for f in seen if f["type"] == "subscribed"]
    if limit == 2:  # told by the fan-out, or found on catching up after its connection came back
        assert restarted and restarted[-1]["recovered"] is False
    else:
        assert restarted == []
