"""The ceiling: the least a durable booking server can do on this machine, in Python and PostgreSQL.

aiohttp + asyncpg on uvloop, one process. POST /api/booking/bookings reads the body, takes the traveler
from the token's `sub` without checking its signature (no auth), and queues the booking; one writer
task takes whatever is queued and, in ONE transaction, stores every accepted booking with one
`INSERT ... SELECT FROM unnest(...)` and raises each launch's `seats_booked` with one `UPDATE launches
... FROM unnest(...)` (group commit). Each request is answered only after that COMMIT, with
synchronous_commit as the server has it (on). Seats are counted in memory per launch, loaded from
`launches` on first sight: a booking that does not fit is answered 409 `sold_out` at once, like the
platform; the UPDATE checks the capacity again and a batch that would overbook is rolled back.

No JWT check, no payment, no idempotency records (an Idempotency-Key is accepted and ignored), no
logs, no e-mail, no change log: the bookings go to a table of its own, `ceiling_bookings` in the bench
database (no trigger, no foreign key, one index: its primary key). The bench audits it afterwards:
stored bookings against 201 answers, seats against capacity.

    python -m bench.ceiling --dsn postgresql://.../astro_bench --port 8097
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import asyncpg
from aiohttp import web

from astro.domain.ids import new_id
from bench.serving import run_loop, serve_until_stopped

OPEN: Final = ("scheduled", "confirmed", "delayed")
TABLE: Final = """CREATE TABLE IF NOT EXISTS ceiling_bookings (
    id          text PRIMARY KEY,
    launch_id   text NOT NULL,
    traveler_id text NOT NULL,
    seats       integer NOT NULL,
    total_cents bigint NOT NULL,
    passengers  text NOT NULL,
    created_at  timestamptz NOT NULL
)"""
INSERT: Final = """INSERT INTO ceiling_bookings
        (id, launch_id, traveler_id, seats, total_cents, passengers, created_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::text[],
                         $7::timestamptz[])"""
UPDATE: Final = """UPDATE launches l SET seats_booked = l.seats_booked + v.added, updated_at = now(),
        status = CASE WHEN l.status = 'scheduled' AND l.seats_booked + v.added >= l.min_passengers
                      THEN 'confirmed' ELSE l.status END
    FROM unnest($1::text[], $2::int[]) AS v(id, added)
    WHERE l.id = v.id AND l.seats_booked + v.added <= l.capacity
    RETURNING l.id"""
LOOKUP: Final = """SELECT id, capacity, seats_booked, price_cents, status, scheduled_at
    FROM launches WHERE id = ANY($1::text[])"""


class Refused(Exception):
    """A booking answered without being stored: its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Launch:
    capacity: int
    booked: int  # seats committed, plus those of the batch being written
    price_cents: int
    status: str
    scheduled_at: datetime


@dataclass
class Pending:
    booking_id: str
    launch_id: str
    traveler_id: str
    seats: int
    passengers: str
    answer: asyncio.Future[dict[str, Any]]
    total_cents: int = 0


class GroupCommit:
    """One writer for every launch: whatever is queued goes into one transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queue: list[Pending] = []
        self._wake = asyncio.Event()
        self._launches: dict[str, Launch] = {}
        self.stats = {"transactions": 0, "bookings": 0, "largest_batch": 0, "sold_out": 0, "failed": 0}

    async def book(self, launch_id: str, traveler_id: str, seats: int, passengers: str) -> dict[str, Any]:
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(new_id("bkg"), launch_id, traveler_id, seats, passengers, answer))
        self._wake.set()
        return await answer

    async def run(self) -> None:
        async with self._pool.acquire() as conn:
            while True:
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                batch, self._queue = self._queue, []
                try:
                    await self._write(conn, batch)
                except Exception as exc:  # the launch lookup failed: nothing of the batch was stored
                    for p in batch:
                        self._refuse(p, Refused(503, "unavailable", f"not stored: {type(exc).__name__}"))

    async def _write(self, conn: asyncpg.Connection, batch: list[Pending]) -> None:
        unknown = list({p.launch_id for p in batch} - self._launches.keys())
        if unknown:
            for row in await conn.fetch(LOOKUP, unknown):
                self._launches[row["id"]] = Launch(
                    row["capacity"],
                    row["seats_booked"],
                    row["price_cents"],
                    row["status"],
                    row["scheduled_at"],
                )
        now = datetime.now(UTC)
        accepted = [p for p in batch if self._admit(p, now)]
        if not accepted:
            return
        added: dict[str, int] = {}
        for p in accepted:
            added[p.launch_id] = added.get(p.launch_id, 0) + p.seats
        try:
            async with conn.transaction():
                await conn.execute(
                    INSERT,
                    [p.booking_id for p in accepted],
                    [p.launch_id for p in accepted],
                    [p.traveler_id for p in accepted],
                    [p.seats for p in accepted],
                    [p.total_cents for p in accepted],
                    [p.passengers for p in accepted],
                    [now] * len(accepted),
                )
                updated = await conn.fetch(UPDATE, list(added), list(added.values()))
                if len(updated) != len(added):
                    raise Refused(409, "sold_out", "a launch would be overbooked: the batch is rolled back")
        except (Exception, asyncio.CancelledError) as exc:
            self.stats["failed"] += len(accepted)
            for launch_id in added:  # counted afresh from the database on next sight
                self._launches.pop(launch_id, None)
            for p in accepted:
                if not p.answer.done():
                    p.answer.set_exception(Refused(503, "unavailable", f"not stored: {type(exc).__name__}"))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self.stats["transactions"] += 1
        self.stats["bookings"] += len(accepted)
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(accepted))
        for p in accepted:
            if not p.answer.done():
                p.answer.set_result(_booking(p, now))

    def _admit(self, p: Pending, now: datetime) -> bool:
        """Count the booking's seats in, or answer its refusal now."""
        launch = self._launches.get(p.launch_id)
        if launch is None:
            return self._refuse(p, Refused(404, "not_found", "no such launch"))
        if launch.status not in OPEN or now >= launch.scheduled_at:
            status = launch.status
            return self._refuse(
                p, Refused(409, "launch_not_bookable", f"this launch takes no bookings ({status})")
            )
        if launch.booked + p.seats > launch.capacity:
            self.stats["sold_out"] += 1
            left = max(0, launch.capacity - launch.booked)
            return self._refuse(p, Refused(409, "sold_out", f"only {left} seat(s) left"))
        launch.booked += p.seats
        p.total_cents = launch.price_cents * p.seats
        return True

    @staticmethod
    def _refuse(p: Pending, refusal: Refused) -> bool:
        if not p.answer.done():
            p.answer.set_exception(refusal)
        return False


