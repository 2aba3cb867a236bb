"""Rockets and launches in PostgreSQL: the agency's catalogue and the public queries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg

from astro.domain.errors import Conflict, NotFound
from astro.domain.events import LaunchScheduled
from astro.domain.ids import new_id
from astro.domain.launch import Launch, LaunchLimitReached, Rocket, SlugTaken
from astro.domain.launches import OPEN, Range, Status
from astro.services.announcements import announcement, notices
from astro.store.errors import unavailable_as
from astro.store.notices import write_notices
from astro.store.postgres import write_tx

Row = dict[str, Any]

LAUNCH_COLUMNS: Final = """
    l.id, l.agency_id, l.rocket_id, l.slug, l.mission, l.destination, l.scheduled_at, l.price_cents,
    l.capacity, l.min_passengers, l.seats_booked, l.status, l.status_reason, l.public_from,
    l.last_delayed_at, l.confirmed_at, l.created_at, l.updated_at,
    r.name AS rocket_name, a.name AS agency_name, a.verified_at IS NOT NULL AS agency_verified,
    (SELECT COALESCE(sum(w.seats), 0) FROM waitlist_entries w
      WHERE w.launch_id = l.id AND w.status = 'offered')::int AS seats_offered"""
LAUNCH_FROM: Final = "launches l JOIN rockets r ON r.id = l.rocket_id JOIN agencies a ON a.id = l.agency_id"


def launch_of(row: asyncpg.Record) -> Launch:
    """A launch row (LAUNCH_COLUMNS) as the Launch aggregate."""
    return Launch(
        id=row["id"],
        agency_id=row["agency_id"],
        agency_name=row["agency_name"],
        rocket_id=row["rocket_id"],
        rocket_name=row["rocket_name"],
        slug=row["slug"],
        mission=row["mission"],
        destination=row["destination"],
        scheduled_at=row["scheduled_at"],
        price_cents=row["price_cents"],
        capacity=row["capacity"],
        min_passengers=row["min_passengers"],
        seats_booked=row["seats_booked"],
        status=Status(row["status"]),
        status_reason=row["status_reason"],
        public_from=row["public_from"],
        last_delayed_at=row["last_delayed_at"],
        confirmed_at=row["confirmed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        agency_verified=row["agency_verified"],
        seats_offered_read=row["seats_offered"],
    )


async def fetch_launch(db: asyncpg.Pool | asyncpg.Connection, launch_id: str) -> Launch:
    """One launch with its rocket's and agency's names (from a pool or inside a transaction)."""
    row = await db.fetchrow(f"SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM} WHERE l.id = $1", launch_id)
    if row is None:
        raise NotFound("no such launch")
    return launch_of(row)


def _rows(records: list[asyncpg.Record]) -> list[Row]:
    return [dict(r.items()) for r in records]


def _launches(records: list[asyncpg.Record]) -> list[Launch]:
    return [launch_of(r) for r in records]


@unavailable_as("PostgreSQL")
class PgCatalog:
    """Rockets and launches: creation, editing and reads."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # -- rockets ---------------------------------------------------------------------------------

    async def create_rocket(self, agency_id: str, name: str, capacity: int, range_: str) -> Row:
        async with write_tx(self._pool) as conn:
            row = await conn.fetchrow(
                """INSERT INTO rockets (id, agency_id, name, capacity, range) VALUES ($1, $2, $3, $4, $5)
                   RETURNING id, agency_id, name, capacity, range, created_at, updated_at""",
                new_id("rkt"),
                agency_id,
                name,
                capacity,
                range_,
            )
        return dict(row.items())

    async def rockets(self, agency_id: str, after: str | None, limit: int) -> list[Row]:
        async with self._pool.acquire() as conn:
            return _rows(
                await conn.fetch(
                    """SELECT id, agency_id, name, capacity, range, created_at, updated_at FROM rockets
                   WHERE agency_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR id > $2)
                   ORDER BY id LIMIT $3""",
                    agency_id,
                    after,
                    limit,
                )
            )

    async def rocket(self, agency_id: str, rocket_id: str) -> Row:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT id, agency_id, name, capacity, range, created_at, updated_at FROM rockets
                   WHERE id = $1 AND agency_id = $2 AND deleted_at IS NULL""",
                rocket_id,
                agency_id,
            )
        if row is None:
            raise NotFound("no such rocket")
        return dict(row.items())

    async def update_rocket(
        self, agency_id: str, rocket_id: str, name: str, capacity: int, range_: str
    ) -> Row:
        async with write_tx(self._pool) as conn:
            row = await conn.fetchrow(
                """UPDATE rockets SET name = $3, capacity = $4, range = $5, updated_at = now()
                   WHERE id = $1 AND agency_id = $2 AND deleted_at IS NULL
                   RETURNING id, agency_id, name, capacity, range, created_at, updated_at""",
                rocket_id,
                agency_id,
                name,
                capacity,
                range_,
            )
        if row is None:
            raise NotFound("no such rocket")
        return dict(row.items())

    async def delete_rocket(self, agency_id: str, rocket_id: str) -> None:
        """Delete a rocket with no unfinished launch; finished launches keep pointing at it."""
        async with write_tx(self._pool) as conn:
            row = await conn.fetchrow(
                "SELECT id FROM rockets WHERE id = $1 AND agency_id = $2 AND deleted_at IS NULL FOR UPDATE",
                rocket_id,
                agency_id,
            )
            if row is None:
                raise NotFound("no such rocket")
            busy = await conn.fetchval(
                "SELECT count(*) FROM launches WHERE rocket_id = $1 AND status = ANY($2::text[])",
                rocket_id,
                sorted(OPEN),
            )
            if busy:
                raise Conflict(
                    f"the rocket has {busy} launch(es) not finished; finish or abort them first",
                    {"open_launches": busy},
                    code="rocket_in_use",
                )
            await conn.execute("UPDATE rockets SET deleted_at = now() WHERE id = $1", rocket_id)

    # -- launches --------------------------------------------------------------------------------

    async def rocket_for_launch(self, agency_id: str, rocket_id: str) -> Rocket:
        """The agency's rocket, with the agency's name, to schedule a launch on."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT r.id, r.agency_id, a.name AS agency_name, r.name, r.capacity, r.range,
                          a.verified_at IS NOT NULL AS agency_verified
                   FROM rockets r JOIN agencies a ON a.id = r.agency_id
                   WHERE r.id = $1 AND r.agency_id = $2 AND r.deleted_at IS NULL""",
                rocket_id,
                agency_id,
            )
        if row is None:
            raise NotFound("no such rocket")
        return Rocket(
            row["id"],
            row["agency_id"],
            row["agency_name"],
            row["name"],
            row["capacity"],
            Range(row["range"]),
            row["agency_verified"],
        )

    async def create_launch(self, launch: Launch, scheduled: LaunchScheduled, per_day: int) -> None:
        """The new launch and its announcement to the agency and every VIP traveler, in one transaction;
        SlugTaken when another launch has its slug, LaunchLimitReached when the agency created `per_day`
        launches in the last 24 hours (counted under the agency row's lock: parallel creations queue)."""
        try:
            async with write_tx(self._pool) as conn:
                await conn.execute("SELECT 1 FROM agencies WHERE id = $1 FOR NO KEY UPDATE", launch.agency_id)
                made, oldest = await conn.fetchrow(
                    """SELECT count(*), min(created_at) FROM launches
                       WHERE agency_id = $1 AND created_at > $2::timestamptz - interval '1 day'""",
                    launch.agency_id,
                    launch.created_at,
                )
                if made >= per_day:
                    raise LaunchLimitReached(per_day, oldest + timedelta(days=1) - launch.created_at)
                await conn.execute(
                    """INSERT INTO launches
                           (id, agency_id, rocket_id, slug, mission, destination, scheduled_at,
                           price_cents, capacity, min_passengers, public_from, created_at, updated_at)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)""",
                    launch.id,
                    launch.agency_id,
                    launch.rocket_id,
                    launch.slug,
                    launch.mission,
                    launch.destination,
                    launch.scheduled_at,
                    launch.price_cents,
                    launch.capacity,
                    launch.min_passengers,
                    launch.public_from,
                    launch.created_at,
                )
                await write_notices(conn, notices([scheduled]))
        except asyncpg.UniqueViolationError as exc:
            if getattr(exc, "constraint_name", None) == "launches_slug_key":
                raise SlugTaken("another launch has this slug", {"slug": launch.slug}) from exc
            raise

    async def verify_agency(
        self, agency_id: str, by: str, now: datetime, vip_window: timedelta
    ) -> list[Launch]:
        """Mark the agency verified (once: a second call changes nothing and returns []). Its launches not
        flown yet become public as if scheduled now: VIP travelers alone see them for `vip_window`, and
        their early notice is written in the same transaction. Those launches, as they are now."""
        async with write_tx(self._pool) as conn:
            verified = await conn.fetchval(
                """UPDATE agencies SET verified_at = $2, verified_by = $3, updated_at = now()
                   WHERE id = $1 AND verified_at IS NULL RETURNING id""",
                agency_id,
                now,
                by,
            )
            if verified is None:
                return []
            await conn.execute(
                """UPDATE launches SET public_from = $2, updated_at = $3
                   WHERE agency_id = $1 AND status = ANY($4::text[]) AND scheduled_at > $3""",
                agency_id,
                now + vip_window,
                now,
                sorted(OPEN),
            )
            launches = _launches(
                await conn.fetch(
                    f"""SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM}
                    WHERE l.agency_id = $1 AND l.status = ANY($2::text[]) AND l.scheduled_at > $3
                    ORDER BY l.id""",
                    agency_id,
                    sorted(OPEN),
                    now,
                )
            )
            await write_notices(conn, [announcement(launch.facts()) for launch in launches])
        return launches

    async def launch(self, launch_id: str) -> Launch:
        return await fetch_launch(self._pool, launch_id)

    async def launch_by_slug(self, slug: str) -> Launch:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM} WHERE l.slug = $1", slug)
        if row is None:
            raise NotFound("no such launch")
        return launch_of(row)

    async def agency_launches(self, agency_id: str, after: str | None, limit: int) -> list[Launch]:
        async with self._pool.acquire() as conn:
            return _launches(
                await conn.fetch(
                    f"""SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM}
                    WHERE l.agency_id = $1 AND ($2::text IS NULL OR l.id > $2) ORDER BY l.id LIMIT $3""",
                    agency_id,
                    after,
                    limit,
                )
            )

    async def upcoming(self) -> list[Launch]:
        """Every launch still open for booking or not yet flown, soonest first (the public list)."""
        async with self._pool.acquire() as conn:
            return _launches(
                await conn.fetch(
                    f"""SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM}
                    WHERE l.status = ANY($1::text[]) AND a.verified_at IS NOT NULL
                    ORDER BY l.scheduled_at, l.id""",
                    sorted(OPEN),
                )
            )
