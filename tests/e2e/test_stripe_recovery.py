"""Recovery in Stripe mode, against localstripe (issue #12): what a crash or a lost answer left at Stripe
is finished past the attempt's deadline by asking Stripe, never by guessing — an intent authorized under
an attempt left `created` is canceled, a booked attempt's intent captured, a refund paid exactly once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from actors.recovery import RESOLVING
from astro.domain.errors import GatewayError
from astro.domain.payments import DEADLINE, AttemptState, GatewayState
from tests.e2e.stripe_world import (  # noqa: F401 (make_world_fixture: the fixture make_world)
    BOOKINGS,
    MakeWorld,
    World,
    audit,
    handed,
    make_world_fixture,
    refunded,
)
from web.keys import DESK, RECOVERY

S = AttemptState
PAST_DEADLINE = DEADLINE + timedelta(seconds=1)


def fail_once(w: World, method: str, *, after_the_call: bool) -> list[str]:
    """Make the app's StripeGateway.`method` fail once with a GatewayError: before reaching Stripe, or
    `after_the_call` (Stripe did it, the answer was lost); the first argument of each failed call listed."""
    real: Callable[..., Awaitable[Any]] = getattr(w.gateway, method)
    failed: list[str] = []

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failed:
            return await real(*args, **kwargs)
        failed.append(str(args[0]) if args else str(kwargs.get("key")))
        if after_the_call:
            await real(*args, **kwargs)
        raise GatewayError("Stripe's answer was lost (test)", retry_after=2)

    setattr(w.gateway, method, flaky)
    return failed


async def test_an_intent_authorized_under_an_attempt_left_created_is_canceled_and_the_attempt_voided(
    make_world: MakeWorld,
) -> None:
    """The process died after Stripe authorized and before the attempt recorded it: past the deadline,
    recovery finds the intent under the attempt's key, cancels it and records the attempt voided."""
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    attempt = w.payments.new_attempt(traveler_id=traveler.id, launch_id=launch, seats=1, amount_cents=50_001)
    await w.payments.attempts.open(attempt, None)
    ref = await w.gateway.authorize(
        key=attempt.id,
        amount_cents=attempt.amount_cents,
        card_token="pm_card_visa",
        metadata={"booking_id": attempt.booking_id, "attempt_id": attempt.id},
    )
    assert (await w.stripe.intent(ref))["status"] == "requires_capture"
    await w.app[RECOVERY].round()  # within its deadline: left alone
    assert await w.state_of(attempt.id) is S.CREATED
    w.clock.advance(PAST_DEADLINE)
    await w.app[RECOVERY].round()
    resolved = await w.payments.attempts.get(attempt.id)
    assert resolved is not None and (resolved.state, resolved.gateway_ref) == (S.VOIDED, ref)
    [intent] = await w.stripe.intents_of({attempt.id})
    assert (intent["id"], intent["status"]) == (ref, "canceled")
    await audit(w)


@pytest.mark.parametrize("at_stripe", ["unconfirmed", "nothing"])
async def test_an_attempt_left_created_with_nothing_held_at_stripe_fails(
    make_world: MakeWorld, at_stripe: str
) -> None:
    """Died between creating the intent and confirming it (or before creating it): nothing is held; the
    attempt fails and no intent is left open."""
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    attempt = w.payments.new_attempt(traveler_id=traveler.id, launch_id=launch, seats=1, amount_cents=50_001)
    await w.payments.attempts.open(attempt, None)
    if at_stripe == "unconfirmed":
        made = await w.stripe.create_unconfirmed(attempt)
        assert made["status"] == "requires_confirmation"
    w.clock.advance(PAST_DEADLINE)
    await w.app[RECOVERY].round()
    assert await w.state_of(attempt.id) is S.FAILED
    intents = await w.stripe.intents_of({attempt.id})
    assert [i["status"] for i in intents] == (["canceled"] if at_stripe == "unconfirmed" else [])
    await audit(w)


