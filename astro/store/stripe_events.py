"""Stripe's webhook events: the signature check (stripe's own) and the table of events acted on once."""

from __future__ import annotations

import json
import re
from typing import Any, Final

import asyncpg
import stripe

from astro.domain.errors import InvalidInput
from astro.services.payment_webhooks import WebhookEvent
from astro.store.errors import unavailable_as

TOLERANCE: Final = 300  # seconds an event's signed timestamp may be old (Stripe's default: 5 minutes)
EVENT_ID: Final = re.compile(r"[A-Za-z0-9_]{1,255}")
EVENT_TYPE: Final = re.compile(r"[a-z0-9_.]{1,100}")
OBJECT_ID: Final = re.compile(r"[A-Za-z0-9_]{1,255}")
# Objects that name their PaymentIntent: the event is about that payment.
NAME_THEIR_INTENT: Final = frozenset({"charge", "refund", "dispute"})


def _refused(why: str, field: str = "Stripe-Signature") -> InvalidInput:
    return InvalidInput(f"webhook refused: {why}", {"fields": {field: why}})


class StripeSignatures:
    """Implements astro.services.payment_webhooks.WebhookVerifier with the endpoint's signing secret."""

    def __init__(self, secret: str, tolerance: int = TOLERANCE) -> None:
        self._secret = secret
        self._tolerance = tolerance

    def verify(self, payload: bytes, signature: str | None) -> WebhookEvent:
        if not signature:
            raise _refused("the Stripe-Signature header is missing")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise _refused("the body is not UTF-8 text", "body") from None
        try:
            stripe.WebhookSignature.verify_header(text, signature, self._secret, self._tolerance)
        except Exception:  # stripe's SignatureVerificationError, or its parser meeting a header it chokes on
            raise _refused("the signature does not match this body, or is older than 5 minutes") from None
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):
            raise _refused("the body is not JSON", "body") from None
        return _event(body)


def _event(body: Any) -> WebhookEvent:
    """The parts of a signed Stripe event the webhook uses: ids only; the state is read from the API."""
    data = body.get("data") if isinstance(body, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, event_type = (body.get("id"), body.get("type")) if isinstance(body, dict) else (None, None)
    if not (isinstance(event_id, str) and EVENT_ID.fullmatch(event_id)):
        raise _refused("an event needs an id like evt_...", "id")
    if not (isinstance(event_type, str) and EVENT_TYPE.fullmatch(event_type)):
        raise _refused("an event needs a type like payment_intent.succeeded", "type")
    if not isinstance(obj, dict):
        raise _refused("an event needs data.object", "data.object")
    object_id = obj.get("id")
    if object_id is not None and not (isinstance(object_id, str) and OBJECT_ID.fullmatch(object_id)):
        raise _refused("data.object.id is no Stripe id", "data.object.id")
    kind = obj.get("object")
    named = obj.get("payment_intent") if kind in NAME_THEIR_INTENT else None
    ref = object_id if kind == "payment_intent" else named
    if not (isinstance(ref, str) and ref.startswith("pi_") and OBJECT_ID.fullmatch(ref)):
        ref = None
    return WebhookEvent(id=event_id, type=event_type, object_id=object_id, payment_ref=ref)


@unavailable_as("PostgreSQL")
class PgStripeEvents:
    """Implements astro.services.payment_webhooks.WebhookEventStore on the table stripe_events."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, event: WebhookEvent) -> bool:
        async with self._pool.acquire() as conn:
            claimed = await conn.fetchval(
                """INSERT INTO stripe_events (id, type, object_id) VALUES ($1, $2, $3)
                   ON CONFLICT (id) DO NOTHING RETURNING true""",
                event.id,
                event.type,
                event.object_id,
            )
        return bool(claimed)

    async def release(self, event_id: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("DELETE FROM stripe_events WHERE id = $1", event_id)

    async def seen(self, event_id: str) -> bool:
        """Was this event recorded (tests, operators)?"""
        async with self._pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT true FROM stripe_events WHERE id = $1", event_id))
