"""The booking flow end to end in Stripe mode, against localstripe (issue #12): a booking is a captured
PaymentIntent naming it, a declined or unknown card holds nothing, refunds of a cancel and of an abort
reach Stripe to the cent, the webhook is verified and acted on once and can stop a booking, and the money
reconciles with what Stripe holds. Recovery in Stripe mode: test_stripe_recovery.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from astro.domain.payments import AttemptState
from tests.conftest import Account, passengers
from tests.e2e.stripe_world import (  # noqa: F401 (make_world_fixture: the fixture make_world)
    BOOKINGS,
    MakeWorld,
    World,
    audit,
    canceled_event,
    handed,
    make_world_fixture,
    refunded,
    signed,
    until,
)
from web.keys import DESK

S = AttemptState


# -- booking and refusing ------------------------------------------------------------------------------


async def test_a_booking_is_a_captured_payment_intent_naming_the_booking_and_its_attempt(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(capacity=4, price_cents=123_457), await w.traveler()
    booking = await w.booked(traveler, launch, 2)
    attempt = await w.attempt_of(booking["id"])
    assert attempt.state is S.CAPTURED and attempt.amount_cents == booking["total_cents"] == 246_914
    intent = await w.stripe.intent(attempt.gateway_ref or "")
    assert (intent["status"], intent["amount"], intent["currency"], intent["capture_method"]) == (
        "succeeded",
        246_914,
        "usd",
        "manual",
    )
    assert intent["metadata"]["booking_id"] == booking["id"]
    assert intent["metadata"]["attempt_id"] == attempt.id
    assert [i["id"] for i in await w.stripe.intents_of({attempt.id})] == [intent["id"]]  # one intent
    [charge] = await w.sql("SELECT gateway_ref, amount_cents FROM traveler_payments WHERE kind = 'charge'")
    assert (charge["gateway_ref"], charge["amount_cents"]) == (intent["id"], 246_914)
    await audit(w)


@pytest.mark.parametrize("card", ["pm_card_visa_chargeDeclined", "pm_card_chargeCustomerFail", "3ds"])
async def test_a_declined_card_is_402_with_no_booking_the_seats_free_and_nothing_held(
    make_world: MakeWorld, card: str
) -> None:
    w = await make_world()
    launch, traveler, other = await w.launch(capacity=2), await w.traveler(), await w.traveler()
    if card == "3ds":  # a card whose bank asks for 3-D Secure, which booking cannot ask the traveler for
        card = await w.stripe.card("4000002500003155")
    resp = await w.book(traveler, launch, 2, card)
    body = await resp.json()
    assert resp.status == 402 and body["error"]["code"] == "payment_declined", body
    assert "nothing was charged" in body["error"]["message"]
    [attempt] = await w.attempts_of(traveler)
    assert attempt.state is S.DECLINED and await w.bookings_of(traveler) == []
    [intent] = await w.stripe.intents_of({attempt.id})  # it reached Stripe, and Stripe holds nothing
    assert intent["status"] == "canceled" and refunded(intent) == 0
    await w.booked(other, launch, 2)  # every seat was free again
    await audit(w)


@pytest.mark.parametrize("card", ["pm_card_nope", "pm_1NoSuchMethod0000", "tok_ok"])
async def test_an_unknown_payment_method_is_422_naming_card_token(make_world: MakeWorld, card: str) -> None:
    w = await make_world()
    launch, traveler, other = await w.launch(capacity=2), await w.traveler(), await w.traveler()
    resp = await w.book(traveler, launch, 2, card)
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "unknown_card", body
    assert list(body["error"]["details"]["fields"]) == ["card_token"]
    assert [a.state for a in await w.attempts_of(traveler)] == [S.FAILED]
    [attempt] = await w.attempts_of(traveler)
    assert await w.stripe.intents_of({attempt.id}) == [] and await w.bookings_of(traveler) == []
    await w.booked(other, launch, 2)
    await audit(w)


@pytest.mark.parametrize(
    ("price_cents", "seats"),
    [(50_000_000, 2), (49, 1)],
    ids=["over-999999.99-dollars", "under-50-cents"],
)
async def test_a_total_stripe_cannot_take_in_one_payment_is_402_and_nothing_reaches_stripe(
    make_world: MakeWorld, price_cents: int, seats: int
) -> None:
    """Stripe takes 50 cents to $999,999.99 in one USD payment: a booking outside is refused at once,
    definitively (not 503 "try again", which no retry would ever change)."""
    w = await make_world()
    launch, traveler = await w.launch(capacity=4, price_cents=price_cents), await w.traveler()
    resp = await w.book(traveler, launch, seats)
    body = await resp.json()
    assert resp.status == 402 and body["error"]["code"] == "payment_declined", body
    assert "999,999.99" in body["error"]["message"] and "nothing was charged" in body["error"]["message"]
    [attempt] = await w.attempts_of(traveler)
    assert attempt.state is S.DECLINED and await w.stripe.intents_of({attempt.id}) == []
    assert await w.bookings_of(traveler) == [] and await w.seats_booked(launch) == 0
    await audit(w)


async def test_a_booking_retried_with_its_key_is_one_booking_and_one_payment_intent(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    headers = {**traveler.headers, "Idempotency-Key": "stripe-once"}
    declined = {**traveler.headers, "Idempotency-Key": "stripe-declined"}
    body = {"launch_id": launch, "seats": 1, "passengers": passengers(1), "card_token": "pm_card_visa"}
    refused = {**body, "card_token": "pm_card_visa_chargeDeclined"}
    first = await w.client.post(BOOKINGS, json=body, headers=headers)
    assert first.status == 201, await first.text()
    again = await w.client.post(BOOKINGS, json=body, headers=headers)
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert (await again.json())["booking"]["id"] == (await first.json())["booking"]["id"]
    for _ in range(2):
        resp = await w.client.post(BOOKINGS, json=refused, headers=declined)
        assert resp.status == 402 and (await resp.json())["error"]["code"] == "payment_declined"
    attempts = await w.attempts_of(traveler)
    assert [a.state for a in attempts] == [S.CAPTURED, S.DECLINED]
    intents = await w.stripe.intents_of({a.id for a in attempts})
    assert sorted(i["status"] for i in intents) == ["canceled", "succeeded"]  # one each, not two
    assert len(await w.bookings_of(traveler)) == 1
    await audit(w)


# -- refunds -------------------------------------------------------------------------------------------


async def refund_rows(w: World) -> dict[str, asyncpg.Record]:
    rows = await w.sql(
        """SELECT id, booking_id, amount_cents, status, gateway_ref FROM traveler_payments
           WHERE kind = 'refund'"""
    )
    return {r["booking_id"]: r for r in rows}


async def assert_refunded_once(w: World, booking_id: str, amount: int) -> None:
    """The booking's PaymentIntent carries exactly one refund, of `amount`, made under its refund row."""
    row = (await refund_rows(w))[booking_id]
    attempt = await w.attempt_of(booking_id)
    [refund] = await w.stripe.refunds(attempt.gateway_ref or "")
    assert (refund["amount"], refund["status"], refund["id"]) == (amount, "succeeded", row["gateway_ref"])
    assert refund["metadata"]["refund_key"] == row["id"]
    assert (row["status"], row["amount_cents"]) == ("done", amount)
    intent = await w.stripe.intent(attempt.gateway_ref or "")
    assert intent["status"] == "succeeded" and refunded(intent) == amount


