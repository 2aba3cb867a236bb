"""`python -m bench nodes`: the hot-launch and spread loads on `--workers 1`, then on `--workers 2`.

Both platforms run on the same stores (fresh data for each load), `python run.py` with ASTRO_WORKERS=N:
its parent starts N node processes on one port (SO_REUSEPORT) and the load generator's connections
are spread over them by the kernel. Each load's bookings are audited in PostgreSQL, exactly: seats
sold over capacity (by the stored count and by the confirmed bookings, which can differ when two
nodes each write their own count), the stored count against the bookings, and acknowledged bookings
against stored rows. One line per platform and load, then the `nodes` line: 2 workers / 1 worker.
"""

from __future__ import annotations

import os
from typing import Any, Final

import aiohttp
import asyncpg

from bench.common import progress
from bench.goals import line, ratio
from bench.session import MAX_CAPACITY, Bench, insert_launches, make_world
from bench.throughput import MAX_RATE

WORKERS: Final = (1, 2)
LOADS: Final = ("hot", "spread")


async def audit(dsn: str, launch_ids: list[str], acked: int) -> dict[str, Any]:
    """Overbooking of the run's launches from PostgreSQL, counted exactly (no sampling)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT l.capacity, l.seats_booked,
                      COALESCE(sum(b.seats) FILTER (WHERE b.status = 'confirmed'), 0)::int AS confirmed_seats,
                      count(b.id)::int AS booking_rows
               FROM launches l LEFT JOIN bookings b ON b.launch_id = l.id
               WHERE l.id = ANY($1::text[]) GROUP BY l.id""",
            launch_ids,
        )
    finally:
        await conn.close()
    sold_over = sum(max(0, r["confirmed_seats"] - r["capacity"]) for r in rows)
    counted_over = sum(max(0, r["seats_booked"] - r["capacity"]) for r in rows)
    stored = sum(r["booking_rows"] for r in rows)
    return {
        # Seats of confirmed bookings beyond the launch's capacity: the overbooking a traveler meets.
        "overbooked_seats": max(sold_over, counted_over),
        "confirmed_seats_over_capacity": sold_over,
        "seats_booked_over_capacity": counted_over,
        # seats_booked (the count the launch actors write) against the confirmed bookings' seats.
        "count_mismatch_seats": sum(abs(r["seats_booked"] - r["confirmed_seats"]) for r in rows),
        "launches_overbooked": sum(1 for r in rows if r["confirmed_seats"] > r["capacity"]),
        "bookings_in_db": stored,
        "acked_201": acked,
        "acked_not_in_db": max(0, acked - stored),
        "launches_checked": len(rows),
    }


async def _one(bench: Bench, workers: int, load: str) -> dict[str, Any]:
    opts = bench.opts
    await bench.fresh(f"nodes-w{workers}-{load}")
    dsn = bench.stores.pg_dsn
    platform = bench.platform(workers=workers, ASTRO_NODE="bench")
    async with bench.running(platform):
        nodes = list(platform.nodes)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            world = await make_world(session, platform, bench.stores, opts.travelers)
        if load == "hot":
            count = int(opts.seconds * MAX_RATE / MAX_CAPACITY) + 3
            launches = await insert_launches(dsn, world, tag="NHOT", count=count, capacity=MAX_CAPACITY)
            mode = "sequential"
        else:
            launches = await insert_launches(
                dsn, world, tag="NSPR", count=opts.spread_launches, capacity=MAX_CAPACITY
            )
            mode = "spread"
        progress(f"nodes/{load}: --workers {workers} ({', '.join(nodes)}), {opts.clients} connections")
        figures = await bench.bookings(platform.base_url, world.tokens, launches, mode=mode)
    figures["audit"] = await audit(dsn, launches, figures["good"])
    figures["workers"] = workers
    figures["nodes_answering"] = nodes
    progress(f"  audit: {figures['audit']}")
    return figures


async def run(bench: Bench) -> list[dict[str, Any]]:
    """A line per platform and load, then the `nodes` line (ratios 2 workers / 1 worker)."""
    runs: dict[tuple[int, str], dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for workers in WORKERS:
        for load in LOADS:
            got = runs[workers, load] = await _one(bench, workers, load)
            checks = {
                "overbooked_seats": got["audit"]["overbooked_seats"],
                "count_mismatch_seats": got["audit"]["count_mismatch_seats"],
                "acked_not_in_db": got["audit"]["acked_not_in_db"],
                "http_5xx": got["http_5xx"],
            }
            out.append(
                line(
                    f"nodes-{load}-w{workers}",
                    figure=got["per_s"],
                    unit="bookings/s",
                    met=all(v == 0 for v in checks.values()),
                    checks=checks,
                    generator=got["generator"],
                    details={"platform": got, "clients": bench.opts.clients, "seconds": bench.opts.seconds},
                )
            )
    ratios = {load: ratio(runs[2, load]["per_s"], runs[1, load]["per_s"]) for load in LOADS}
    over = {f"{load}_w{w}": runs[w, load]["audit"]["overbooked_seats"] for w in WORKERS for load in LOADS}
    mismatch = {
        f"{load}_w{w}_count_mismatch": runs[w, load]["audit"]["count_mismatch_seats"]
        for w in WORKERS
        for load in LOADS
    }
    checks = {**{f"overbooked_{k}": v for k, v in over.items()}, **mismatch}
    out.append(
        line(
            "nodes",
            figure=ratios["hot"],
            unit="x (hot bookings/s, 2 workers / 1)",
            met=all(v == 0 for v in checks.values()),
            checks=checks,
            reference=runs[1, "hot"]["per_s"],
            reference_is="hot bookings/s with --workers 1",
            ratio_to_reference=ratios["hot"],
            gap="" if all(v == 0 for v in checks.values()) else "seats overbooked with several workers",
            details={
                "bookings_per_s": {f"{load}_w{w}": runs[w, load]["per_s"] for w in WORKERS for load in LOADS},
                "ratio_2_to_1": ratios,
                "cores": bench_cores(),
            },
        )
    )
    return out


def bench_cores() -> int:
    return len(os.sched_getaffinity(0))
