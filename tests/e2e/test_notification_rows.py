"""Notification rows: one per recipient, written in the transaction of the change, and only then."""

from __future__ import annotations

from collections import Counter
from typing import Any

import asyncpg

from tests.conftest import agency_body, passengers, register, traveler_body

A, B = "/api/agency", "/api/booking"


async def rows(settings: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        found = await conn.fetch(
            "SELECT event, recipient_id, recipient_role, recipient_email, data::text, status "
            "FROM notifications ORDER BY id"
        )
    finally:
        await conn.close()
    import json

    return [{**dict(r.items()), "data": json.loads(r["data"])} for r in found]


def by_event(found: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in found:
        out.setdefault(r["event"], set()).add(r["recipient_id"])
    return out


async def book(client: Any, traveler: Any, launch_id: str, seats: int, token: str = "tok_ok") -> Any:
    return await client.post(
        f"{B}/bookings",
        headers=traveler.headers,
        json={"launch_id": launch_id, "seats": seats, "passengers": passengers(seats), "card_token": token},
    )


async def test_each_event_reaches_exactly_its_recipients(
    client: Any, settings: Any, make_employee: Any, make_launch: Any
) -> None:
    agency, other_agency = await register(client, agency_body()), await register(client, agency_body())
    alice, bob, carol = [await register(client, traveler_body()) for _ in range(3)]
    launch = await make_launch(agency, capacity=10, min_passengers=3, days=400)
    other = await make_launch(other_agency, capacity=10, min_passengers=9)
    assert (await book(client, carol, other["id"], 1)).status == 201  # a traveler of another launch
    base = len(await rows(settings))

    first = (await (await book(client, alice, launch["id"], 1)).json())["booking"]
    found = (await rows(settings))[base:]
    assert by_event(found) == {"booking_confirmed": {alice.id, agency.id}}
    mail = next(r for r in found if r["recipient_id"] == alice.id)
    assert mail["recipient_role"] == "traveler" and mail["recipient_email"] == alice.email
    assert mail["data"]["booking_id"] == first["id"] and mail["data"]["seats"] == 1
    assert mail["data"]["amount"] == "$1,000.00" and mail["data"]["mission"] == launch["mission"]

    base = len(await rows(settings))
    assert (await book(client, bob, launch["id"], 2)).status == 201  # reaches min_passengers: confirmed
    found = (await rows(settings))[base:]
    assert by_event(found) == {
        "booking_confirmed": {bob.id, agency.id},
        "launch_confirmed": {agency.id, alice.id, bob.id},
    }

    base = len(await rows(settings))
    resp = await client.post(f"{B}/bookings/{first['id']}/cancel", headers=alice.headers)
    assert resp.status == 200
    found = (await rows(settings))[base:]
    assert by_event(found) == {"booking_cancelled": {alice.id, agency.id}}
    assert next(r for r in found if r["recipient_id"] == alice.id)["data"]["refund"] == "$900.00"

    base = len(await rows(settings))
    from tests.conftest import future

    resp = await client.post(
        f"{A}/launches/{launch['id']}/status",
        headers=agency.headers,
        json={"status": "delayed", "scheduled_at": future(500), "reason": "weather"},
    )
    assert resp.status == 200
    found = (await rows(settings))[base:]
    assert by_event(found) == {"launch_delayed": {agency.id, bob.id}}  # alice cancelled: not told
    assert found[0]["data"]["reason"] == "weather"

    base = len(await rows(settings))
    resp = await client.post(
        f"{A}/launches/{launch['id']}/status", headers=agency.headers, json={"status": "aborted"}
    )
    assert resp.status == 200
    found = (await rows(settings))[base:]
    assert by_event(found) == {"launch_aborted": {agency.id, bob.id}, "invoice_issued": {agency.id}}
    to_bob = next(r for r in found if r["recipient_id"] == bob.id)
    assert to_bob["data"]["refund"] == "$2,000.00"
    invoice = next(r for r in found if r["event"] == "invoice_issued")
    assert invoice["data"]["amount"] == "$1,000.00" and invoice["data"]["invoice_number"].startswith("INV-")
    assert carol.id not in {r["recipient_id"] for r in found}


async def test_refused_bookings_write_no_notification(client: Any, settings: Any, make_launch: Any) -> None:
    agency, traveler = await register(client, agency_body()), await register(client, traveler_body())
    launch = await make_launch(agency, capacity=1, min_passengers=1)
    base = len(await rows(settings))
    assert (await book(client, traveler, launch["id"], 1, token="tok_declined")).status == 402
    assert (await book(client, traveler, launch["id"], 2)).status == 409
    assert len(await rows(settings)) == base


async def test_vips_and_only_vips_get_the_early_notice_with_the_public_link(
    client: Any, settings: Any, make_employee: Any, make_launch: Any
) -> None:
    it = await make_employee("it")
    agency = await register(client, agency_body())
    vips = [await register(client, traveler_body()) for _ in range(2)]
    plain = await register(client, traveler_body())
    for vip in vips:
        assert (
            await client.patch(f"/api/system/users/{vip.id}", json={"vip": True}, headers=it.headers)
        ).status == 200
    launch = await make_launch(agency)
    found = [r for r in await rows(settings) if r["event"] == "launch_scheduled"]
    assert Counter(r["recipient_id"] for r in found) == Counter([agency.id, *(v.id for v in vips)])
    assert plain.id not in {r["recipient_id"] for r in found}
    assert all(r["data"]["link_path"] == f"/launches/{launch['slug']}" for r in found)
    # Clearing the flag stops the notices.
    await client.patch(f"/api/system/users/{vips[0].id}", json={"vip": False}, headers=it.headers)
    second = await make_launch(agency)
    found = [
        r
        for r in await rows(settings)
        if r["event"] == "launch_scheduled" and r["data"]["launch_id"] == second["id"]
    ]
    assert {r["recipient_id"] for r in found} == {agency.id, vips[1].id}


async def test_payments_notify_the_agency(make_client: Any, settings: Any, make_employee: Any) -> None:
    from datetime import UTC, datetime

    from astro.domain.clock import FixedClock

    client = await make_client(clock=FixedClock(datetime.now(UTC)))
    agency = await register(client, agency_body())
    resp = await client.post(
        f"{A}/rockets", headers=agency.headers, json={"name": "R", "capacity": 5, "range": "moon"}
    )
    rocket = (await resp.json())["rocket"]
    from tests.conftest import future

    resp = await client.post(
        f"{A}/launches",
        headers=agency.headers,
        json={
            "rocket_id": rocket["id"],
            "mission": "M",
            "destination": "moon",
            "scheduled_at": future(9),
            "price_cents": 100,
            "min_passengers": 1,
        },
    )
    launch = (await resp.json())["launch"]
    await client.post(
        f"{A}/launches/{launch['id']}/status", headers=agency.headers, json={"status": "aborted"}
    )
    invoice = (await (await client.get(f"{A}/invoices", headers=agency.headers)).json())["items"][0]
    resp = await client.post(
        f"{A}/invoices/{invoice['id']}/payments",
        headers=agency.headers,
        json={"amount_cents": 40_000, "card_token": "tok_ok"},
    )
    assert resp.status == 201
    found = [r for r in await rows(settings) if r["event"] == "payment_received"]
    assert [(r["recipient_id"], r["data"]["amount"], r["data"]["balance"]) for r in found] == [
        (agency.id, "$400.00", "$600.00")
    ]
