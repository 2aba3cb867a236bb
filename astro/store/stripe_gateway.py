"""The Stripe payment gateway (DESIGN 8.6): PaymentIntents with manual capture, over stripe's async client.

Every call to Stripe carries an idempotency key made from the port's key — create: `key`; confirm,
capture, cancel: `key:confirm`, `key:capture`, `key:void` (Stripe refuses one key on two different
requests); a refund: its own key — so a call repeated after a crash or a timeout is done once (Stripe keeps
keys 24 hours). Every intent's metadata holds `key` (and the caller's `attempt_id`, `booking_id`), so
`find` can tell what Stripe holds under a key. Nothing here touches our database. Stripe's errors leave as
the domain's: a declined card as PaymentDeclined (so is an amount Stripe never takes: over $999,999.99 or
under $0.50), an unknown PaymentMethod as UnknownCard (422 unknown_card) naming card_token, anything
else as GatewayError (ambiguous: the caller asks `find`).

`find` on api.stripe.com asks the Search API; its index may trail writes (Stripe: under a minute, up to an
hour in an outage), so a miss is checked by listing the intents created in the last hour. A server
without search (localstripe) is noticed on the first find, after which every find lists all intents,
paged, filtering on metadata (fine for a test server, not for a big account). Concurrent finds share one
listing (astro/store/stripe_lookup.py)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any, Final

import stripe
import structlog

from astro.domain.errors import DomainError, GatewayError, PaymentDeclined, UnknownCard
from astro.domain.payments import GatewayPayment, GatewayState
from astro.store.stripe_lookup import Coalesced, best_of

log = structlog.get_logger("astro.payments")

CURRENCY: Final = "usd"
PAYMENT_METHOD: Final = re.compile(r"pm_[A-Za-z0-9_]{1,200}")
SEARCH_LAG: Final = 3600  # seconds the Search API may trail Stripe's writes; misses are listed this far back
PAGE: Final = 100
MAX_PAGES: Final = 1000  # a listing longer than this is a bug (or an account far too big to list)
TIMEOUT: Final = 20.0  # seconds per HTTP request to Stripe; stripe's own default is 80
# The least and the most Stripe takes in one USD payment ($0.50 and $999,999.99: eight digits); an amount
# outside is refused whatever the card, so it is a definite refusal, never an error worth retrying.
MIN_AMOUNT: Final = 50
MAX_AMOUNT: Final = 99_999_999
# Statuses of an intent that holds nothing and never will unless confirmed again (which we never do).
NOTHING_HELD: Final = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})


class StripeGateway:
    """Implements astro.services.payments.PaymentGateway on Stripe's PaymentIntents (and the webhook's
    `payment(ref)` read); `close()` ends its HTTP session."""

    def __init__(
        self,
        api_base: str,
        secret_key: str,
        *,
        timeout: float = TIMEOUT,
        max_network_retries: int = 2,
        search: bool | None = None,
    ) -> None:
        self._http = stripe.AIOHTTPClient(timeout=timeout)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            http_client=self._http,
            max_network_retries=max_network_retries,
        )
        self._intents = self._client.v1.payment_intents
        self._refunds = self._client.v1.refunds
        self.api_base = api_base
        # None: try the Search API on the first find; False once the server turned out to have none.
        self.search = search
        self._probing = asyncio.Lock()
        self._every_intent = Coalesced(lambda: self._listing(None))
        self._recent_intents = Coalesced(lambda: self._listing(int(time.time()) - SEARCH_LAG))

    async def close(self) -> None:
        await self._every_intent.close()
        await self._recent_intents.close()
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def authorize(
        self, *, key: str, amount_cents: int, card_token: str, metadata: Mapping[str, str]
    ) -> str:
        if not PAYMENT_METHOD.fullmatch(card_token):
            # The API's schema cannot state which gateway is in use: refused as an unknown card.
            raise UnknownCard(
                "card_token must be a Stripe PaymentMethod id such as pm_card_visa",
                {"fields": {"card_token": "not a PaymentMethod id (pm_...)"}},
            )
        if not MIN_AMOUNT <= amount_cents <= MAX_AMOUNT:
            too = "amount_too_small" if amount_cents < MIN_AMOUNT else "amount_too_large"
            raise _amount_refused(key, amount_cents, too)
        with _translated("authorize", key):
            try:
                intent = await self._intents.create_async(
                    {
                        "amount": amount_cents,
                        "currency": CURRENCY,
                        "capture_method": "manual",
                        "payment_method": card_token,
                        "allowed_payment_method_types": ["card"],  # no redirect method: no return_url
                        "metadata": {**metadata, "key": key},
                    },
                    {"idempotency_key": key},
                )
            except stripe.InvalidRequestError as exc:
                if exc.http_status == 404 or exc.param == "payment_method" or exc.code == "resource_missing":
                    raise UnknownCard(
                        "the payment gateway knows no such PaymentMethod",
                        {"fields": {"card_token": "unknown PaymentMethod"}},
                    ) from None
                raise
            if intent.status == "requires_confirmation":
                try:
                    intent = await self._intents.confirm_async(
                        intent.id, options={"idempotency_key": f"{key}:confirm"}
                    )
                except stripe.CardError as exc:
                    await self._cancel_quietly(intent.id, key)
                    raise PaymentDeclined(
                        "the card was declined; nothing was charged",
                        {"reference": key, "decline_code": exc.code or "card_declined"},
                    ) from None
                except stripe.InvalidRequestError:
                    intent = await self._retrieve(intent.id)  # confirmed by an earlier call: its state tells
            return await self._authorized(intent, key)

    async def _authorized(self, intent: stripe.PaymentIntent, key: str) -> str:
        """The intent's id when it holds the money; else it is left canceled and the card refused."""
        if intent.status in ("requires_capture", "succeeded"):
            return intent.id
        if intent.status == "processing":
            raise GatewayError(f"the payment gateway is still processing {intent.id}; try again")
        if intent.status != "canceled":
            await self._cancel_quietly(intent.id, key)
        reason = (
            "the card needs authentication (3-D Secure), which booking cannot ask for"
            if intent.status == "requires_action"
            else "the card was declined"
        )
        raise PaymentDeclined(f"{reason}; nothing was charged", {"reference": key})

    async def _cancel_quietly(self, ref: str, key: str) -> None:
        """Cancel an intent that holds nothing, so none is left open; a failure only leaves it open."""
        try:
            await self._intents.cancel_async(ref, options={"idempotency_key": f"{key}:void"})
        except Exception as exc:  # it holds nothing either way: the refusal stands
            log.warning("stripe_cancel_failed", ref=ref, error=f"{type(exc).__name__}: {exc}")

    async def capture(self, ref: str, *, key: str) -> None:
        with _translated("capture", ref):
            try:
                intent = await self._intents.capture_async(ref, options={"idempotency_key": f"{key}:capture"})
            except stripe.InvalidRequestError:
                intent = await self._retrieve(ref)  # captured already (a repeated call), or not capturable
            if intent.status != "succeeded":
                raise GatewayError(f"the payment gateway cannot capture {ref} ({intent.status})")

    async def void(self, ref: str, *, key: str) -> None:
        with _translated("void", ref):
            try:
                intent = await self._intents.cancel_async(ref, options={"idempotency_key": f"{key}:void"})
            except stripe.InvalidRequestError:
                intent = await self._retrieve(ref)  # canceled already (a repeated call), or captured
            if intent.status != "canceled":
                raise GatewayError(f"the payment gateway cannot void {ref} ({intent.status})")

    async def refund(self, ref: str, amount_cents: int, *, key: str) -> str:
        with _translated("refund", ref):
            intent = await self._retrieve(ref)
            if intent.status != "succeeded":
                raise GatewayError(f"the payment gateway cannot refund {ref} ({intent.status})")
            made = await self._refund_under(ref, key)
            if made is not None:  # also after Stripe forgot the idempotency key (24 h)
                return made
            refunded = _refunded(intent)
            if refunded + amount_cents > intent.amount:
                raise GatewayError(
                    f"the payment gateway cannot refund {amount_cents} cents of {ref}: "
                    f"{intent.amount - refunded} left"
                )
            refund = await self._refunds.create_async(
                {"payment_intent": ref, "amount": amount_cents, "metadata": {"refund_key": key}},
                {"idempotency_key": key},
            )
            return refund.id

    async def _refund_under(self, ref: str, key: str) -> str | None:
        """The refund of this intent made under this key, if one was."""
        params: dict[str, object] = {"payment_intent": ref, "limit": PAGE}
        for _ in range(MAX_PAGES):
            page = await self._refunds.list_async(params)  # type: ignore[arg-type]
            for refund in page.data:
                if _metadata(refund).get("refund_key") == key:
                    return refund.id
            if not page.has_more or not page.data:
                return None
            params["starting_after"] = page.data[-1].id
        raise GatewayError(f"too many refunds of {ref} to look through")

    async def find(self, key: str) -> GatewayPayment | None:
        with _translated("find", key):
            probed = False
            if self.search is None:  # the first finds: one asks whether there is a Search API, others wait
                async with self._probing:
                    if self.search is None:
                        found, probed = await self._searched(key), True
            if not probed:  # searched at once, side by side (not one by one under the probe's lock)
                found = await self._searched(key) if self.search else None
            if found is None:  # no Search API here: every intent, listed
                found = (await self._every_intent()).get(key, [])
            elif not found:  # the search index may trail: the intents of the last hour, listed
                found = (await self._recent_intents()).get(key, [])
            payments = [p for p in map(_payment, found) if p is not None]
            if len(payments) > 1:
                log.error("stripe_duplicate_intents", key=key, refs=[p.ref for p in payments])
            return best_of(payments)

    async def payment(self, ref: str) -> GatewayPayment | None:
        """The payment of this intent as Stripe tells it now; None when it is unknown or not ours."""
        with _translated("read", ref):
            try:
                intent = await self._retrieve(ref)
            except stripe.InvalidRequestError as exc:
                if exc.http_status == 404:
                    return None
                raise
            return _payment(intent)

    async def ledger(self) -> list[GatewayPayment]:
        """Every payment of ours Stripe holds, listed (tests, audits; the sandbox has the same)."""
        with _translated("list", "the payments"):
            listed = await self._every_intent()
            intents = {intent.id: intent for found in listed.values() for intent in found}
            payments = [p for p in map(_payment, intents.values()) if p is not None]
        return sorted(payments, key=lambda p: p.ref)

    async def _retrieve(self, ref: str) -> stripe.PaymentIntent:
        return await self._intents.retrieve_async(ref, {"expand": ["latest_charge"]})

    async def _searched(self, key: str) -> list[stripe.PaymentIntent] | None:
        """The intents the Search API finds under this key; None when the server has no Search API."""
        quoted = key.replace("\\", "\\\\").replace("'", "\\'")
        try:
            result = await self._intents.search_async(
                {
                    "query": f"metadata['key']:'{quoted}' OR metadata['attempt_id']:'{quoted}'",
                    "limit": PAGE,
                    "expand": ["data.latest_charge"],
                }
            )
        except stripe.InvalidRequestError as exc:
            if self.search:  # it has answered searches: it refused this one (a bug of ours, not its lack)
                raise
            log.warning(
                "stripe_search_unavailable", api=self.api_base, error=str(exc), status=exc.http_status
            )
            self.search = False
            return None
        self.search = True
        return list(result.data)

    async def _listing(self, created_since: int | None) -> dict[str, list[stripe.PaymentIntent]]:
        """Every intent (created since then), by the keys in its metadata."""
        params: dict[str, object] = {"limit": PAGE, "expand": ["data.latest_charge"]}
        if created_since is not None:
            params["created"] = {"gte": created_since}
        by_key: dict[str, list[stripe.PaymentIntent]] = {}
        for _ in range(MAX_PAGES):
            page = await self._intents.list_async(params)  # type: ignore[arg-type]
            for intent in page.data:
                metadata = _metadata(intent)
                for key in {metadata.get("key"), metadata.get("attempt_id")} - {None}:
                    by_key.setdefault(str(key), []).append(intent)
            if not page.has_more or not page.data:
                return by_key
            params["starting_after"] = page.data[-1].id
        raise GatewayError("too many PaymentIntents to list; the gateway's search is needed")