async def test_a_cancel_refunds_90_percent_at_stripe_once(make_world: MakeWorld) -> None:
    w = await make_world()
    launch, traveler = await w.launch(capacity=4, price_cents=100_001, days=400), await w.traveler()
    booking = await w.booked(traveler, launch, 2)
    url = f"{BOOKINGS}/{booking['id']}/cancel"
    resp = await w.client.post(url, headers=traveler.headers)
    cancelled = await resp.json()
    assert resp.status == 200 and cancelled["refund_cents"] == 180_002, cancelled  # 90 % of 200_002
    again = await w.client.post(url, headers=traveler.headers)
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_cancelled"
    await audit(w)  # (waits for the refund paid in the background)
    await assert_refunded_once(w, booking["id"], 180_002)
    assert len(await refund_rows(w)) == 1


async def test_an_abort_refunds_every_booking_in_full_at_stripe(make_world: MakeWorld) -> None:
    w = await make_world()
    doomed, kept = await w.launch(capacity=20, price_cents=33_333), await w.launch(capacity=4)
    travelers = [await w.traveler() for _ in range(5)]
    who, seats = [*travelers, travelers[0], travelers[1]], [1, 2, 3, 4, 1, 2, 3]
    answers = await asyncio.gather(*(w.book(t, doomed, n) for t, n in zip(who, seats, strict=True)))
    assert [a.status for a in answers] == [201] * 7  # seven bookings at once, each its own intent
    aborted = {b["id"]: b for b in [(await a.json())["booking"] for a in answers]}
    assert await w.seats_booked(doomed) == 16
    stays = await w.booked(travelers[1], kept, 2)
    resp = await w.client.post(
        f"/api/agency/launches/{doomed}/status",
        headers=w.agency.headers,
        json={"status": "aborted", "reason": "weather"},
    )
    assert resp.status == 200, await resp.text()
    await audit(w)
    rows = await w.sql("SELECT id, total_cents, refund_cents FROM bookings WHERE launch_id = $1", doomed)
    assert sorted(r["id"] for r in rows) == sorted(aborted)
    for row in rows:
        assert row["refund_cents"] == row["total_cents"] == 33_333 * aborted[row["id"]]["seats"]
        await assert_refunded_once(w, row["id"], row["total_cents"])
    assert set(await refund_rows(w)) == set(aborted)
    kept_intent = await w.stripe.intent((await w.attempt_of(stays["id"])).gateway_ref or "")
    assert kept_intent["status"] == "succeeded" and refunded(kept_intent) == 0


