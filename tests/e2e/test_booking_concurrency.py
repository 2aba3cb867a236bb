"""Many simultaneous requests on one launch: exact seat counts, never a seat sold twice."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import pytest

from tests.conftest import passengers
from web.keys import DESK, LEDGER
from web.resources import GATEWAY

B = "/api/booking"


async def book(client: Any, traveler: Any, launch_id: str, seats: int, token: str = "tok_ok") -> Any:
    return await client.post(
        f"{B}/bookings",
        headers=traveler.headers,
        json={"launch_id": launch_id, "seats": seats, "passengers": passengers(seats), "card_token": token},
    )


async def db_counts(settings: Any, launch_id: str) -> tuple[int, int, int]:
    """(launches.seats_booked, seats of confirmed bookings, confirmed bookings)."""
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        booked = await conn.fetchval("SELECT seats_booked FROM launches WHERE id = $1", launch_id)
        row = await conn.fetchrow(
            "SELECT COALESCE(sum(seats), 0) AS seats, count(*) AS n FROM bookings WHERE launch_id = $1 "
            "AND (status = 'confirmed' OR seats_released = false)",
            launch_id,
        )
    finally:
        await conn.close()
    return int(booked), int(row["seats"]), int(row["n"])


@pytest.fixture
async def travelers(make_traveler: Any) -> list[Any]:
    return list(await asyncio.gather(*(make_traveler() for _ in range(100))))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_300_simultaneous_bookings_never_overbook(
    client: Any, settings: Any, make_agency: Any, make_launch: Any, travelers: list[Any], seed: int
) -> None:
    rng = random.Random(seed)
    launch = await make_launch(await make_agency(), capacity=120, min_passengers=10)
    wanted = [(travelers[i % 100], rng.randint(1, 4)) for i in range(300)]
    responses = await asyncio.gather(*(book(client, t, launch["id"], n) for t, n in wanted))
    accepted = 0
    for (_, seats), resp in zip(wanted, responses, strict=True):
        body = await resp.json()
        if resp.status == 201:
            accepted += seats
            assert body["booking"]["seats"] == seats
        else:
            assert resp.status == 409 and body["error"]["code"] == "sold_out", body
            details = body["error"]["details"]
            assert details["seats_requested"] == seats and details["seats_available"] < seats
    demand = sum(n for _, n in wanted)
    assert accepted == min(120, demand)
    assert await db_counts(settings, launch["id"]) == (
        accepted,
        accepted,
        sum(r.status == 201 for r in responses),
    )


async def test_concurrent_bookings_and_cancellations_keep_exact_counts(
    client: Any, settings: Any, make_agency: Any, make_launch: Any, travelers: list[Any]
) -> None:
    launch = await make_launch(await make_agency(), capacity=60, min_passengers=10, days=400)
    first = [await (await book(client, t, launch["id"], 2)).json() for t in travelers[:20]]
    cancels = [
        client.post(f"{B}/bookings/{b['booking']['id']}/cancel", headers=t.headers)
        for t, b in zip(travelers[:20], first, strict=True)
    ]
    books = [book(client, t, launch["id"], 2) for t in travelers[20:60]]
    results = await asyncio.gather(*cancels, *books)
    assert all(r.status == 200 for r in results[:20])
    accepted = sum(2 for r in results[20:] if r.status == 201)
    for r in results[20:]:
        if r.status != 201:
            assert r.status == 409 and (await r.json())["error"]["code"] == "sold_out"
    booked, seats, _ = await db_counts(settings, launch["id"])
    assert booked == seats == accepted  # every cancellation far ahead released its seats
    # 20 seats were free from the start and 40 were released: at least 20 seats sold, never more than 60.
    assert 20 <= accepted <= 60


async def test_no_booking_survives_a_concurrent_abort(
    client: Any, settings: Any, make_agency: Any, make_launch: Any, travelers: list[Any]
) -> None:
    agency = await make_agency()
    launch = await make_launch(agency, capacity=200, min_passengers=150)
    before = [await book(client, t, launch["id"], 1) for t in travelers[:10]]
    assert all(r.status == 201 for r in before)
    abort = client.post(
        f"/api/agency/launches/{launch['id']}/status",
        headers=agency.headers,
        json={"status": "aborted", "reason": "weather"},
    )
    results = await asyncio.gather(
        *(book(client, t, launch["id"], 1) for t in travelers[10:50]),
        abort,
        *(book(client, t, launch["id"], 1) for t in travelers[50:]),
    )
    abort_resp = results[40]
    assert abort_resp.status == 200 and (await abort_resp.json())["launch"]["status"] == "aborted"
    booking_resps = before + results[:40] + results[41:]
    accepted = [await r.json() for r in booking_resps if r.status == 201]
    assert len(accepted) >= 10
    for r in booking_resps:
        if r.status != 201:
            assert r.status == 409 and (await r.json())["error"]["code"] == "launch_not_bookable"
    await client.app[DESK].wait_background()
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, status, cancel_reason, refund_cents, total_cents FROM bookings WHERE launch_id = $1",
            launch["id"],
        )
        refunds = await conn.fetch(
            "SELECT p.status, p.amount_cents, p.gateway_ref FROM traveler_payments p "
            "JOIN bookings b ON b.id = p.booking_id WHERE b.launch_id = $1 AND p.kind = 'refund'",
            launch["id"],
        )
    finally:
        await conn.close()
    assert {r["id"] for r in rows} == {a["booking"]["id"] for a in accepted}
    assert all(r["status"] == "cancelled" and r["cancel_reason"] == "launch_aborted" for r in rows)
    assert all(r["refund_cents"] == r["total_cents"] for r in rows)
    assert len(refunds) == len(rows) and all(p["status"] == "done" and p["gateway_ref"] for p in refunds)
    # Every payment went back in full: the bookings' captures through the abort's refunds, the late
    # ones' authorizations released by their refusal.
    payments = await client.app[GATEWAY].ledger()
    captured = [p for p in payments if p.state.value == "captured"]
    assert len(captured) == len(rows) and all(p.refunded_cents == p.amount_cents for p in captured)
    assert all(p.state.value == "voided" for p in payments if p not in captured)


async def test_a_crash_mid_commit_fails_that_request_and_the_next_succeeds(
    client: Any, settings: Any, make_agency: Any, make_launch: Any, make_traveler: Any
) -> None:
    traveler = await make_traveler()
    launch = await make_launch(await make_agency(), capacity=10, min_passengers=5)
    assert (await book(client, traveler, launch["id"], 2)).status == 201
    ledger = client.app[LEDGER]
    real = ledger.commit_bookings
    crashes = []

    async def crash_once(*args: Any, **kwargs: Any) -> None:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("disk on fire")
        await real(*args, **kwargs)

    ledger.commit_bookings = crash_once  # type: ignore[method-assign]
    resp = await book(client, traveler, launch["id"], 3)
    body = await resp.json()
    assert resp.status == 503 and body["error"]["code"] == "unavailable", body
    # The failed booking's authorization was released at once: nothing held, nothing taken.
    assert [p.state.value for p in await client.app[GATEWAY].ledger()] == ["captured", "voided"]
    resp = await book(client, traveler, launch["id"], 3)
    assert resp.status == 201
    assert await db_counts(settings, launch["id"]) == (5, 5, 2)
    card = (await (await client.get(f"{B}/launches/{launch['id']}")).json())["launch"]
    assert card["seats_booked"] == 5 and card["status"] == "confirmed"
