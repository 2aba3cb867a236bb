"""localstripe as the tests run it (`python -m tests.localstripe_shim --port N --from-scratch`).

localstripe, on the loopback only, taught three things Stripe does that it does not, because the saga
relies on them and a test against a server lacking them would test localstripe, not our adapter:

1. Idempotency-Key: Stripe answers a repeated POST with the first answer (another body under the same key
   is a 400 idempotency_error); localstripe ignores the header, so an authorize repeated after a crash
   would create a second PaymentIntent.
2. pm_card_visa_chargeDeclined is declined when charged (localstripe declines it only when attached).
3. `allowed_payment_method_types` (API 2026-10-28's name of `payment_method_types`) is accepted.

What it still lacks, on purpose: the Search API (the adapter falls back to listing), Stripe's events for
authorizations and cancellations (localstripe sends payment_intent.succeeded and .payment_failed only).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
from typing import Any

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError

DECLINED_WHEN_CHARGED = "4000000000000002"  # the card behind pm_card_visa_chargeDeclined

_answers: dict[str, tuple[str, int, bytes]] = {}  # key -> (request fingerprint, status, body)
_locks: dict[str, asyncio.Lock] = {}


@web.middleware
async def idempotency(request: web.Request, handler: Any) -> web.StreamResponse:
    """A POST with an Idempotency-Key is done once; a repeat gets the first answer (not a 5xx one)."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)  # type: ignore[no-any-return]
    fingerprint = hashlib.sha256(f"{request.path}\n".encode() + await request.read()).hexdigest()
    async with _locks.setdefault(key, asyncio.Lock()):
        if key in _answers:
            first, status, body = _answers[key]
            if first != fingerprint:
                error = {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                }
                return web.json_response({"error": error}, status=400)
            return web.Response(
                status=status,
                body=body,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            response = await handler(request)
        except UserError as exc:
            response = exc.to_response()
        if response.status < 500 and isinstance(response, web.Response) and response.body is not None:
            body = response.body if isinstance(response.body, bytes) else json.dumps(response.body).encode()
            _answers[key] = (fingerprint, response.status, body)
        return response  # type: ignore[no-any-return]


def teach_stripe() -> None:
    """Patch localstripe's card and PaymentIntent models where they differ from Stripe (see above)."""
    charging_declined = resources.PaymentMethod._charging_is_declined

    def declined(self: Any) -> bool:
        if self.type == "card" and self._card_number == DECLINED_WHEN_CHARGED:
            return True
        return bool(charging_declined(self))

    resources.PaymentMethod._charging_is_declined = declined
    create = resources.PaymentIntent.__init__

    def init(self: Any, *args: Any, allowed_payment_method_types: Any = None, **kwargs: Any) -> None:
        if allowed_payment_method_types is not None:
            kwargs.setdefault("payment_method_types", allowed_payment_method_types)
        create(self, *args, **kwargs)

    resources.PaymentIntent.__init__ = init


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--from-scratch", action="store_true")
    args = parser.parse_args()
    if not args.from_scratch:
        resources.store.try_load_from_disk()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")  # webhook deliveries
    teach_stripe()
    server.app.middlewares.append(idempotency)
    web.run_app(server.app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
