"""The booking flow over HTTP: book, list, cancel, sold out, declined cards."""

from __future__ import annotations

from typing import Any

from tests.conftest import passengers

B = "/api/booking"


async def book(
    client: Any,
    traveler: Any,
    launch_id: str,
    seats: int,
    token: str = "tok_ok",
    headers: dict[str, str] | None = None,
) -> Any:
    return await client.post(
        f"{B}/bookings",
        headers={**traveler.headers, **(headers or {})},
        json={"launch_id": launch_id, "seats": seats, "passengers": passengers(seats), "card_token": token},
    )


async def test_book_then_see_it_and_the_occupancy(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=10, min_passengers=3, price_cents=250_000)
    resp = await book(client, traveler, launch["id"], 2)
    body = await resp.json()
    assert resp.status == 201, body
    booking = body["booking"]
    assert booking["seats"] == 2 and booking["total_cents"] == 500_000 and booking["status"] == "confirmed"
    assert booking["launch_status"] == "scheduled"
    resp = await client.get(f"{B}/launches/{launch['slug']}")
    card = (await resp.json())["launch"]
    assert card["seats_booked"] == 2 and card["seats_available"] == 8 and card["viable"] is False
    mine = await (await client.get(f"{B}/bookings", headers=traveler.headers)).json()
    assert [b["id"] for b in mine["items"]] == [booking["id"]]
    one = await (await client.get(f"{B}/bookings/{booking['id']}", headers=traveler.headers)).json()
    assert len(one["booking"]["passengers"]) == 2


async def test_reaching_min_passengers_confirms_the_launch(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=10, min_passengers=3)
    assert (await book(client, traveler, launch["id"], 2)).status == 201
    resp = await book(client, traveler, launch["id"], 1)
    assert (await resp.json())["booking"]["launch_status"] == "confirmed"
    got = await (await client.get(f"/api/agency/launches/{launch['id']}", headers=agency.headers)).json()
    assert got["launch"]["status"] == "confirmed" and got["launch"]["viable"] is True


async def test_declined_card_leaves_no_booking_and_no_held_seat(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=2, min_passengers=1)
    resp = await book(client, traveler, launch["id"], 2, token="tok_declined")
    assert resp.status == 402 and (await resp.json())["error"]["code"] == "payment_declined"
    assert (await (await client.get(f"{B}/bookings", headers=traveler.headers)).json())["items"] == []
    assert (await book(client, traveler, launch["id"], 2)).status == 201


async def test_sold_out(client: Any, make_agency: Any, make_traveler: Any, make_launch: Any) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=3, min_passengers=1)
    assert (await book(client, traveler, launch["id"], 2)).status == 201
    resp = await book(client, traveler, launch["id"], 2)
    err = (await resp.json())["error"]
    assert resp.status == 409 and err["code"] == "sold_out" and err["details"]["seats_available"] == 1


async def test_cancel_far_ahead_refunds_90_percent(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=5, min_passengers=5, price_cents=100_001, days=400)
    booking = (await (await book(client, traveler, launch["id"], 1)).json())["booking"]
    resp = await client.post(f"{B}/bookings/{booking['id']}/cancel", headers=traveler.headers)
    body = await resp.json()
    assert resp.status == 200, body
    assert (
        body["refund_pct"] == 90
        and body["refund_cents"] == 90_001
        and body["booking"]["status"] == "cancelled"
    )
    again = await client.post(f"{B}/bookings/{booking['id']}/cancel", headers=traveler.headers)
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_cancelled"
    card = (await (await client.get(f"{B}/launches/{launch['id']}")).json())["launch"]
    assert card["seats_booked"] == 0


async def test_a_hold_expires_while_a_slow_payment_runs(make_client: Any, make_agency: Any) -> None:
    """tok_slow takes 2 s; once the hold has expired another traveler takes the seat meanwhile."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from astro.domain.clock import FixedClock
    from tests.conftest import register, traveler_body
    from web.keys import DESK
    from web.resources import GATEWAY

    clock = FixedClock(datetime.now(UTC))
    client = await make_client(clock=clock, hold_seconds=30)
    agency = await make_agency()
    slow, quick = await register(client, traveler_body()), await register(client, traveler_body())
    resp = await client.post(
        "/api/agency/rockets", headers=agency.headers, json={"name": "Tiny", "capacity": 1, "range": "moon"}
    )
    rocket = (await resp.json())["rocket"]
    from tests.conftest import future

    resp = await client.post(
        "/api/agency/launches",
        headers=agency.headers,
        json={
            "rocket_id": rocket["id"],
            "mission": "Solo",
            "destination": "moon",
            "scheduled_at": future(20),
            "price_cents": 5000,
            "min_passengers": 1,
        },
    )
    launch = (await resp.json())["launch"]
    gateway = client.app[GATEWAY]
    slow_booking = asyncio.ensure_future(book(client, slow, launch["id"], 1, token="tok_slow"))
    async with asyncio.timeout(5):
        while not gateway.charging:  # the seat is held and the card is being charged
            await asyncio.sleep(0.01)
    clock.advance(timedelta(seconds=31))  # the hold expires; the payment is still running
    assert (await book(client, quick, launch["id"], 1)).status == 201
    resp = await slow_booking
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "sold_out"
    # Two authorizations: the quick one captured, the late one released (nothing taken).
    await client.app[DESK].wait_background()
    assert sorted(p.state.value for p in await gateway.ledger()) == ["captured", "voided"]


async def test_a_slow_payment_within_its_hold_books(
    make_client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    client = await make_client()
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=2, min_passengers=1)
    resp = await book(client, traveler, launch["id"], 2, token="tok_slow")
    assert resp.status == 201


async def test_gateway_error_is_503_and_frees_the_seats(
    client: Any, make_agency: Any, make_traveler: Any, make_launch: Any
) -> None:
    agency, traveler = await make_agency(), await make_traveler()
    launch = await make_launch(agency, capacity=1, min_passengers=1)
    resp = await book(client, traveler, launch["id"], 1, token="tok_error")
    assert resp.status == 503 and resp.headers["Retry-After"] == "2"
    assert (await resp.json())["error"]["code"] == "payment_gateway_error"
    assert (await book(client, traveler, launch["id"], 1)).status == 201
