"""One contract, two gateways: the sandbox (its ledger in PostgreSQL) and Stripe (on localstripe), the
latter both with its Search API and without (find then lists the intents)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from astro.config import Settings
from astro.domain.errors import GatewayError, PaymentDeclined, UnknownCard
from astro.domain.ids import new_id
from astro.domain.payments import GatewayPayment, GatewayState
from astro.services.payments import PaymentGateway
from astro.store import postgres
from astro.store.payments import SandboxGateway
from astro.store.stripe_gateway import StripeGateway
from tests.integration.counting_pool import CountingPool

AMOUNT = 250_000


@dataclass(frozen=True)
class Gateway:
    """A gateway under test and its cards: one authorized, one declined, one it does not know."""

    port: PaymentGateway
    ok: str
    declined: str
    unknown: str


@pytest.fixture(params=["sandbox", "stripe", "stripe-listing"])
async def gateway(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Gateway]:
    """The sandbox; Stripe (find by the Search API); Stripe where find lists intents (no Search API)."""
    if request.param == "sandbox":
        pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=4)
        try:
            yield Gateway(SandboxGateway(pool, slow_seconds=0.1), "tok_ok", "tok_declined", "tok_nope")
        finally:
            await pool.close()
        return
    server = request.getfixturevalue("localstripe")
    stripe = StripeGateway(
        server.api_base, server.secret_key, search=None if request.param == "stripe" else False
    )
    try:
        yield Gateway(stripe, "pm_card_visa", "pm_card_visa_chargeDeclined", "pm_card_nope")
    finally:
        await stripe.close()


def keys() -> tuple[str, str]:
    """A fresh attempt id and the booking id chosen for it."""
    return new_id("att"), new_id("bkg")


async def authorize(gateway: Gateway, key: str, booking: str, card: str | None = None) -> str:
    """Authorize AMOUNT under `key` as the booking flow does (attempt and booking ids in the metadata)."""
    return await gateway.port.authorize(
        key=key,
        amount_cents=AMOUNT,
        card_token=card or gateway.ok,
        metadata={"attempt_id": key, "booking_id": booking},
    )


async def authorized(gateway: Gateway) -> tuple[str, str]:
    key, booking = keys()
    return key, await authorize(gateway, key, booking)


async def test_authorize_holds_the_amount_under_the_key(gateway: Gateway) -> None:
    key, booking = keys()
    ref = await authorize(gateway, key, booking)
    found = await gateway.port.find(key)
    assert found == GatewayPayment(ref, key, GatewayState.AUTHORIZED, AMOUNT, 0, booking)


async def test_authorize_again_under_the_same_key_is_the_same_payment(gateway: Gateway) -> None:
    key, booking = keys()
    ref = await authorize(gateway, key, booking)
    again = await authorize(gateway, key, booking)
    found = await gateway.port.find(key)
    assert again == ref and found is not None and found.ref == ref
    assert found.state is GatewayState.AUTHORIZED


async def test_a_declined_card_holds_nothing(gateway: Gateway) -> None:
    key, booking = keys()
    with pytest.raises(PaymentDeclined) as declined:
        await authorize(gateway, key, booking, gateway.declined)
    assert declined.value.code == "payment_declined" and declined.value.details["reference"] == key
    found = await gateway.port.find(key)
    assert found is not None and found.state is GatewayState.DECLINED and found.refunded_cents == 0
    await gateway.port.void(found.ref, key=key)  # releasing what was never held is fine
    after = await gateway.port.find(key)
    assert after is not None and after.state is GatewayState.DECLINED


async def test_capture_takes_the_held_amount_once(gateway: Gateway) -> None:
    key, ref = await authorized(gateway)
    await gateway.port.capture(ref, key=key)
    await gateway.port.capture(ref, key=key)  # repeated: nothing more happens
    found = await gateway.port.find(key)
    assert found is not None and (found.state, found.amount_cents) == (GatewayState.CAPTURED, AMOUNT)
    with pytest.raises(GatewayError):
        await gateway.port.void(ref, key=key)  # taken money is refunded, never voided


async def test_void_releases_the_hold_once(gateway: Gateway) -> None:
    key, ref = await authorized(gateway)
    await gateway.port.void(ref, key=key)
    await gateway.port.void(ref, key=key)
    found = await gateway.port.find(key)
    assert found is not None and found.state is GatewayState.VOIDED
    with pytest.raises(GatewayError):
        await gateway.port.capture(ref, key=key)
    assert (await gateway.port.find(key)) == found


async def test_refunds_partial_then_full_and_a_repeated_key_refunds_once(gateway: Gateway) -> None:
    key, ref = await authorized(gateway)
    await gateway.port.capture(ref, key=key)
    first_key, rest_key = new_id("rfd"), new_id("rfd")
    first = await gateway.port.refund(ref, 100_000, key=first_key)
    assert await gateway.port.refund(ref, 100_000, key=first_key) == first  # repeated: the same refund
    found = await gateway.port.find(key)
    assert found is not None and found.refunded_cents == 100_000 and found.state is GatewayState.CAPTURED
    rest = await gateway.port.refund(ref, AMOUNT - 100_000, key=rest_key)
    assert rest != first
    found = await gateway.port.find(key)
    assert found is not None and found.refunded_cents == AMOUNT
    with pytest.raises(GatewayError):
        await gateway.port.refund(ref, 1, key=new_id("rfd"))  # nothing left to give back


async def test_refunding_a_payment_never_captured_is_refused(gateway: Gateway) -> None:
    key, ref = await authorized(gateway)
    with pytest.raises(GatewayError):
        await gateway.port.refund(ref, 1000, key=new_id("rfd"))
    found = await gateway.port.find(key)
    assert found is not None and (found.state, found.refunded_cents) == (GatewayState.AUTHORIZED, 0)


async def test_an_unknown_key_finds_nothing(gateway: Gateway) -> None:
    await authorized(gateway)
    assert await gateway.port.find(new_id("att")) is None


async def test_an_unknown_card_is_a_refusal_naming_card_token(gateway: Gateway) -> None:
    # well-formed, so not malformed input (400): the gateway knows no such card (422 unknown_card)
    key, _ = keys()
    with pytest.raises(UnknownCard) as invalid:
        await gateway.port.authorize(key=key, amount_cents=AMOUNT, card_token=gateway.unknown, metadata={})
    assert list(invalid.value.details["fields"]) == ["card_token"] and invalid.value.code == "unknown_card"
    assert await gateway.port.find(key) is None


async def test_the_ledger_lists_every_payment_as_find_tells_it(gateway: Gateway) -> None:
    held_key, held = await authorized(gateway)
    taken_key, taken = await authorized(gateway)
    await gateway.port.capture(taken, key=taken_key)
    ledger = await gateway.port.ledger()  # type: ignore[attr-defined]
    mine = {p.ref: p for p in ledger if p.ref in (held, taken)}
    assert mine == {held: await gateway.port.find(held_key), taken: await gateway.port.find(taken_key)}


async def test_calls_made_together_each_get_their_own_answer(gateway: Gateway) -> None:
    asked = [keys() for _ in range(8)]
    cards = [gateway.ok] * 6 + [gateway.declined] * 2
    calls = [
        authorize(gateway, key, booking, card) for (key, booking), card in zip(asked, cards, strict=True)
    ]
    calls.append(authorize(gateway, *asked[0]))  # the same key twice: the same payment
    answers = await asyncio.gather(*calls, return_exceptions=True)
    refs = answers[:6]
    assert all(isinstance(r, str) for r in refs) and len(set(refs)) == 6
    assert all(isinstance(a, PaymentDeclined) for a in answers[6:8])
    assert answers[8] == refs[0]
    await asyncio.gather(
        *(gateway.port.capture(str(r), key=k) for r, (k, _) in zip(refs, asked, strict=False))
    )
    for ref, (key, booking) in zip(refs, asked, strict=False):
        assert await gateway.port.find(key) == GatewayPayment(
            str(ref), key, GatewayState.CAPTURED, AMOUNT, 0, booking
        )


async def test_the_sandbox_writes_calls_made_together_in_one_statement(settings: Settings) -> None:
    pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=4)
    counted = CountingPool(pool)
    try:
        sandbox = SandboxGateway(counted)  # type: ignore[arg-type]
        asked = [keys() for _ in range(20)]
        refs = await asyncio.gather(*(authorize_on(sandbox, key, booking) for key, booking in asked))
        assert counted.taken == 1  # was 20: a transaction per authorization
        await asyncio.gather(
            *(sandbox.capture(ref, key=key) for ref, (key, _) in zip(refs, asked, strict=True))
        )
        assert counted.taken == 2
        with pytest.raises(GatewayError):
            await asyncio.gather(
                sandbox.capture(refs[0], key=asked[0][0]), sandbox.capture("pi_none", key="x")
            )
        assert {p.state for p in await sandbox.ledger() if p.key in dict(asked)} == {GatewayState.CAPTURED}
    finally:
        await pool.close()


async def authorize_on(sandbox: SandboxGateway, key: str, booking: str) -> str:
    return await sandbox.authorize(
        key=key, amount_cents=AMOUNT, card_token="tok_ok", metadata={"attempt_id": key, "booking_id": booking}
    )
