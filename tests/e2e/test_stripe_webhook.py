"""POST /api/payments/stripe/webhook: signed events acted on once, the payment re-read from Stripe."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
import pytest
import stripe
from aiohttp import web
from aiohttp.test_utils import TestClient

from astro.config import Settings
from astro.domain.errors import PaymentDeclined, Unavailable
from astro.domain.ids import new_id
from astro.domain.payments import GatewayPayment, GatewayState
from astro.store.stripe_gateway import StripeGateway
from tests.conftest import MakeClient
from tests.stripe_server import WEBHOOK_PATH, WEBHOOK_SECRET, MakeStripeClient
from web.keys import PAYMENT_WEBHOOKS
from web.resources import GATEWAY

AMOUNT = 99_900
Client = TestClient[web.Request, web.Application]


class Recorder:
    """The saga's side of the hook: records what it is handed; can fail its next hand-overs."""

    def __init__(self) -> None:
        self.payments: list[GatewayPayment] = []
        self.failures = 0
        self._changed = asyncio.Condition()

    async def gateway_changed(self, payment: GatewayPayment) -> None:
        if self.failures:
            self.failures -= 1
            raise Unavailable("PostgreSQL is unreachable; retry shortly")
        async with self._changed:
            self.payments.append(payment)
            self._changed.notify_all()

    async def wait_for(self, key: str, state: GatewayState) -> GatewayPayment:
        """The first payment handed over under `key` in `state` (localstripe delivers about 1 s late)."""

        def found() -> GatewayPayment | None:
            return next((p for p in self.payments if p.key == key and p.state is state), None)

        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(found)
        payment = found()
        assert payment is not None
        return payment


async def stripe_app(make_stripe_client: MakeStripeClient, **changes: Any) -> tuple[Client, Recorder]:
    client = await make_stripe_client(**changes)
    recorder = Recorder()
    client.app[PAYMENT_WEBHOOKS].events = recorder
    return client, recorder


async def authorized(client: Client, card: str = "pm_card_visa") -> tuple[str, str, str]:
    """A payment authorized through the app's own gateway: (attempt key, booking id, intent id)."""
    gateway = client.app[GATEWAY]
    assert isinstance(gateway, StripeGateway)
    key, booking = new_id("att"), new_id("bkg")
    ref = await gateway.authorize(
        key=key, amount_cents=AMOUNT, card_token=card, metadata={"attempt_id": key, "booking_id": booking}
    )
    return key, booking, ref


def event_about(ref: str, **changes: Any) -> bytes:
    """An event claiming the intent succeeded (whatever it really is: the webhook must not believe it)."""
    body = {
        "id": "evt_" + new_id("t")[2:],
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": ref, "object": "payment_intent", "status": "succeeded", "amount": 1}},
        **changes,
    }
    return json.dumps(body).encode()


def signed(payload: bytes, secret: str = WEBHOOK_SECRET, at: float | None = None) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(
        payload.decode("utf-8", "surrogateescape"), secret, int(at if at is not None else time.time())
    )
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


