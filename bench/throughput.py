"""Throughput scenarios: `hot` (with `pg-tx`), `spread` and `list`, each against a reference in the same run.

hot     one-seat bookings by 256 connections on one launch at a time (launches of 1000 seats filled in
        turn), on the baseline server first, then on the ceiling, then on the platform; PostgreSQL's
        commit counter of the bench database is read around the platform's run (`pg-tx`).
spread  the same spread at random over 1,000 launches, against the bare aiohttp JSON endpoint and the
        ceiling on 1,000 launches of its own.

The ceiling (bench/ceiling.py: group commit, no auth, no logs) books launches of its own, with the same
generator, connections and seconds; its bookings are audited like the platform's.
list    GET /api/booking/launches (the cached public list, 100 launches, 50 a page), against the same.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import aiohttp
import asyncpg

from bench.common import progress, seat_audit
from bench.goals import ceiling_summary, line, ratio
from bench.load import get_load
from bench.session import MAX_CAPACITY, Bench, World, insert_launches, make_world

# Launches made for a sequential run: enough for this many bookings/s over the whole run.
PG_TX_GOAL: Final = 0.03  # issue 17: PostgreSQL transactions per accepted booking
MAX_RATE: Final = 6000
CEILING_MAX_RATE: Final = 40000  # the ceiling stored about 11,000/s in the run
# PostgreSQL (15) publishes a busy backend's counters when it goes idle, at the latest after 10 s.
PG_STATS_LAG: Final = 11.0
BACKGROUND_WINDOW: Final = 5.0
SETTLE: Final = 2.0
OTHER_COMMITS: Final = (
    "the platform's background loops (sync worker, job runner, notification dispatcher sending the "
    "booking e-mails, metric sampler), its shutdown, and autovacuum/analyze of the bench tables; "
    "nothing else uses the astro_bench database"
)


async def audit(dsn: str, launch_ids: list[str], acked: int) -> dict[str, Any]:
    """Seat audit from the database; wrk does not keep booking ids, so answers are compared by count."""
    found = await seat_audit(dsn, launch_ids, [])
    stored = found.pop("db_bookings_not_acked")  # with no ids given: every booking row of the launches
    found.pop("acked_not_in_db")
    found.update(
        bookings_in_db=stored,
        acked_201=acked,
        acked_not_in_db=max(0, acked - stored),
        # answered after the load generator stopped listening (at most one per connection)
        stored_not_acked=max(0, stored - acked),
        **await _sandbox(dsn, launch_ids),
    )
    return found


async def _sandbox(dsn: str, launch_ids: list[str]) -> dict[str, int]:
    """The payment work the sandbox gateway saw for these bookings: the baseline and the platform both
    authorize then capture each one (the platform captures off the request path, so a booking may still
    be authorized only when its run ends: recovery captures it)."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            """SELECT count(p.ref) FILTER (WHERE p.state = 'captured')::int AS captured,
                      count(*) FILTER (WHERE p.ref IS NULL)::int AS without_payment
               FROM bookings b LEFT JOIN sandbox_payments p ON p.booking_id = b.id
               WHERE b.launch_id = ANY($1::text[])""",
            launch_ids,
        )
    finally:
        await conn.close()
    return {"sandbox_captured": row["captured"], "sandbox_without_payment": row["without_payment"]}


async def ceiling_audit(dsn: str, launch_ids: list[str], acked: int, connections: int) -> dict[str, Any]:
    """The ceiling's bookings (table ceiling_bookings) against its 201 answers and the launches' seats.

    wrk drops the answers still in flight when its time is up (at most one per connection): those
    bookings are stored but not counted as answered."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT l.capacity, l.seats_booked, COALESCE(sum(c.seats), 0)::int AS stored_seats,
                      count(c.id)::int AS booking_rows
               FROM launches l LEFT JOIN ceiling_bookings c ON c.launch_id = l.id
               WHERE l.id = ANY($1::text[]) GROUP BY l.id""",
            launch_ids,
        )
    finally:
        await conn.close()
    stored = sum(r["booking_rows"] for r in rows)
    over = sum(max(0, max(r["seats_booked"], r["stored_seats"]) - r["capacity"]) for r in rows)
    return {
        "overbooked_seats": over,
        "count_mismatch_seats": sum(abs(r["seats_booked"] - r["stored_seats"]) for r in rows),
        "bookings_in_db": stored,
        "acked_201": acked,
        "acked_not_in_db": max(0, acked - stored),
        "stored_not_acked": max(0, stored - acked),
        "stored_not_acked_beyond_in_flight": max(0, stored - acked - connections),
        "launches_checked": len(rows),
    }


def _ceiling_checks(found: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "overbooked_seats",
        "count_mismatch_seats",
        "acked_not_in_db",
        "stored_not_acked_beyond_in_flight",
    )
    return {f"ceiling_{k}": found[k] for k in keys}


async def ceiling_run(bench: Bench, world: World, *, tag: str, count: int, mode: str) -> dict[str, Any]:
    """The ceiling server on launches of its own: the same load as the platform's, audited."""
    dsn = bench.stores.pg_dsn
    launches = await insert_launches(dsn, world, tag=tag, count=count, capacity=MAX_CAPACITY)
    async with bench.running(bench.ceiling()) as ceiling:
        progress(f"ceiling: {bench.opts.clients} connections, {mode} over {len(launches)} launches")
        figures = await bench.bookings(ceiling.base_url, world.tokens, launches, mode=mode, reference=True)
        async with (
            aiohttp.ClientSession() as session,
            session.get(ceiling.base_url + "/stats") as resp,
        ):
            written = await resp.json()
    figures["writer"] = written
    if written.get("bookings"):
        figures["transactions_per_booking"] = round(written["transactions"] / written["bookings"], 4)
    figures["audit"] = await ceiling_audit(dsn, launches, figures["good"], bench.opts.clients)
    if mode == "sequential" and figures.get("launches_used", 0) > len(launches):
        progress(f"  the ceiling sold every seat of its {len(launches)} launches: its figure is a floor")
    progress(f"  ceiling audit: {figures['audit']}")
    return figures


