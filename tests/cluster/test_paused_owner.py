"""The node owning a launch is paused (SIGSTOP) past its lease mid-storm, the other node takes over, then
the paused one goes on (SIGCONT) with requests it had taken before the pause (issue #13).

Its epoch is stale by then: whatever it had under way must not commit. The seats stay exact (seats_booked
== confirmed bookings <= capacity), and each request sent to it before the pause is either stored and
answered 201 or answered with a clean error -- never stored without its payment (audited).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import pytest

from tests.cluster.cluster import (
    SERVED,
    books_when_final,
    first_served_after,
    lease_of,
    owner_of,
    refusals,
    start_cluster,
)
from tests.faults.audit import audit
from tests.faults.conftest import MakePlatform
from tests.faults.platform import PlatformProcess, StoreUrls
from tests.faults.storm import PRICE_CENTS, RETRY_PAUSE, TRAVELERS, Storm, open_agency_launch

pytestmark = pytest.mark.cluster

LEASE = 2.0  # ASTRO_LEASE_SECONDS of both nodes: a short lease keeps the pause short
CAPACITY = 120
STORM = 300
CONCURRENCY = 40
PAUSE_AFTER = 40  # answers before the owner is paused
PAUSE_AT_LEAST = 2 * LEASE  # the owner stays stopped at least this long, well past its lease
TAKEOVER_BOUND = LEASE + 5.0  # the other node answers a 201 within this of the pause
PROBE_PAUSE = 0.2  # seconds between the new bookings sent to the other node during the pause
SETTLE = 45.0


async def test_a_paused_owner_cannot_commit_after_another_node_took_its_launch(
    shared_stores: StoreUrls, platforms: MakePlatform
) -> None:
    dsn = shared_stores.pg_dsn
    problems: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2 * CONCURRENCY)) as session:
        cluster = await start_cluster(platforms, shared_stores, session, 2, ASTRO_LEASE_SECONDS=str(LEASE))
        launch_id, _, travelers = await open_agency_launch(
            session, cluster.nodes[1], capacity=CAPACITY, travelers=TRAVELERS, price_cents=PRICE_CENTS
        )
        storm = Storm(cluster.bases, launch_id, travelers, STORM, CONCURRENCY)
        paused: dict[str, Any] = {}

        async def pause_owner() -> None:
            owner = await owner_of(cluster, launch_id, problems)
            paused["lease"] = await lease_of(dsn, launch_id)
            owner.pause()
            paused["node"], paused["at"] = owner, time.monotonic()
            (other,) = cluster.others(owner)
            storm.bases = [other.base]  # the client's new requests go to the other node
            paused["task"] = asyncio.create_task(
                _book_through_then_resume(session, storm, owner, other, paused)
            )

        started = time.monotonic()
        await storm.run(session, fault_after=PAUSE_AFTER, fault=pause_owner, stop_at_fault=False)
        await paused["task"]
        owner: PlatformProcess = paused["node"]
        (other,) = cluster.others(owner)
        storm.bases = cluster.bases  # after SIGCONT the client may talk to either node again
        await storm.settle(session, until=time.monotonic() + SETTLE, pause=RETRY_PAUSE)
        books = await books_when_final(dsn, launch_id, within=SETTLE)
        lease_after = await lease_of(dsn, launch_id)

    before = [
        o
        for o in storm.orders
        if o.answers and o.answers[0].base == owner.base and o.answers[0].sent < paused["at"]
    ]
    held = [o for o in before if o.answers[0].at > paused["at"]]  # in flight at the owner when it stopped
    served = first_served_after(storm, paused["at"], [other.base])
    report: dict[str, Any] = {
        "owner": owner.node,
        "lease_at_pause": str(paused["lease"]),
        "lease_after": str(lease_after),
        "paused_s": round(paused["resumed"] - paused["at"], 2),
        "first_served_by_other_after_pause_s": None if served is None else round(served - paused["at"], 2),
        "in_flight_at_owner_when_paused": len(held),
        "their_answers": _labels(held),
        "storm_answers": storm.counts("storm"),
        "retry_answers": storm.counts("retry"),
        "refusals": refusals(storm),
        "finals": storm.finals(),
        "setup_to_pause_s": round(paused["at"] - started, 2),
        **books.summary(),
    }
    print("cluster report:", report)
    problems += audit(books, storm, recovered_at=paused["resumed"])
    confirmed = sum(1 for b in books.bookings.values() if b["status"] == "confirmed")
    accepted = storm.finals().get("201", 0)
    if not accepted == confirmed == books.seats_booked or confirmed > CAPACITY:
        problems.insert(
            0,
            f"expected the paused owner's late commits refused and the seats exact: {accepted} answered 201, "
            f"{confirmed} confirmed bookings, seats_booked {books.seats_booked}, capacity {CAPACITY} "
            f"({max(confirmed - CAPACITY, 0)} seats overbooked)",
        )
    if served is None or served - paused["at"] > TAKEOVER_BOUND:
        problems.append(
            f"{other.node} decided no booking (201, sold_out) {TAKEOVER_BOUND:.0f} s into the pause"
        )
    old = paused["lease"]
    if (
        lease_after is None
        or lease_after.node != other.node
        or (old is not None and lease_after.epoch <= old.epoch)
    ):
        problems.append(
            f"expected {other.node} to own the launch under a newer epoch than {old}: {lease_after}"
        )
    problems += [f"500: {error}" for error in cluster.errors()]
    assert not problems, cluster.explain(problems, report)
    assert held, f"no request was in flight at {owner.node} when it was paused: the test proved nothing"


async def _book_through_then_resume(
    session: aiohttp.ClientSession,
    storm: Storm,
    owner: PlatformProcess,
    other: PlatformProcess,
    paused: dict[str, Any],
) -> None:
    """While the owner is stopped, new bookings go to the other node until one is decided (201 or sold
    out: it took the launch over) or the bound passes; the owner is continued once that happened and its
    lease is long past (PAUSE_AT_LEAST)."""
    deadline = paused["at"] + TAKEOVER_BOUND
    served = asyncio.Event()

    async def probe() -> None:
        answer = await storm.send(session, storm.add_order(), "storm", other.base)
        if answer.label() in SERVED:  # it decides the launch's bookings: it took it over
            served.set()

    # a new booking every PROBE_PAUSE s, each on its own: one stuck (forwarded to the stopped owner while
    # its lease lasted) does not hold back those sent after the lease expired
    probes: list[asyncio.Task[None]] = []
    while time.monotonic() < deadline and not served.is_set():
        probes.append(asyncio.create_task(probe()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(served.wait(), PROBE_PAUSE)
    for task in probes:  # an unanswered probe keeps no answer: the settling retries its key
        task.cancel()
    await asyncio.gather(*probes, return_exceptions=True)
    await asyncio.sleep(max(0.0, paused["at"] + PAUSE_AT_LEAST - time.monotonic()))  # the fault's length
    owner.resume()
    paused["resumed"] = time.monotonic()


def _labels(orders: list[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for order in orders:
        label = order.answers[0].label()
        found[label] = found.get(label, 0) + 1
    return found
