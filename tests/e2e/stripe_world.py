"""The platform in Stripe mode on localstripe, for end-to-end tests of bookings: the app, localstripe's API
read and driven directly (never through the adapter under test), the audit of the money; the fixture
`make_world` (import `make_world_fixture`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
import stripe
from aiohttp import web
from aiohttp.test_utils import TestClient

from actors.payments import Payments
from astro.config import Settings
from astro.domain.clock import FixedClock
from astro.domain.ids import new_id
from astro.domain.payments import FINAL, Attempt, AttemptState, GatewayPayment, GatewayState
from astro.store.stripe_gateway import StripeGateway
from tests.conftest import Account, agency_body, future, passengers, register, traveler_body
from tests.stripe_server import WEBHOOK_PATH, WEBHOOK_SECRET, LocalStripe, MakeStripeClient
from web.keys import DESK, PAYMENT_WEBHOOKS, PAYMENTS, RECOVERY
from web.resources import GATEWAY

BOOKINGS = "/api/booking/bookings"
PAGE = 100


class StripeApi:
    """localstripe's REST API as a client of Stripe sees it: what the gateway really holds."""

    def __init__(self, server: LocalStripe) -> None:
        self._base = server.api_base
        self._headers = {"Authorization": f"Bearer {server.secret_key}"}

    async def _call(self, method: str, path: str, params: dict[str, str] | None = None) -> Any:
        form = {"data": params} if method == "POST" else {"params": params}
        async with (
            aiohttp.ClientSession(headers=self._headers) as session,
            session.request(method, f"{self._base}{path}", **form) as resp,
        ):
            body = await resp.json()
            assert resp.status == 200, body
            return body

    async def intent(self, ref: str) -> dict[str, Any]:
        """A PaymentIntent, its latest charge expanded (amount_refunded)."""
        return await self._call("GET", f"/v1/payment_intents/{ref}", {"expand[0]": "latest_charge"})  # type: ignore[no-any-return]

    async def cancel(self, ref: str) -> dict[str, Any]:
        """Cancel an intent at the gateway, behind the platform's back (as the dashboard would)."""
        return await self._call("POST", f"/v1/payment_intents/{ref}/cancel")  # type: ignore[no-any-return]

    async def capture(self, ref: str) -> dict[str, Any]:
        """Capture an intent at the gateway, behind the platform's back (localstripe then sends
        payment_intent.succeeded to the webhook)."""
        return await self._call("POST", f"/v1/payment_intents/{ref}/capture")  # type: ignore[no-any-return]

    async def card(self, number: str) -> str:
        """A PaymentMethod of this test card number."""
        params = {"type": "card", "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034"}
        made = await self._call("POST", "/v1/payment_methods", {**params, "card[cvc]": "123"})
        return str(made["id"])

    async def create_unconfirmed(self, attempt: Attempt, card: str = "pm_card_visa") -> dict[str, Any]:
        """The intent the adapter creates for an attempt, before it confirms it (a crash in between)."""
        params = {
            "amount": str(attempt.amount_cents),
            "currency": "usd",
            "capture_method": "manual",
            "payment_method": card,
            "metadata[key]": attempt.id,
            "metadata[attempt_id]": attempt.id,
            "metadata[booking_id]": attempt.booking_id,
        }
        return await self._call("POST", "/v1/payment_intents", params)  # type: ignore[no-any-return]

    async def refunds(self, ref: str) -> list[dict[str, Any]]:
        body = await self._call("GET", "/v1/refunds", {"payment_intent": ref, "limit": str(PAGE)})
        assert not body["has_more"]
        return body["data"]  # type: ignore[no-any-return]

    async def intents_of(self, attempt_ids: set[str]) -> list[dict[str, Any]]:
        """Every intent whose metadata names one of these attempts (localstripe keeps the whole session's
        intents: a test's own are those of its attempts)."""
        params = {"limit": str(PAGE), "expand[0]": "data.latest_charge"}
        found: list[dict[str, Any]] = []
        while True:
            page = await self._call("GET", "/v1/payment_intents", params)
            found += [i for i in page["data"] if (i["metadata"] or {}).get("attempt_id") in attempt_ids]
            if not page["has_more"] or not page["data"]:
                return found
            params["starting_after"] = page["data"][-1]["id"]


