"""Reconciliation against the Stripe adapter on localstripe: bookings, a refunded cancel and a declined card
agree to the cent with what Stripe holds; a refund made at Stripe behind the platform's back is listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from astro.domain.clock import FixedClock
from astro.domain.payments import GatewayState
from astro.store.stripe_gateway import StripeGateway
from tests.conftest import Account, agency_body, passengers, register, traveler_body
from tests.stripe_server import MakeStripeClient
from web.clients import PG_POOL
from web.keys import DESK

RECON = "/api/finance/reconciliation"
PRICE = 123_457


@pytest.fixture
async def client(make_stripe_client: MakeStripeClient) -> TestClient[Any, Any]:
    """The platform in Stripe mode (employees are made on it too); recovery only at start-up."""
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    return await make_stripe_client(clock=clock, recovery_interval=3600.0)


async def _book(
    client: TestClient[Any, Any], traveler: Account, launch_id: str, seats: int, card: str
) -> Any:
    return await client.post(
        "/api/booking/bookings",
        headers=traveler.headers,
        json={"launch_id": launch_id, "seats": seats, "passengers": passengers(seats), "card_token": card},
    )


async def test_stripe_and_our_records_agree_until_a_refund_is_made_behind_our_back(
    client: TestClient[Any, Any], make_employee: Any, stripe_gateway: StripeGateway
) -> None:
    agency, traveler = await register(client, agency_body()), await register(client, traveler_body())
    finance = await make_employee("finance")
    resp = await client.post(
        "/api/agency/rockets", headers=agency.headers, json={"name": "Ares", "capacity": 20, "range": "mars"}
    )
    rocket = (await resp.json())["rocket"]
    resp = await client.post(
        "/api/agency/launches",
        headers=agency.headers,
        json={
            "rocket_id": rocket["id"],
            "mission": "Ledger run",
            "destination": "mars",
            "scheduled_at": (datetime.now(UTC) + timedelta(days=400)).isoformat(),
            "price_cents": PRICE,
            "min_passengers": 1,
        },
    )
    assert resp.status == 201, await resp.text()
    launch_id = (await resp.json())["launch"]["id"]
    kept = await _book(client, traveler, launch_id, 2, "pm_card_visa")
    assert kept.status == 201, await kept.text()
    kept_id = (await kept.json())["booking"]["id"]
    cancelled = await _book(client, traveler, launch_id, 1, "pm_card_visa")
    assert cancelled.status == 201, await cancelled.text()
    resp = await client.post(
        f"/api/booking/bookings/{(await cancelled.json())['booking']['id']}/cancel", headers=traveler.headers
    )
    assert (await resp.json())["refund_cents"] == 111_111  # 90 % of 123_457, half up
    assert (await _book(client, traveler, launch_id, 1, "pm_card_chargeCustomerFail")).status == 402
    await client.app[DESK].wait_background()

    resp = await client.get(RECON, headers=finance.headers)
    report = await resp.json()
    assert resp.status == 200 and report["items"] == [] and report["checked"] == 3
    assert report["totals"] == {
        "captured_cents": 3 * PRICE,
        "refunded_cents": 111_111,
        "booked_cents": 3 * PRICE,
        "refunds_due_cents": 111_111,
        "difference_cents": 0,
    }
    assert report["states"]["captured"] == 2 and report["states"]["declined"] == 1
    # Stripe's own ledger, of these attempts, says the same to the cent.
    ours = {r["id"] for r in await client.app[PG_POOL].fetch("SELECT id FROM payment_attempts")}
    stripe_side = [p for p in await stripe_gateway.ledger() if p.key in ours]
    assert sum(p.amount_cents for p in stripe_side if p.state is GatewayState.CAPTURED) == 3 * PRICE
    assert sum(p.refunded_cents for p in stripe_side) == 111_111

    attempt_id = await client.app[PG_POOL].fetchval(
        "SELECT id FROM payment_attempts WHERE booking_id = $1", kept_id
    )
    found = await stripe_gateway.find(attempt_id)
    assert found is not None
    await stripe_gateway.refund(found.ref, 100, key=f"behind-our-back-{attempt_id}")
    report = await (await client.get(RECON, headers=finance.headers)).json()
    [item] = report["items"]
    assert item["attempt_id"] == attempt_id and item["gateway"]["refunded_cents"] == 100
    assert [p["code"] for p in item["problems"]] == ["refund_differs"]
    assert item["problems"][0]["what"] == "the gateway refunded 100 cents, our records say 0 paid"
    assert report["totals"]["difference_cents"] == 0  # our records did not move