# -- the webhook ---------------------------------------------------------------------------------------


async def test_a_bad_signature_changes_nothing_and_a_duplicate_event_is_acted_on_once(
    make_world: MakeWorld,
) -> None:
    """An authorization Stripe canceled: the event telling it is refused unsigned, acted on once signed
    (the attempt released), and its second delivery acknowledged as a duplicate. localstripe's own
    delivery of the event is turned off: this test delivers it, so none arrives in between."""
    w = await make_world(webhook_events=["astro.test.none"])
    launch, traveler = await w.launch(), await w.traveler()
    counted = handed(w)
    attempt = w.payments.new_attempt(traveler_id=traveler.id, launch_id=launch, seats=1, amount_cents=50_001)
    ref = await w.payments.authorize(attempt, "pm_card_visa", None)
    assert await w.state_of(attempt.id) is S.AUTHORIZED
    assert (await w.stripe.cancel(ref))["status"] == "canceled"
    payload = canceled_event(ref)
    event_id = json.loads(payload)["id"]
    for headers in ({}, signed(payload, "whsec_someone_else"), signed(payload + b" ")):
        status, body = await w.webhook(payload, headers)
        assert status == 400 and body["error"]["code"] == "invalid_input", body
    assert await w.state_of(attempt.id) is S.AUTHORIZED and counted.refs() == []
    assert await w.stored_events(event_id) == 0
    assert await w.webhook(payload, signed(payload)) == (200, {"received": True, "outcome": "acted"})
    assert await w.state_of(attempt.id) is S.VOIDED
    assert await w.webhook(payload, signed(payload)) == (200, {"received": True, "outcome": "duplicate"})
    assert counted.refs() == [ref] and await w.stored_events(event_id) == 1
    assert await w.state_of(attempt.id) is S.VOIDED
    await audit(w)


