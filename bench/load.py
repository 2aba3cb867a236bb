"""Load generation for the figures: Debian's `wrk` when installed, else the aiohttp clients of common.

Both generators drive a server for a fixed time with a fixed number of open connections and report
the same figures: answers per second, latency percentiles and the answers by kind. With wrk the Lua
scripts in bench/wrk/ build each booking (a unique body, a token rotated over the travelers) and
print one JSON line; wrk's latency percentiles cover every answer, refused ones included.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import aiohttp

from bench.common import book_until_sold_out, ms, percentile, progress

WRK_DIR: Final = Path(__file__).resolve().parent / "wrk"
WRK_THREADS: Final = 1  # one thread: every connection follows the same hot launch; wrk is not the limit
BOOKINGS_PATH: Final = "/api/booking/bookings"


def wrk_path() -> str | None:
    return shutil.which("wrk")


async def _run_wrk(url: str, script: str, seconds: float, connections: int, *args: str) -> dict[str, Any]:
    wrk = wrk_path()
    assert wrk is not None
    cmd = [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_DIR / script),
        url,
    ]
    if args:
        cmd += ["--", *args]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), seconds + 60)
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("WRKJSON "):
            data: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
            return data
    raise RuntimeError(f"wrk gave no figures (exit {proc.returncode}): {err.decode()[-800:]}")


def _figures_from_wrk(raw: dict[str, Any], good: int) -> dict[str, Any]:
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    return {
        "generator": "wrk",
        "requests": raw["requests"],
        "good": good,
        "per_s": round(good / seconds, 1) if seconds else None,
        "requests_per_s": round(raw["requests"] / seconds, 1) if seconds else None,
        "seconds": round(seconds, 2),
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "latency_of": "every answer",
        "socket_errors": {k: v for k, v in raw["errors"].items() if k != "status" and v},
        "non_2xx": raw["errors"]["status"],
    }


async def get_load(url: str, *, seconds: float, connections: int, use_wrk: bool) -> dict[str, Any]:
    """GET url for `seconds` over `connections` connections; good answers are 2xx."""
    if use_wrk:
        raw = await _run_wrk(url, "get.lua", seconds, connections)
        figures = _figures_from_wrk(raw, raw["requests"] - raw["errors"]["status"])
    else:
        figures = await _aiohttp_get(url, seconds=seconds, connections=connections)
    progress(
        f"  GET {url}: {figures['per_s']}/s, p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms "
        f"({figures['generator']})"
    )
    return figures


async def _aiohttp_get(url: str, *, seconds: float, connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections, ttl_dns_cache=None)
    started = time.perf_counter()
    deadline = started + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                answers[f"client_error:{type(exc).__name__}"] += 1
                await asyncio.sleep(0.05)
                continue
            if 200 <= status < 300:
                latencies.append(time.perf_counter() - sent)
            else:
                answers[str(status)] += 1

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    done = sorted(latencies)
    return {
        "generator": "aiohttp",
        "requests": len(done) + sum(answers.values()),
        "good": len(done),
        "per_s": round(len(done) / elapsed, 1),
        "seconds": round(elapsed, 2),
        "p50_ms": ms(percentile(done, 50)),
        "p99_ms": ms(percentile(done, 99)),
        "max_ms": ms(done[-1] if done else None),
        "latency_of": "2xx answers",
        "answers": dict(answers),
    }


async def booking_load(
    base_url: str,
    tokens: list[str],
    launch_ids: list[str],
    *,
    mode: str,
    seconds: float,
    connections: int,
    use_wrk: bool,
) -> dict[str, Any]:
    """One-seat bookings for `seconds`: `sequential` fills the launches in turn, `spread` picks at random."""
    if use_wrk:
        with tempfile.NamedTemporaryFile("w", prefix="bench-plan-", suffix=".txt") as plan:
            plan.write(f"mode {mode}\nrun {secrets.token_hex(6)}\n")  # the Idempotency-Keys' prefix
            plan.writelines(f"token {t}\n" for t in tokens)
            plan.writelines(f"launch {i}\n" for i in launch_ids)
            plan.flush()
            raw = await _run_wrk(base_url + BOOKINGS_PATH, "book.lua", seconds, connections, plan.name)
        figures = _figures_from_wrk(raw, raw["booked"])
        figures["answers"] = {
            "201": raw["booked"],
            "409:sold_out": raw["sold_out"],
            "5xx": raw["server_errors"],
            "other": raw["other"],
        }
        figures["http_5xx"] = raw["server_errors"]
        figures["launches_used"] = raw["moved"] + 1 if mode == "sequential" else len(launch_ids)
    else:
        result = await book_until_sold_out(
            base_url, tokens, launch_ids, mode=mode, clients=connections, seconds=seconds
        )
        raw_figures = result.figures()
        figures = {
            "generator": "aiohttp",
            "requests": raw_figures["requests"],
            "good": raw_figures["bookings"],
            "per_s": raw_figures["bookings_per_s"],
            "seconds": raw_figures["seconds"],
            "p50_ms": raw_figures["p50_ms"],
            "p99_ms": raw_figures["p99_ms"],
            "max_ms": raw_figures["max_ms"],
            "latency_of": "201 answers",
            "answers": raw_figures["answers"],
            "http_5xx": raw_figures["http_5xx"],
        }
    progress(
        f"  bookings ({mode}): {figures['good']} in {figures['seconds']} s = {figures['per_s']}/s, "
        f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, answers {figures.get('answers')} "
        f"({figures['generator']})"
    )
    return figures
