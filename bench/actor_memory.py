"""`actor-memory`: resident memory per idle launch actor with 100,000 active, and after passivation.

No HTTP endpoint reads a launch through its actor (the public pages read the cache), and booking
100,000 launches to wake their actors would measure bookings, not actors. So a child process builds
the platform's own application in-process (`web.app.create_app`, every cleanup context started, as
`python run.py` does, without the HTTP listener) on the benchmark's stores, and asks each launch's
actor for its state through the booking desk (`LaunchDesk.launch`: GetLaunch; the actor spawns,
loads its row from PostgreSQL, answers and stays idle). The launches are made in one INSERT.

The child's VmRSS is read after 1,000 warm-up actors were started and stopped again, then with the
N actors idle, then after they are passivated; each time once the log shipper's queue has drained
into MongoDB (every actor start and passivation is a log entry, queued in memory until shipped).
Once the N actors are measured, the child calls `ActorSystem.passivate_idle(0)` — what the reaper
does to actors idle for ASTRO_ACTOR_IDLE_SECONDS (default 300) — rather than waiting five minutes.
glibc keeps freed memory unless asked, so the RSS is read once more after malloc_trim(0).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import sys
import time
from typing import Any, Final

import aiohttp

from bench.common import progress
from bench.cpu import CpuWindow
from bench.goals import line
from bench.servers import rss_kib
from bench.serving import run_loop
from bench.session import Bench, insert_launches, make_world

GOAL_KIB: Final = 2  # issue 17: memory per idle launch actor
WARM: Final = 1000
TAG: Final = "ACTORS"
RETURNED_GOAL: Final = 0.9  # "passivation returns it": at least 90 % of the actors' heap blocks freed
CHILD_TIMEOUT: Final = 400.0


async def run(bench: Bench) -> list[dict[str, Any]]:
    opts = bench.opts
    await bench.fresh("actor-memory")
    platform = bench.platform()
    timeout = aiohttp.ClientTimeout(total=60)
    async with bench.running(platform), aiohttp.ClientSession(timeout=timeout) as session:
        world = await make_world(session, platform, bench.stores, 0)
    started = time.monotonic()
    await insert_launches(bench.stores.pg_dsn, world, tag=TAG, count=WARM + opts.actors, capacity=10)
    progress(f"actor-memory: {WARM + opts.actors} launches inserted in {time.monotonic() - started:.1f} s")
    window = CpuWindow(bench.names)
    window.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.actor_memory",
        "--count",
        str(opts.actors),
        env=platform.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CHILD_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"the in-process child failed ({proc.returncode}): {err.decode()[-1500:]}")
    cpu = window.stop()
    child: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    grown = child["rss_active_kib"] - child["rss_before_kib"]
    per_actor = round(grown / child["actors_active"], 3) if child["actors_active"] else None
    rss_returned = _share(grown, child["rss_active_kib"] - child["rss_trimmed_kib"])
    heap_returned = _share(
        child["python_blocks_active"] - child["python_blocks_before"],
        child["python_blocks_active"] - child["python_blocks_passivated"],
    )
    checks = {"actors_not_passivated": child["actors_after_passivation"]}
    met = (
        per_actor is not None
        and per_actor <= GOAL_KIB
        and checks["actors_not_passivated"] == 0
        and heap_returned is not None
        and heap_returned >= RETURNED_GOAL
    )
    gaps = []
    if per_actor is None or per_actor > 5:
        gaps.append(f"{per_actor} KiB per actor (goal {GOAL_KIB} KiB)")
    if heap_returned is None or heap_returned < RETURNED_GOAL:
        gaps.append(f"passivation freed {heap_returned} of the actors' Python blocks (goal {RETURNED_GOAL})")
    if checks["actors_not_passivated"]:
        gaps.append(f"{checks['actors_not_passivated']} actors still active after passivation")
    return [
        line(
            "actor-memory",
            figure=per_actor,
            unit="KiB/actor",
            met=met,
            checks=checks,
            gap="; ".join(gaps),
            generator="in-process (create_app in a child process, LaunchDesk.launch per launch)",
            details={
                "method": " ".join(__doc__.split("\n\n")[1:]).replace("\n", " "),
                "returned": (
                    "heap: share of the Python blocks the actors added that passivation freed (the "
                    f"check, goal {RETURNED_GOAL}); rss: share of the RSS growth given back to the system "
                    "after malloc_trim (CPython keeps partly used arenas, so freed memory is reused by "
                    "the process rather than returned)"
                ),
                "heap_returned": heap_returned,
                "rss_returned": rss_returned,
                **child,
                "cpu": cpu,
                "servers": bench.stores.sources,
            },
        )
    ]


def _share(grown: int, returned: int) -> float | None:
    return round(returned / grown, 3) if grown > 0 else None


# -- the child: the application in-process ---------------------------------------------------------


async def _touch(desk: Any, ids: list[str], concurrency: int = 256) -> None:
    for i in range(0, len(ids), concurrency):
        await asyncio.gather(*(desk.launch(launch_id) for launch_id in ids[i : i + concurrency]))


async def _drained(shipper: Any, limit: float = 120.0) -> float:
    """Wait until the log shipper's in-memory queue is empty: its backlog (every actor start and
    passivation is a log entry) must not count as the actors' memory. The seconds waited."""
    started = time.monotonic()
    await asyncio.sleep(1.0)
    while shipper.queued and time.monotonic() - started < limit:
        await asyncio.sleep(0.25)
    return round(time.monotonic() - started, 1)


