"""Stripe's webhook signature, checked with stripe's own code; the event's ids taken, nothing else."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import stripe

from astro.domain.errors import InvalidInput
from astro.services.payment_webhooks import WebhookEvent
from astro.store.stripe_events import StripeSignatures

SECRET = "whsec_unit"


def sign(body: dict[str, Any] | bytes, at: float | None = None, secret: str = SECRET) -> tuple[bytes, str]:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    header = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, int(at if at is not None else time.time())
    )
    return payload, header


def event(obj: dict[str, Any], type_: str = "payment_intent.succeeded") -> dict[str, Any]:
    return {"id": "evt_1", "object": "event", "type": type_, "data": {"object": obj}}


@pytest.mark.parametrize(
    ("obj", "ref"),
    [
        ({"id": "pi_1", "object": "payment_intent", "status": "succeeded"}, "pi_1"),
        ({"id": "ch_1", "object": "charge", "payment_intent": "pi_2"}, "pi_2"),
        ({"id": "re_1", "object": "refund", "payment_intent": "pi_3"}, "pi_3"),
        ({"id": "cus_1", "object": "customer"}, None),
        ({"id": "ch_2", "object": "charge", "payment_intent": None}, None),
    ],
)
def test_a_signed_event_names_the_payment_it_is_about(obj: dict[str, Any], ref: str | None) -> None:
    payload, header = sign(event(obj))
    assert StripeSignatures(SECRET).verify(payload, header) == WebhookEvent(
        "evt_1", "payment_intent.succeeded", obj["id"], ref
    )


def test_a_signature_up_to_five_minutes_old_is_accepted_and_an_older_one_refused() -> None:
    body = event({"id": "pi_1", "object": "payment_intent"})
    StripeSignatures(SECRET).verify(*sign(body, at=time.time() - 290))
    with pytest.raises(InvalidInput) as refused:
        StripeSignatures(SECRET).verify(*sign(body, at=time.time() - 310))
    assert "Stripe-Signature" in refused.value.details["fields"]


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", "t=,v1=", "t=1", "v1=abc", "t=1e9,v1=" + "0" * 64, "t=1,v1=ü", "t=1,v0=00"],
)
def test_a_missing_or_malformed_signature_is_invalid_input(header: str | None) -> None:
    payload, _ = sign(event({"id": "pi_1", "object": "payment_intent"}))
    with pytest.raises(InvalidInput) as refused:
        StripeSignatures(SECRET).verify(payload, header)
    assert list(refused.value.details["fields"]) == ["Stripe-Signature"]


def test_a_body_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(InvalidInput):
        StripeSignatures(SECRET).verify(*sign(event({"id": "pi_1"}), secret="whsec_other"))