async def test_an_authorization_stripe_canceled_before_the_commit_is_released_and_never_booked(
    make_world: MakeWorld,
) -> None:
    """The booking's commit is held by a table lock while its attempt is authorized; Stripe cancels the
    intent and says so: the attempt is released, and the commit, once free, leaves the booking out."""
    w = await make_world(ask_timeout=60.0)  # the answer comes from the commit, not from a timeout
    # 4 seats, confirmed at 4: booking 2 reads nothing more of the locked table than its commit.
    launch, traveler, other = await w.launch(capacity=4), await w.traveler(), await w.traveler()
    lock = await asyncpg.connect(w.dsn)
    try:
        await lock.execute("BEGIN; LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE")
        booking = asyncio.ensure_future(w.book(traveler, launch, 2))

        async def commit_waits() -> bool:
            [(n,)] = await w.sql(
                """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND wait_event_type = 'Lock' AND query LIKE '%jsonb_to_recordset%'"""
            )
            return bool(n)

        await until(commit_waits, "the booking's group commit waits for the lock")
        [attempt] = await w.attempts_of(traveler)
        assert attempt.state is S.AUTHORIZED and attempt.gateway_ref is not None
        assert (await w.stripe.cancel(attempt.gateway_ref))["status"] == "canceled"
        payload = canceled_event(attempt.gateway_ref)
        assert await w.webhook(payload, signed(payload)) == (200, {"received": True, "outcome": "acted"})
        assert await w.state_of(attempt.id) is S.VOIDED
        assert not booking.done()
    finally:
        await lock.close()  # the lock goes with it: the held commit runs
    resp = await booking
    body = await resp.json()
    assert resp.status == 503 and "Retry-After" in resp.headers, body
    assert body["error"]["code"] == "unavailable"
    assert await w.bookings_of(traveler) == [] and await w.state_of(attempt.id) is S.VOIDED
    assert await w.seats_booked(launch) == 0
    await w.booked(other, launch, 4)  # its seats were free again
    await audit(w)


# -- a commit held past the ask timeout -----------------------------------------------------------------

# What a 503 may say only when the attempt's authorization was really released.
NOT_CHARGED = ("not charged", "nothing was charged", "was released")


async def keyed(w: World, traveler: Account, launch: str, seats: int, key: str) -> Any:
    body = {
        "launch_id": launch,
        "seats": seats,
        "passengers": passengers(seats),
        "card_token": "pm_card_visa",
    }
    return await w.client.post(BOOKINGS, json=body, headers={**traveler.headers, "Idempotency-Key": key})


async def retried_to_one_booking(w: World, traveler: Account, launch: str, seats: int, key: str) -> Any:
    """The retry with the key is 201 (the booking the commit made, or a fresh one when the attempt was
    released), its replay the same booking, and the key made exactly one booking."""
    resp = await keyed(w, traveler, launch, seats, key)
    assert resp.status == 201, await resp.text()
    booking = (await resp.json())["booking"]
    replay = await keyed(w, traveler, launch, seats, key)
    assert replay.status == 201 and (await replay.json())["booking"]["id"] == booking["id"]
    assert await w.bookings_of(traveler) == [booking["id"]]
    return booking


async def test_a_commit_held_by_a_table_lock_past_the_ask_timeout_is_decided_by_the_attempt(
    make_world: MakeWorld,
) -> None:
    """The booking's group commit waits for a table lock longer than the desk's ask: the attempt's row
    decides (the release wins, or the commit booked it first), the client is told 503 and never "not
    charged" unless the intent was canceled, the retry with the key gets the real outcome, and the intent
    at localstripe matches the attempt at every step."""
    w = await make_world(ask_timeout=1.5)
    launch, traveler = await w.launch(capacity=4), await w.traveler()
    lock = await asyncpg.connect(w.dsn)
    try:
        await lock.execute("BEGIN; LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE")
        resp = await keyed(w, traveler, launch, 2, "held-1")  # its group commit waits for the lock
        body = await resp.json()
        assert resp.status == 503 and "Retry-After" in resp.headers, body
        [attempt] = await w.attempts_of(traveler)
        [intent] = await w.stripe.intents_of({attempt.id})
        assert intent["metadata"]["booking_id"] == attempt.booking_id
        if attempt.state is S.VOIDED:  # released: the intent is canceled, and only then may it say so
            assert intent["status"] == "canceled", intent
        else:
            assert attempt.state is S.AUTHORIZED, attempt
            assert intent["status"] == "requires_capture", intent
            assert not any(words in body["error"]["message"] for words in NOT_CHARGED), body
    finally:
        await lock.close()  # the lock goes with it; the queued commit runs
    await w.app[DESK].launch(launch)  # the actor has finished the batch the lock held
    decided = await w.payments.attempts.get(attempt.id)
    assert decided is not None
    [intent] = await w.stripe.intents_of({attempt.id})
    if decided.state is S.VOIDED:  # the release won: the booking never committed
        assert await w.bookings_of(traveler) == [] and intent["status"] == "canceled"
    else:  # the commit won: the booking stands and its intent is held or taken, never released
        assert decided.state in (S.BOOKED, S.CAPTURED), decided
        assert await w.bookings_of(traveler) == [attempt.booking_id]
        assert intent["status"] in ("requires_capture", "succeeded") and refunded(intent) == 0, intent
    booking = await retried_to_one_booking(w, traveler, launch, 2, "held-1")
    assert (booking["id"] == attempt.booking_id) is (decided.state is not S.VOIDED)
    await w.app[DESK].wait_background()  # the capture runs after the answer
    paid = await w.attempt_of(booking["id"])
    [intent] = await w.stripe.intents_of({paid.id})
    assert (intent["status"], intent["metadata"]["booking_id"]) == ("succeeded", booking["id"])
    assert intent["amount"] == booking["total_cents"]
    await audit(w)


