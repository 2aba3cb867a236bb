"""The Stripe gateway where Stripe differs from the sandbox: crashes mid-authorize, its intents, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import stripe

from astro.domain.errors import DomainError, GatewayError, PaymentDeclined, UnknownCard
from astro.domain.ids import new_id
from astro.domain.payments import GatewayState
from astro.embedded import free_port
from astro.store.stripe_gateway import StripeGateway
from tests.stripe_server import LocalStripe

AMOUNT = 123_456


class Crash(BaseException):
    """The process dying between two calls to Stripe (nothing catches it, as nothing survives a kill)."""


@pytest.fixture
async def raw(localstripe: LocalStripe) -> AsyncIterator[stripe.StripeClient]:
    """Stripe's client itself, to look at (or make) intents behind the adapter's back."""
    http = stripe.AIOHTTPClient()
    yield stripe.StripeClient(
        localstripe.secret_key, base_addresses={"api": localstripe.api_base}, http_client=http
    )
    await http.close_async()  # type: ignore[no-untyped-call]


def ids() -> tuple[str, str]:
    return new_id("att"), new_id("bkg")


async def authorize(gateway: StripeGateway, key: str, booking: str, card: str = "pm_card_visa") -> str:
    return await gateway.authorize(
        key=key, amount_cents=AMOUNT, card_token=card, metadata={"attempt_id": key, "booking_id": booking}
    )


async def crash_before_confirm(
    gateway: StripeGateway, monkeypatch: pytest.MonkeyPatch, key: str, booking: str
) -> None:
    """authorize() creating its intent, then the process dying before it confirms it."""

    async def die(*args: Any, **kwargs: Any) -> None:
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(gateway._intents, "confirm_async", die)
        with pytest.raises(Crash):
            await authorize(gateway, key, booking)


async def test_an_intent_is_manual_capture_in_usd_with_our_ids_in_its_metadata(
    stripe_gateway: StripeGateway, raw: stripe.StripeClient
) -> None:
    key, booking = ids()
    ref = await authorize(stripe_gateway, key, booking)
    intent = await raw.v1.payment_intents.retrieve_async(ref)
    assert (intent.status, intent.capture_method, intent.currency, intent.amount) == (
        "requires_capture",
        "manual",
        "usd",
        AMOUNT,
    )
    assert intent.metadata.to_dict() == {"attempt_id": key, "booking_id": booking, "key": key}


async def test_after_a_crash_between_create_and_confirm_find_tells_nothing_is_held(
    stripe_gateway: StripeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, booking = ids()
    await crash_before_confirm(stripe_gateway, monkeypatch, key, booking)
    found = await stripe_gateway.find(key)
    assert found is not None and found.state is GatewayState.PENDING and found.key == key
    await stripe_gateway.void(found.ref, key=key)  # recovery: never confirmed, canceled all the same
    voided = await stripe_gateway.find(key)
    assert voided is not None and (voided.ref, voided.state) == (found.ref, GatewayState.VOIDED)


async def test_authorize_repeated_after_that_crash_confirms_the_same_intent(
    stripe_gateway: StripeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, booking = ids()
    await crash_before_confirm(stripe_gateway, monkeypatch, key, booking)
    pending = await stripe_gateway.find(key)
    ref = await authorize(stripe_gateway, key, booking)
    found = await stripe_gateway.find(key)
    assert pending is not None and ref == pending.ref
    assert found is not None and (found.ref, found.state) == (ref, GatewayState.AUTHORIZED)


async def test_a_declined_card_leaves_its_intent_canceled(
    stripe_gateway: StripeGateway, raw: stripe.StripeClient
) -> None:
    key, booking = ids()
    with pytest.raises(PaymentDeclined):
        await authorize(stripe_gateway, key, booking, "pm_card_chargeCustomerFail")
    found = await stripe_gateway.find(key)
    assert found is not None and found.state is GatewayState.DECLINED
    assert (await raw.v1.payment_intents.retrieve_async(found.ref)).status == "canceled"


async def test_a_card_that_needs_3d_secure_is_declined_and_its_intent_canceled(
    stripe_gateway: StripeGateway, raw: stripe.StripeClient
) -> None:
    card = await raw.v1.payment_methods.create_async(
        {
            "type": "card",
            "card": {"number": "4000002500003155", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }  # type: ignore[typeddict-item]
    )
    key, booking = ids()
    with pytest.raises(PaymentDeclined) as declined:
        await authorize(stripe_gateway, key, booking, card.id)
    assert "authentication" in declined.value.message
    found = await stripe_gateway.find(key)
    assert found is not None and found.state is GatewayState.VOIDED
    assert (await raw.v1.payment_intents.retrieve_async(found.ref)).status == "canceled"


async def test_find_tells_the_intent_holding_money_when_several_carry_the_key(
    stripe_gateway: StripeGateway, raw: stripe.StripeClient
) -> None:
    key, booking = ids()
    ref = await authorize(stripe_gateway, key, booking)
    stray = await raw.v1.payment_intents.create_async(  # as a server ignoring idempotency keys would make
        {"amount": AMOUNT, "currency": "usd", "payment_method": "pm_card_visa", "metadata": {"key": key}}
    )
    await raw.v1.payment_intents.cancel_async(stray.id)
    found = await stripe_gateway.find(key)
    assert found is not None and (found.ref, found.state) == (ref, GatewayState.AUTHORIZED)


async def test_find_asks_the_search_api_once_it_answers(stripe_gateway: StripeGateway) -> None:
    key, booking = ids()
    ref = await authorize(stripe_gateway, key, booking)
    assert stripe_gateway.search is None  # not known until the first find
    found = await stripe_gateway.find(key)
    assert stripe_gateway.search is True and found is not None and found.ref == ref


async def test_a_server_without_search_is_noticed_once_and_find_lists_the_intents(
    stripe_gateway: StripeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [ids() for _ in range(5)]
    refs = [await authorize(stripe_gateway, key, booking) for key, booking in keys]
    searches = 0

    async def no_search(*args: Any, **kwargs: Any) -> None:  # as localstripe itself answers
        nonlocal searches
        searches += 1
        raise stripe.InvalidRequestError("Not Found", None, http_status=404)

    monkeypatch.setattr(stripe_gateway._intents, "search_async", no_search)
    found = await asyncio.gather(*(stripe_gateway.find(key) for key, _ in keys))
    assert [f.ref if f else None for f in found] == refs
    assert stripe_gateway.search is False and searches == 1
    assert await stripe_gateway.find(new_id("att")) is None and searches == 1


async def test_a_search_miss_is_checked_by_listing_the_recent_intents(
    stripe_gateway: StripeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, booking = ids()
    ref = await authorize(stripe_gateway, key, booking)
    await stripe_gateway.find(new_id("att"))  # the Search API is known to answer
    search = stripe_gateway._intents.search_async

    async def lagging(params: Any, *args: Any, **kwargs: Any) -> Any:  # Stripe's index trailing its writes
        return await search({**params, "query": "metadata['key']:'not_indexed_yet'"}, *args, **kwargs)

    monkeypatch.setattr(stripe_gateway._intents, "search_async", lagging)
    found = await stripe_gateway.find(key)
    assert found is not None and (found.ref, found.state) == (ref, GatewayState.AUTHORIZED)


async def test_payment_reads_an_intent_and_knows_none_that_is_not_ours(
    stripe_gateway: StripeGateway, raw: stripe.StripeClient
) -> None:
    key, booking = ids()
    ref = await authorize(stripe_gateway, key, booking)
    await stripe_gateway.capture(ref, key=key)
    payment = await stripe_gateway.payment(ref)
    assert payment is not None and (payment.key, payment.state, payment.booking_id) == (
        key,
        GatewayState.CAPTURED,
        booking,
    )
    foreign = await raw.v1.payment_intents.create_async({"amount": 500, "currency": "usd"})
    assert await stripe_gateway.payment(foreign.id) is None
    assert await stripe_gateway.payment("pi_doesnotexist") is None


async def test_a_token_of_the_sandbox_is_an_unknown_card_without_asking_stripe() -> None:
    nowhere = StripeGateway(f"http://127.0.0.1:{free_port()}", "sk_test_x", max_network_retries=0)
    try:
        with pytest.raises(UnknownCard) as invalid:
            await nowhere.authorize(key=new_id("att"), amount_cents=100, card_token="tok_ok", metadata={})
        assert invalid.value.details["fields"] == {"card_token": "not a PaymentMethod id (pm_...)"}
    finally:
        await nowhere.close()


async def test_an_unreachable_stripe_is_a_gateway_error_for_every_call() -> None:
    nowhere = StripeGateway(f"http://127.0.0.1:{free_port()}", "sk_test_x", max_network_retries=1)
    calls = {
        "authorize": nowhere.authorize(key="att_1", amount_cents=100, card_token="pm_card_visa", metadata={}),
        "capture": nowhere.capture("pi_1", key="att_1"),
        "void": nowhere.void("pi_1", key="att_1"),
        "refund": nowhere.refund("pi_1", 100, key="rfd_1"),
        "find": nowhere.find("att_1"),
        "payment": nowhere.payment("pi_1"),
    }
    try:
        for name, call in calls.items():
            with pytest.raises(DomainError) as error:
                await call
            assert type(error.value) is GatewayError, name
            assert error.value.retry_after > 0 and error.value.code == "payment_gateway_error"
            assert isinstance(error.value.__cause__, stripe.APIConnectionError), name
    finally:
        await nowhere.close()


async def test_a_refused_secret_key_is_a_gateway_error(localstripe: LocalStripe) -> None:
    wrong = StripeGateway(localstripe.api_base, "not_a_key", max_network_retries=0)
    try:
        with pytest.raises(GatewayError) as error:
            await wrong.authorize(key=new_id("att"), amount_cents=100, card_token="pm_card_visa", metadata={})
        assert isinstance(error.value.__cause__, stripe.AuthenticationError)
        assert "not_a_key" not in error.value.message
    finally:
        await wrong.close()
