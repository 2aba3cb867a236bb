"""`kill -9` of the node owning a launch in a storm split across two nodes (issue #13).

The other node serves the launch again within the lease + 5 s of the kill (its first 201 after it), nothing
is overbooked, nothing acknowledged is lost, and every key left without an answer is resolved when the
client retries it, with its key, through the surviving node.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from tests.cluster.cluster import (
    LEASE_SECONDS,
    TAKEOVER_SLACK,
    first_served_after,
    lease_of,
    owner_of,
    refusals,
    start_cluster,
)
from tests.faults.audit import RECOVERY_WINDOW, Books, audit, open_attempts, wait_final
from tests.faults.conftest import MakePlatform
from tests.faults.platform import PlatformProcess, StoreUrls
from tests.faults.storm import PRICE_CENTS, RETRY_PAUSE, SLACK, TRAVELERS, Storm, open_agency_launch

pytestmark = pytest.mark.cluster

CAPACITY = 120
STORM = 300
CONCURRENCY = 60
KILL_AFTER = 80  # answers before the owner is killed


async def test_kill_9_of_the_owner_mid_storm_the_other_node_takes_over(
    shared_stores: StoreUrls, platforms: MakePlatform
) -> None:
    dsn = shared_stores.pg_dsn
    problems: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2 * CONCURRENCY)) as session:
        cluster = await start_cluster(platforms, shared_stores, session, 2)
        launch_id, _, travelers = await open_agency_launch(
            session, cluster.nodes[1], capacity=CAPACITY, travelers=TRAVELERS, price_cents=PRICE_CENTS
        )
        storm = Storm(cluster.bases, launch_id, travelers, STORM, CONCURRENCY)
        killed: dict[str, Any] = {}

        async def kill_owner() -> None:
            owner = await owner_of(cluster, launch_id, problems)
            killed["lease"] = await lease_of(dsn, launch_id)
            owner.kill9()
            killed["node"], killed["at"] = owner, time.monotonic()

        started = time.monotonic()
        await storm.run(session, fault_after=KILL_AFTER, fault=kill_owner, stop_at_fault=True)
        owner: PlatformProcess = killed["node"]
        (survivor,) = cluster.others(owner)
        orphans = await open_attempts(dsn)  # what the kill left half done
        storm.bases = [survivor.base]  # the client retries, with the same keys, through the living node
        until = killed["at"] + RECOVERY_WINDOW + SLACK
        await storm.settle(session, until=until, pause=RETRY_PAUSE)
        final = await wait_final(dsn, set(orphans), until=until)
        books = await Books.read(dsn, launch_id)
        lease_after = await lease_of(dsn, launch_id)

    served = first_served_after(storm, killed["at"], [survivor.base])
    takeover = None if served is None else served - killed["at"]
    report: dict[str, Any] = {
        "owner": owner.node,
        "lease_at_kill": str(killed["lease"]),
        "lease_after": str(lease_after),
        "answers_before_kill": storm.answered_at_fault,
        "in_flight_at_kill": storm.in_flight_at_fault,
        "first_served_after_kill_s": None if takeover is None else round(takeover, 2),
        "last_key_answered_after_kill_s": round(storm.settled_at() - killed["at"], 2),
        "orphaned_attempts": len(orphans),
        "orphans_final_after_kill_s": None if final is None else round(final - killed["at"], 2),
        "storm_answers": storm.counts("storm"),
        "retry_answers": storm.counts("retry"),
        "refusals": refusals(storm),
        "finals": storm.finals(),
        "setup_to_kill_s": round(killed["at"] - started, 2),
        **books.summary(),
    }
    print("cluster report:", report)
    problems += audit(books, storm, recovered_at=killed["at"] + LEASE_SECONDS)
    bound = LEASE_SECONDS + TAKEOVER_SLACK
    if takeover is None or takeover > bound:
        problems.insert(
            0,
            f"{survivor.node} did not serve the launch within lease + {TAKEOVER_SLACK:.0f} s = {bound:.0f} s "
            f"of the kill (first 201 or sold_out after it: {report['first_served_after_kill_s']} s)",
        )
    confirmed = sum(1 for b in books.bookings.values() if b["status"] == "confirmed")
    accepted = storm.finals().get("201", 0)
    if not accepted == confirmed == books.seats_booked <= CAPACITY or confirmed > CAPACITY:
        problems.insert(
            0,
            f"expected every 201 stored and nothing overbooked: {accepted} answered 201, {confirmed} "
            f"confirmed bookings, seats_booked {books.seats_booked}, capacity {CAPACITY} "
            f"({max(confirmed - CAPACITY, 0)} seats overbooked)",
        )
    if lease_after is None or lease_after.node != survivor.node:
        problems.append(
            f"expected {survivor.node} to hold the launch's lease after the takeover: {lease_after}"
        )
    problems += [f"500: {error}" for error in cluster.errors()]
    assert not problems, cluster.explain(problems, report)
