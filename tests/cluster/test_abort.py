"""The agency aborts a launch through node A while node B takes a storm of bookings for it (issue #13).

Once the abort has answered 200 nothing more is accepted: no 201 to a request sent after it, no booking
stored later than it, the launch never leaves `aborted`, and every booking accepted before it is cancelled
with its full refund -- the money audited against the sandbox gateway's ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.cluster.cluster import books_when_final, refusals, start_cluster, views
from tests.faults.audit import FINAL_ANSWERS, audit
from tests.faults.conftest import MakePlatform
from tests.faults.platform import StoreUrls
from tests.faults.storm import PRICE_CENTS, RETRY_PAUSE, TRAVELERS, Storm, open_agency_launch

pytestmark = pytest.mark.cluster

CAPACITY = 1000  # never sold out: only the abort refuses
STORM = 300
CONCURRENCY = 30
ABORT_AFTER = 60  # answers before the abort is sent
SETTLE = 30.0
REFUSED = "409 launch_not_bookable"  # the answer to a booking of an aborted launch


async def test_no_booking_is_accepted_on_one_node_after_an_abort_on_another(
    shared_stores: StoreUrls, platforms: MakePlatform
) -> None:
    dsn = shared_stores.pg_dsn
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY + 10)) as session:
        cluster = await start_cluster(platforms, shared_stores, session, 2)
        node_a, node_b = cluster.nodes
        launch_id, agency, travelers = await open_agency_launch(
            session, node_a, capacity=CAPACITY, travelers=TRAVELERS, price_cents=PRICE_CENTS
        )
        storm = Storm(node_b.base, launch_id, travelers, STORM, CONCURRENCY)
        abort: dict[str, Any] = {}
        statuses: list[tuple[float, str]] = []  # the stored status, polled from the abort's answer on
        over = asyncio.Event()

        async def abort_on_a() -> None:
            abort["sent"] = time.monotonic()
            async with session.post(
                f"{node_a.base}/api/agency/launches/{launch_id}/status",
                json={"status": "aborted", "reason": "cluster test"},
                headers={"Authorization": f"Bearer {agency}"},
            ) as resp:
                abort["status"], abort["body"] = resp.status, await resp.json()
            abort["answered"] = time.monotonic()
            abort["db_time"] = await _db_now(dsn)  # later than the abort's commit
            watching.append(asyncio.create_task(_watch_status(dsn, launch_id, statuses, over)))

        watching: list[asyncio.Task[None]] = []
        started = time.monotonic()
        await storm.run(session, fault_after=ABORT_AFTER, fault=abort_on_a, stop_at_fault=False)
        stormed = time.monotonic()
        await storm.settle(session, until=stormed + SETTLE, pause=RETRY_PAUSE)
        over.set()
        await asyncio.gather(*watching)
        refunds_paid = await _refunds_paid(dsn, launch_id, until=time.monotonic() + SETTLE)
        books = await books_when_final(dsn, launch_id, within=SETTLE)
        late = await _bookings_after(dsn, launch_id, abort["db_time"])
        shown = await views(session, cluster, launch_id, agency)

    answers = [a for o in storm.orders for a in o.answers]
    accepted_after = [a for a in answers if a.status == 201 and a.sent > abort["answered"]]
    by_status: dict[str, int] = {}
    for b in books.bookings.values():
        label = f"{b['status']} {b['cancel_reason'] or ''}".strip()
        by_status[label] = by_status.get(label, 0) + 1
    report: dict[str, Any] = {
        "abort_answer": (abort.get("status"), str(abort.get("body"))[:200]),
        "abort_seconds": round(abort["answered"] - abort["sent"], 3),
        "storm_seconds": round(stormed - started, 2),
        "storm_answers": storm.counts("storm"),
        "retry_answers": storm.counts("retry"),
        "refusals": refusals(storm),
        "finals": storm.finals(),
        "bookings_by_status": by_status,
        "refunds_by_status": refunds_paid,
        "statuses_seen_after_abort": sorted({s for _, s in statuses}),
        "shown_by_nodes": shown,
        **books.summary(),
    }
    print("cluster report:", report)
    problems = audit(books, storm, recovered_at=started, finals=(*FINAL_ANSWERS, REFUSED))
    if abort.get("status") != 200:
        problems.insert(0, f"the abort through {node_a.node} answered {abort.get('status')}: {abort['body']}")
    if accepted_after:
        problems.insert(
            0, f"{len(accepted_after)} booking(s) answered 201 to requests sent after the abort's 200"
        )
    if late:
        problems.insert(0, f"{len(late)} booking(s) stored after the abort committed, e.g. {late[:3]}")
    confirmed = [b["id"] for b in books.bookings.values() if b["status"] == "confirmed"]
    if confirmed:
        problems.insert(
            0, f"{len(confirmed)} booking(s) of the aborted launch still confirmed (charged, never refunded)"
        )
    unrefunded = [
        b["id"]
        for b in books.bookings.values()
        if b["status"] == "cancelled"
        and (b["cancel_reason"] != "launch_aborted" or b["refund_cents"] != b["total_cents"])
    ]
    if unrefunded:
        problems.append(
            f"{len(unrefunded)} booking(s) cancelled without the abort's full refund: {unrefunded[:5]}"
        )
    flipped = sorted({s for _, s in statuses if s != "aborted"})
    if flipped:
        problems.insert(0, f"the aborted launch's stored status became {flipped} after the abort")
    if set(shown.values()) != {(books.seats_booked, "aborted")}:
        problems.append(
            f"the nodes' APIs do not both show the aborted launch ({books.seats_booked} seats): {shown}"
        )
    if books.captured_cents != books.refunded_cents:
        problems.append(
            f"captured {books.captured_cents} cents, refunded {books.refunded_cents}: not all refunded"
        )
    problems += [f"500: {error}" for error in cluster.errors()]
    assert not problems, cluster.explain(problems, report)
    assert ABORT_AFTER <= len(books.bookings) < STORM, report  # the abort really fell mid-storm


async def _refunds_paid(dsn: str, launch_id: str, *, until: float) -> dict[str, int]:
    """The launch's refunds by status once none is pending (the abort pays them after its commit), or as
    they stand at `until` (polled: the database is the only witness)."""
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            rows = await conn.fetch(
                """SELECT t.status, count(*) AS n
                   FROM traveler_payments t JOIN bookings b ON b.id = t.booking_id
                   WHERE b.launch_id = $1 AND t.kind = 'refund' GROUP BY t.status""",
                launch_id,
            )
            found = {r["status"]: r["n"] for r in rows}
            if not found.get("pending") or time.monotonic() > until:
                return found
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


async def _db_now(dsn: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT clock_timestamp()")
    finally:
        await conn.close()


async def _bookings_after(dsn: str, launch_id: str, moment: Any) -> list[str]:
    """The launch's bookings stored (created) after `moment`."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id FROM bookings WHERE launch_id = $1 AND created_at > $2 ORDER BY created_at",
            launch_id,
            moment,
        )
    finally:
        await conn.close()
    return [r["id"] for r in rows]


async def _watch_status(dsn: str, launch_id: str, seen: list[tuple[float, str]], over: asyncio.Event) -> None:
    """The launch's stored status, read every 50 ms until `over` (the database is the only witness of a
    flip back: no event announces a stale node's overwrite)."""
    conn = await asyncpg.connect(dsn)
    try:
        while not over.is_set():
            status = await conn.fetchval("SELECT status FROM launches WHERE id = $1", launch_id)
            seen.append((time.monotonic(), status))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(over.wait(), 0.05)
    finally:
        await conn.close()
