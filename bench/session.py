"""One `python -m bench` invocation: the stores, fresh data per scenario, the servers and the set-up."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.booking import Setup
from bench.common import BENCH_DATABASE, Stores, drop_mongo, progress, reset_stores, with_path
from bench.cpu import CpuWindow
from bench.load import booking_load, wrk_path
from bench.profile import profiled
from bench.servers import (
    ServerProcess,
    bare_server,
    baseline_server,
    ceiling_server,
    log_summary,
    platform_server,
)

# One rocket of the largest capacity (DESIGN: 1 to 1000 seats) carries every launch made in SQL.
MAX_CAPACITY = 1000
UP_TIMEOUT = 90.0  # every worker of `--workers N` serving


@dataclass
class Bench:
    """What the scenarios of one invocation share; each scenario starts from fresh data."""

    base: Stores
    work: Path
    opts: argparse.Namespace
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    scenario_dir: Path | None = None
    scenario_stores: Stores | None = None
    logs: dict[str, Any] = field(default_factory=dict)
    mongo_databases: list[str] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)  # pid -> server, for the CPU breakdown
    smtp_url: str = ""  # the bench's mail sink (bench/mailsink.py), a process of its own
    workers: int = 1  # the platform's --workers for the scenarios now running

    @property
    def stores(self) -> Stores:
        """The current scenario's stores: the bench database and Redis db, a MongoDB database of its own."""
        return self.scenario_stores or self.base

    @property
    def use_wrk(self) -> bool:
        return not self.opts.no_wrk and wrk_path() is not None

    @property
    def generator(self) -> str:
        return "wrk" if self.use_wrk else "aiohttp"

    async def fresh(self, scenario: str) -> Path:
        """Fresh stores and a work directory of its own for a scenario's servers and logs.

        PostgreSQL and Redis are emptied; MongoDB gets a new database per scenario instead, since the
        embedded SecantusDB drops a database of log entries slowly (tens of seconds per 20,000). A run
        with --workers 2 after --workers 1 names its own (`hot-w2`)."""
        if self.workers > 1:
            scenario = f"{scenario}-w{self.workers}"
        mongo = with_path(self.base.mongo_url, f"/{BENCH_DATABASE}_{scenario.replace('-', '_')}")
        self.scenario_stores = dataclasses.replace(self.base, mongo_url=mongo)
        real_mongo = self.base.sources.get("mongo") == "real"
        await reset_stores(self.stores, mongo=real_mongo)
        if real_mongo:
            self.mongo_databases.append(mongo)
        self.scenario_dir = self.work / scenario
        self.scenario_dir.mkdir(parents=True, exist_ok=True)
        self.logs = {}
        return self.scenario_dir

    @property
    def dir(self) -> Path:
        """The current scenario's work directory."""
        assert self.scenario_dir is not None, "call fresh() first"
        return self.scenario_dir

    def platform(self, *, workers: int | None = None, **env: str) -> ServerProcess:
        """`python run.py` with ASTRO_WORKERS = `workers` (default: this run's --workers)."""
        n = self.workers if workers is None else workers
        env = {"ASTRO_WORKERS": str(n), **({"ASTRO_NODE": "bench"} if n > 1 else {}), **env}
        if self.smtp_url:
            env = {"ASTRO_SMTP_URL": self.smtp_url, **env}
        server = platform_server(self.stores, self.dir, self.secret, **env)
        server.workers = n
        return server

    def baseline(self) -> ServerProcess:
        return baseline_server(self.stores, self.dir, self.secret, self.opts.baseline_pool)

    def ceiling(self) -> ServerProcess:
        return ceiling_server(self.stores, self.dir)

    def bare(self) -> ServerProcess:
        return bare_server(self.dir)

    @contextlib.asynccontextmanager
    async def running(self, server: ServerProcess) -> AsyncIterator[ServerProcess]:
        """The server started and ready; stopped afterwards, its exit code and log summary kept."""
        progress(f"starting {server.name}")
        await server.start()
        assert server.process is not None
        self.names[server.process.pid] = f"{server.name} server"
        try:
            if server.name == "platform":
                server.nodes = await self._all_up(server)
            yield server
        finally:
            await self.stop(server)

    async def _all_up(self, platform: ServerProcess) -> tuple[str, ...]:
        """Wait until the parent says every worker serves; name the workers' processes for the CPU
        figures and return the node names seen answering."""
        assert platform.process is not None
        workers = platform.workers
        deadline = time.monotonic() + UP_TIMEOUT
        while "AstroBookings is up" not in platform.log_path.read_text(errors="replace"):
            if time.monotonic() > deadline or platform.process.returncode is not None:
                raise RuntimeError(f"the platform (--workers {workers}) did not come up:\n{platform.tail()}")
            await asyncio.sleep(0.1)
        if workers > 1:
            for child in self.pids(platform):
                self.names[child] = f"platform worker of {platform.process.pid}"
        seen: set[str] = set()
        for _ in range(50 * workers):
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
                session.get(platform.base_url + "/health") as resp,
            ):
                seen.add(resp.headers.get("X-Astro-Node", "?"))
            if len(seen) >= workers:
                break
        if workers > 1:
            progress(f"platform: --workers {workers}, nodes answering: {', '.join(sorted(seen))}")
        return tuple(sorted(seen))

    @staticmethod
    def pids(server: ServerProcess) -> list[int]:
        """The processes that serve: the server's own, or its workers' under `--workers N` (N > 1)."""
        assert server.process is not None
        pid = server.process.pid
        if server.workers <= 1:
            return [pid]
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for task in tasks for c in (task / "children").read_text().split()]

    async def measured(self, load: Awaitable[dict[str, Any]], *, reference: bool = False) -> dict[str, Any]:
        """The load's figures with where the CPU went meanwhile (`cpu`); a reference's load (baseline,
        bare) is never profiled, so py-spy takes no CPU from it."""
        window = CpuWindow(self.names)
        window.start()
        profile = None if reference else self.opts.profile
        async with profiled(profile, self.names, self.stores) as profiles:
            figures = await load
        figures["cpu"] = window.stop()
        if profiles:
            figures["profiles"] = profiles
        progress(f"  cpu: {figures['cpu']['cores_by_process']}")
        return figures

    async def bookings(
        self, base_url: str, tokens: list[str], launches: list[str], *, mode: str, reference: bool = False
    ) -> dict[str, Any]:
        """A measured booking load on a server: this run's generator, connections and time."""
        return await self.measured(
            booking_load(
                base_url,
                tokens,
                launches,
                mode=mode,
                seconds=self.opts.seconds,
                connections=self.opts.clients,
                use_wrk=self.use_wrk,
            ),
            reference=reference,
        )

    async def close(self) -> None:
        """Drop the scenarios' MongoDB databases on a real server (an embedded one goes away whole)."""
        for url in self.mongo_databases:
            await drop_mongo(url)

    async def stop(self, server: ServerProcess) -> None:
        if server.name in self.logs:
            return
        code = await server.stop()
        self.logs[server.name] = {"exit_code": code, **log_summary(server.log_path, show=5)}


