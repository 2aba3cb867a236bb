"""The payment gateway's webhook: POST /api/payments/stripe/webhook (public; signed by Stripe)."""

from __future__ import annotations

from aiohttp import web

from astro.schemas.payments import StripeEventIn, WebhookAnswer
from web.http import respond
from web.keys import PAYMENT_WEBHOOKS
from web.openapi import doc

PREFIX = "/api/payments"


@doc(
    "Stripe's webhook: an event signed in the Stripe-Signature header (5 minutes' tolerance), acted on "
    "once; the payment is read again from Stripe. 400 for a bad signature or body, 503 when no signing "
    "secret is configured, 404 when the sandbox is the gateway",
    body=StripeEventIn,
    response=WebhookAnswer,
    tag="payments",
    public=True,
    errors={404: "the sandbox is the gateway: there is no webhook"},
)
async def stripe_webhook(request: web.Request) -> web.Response:
    payload = await request.read()
    outcome = await request.app[PAYMENT_WEBHOOKS].receive(payload, request.headers.get("Stripe-Signature"))
    return respond(WebhookAnswer(outcome=outcome.value))


def setup(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/stripe/webhook", stripe_webhook)
