"""The payment gateway port (DESIGN 8.6): what the platform needs from a gateway; adapters in astro.store."""

from __future__ import annotations

from typing import Protocol

from astro.domain.errors import GatewayError

__all__ = ["GatewayError", "PaymentGateway"]


class PaymentGateway(Protocol):
    async def charge(self, amount_cents: int, card_token: str, reference: str) -> str:
        """Charge a card; the gateway's reference, or PaymentDeclined / GatewayError."""

    async def refund(self, charge_ref: str, amount_cents: int, reference: str) -> str:
        """Give back (part of) a charge; the gateway's refund reference, or GatewayError."""
