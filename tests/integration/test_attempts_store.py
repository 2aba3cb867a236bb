"""Payment attempts in PostgreSQL: the key tied on open, conditional moves (one decider), a row held by
another transaction, and recovery's claims (only what is due, SKIP LOCKED, the lease) -- real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from astro.config import Settings
from astro.domain.payments import FINAL, OPEN, Attempt, AttemptState, RowBusy
from astro.services.idempotency import StoredResponse
from astro.store import postgres
from astro.store.attempts import PgAttempts
from astro.store.idempotency import PgIdempotency

S = AttemptState
NOW = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=10)
TICK = timedelta(microseconds=1)  # timestamptz's resolution
TRAVELER, LAUNCH = "usr_pay", "lch_pay"
_ids = itertools.count(1)


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await postgres.create_pool(settings.pg_dsn or "", min_size=1, max_size=14)
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO travelers (id, email, name, phone, tax_id, address)
               VALUES ($1, 'pay@example.com', 'Payer', '+1 555 0100', 'T-PAY', '1 Orbit Road')""",
            TRAVELER,
        )
        await conn.execute(
            """INSERT INTO agencies (id, email, name, legal_name, tax_id, legal_address, contact_email)
               VALUES ('agy_pay', 'agy@example.com', 'Orbital', 'Orbital Ltd', 'TAX-A', '1 Pad Road',
                       'billing@example.com')"""
        )
        await conn.execute(
            """INSERT INTO rockets (id, agency_id, name, capacity, range)
               VALUES ('rkt_pay', 'agy_pay', 'Ares', 100, 'mars')"""
        )
        await conn.execute(
            """INSERT INTO launches (id, agency_id, rocket_id, slug, mission, destination, scheduled_at,
                   price_cents, capacity, min_passengers, status, public_from)
               VALUES ($1, 'agy_pay', 'rkt_pay', $1, 'Mission', 'mars', $2, 100000, 100, 1, 'scheduled',
                       $2)""",
            LAUNCH,
            NOW + timedelta(days=30),
        )
    yield pool
    await pool.close()


@pytest.fixture
def attempts(pool: asyncpg.Pool) -> PgAttempts:
    return PgAttempts(pool)


def attempt(state: S = S.CREATED, deadline: datetime = NOW, seats: int = 1) -> Attempt:
    n = next(_ids)
    return Attempt(
        id=f"att_{n:06d}",
        booking_id=f"bkg_{n:06d}",
        traveler_id=TRAVELER,
        launch_id=LAUNCH,
        seats=seats,
        amount_cents=100_000 * seats,
        state=state,
        gateway_ref="pi_1" if state is not S.CREATED else None,
        deadline=deadline,
        created_at=deadline - timedelta(seconds=45),
    )


async def opened(attempts: PgAttempts, state: S = S.CREATED, deadline: datetime = NOW) -> Attempt:
    a = attempt(state, deadline)
    await attempts.open(a, None)
    return a


async def state_of(attempts: PgAttempts, attempt_id: str) -> S:
    got = await attempts.get(attempt_id)
    assert got is not None
    return got.state


async def waiting_for_locks(pool: asyncpg.Pool, count: int) -> None:
    """Until `count` backends of this database wait for a lock (nothing signals it: poll, bounded)."""
    async with asyncio.timeout(10), pool.acquire() as conn:
        while (
            await conn.fetchval(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock'"""
            )
            < count
        ):
            await asyncio.sleep(0.01)


# -- open --------------------------------------------------------------------------------------------


async def test_open_stores_the_attempt_as_given(attempts: PgAttempts) -> None:
    a = attempt(seats=3)
    await attempts.open(a, None)
    got = await attempts.get(a.id)
    assert got is not None
    assert (got.id, got.booking_id, got.traveler_id, got.launch_id, got.seats, got.amount_cents) == (
        a.id,
        a.booking_id,
        TRAVELER,
        LAUNCH,
        3,
        300_000,
    )
    assert (got.state, got.gateway_ref, got.deadline, got.created_at, got.error) == (
        S.CREATED,
        None,
        NOW,
        NOW - timedelta(seconds=45),
        None,
    )
    assert await attempts.by_booking(a.booking_id) == got
    assert await attempts.get("att_none") is None and await attempts.by_booking("bkg_none") is None


