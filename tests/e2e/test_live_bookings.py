"""Live: WebSocket watchers see every seat taken by a storm of bookings, and status changes."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import passengers
from web.keys import LIVE

B = "/api/booking"


async def book(client: Any, traveler: Any, launch_id: str, seats: int) -> Any:
    return await client.post(
        f"{B}/bookings",
        headers=traveler.headers,
        json={
            "launch_id": launch_id,
            "seats": seats,
            "passengers": passengers(seats),
            "card_token": "tok_ok",
        },
    )


async def subscribe(client: Any, channel: str, token: str | None = None) -> tuple[Any, dict[str, Any]]:
    ws = await client.ws_connect("/ws")
    if token:
        await ws.send_json({"type": "auth", "token": token})
    await ws.send_json({"type": "subscribe", "channel": channel})
    first = await ws.receive_json(timeout=5)
    assert first["type"] == "subscribed", first
    return ws, first


async def events_until(ws: Any, done: Any, limit: float = 10) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(limit):
        while True:
            frame = await ws.receive_json()
            assert frame["type"] in ("event", "pong"), frame
            if frame["type"] == "event":
                seen.append(frame)
                if done(frame):
                    return seen


async def test_a_watcher_sees_the_storm_reach_the_exact_final_count(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency = await make_agency()
    travelers = list(await asyncio.gather(*(make_traveler() for _ in range(40))))
    launch = await make_launch(agency, capacity=90, min_passengers=30)
    ws, subscribed = await subscribe(client, f"launch:{launch['id']}")
    assert subscribed["snapshot"]["launch"]["seats_booked"] == 0
    start = subscribed["offset"]
    results = await asyncio.gather(*(book(client, t, launch["id"], n) for t in travelers for n in (2, 1)))
    sold = sum(
        n
        for (t, n), r in zip([(t, n) for t in travelers for n in (2, 1)], results, strict=True)
        if r.status == 201
    )
    assert sold == 90
    # The confirming batch may also be the last one: its status event follows its occupancy event.
    flags = {"full": False, "confirmed": False}

    def done(frame: dict[str, Any]) -> bool:
        flags["full"] |= frame["event"] == "occupancy" and frame["data"]["seats_booked"] == sold
        flags["confirmed"] |= frame["event"] == "status" and frame["data"]["status"] == "confirmed"
        return flags["full"] and flags["confirmed"]

    seen = await events_until(ws, done)
    offsets = [f["offset"] for f in seen]
    assert offsets == sorted(set(offsets)) and offsets[0] > start
    occupancy = [f["data"]["seats_booked"] for f in seen if f["event"] == "occupancy"]
    assert occupancy == sorted(occupancy) and occupancy[-1] == 90
    assert [f["data"]["status"] for f in seen if f["event"] == "status"] == ["confirmed"]
    await ws.close()


async def test_traveler_and_agency_channels_follow_bookings_cancellations_and_aborts(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=10, min_passengers=5, days=400)
    agency_ws, agency_sub = await subscribe(client, "agency", agency.token)
    assert [x["id"] for x in agency_sub["snapshot"]["launches"]] == [launch["id"]]
    traveler_ws, traveler_sub = await subscribe(client, "traveler", traveler.token)
    assert traveler_sub["snapshot"]["bookings"] == []

    booking = (await (await book(client, traveler, launch["id"], 2)).json())["booking"]
    got = await events_until(traveler_ws, lambda f: f["event"] == "booking_confirmed")
    assert got[-1]["data"]["id"] == booking["id"]
    got = await events_until(agency_ws, lambda f: f["event"] == "occupancy")
    assert got[-1]["data"]["seats_booked"] == 2

    resp = await client.post(f"{B}/bookings/{booking['id']}/cancel", headers=traveler.headers)
    assert (await resp.json())["refund_pct"] == 90
    got = await events_until(traveler_ws, lambda f: f["event"] == "booking_cancelled")
    assert got[-1]["data"]["refund_cents"] == (await resp.json())["refund_cents"]

    await book(client, traveler, launch["id"], 1)
    await client.post(
        f"/api/agency/launches/{launch['id']}/status",
        headers=agency.headers,
        json={"status": "aborted", "reason": "engine"},
    )
    got = await events_until(traveler_ws, lambda f: f["event"] == "status")
    assert got[-1]["data"]["status"] == "aborted" and got[-1]["data"]["reason"] == "engine"

    def refunded(frame: dict[str, Any]) -> bool:
        return frame["event"] == "booking_cancelled" and frame["data"]["cancel_reason"] == "launch_aborted"

    got = await events_until(traveler_ws, refunded)
    assert got[-1]["data"]["refund_pct"] == 100 and got[-1]["data"]["refund_cents"] == 100_000
    got = await events_until(agency_ws, lambda f: f["event"] == "status")
    assert got[-1]["data"]["status"] == "aborted"
    await agency_ws.close()
    await traveler_ws.close()


async def test_the_public_launches_channel_announces_new_launches(
    client: Any, make_agency: Any, make_launch: Any
) -> None:
    agency = await make_agency()
    ws, sub = await subscribe(client, "launches")
    assert sub["snapshot"]["launches"] == []
    launch = await make_launch(agency)
    got = await events_until(ws, lambda f: f["event"] == "launch_added")
    assert got[-1]["data"]["id"] == launch["id"] and got[-1]["data"]["slug"] == launch["slug"]
    await ws.close()


async def test_resubscribing_with_since_gets_exactly_the_missed_bookings(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=20, min_passengers=15)
    ws, sub = await subscribe(client, f"launch:{launch['id']}")
    await book(client, traveler, launch["id"], 1)
    first = await events_until(ws, lambda f: f["event"] == "occupancy")
    await ws.close()
    for _ in range(3):
        assert (await book(client, traveler, launch["id"], 1)).status == 201
    await client.app[LIVE].drain()  # everything committed is published
    ws = await client.ws_connect("/ws")
    await ws.send_json(
        {
            "type": "subscribe",
            "channel": f"launch:{launch['id']}",
            "since": first[-1]["offset"],
            "epoch": sub["epoch"],
        }
    )
    again = await ws.receive_json(timeout=5)
    assert again["recovered"] is True
    missed = [m["data"]["seats_booked"] for m in again["missed"] if m["event"] == "occupancy"]
    assert missed == [2, 3, 4]
    await ws.close()
