"""Booking benchmark: the platform (launch actors, group commit) against the FOR UPDATE baseline.

    python -m bench.booking [--clients 256] [--seconds 40]      (or: python -m bench booking ...)

Two scenarios, each run on the platform then on the baseline, on the same database and travelers:
`hot` fills a few launches of capacity 1000 one after another (every client on the same launch),
`many` spreads bookings at random over many launches until all are sold out. Prints one JSON line:
bookings/s, p50/p99 latency of successful bookings, overbooked seats (must be 0) and the ratio
platform/baseline of bookings/s. Progress goes to stderr.

Servers: ASTRO_PG_DSN / ASTRO_MONGO_URL / ASTRO_REDIS_URL when set (a fresh `astro_bench` database,
Redis db 14 and MongoDB database `astro_bench`, nothing else touched), else embedded servers.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from astro.store import postgres
from bench.common import (
    LoadResult,
    Stores,
    bench_stores,
    book_until_sold_out,
    bounded,
    call,
    machine,
    now_iso,
    progress,
    seat_audit,
)
from bench.servers import ServerProcess, baseline_server, log_summary, platform_server
from bench.serving import run_loop

HOT_CAPACITY = 1000
PASSWORD = "bench-password-1"
SETTLE_SECONDS = 2.0
# The platform's PostgreSQL pool: the max_size default of astro.store.postgres.create_pool.
PLATFORM_PG_POOL: int = inspect.signature(postgres.create_pool).parameters["max_size"].default


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.booking", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=256, help="concurrent HTTP clients (default 256)")
    parser.add_argument(
        "--seconds", type=float, default=40.0, help="time cap of each run, one server one scenario (40)"
    )
    parser.add_argument("--travelers", type=int, default=64, help="travelers whose tokens clients share (64)")
    parser.add_argument(
        "--hot-launches", type=int, default=3, help="launches of 1000 seats filled in turn (3)"
    )
    parser.add_argument(
        "--many-launches", type=int, default=200, help="launches of the spread scenario (200)"
    )
    parser.add_argument(
        "--many-capacity", type=int, default=25, help="seats of each launch of the spread scenario (25)"
    )
    parser.add_argument(
        "--baseline-pool",
        type=int,
        default=PLATFORM_PG_POOL,
        help=f"baseline's PostgreSQL connections (default {PLATFORM_PG_POOL}, the platform's pool size)",
    )
    parser.add_argument("--scenarios", default="hot,many", help="which scenarios, comma-separated (hot,many)")
    parser.add_argument("--keep-data", action="store_true", help="leave the astro_bench data behind")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the server logs into DIR")
    args = parser.parse_args(argv)
    if not 1 <= args.many_capacity <= 1000:
        parser.error("--many-capacity must be from 1 to 1000")
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    if not set(args.scenarios) <= {"hot", "many"}:
        parser.error("--scenarios takes hot and/or many")
    return args


# -- set-up through the platform's own API ---------------------------------------------------------


class Setup:
    """One agency, its rockets and launches, and the travelers, all made through the platform's API."""

    def __init__(self, session: aiohttp.ClientSession, platform: ServerProcess) -> None:
        self.session = session
        self.platform = platform
        self.api = platform.base_url + "/api"
        self.agency_token = ""
        self.rockets: dict[int, str] = {}
        self._day = 0

    async def agency(self) -> None:
        body = {
            "email": "bench-agency@example.com",
            "password": PASSWORD,
            "name": "Bench Agency",
            "role": "agency",
            "profile": {"legal_name": "Bench Agency Ltd", "tax_id": "TAX-BENCH-A", "legal_address": "1 Pad"},
        }
        data = await call(self.session, "POST", f"{self.api}/system/auth/register", body, expect=201)
        self.agency_token = data["token"]
        await self.verify(data["user"]["id"])

    async def verify(self, agency_id: str) -> None:
        """IT verifies the self-registered agency (else its launches are not bookable): an IT employee made
        by `run.py create-user`, then PATCH /api/system/users/{id}, as SystemWeb's users view does."""
        email = f"bench-it-{agency_id[-10:].lower()}@example.com"
        await self.platform.create_user("it", email, "Bench IT", PASSWORD)
        login = {"email": email, "password": PASSWORD}
        it = await call(self.session, "POST", f"{self.api}/system/auth/login", login, expect=200)
        await call(
            self.session,
            "PATCH",
            f"{self.api}/system/users/{agency_id}",
            {"verified": True},
            token=it["token"],
            expect=200,
        )

    async def rocket(self, capacity: int) -> str:
        if capacity not in self.rockets:
            body = {"name": f"Bench {capacity}", "capacity": capacity, "range": "mars"}
            data = await call(
                self.session, "POST", f"{self.api}/agency/rockets", body, token=self.agency_token, expect=201
            )
            self.rockets[capacity] = data["rocket"]["id"]
        return self.rockets[capacity]

    async def launches(self, capacity: int, count: int) -> list[str]:
        rocket_id = await self.rocket(capacity)
        start = datetime.now(UTC) + timedelta(days=30)

        def job(day: int) -> Any:
            async def make() -> str:
                body = {
                    "rocket_id": rocket_id,
                    "mission": f"Bench mission {day}",
                    "destination": "moon",
                    "scheduled_at": (start + timedelta(days=day)).isoformat(),
                    "price_cents": 100_000,
                    "min_passengers": min(10, capacity),
                }
                data = await call(
                    self.session,
                    "POST",
                    f"{self.api}/agency/launches",
                    body,
                    token=self.agency_token,
                    expect=201,
                )
                return str(data["launch"]["id"])

            return make

        days = range(self._day, self._day + count)
        self._day += count
        return list(await bounded([job(d) for d in days], 8))

    async def travelers(self, count: int) -> list[str]:
        def job(n: int) -> Any:
            async def make() -> str:
                body = {
                    "email": f"bench-traveler{n}@example.com",
                    "password": PASSWORD,
                    "name": f"Bench Traveler {n}",
                    "role": "traveler",
                    "profile": {
                        "phone": "+1 555 0100",
                        "tax_id": f"TAX-BENCH-T{n}",
                        "address": f"{n} Orbit Road",
                    },
                }
                data = await call(self.session, "POST", f"{self.api}/system/auth/register", body, expect=201)
                return str(data["token"])

            return make

        return list(await bounded([job(n) for n in range(count)], 4))