def _launch_actors(system: Any) -> int:
    return sum(1 for key in system.mailbox_depths() if key.startswith("launch:"))


def _trim() -> bool:
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


async def child(count: int) -> dict[str, Any]:
    from astro import logs
    from astro.config import Settings
    from web.app import create_app, started
    from web.clients import PG_POOL
    from web.keys import ACTORS, DESK
    from web.monitoring import LOG_SHIPPER

    settings = Settings.from_env()
    logs.configure(settings.log_level)
    app = create_app(settings)
    async with started(app):
        desk, system, shipper = app[DESK], app[ACTORS], app[LOG_SHIPPER]
        waited: list[float] = []
        rows = await app[PG_POOL].fetch("SELECT id FROM launches WHERE id LIKE $1 ORDER BY id", f"lch_{TAG}%")
        ids = [r["id"] for r in rows]
        warm, measured = ids[:WARM], ids[WARM : WARM + count]
        await _touch(desk, warm)
        for launch_id in warm:
            await system.stop_actor(f"launch:{launch_id}")
        waited.append(await _drained(shipper))
        gc.collect()
        before, blocks_before = rss_kib(os.getpid()), sys.getallocatedblocks()
        started = time.monotonic()
        await _touch(desk, measured)
        touched = time.monotonic() - started
        waited.append(await _drained(shipper))
        gc.collect()
        active_rss, active = rss_kib(os.getpid()), _launch_actors(system)
        blocks = sys.getallocatedblocks()
        started = time.monotonic()
        system.passivate_idle(0.0)  # what the reaper does after ASTRO_ACTOR_IDLE_SECONDS
        # Passivation takes an actor out of the registry at once; its on_stop (the lease given back)
        # runs after, and what it holds is freed only then.
        while (_launch_actors(system) or system.stopping) and time.monotonic() - started < 120:
            await asyncio.sleep(0.5)
        passivation = time.monotonic() - started
        waited.append(await _drained(shipper))
        gc.collect()
        passivated_rss, blocks_after = rss_kib(os.getpid()), sys.getallocatedblocks()
        trimmed = _trim()
        trimmed_rss = rss_kib(os.getpid())
        return {
            "actors_requested": count,
            "actors_active": active,
            "touch_seconds": round(touched, 1),
            "rss_before_kib": before,
            "rss_active_kib": active_rss,
            "rss_passivated_kib": passivated_rss,
            "rss_trimmed_kib": trimmed_rss,
            "malloc_trim": trimmed,
            "python_blocks_before": blocks_before,
            "python_blocks_active": blocks,
            "python_blocks_passivated": blocks_after,
            "passivation_seconds": round(passivation, 1),
            "actors_after_passivation": _launch_actors(system),
            "other_actors": system.active - _launch_actors(system),
            "log_backlog_waits_s": waited,
            "log_entries_dropped": shipper.dropped,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.actor_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    result = run_loop(child(args.count))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
