"""WebSocket scenarios: `ws` (5,000 watchers of one launch while it takes bookings) and `ws-memory`.

ws: the watchers live in --watcher-procs client processes (bench/watchers.py; one Python process
cannot read 5,000 sockets fast enough) subscribed to `launch:<id>`; this process books that launch at
--ws-rate bookings/s (open loop: a booking starts every 1/rate s, whatever the earlier ones do).
Commit-to-receipt: an occupancy event saying `seats_booked = S` (on a launch that started empty)
reports the commit of the S-th booking, so its commit happened no later than the arrival of the
S-th 201 answer and no earlier than the sending of the S-th request that got one. Each receipt is
timed against the first (the figure: a slight under-estimate, by the answer's way back) and the
second (an over-estimate that includes the whole booking); both on CLOCK_MONOTONIC, which the
processes share. Then every watcher must have seen the final occupancy.

ws-memory: the platform's resident memory (VmRSS) before and after opening N idle connections, then
after subscribing each to one launch (an idle watcher), and after closing them.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from array import array
from pathlib import Path
from typing import Any, Final

import aiohttp
import asyncpg

from bench.common import IDEMPOTENCY_HEADER, idempotency_key, ms, percentile, progress
from bench.goals import line
from bench.servers import ServerProcess, rss_kib
from bench.session import MAX_CAPACITY, Bench, insert_launches, make_world
from bench.throughput import audit

GOAL_KIB: Final = 12  # issue 17: memory per idle WebSocket connection
READY_TIMEOUT: Final = 180.0
FINAL_TIMEOUT: Final = 20.0
DRIVER_CONNECTIONS: Final = 64


class _Child:
    """A watcher process and its line protocol."""

    def __init__(self, proc: asyncio.subprocess.Process, out: Path) -> None:
        self.proc, self.out = proc, out

    async def expect(self, word: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.proc.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not raw:
                raise RuntimeError(f"a watcher process exited (code {self.proc.returncode}) before {word}")
            text = raw.decode()
            if text.startswith(word + " "):
                data: dict[str, Any] = json.loads(text[len(word) + 1 :])
                return data

    def tell(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")

    def receipts(self) -> tuple[array[int], array[float]]:
        raw = self.out.read_bytes()
        n = len(raw) // 12
        seats, times = array("i"), array("d")
        seats.frombytes(raw[: 4 * n])
        times.frombytes(raw[4 * n :])
        return seats, times


async def _spawn_watchers(bench: Bench, platform: ServerProcess, channel: str, total: int) -> list[_Child]:
    procs = max(1, bench.opts.watcher_procs)
    url = platform.base_url.replace("http://", "ws://") + "/ws"
    children = []
    for n in range(procs):
        count = total // procs + (1 if n < total % procs else 0)
        out = bench.dir / f"receipts-{n}.bin"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.watchers",
            "--url",
            url,
            "--channel",
            channel,
            "--count",
            str(count),
            "--out",
            str(out),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        children.append(_Child(proc, out))
    return children


async def _drive(base_url: str, tokens: list[str], launch_id: str, count: int, rate: float) -> dict[str, Any]:
    """Open-loop bookings at `rate`/s: (send time, 201 time) of every booking answered 201."""
    url = base_url + "/api/booking/bookings"
    acked: list[tuple[float, float]] = []
    answers: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=DRIVER_CONNECTIONS)

    async def book(session: aiohttp.ClientSession, k: int) -> None:
        body = {
            "launch_id": launch_id,
            "seats": 1,
            "passengers": [{"name": f"Watcher driver {k}", "birth_date": "1990-01-01"}],
            "card_token": "tok_ok",
        }
        headers = {
            "Authorization": f"Bearer {tokens[k % len(tokens)]}",
            IDEMPOTENCY_HEADER: idempotency_key(),
        }
        sent = time.monotonic()
        try:
            async with session.post(url, json=body, headers=headers) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            answers[type(exc).__name__] = answers.get(type(exc).__name__, 0) + 1
            return
        if status == 201:
            acked.append((sent, time.monotonic()))
        else:
            answers[str(status)] = answers.get(str(status), 0) + 1

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()
        tasks = []
        for k in range(count):
            delay = started + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(book(session, k)))
        sending = time.monotonic() - started
        await asyncio.gather(*tasks)
    answers_at = sorted(a for _, a in acked)
    # first to last answer: a platform that keeps up answers at the offered rate, one that falls behind
    # answers later and later
    answering = answers_at[-1] - answers_at[0] if len(answers_at) > 1 else 0.0
    return {
        "acked": acked,
        "answers": answers,
        "sent": count,
        "send_seconds": round(sending, 2),
        "offered_per_s": round(count / sending, 1) if sending else None,
        "acked_per_s": round((len(acked) - 1) / answering, 1) if answering > 0 else None,
    }


async def _seats(dsn: str, launch_id: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT seats_booked FROM launches WHERE id = $1", launch_id))
    finally:
        await conn.close()


async def watchers(bench: Bench) -> list[dict[str, Any]]:
    opts = bench.opts
    await bench.fresh("ws")
    dsn = bench.stores.pg_dsn
    platform = bench.platform()
    children: list[_Child] = []
    async with bench.running(platform):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            world = await make_world(session, platform, bench.stores, min(opts.travelers, 16))
        (launch_id,) = await insert_launches(dsn, world, tag="WSWATCH", count=1, capacity=MAX_CAPACITY)
        start_seats = await _seats(dsn, launch_id)
        try:
            progress(f"ws: {opts.watchers} watchers in {opts.watcher_procs} processes on launch:{launch_id}")
            children = await _spawn_watchers(bench, platform, f"launch:{launch_id}", opts.watchers)
            ready = [await c.expect("READY", READY_TIMEOUT) for c in children]
            subscribed = sum(r["subscribed"] for r in ready)
            progress(f"ws: {subscribed} subscribed; booking {opts.ws_bookings} at {opts.ws_rate}/s")
            await asyncio.sleep(1.0)
            drive = await bench.measured(
                _drive(platform.base_url, world.tokens, launch_id, opts.ws_bookings, opts.ws_rate)
            )
            final = await _seats(dsn, launch_id)
            for c in children:
                c.tell(f"FINAL {final} {FINAL_TIMEOUT}")
            done = [await c.expect("DONE", FINAL_TIMEOUT + 60) for c in children]
            for c in children:
                await asyncio.wait_for(c.proc.wait(), 30)
        finally:
            for c in children:
                if c.proc.returncode is None:
                    c.proc.kill()
                    await c.proc.wait()
    found = await audit(dsn, [launch_id], len(drive["acked"]))
    latency = _latencies(children, drive["acked"], start_seats, subscribed)
    missed = sum(d["missed_final"] for d in done) + (opts.watchers - subscribed)
    checks = {
        "missed_final_occupancy": missed,
        "overbooked_seats": found["overbooked_seats"],
        "acked_not_in_db": found["acked_not_in_db"],
    }
    p99, taken = latency["p99_ms"], drive["acked_per_s"]
    kept_up = taken is not None and taken >= 0.95 * opts.ws_rate  # "while it takes 200 bookings/s"
    met = p99 is not None and p99 <= 100 and kept_up and all(v == 0 for v in checks.values())
    gaps = [f"p99 {p99} ms (goal 100 ms)"] if p99 is None or p99 > 100 else []
    if missed:
        gaps.append(f"{missed} watcher(s) missed the final occupancy")
    if not kept_up:
        gaps.append(f"the launch took {taken} bookings/s of the {opts.ws_rate:g}/s offered")
    return [
        line(
            "ws",
            figure=p99,
            unit="ms (p99 commit → receipt)",
            met=met,
            checks=checks,
            gap="; ".join(gaps) or "a correctness check is not 0",
            generator=f"aiohttp WebSocket clients in {len(children)} processes; aiohttp booking driver",
            details={
                "method": (
                    "commit time of the occupancy `seats_booked = S` taken as the arrival of the S-th 201 "
                    "(figure: a lower bound); the send of the S-th answered request gives the upper bound"
                ),
                "watchers": opts.watchers,
                "subscribed": subscribed,
                "subscribe_seconds": max(r["seconds"] for r in ready),
                "connect_failures": [r["failed"] for r in ready if r["failed"]],
                **latency,
                "final_seats": final,
                "booking_driver": {k: v for k, v in drive.items() if k != "acked"}
                | {"acked": len(drive["acked"])},
                "watcher_processes": done,
                "servers": bench.stores.sources,
                "server_logs": bench.logs,
            },
        )
    ]


def _latencies(
    children: list[_Child], acked: list[tuple[float, float]], start: int, watchers: int
) -> dict[str, Any]:
    answered = sorted(a for _, a in acked)
    sent = sorted(s for s, _ in acked)
    lower: list[float] = []
    upper: list[float] = []
    receipts = 0
    for child in children:
        seats, times = child.receipts()
        receipts += len(seats)
        for s, t in zip(seats, times, strict=True):
            k = s - start - 1
            if 0 <= k < len(answered):
                lower.append(t - answered[k])
                upper.append(t - sent[k])
    lower.sort()
    upper.sort()
    return {
        "p50_ms": ms(percentile(lower, 50)),
        "p99_ms": ms(percentile(lower, 99)),
        "max_ms": ms(lower[-1] if lower else None),
        "upper_bound_p50_ms": ms(percentile(upper, 50)),
        "upper_bound_p99_ms": ms(percentile(upper, 99)),
        "receipts": receipts,
        "receipts_timed": len(lower),
        "receipts_per_watcher": round(receipts / max(1, watchers), 1),
    }


async def _steady_rss(pids: list[int]) -> int:
    """The median of three readings half a second apart, in KiB, summed over the serving processes."""
    readings = []
    for _ in range(3):
        readings.append(sum(rss_kib(pid) for pid in pids))
        await asyncio.sleep(0.5)
    return int(statistics.median(readings))


async def _open(
    session: aiohttp.ClientSession, url: str, count: int
) -> list[aiohttp.ClientWebSocketResponse]:
    gate = asyncio.Semaphore(100)

    async def one() -> aiohttp.ClientWebSocketResponse:
        async with gate:
            return await session.ws_connect(url, autoping=True)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def _subscribe(sockets: list[aiohttp.ClientWebSocketResponse], channel: str) -> None:
    gate = asyncio.Semaphore(100)

    async def one(ws: aiohttp.ClientWebSocketResponse) -> None:
        async with gate:
            await ws.send_str(json.dumps({"type": "subscribe", "channel": channel}))
            frame = json.loads((await ws.receive(timeout=30)).data)
            if frame.get("type") != "subscribed":
                raise RuntimeError(f"subscribe refused: {frame}")

    await asyncio.gather(*(one(ws) for ws in sockets))


async def memory(bench: Bench) -> list[dict[str, Any]]:
    opts = bench.opts
    n = opts.idle_connections
    await bench.fresh("ws-memory")
    platform = bench.platform()
    async with bench.running(platform):
        assert platform.process is not None
        pids = bench.pids(platform)  # the workers' under --workers 2: the connections are spread
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            world = await make_world(session, platform, bench.stores, 0)
        (launch_id,) = await insert_launches(bench.stores.pg_dsn, world, tag="WSMEM", count=1, capacity=10)
        channel, url = f"launch:{launch_id}", platform.base_url.replace("http://", "ws://") + "/ws"
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            warm = await _open(session, url, 100)  # code paths, pools and caches warm first
            await _subscribe(warm, channel)
            await asyncio.gather(*(ws.close() for ws in warm))
            await asyncio.sleep(2.0)
            before = await _steady_rss(pids)
            progress(f"ws-memory: platform RSS {before} KiB; opening {n} connections")
            sockets = await _open(session, url, n)
            await asyncio.sleep(2.0)
            opened = await _steady_rss(pids)
            await _subscribe(sockets, channel)
            await asyncio.sleep(2.0)
            subscribed = await _steady_rss(pids)
            progress(f"ws-memory: {opened} KiB open, {subscribed} KiB subscribed; closing")
            await asyncio.gather(*(ws.close() for ws in sockets))
            await asyncio.sleep(3.0)
            closed = await _steady_rss(pids)
    per_open = round((opened - before) / n, 2)
    per_watcher = round((subscribed - before) / n, 2)
    return [
        line(
            "ws-memory",
            figure=per_watcher,
            unit="KiB/connection",
            met=per_watcher <= GOAL_KIB,
            checks={},
            gap=f"{per_watcher} KiB per connection (goal {GOAL_KIB} KiB)",
            generator="aiohttp WebSocket clients (this process)",
            details={
                "method": (
                    "VmRSS of the `python run.py` process (summed over its workers under --workers 2; "
                    "median of 3 readings) before, with N connections "
                    "open, with each subscribed to one launch channel (the figure: an idle watcher), after "
                    "closing them; 100 connections opened and closed first to warm up"
                ),
                "connections": n,
                "rss_before_kib": before,
                "rss_open_kib": opened,
                "rss_subscribed_kib": subscribed,
                "rss_after_close_kib": closed,
                "per_open_connection_kib": per_open,
                "per_subscribed_connection_kib": per_watcher,
                "servers": bench.stores.sources,
                "server_logs": bench.logs,
            },
        )
    ]