async def test_attempts_left_created_are_resolved_together_and_their_misses_share_listings(
    make_world: MakeWorld,
) -> None:
    """A crash before the authorizations reached Stripe leaves many attempts `created` with nothing there;
    each miss of Stripe's search is checked by listing the recent intents. Resolved one at a time, each
    paid for a listing of its own (~1 s on localstripe after a storm: 21 of them took recovery past the
    60 s window); resolved RESOLVING at a time, the misses share listings (Coalesced)."""
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    attempts = [
        w.payments.new_attempt(traveler_id=traveler.id, launch_id=launch, seats=1, amount_cents=50_001)
        for _ in range(RESOLVING + 2)
    ]
    for attempt in attempts:
        await w.payments.attempts.open(attempt, None)
    finds, listings = 0, 0
    most_finds = 0
    find, listing = w.gateway.find, w.gateway._listing

    async def counted_find(key: str) -> Any:
        nonlocal finds, most_finds
        finds += 1
        most_finds = max(most_finds, finds)
        try:
            return await find(key)
        finally:
            finds -= 1

    async def counted_listing(created_since: int | None) -> Any:
        nonlocal listings
        listings += 1
        return await listing(created_since)

    w.gateway.find = counted_find  # type: ignore[method-assign]
    w.gateway._listing = counted_listing  # type: ignore[method-assign]
    w.clock.advance(PAST_DEADLINE)
    await w.app[RECOVERY].round()
    assert [await w.state_of(a.id) for a in attempts] == [S.FAILED] * len(attempts)
    assert most_finds == RESOLVING  # the batch's first RESOLVING asked Stripe at once
    assert listings <= len(attempts) // 2, listings  # one at a time: one listing each
    await audit(w)