async def test_open_ties_the_idempotency_key_in_progress(pool: asyncpg.Pool, attempts: PgAttempts) -> None:
    keys = PgIdempotency(pool)
    assert await keys.begin(TRAVELER, "k-mine", "h1") is None
    assert await keys.begin(TRAVELER, "k-other", "h2") is None
    assert await keys.begin(TRAVELER, "k-done", "h3") is None
    await keys.finish(TRAVELER, "k-done", 201, b"{}")
    first, second, untied = attempt(), attempt(), attempt()
    await attempts.open(first, (TRAVELER, "k-mine"))
    await attempts.open(second, (TRAVELER, "k-done"))  # answered already: stays as it is
    await attempts.open(untied, None)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT key, attempt_id FROM idempotency_keys ORDER BY key")
    assert {r["key"]: r["attempt_id"] for r in rows} == {
        "k-done": None,
        "k-mine": first.id,
        "k-other": None,
    }
    assert await keys.begin(TRAVELER, "k-done", "h3") == StoredResponse(201, b"{}")


# -- move ----------------------------------------------------------------------------------------------


async def test_a_move_happens_only_from_the_expected_state(attempts: PgAttempts) -> None:
    a = await opened(attempts)
    assert await attempts.move(a.id, S.AUTHORIZED, S.BOOKED) is False
    assert await state_of(attempts, a.id) is S.CREATED
    assert await attempts.move(a.id, S.CREATED, S.AUTHORIZED, gateway_ref="pi_9") is True
    assert await attempts.move(a.id, S.CREATED, S.AUTHORIZED, gateway_ref="pi_other") is False
    got = await attempts.get(a.id)
    assert got is not None and (got.state, got.gateway_ref) == (S.AUTHORIZED, "pi_9")
    # A later move without a reference or an error keeps the ones recorded.
    assert await attempts.move(a.id, S.AUTHORIZED, S.VOIDING, error="refused") is True
    assert await attempts.move(a.id, S.VOIDING, S.VOIDED) is True
    got = await attempts.get(a.id)
    assert got is not None and (got.state, got.gateway_ref, got.error) == (S.VOIDED, "pi_9", "refused")
    assert await attempts.move("att_none", S.CREATED, S.FAILED) is False


async def test_of_two_concurrent_moves_from_one_state_exactly_one_wins(
    pool: asyncpg.Pool, attempts: PgAttempts
) -> None:
    """The group commit's authorized -> booked against a release's authorized -> voiding, five times over,
    both queued behind one transaction holding the rows so that they really meet."""
    race = [await opened(attempts, S.AUTHORIZED) for _ in range(5)]
    async with pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute(
            "SELECT 1 FROM payment_attempts WHERE id = ANY($1::text[]) FOR UPDATE", [a.id for a in race]
        )
        booking = [asyncio.create_task(attempts.move(a.id, S.AUTHORIZED, S.BOOKED)) for a in race]
        voiding = [asyncio.create_task(attempts.move(a.id, S.AUTHORIZED, S.VOIDING)) for a in race]
        await waiting_for_locks(pool, 10)
        await tx.commit()
    booked, voided = await asyncio.gather(*booking), await asyncio.gather(*voiding)
    for a, to_booked, to_voiding in zip(race, booked, voided, strict=True):
        assert to_booked != to_voiding, a.id  # exactly one of the two
        assert await state_of(attempts, a.id) is (S.BOOKED if to_booked else S.VOIDING)
    assert sum(booked) + sum(voided) == 5


