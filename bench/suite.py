"""`python -m bench SCENARIO`: the figures of the performance issue, one JSON line each.

    python -m bench hot|spread|list|ws|ws-memory|actor-memory|pg-tx [options]
    python -m bench all [options]        every scenario (hot and pg-tx from one run), then the table
    python -m bench all --workers 1,2    the same with the platform on --workers 1, then --workers 2

Each line holds the figure, its reference measured in the same run, the ratio, the goal, whether it
is met (`met`), the correctness checks (overbooked seats, missed events: all must be 0) and which
load generator was used (`wrk` when installed, else aiohttp clients). Servers: ASTRO_PG_DSN /
ASTRO_MONGO_URL / ASTRO_REDIS_URL when set (a fresh `astro_bench` database, Redis db 14, MongoDB
database `astro_bench`; nothing else touched), else embedded servers. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from bench import actor_memory, live, nodes, throughput
from bench.booking import PLATFORM_PG_POOL, quiet_logs
from bench.common import bench_stores, progress
from bench.goals import failed, table
from bench.servers import mail_sink_server
from bench.serving import run_loop
from bench.session import Bench

Runner = Callable[[Bench], Awaitable[list[dict[str, Any]]]]


async def _hot(bench: Bench) -> list[dict[str, Any]]:
    hot_line, pg_tx = await throughput.hot(bench)
    hot_line["details"]["pg_tx"] = {"figure": pg_tx["figure"], **pg_tx["details"]}
    return [hot_line]


async def _pg_tx(bench: Bench) -> list[dict[str, Any]]:
    return await throughput.hot(bench, with_baseline=False)


RUNNERS: Final[dict[str, Runner]] = {
    "hot": _hot,
    "spread": throughput.spread,
    "list": throughput.list_launches,
    "ws": live.watchers,
    "ws-memory": live.memory,
    "actor-memory": actor_memory.run,
    "pg-tx": _pg_tx,
    "nodes": nodes.run,
}
SCENARIOS: Final = (*RUNNERS, "all")
# `all`: hot measures pg-tx in the same platform run.
ALL: Final[tuple[tuple[str, Runner], ...]] = (
    ("hot", throughput.hot),
    ("spread", throughput.spread),
    ("list", throughput.list_launches),
    ("ws", live.watchers),
    ("ws-memory", live.memory),
    ("actor-memory", actor_memory.run),
)
# Figures of one process whatever --workers says (an actor lives in one node): measured once.
ONE_PROCESS: Final = frozenset({"actor-memory"})


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--seconds", type=float, default=12.0, help="each measured load run (12)")
    parser.add_argument("--clients", type=int, default=256, help="concurrent connections (256)")
    parser.add_argument("--travelers", type=int, default=32, help="travelers whose tokens rotate (32)")
    parser.add_argument(
        "--baseline-pool", type=int, default=PLATFORM_PG_POOL, help="baseline's PostgreSQL connections"
    )
    parser.add_argument("--spread-launches", type=int, default=1000, help="launches of `spread` (1000)")
    parser.add_argument("--list-launches", type=int, default=100, help="launches in the list (100)")
    parser.add_argument("--watchers", type=int, default=5000, help="WebSocket watchers of `ws` (5000)")
    parser.add_argument("--watcher-procs", type=int, default=2, help="client processes they share (2)")
    parser.add_argument("--ws-rate", type=float, default=200.0, help="bookings/s during `ws` (200)")
    parser.add_argument(
        "--ws-bookings", type=int, default=1000, help="bookings of `ws`, at most a launch's 1000 seats"
    )
    parser.add_argument(
        "--idle-connections", type=int, default=2000, help="connections of `ws-memory` (2000)"
    )
    parser.add_argument("--actors", type=int, default=100_000, help="launch actors of `actor-memory`")
    parser.add_argument(
        "--workers",
        type=_worker_settings,
        default=(1,),
        metavar="N[,N]",
        help="the platform's --workers (ASTRO_WORKERS): 1, 2, or 1,2 to run the scenarios on each (1)",
    )
    parser.add_argument("--no-wrk", action="store_true", help="use the aiohttp generator even with wrk")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the servers' logs into DIR")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="py-spy the platform and the embedded MongoDB during each measured load; profiles into DIR",
    )
    args = parser.parse_args(argv)
    args.ws_bookings = max(1, min(args.ws_bookings, 1000))
    return args


def _worker_settings(raw: str) -> tuple[int, ...]:
    try:
        settings = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of worker counts: {raw!r}") from None
    if not settings or any(n < 1 or n > 8 for n in settings) or len(set(settings)) != len(settings):
        raise argparse.ArgumentTypeError(f"each worker count once, 1 to 8: {raw!r}")
    return settings


def _raise_file_limit() -> None:
    """Thousands of sockets: the soft limit up to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def run(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    plan = ALL if args.scenario == "all" else ((args.scenario, RUNNERS[args.scenario]),)
    lines: list[dict[str, Any]] = []
    async with bench_stores(work) as stores:
        bench = Bench(stores, work, args)
        progress(f"load generator: {bench.generator}; servers: {stores.sources}")
        sink, smtp_url = mail_sink_server(work)
        if os.environ.get("ASTRO_SMTP_URL"):
            bench.smtp_url = os.environ["ASTRO_SMTP_URL"]
        else:  # a mail server of its own, as a deployment has: not the embedded sink inside the platform
            await sink.start()
            assert sink.process is not None
            bench.names[sink.process.pid] = "mail sink"
            bench.smtp_url = smtp_url
        stores.sources["smtp"] = "real" if os.environ.get("ASTRO_SMTP_URL") else "bench mail sink"
        try:
            for n, workers in enumerate(args.workers):
                bench.workers = workers
                todo = plan if n == 0 else tuple((k, r) for k, r in plan if k not in ONE_PROCESS)
                if args.scenario != "nodes":  # nodes runs --workers 1 and 2 itself
                    progress(f"the platform on --workers {workers}")
                elif n > 0:
                    break
                await _each(bench, todo, lines)
        finally:
            await bench.close()
            await sink.stop()
    return lines


async def _each(bench: Bench, plan: tuple[tuple[str, Runner], ...], lines: list[dict[str, Any]]) -> None:
    for name, runner in plan:
        started = time.monotonic()
        try:
            got = await runner(bench)
        except Exception as exc:  # one scenario failing must not hide the others' figures
            progress(f"{name} failed: {type(exc).__name__}: {exc}")
            got = [failed(name, exc)]
        for out in got:
            out["scenario_seconds"] = round(time.monotonic() - started, 1)
            if name != "nodes":
                out["workers"] = bench.workers
            print(json.dumps(out, separators=(",", ":"), ensure_ascii=False), flush=True)
            lines.append(out)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    quiet_logs()
    _raise_file_limit()
    work = Path(tempfile.mkdtemp(prefix="astro-bench-"))
    began = time.monotonic()
    try:
        lines = run_loop(run(args, work))
    finally:
        if args.keep_logs:
            target = Path(args.keep_logs)
            for log in work.glob("*/*.log"):
                (target / log.parent.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(log, target / log.parent.name / log.name)
        shutil.rmtree(work, ignore_errors=True)
    if args.scenario == "all":
        print(table(lines), flush=True)
        settings = ", ".join(f"--workers {n}" for n in args.workers)
        progress(f"all scenarios ({settings}) in {time.monotonic() - began:.0f} s")
    return 0 if all("error" not in out for out in lines) else 1