def refunded(intent: dict[str, Any]) -> int:
    charge = intent.get("latest_charge")
    return int(charge["amount_refunded"]) if isinstance(charge, dict) else 0


@dataclass
class World:
    client: TestClient[web.Request, web.Application]
    clock: FixedClock
    dsn: str
    agency: Account
    stripe: StripeApi

    @property
    def app(self) -> web.Application:
        return self.client.app

    @property
    def payments(self) -> Payments:
        return self.app[PAYMENTS]

    @property
    def gateway(self) -> StripeGateway:
        gateway = self.app[GATEWAY]
        assert isinstance(gateway, StripeGateway)
        return gateway

    async def traveler(self) -> Account:
        return await register(self.client, traveler_body())

    async def launch(self, capacity: int = 4, price_cents: int = 50_001, days: float = 30) -> str:
        """A launch of a new rocket, not confirmed until it is full; its actor loaded."""
        resp = await self.client.post(
            "/api/agency/rockets",
            headers=self.agency.headers,
            json={"name": "Ares", "capacity": capacity, "range": "mars"},
        )
        assert resp.status == 201, await resp.text()
        resp = await self.client.post(
            "/api/agency/launches",
            headers=self.agency.headers,
            json={
                "rocket_id": (await resp.json())["rocket"]["id"],
                "mission": "Stripe run",
                "destination": "moon",
                "scheduled_at": future(days),
                "price_cents": price_cents,
                "min_passengers": capacity,
            },
        )
        assert resp.status == 201, await resp.text()
        launch_id = str((await resp.json())["launch"]["id"])
        await self.app[DESK].launch(launch_id)
        return launch_id

    async def book(self, traveler: Account, launch_id: str, seats: int, card: str = "pm_card_visa") -> Any:
        body = {"launch_id": launch_id, "seats": seats, "passengers": passengers(seats), "card_token": card}
        return await self.client.post(BOOKINGS, json=body, headers=traveler.headers)

    async def booked(self, traveler: Account, launch_id: str, seats: int) -> dict[str, Any]:
        resp = await self.book(traveler, launch_id, seats)
        assert resp.status == 201, await resp.text()
        await self.app[DESK].wait_background()  # its capture runs after the answer
        return (await resp.json())["booking"]  # type: ignore[no-any-return]

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(query, *args)  # type: ignore[no-any-return]
        finally:
            await conn.close()

    async def attempts_of(self, traveler: Account) -> list[Attempt]:
        rows = await self.sql(
            "SELECT id FROM payment_attempts WHERE traveler_id = $1 ORDER BY created_at, id", traveler.id
        )
        found = [await self.payments.attempts.get(r["id"]) for r in rows]
        return [a for a in found if a is not None]

    async def attempt_of(self, booking_id: str) -> Attempt:
        attempt = await self.payments.attempts.by_booking(booking_id)
        assert attempt is not None, booking_id
        return attempt

    async def state_of(self, attempt_id: str) -> AttemptState:
        attempt = await self.payments.attempts.get(attempt_id)
        assert attempt is not None
        return attempt.state

    async def bookings_of(self, traveler: Account) -> list[str]:
        rows = await self.sql("SELECT id FROM bookings WHERE traveler_id = $1 ORDER BY id", traveler.id)
        return [r["id"] for r in rows]

    async def seats_booked(self, launch_id: str) -> int:
        [(seats,)] = await self.sql("SELECT seats_booked FROM launches WHERE id = $1", launch_id)
        return int(seats)

    async def webhook(self, payload: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        resp = await self.client.post(WEBHOOK_PATH, data=payload, headers=headers)
        return resp.status, await resp.json()

    async def stored_events(self, event_id: str) -> int:
        [(n,)] = await self.sql("SELECT count(*) FROM stripe_events WHERE id = $1", event_id)
        return int(n)


MakeWorld = Callable[..., Awaitable[World]]


@pytest.fixture(name="make_world")
def make_world_fixture(
    make_stripe_client: MakeStripeClient, settings: Settings, localstripe: LocalStripe
) -> MakeWorld:
    """The platform in Stripe mode on a FixedClock, recovery rounds only when a test asks, an agency."""

    async def make(**changes: Any) -> World:
        clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
        client = await make_stripe_client(clock=clock, recovery_interval=3600.0, **changes)
        recovery = client.app[RECOVERY]
        while recovery.background.rounds < 1:  # the start-up round is over
            await recovery.background.round_end()
        agency = await register(client, agency_body())
        return World(client, clock, settings.pg_dsn or "", agency, StripeApi(localstripe))

    return make


class Handed:
    """Stands in for the webhook's saga: hands each payment to the real one (actors.payments.Payments),
    then records it, so a test can count the hand-overs and await one."""

    def __init__(self, events: Any) -> None:
        self.events = events
        self.handed: list[GatewayPayment] = []
        self._changed = asyncio.Condition()

    async def gateway_changed(self, payment: GatewayPayment) -> None:
        await self.events.gateway_changed(payment)
        async with self._changed:
            self.handed.append(payment)
            self._changed.notify_all()

    def refs(self) -> list[str]:
        return [p.ref for p in self.handed]

    async def wait_for(self, ref: str, state: GatewayState) -> None:
        """Until a payment of `ref` in `state` was handed over and acted on (localstripe delivers its
        events about a second late)."""
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: any(p.ref == ref and p.state is state for p in self.handed))


