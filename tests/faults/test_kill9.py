"""`kill -9` of the platform in a storm of bookings, then a restart on the same stores (issue #12).

A client records every request's key and answer; after the restart it retries, with its key, every
request that got no answer or a 503 until each has a definitive one. Then the books are audited: every
payment attempt final within 60 s of the platform running again, no card charged without a stored
booking, no booking without its capture, no key with two bookings, money and seats balanced exactly.

On the sandbox gateway, and on Stripe (localstripe, audited against its PaymentIntents: every one captured
for a stored booking named by its metadata.booking_id, or canceled). localstripe is one Python process
sharing the machine with the platform and the client, so the Stripe storm is smaller (STRIPE_STORM).
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable

import aiohttp
import pytest

from tests.faults.audit import (
    RECOVERY_WINDOW,
    Books,
    audit,
    explain,
    open_attempts,
    wait_all_final,
    wait_final,
)
from tests.faults.conftest import Gateway
from tests.faults.platform import PlatformProcess, StoreUrls
from tests.faults.storm import (
    CONCURRENCY,
    PRICE_CENTS,
    RETRY_PAUSE,
    SLACK,
    STORM,
    TRAVELERS,
    Storm,
    open_launch,
)

pytestmark = pytest.mark.faults

KILL_AFTER = 200  # answers before the kill
STRIPE_STORM = 300
STRIPE_KILL_AFTER = 100


@pytest.mark.parametrize(
    ("gateway", "capacity"),
    [("sandbox", 1000), ("sandbox", 300), ("stripe", 1000)],
    ids=["seats_enough", "sells_out", "stripe"],
    indirect=["gateway"],
)
async def test_kill_9_in_a_storm_then_restart(
    shared_stores: StoreUrls,
    platforms: Callable[[StoreUrls], PlatformProcess],
    gateway: Gateway,
    capacity: int,
) -> None:
    size, kill_after = (STORM, KILL_AFTER) if gateway.name == "sandbox" else (STRIPE_STORM, STRIPE_KILL_AFTER)
    platform = platforms(shared_stores)
    platform.extra_env.update(gateway.env)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        begun = time.monotonic()
        platform.start()
        await platform.wait_ready(session)
        launch_id, travelers = await open_launch(
            session, platform, capacity=capacity, travelers=TRAVELERS, price_cents=PRICE_CENTS
        )
        storm = Storm(platform.base, launch_id, travelers, size, CONCURRENCY, card_token=gateway.card_token)

        async def kill() -> None:
            platform.kill9()

        started = time.monotonic()
        await storm.run(session, fault_after=kill_after, fault=kill, stop_at_fault=True)
        killed = time.monotonic()
        orphans = await open_attempts(shared_stores.pg_dsn)  # what the crash left half done
        platform.start()
        ready = await platform.wait_ready(session)
        settling = asyncio.create_task(
            storm.settle(session, until=ready + RECOVERY_WINDOW + SLACK, pause=RETRY_PAUSE)
        )
        try:
            final = await wait_final(
                shared_stores.pg_dsn, set(orphans), until=ready + RECOVERY_WINDOW + SLACK
            )
            await settling
            all_final = await wait_all_final(shared_stores.pg_dsn, until=ready + RECOVERY_WINDOW + SLACK)
        finally:
            settling.cancel()
        books = await Books.read(shared_stores.pg_dsn, launch_id, gateway.ledger)

    report: dict[str, object] = {
        "payment_gateway": gateway.name,
        "setup_seconds": round(started - begun, 2),
        "storm": size,
        "travelers": TRAVELERS,
        "concurrency": CONCURRENCY,
        "capacity": capacity,
        "answers_before_kill": storm.answered_at_fault,
        "in_flight_at_kill": storm.in_flight_at_fault,
        "sent_before_kill": storm.sent_in_storm,
        "storm_seconds": round(killed - started, 2),
        "restart_seconds": round(ready - killed, 2),
        "orphaned_attempts": dict(collections.Counter(orphans.values())),
        "orphans_final_after_ready_s": None if final is None else round(final - ready, 2),
        "last_key_answered_after_ready_s": round(storm.settled_at() - ready, 2),
        "all_attempts_final_after_ready_s": None if all_final is None else round(all_final - ready, 2),
        "retried_keys": len(storm.retried()),
        "storm_answers": storm.counts("storm"),
        "retry_answers": storm.counts("retry"),
        "finals": storm.finals(),
        **books.summary(),
    }
    print("fault report:", json.dumps(report))
    problems = audit(books, storm, recovered_at=ready)
    if final is None or final - ready > RECOVERY_WINDOW:
        problems.insert(
            0, f"attempts the crash left open not final {RECOVERY_WINDOW:.0f} s after the restart"
        )
    assert storm.answered_at_fault == kill_after
    assert not problems, explain(problems, platform, report)
    if capacity >= size:  # every request fits: each key ends with its one booking
        assert storm.finals() == {"201": size}, explain([], platform, report)
        assert books.seats_booked == size
    else:  # sold out: a seat for every 201, a sold_out for every other key
        finals = storm.finals()
        assert set(finals) == {"201", "409 sold_out"}, finals
        assert finals["201"] == books.seats_booked == len(books.bookings) <= capacity
