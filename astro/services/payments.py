"""The payment gateway port (DESIGN 8.6): what the platform needs from a gateway; adapters in astro.store.

Money moves in two steps: `authorize` holds the amount on the card, `capture` takes it, `void` releases a
hold that will not be taken, `refund` gives back (part of) what was taken. Every call carries an
idempotency key (an attempt's id, an invoice payment's id, a refund's id): called again with the same key
after a crash or a timeout, the gateway does the work once. `find` tells what the gateway holds under a
key, so nothing is ever resolved by guessing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from astro.domain.errors import GatewayError
from astro.domain.payments import GatewayPayment

__all__ = ["GatewayError", "PaymentEvents", "PaymentGateway"]


class PaymentGateway(Protocol):
    async def authorize(
        self, *, key: str, amount_cents: int, card_token: str, metadata: Mapping[str, str]
    ) -> str:
        """Hold the amount on the card; the gateway's reference of the payment. PaymentDeclined when the
        card is refused (nothing held); GatewayError when the gateway failed (ask `find` what it holds);
        UnknownCard for a card token it does not know (nothing held)."""

    async def capture(self, ref: str, *, key: str) -> None:
        """Take the held amount (again: nothing more happens). GatewayError when unsure."""

    async def void(self, ref: str, *, key: str) -> None:
        """Release the hold (again, or on a payment never confirmed: nothing more happens)."""

    async def refund(self, ref: str, amount_cents: int, *, key: str) -> str:
        """Give back part of a captured amount; the refund's reference. GatewayError when unsure."""

    async def find(self, key: str) -> GatewayPayment | None:
        """The payment made under this idempotency key, or None when the gateway has none."""


class PaymentEvents(Protocol):
    """Where news of a payment from the gateway goes (a verified webhook, re-read from the gateway's API):
    the saga moves the payment's attempt as the gateway now tells it."""

    async def gateway_changed(self, payment: GatewayPayment) -> None: ...