def handed(w: World) -> Handed:
    """The app's webhook, its hand-overs to the saga recorded."""
    recorder = Handed(w.app[PAYMENT_WEBHOOKS].events)
    w.app[PAYMENT_WEBHOOKS].events = recorder
    return recorder


def canceled_event(ref: str) -> bytes:
    """Stripe's payment_intent.canceled about this intent (localstripe sends none of its own)."""
    body = {
        "id": "evt_" + new_id("t")[2:],
        "object": "event",
        "type": "payment_intent.canceled",
        "data": {"object": {"id": ref, "object": "payment_intent", "status": "canceled"}},
    }
    return json.dumps(body).encode()


def signed(payload: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(payload.decode(), secret, int(time.time()))
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll, bounded, for what nothing signals (a backend waiting for a lock)."""
    try:
        async with asyncio.timeout(10):
            while not await check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not within 10 s: {what}") from None


async def audit(w: World) -> None:
    """What must hold at the end of every test, read from localstripe itself: every attempt is final;
    no intent of ours holds money uncaptured; the captured intents are exactly the stored bookings' (by
    metadata.booking_id and attempt_id), each for the booking's total and refunded by the booking's refund;
    captured - refunded == the bookings' totals - their refunds, to the cent."""
    await w.app[DESK].wait_background()
    attempts = {r["id"]: r for r in await w.sql("SELECT id, booking_id, state FROM payment_attempts")}
    assert all(AttemptState(r["state"]) in FINAL for r in attempts.values()), [
        tuple(r) for r in attempts.values()
    ]
    bookings = {
        r["id"]: r
        for r in await w.sql(
            """SELECT b.id, b.status, b.total_cents, COALESCE(b.refund_cents, 0) AS refund, a.id AS attempt_id
               FROM bookings b LEFT JOIN payment_attempts a ON a.booking_id = b.id"""
        )
    }
    intents = await w.stripe.intents_of(set(attempts))
    assert [i["id"] for i in intents if i["status"] == "requires_capture"] == []
    captured = [i for i in intents if i["status"] == "succeeded"]
    assert sorted(i["metadata"]["booking_id"] for i in captured) == sorted(bookings)
    for intent in captured:
        booking = bookings[intent["metadata"]["booking_id"]]
        assert intent["metadata"]["attempt_id"] == booking["attempt_id"]
        assert attempts[booking["attempt_id"]]["state"] == "captured"
        assert intent["amount"] == booking["total_cents"] and intent["capture_method"] == "manual"
        assert refunded(intent) == booking["refund"], booking["id"]
    net = sum(i["amount"] - refunded(i) for i in captured)
    assert net == sum(b["total_cents"] - b["refund"] for b in bookings.values())
    assert all(refunded(i) == 0 for i in intents if i["status"] != "succeeded")
