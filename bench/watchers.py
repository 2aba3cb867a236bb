"""One watcher process of `python -m bench ws`: COUNT WebSocket connections subscribed to one channel.

    python -m bench.watchers --url ws://127.0.0.1:8080/ws --channel launch:lch_... --count 2500 --out F

Talks to its parent on stdin/stdout: prints `READY {json}` once every connection is subscribed (or
failed), then waits for `FINAL <seats> <timeout>` on stdin, waits until every connection has seen an
occupancy of <seats> (or the timeout), writes the receipts to F (seats as int32, then the receipt
times as float64 of CLOCK_MONOTONIC, which every process of the machine shares) and prints
`DONE {json}`. Each receipt is timed when the frame is handed to the connection's reader.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp


class Watchers:
    def __init__(self, url: str, channel: str, count: int) -> None:
        self.url, self.channel, self.count = url, channel, count
        self.seats = array("i")
        self.times = array("d")
        self.last: list[int | None] = [None] * count
        self.subscribed = 0
        self.failed: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.target: int | None = None
        self.reached = 0
        self.all_reached = asyncio.Event()

    def _seen(self, i: int, seats: int) -> None:
        before = self.last[i]
        self.last[i] = seats
        target = self.target
        if target is not None and seats >= target and (before is None or before < target):
            self.reached += 1
            if self.reached >= self.subscribed:
                self.all_reached.set()

    async def one(self, i: int, session: aiohttp.ClientSession, gate: asyncio.Semaphore) -> None:
        try:
            async with gate:
                ws = await session.ws_connect(self.url, autoping=True, max_msg_size=0)
                await ws.send_str(json.dumps({"type": "subscribe", "channel": self.channel}))
                while True:
                    msg = await ws.receive(timeout=60)
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        raise ConnectionError(f"closed before subscribed: {msg.type.name} {msg.data}")
                    frame = json.loads(msg.data)
                    if frame.get("type") == "subscribed":
                        self._seen(i, int(frame["snapshot"]["launch"]["seats_booked"]))
                        self.subscribed += 1
                        break
                    if frame.get("type") == "error":
                        raise ConnectionError(f"refused: {frame.get('code')}")
        except Exception as exc:
            self.failed[f"{type(exc).__name__}: {exc}"[:120]] += 1
            return
        seats, times, loads, monotonic = self.seats, self.times, json.loads, time.monotonic
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                now = monotonic()
                frame = loads(msg.data)
                if frame.get("event") == "occupancy":
                    value = frame["data"]["seats_booked"]
                    seats.append(value)
                    times.append(now)
                    self._seen(i, value)
            else:
                self.closed[f"{msg.type.name}:{ws.close_code}"] += 1
                return


async def run(args: argparse.Namespace) -> None:
    watchers = Watchers(args.url, args.channel, args.count)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
    gate = asyncio.Semaphore(args.concurrency)
    started = time.monotonic()
    tasks = [asyncio.ensure_future(watchers.one(i, session, gate)) for i in range(args.count)]
    while watchers.subscribed + sum(watchers.failed.values()) < args.count:
        await asyncio.sleep(0.1)
    ready = {
        "subscribed": watchers.subscribed,
        "failed": dict(watchers.failed),
        "seconds": round(time.monotonic() - started, 1),
    }
    print("READY " + json.dumps(ready), flush=True)
    command = await asyncio.to_thread(sys.stdin.readline)
    _, target, timeout = command.split()
    watchers.target = int(target)
    watchers.reached = sum(1 for v in watchers.last if v is not None and v >= watchers.target)
    if watchers.reached < watchers.subscribed:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watchers.all_reached.wait(), float(timeout))
    data = watchers.seats.tobytes() + watchers.times.tobytes()
    await asyncio.to_thread(Path(args.out).write_bytes, data)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    done: dict[str, Any] = {
        "subscribed": watchers.subscribed,
        "failed": dict(watchers.failed),
        "saw_final": watchers.reached,
        "missed_final": watchers.subscribed - watchers.reached,
        "last_seen": dict(Counter(v for v in watchers.last if v is not None).most_common(5)),
        "closed_by_server": dict(watchers.closed),
        "receipts": len(watchers.seats),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
    }
    print("DONE " + json.dumps(done), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.wait_for(session.close(), 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.watchers", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--concurrency", type=int, default=200, help="connections opened at a time")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
