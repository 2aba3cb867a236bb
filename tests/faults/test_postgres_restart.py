"""PostgreSQL stopped and started again in a storm of bookings (issue #12), on a PostgreSQL of the test's
own (the session's is the machine's shared server: never stopped).

Stopped with `pg_ctl stop -m fast` (sessions closed, transactions rolled back) and `-m immediate` (a
crash-stop: crash recovery on start). The platform keeps running; the storm goes on through the outage.
Afterwards every key without a definitive answer is retried with its key, and the books are audited as
after a kill -9; besides, no answer at all may be a 500 (an outage is 503 with Retry-After).

On the sandbox gateway (both stops), and on Stripe (localstripe, a crash-stop; audited against its
PaymentIntents) with a smaller storm (STRIPE_STORM), as localstripe shares the machine's cores.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable
from typing import Literal

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
from tests.faults.private_pg import PrivatePostgres
from tests.faults.storm import (
    CONCURRENCY,
    PRICE_CENTS,
    RETRY_PAUSE,
    SLACK,
    STORM,
    TRAVELERS,
    Storm,
    open_launch,
    until_set,
)

pytestmark = pytest.mark.faults

STOP_AFTER = 200  # answers before PostgreSQL is stopped
OUTAGE_ANSWERS = 100  # answers while it is down (each a 503) before it is started again
CAPACITY = 1000
STRIPE_STORM = 300
STRIPE_STOP_AFTER = 100
STRIPE_OUTAGE_ANSWERS = 50


@pytest.mark.parametrize(
    ("gateway", "mode"),
    [("sandbox", "fast"), ("sandbox", "immediate"), ("stripe", "immediate")],
    ids=["fast", "immediate", "stripe-immediate"],
    indirect=["gateway"],
)
async def test_postgres_stopped_and_started_mid_storm(
    private_pg: PrivatePostgres,
    shared_stores: StoreUrls,
    platforms: Callable[[StoreUrls], PlatformProcess],
    gateway: Gateway,
    mode: Literal["fast", "immediate"],
) -> None:
    size, stop_after, outage_answers = (
        (STORM, STOP_AFTER, OUTAGE_ANSWERS)
        if gateway.name == "sandbox"
        else (STRIPE_STORM, STRIPE_STOP_AFTER, STRIPE_OUTAGE_ANSWERS)
    )
    await private_pg.start()
    stores = StoreUrls(private_pg.dsn, shared_stores.mongo_url, shared_stores.redis_url)
    platform = platforms(stores)
    platform.extra_env.update(gateway.env)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        begun = time.monotonic()
        platform.start()
        await platform.wait_ready(session)
        launch_id, travelers = await open_launch(
            session, platform, capacity=CAPACITY, travelers=TRAVELERS, price_cents=PRICE_CENTS
        )
        storm = Storm(platform.base, launch_id, travelers, size, CONCURRENCY, card_token=gateway.card_token)
        stopped = asyncio.Event()
        down_from = 0

        async def stop_postgres() -> None:
            nonlocal down_from
            await private_pg.stop(mode)
            down_from = storm.answered_in_storm
            stopped.set()

        started = time.monotonic()
        storming = asyncio.create_task(
            storm.run(session, fault_after=stop_after, fault=stop_postgres, stop_at_fault=False)
        )
        settling: asyncio.Task[None] | None = None
        try:
            await until_set(stopped, storming)
            stopped_at = time.monotonic()
            await storm.answered(down_from + outage_answers)
            down_answers = storm.answered_in_storm - down_from
            await private_pg.start()
            back = time.monotonic()
            orphans = await open_attempts(private_pg.dsn)  # what the outage left half done
            await storming
            stormed = time.monotonic()
            settling = asyncio.create_task(
                storm.settle(session, until=back + RECOVERY_WINDOW + SLACK, pause=RETRY_PAUSE)
            )
            final = await wait_final(private_pg.dsn, set(orphans), until=back + RECOVERY_WINDOW + SLACK)
            await settling
            all_final = await wait_all_final(private_pg.dsn, until=back + RECOVERY_WINDOW + SLACK)
        finally:
            for task in (storming, settling):
                if task is not None:
                    task.cancel()
        books = await Books.read(private_pg.dsn, launch_id, gateway.ledger)

    report: dict[str, object] = {
        "payment_gateway": gateway.name,
        "setup_seconds": round(started - begun, 2),
        "storm": size,
        "travelers": TRAVELERS,
        "concurrency": CONCURRENCY,
        "stop_mode": mode,
        "answers_before_stop": storm.answered_at_fault,
        "answers_while_down": down_answers,
        "outage_seconds": round(back - stopped_at, 2),
        "storm_seconds": round(stormed - started, 2),
        "open_attempts_when_back": dict(collections.Counter(orphans.values())),
        "those_final_after_back_s": None if final is None else round(final - back, 2),
        "last_key_answered_after_back_s": round(storm.settled_at() - back, 2),
        "all_attempts_final_after_back_s": None if all_final is None else round(all_final - back, 2),
        "retried_keys": len(storm.retried()),
        "storm_answers": storm.counts("storm"),
        "retry_answers": storm.counts("retry"),
        "finals": storm.finals(),
        **books.summary(),
    }
    print("fault report:", json.dumps(report))
    problems = audit(books, storm, recovered_at=back)
    if final is None or final - back > RECOVERY_WINDOW:
        problems.insert(0, f"attempts open when PostgreSQL came back not final {RECOVERY_WINDOW:.0f} s later")
    assert storm.answered_at_fault == stop_after
    assert down_answers >= outage_answers or storm.sent_in_storm == size, report
    assert not problems, explain(problems, platform, report)
    assert storm.finals() == {"201": size}, explain([], platform, report)
    assert books.seats_booked == size