async def test_many_concurrent_moves_from_one_state_have_one_winner(attempts: PgAttempts) -> None:
    a = await opened(attempts, S.CREATED)
    targets = [S.AUTHORIZED, S.DECLINED, S.FAILED, S.VOIDING] * 3
    results = await asyncio.gather(*(attempts.move(a.id, S.CREATED, t) for t in targets))
    assert sum(results) == 1
    [winner] = [t for t, won in zip(targets, results, strict=True) if won]
    assert await state_of(attempts, a.id) is winner


async def test_a_move_with_wait_gives_up_on_a_row_another_transaction_holds(
    pool: asyncpg.Pool, attempts: PgAttempts
) -> None:
    a = await opened(attempts, S.AUTHORIZED)
    async with pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM payment_attempts WHERE id = $1 FOR UPDATE", a.id)
        with pytest.raises(RowBusy):
            await attempts.move(a.id, S.AUTHORIZED, S.VOIDING, wait=0.2)
        assert await state_of(attempts, a.id) is S.AUTHORIZED  # a plain read is not blocked
        # Without `wait` the move queues behind the holder and decides once it is gone.
        patient = asyncio.create_task(attempts.move(a.id, S.AUTHORIZED, S.VOIDING))
        await waiting_for_locks(pool, 1)
        assert not patient.done()
        await tx.commit()
    assert await patient is True
    assert await state_of(attempts, a.id) is S.VOIDING


async def test_a_move_with_wait_loses_to_the_transaction_that_moved_the_row_first(
    pool: asyncpg.Pool, attempts: PgAttempts
) -> None:
    """A release waiting for a group commit's row finds it booked once that commits: it does nothing."""
    a = await opened(attempts, S.AUTHORIZED)
    async with pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("UPDATE payment_attempts SET state = 'booked' WHERE id = $1", a.id)
        release = asyncio.create_task(attempts.move(a.id, S.AUTHORIZED, S.VOIDING, wait=5.0))
        await waiting_for_locks(pool, 1)
        await tx.commit()
    assert await release is False
    assert await state_of(attempts, a.id) is S.BOOKED


# -- claim_due -----------------------------------------------------------------------------------------


async def test_claim_due_takes_only_open_attempts_past_their_deadline(
    pool: asyncpg.Pool, attempts: PgAttempts
) -> None:
    due = [await opened(attempts, s, NOW - timedelta(seconds=1)) for s in sorted(OPEN)]
    at_deadline = await opened(attempts, S.AUTHORIZED, NOW)
    not_yet = [await opened(attempts, s, NOW + TICK) for s in sorted(OPEN)]
    final = [await opened(attempts, s, NOW - timedelta(hours=1)) for s in sorted(FINAL)]
    claimed = await attempts.claim_due("node-a", NOW, 100, LEASE)
    assert sorted(a.id for a in claimed) == sorted([*(a.id for a in due), at_deadline.id])
    by_id = {a.id: a for a in claimed}
    assert {by_id[a.id].state for a in due} == set(OPEN)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, claimed_by, claimed_at FROM payment_attempts")
    claims = {r["id"]: (r["claimed_by"], r["claimed_at"]) for r in rows}
    assert all(claims[a] == ("node-a", NOW) for a in by_id)
    assert all(claims[a.id] == (None, None) for a in [*not_yet, *final])


async def test_claim_due_takes_the_oldest_deadlines_first_up_to_its_limit(attempts: PgAttempts) -> None:
    made = [await opened(attempts, S.AUTHORIZED, NOW - timedelta(seconds=s)) for s in range(1, 8)]
    first = await attempts.claim_due("node-a", NOW, 3, LEASE)
    assert [a.id for a in sorted(first, key=lambda a: a.deadline)] == [a.id for a in made[-1:-4:-1]]
    rest = await attempts.claim_due("node-a", NOW, 100, LEASE)
    assert sorted(a.id for a in rest) == sorted(a.id for a in made[:4])


