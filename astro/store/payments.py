"""The sandbox payment gateway (DESIGN 8.6): implements astro.services.payments.PaymentGateway."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Final

from astro.domain.errors import GatewayError, InvalidInput, PaymentDeclined

SLOW_SECONDS: Final = 2.0
SANDBOX_TOKENS: Final = ("tok_ok", "tok_declined", "tok_slow", "tok_error")


@dataclass
class SandboxGateway:
    """Tokens: tok_ok succeeds, tok_declined is declined, tok_slow succeeds after 2 s, tok_error fails."""

    slow_seconds: float = SLOW_SECONDS
    charges: dict[str, int] = field(default_factory=dict)
    refunds: dict[str, tuple[str, int]] = field(default_factory=dict)
    charging: set[str] = field(default_factory=set)  # references of charges under way

    async def charge(self, amount_cents: int, card_token: str, reference: str) -> str:
        if card_token not in SANDBOX_TOKENS:
            raise InvalidInput(
                "unknown card token; the sandbox takes tok_ok, tok_declined, tok_slow or tok_error",
                {"fields": {"card_token": "unknown"}},
            )
        if card_token == "tok_declined":
            raise PaymentDeclined("the card was declined; nothing was charged", {"reference": reference})
        if card_token == "tok_error":
            raise GatewayError("the payment gateway failed; nothing was charged; try again", retry_after=2)
        if card_token == "tok_slow":
            self.charging.add(reference)
            try:
                await asyncio.sleep(self.slow_seconds)
            finally:
                self.charging.discard(reference)
        ref = "ch_" + secrets.token_hex(8)
        self.charges[ref] = amount_cents
        return ref

    async def refund(self, charge_ref: str, amount_cents: int, reference: str) -> str:
        # A sandbox restarted since the charge no longer knows it, and takes the refund on trust.
        charged = self.charges.get(charge_ref)
        refunded = sum(amount for ref, amount in self.refunds.values() if ref == charge_ref)
        if not charge_ref.startswith("ch_") or (charged is not None and refunded + amount_cents > charged):
            raise GatewayError(f"the gateway cannot refund {amount_cents} cents of {charge_ref}")
        ref = "re_" + secrets.token_hex(8)
        self.refunds[ref] = (charge_ref, amount_cents)
        return ref