@dataclass
class World:
    """What the platform's API made: an agency with a 1000-seat rocket, and travelers' tokens."""

    setup: Setup
    tokens: list[str]
    agency_id: str
    rocket_id: str


async def make_world(
    session: aiohttp.ClientSession, platform: ServerProcess, stores: Stores, travelers: int
) -> World:
    """An agency, its rocket and `travelers` travelers, registered through the platform's API."""
    setup = Setup(session, platform)
    await setup.agency()
    rocket_id = await setup.rocket(MAX_CAPACITY)
    tokens = await setup.travelers(travelers) if travelers else []
    conn = await asyncpg.connect(stores.pg_dsn)
    try:
        agency_id = await conn.fetchval("SELECT agency_id FROM rockets WHERE id = $1", rocket_id)
    finally:
        await conn.close()
    return World(setup, tokens, str(agency_id), rocket_id)


async def insert_launches(dsn: str, world: World, *, tag: str, count: int, capacity: int) -> list[str]:
    """`count` open launches in one INSERT (no API: fast, and no scheduling e-mails queued behind the
    load); bookable at once (public_from in the past), 30 days ahead, on the world's rocket."""
    if not 1 <= capacity <= MAX_CAPACITY:
        raise ValueError(f"capacity must be 1..{MAX_CAPACITY}")
    width = 26 - len(tag)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """INSERT INTO launches (id, agency_id, rocket_id, slug, mission, destination, scheduled_at,
                                     price_cents, capacity, min_passengers, public_from)
               SELECT 'lch_' || $3 || lpad(g::text, $6, '0'), $1, $2, 'bench-' || lower($3) || '-' || g,
                      'Bench mission ' || $3 || ' ' || g, 'moon',
                      now() + interval '30 days' + g * interval '1 minute', 100000, $4, least(10, $4),
                      now() - interval '1 day'
               FROM generate_series(1, $5) AS g
               RETURNING id""",
            world.agency_id,
            world.rocket_id,
            tag,
            capacity,
            count,
            width,
        )
    finally:
        await conn.close()
    return sorted(r["id"] for r in rows)