async def test_claim_due_skips_rows_another_transaction_holds_without_waiting(
    pool: asyncpg.Pool, attempts: PgAttempts
) -> None:
    due = [await opened(attempts, S.AUTHORIZED, NOW - timedelta(seconds=1)) for _ in range(6)]
    held = [a.id for a in due[:2]]
    async with pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM payment_attempts WHERE id = ANY($1::text[]) FOR UPDATE", held)
        async with asyncio.timeout(5):  # SKIP LOCKED: it never waits for the holder
            claimed = await attempts.claim_due("node-a", NOW, 100, LEASE)
        assert sorted(a.id for a in claimed) == sorted(a.id for a in due[2:])
        await tx.rollback()
    later = await attempts.claim_due("node-b", NOW, 100, LEASE)
    assert sorted(a.id for a in later) == sorted(held)


async def test_concurrent_claimers_never_get_the_same_attempt(
    pool: asyncpg.Pool, attempts: PgAttempts
) -> None:
    due = [await opened(attempts, S.AUTHORIZED, NOW - timedelta(seconds=1)) for _ in range(60)]
    nodes = [f"node-{i}" for i in range(8)]
    for _ in range(3):  # several races, each over all the attempts, released between them
        results = await asyncio.gather(*(attempts.claim_due(n, NOW, 10, LEASE) for n in nodes))
        got = [a.id for claimed in results for a in claimed]
        assert len(got) == len(set(got)) == 60  # disjoint, and every due attempt claimed
        async with pool.acquire() as conn:
            owner = dict(await conn.fetch("SELECT id, claimed_by FROM payment_attempts"))
        for node, claimed in zip(nodes, results, strict=True):
            assert all(owner[a.id] == node for a in claimed)
        async with pool.acquire() as conn:
            await conn.execute("UPDATE payment_attempts SET claimed_by = NULL, claimed_at = NULL")
    assert {a.id for a in due} == set(owner)


async def test_a_claimed_attempt_is_not_claimed_again_until_its_lease_has_passed(
    pool: asyncpg.Pool, attempts: PgAttempts
) -> None:
    a = await opened(attempts, S.BOOKED, NOW - timedelta(seconds=1))
    assert [c.id for c in await attempts.claim_due("node-a", NOW, 10, LEASE)] == [a.id]
    assert await attempts.claim_due("node-a", NOW, 10, LEASE) == []
    assert await attempts.claim_due("node-b", NOW + timedelta(seconds=5), 10, LEASE) == []
    assert await attempts.claim_due("node-b", NOW + LEASE, 10, LEASE) == []  # the lease still holds
    assert [c.id for c in await attempts.claim_due("node-b", NOW + LEASE + TICK, 10, LEASE)] == [a.id]
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT claimed_by, claimed_at FROM payment_attempts WHERE id = $1", a.id)
    assert (row["claimed_by"], row["claimed_at"]) == ("node-b", NOW + LEASE + TICK)


async def test_a_move_ends_the_claim_so_an_attempt_still_open_is_claimed_again_at_once(
    attempts: PgAttempts,
) -> None:
    """Recovery released an authorized attempt (-> voiding) but the gateway did not answer: the next
    round must not wait out the lease to finish the void."""
    a = await opened(attempts, S.AUTHORIZED, NOW - timedelta(seconds=1))
    assert [c.id for c in await attempts.claim_due("node-a", NOW, 10, LEASE)] == [a.id]
    assert await attempts.move(a.id, S.AUTHORIZED, S.VOIDING)
    again = await attempts.claim_due("node-a", NOW, 10, LEASE)
    assert [(c.id, c.state) for c in again] == [(a.id, S.VOIDING)]
    assert await attempts.move(a.id, S.VOIDING, S.VOIDED)
    assert await attempts.claim_due("node-a", NOW + timedelta(hours=1), 10, LEASE) == []


async def test_open_count_counts_the_attempts_not_final(attempts: PgAttempts) -> None:
    for s in S:
        await opened(attempts, s)
    assert await attempts.open_count() == len(OPEN)
