"""The baseline: a minimal aiohttp server booking with `SELECT ... FOR UPDATE` per request (DESIGN 11).

Same schema, same JWT, same body model, same sandbox gateway and booking rules as the platform, but no
actors and no group commit: each POST /api/booking/bookings checks the launch, authorizes the amount
through the sandbox gateway, then in one transaction of its own locks the launch row, checks it again,
inserts the booking, its passengers and its charge, and raises `launches.seats_booked`; after the
COMMIT it captures the authorization. That is the platform's payment work per booking (authorize, then
capture: two gateway calls), less its payment-attempt rows. A booking refused inside the transaction
is voided. No VIP lookup (travelers count as non-VIP), no token revocation check, and an
Idempotency-Key is accepted and ignored (no idempotency record).

    python -m bench.baseline --dsn postgresql://... --port 8099 --secret <ASTRO_JWT_SECRET>
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import jwt
from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from astro.domain.bookings import Passenger, check_ages, check_seats
from astro.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, Unauthenticated
from astro.domain.ids import new_id
from astro.schemas.launches import BookingIn
from astro.store.payments import SandboxGateway
from bench.serving import run_loop, serve_until_stopped
from web.errors import domain_error_response

OPEN: Final = ("scheduled", "confirmed", "delayed")
REQUIRED_CLAIMS: Final = ["sub", "role", "jti", "iat", "exp"]
BOOKING_IN: Final = TypeAdapter(BookingIn)
POOL: Final = web.AppKey("pool", asyncpg.Pool)
GATEWAY: Final = web.AppKey("gateway", SandboxGateway)
SECRET: Final = web.AppKey("secret", str)

LAUNCH_COLUMNS: Final = """id, slug, mission, status, scheduled_at, public_from, price_cents, capacity,
    min_passengers, seats_booked"""


def traveler_of(request: web.Request) -> str:
    """The traveler's id from the Bearer token: HS256, required claims, expiry, role traveler."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("log in first: send Authorization: Bearer <token>")
    try:
        claims = jwt.decode(
            token.strip(), request.app[SECRET], algorithms=["HS256"], options={"require": REQUIRED_CLAIMS}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token expired", code="token_expired") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("token invalid", code="invalid_token") from None
    if claims["role"] != "traveler":
        raise Forbidden("this needs the role traveler")
    return str(claims["sub"])


async def read_booking(request: web.Request) -> BookingIn:
    raw = await request.read()
    if not raw:
        raise InvalidInput("a JSON body is required", {"fields": {"body": "missing"}})
    try:
        return BOOKING_IN.validate_json(raw)
    except ValidationError as exc:
        fields = {".".join(map(str, e["loc"])) or "body": e["msg"] for e in exc.errors(include_url=False)}
        raise InvalidInput("some fields are missing or wrong", {"fields": fields}) from None


def check_open(launch: asyncpg.Record, seats: int, now: datetime) -> None:
    if launch["status"] not in OPEN or now >= launch["scheduled_at"]:
        raise Conflict(
            f"this launch takes no bookings ({launch['status']})",
            {"status": launch["status"]},
            code="launch_not_bookable",
        )
    if now < launch["public_from"]:
        raise Forbidden("this launch is open to VIP travelers only until public_from", code="vip_only")
    available = launch["capacity"] - launch["seats_booked"]
    if seats > available:
        raise Conflict(
            f"only {max(available, 0)} seat(s) left",
            {"seats_available": max(available, 0), "seats_requested": seats},
            code="sold_out",
        )


async def book(request: web.Request) -> web.Response:
    traveler_id = traveler_of(request)
    data = await read_booking(request)
    check_seats(data.seats, len(data.passengers), False)
    passengers = [Passenger(p.name, p.birth_date) for p in data.passengers]
    pool = request.app[POOL]
    now = datetime.now(UTC)
    launch = await pool.fetchrow(f"SELECT {LAUNCH_COLUMNS} FROM launches WHERE id = $1", data.launch_id)
    if launch is None:
        raise NotFound("no such launch")
    check_open(launch, data.seats, now)
    check_ages(passengers, launch["scheduled_at"].date())
    booking_id = new_id("bkg")
    total = launch["price_cents"] * data.seats
    gateway = request.app[GATEWAY]
    charge_ref = await gateway.authorize(
        key=booking_id, amount_cents=total, card_token=data.card_token, metadata={"booking_id": booking_id}
    )
    try:
        async with pool.acquire() as conn, conn.transaction():
            launch = await conn.fetchrow(
                f"SELECT {LAUNCH_COLUMNS} FROM launches WHERE id = $1 FOR UPDATE", data.launch_id
            )
            check_open(launch, data.seats, now)
            await conn.execute(
                """INSERT INTO bookings
                       (id, launch_id, traveler_id, seats, price_cents, total_cents, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                booking_id,
                data.launch_id,
                traveler_id,
                data.seats,
                launch["price_cents"],
                total,
                now,
            )
            await conn.executemany(
                "INSERT INTO passengers (booking_id, position, name, birth_date) VALUES ($1, $2, $3, $4)",
                [(booking_id, i, p.name, p.birth_date) for i, p in enumerate(passengers)],
            )
            await conn.execute(
                """INSERT INTO traveler_payments (id, booking_id, kind, amount_cents, status, gateway_ref)
                   VALUES ($1, $2, 'charge', $3, 'done', $4)""",
                new_id("pay"),
                booking_id,
                total,
                charge_ref,
            )
            seats_booked = launch["seats_booked"] + data.seats
            confirm = launch["status"] == "scheduled" and seats_booked >= launch["min_passengers"]
            await conn.execute(
                """UPDATE launches SET seats_booked = $2, updated_at = now(),
                       status = CASE WHEN $3 THEN 'confirmed' ELSE status END,
                       confirmed_at = CASE WHEN $3 THEN COALESCE(confirmed_at, $4) ELSE confirmed_at END
                   WHERE id = $1""",
                data.launch_id,
                seats_booked,
                confirm,
                now,
            )
    except BaseException:
        with contextlib.suppress(DomainError):
            await gateway.void(charge_ref, key=booking_id)
        raise
    await gateway.capture(charge_ref, key=booking_id)
    body = {
        "booking": {
            "id": booking_id,
            "launch_id": data.launch_id,
            "seats": data.seats,
            "price_cents": launch["price_cents"],
            "total_cents": total,
            "status": "confirmed",
            "created_at": now.isoformat(),
            "launch_status": "confirmed" if confirm else launch["status"],
            "launch_slug": launch["slug"],
            "mission": launch["mission"],
            "scheduled_at": launch["scheduled_at"].isoformat(),
            "passengers": [{"name": p.name, "birth_date": p.birth_date.isoformat()} for p in passengers],
        }
    }
    return web.Response(text=json.dumps(body), status=201, content_type="application/json")


async def ready(request: web.Request) -> web.Response:
    await request.app[POOL].fetchval("SELECT 1")
    return web.json_response({"status": "ready"})


@web.middleware
async def errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        return domain_error_response(exc)


def create_app(dsn: str, secret: str, pool_size: int) -> web.Application:
    app = web.Application(middlewares=[errors])
    app[SECRET] = secret

    async def pool_ctx(app: web.Application) -> Any:
        pool = await asyncpg.create_pool(
            dsn, min_size=pool_size, max_size=pool_size, server_settings={"timezone": "UTC"}
        )
        app[POOL] = pool
        app[GATEWAY] = SandboxGateway(pool)  # the same durable sandbox ledger as the platform's
        yield
        await pool.close()

    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/api/booking/bookings", book)
    app.router.add_get("/ready", ready, allow_head=False)
    return app


async def serve(dsn: str, secret: str, host: str, port: int, pool_size: int) -> int:
    app = create_app(dsn, secret, pool_size)
    banner = f"baseline up on http://{host}:{port} (pool {pool_size})"
    return await serve_until_stopped(app, host, port, banner, shutdown_timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", required=True, help="PostgreSQL DSN of a migrated AstroBookings database")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--secret", required=True, help="the platform's ASTRO_JWT_SECRET")
    parser.add_argument("--pool", type=int, default=10, help="PostgreSQL connections (default 10)")
    args = parser.parse_args(argv)
    coro = serve(args.dsn, args.secret, args.host, args.port, args.pool)
    return run_loop(coro)


if __name__ == "__main__":
    sys.exit(main())