WRITER: Final = web.AppKey("writer", GroupCommit)


def _booking(p: Pending, now: datetime) -> dict[str, Any]:
    return {
        "booking": {
            "id": p.booking_id,
            "launch_id": p.launch_id,
            "seats": p.seats,
            "total_cents": p.total_cents,
            "status": "confirmed",
            "created_at": now.isoformat(),
        }
    }


def _error(status: int, code: str, message: str) -> web.Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return web.Response(text=body, status=status, content_type="application/json")


def _traveler(request: web.Request) -> str:
    """The token's `sub`, read but not verified: the ceiling has no auth."""
    _, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["sub"])
    except (IndexError, ValueError, KeyError, TypeError):
        raise Refused(401, "unauthenticated", "send Authorization: Bearer <token>") from None


def _read(raw: bytes) -> tuple[str, int, str]:
    """launch_id, seats and the passengers (as stored: one JSON text) of a booking body."""
    try:
        data = json.loads(raw)
        launch_id, seats, passengers = data["launch_id"], data["seats"], data["passengers"]
        if not isinstance(launch_id, str) or not isinstance(seats, int) or not 1 <= seats <= 6:
            raise ValueError("launch_id or seats")
        if not isinstance(passengers, list) or len(passengers) != seats:
            raise ValueError("one passenger per seat")
        group = [(str(p["name"]), date.fromisoformat(p["birth_date"]).isoformat()) for p in passengers]
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(400, "invalid_input", f"some fields are missing or wrong: {exc}") from None
    return launch_id, seats, json.dumps(group)


async def book(request: web.Request) -> web.Response:
    """Idempotency-Key, when sent, is accepted and ignored."""
    try:
        traveler_id = _traveler(request)
        launch_id, seats, passengers = _read(await request.read())
        body = await request.app[WRITER].book(launch_id, traveler_id, seats, passengers)
    except Refused as refused:
        return _error(refused.status, refused.code, refused.message)
    return web.Response(text=json.dumps(body), status=201, content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    """Transactions and bookings written so far: the ceiling's transactions per booking."""
    return web.json_response(request.app[WRITER].stats)


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def create_app(dsn: str) -> web.Application:
    app = web.Application()

    async def writer_ctx(app: web.Application) -> Any:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, server_settings={"timezone": "UTC"})
        async with pool.acquire() as conn:
            await conn.execute(TABLE)
            mode = await conn.fetchval("SHOW synchronous_commit")
        print(f"ceiling: synchronous_commit = {mode}", flush=True)
        writer = app[WRITER] = GroupCommit(pool)
        task = asyncio.create_task(writer.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pool.close()

    app.cleanup_ctx.append(writer_ctx)
    app.router.add_post("/api/booking/bookings", book)
    app.router.add_get("/stats", stats, allow_head=False)
    app.router.add_get("/ready", ready, allow_head=False)
    return app


async def serve(dsn: str, host: str, port: int) -> int:
    banner = f"ceiling up on http://{host}:{port} (group commit)"
    return await serve_until_stopped(create_app(dsn), host, port, banner, shutdown_timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", required=True, help="PostgreSQL DSN of a migrated AstroBookings database")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    return run_loop(serve(args.dsn, args.host, args.port))


if __name__ == "__main__":
    sys.exit(main())
