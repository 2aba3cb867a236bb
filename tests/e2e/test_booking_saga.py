"""The payment saga through HTTP (issue #12): refusals release what was taken, a commit slower than the
ask is decided by the attempt's row and never by the timeout, a retry with the same key after a crash
learns the real outcome, refunds reach the gateway and the money reconciles to the cent."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from actors.payments import Payments
from astro.domain.bookings import Passenger
from astro.domain.clock import FixedClock
from astro.domain.errors import PaymentDeclined
from astro.domain.payments import DEADLINE, Attempt, AttemptState, GatewayState
from astro.store.payments import SandboxGateway
from tests.conftest import Account, agency_body, create_launch, fail_next, passengers, register, traveler_body
from web.keys import ACTORS, DESK, IDEMPOTENCY, PAYMENTS, RECOVERY
from web.resources import GATEWAY

S, G = AttemptState, GatewayState
BOOKINGS = "/api/booking/bookings"
# What a 503 may say only when the attempt's authorization was really released.
NOT_CHARGED = ("not charged", "nothing was charged", "was released")


@dataclass
class World:
    client: TestClient[web.Request, web.Application]
    clock: FixedClock
    dsn: str
    agency: Account

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

    async def traveler(self) -> Account:
        return await register(self.client, traveler_body())

    async def launch(self, capacity: int = 4, price_cents: int = 50_001, days: float = 30) -> str:
        made = await create_launch(
            self.client,
            self.agency,
            capacity=capacity,
            min_passengers=capacity,
            price_cents=price_cents,
            days=days,
        )
        return str(made["id"])

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(query, *args)  # type: ignore[no-any-return]
        finally:
            await conn.close()

    async def attempts_of(self, traveler: Account) -> list[Attempt]:
        rows = await self.sql(
            "SELECT id FROM payment_attempts WHERE traveler_id = $1 ORDER BY created_at, id", traveler.id
        )
        found = [await self.payments.attempts.get(r["id"]) for r in rows]
        return [a for a in found if a is not None]

    async def bookings_of(self, traveler: Account) -> list[str]:
        rows = await self.sql("SELECT id FROM bookings WHERE traveler_id = $1 ORDER BY id", traveler.id)
        return [r["id"] for r in rows]


MakeWorld = Callable[..., Awaitable[World]]


@pytest.fixture
def make_world(make_client: Any, settings: Any) -> MakeWorld:
    async def make(**changes: Any) -> World:
        clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
        client = await make_client(clock=clock, recovery_interval=3600.0, **changes)  # rounds when asked
        recovery = client.app[RECOVERY]
        while recovery.background.rounds < 1:  # the start-up round is over
            await recovery.background.round_end()
        return World(client, clock, settings.pg_dsn, await register(client, agency_body()))

    return make


def body_of(launch_id: str, seats: int, token: str = "tok_ok") -> bytes:
    """A booking request's exact bytes (its Idempotency-Key is tied to their hash)."""
    return json.dumps(
        {"launch_id": launch_id, "seats": seats, "passengers": passengers(seats), "card_token": token}
    ).encode()