def _checks(found: dict[str, Any], *extra: dict[str, Any]) -> dict[str, Any]:
    checks = {
        "overbooked_seats": found["overbooked_seats"],
        "acked_not_in_db": found["acked_not_in_db"],
        "bookings_without_charge": found["bookings_without_charge"],
    }
    for more in extra:
        checks.update(more)
    return checks


def _correct(checks: dict[str, Any]) -> bool:
    return all(v == 0 for v in checks.values())


async def _xact(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    return {"commit": int(row["xact_commit"]), "rollback": int(row["xact_rollback"])}


async def _pg_facts(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        notes = await conn.fetch("SELECT status, count(*) AS n FROM notifications GROUP BY status")
        return {
            "synchronous_commit": await conn.fetchval("SHOW synchronous_commit"),
            "notifications_by_status": {r["status"]: r["n"] for r in notes},
        }
    finally:
        await conn.close()


def _launch_count(seconds: float, rate: int = MAX_RATE) -> int:
    return int(seconds * rate / MAX_CAPACITY) + 3


async def hot(bench: Bench, *, with_baseline: bool = True) -> list[dict[str, Any]]:
    """The `hot` line (unless with_baseline is False) and the `pg-tx` line, from one platform run."""
    opts = bench.opts
    await bench.fresh("hot" if with_baseline else "pg-tx")
    dsn = bench.stores.pg_dsn
    platform = bench.platform()
    async with bench.running(platform):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            world = await make_world(session, platform, bench.stores, opts.travelers)
        count = _launch_count(opts.seconds)
        mine = await insert_launches(dsn, world, tag="HOTP", count=count, capacity=MAX_CAPACITY)
        theirs = await insert_launches(dsn, world, tag="HOTB", count=count, capacity=MAX_CAPACITY)
        set_up = time.monotonic()
        base: dict[str, Any] | None = None
        if with_baseline:
            async with bench.running(bench.baseline()) as baseline:
                progress(f"hot/baseline: {opts.clients} connections, launches of 1000 seats in turn")
                base = await bench.bookings(
                    baseline.base_url, world.tokens, theirs, mode="sequential", reference=True
                )
            base["audit"] = await audit(dsn, theirs, base["good"])
        enough = _launch_count(opts.seconds, CEILING_MAX_RATE)
        top = await ceiling_run(bench, world, tag="HOTC", count=enough, mode="sequential")
        # the set-up's commits reach pg_stat_database before the count starts
        await asyncio.sleep(max(0.0, PG_STATS_LAG - (time.monotonic() - set_up)))
        x0 = await _xact(dsn)
        await asyncio.sleep(BACKGROUND_WINDOW)
        x1 = await _xact(dsn)
        progress(f"hot/platform: {opts.clients} connections, launches of 1000 seats in turn")
        mine_fig = await bench.bookings(platform.base_url, world.tokens, mine, mode="sequential")
        await asyncio.sleep(SETTLE)
        await bench.stop(platform)  # its backends exit and publish every commit they counted
        x2 = await _xact(dsn)
    mine_fig["audit"] = await audit(dsn, mine, mine_fig["good"])
    facts = await _pg_facts(dsn)
    out = []
    if base is not None:
        out.append(_hot_line(bench, mine_fig, base, top, facts))
    out.append(_pg_tx_line(bench, mine_fig, top, x0, x1, x2, facts))
    return out


def _hot_line(
    bench: Bench, mine: dict[str, Any], base: dict[str, Any], top: dict[str, Any], facts: dict[str, Any]
) -> dict[str, Any]:
    rate = ratio(mine["per_s"], base["per_s"])
    of_top = ratio(mine["per_s"], top["per_s"])
    checks = _checks(
        mine["audit"],
        {"baseline_overbooked_seats": base["audit"]["overbooked_seats"]},
        _ceiling_checks(top["audit"]),
    )
    checks["http_5xx"] = mine["http_5xx"]
    p99 = mine["p99_ms"]
    met = (
        rate is not None
        and rate >= 5
        and of_top is not None
        and of_top >= 0.25
        and p99 is not None
        and p99 <= 50
        and _correct(checks)
    )
    gaps = []
    if rate is None or rate < 5:
        gaps.append(f"ratio {rate} (goal 5; {round(5 / rate, 2) if rate else '?'}x short)")
    if of_top is None or of_top < 0.25:
        gaps.append(f"{of_top} of the ceiling (goal 0.25)")
    if p99 is None or p99 > 50:
        gaps.append(f"p99 {p99} ms (goal 50 ms)")
    if not _correct(checks):
        gaps.append("a correctness check is not 0")
    return line(
        "hot",
        figure=mine["per_s"],
        unit="bookings/s",
        reference=base["per_s"],
        reference_is="FOR UPDATE baseline, bookings/s",
        ratio_to_reference=rate,
        ceiling=ceiling_summary(top),
        ratio_to_ceiling=of_top,
        met=met,
        checks=checks,
        gap="; ".join(gaps),
        generator=mine["generator"],
        details={
            "platform": mine,
            "baseline": base,
            "ceiling": top,
            "clients": bench.opts.clients,
            "seconds": bench.opts.seconds,
            "travelers": bench.opts.travelers,
            "baseline_pool": bench.opts.baseline_pool,
            "synchronous_commit": facts["synchronous_commit"],
            "servers": bench.stores.sources,
            "server_logs": bench.logs,
        },
    )


def _pg_tx_line(
    bench: Bench,
    mine: dict[str, Any],
    top: dict[str, Any],
    x0: dict[str, int],
    x1: dict[str, int],
    x2: dict[str, int],
    facts: dict[str, Any],
) -> dict[str, Any]:
    accepted = mine["audit"]["bookings_in_db"]
    commits = x2["commit"] - x1["commit"]
    background = (x1["commit"] - x0["commit"]) / BACKGROUND_WINDOW
    window = mine["seconds"] + SETTLE
    per_booking = round(commits / accepted, 4) if accepted else None
    net = round((commits - background * window) / accepted, 4) if accepted else None
    checks = _checks(mine["audit"], _ceiling_checks(top["audit"]))
    met = per_booking is not None and per_booking <= PG_TX_GOAL and _correct(checks)
    return line(
        "pg-tx",
        figure=per_booking,
        unit="transactions/booking",
        # the platform's bookings/s during this count, against the ceiling's on the same load
        ceiling={**ceiling_summary(top), "transactions_per_booking": top.get("transactions_per_booking")},
        ratio_to_ceiling=ratio(mine["per_s"], top["per_s"]),
        met=met,
        checks=checks,
        gap=f"{per_booking} transactions per booking (goal {PG_TX_GOAL})",
        generator=mine["generator"],
        details={
            "method": (
                "xact_commit of astro_bench in pg_stat_database, read before the platform's hot run "
                "and after the platform stopped (its backends then publish every count); "
                "delta / bookings stored in the run's launches"
            ),
            "commits": commits,
            "rollbacks": x2["rollback"] - x1["rollback"],
            "accepted_bookings": accepted,
            "window_s": round(window, 1),
            "background_commits_per_s": round(background, 1),
            "without_background": net,
            "background_measured": f"{BACKGROUND_WINDOW:.0f} s idle just before the run",
            "also_committing": OTHER_COMMITS,
            "bookings_per_s": mine["per_s"],
            "ceiling": top,
            **facts,
        },
    )


async def spread(bench: Bench) -> list[dict[str, Any]]:
    opts = bench.opts
    await bench.fresh("spread")
    dsn = bench.stores.pg_dsn
    platform = bench.platform()
    async with bench.running(platform):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            world = await make_world(session, platform, bench.stores, opts.travelers)
        launches = await insert_launches(
            dsn, world, tag="SPRD", count=opts.spread_launches, capacity=MAX_CAPACITY
        )
        progress(f"spread/platform: {opts.clients} connections over {len(launches)} launches")
        mine = await bench.bookings(platform.base_url, world.tokens, launches, mode="spread")
    mine["audit"] = await audit(dsn, launches, mine["good"])
    top = await ceiling_run(bench, world, tag="SPRC", count=opts.spread_launches, mode="spread")
    bare = await _bare(bench)
    rate = ratio(mine["per_s"], bare["per_s"])
    checks = _checks(mine["audit"], {"http_5xx": mine["http_5xx"]}, _ceiling_checks(top["audit"]))
    met = rate is not None and rate >= 0.35 and _correct(checks)
    return [
        line(
            "spread",
            figure=mine["per_s"],
            unit="bookings/s",
            reference=bare["per_s"],
            reference_is="bare aiohttp JSON, requests/s",
            ratio_to_reference=rate,
            ceiling=ceiling_summary(top),
            ratio_to_ceiling=ratio(mine["per_s"], top["per_s"]),
            met=met,
            checks=checks,
            gap=f"ratio {rate} (goal 0.35)" + ("" if _correct(checks) else "; a correctness check is not 0"),
            generator=mine["generator"],
            details={
                "platform": mine,
                "bare": bare,
                "ceiling": top,
                "launches": len(launches),
                "clients": opts.clients,
                "seconds": opts.seconds,
                "servers": bench.stores.sources,
                "server_logs": bench.logs,
            },
        )
    ]


async def list_launches(bench: Bench) -> list[dict[str, Any]]:
    opts = bench.opts
    await bench.fresh("list")
    platform = bench.platform()
    async with bench.running(platform):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            world = await make_world(session, platform, bench.stores, 0)
            made = await world.setup.launches(MAX_CAPACITY, opts.list_launches)  # through the API
            await _mail_drained(bench.stores.pg_dsn)
            url = platform.base_url + "/api/booking/launches"
            async with session.get(url) as resp:
                page = await resp.json()
                size = len(await resp.read())
        progress(f"list/platform: {opts.clients} connections, GET /api/booking/launches")
        mine = await bench.measured(
            get_load(url, seconds=opts.seconds, connections=opts.clients, use_wrk=bench.use_wrk)
        )
    bare = await _bare(bench)
    rate = ratio(mine["per_s"], bare["per_s"])
    checks = {"non_2xx": mine.get("non_2xx", sum(mine.get("answers", {}).values()))}
    met = rate is not None and rate >= 0.6 and checks["non_2xx"] == 0
    return [
        line(
            "list",
            figure=mine["per_s"],
            unit="requests/s",
            reference=bare["per_s"],
            reference_is="bare aiohttp JSON, requests/s",
            ratio_to_reference=rate,
            met=met,
            checks=checks,
            gap=f"ratio {rate} (goal 0.6)",
            generator=mine["generator"],
            details={
                "platform": mine,
                "bare": bare,
                "launches": len(made),
                "page_items": len(page.get("items", [])),
                "page_bytes": size,
                "clients": opts.clients,
                "seconds": opts.seconds,
                "servers": bench.stores.sources,
                "server_logs": bench.logs,
            },
        )
    ]


async def _bare(bench: Bench) -> dict[str, Any]:
    """The reference of the run: the bare aiohttp app alone, same generator, connections and time."""
    async with bench.running(bench.bare()) as bare:
        progress(f"bare: {bench.opts.clients} connections, GET /json")
        return await bench.measured(
            get_load(
                bare.base_url + "/json",
                seconds=bench.opts.seconds,
                connections=bench.opts.clients,
                use_wrk=bench.use_wrk,
            ),
            reference=True,
        )


async def _mail_drained(dsn: str, wait: float = 30.0) -> None:
    """Wait until the scheduling e-mails of the set-up are sent, so they do not run under the load."""
    conn = await asyncpg.connect(dsn)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while loop.time() < deadline:
            pending = await conn.fetchval(
                "SELECT count(*) FROM notifications WHERE status IN ('pending', 'sending')"
            )
            if not pending:
                return
            await asyncio.sleep(0.5)
        progress(f"  {pending} e-mails still pending after {wait:.0f} s; measuring anyway")
    finally:
        await conn.close()