async def test_an_authorization_whose_answer_was_lost_is_503_and_released_by_recovery(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    launch, traveler, other = await w.launch(capacity=2), await w.traveler(), await w.traveler()
    fail_once(w, "authorize", after_the_call=True)
    resp = await w.book(traveler, launch, 2)
    body = await resp.json()
    assert resp.status == 503 and "Retry-After" in resp.headers, body
    assert body["error"]["code"] == "payment_gateway_error"
    assert "nothing was charged" not in body["error"]["message"]  # Stripe holds the amount
    [attempt] = await w.attempts_of(traveler)
    [intent] = await w.stripe.intents_of({attempt.id})
    assert attempt.state is S.CREATED and intent["status"] == "requires_capture"
    assert await w.bookings_of(traveler) == []
    await w.booked(other, launch, 2)  # the refused booking's seats were released at once
    w.clock.advance(PAST_DEADLINE)
    await w.app[RECOVERY].round()
    assert await w.state_of(attempt.id) is S.VOIDED
    assert (await w.stripe.intent(intent["id"]))["status"] == "canceled"
    await audit(w)


@pytest.mark.parametrize("lost", [False, True], ids=["not-reached", "answer-lost"])
async def test_a_booked_attempt_whose_capture_failed_is_captured_by_recovery(
    make_world: MakeWorld, lost: bool
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    failed = fail_once(w, "capture", after_the_call=lost)
    booking = await w.booked(traveler, launch, 2)  # the booking stands; its capture is left for recovery
    attempt = await w.attempt_of(booking["id"])
    assert attempt.state is S.BOOKED and failed == [attempt.gateway_ref]
    status = (await w.stripe.intent(failed[0]))["status"]
    assert status == ("succeeded" if lost else "requires_capture")
    w.clock.advance(PAST_DEADLINE)
    await w.app[RECOVERY].round()
    assert await w.state_of(attempt.id) is S.CAPTURED
    intent = await w.stripe.intent(failed[0])
    assert (intent["status"], intent["amount"], intent["metadata"]["booking_id"]) == (
        "succeeded",
        booking["total_cents"],
        booking["id"],
    )
    await audit(w)


@pytest.mark.parametrize("lost", [False, True], ids=["not-reached", "answer-lost"])
async def test_a_refund_whose_payment_failed_is_paid_once_by_recovery(
    make_world: MakeWorld, lost: bool
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(capacity=4, price_cents=100_001, days=400), await w.traveler()
    booking = await w.booked(traveler, launch, 2)
    failed = fail_once(w, "refund", after_the_call=lost)
    resp = await w.client.post(f"{BOOKINGS}/{booking['id']}/cancel", headers=traveler.headers)
    assert resp.status == 200 and (await resp.json())["refund_cents"] == 180_002
    await w.app[DESK].wait_background()
    attempt = await w.attempt_of(booking["id"])
    assert failed == [attempt.gateway_ref]
    [row] = await w.sql("SELECT id, status FROM traveler_payments WHERE kind = 'refund'")
    assert row["status"] == "pending"
    assert len(await w.stripe.refunds(failed[0])) == (1 if lost else 0)
    # Recovery pays refunds owed for more than 30 s (by PostgreSQL's clock): this one was owed long ago.
    await w.sql(
        "UPDATE traveler_payments SET created_at = now() - interval '31 seconds' WHERE id = $1", row["id"]
    )
    await w.app[RECOVERY].round()
    [refund] = await w.stripe.refunds(failed[0])
    assert (refund["amount"], refund["metadata"]["refund_key"]) == (180_002, row["id"])
    [done] = await w.sql("SELECT status, gateway_ref FROM traveler_payments WHERE kind = 'refund'")
    assert (done["status"], done["gateway_ref"]) == ("done", refund["id"])
    assert refunded(await w.stripe.intent(failed[0])) == 180_002
    await w.app[RECOVERY].round()  # nothing more is owed: nothing more is paid
    assert len(await w.stripe.refunds(failed[0])) == 1
    await audit(w)


async def test_stripes_event_of_a_capture_finishes_a_booked_attempt_before_recovery(
    make_world: MakeWorld,
) -> None:
    """Recovery and the webhook cooperate: the attempt's row decides, whoever comes first moves it. Here
    Stripe tells of the capture (made at Stripe) first; recovery then finds nothing left to do."""
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    recorder = handed(w)
    failed = fail_once(w, "capture", after_the_call=False)
    booking = await w.booked(traveler, launch, 2)
    attempt = await w.attempt_of(booking["id"])
    assert attempt.state is S.BOOKED and failed == [attempt.gateway_ref]
    assert (await w.stripe.capture(failed[0]))["status"] == "succeeded"
    await recorder.wait_for(failed[0], GatewayState.CAPTURED)  # localstripe's payment_intent.succeeded
    assert await w.state_of(attempt.id) is S.CAPTURED
    resolved = w.app[RECOVERY].stats.resolved
    w.clock.advance(PAST_DEADLINE)
    await w.app[RECOVERY].round()
    assert w.app[RECOVERY].stats.resolved == resolved  # nothing was left open
    await audit(w)


async def test_cancelling_a_booking_whose_capture_is_owed_captures_it_then_refunds(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(capacity=4, price_cents=100_001, days=400), await w.traveler()
    failed = fail_once(w, "capture", after_the_call=False)
    booking = await w.booked(traveler, launch, 2)
    attempt = await w.attempt_of(booking["id"])
    assert attempt.state is S.BOOKED and failed == [attempt.gateway_ref]
    resp = await w.client.post(f"{BOOKINGS}/{booking['id']}/cancel", headers=traveler.headers)
    assert resp.status == 200 and (await resp.json())["refund_cents"] == 180_002
    await audit(w)  # (waits for the refund)
    assert await w.state_of(attempt.id) is S.CAPTURED
    intent = await w.stripe.intent(failed[0])
    assert (intent["status"], intent["amount"], refunded(intent)) == ("succeeded", 200_002, 180_002)
    [refund] = await w.stripe.refunds(failed[0])
    assert refund["amount"] == 180_002
