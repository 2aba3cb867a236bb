"""A storm of bookings on ONE launch split across 2 and 3 nodes on the same stores (issue #13).

Each node answers a share of the requests in turn; whoever owns the launch, the launch has one seat count:
exactly `capacity` bookings accepted, each stored, the stored count equal to the confirmed bookings, both
APIs showing it, and every refusal a clean sold-out 409 or a 503 with Retry-After. A WebSocket watcher of
the launch on every node sees that final count, whichever node sold the last seat.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.cluster.cluster import NODE_NAMES, books_when_final, refusals, start_cluster, views
from tests.faults.audit import audit
from tests.faults.conftest import MakePlatform
from tests.faults.platform import StoreUrls
from tests.faults.storm import PRICE_CENTS, RETRY_PAUSE, TRAVELERS, Storm, open_agency_launch

pytestmark = pytest.mark.cluster

CAPACITY = 120
STORM = 300  # one-seat bookings, 2.5 times the seats
CONCURRENCY = 60
SETTLE = 30.0  # seconds the client goes on retrying 503s (each answer says when to retry)
WATCH = 10.0  # seconds a watcher may take to see the final count once the storm is settled


@pytest.mark.parametrize("count", [2, 3], ids=["2_nodes", "3_nodes"])
async def test_a_storm_split_across_nodes_sells_exactly_the_capacity_and_every_node_shows_it(
    shared_stores: StoreUrls, platforms: MakePlatform, count: int
) -> None:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * count + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        begun = time.monotonic()
        cluster = await start_cluster(platforms, shared_stores, session, count)
        launch_id, agency, travelers = await open_agency_launch(
            session, cluster.nodes[0], capacity=CAPACITY, travelers=TRAVELERS, price_cents=PRICE_CENTS
        )
        storm = Storm(cluster.bases, launch_id, travelers, STORM, CONCURRENCY)
        watchers = [await watch(session, base, launch_id) for base in cluster.bases]
        started = time.monotonic()
        await storm.run(session)
        stormed = time.monotonic()
        await storm.settle(session, until=stormed + SETTLE, pause=RETRY_PAUSE)
        books = await books_when_final(shared_stores.pg_dsn, launch_id, within=SETTLE)
        shown = await views(session, cluster, launch_id, agency)
        seen = await asyncio.gather(*(w.until_seats(books.seats_booked, WATCH) for w in watchers))
        for watcher in watchers:
            await watcher.ws.close()

    finals = storm.finals()
    confirmed = [b for b in books.bookings.values() if b["status"] == "confirmed"]
    report: dict[str, Any] = {
        "nodes": count,
        "setup_seconds": round(started - begun, 2),
        "storm_seconds": round(stormed - started, 2),
        "settled_after_s": round(storm.settled_at() - stormed, 2),
        "storm_answers": storm.counts("storm"),
        "retry_answers": storm.counts("retry"),
        "refusals": refusals(storm),
        "finals": finals,
        "answered_by": _answered_by(storm),
        "shown_by_nodes": shown,
        "watchers_last_seen": {n.node: w.last for n, w in zip(cluster.nodes, watchers, strict=True)},
        **books.summary(),
    }
    print("cluster report:", report)
    problems = audit(books, storm, recovered_at=started)
    accepted = finals.get("201", 0)
    if not accepted == CAPACITY == len(confirmed) == books.seats_booked:
        problems.insert(
            0,
            f"expected exactly {CAPACITY} bookings accepted, stored and counted: {accepted} answered 201, "
            f"{len(confirmed)} confirmed bookings stored, seats_booked {books.seats_booked} "
            f"({max(len(confirmed), accepted) - CAPACITY} seats overbooked)",
        )
    unclean = {
        label: n
        for label, n in storm.counts().items()
        if label not in ("201", "409 sold_out") and not label.startswith("503")
    }
    if unclean:
        problems.append(f"answers other than 201, 409 sold_out and 503 with Retry-After: {unclean}")
    if {seats for seats, _ in shown.values()} != {books.seats_booked} or len(set(shown.values())) != 1:
        problems.append(f"the nodes' APIs disagree with PostgreSQL ({books.seats_booked} seats): {shown}")
    for node, watcher, ok in zip(cluster.nodes, watchers, seen, strict=True):
        if not ok:
            problems.append(
                f"the WebSocket watcher on {node.node} did not see seats_booked {books.seats_booked} within "
                f"{WATCH:.0f} s of the end (last occupancy seen: {watcher.last})"
            )
    unnamed = {node: n for node, n in report["answered_by"].items() if node not in NODE_NAMES[:count]}
    if unnamed:
        problems.append(f"answers without X-Astro-Node naming one of the nodes (by header): {unnamed}")
    problems += [f"500: {error}" for error in cluster.errors()]
    assert not problems, cluster.explain(problems, report)


@dataclass
class Watcher:
    """A WebSocket subscribed to the launch's channel on one node; `last` the seats it last saw."""

    ws: aiohttp.ClientWebSocketResponse
    last: int | None

    async def until_seats(self, seats: int, limit: float) -> bool:
        """Read events until an occupancy of `seats` (True) or `limit` seconds pass (False)."""
        if self.last == seats:  # the snapshot already had it
            return True
        try:
            async with asyncio.timeout(limit):
                while True:
                    frame = await self.ws.receive_json()
                    if frame.get("type") == "event" and frame.get("event") == "occupancy":
                        self.last = frame["data"]["seats_booked"]
                        if self.last == seats:
                            return True
        except TimeoutError:
            return False


async def watch(session: aiohttp.ClientSession, base: str, launch_id: str) -> Watcher:
    """A watcher of launch:<id> on the node at `base` (web/ws: subscribe, then a snapshot, then events)."""
    ws = await session.ws_connect(base + "/ws")
    await ws.send_json({"type": "subscribe", "channel": f"launch:{launch_id}"})
    first = await ws.receive_json(timeout=WATCH)
    assert first["type"] == "subscribed", first
    return Watcher(ws, first["snapshot"]["launch"]["seats_booked"])


def _answered_by(storm: Storm) -> dict[str, int]:
    """How many answers each node gave (its X-Astro-Node header; 'none' without the header)."""
    counts: dict[str, int] = {}
    for order in storm.orders:
        for answer in order.answers:
            if answer.status is not None:
                key = answer.node or "none"
                counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
