"""The recovery worker in the running app (create_app on a test clock, real PostgreSQL and the sandbox's
durable ledger): every attempt a crash leaves open past its deadline is finished as the saga says and the
gateway agrees; a gateway that fails leaves it for a later round; refunds owed and invoice card payments
left pending are finished; idempotency records past 24 hours are swept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from actors.payments import Payments
from actors.recovery import LEASE, RecoveryWorker
from astro.domain.clock import FixedClock
from astro.domain.errors import PaymentDeclined
from astro.domain.payments import (
    DEADLINE,
    MOVES,
    Attempt,
    AttemptState,
    GatewayPayment,
    GatewayState,
    resolution,
)
from astro.store.payments import SandboxGateway
from tests.conftest import (
    Account,
    agency_body,
    create_launch,
    fail_next,
    passengers,
    register,
    traveler_body,
)
from web.keys import DESK, IDEMPOTENCY, PAYMENTS, RECOVERY
from web.resources import GATEWAY

S, G = AttemptState, GatewayState
PAST_DEADLINE = DEADLINE + timedelta(seconds=1)
PRICE = 10_001


@dataclass
class World:
    client: TestClient[web.Request, web.Application]
    clock: FixedClock
    settings: Any
    agency: Account
    traveler: Account
    launch: dict[str, Any]
    moves: list[tuple[S, S]] = field(default_factory=list)

    @property
    def app(self) -> web.Application:
        return self.client.app

    @property
    def payments(self) -> Payments:
        return self.app[PAYMENTS]

    @property
    def gateway(self) -> SandboxGateway:
        gateway = self.app[GATEWAY]
        assert isinstance(gateway, SandboxGateway)
        return gateway

    @property
    def recovery(self) -> RecoveryWorker:
        return self.app[RECOVERY]

    async def state(self, attempt_id: str) -> S:
        got = await self.payments.attempts.get(attempt_id)
        assert got is not None
        return got.state

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.settings.pg_dsn)
        try:
            return await conn.fetch(query, *args)  # type: ignore[no-any-return]
        finally:
            await conn.close()


async def first_round_over(recovery: RecoveryWorker) -> None:
    """The start-up round has ended (it may have before this is called)."""
    while recovery.background.rounds < 1:
        await recovery.background.round_end()


def record_moves(payments: Payments, moves: list[tuple[S, S]]) -> None:
    """Every transition the app makes through the attempts store, as (from, to)."""
    real = payments.attempts.move

    async def move(attempt_id: str, source: S, target: S, **kw: Any) -> bool:
        moved = await real(attempt_id, source, target, **kw)
        if moved:
            moves.append((source, target))
        return moved

    payments.attempts.move = move  # type: ignore[method-assign]


@pytest.fixture
async def world(make_client: Any, settings: Any) -> AsyncIterator[World]:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    client = await make_client(clock=clock, recovery_interval=3600.0)  # rounds only when a test asks
    await first_round_over(client.app[RECOVERY])
    agency = await register(client, agency_body())
    traveler = await register(client, traveler_body())
    launch = await create_launch(client, agency, capacity=20, min_passengers=20, price_cents=PRICE)
    w = World(client, clock, settings, agency, traveler, launch)
    record_moves(w.payments, w.moves)
    yield w
    # Whatever a test did, the saga moved attempts only as its state machine allows.
    assert all(target in MOVES[source] for source, target in w.moves), w.moves


async def book(w: World, seats: int = 1, token: str = "tok_ok", traveler: Account | None = None) -> Any:
    return await w.client.post(
        "/api/booking/bookings",
        headers=(traveler or w.traveler).headers,
        json={
            "launch_id": w.launch["id"],
            "seats": seats,
            "passengers": passengers(seats),
            "card_token": token,
        },
    )


async def booked_not_captured(w: World) -> Attempt:
    """A committed booking whose capture never happened (the gateway failed it; a crash would too)."""
    fail_next(w.gateway, "capture")
    resp = await book(w)
    assert resp.status == 201, await resp.text()
    attempt = await w.payments.attempts.by_booking((await resp.json())["booking"]["id"])
    assert attempt is not None and attempt.state is S.BOOKED
    return attempt


async def opened(w: World) -> Attempt:
    """An attempt written, nothing recorded of the gateway yet (the process died right after)."""
    attempt = w.payments.new_attempt(
        traveler_id=w.traveler.id, launch_id=w.launch["id"], seats=1, amount_cents=PRICE
    )
    await w.payments.attempts.open(attempt, None)
    return attempt


async def authorize_at_gateway(w: World, attempt: Attempt, token: str = "tok_ok") -> str:
    """The gateway's authorization under the attempt's key, as the saga makes it."""
    metadata = {"booking_id": attempt.booking_id, "attempt_id": attempt.id}
    return await w.gateway.authorize(
        key=attempt.id, amount_cents=attempt.amount_cents, card_token=token, metadata=metadata
    )


async def created_nothing_held(w: World) -> Attempt:
    return await opened(w)


async def created_declined_unrecorded(w: World) -> Attempt:
    attempt = await opened(w)
    with pytest.raises(PaymentDeclined):
        await authorize_at_gateway(w, attempt, "tok_declined")
    return attempt


async def created_authorized_unrecorded(w: World) -> Attempt:
    attempt = await opened(w)
    await authorize_at_gateway(w, attempt)  # the process died before recording it
    return attempt


async def authorized(w: World) -> Attempt:
    attempt = await opened(w)
    ref = await authorize_at_gateway(w, attempt)
    assert await w.payments.attempts.move(attempt.id, S.CREATED, S.AUTHORIZED, gateway_ref=ref)
    return replace(attempt, state=S.AUTHORIZED, gateway_ref=ref)


async def voiding(w: World) -> Attempt:
    attempt = await authorized(w)
    assert await w.payments.attempts.move(attempt.id, S.AUTHORIZED, S.VOIDING)
    return replace(attempt, state=S.VOIDING)


async def voiding_voided_unrecorded(w: World) -> Attempt:
    attempt = await voiding(w)
    await w.gateway.void(attempt.gateway_ref or "", key=attempt.id)
    return attempt


async def booked(w: World) -> Attempt:
    return await booked_not_captured(w)


async def booked_captured_unrecorded(w: World) -> Attempt:
    attempt = await booked_not_captured(w)
    await w.gateway.capture(attempt.gateway_ref or "", key=attempt.id)
    return attempt


# (how the crash left it, where recovery takes it, what the gateway holds afterwards: None = nothing)
LEFT: dict[str, tuple[Callable[[World], Awaitable[Attempt]], S, G | None]] = {
    "created-nothing-at-the-gateway": (created_nothing_held, S.FAILED, None),
    "created-declined-at-the-gateway": (created_declined_unrecorded, S.FAILED, G.DECLINED),
    "created-authorized-at-the-gateway": (created_authorized_unrecorded, S.VOIDED, G.VOIDED),
    "authorized": (authorized, S.VOIDED, G.VOIDED),
    "voiding": (voiding, S.VOIDED, G.VOIDED),
    "voiding-voided-at-the-gateway": (voiding_voided_unrecorded, S.VOIDED, G.VOIDED),
    "booked": (booked, S.CAPTURED, G.CAPTURED),
    "booked-captured-at-the-gateway": (booked_captured_unrecorded, S.CAPTURED, G.CAPTURED),
}


async def seats_booked(w: World) -> tuple[int, int]:
    """(the launch's seat count, seats of its confirmed bookings)."""
    [row] = await w.sql(
        """SELECT l.seats_booked, (SELECT COALESCE(sum(seats), 0) FROM bookings b
                                   WHERE b.launch_id = l.id AND b.status = 'confirmed') AS seats
           FROM launches l WHERE l.id = $1""",
        w.launch["id"],
    )
    return int(row["seats_booked"]), int(row["seats"])


@pytest.mark.parametrize("left", list(LEFT))
async def test_an_attempt_left_open_past_its_deadline_is_finished_and_the_gateway_agrees(
    world: World, left: str
) -> None:
    w = world
    make, final, at_gateway = LEFT[left]
    attempt = await make(w)
    before = await w.payments.attempts.get(attempt.id)
    assert before is not None
    held = await w.gateway.find(attempt.id)
    bookings_before = await seats_booked(w)
    await w.recovery.round()
    assert await w.state(attempt.id) is before.state  # not past its deadline: untouched
    assert await w.gateway.find(attempt.id) == held

    w.clock.advance(PAST_DEADLINE)
    await w.recovery.round()
    after = await w.payments.attempts.get(attempt.id)
    assert after is not None and after.state is final
    assert final is resolution(before.state, held)  # the worker and the domain's rule agree
    found = await w.gateway.find(attempt.id)
    assert (found.state if found else None) is at_gateway
    if found is not None:
        assert (found.amount_cents, found.refunded_cents, found.booking_id) == (PRICE, 0, attempt.booking_id)
    if final in (S.VOIDED, S.CAPTURED):  # the row names the payment it released or took
        assert found is not None and after.gateway_ref == found.ref
    # A booking stands exactly when its attempt was booked; recovery never adds or frees seats.
    assert await seats_booked(w) == bookings_before == ((1, 1) if final is S.CAPTURED else (0, 0))
    assert [r["id"] for r in await w.sql("SELECT id FROM bookings")] == (
        [attempt.booking_id] if final is S.CAPTURED else []
    )
    await w.recovery.round()  # finished: a later round changes nothing
    assert await w.state(attempt.id) is final and await w.gateway.find(attempt.id) == found


async def test_every_attempt_a_crash_left_is_final_after_one_round_and_none_is_touched_early(
    world: World,
) -> None:
    """All the cases at once, beside attempts still within their deadline: one round finishes the
    overdue ones and leaves the others alone; the ledger holds nothing captured without a booking."""
    w = world
    overdue = {name: await make(w) for name, (make, _, _) in LEFT.items()}
    w.clock.advance(PAST_DEADLINE)
    fresh = [await authorized(w), await opened(w)]
    await w.recovery.round()
    for name, attempt in overdue.items():
        assert await w.state(attempt.id) is LEFT[name][1], name
    assert [await w.state(a.id) for a in fresh] == [S.AUTHORIZED, S.CREATED]
    assert w.recovery.stats.resolved == len(LEFT) and w.recovery.stats.deferred == 0
    stored = {r["id"] for r in await w.sql("SELECT id FROM bookings WHERE status = 'confirmed'")}
    for payment in await w.gateway.ledger():
        assert (payment.state is G.CAPTURED) == (payment.booking_id in stored), payment


async def test_the_round_at_start_up_finishes_what_the_previous_process_left(
    world: World, make_client: Any
) -> None:
    w = world
    left = [await authorized(w), await booked_not_captured(w), await created_authorized_unrecorded(w)]
    # The first process is gone; the next one starts a minute later and recovers before anything else.
    later = FixedClock(w.clock.now() + PAST_DEADLINE)
    client = await make_client(clock=later, recovery_interval=3600.0)
    await first_round_over(client.app[RECOVERY])
    assert [await w.state(a.id) for a in left] == [S.VOIDED, S.CAPTURED, S.VOIDED]


async def test_the_worker_runs_its_rounds_when_woken(world: World) -> None:
    w = world
    attempt = await authorized(w)
    w.clock.advance(PAST_DEADLINE)
    rounds = w.recovery.background.rounds
    w.recovery.wake()
    await w.recovery.background.round_end()
    assert w.recovery.background.rounds == rounds + 1
    assert await w.state(attempt.id) is S.VOIDED


async def test_an_authorization_that_outlives_the_deadline_is_released_when_it_lands(world: World) -> None:
    """Recovery found nothing at the gateway and failed the attempt; the authorization lands afterwards:
    the request releases it at once and says so, and nothing stays held."""
    w = world
    entered, gate = asyncio.Event(), asyncio.Event()
    authorize = w.gateway.authorize

    async def late(**kw: Any) -> str:
        entered.set()
        await gate.wait()
        return await authorize(**kw)

    w.gateway.authorize = late  # type: ignore[method-assign]
    pending = asyncio.ensure_future(book(w, seats=2))
    await entered.wait()
    [(attempt_id,)] = await w.sql("SELECT id FROM payment_attempts")
    w.clock.advance(PAST_DEADLINE)
    await w.recovery.round()
    assert await w.state(attempt_id) is S.FAILED  # nothing held at the gateway when it looked
    gate.set()
    resp = await pending
    body = await resp.json()
    assert resp.status == 503 and "Retry-After" in resp.headers, body
    assert [(p.key, p.state) for p in await w.gateway.ledger()] == [(attempt_id, G.VOIDED)]
    assert await w.state(attempt_id) is S.FAILED and await seats_booked(w) == (0, 0)


# -- a gateway that fails ----------------------------------------------------------------------------


async def test_a_void_the_gateway_fails_is_left_voiding_and_finished_next_round(world: World) -> None:
    w = world
    attempt = await authorized(w)
    w.clock.advance(PAST_DEADLINE)
    failing = fail_next(w.gateway, "void")
    await w.recovery.round()
    assert failing.failed == 1
    assert await w.state(attempt.id) is S.VOIDING  # decided, not done: still open
    assert (await w.gateway.find(attempt.id)).state is G.AUTHORIZED  # type: ignore[union-attr]
    assert w.recovery.stats.deferred == 1
    await w.recovery.round()  # the move ended the claim: no need to wait out the lease
    assert await w.state(attempt.id) is S.VOIDED
    assert (await w.gateway.find(attempt.id)).state is G.VOIDED  # type: ignore[union-attr]


async def test_a_capture_the_gateway_fails_is_retried_once_the_lease_has_passed(world: World) -> None:
    w = world
    attempt = await booked_not_captured(w)
    w.clock.advance(PAST_DEADLINE)
    failing = fail_next(w.gateway, "capture")
    await w.recovery.round()
    assert (failing.calls, await w.state(attempt.id)) == (1, S.BOOKED)
    assert (await w.gateway.find(attempt.id)).state is G.AUTHORIZED  # type: ignore[union-attr]
    await w.recovery.round()  # still claimed by the round that tried: not tried again yet
    assert (failing.calls, await w.state(attempt.id)) == (1, S.BOOKED)
    w.clock.advance(LEASE + timedelta(seconds=1))
    await w.recovery.round()
    assert (failing.calls, await w.state(attempt.id)) == (2, S.CAPTURED)
    assert (await w.gateway.find(attempt.id)).state is G.CAPTURED  # type: ignore[union-attr]


async def test_a_lookup_the_gateway_fails_leaves_a_created_attempt_for_a_later_round(world: World) -> None:
    w = world
    attempt = await created_authorized_unrecorded(w)
    w.clock.advance(PAST_DEADLINE)
    failing = fail_next(w.gateway, "find")
    await w.recovery.round()
    assert failing.failed == 1 and await w.state(attempt.id) is S.CREATED  # nothing guessed
    assert (await w.gateway.find(attempt.id)).state is G.AUTHORIZED  # type: ignore[union-attr]
    w.clock.advance(LEASE + timedelta(seconds=1))
    await w.recovery.round()
    assert await w.state(attempt.id) is S.VOIDED
    assert (await w.gateway.find(attempt.id)).state is G.VOIDED  # type: ignore[union-attr]


# -- refunds, invoice card payments, idempotency records ----------------------------------------------


async def age(w: World, table: str, seconds: int) -> None:
    """Make every row of `table` look `seconds` older (recovery compares with the database's clock)."""
    await w.sql(f"UPDATE {table} SET created_at = created_at - make_interval(secs => $1)", seconds)


async def test_a_refund_owed_for_more_than_30_s_is_paid(world: World) -> None:
    w = world
    launch = await create_launch(
        w.client, w.agency, capacity=5, min_passengers=5, price_cents=100_001, days=400
    )
    w.launch = launch
    booking = (await (await book(w)).json())["booking"]
    failing = fail_next(w.gateway, "refund")
    resp = await w.client.post(f"/api/booking/bookings/{booking['id']}/cancel", headers=w.traveler.headers)
    assert resp.status == 200 and (await resp.json())["refund_cents"] == 90_001
    await w.app[DESK].wait_background()  # the refund was tried at once, and failed
    assert failing.failed == 1
    refunds = "SELECT status, gateway_ref, amount_cents FROM traveler_payments WHERE kind = 'refund'"
    assert [tuple(r) for r in await w.sql(refunds)] == [("pending", None, 90_001)]
    await w.recovery.round()  # owed for less than 30 s: left to the request that owes it
    assert [r["status"] for r in await w.sql(refunds)] == ["pending"]
    await age(w, "traveler_payments", 31)
    await w.recovery.round()
    [row] = await w.sql(refunds)
    assert row["status"] == "done" and row["gateway_ref"].startswith("re_")
    attempt = await w.payments.attempts.by_booking(booking["id"])
    assert attempt is not None and attempt.state is S.CAPTURED
    [payment] = await w.gateway.ledger()
    assert (payment.state, payment.amount_cents, payment.refunded_cents) == (G.CAPTURED, 100_001, 90_001)
    await age(w, "traveler_payments", 31)
    await w.recovery.round()  # paid once, never twice
    assert [(p.refunded_cents) for p in await w.gateway.ledger()] == [90_001]


async def test_a_refund_of_a_booking_never_captured_captures_it_first(world: World) -> None:
    """Cancelled before its capture happened: the refund follows the capture it gives back."""
    w = world
    w.launch = await create_launch(
        w.client, w.agency, capacity=5, min_passengers=5, price_cents=100_001, days=400
    )
    attempt = await booked_not_captured(w)
    resp = await w.client.post(
        f"/api/booking/bookings/{attempt.booking_id}/cancel", headers=w.traveler.headers
    )
    assert resp.status == 200
    await w.app[DESK].wait_background()
    assert await w.state(attempt.id) is S.CAPTURED
    [payment] = await w.gateway.ledger()
    assert (payment.state, payment.refunded_cents) == (G.CAPTURED, 90_001)


async def abort_fee_invoice(w: World) -> dict[str, Any]:
    resp = await w.client.post(
        f"/api/agency/launches/{w.launch['id']}/status",
        headers=w.agency.headers,
        json={"status": "aborted", "reason": "weather"},
    )
    assert resp.status == 200, await resp.text()
    resp = await w.client.get("/api/agency/invoices", headers=w.agency.headers)
    [invoice] = (await resp.json())["items"]
    return invoice  # type: ignore[no-any-return]


async def invoice_payments(w: World) -> list[tuple[str, str, int]]:
    rows = await w.sql("SELECT id, status, amount_cents FROM invoice_payments ORDER BY created_at")
    return [(r["id"], r["status"], r["amount_cents"]) for r in rows]


async def test_an_invoice_card_payment_left_pending_is_finished_from_what_the_gateway_holds(
    world: World,
) -> None:
    w = world
    invoice = await abort_fee_invoice(w)
    pay = f"/api/agency/invoices/{invoice['id']}/payments"
    failing = fail_next(w.gateway, "capture")  # authorized, then the capture's answer is lost
    resp = await w.client.post(
        pay, headers=w.agency.headers, json={"amount_cents": 30_000, "card_token": "tok_ok"}
    )
    assert resp.status == 503 and "Retry-After" in resp.headers and failing.failed == 1
    resp = await w.client.post(
        pay, headers=w.agency.headers, json={"amount_cents": 20_000, "card_token": "tok_error"}
    )
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "payment_gateway_error"
    [(held, _, _), (nothing, _, _)] = await invoice_payments(w)
    assert [s for _, s, _ in await invoice_payments(w)] == ["pending", "pending"]
    await w.recovery.round()  # younger than 30 s: left alone
    assert [s for _, s, _ in await invoice_payments(w)] == ["pending", "pending"]
    await age(w, "invoice_payments", 31)
    await w.recovery.round()
    assert await invoice_payments(w) == [(held, "done", 30_000), (nothing, "declined", 20_000)]
    assert (await w.gateway.find(held)).state is G.CAPTURED  # type: ignore[union-attr]
    assert await w.gateway.find(nothing) is None
    resp = await w.client.get("/api/agency/invoices", headers=w.agency.headers)
    [got] = (await resp.json())["items"]
    assert (got["paid_cents"], got["balance_cents"]) == (30_000, invoice["amount_cents"] - 30_000)
    [(pending,)] = await w.sql("SELECT pending_cents FROM invoices")
    assert pending == 0


async def test_the_sweep_forgets_idempotency_records_older_than_24_hours_only(world: World) -> None:
    w = world
    keys = w.app[IDEMPOTENCY]
    for key in ("old", "almost", "new"):
        assert await keys.begin(w.traveler.id, key, "h") is None
    await keys.finish(w.traveler.id, "new", 201, b"{}")
    assert await keys.begin(w.traveler.id, "old-tied", "h") is None
    tied = w.payments.new_attempt(
        traveler_id=w.traveler.id, launch_id=w.launch["id"], seats=1, amount_cents=PRICE
    )
    await w.payments.attempts.open(tied, (w.traveler.id, "old-tied"))  # a request that died long ago
    await w.sql(
        """UPDATE idempotency_keys SET created_at = now() - CASE key
               WHEN 'old' THEN interval '24 hours 1 second' WHEN 'old-tied' THEN interval '30 hours'
               WHEN 'almost' THEN interval '23 hours 59 minutes' ELSE interval '0' END"""
    )
    await w.recovery.round()
    assert sorted(r["key"] for r in await w.sql("SELECT key FROM idempotency_keys")) == ["almost", "new"]
    assert await w.state(tied.id) is S.CREATED  # the attempt is not the key's to delete
    assert await keys.begin(w.traveler.id, "old", "other body") is None  # a new request may use it again


# -- the webhook's path into the same state machine ----------------------------------------------------


async def test_a_release_reported_by_the_gateway_moves_as_the_state_machine_allows(world: World) -> None:
    w = world
    attempt = await authorized(w)
    await w.gateway.void(attempt.gateway_ref or "", key=attempt.id)
    found = await w.gateway.find(attempt.id)
    assert isinstance(found, GatewayPayment)
    await w.payments.gateway_changed(found)
    assert await w.state(attempt.id) is S.VOIDED
    made = list(w.moves)
    w.moves.clear()  # judged here, not again when the fixture ends
    assert all(target in MOVES[source] for source, target in made), made