async def post(client: Client, payload: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    resp = await client.post(WEBHOOK_PATH, data=payload, headers=headers)
    return resp.status, await resp.json()


async def stored_events(settings: Settings, event_id: str) -> int:
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM stripe_events WHERE id = $1", event_id))
    finally:
        await conn.close()


async def test_a_signed_event_is_acted_on_once_with_the_payment_read_again_from_stripe(
    make_stripe_client: MakeStripeClient, settings: Settings
) -> None:
    client, recorder = await stripe_app(make_stripe_client)
    key, booking, ref = await authorized(client)
    payload = event_about(ref)
    event_id = json.loads(payload)["id"]
    assert await post(client, payload, signed(payload)) == (200, {"received": True, "outcome": "acted"})
    # The payload said "succeeded" for 1 cent; Stripe says authorized for the whole amount.
    ours = [p for p in recorder.payments if p.ref == ref]
    assert ours == [GatewayPayment(ref, key, GatewayState.AUTHORIZED, AMOUNT, 0, booking)]
    assert await post(client, payload, signed(payload)) == (200, {"received": True, "outcome": "duplicate"})
    assert [p for p in recorder.payments if p.ref == ref] == ours
    assert await stored_events(settings, event_id) == 1


async def test_one_event_delivered_many_times_at_once_is_acted_on_once(
    make_stripe_client: MakeStripeClient, settings: Settings
) -> None:
    client, recorder = await stripe_app(make_stripe_client)
    _, _, ref = await authorized(client)
    payload = event_about(ref)
    answers = await asyncio.gather(*(post(client, payload, signed(payload)) for _ in range(8)))
    outcomes = sorted(body["outcome"] for status, body in answers if status == 200)
    assert outcomes == ["acted"] + ["duplicate"] * 7
    assert len([p for p in recorder.payments if p.ref == ref]) == 1
    assert await stored_events(settings, json.loads(payload)["id"]) == 1


async def test_localstripes_own_events_reach_the_saga(make_stripe_client: MakeStripeClient) -> None:
    client, recorder = await stripe_app(make_stripe_client)
    key, booking, ref = await authorized(client)
    gateway = client.app[GATEWAY]
    await gateway.capture(ref, key=key)  # localstripe sends payment_intent.succeeded
    captured = await recorder.wait_for(key, GatewayState.CAPTURED)
    assert (captured.ref, captured.booking_id, captured.amount_cents) == (ref, booking, AMOUNT)


async def test_a_declined_cards_event_tells_the_saga_nothing_is_held(
    make_stripe_client: MakeStripeClient,
) -> None:
    client, recorder = await stripe_app(make_stripe_client)
    with pytest.raises(PaymentDeclined) as declined:
        await authorized(client, "pm_card_visa_chargeDeclined")  # localstripe sends .payment_failed
    payment = await recorder.wait_for(declined.value.details["reference"], GatewayState.DECLINED)
    assert (payment.amount_cents, payment.refunded_cents) == (AMOUNT, 0)


@pytest.mark.parametrize(
    ("why", "headers"),
    [
        ("no signature", lambda payload: {}),
        ("another secret", lambda payload: signed(payload, "whsec_someone_else")),
        ("six minutes old", lambda payload: signed(payload, at=time.time() - 360)),
        ("a header stripe cannot parse", lambda payload: {"Stripe-Signature": "t=abc,v1=zz"}),
        ("no v1 signature", lambda payload: {"Stripe-Signature": f"t={int(time.time())}"}),
        ("signed for another body", lambda payload: signed(payload + b" ")),
    ],
)
async def test_a_bad_signature_is_refused_with_400(
    make_stripe_client: MakeStripeClient, settings: Settings, why: str, headers: Any
) -> None:
    client, recorder = await stripe_app(make_stripe_client)
    _, _, ref = await authorized(client)
    payload = event_about(ref)
    status, body = await post(client, payload, headers(payload))
    assert status == 400, why
    assert (
        body["error"]["code"] == "invalid_input" and "Stripe-Signature" in body["error"]["details"]["fields"]
    )
    assert [p for p in recorder.payments if p.ref == ref] == []
    assert await stored_events(settings, json.loads(payload)["id"]) == 0


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json at all",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"id": "evt_1", "type": "payment_intent.succeeded"}',
        b'{"id": "evt_1\\u0000", "type": "x", "data": {"object": {"id": "pi_1"}}}',
        b'{"id": "evt_1", "type": "x", "data": {"object": {"id": 12, "object": "payment_intent"}}}',
        json.dumps({"id": "evt_" + "x" * 300, "type": "x", "data": {"object": {}}}).encode(),
        b"[" * 50_000 + b"]" * 50_000,
    ],
)
async def test_a_signed_body_that_is_no_stripe_event_is_refused_with_400(
    make_stripe_client: MakeStripeClient, payload: bytes
) -> None:
    client, recorder = await stripe_app(make_stripe_client)
    utf8 = not payload.startswith(b"\xff")
    headers = signed(payload) if payload and utf8 else {"Stripe-Signature": f"t={int(time.time())},v1=00"}
    status, body = await post(client, payload, headers)
    assert status == 400 and body["error"]["code"] == "invalid_input"
    assert recorder.payments == []


async def test_a_failed_hand_over_is_503_and_the_redelivery_is_acted_on(
    make_stripe_client: MakeStripeClient, settings: Settings
) -> None:
    client, recorder = await stripe_app(make_stripe_client)
    _, _, ref = await authorized(client)
    payload = event_about(ref)
    recorder.failures = 1
    status, body = await post(client, payload, signed(payload))
    assert status == 503 and body["error"]["code"] == "unavailable"
    assert await stored_events(settings, json.loads(payload)["id"]) == 0  # released: not a duplicate later
    assert await post(client, payload, signed(payload)) == (200, {"received": True, "outcome": "acted"})
    assert [p.state for p in recorder.payments if p.ref == ref] == [GatewayState.AUTHORIZED]


async def test_an_event_about_no_payment_of_ours_is_acknowledged_and_ignored(
    make_stripe_client: MakeStripeClient,
) -> None:
    client, recorder = await stripe_app(make_stripe_client)
    customer = event_about(
        "cus_1", type="customer.created", data={"object": {"id": "cus_1", "object": "customer"}}
    )
    unknown = event_about("pi_doesnotexist")
    for payload in (customer, unknown):
        assert await post(client, payload, signed(payload)) == (200, {"received": True, "outcome": "ignored"})
    assert recorder.payments == []


async def test_without_a_webhook_secret_events_are_refused_until_it_is_set(
    make_stripe_client: MakeStripeClient,
) -> None:
    client, recorder = await stripe_app(make_stripe_client, stripe_webhook_secret=None)
    _, _, ref = await authorized(client)
    payload = event_about(ref)
    resp = await client.post(WEBHOOK_PATH, data=payload, headers=signed(payload))
    body = await resp.json()
    assert resp.status == 503 and "Retry-After" in resp.headers
    assert "ASTRO_STRIPE_WEBHOOK_SECRET" in body["error"]["message"]
    assert recorder.payments == []


async def test_with_the_sandbox_there_is_no_webhook(make_client: MakeClient) -> None:
    client = await make_client()
    payload = event_about("pi_1")
    resp = await client.post(WEBHOOK_PATH, data=payload, headers=signed(payload))
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_the_webhook_is_a_public_endpoint_of_the_openapi_document(make_client: MakeClient) -> None:
    client = await make_client()
    spec = await (await client.get("/api/openapi.json")).json()
    operation = spec["paths"][WEBHOOK_PATH]["post"]
    assert "security" not in operation and "400" in operation["responses"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("StripeEventIn")