async def book(
    w: World, traveler: Account, launch_id: str, seats: int, token: str = "tok_ok", key: str | None = None
) -> Any:
    headers = {**traveler.headers, "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await w.client.post(BOOKINGS, data=body_of(launch_id, seats, token), headers=headers)


async def audit(w: World) -> None:
    """What must hold whatever happened: seat counts equal the bookings; every confirmed booking's payment
    is captured at the gateway and not refunded; nothing is captured without a booking; every cancelled
    booking's refund is what the gateway gave back; captured - refunded == bookings - refunds, to the cent."""
    await w.app[DESK].wait_background()
    launches = await w.sql(
        """SELECT l.id, l.seats_booked, (SELECT COALESCE(sum(b.seats), 0) FROM bookings b
               WHERE b.launch_id = l.id AND (b.status = 'confirmed' OR NOT b.seats_released)) AS seats
           FROM launches l"""
    )
    assert all(r["seats_booked"] == r["seats"] for r in launches), [tuple(r) for r in launches]
    bookings = {
        r["id"]: r
        for r in await w.sql(
            """SELECT b.id, b.status, b.total_cents, COALESCE(b.refund_cents, 0) AS refund,
                      a.id AS attempt_id, a.state
               FROM bookings b LEFT JOIN payment_attempts a ON a.booking_id = b.id"""
        )
    }
    payments = {p.key: p for p in await w.gateway.ledger()}
    for booking_id, row in bookings.items():
        paid = payments[row["attempt_id"]]
        assert (row["state"], paid.state, paid.amount_cents) == ("captured", G.CAPTURED, row["total_cents"])
        refunded = 0 if row["status"] == "confirmed" else row["refund"]
        assert paid.refunded_cents == refunded, booking_id
    booked_ids = {p.booking_id for p in payments.values() if p.state is G.CAPTURED}
    assert booked_ids == set(bookings)
    captured = sum(p.amount_cents - p.refunded_cents for p in payments.values() if p.state is G.CAPTURED)
    assert captured == sum(r["total_cents"] - r["refund"] for r in bookings.values())


async def state_of(w: World, attempt_id: str) -> S:
    got = await w.payments.attempts.get(attempt_id)
    assert got is not None
    return got.state


# -- refusals ----------------------------------------------------------------------------------------


async def test_a_declined_card_is_402_the_attempt_declined_and_the_seats_free(make_world: MakeWorld) -> None:
    w = await make_world()
    launch, traveler, other = await w.launch(capacity=2), await w.traveler(), await w.traveler()
    resp = await book(w, traveler, launch, 2, "tok_declined", key="dec-1")
    assert resp.status == 402 and (await resp.json())["error"]["code"] == "payment_declined"
    [attempt] = await w.attempts_of(traveler)
    assert attempt.state is S.DECLINED and await w.bookings_of(traveler) == []
    assert [p.state for p in await w.gateway.ledger()] == [G.DECLINED]
    again = await book(w, traveler, launch, 2, "tok_declined", key="dec-1")
    assert again.status == 402 and again.headers["Idempotent-Replayed"] == "true"
    assert (await book(w, other, launch, 2)).status == 201  # every seat was free again
    await audit(w)


async def test_a_gateway_error_is_503_with_retry_after_and_the_attempt_fails_at_once(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    launch, traveler, other = await w.launch(capacity=2), await w.traveler(), await w.traveler()
    for tries in (1, 2):  # a retry with the same key tries again (a fresh attempt), never 409
        resp = await book(w, traveler, launch, 2, "tok_error", key="err-1")
        body = await resp.json()
        assert resp.status == 503 and resp.headers["Retry-After"] == "2", body
        assert body["error"]["code"] == "payment_gateway_error"
        assert [a.state for a in await w.attempts_of(traveler)] == [S.FAILED] * tries  # no round needed
    assert await w.gateway.ledger() == [] and await w.bookings_of(traveler) == []
    assert (await book(w, other, launch, 2)).status == 201
    await audit(w)


async def test_after_a_gateway_error_a_retry_with_the_same_key_books_afresh(make_world: MakeWorld) -> None:
    w = await make_world()
    launch, traveler = await w.launch(capacity=2), await w.traveler()
    failing = fail_next(w.gateway, "authorize")
    resp = await book(w, traveler, launch, 2, key="err-2")
    assert resp.status == 503 and "Retry-After" in resp.headers and failing.failed == 1
    assert [a.state for a in await w.attempts_of(traveler)] == [S.FAILED]
    resp = await book(w, traveler, launch, 2, key="err-2")
    assert resp.status == 201, await resp.text()
    booking = (await resp.json())["booking"]
    replay = await book(w, traveler, launch, 2, key="err-2")
    assert replay.status == 201 and (await replay.json())["booking"]["id"] == booking["id"]
    assert await w.bookings_of(traveler) == [booking["id"]]
    assert [a.state for a in await w.attempts_of(traveler)] == [S.FAILED, S.CAPTURED]
    await audit(w)


# -- a commit slower than the ask ---------------------------------------------------------------------


async def retry_until_definitive(w: World, traveler: Account, launch: str, seats: int, key: str) -> Any:
    resp = await book(w, traveler, launch, seats, key=key)
    assert resp.status == 201, await resp.text()
    booking = (await resp.json())["booking"]
    replay = await book(w, traveler, launch, seats, key=key)
    assert replay.status == 201 and (await replay.json())["booking"]["id"] == booking["id"]
    assert await w.bookings_of(traveler) == [booking["id"]]  # the key never made two bookings
    return booking


async def test_a_commit_held_by_a_table_lock_past_the_ask_timeout_is_decided_by_the_attempt(
    make_world: MakeWorld,
) -> None:
    w = await make_world(ask_timeout=1.5)
    launch, traveler = await w.launch(capacity=4), await w.traveler()
    lock = await asyncpg.connect(w.dsn)
    try:
        await lock.execute("BEGIN; LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE")
        resp = await book(w, traveler, launch, 2, key="slow-1")  # its group commit waits for the lock
        [attempt] = await w.attempts_of(traveler)
        body = await resp.json()
        assert resp.status == 503 and "Retry-After" in resp.headers, body
        if attempt.state is not S.VOIDED:  # it may say "released" only once it is
            assert attempt.state is S.AUTHORIZED, attempt
            assert not any(words in body["error"]["message"] for words in NOT_CHARGED), body
    finally:
        await lock.close()  # the lock goes with it; the queued commit runs
    await w.app[DESK].launch(launch)  # the actor has finished the batch the lock held
    attempt_now = await w.payments.attempts.get(attempt.id)
    held = await w.gateway.find(attempt.id)
    assert attempt_now is not None and held is not None
    if attempt_now.state is S.VOIDED:  # the release won: the booking never committed
        assert await w.bookings_of(traveler) == [] and held.state is G.VOIDED
    else:  # the commit won: the booking stands and its payment is taken, never released
        assert attempt_now.state in (S.BOOKED, S.CAPTURED), attempt_now
        assert await w.bookings_of(traveler) == [attempt.booking_id]
        assert held.state in (G.AUTHORIZED, G.CAPTURED) and held.refunded_cents == 0
    booking = await retry_until_definitive(w, traveler, launch, 2, "slow-1")
    assert (booking["id"] == attempt.booking_id) is (attempt_now.state is not S.VOIDED)
    await audit(w)


async def test_a_commit_that_booked_the_attempt_after_the_ask_gave_up_is_the_answer_of_the_retry(
    make_world: MakeWorld,
) -> None:
    """The group commit took the attempt's row (authorized -> booked) and then stalled past the ask
    timeout (another transaction holds a row it inserts): the release must not win, the client must not
    be told it was not charged, and the retry gets that very booking."""
    w = await make_world(ask_timeout=1.5)
    launch, traveler = await w.launch(capacity=4), await w.traveler()
    stall = await asyncpg.connect(w.dsn)
    tx = stall.transaction()
    authorize = w.gateway.authorize

    async def authorize_then_stall_its_commit(**kw: Any) -> str:
        ref = await authorize(**kw)
        await tx.start()  # an uncommitted row with the booking's id: its insert waits for this one
        await stall.execute(
            """INSERT INTO bookings (id, launch_id, traveler_id, seats, price_cents, total_cents)
               VALUES ($1, $2, $3, 1, 1, 1)""",
            kw["metadata"]["booking_id"],
            launch,
            traveler.id,
        )
        return ref

    w.gateway.authorize = authorize_then_stall_its_commit  # type: ignore[method-assign]
    try:
        resp = await book(w, traveler, launch, 2, key="slow-2")
        body = await resp.json()
        assert resp.status == 503 and "Retry-After" in resp.headers, body
        assert not any(words in body["error"]["message"] for words in NOT_CHARGED), body
        [attempt] = await w.attempts_of(traveler)
        assert attempt.state is S.AUTHORIZED  # booked, not committed yet: still being decided
        await tx.rollback()
    finally:
        await stall.close()
    await w.app[DESK].launch(launch)
    assert await state_of(w, attempt.id) is S.BOOKED
    assert (await w.gateway.find(attempt.id)).state is G.AUTHORIZED  # type: ignore[union-attr]
    booking = await retry_until_definitive(w, traveler, launch, 2, "slow-2")
    assert booking["id"] == attempt.booking_id and await state_of(w, attempt.id) is S.CAPTURED
    await audit(w)


async def test_a_hold_whose_ask_timed_out_is_503_and_released_at_once(make_world: MakeWorld) -> None:
    w = await make_world(ask_timeout=1.5)
    launch = await w.launch(capacity=4)
    first, second, third = await w.traveler(), await w.traveler(), await w.traveler()
    lock = await asyncpg.connect(w.dsn)
    try:
        await lock.execute("BEGIN; LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE")
        stuck = await book(w, first, launch, 1)  # its commit keeps the launch actor busy
        assert stuck.status == 503
        resp = await book(w, second, launch, 3)  # its hold waits behind that commit
        body = await resp.json()
        assert resp.status == 503 and resp.headers["Retry-After"] == "2", body
        assert body["error"]["code"] == "unavailable"
        assert await w.attempts_of(second) == []  # nothing was charged: the hold never came back
    finally:
        await lock.close()
    # The seats the second traveler would have held are free as soon as the actor runs again.
    await w.app[DESK].launch(launch)  # (after the held batch: whether the first booking stands)
    free = 4 - (1 if await w.bookings_of(first) else 0)
    resp = await book(w, third, launch, free)
    assert resp.status == 201, await resp.text()
    [(seats_booked,)] = await w.sql("SELECT seats_booked FROM launches WHERE id = $1", launch)
    assert seats_booked == 4
    await audit(w)


async def test_keyed_bookings_caught_by_a_held_commit_each_book_exactly_once_on_retry(
    make_world: MakeWorld,
) -> None:
    """The issue's run, in one process: bookings arrive while a lock holds the launch's commit past the
    ask timeout; whatever each one was told, its retry with the same key ends in exactly one booking."""
    w = await make_world(ask_timeout=1.5)
    launch = await w.launch(capacity=40)
    travelers = [await w.traveler() for _ in range(12)]
    lock = await asyncpg.connect(w.dsn)
    try:
        await lock.execute("BEGIN; LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE")
        first = await asyncio.gather(*(book(w, t, launch, 2, key=f"storm-{t.id}") for t in travelers))
    finally:
        await lock.close()
    for resp in first:
        body = await resp.json()
        assert resp.status in (201, 503), body
        if resp.status == 503:
            assert "Retry-After" in resp.headers and body["error"]["code"] == "unavailable", body
    await w.app[DESK].launch(launch)
    for traveler in travelers:
        await retry_until_definitive(w, traveler, launch, 2, f"storm-{traveler.id}")
    [(seats_booked,)] = await w.sql("SELECT seats_booked FROM launches WHERE id = $1", launch)
    assert seats_booked == 24
    await audit(w)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll, bounded, for what nothing signals (a backend waiting for a lock, a mailbox filling)."""
    try:
        async with asyncio.timeout(10):
            while not await check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not within 10 s: {what}") from None


async def test_a_booking_whose_payment_recovery_released_first_is_left_out_of_its_group_commit(
    make_world: MakeWorld,
) -> None:
    """Two confirms wait in the actor's mailbox behind a commit held by a lock; recovery releases one of
    their attempts (past its deadline). That booking is withdrawn (503, its seats free again), the other
    commits in the same batch: a booking and a void never both win."""
    w = await make_world()
    launch = await w.launch(capacity=6)
    first, late, other = await w.traveler(), await w.traveler(), await w.traveler()
    gate, entered = asyncio.Event(), asyncio.Event()
    authorize, gated = w.gateway.authorize, [0]

    async def authorize_at_the_gate(**kw: Any) -> str:
        if gated[0] < 2:  # the first two authorizations (late's and other's) wait for the test
            gated[0] += 1
            if gated[0] == 2:
                entered.set()
            await gate.wait()
        return await authorize(**kw)

    w.gateway.authorize = authorize_at_the_gate  # type: ignore[method-assign]
    waiting = [asyncio.ensure_future(book(w, t, launch, 2)) for t in (late, other)]
    await entered.wait()  # both hold their seats and are being authorized
    lock = await asyncpg.connect(w.dsn)
    try:
        await lock.execute("BEGIN; LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE")
        held_commit = asyncio.ensure_future(book(w, first, launch, 2))

        async def commit_waits() -> bool:
            [(n,)] = await w.sql(
                """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND wait_event_type = 'Lock' AND query LIKE '%jsonb_to_recordset%'"""
            )
            return bool(n)

        await until(commit_waits, "the first booking's group commit waits for the lock")
        gate.set()
        key = f"launch:{launch}"

        async def both_queued() -> bool:
            return w.app[ACTORS].mailbox_depths().get(key, 0) >= 2

        await until(both_queued, "both confirms wait in the mailbox")
        [released] = await w.attempts_of(late)
        await w.sql("UPDATE payment_attempts SET deadline = $2 WHERE id = $1", released.id, w.clock.now())
        recovery = asyncio.ensure_future(w.app[RECOVERY].round())

        async def voided() -> bool:
            return await state_of(w, released.id) is S.VOIDED

        await until(voided, "recovery released the late attempt")
    finally:
        await lock.close()
    await recovery
    assert (await held_commit).status == 201
    refused, kept = await asyncio.gather(*waiting)
    body = await refused.json()
    assert refused.status == 503 and "Retry-After" in refused.headers, body
    assert body["error"]["code"] == "unavailable"  # "nothing was charged": true, its attempt is voided
    assert kept.status == 201, await kept.text()
    assert await w.bookings_of(late) == []
    assert (await w.gateway.find(released.id)).state is G.VOIDED  # type: ignore[union-attr]
    [(seats_booked,)] = await w.sql("SELECT seats_booked FROM launches WHERE id = $1", launch)
    assert seats_booked == 4
    assert (await book(w, late, launch, 2)).status == 201  # the withdrawn seats are free again
    await audit(w)


# -- a retry after the first request died ------------------------------------------------------------


async def left_by_a_crash(w: World, traveler: Account, launch: str, key: str, token: str = "tok_ok") -> None:
    """The key claimed by a request with this body, which died before answering."""
    digest = hashlib.sha256(b"POST " + BOOKINGS.encode() + b"\n" + body_of(launch, 1, token)).hexdigest()
    assert await w.app[IDEMPOTENCY].begin(traveler.id, key, digest) is None


async def desk_book(w: World, traveler: Account, launch: str, key: str, token: str = "tok_ok") -> Any:
    group = [Passenger(p["name"], date.fromisoformat(p["birth_date"])) for p in passengers(1)]
    return await w.app[DESK].book(
        traveler_id=traveler.id,
        launch_id=launch,
        seats=1,
        passengers=group,
        card_token=token,
        vip=False,
        idempotency=(traveler.id, key),
    )


async def attempt_left(w: World, traveler: Account, launch: str, key: str, path: list[S]) -> Attempt:
    """An attempt tied to the key, moved along `path` (the gateway as the saga would have left it)."""
    attempt = w.payments.new_attempt(traveler_id=traveler.id, launch_id=launch, seats=1, amount_cents=50_001)
    await w.payments.attempts.open(attempt, (traveler.id, key))
    ref = None
    for source, target in zip([S.CREATED, *path], path, strict=False):
        if target is S.AUTHORIZED:
            ref = await w.gateway.authorize(
                key=attempt.id,
                amount_cents=50_001,
                card_token="tok_ok",
                metadata={"booking_id": attempt.booking_id},
            )
        if target is S.VOIDED:
            await w.gateway.void(ref or "", key=attempt.id)
        assert await w.payments.attempts.move(attempt.id, source, target, gateway_ref=ref)
    return replace(attempt, state=path[-1] if path else S.CREATED, gateway_ref=ref)


async def test_a_retry_after_a_crash_past_the_commit_gets_the_booking_and_it_is_captured(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    await left_by_a_crash(w, traveler, launch, "crash-booked")
    fail_next(w.gateway, "capture")  # it died between the commit and the capture
    view = await desk_book(w, traveler, launch, "crash-booked")
    [attempt] = await w.attempts_of(traveler)
    assert attempt.state is S.BOOKED
    resp = await book(w, traveler, launch, 1, key="crash-booked")
    assert resp.status == 201 and (await resp.json())["booking"]["id"] == view.id == attempt.booking_id
    assert await state_of(w, attempt.id) is S.CAPTURED
    replay = await book(w, traveler, launch, 1, key="crash-booked")
    assert (
        replay.headers["Idempotent-Replayed"] == "true" and (await replay.json())["booking"]["id"] == view.id
    )
    await audit(w)


async def test_a_retry_after_a_crash_past_the_capture_gets_the_booking(make_world: MakeWorld) -> None:
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    await left_by_a_crash(w, traveler, launch, "crash-captured")
    view = await desk_book(w, traveler, launch, "crash-captured")
    resp = await book(w, traveler, launch, 1, key="crash-captured")
    assert resp.status == 201 and (await resp.json())["booking"]["id"] == view.id
    assert await w.bookings_of(traveler) == [view.id]
    await audit(w)


async def test_a_retry_after_a_crash_past_a_decline_is_402(make_world: MakeWorld) -> None:
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    await left_by_a_crash(w, traveler, launch, "crash-declined", "tok_declined")
    with pytest.raises(PaymentDeclined):
        await desk_book(w, traveler, launch, "crash-declined", "tok_declined")
    resp = await book(w, traveler, launch, 1, "tok_declined", key="crash-declined")
    assert resp.status == 402 and (await resp.json())["error"]["code"] == "payment_declined"
    assert await w.bookings_of(traveler) == [] and len(await w.attempts_of(traveler)) == 1
    await audit(w)


@pytest.mark.parametrize("path", [[S.AUTHORIZED, S.VOIDING, S.VOIDED], [S.FAILED]], ids=["voided", "failed"])
async def test_a_retry_after_a_crash_whose_attempt_ended_without_a_booking_books_afresh(
    make_world: MakeWorld, path: list[S]
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    await left_by_a_crash(w, traveler, launch, "crash-ended")
    ended = await attempt_left(w, traveler, launch, "crash-ended", path)
    booking = await retry_until_definitive(w, traveler, launch, 1, "crash-ended")
    assert booking["id"] != ended.booking_id
    assert [a.state for a in await w.attempts_of(traveler)] == [path[-1], S.CAPTURED]
    await audit(w)


OPEN_PATHS = {"created": [], "authorized": [S.AUTHORIZED], "voiding": [S.AUTHORIZED, S.VOIDING]}


@pytest.mark.parametrize("left", list(OPEN_PATHS))
async def test_a_retry_while_the_attempt_is_still_open_is_409_with_retry_after(
    make_world: MakeWorld, left: str
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    await left_by_a_crash(w, traveler, launch, "crash-open")
    attempt = await attempt_left(w, traveler, launch, "crash-open", OPEN_PATHS[left])
    resp = await book(w, traveler, launch, 1, key="crash-open")
    body = await resp.json()
    assert resp.status == 409 and body["error"]["code"] == "idempotency_in_progress", body
    assert int(resp.headers["Retry-After"]) > 0
    assert await state_of(w, attempt.id) is attempt.state and await w.bookings_of(traveler) == []


@pytest.mark.parametrize("left", list(OPEN_PATHS))
async def test_once_recovery_finished_the_attempt_a_retry_gets_a_definitive_answer(
    make_world: MakeWorld, left: str
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    await left_by_a_crash(w, traveler, launch, "crash-open")
    attempt = await attempt_left(w, traveler, launch, "crash-open", OPEN_PATHS[left])
    w.clock.advance(DEADLINE)
    await w.app[RECOVERY].round()
    assert await state_of(w, attempt.id) in (S.VOIDED, S.FAILED)
    booking = await retry_until_definitive(w, traveler, launch, 1, "crash-open")
    assert booking["id"] != attempt.booking_id
    await audit(w)


async def test_a_409_while_the_attempt_was_open_does_not_become_the_keys_answer(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    await left_by_a_crash(w, traveler, launch, "crash-open")
    attempt = await attempt_left(w, traveler, launch, "crash-open", [S.AUTHORIZED])
    assert (await book(w, traveler, launch, 1, key="crash-open")).status == 409
    w.clock.advance(DEADLINE)
    await w.app[RECOVERY].round()
    assert await state_of(w, attempt.id) is S.VOIDED
    await retry_until_definitive(w, traveler, launch, 1, "crash-open")


async def test_a_key_with_no_attempt_waits_while_fresh_and_is_taken_over_after_a_minute(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    launch, traveler = await w.launch(), await w.traveler()
    await left_by_a_crash(w, traveler, launch, "crash-early")  # died before writing its attempt
    resp = await book(w, traveler, launch, 1, key="crash-early")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "idempotency_in_progress"
    assert "Retry-After" in resp.headers
    await w.sql(
        "UPDATE idempotency_keys SET updated_at = now() - interval '61 seconds' WHERE key = 'crash-early'"
    )
    await retry_until_definitive(w, traveler, launch, 1, "crash-early")
    await audit(w)


# -- refunds and the money ----------------------------------------------------------------------------


async def test_cancel_and_abort_refunds_reach_the_gateway_and_the_money_reconciles(
    make_world: MakeWorld,
) -> None:
    w = await make_world()
    far = await w.launch(capacity=10, price_cents=100_001, days=400)
    doomed = await w.launch(capacity=10, price_cents=33_333)
    kept = await w.launch(capacity=10, price_cents=77_777)
    travelers = [await w.traveler() for _ in range(4)]
    mine = (await (await book(w, travelers[0], far, 2)).json())["booking"]
    assert (await book(w, travelers[1], far, 1)).status == 201
    for seats, traveler in zip((1, 2, 3), travelers[1:], strict=True):
        assert (await book(w, traveler, doomed, seats)).status == 201
    assert (await book(w, travelers[3], kept, 2)).status == 201
    assert (await book(w, travelers[3], kept, 1, "tok_declined")).status == 402
    assert (await book(w, travelers[3], kept, 1, "tok_error")).status == 503

    resp = await w.client.post(f"{BOOKINGS}/{mine['id']}/cancel", headers=travelers[0].headers)
    cancelled = await resp.json()
    assert resp.status == 200 and cancelled["refund_cents"] == 180_002  # 90 % of 200_002, half up
    resp = await w.client.post(
        f"/api/agency/launches/{doomed}/status",
        headers=w.agency.headers,
        json={"status": "aborted", "reason": "weather"},
    )
    assert resp.status == 200, await resp.text()
    await w.app[DESK].wait_background()

    attempt = await w.payments.attempts.by_booking(mine["id"])
    assert attempt is not None
    paid = await w.gateway.find(attempt.id)
    assert paid is not None and (paid.state, paid.amount_cents, paid.refunded_cents) == (
        G.CAPTURED,
        200_002,
        180_002,
    )
    aborted = await w.sql("SELECT id, total_cents, refund_cents FROM bookings WHERE launch_id = $1", doomed)
    assert len(aborted) == 3 and all(r["refund_cents"] == r["total_cents"] for r in aborted)
    for row in aborted:
        attempt = await w.payments.attempts.by_booking(row["id"])
        paid = await w.gateway.find(attempt.id)  # type: ignore[union-attr]
        assert paid is not None and paid.refunded_cents == paid.amount_cents == row["total_cents"]
    # Each refund row is one refund at the gateway, under the row's id, of its amount.
    rows = await w.sql(
        "SELECT id, amount_cents, status, gateway_ref FROM traveler_payments WHERE kind = 'refund'"
    )
    given = {r["key"]: r for r in await w.sql("SELECT ref, key, amount_cents FROM sandbox_refunds")}
    assert len(rows) == len(given) == 4
    for row in rows:
        assert row["status"] == "done" and given[row["id"]]["ref"] == row["gateway_ref"]
        assert given[row["id"]]["amount_cents"] == row["amount_cents"]
    await audit(w)
    [(net,)] = await w.sql("SELECT sum(total_cents - COALESCE(refund_cents, 0)) FROM bookings")
    assert net == 200_002 - 180_002 + 100_001 + 2 * 77_777
