"""The gateway's webhook (DESIGN 8.6): a verified event, acted on once, re-read from the gateway's API.

An event only says "look at this payment": its signature is checked, its id is claimed once (a duplicate
is acknowledged and ignored), the payment is read again from the gateway (the payload is never trusted),
and what the gateway tells now goes to `PaymentEvents.gateway_changed`, the saga's state machine. When
reading or handing over fails, the claim is released, so the gateway's retry is acted on. A crash between
the claim and the hand-over loses that one event; the recovery worker asks the gateway anyway."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

import structlog

from astro.domain.errors import NotFound, Unavailable
from astro.domain.payments import GatewayPayment
from astro.services.payments import PaymentEvents

log = structlog.get_logger("astro.payments")


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified event: what it is about, not what it claims."""

    id: str
    type: str
    object_id: str | None
    payment_ref: str | None  # the payment (a PaymentIntent) it concerns, if any


class WebhookVerifier(Protocol):
    def verify(self, payload: bytes, signature: str | None) -> WebhookEvent:
        """The event of a body signed with our secret; InvalidInput for anything else."""


class WebhookEventStore(Protocol):
    async def claim(self, event: WebhookEvent) -> bool:
        """Record the event id; False when it was recorded before (a duplicate)."""

    async def release(self, event_id: str) -> None:
        """Forget the event id, so the gateway's next delivery of it is acted on."""


class PaymentReader(Protocol):
    async def payment(self, ref: str) -> GatewayPayment | None:
        """The payment as the gateway tells it now; None when unknown or not ours."""


class Outcome(enum.StrEnum):
    ACTED = "acted"  # the payment, re-read, went to the saga
    DUPLICATE = "duplicate"  # seen before: acknowledged, nothing done
    IGNORED = "ignored"  # about no payment of ours


class PaymentWebhooks:
    """Receives the gateway's webhook; `events` is the saga (actors.payments.Payments), which acts on each
    payment the gateway re-reads."""

    def __init__(
        self,
        verifier: WebhookVerifier | None,
        store: WebhookEventStore,
        reader: PaymentReader | None,
        events: PaymentEvents,
    ) -> None:
        self._verifier = verifier
        self._store = store
        self._reader = reader
        self.events = events

    async def receive(self, payload: bytes, signature: str | None) -> Outcome:
        """Verify, claim once, re-read and hand over one delivery."""
        if self._reader is None:
            raise NotFound("no webhook here: the payment gateway in use is the sandbox (ASTRO_PAYMENT_URL)")
        if self._verifier is None:
            # Refused with 503, not acknowledged: the gateway delivers it again once the secret is set.
            raise Unavailable(
                "the Stripe webhook is not configured: ASTRO_STRIPE_WEBHOOK_SECRET is not set", retry_after=60
            )
        event = self._verifier.verify(payload, signature)
        if not await self._store.claim(event):
            log.info("webhook_duplicate", event_id=event.id, type=event.type)
            return Outcome.DUPLICATE
        try:
            payment = await self._reader.payment(event.payment_ref) if event.payment_ref else None
            if payment is None:
                log.info("webhook_ignored", event_id=event.id, type=event.type, object_id=event.object_id)
                return Outcome.IGNORED
            await self.events.gateway_changed(payment)
        except BaseException:
            try:
                await self._store.release(event.id)
            except Exception as exc:  # then its next delivery counts as a duplicate; recovery still asks
                log.warning("webhook_release_failed", event_id=event.id, error=f"{type(exc).__name__}: {exc}")
            raise
        log.info("webhook_acted", event_id=event.id, type=event.type, ref=payment.ref, state=payment.state)
        return Outcome.ACTED