def _amount_refused(key: str, amount_cents: int, code: str) -> PaymentDeclined:
    """Stripe takes no payment of this amount, whatever the card (the booking's total, say, is too big)."""
    return PaymentDeclined(
        f"the payment gateway takes $0.50 to $999,999.99 in one payment, not ${amount_cents / 100:,.2f}; "
        "nothing was charged",
        {"reference": key, "decline_code": code},
    )


def _state(intent: stripe.PaymentIntent) -> GatewayState:
    """An intent's status as the port's state; `processing` is undecided, so no state (ask again)."""
    status = intent.status
    if status == "requires_capture":
        return GatewayState.AUTHORIZED
    if status == "succeeded":
        return GatewayState.CAPTURED
    if status == "canceled":
        return GatewayState.DECLINED if getattr(intent, "last_payment_error", None) else GatewayState.VOIDED
    if status in NOTHING_HELD:
        refused = status == "requires_payment_method" and getattr(intent, "last_payment_error", None)
        return GatewayState.DECLINED if refused else GatewayState.PENDING
    raise GatewayError(f"the payment gateway has not decided {intent.id} yet ({status}); ask again shortly")


def _refunded(intent: stripe.PaymentIntent) -> int:
    charge = getattr(intent, "latest_charge", None)
    return int(getattr(charge, "amount_refunded", 0) or 0) if isinstance(charge, stripe.Charge) else 0