async def test_keyed_bookings_caught_by_a_held_commit_each_book_exactly_once_on_retry(
    make_world: MakeWorld,
) -> None:
    """Bookings arrive while a lock holds the launch's commit past the ask timeout; whatever each was told,
    its retry with its key ends in exactly one booking, paid by one captured intent naming it."""
    w = await make_world(ask_timeout=1.5)
    launch = await w.launch(capacity=40)
    travelers = [await w.traveler() for _ in range(8)]
    lock = await asyncpg.connect(w.dsn)
    try:
        await lock.execute("BEGIN; LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE")
        first = await asyncio.gather(*(keyed(w, t, launch, 2, f"held-{t.id}") for t in travelers))
    finally:
        await lock.close()
    for resp in first:
        body = await resp.json()
        assert resp.status in (201, 503), body
        if resp.status == 503:
            assert "Retry-After" in resp.headers and body["error"]["code"] == "unavailable", body
    await w.app[DESK].launch(launch)
    for traveler in travelers:
        await retried_to_one_booking(w, traveler, launch, 2, f"held-{traveler.id}")
    assert await w.seats_booked(launch) == 16
    await audit(w)


# -- the money -----------------------------------------------------------------------------------------


async def test_captured_minus_refunded_at_stripe_equals_the_bookings_net_to_the_cent(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    far = await w.launch(capacity=10, price_cents=100_001, days=400)
    doomed = await w.launch(capacity=10, price_cents=33_333)
    kept = await w.launch(capacity=10, price_cents=77_777)
    travelers = [await w.traveler() for _ in range(4)]
    mine = await w.booked(travelers[0], far, 2)
    await w.booked(travelers[1], far, 1)
    for seats, traveler in zip((1, 2, 3), travelers[1:], strict=True):
        await w.booked(traveler, doomed, seats)
    await w.booked(travelers[3], kept, 2)
    assert (await w.book(travelers[3], kept, 1, "pm_card_visa_chargeDeclined")).status == 402
    assert (await w.book(travelers[3], kept, 1, "pm_card_nope")).status == 422
    resp = await w.client.post(f"{BOOKINGS}/{mine['id']}/cancel", headers=travelers[0].headers)
    assert (await resp.json())["refund_cents"] == 180_002
    resp = await w.client.post(
        f"/api/agency/launches/{doomed}/status",
        headers=w.agency.headers,
        json={"status": "aborted", "reason": "weather"},
    )
    assert resp.status == 200, await resp.text()
    await audit(w)
    [(net,)] = await w.sql("SELECT sum(total_cents - COALESCE(refund_cents, 0)) FROM bookings")
    assert net == 200_002 - 180_002 + 100_001 + 2 * 77_777
    ours = {r["id"] for r in await w.sql("SELECT id FROM payment_attempts")}
    intents = await w.stripe.intents_of(ours)
    captured = sum(i["amount"] for i in intents if i["status"] == "succeeded")
    assert captured - sum(refunded(i) for i in intents) == net
    assert (
        sorted(i["status"] for i in intents) == ["canceled"] + ["succeeded"] * 6
    )  # the declined card; six bookings