# -- the runs --------------------------------------------------------------------------------------


async def measured(
    label: str,
    server: ServerProcess,
    stores: Stores,
    tokens: list[str],
    launch_ids: list[str],
    *,
    mode: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    progress(f"{label}: {args.clients} clients, {len(launch_ids)} launch(es), {mode}")
    result: LoadResult = await book_until_sold_out(
        server.base_url, tokens, launch_ids, mode=mode, clients=args.clients, seconds=args.seconds
    )
    figures = result.figures()
    audit = await seat_audit(stores.pg_dsn, launch_ids, result.booking_ids)
    figures.update(audit)
    progress(
        f"{label}: {figures['bookings']} bookings in {figures['seconds']} s = {figures['bookings_per_s']}/s, "
        f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, overbooked {figures['overbooked_seats']}, "
        f"other answers {figures['answers']}"
    )
    if server.process is not None and server.process.returncode is not None:
        raise RuntimeError(f"{server.name} exited during the run:\n{server.tail()}")
    await asyncio.sleep(SETTLE_SECONDS)  # background work of this run must not slow the next one
    return figures


def ratio(platform: dict[str, Any], baseline: dict[str, Any]) -> float | None:
    a, b = platform.get("bookings_per_s"), baseline.get("bookings_per_s")
    return round(a / b, 2) if a and b else None


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    began = time.monotonic()
    out: dict[str, Any] = {
        "bench": "booking",
        "date": now_iso(),
        "machine": machine(),
        "clients": args.clients,
    }
    async with bench_stores(work, keep_data=args.keep_data) as stores:
        out["servers"] = stores.sources
        secret = secrets.token_urlsafe(48)
        platform = platform_server(stores, work, secret)
        baseline = baseline_server(stores, work, secret, args.baseline_pool)
        try:
            progress("starting the platform (python run.py)")
            await platform.start()
            set_up = time.monotonic()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
                setup = Setup(session, platform)
                await setup.agency()
                tokens = await setup.travelers(args.travelers)
                launches: dict[str, dict[str, list[str]]] = {}
                if "hot" in args.scenarios:
                    launches["hot"] = {
                        side: await setup.launches(HOT_CAPACITY, args.hot_launches)
                        for side in ("platform", "baseline")
                    }
                if "many" in args.scenarios:
                    launches["many"] = {
                        side: await setup.launches(args.many_capacity, args.many_launches)
                        for side in ("platform", "baseline")
                    }
            out["setup"] = {
                "travelers": len(tokens),
                "launches_created_via": "api",
                "seconds": round(time.monotonic() - set_up, 1),
            }
            progress(f"set up through the API in {out['setup']['seconds']} s; starting the baseline")
            await baseline.start()
            out["baseline_server"] = {
                "locking": "SELECT ... FOR UPDATE per request",
                "pool": args.baseline_pool,
                "platform_pool": PLATFORM_PG_POOL,
            }
            for scenario in args.scenarios:
                mode = "sequential" if scenario == "hot" else "spread"
                capacity = HOT_CAPACITY if scenario == "hot" else args.many_capacity
                figures = {
                    side: await measured(
                        f"{scenario}/{side}",
                        server,
                        stores,
                        tokens,
                        launches[scenario][side],
                        mode=mode,
                        args=args,
                    )
                    for side, server in (("platform", platform), ("baseline", baseline))
                }
                out[scenario] = {
                    "launches": len(launches[scenario]["platform"]),
                    "capacity": capacity,
                    **figures,
                    "ratio": ratio(figures["platform"], figures["baseline"]),
                }
        finally:
            codes = {"platform": await platform.stop(), "baseline": await baseline.stop()}
            progress(f"servers stopped, exit codes {codes}")
        out["server_logs"] = {
            "platform": {"exit_code": codes["platform"], **log_summary(platform.log_path)},
            "baseline": {"exit_code": codes["baseline"], **log_summary(baseline.log_path)},
        }
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


def quiet_logs() -> None:
    """The benchmark's own structlog output (embedded servers, migrations): warnings only, on stderr."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    quiet_logs()
    work = Path(tempfile.mkdtemp(prefix="astro-bench-"))
    try:
        out = run_loop(run(args, work))
    finally:
        if args.keep_logs:
            target = Path(args.keep_logs)
            target.mkdir(parents=True, exist_ok=True)
            for name in ("platform.log", "baseline.log"):
                if (work / name).exists():
                    shutil.copy(work / name, target / name)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