def _metadata(obj: stripe.StripeObject) -> dict[str, Any]:
    raw = getattr(obj, "metadata", None)
    return raw.to_dict() if isinstance(raw, stripe.StripeObject) else dict(raw or {})


def _payment(intent: stripe.PaymentIntent) -> GatewayPayment | None:
    """The intent as the port tells a payment; None for one that is not ours (no key in its metadata)."""
    metadata = _metadata(intent)
    key = metadata.get("key") or metadata.get("attempt_id")
    if not key:
        return None
    return GatewayPayment(
        ref=intent.id,
        key=str(key),
        state=_state(intent),
        amount_cents=int(intent.amount),
        refunded_cents=_refunded(intent),
        booking_id=metadata.get("booking_id"),
    )


@contextlib.contextmanager
def _translated(operation: str, subject: str) -> Iterator[None]:
    """Stripe's errors (and its HTTP client's) as GatewayError: nothing of stripe leaves the adapter."""
    try:
        yield
    except DomainError:
        raise
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        log.error("stripe_refused_key", operation=operation, subject=subject, error=str(exc))
        raise GatewayError(
            "the payment gateway refused our credentials; nothing was charged; try again later",
            retry_after=60,
            details={"operation": operation},
        ) from exc
    except stripe.StripeError as exc:
        log.warning(
            "stripe_error",
            operation=operation,
            subject=subject,
            error=f"{type(exc).__name__}: {exc}",
            status=exc.http_status,
            code=exc.code,
        )
        retry = 2 if isinstance(exc, stripe.RateLimitError) else 5
        raise GatewayError(
            f"the payment gateway failed to {operation} {subject}; ask again",
            retry_after=retry,
            details={"operation": operation, "gateway_code": exc.code or type(exc).__name__},
        ) from exc
    except Exception as exc:  # the HTTP client's own (a timeout while reading, a broken body): ambiguous
        log.warning("stripe_transport_error", operation=operation, subject=subject, exc_info=True)
        raise GatewayError(
            f"the payment gateway failed to {operation} {subject}; ask again",
            details={"operation": operation, "gateway_code": type(exc).__name__},
        ) from exc
