"""Rockets and launches in PostgreSQL: the agency's catalogue and the public queries."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Final

import asyncpg

from astro.domain.errors import Conflict, NotFound
from astro.domain.ids import new_id
from astro.domain.launches import OPEN
from astro.store import notices
from astro.store.postgres import write_tx

Row = dict[str, Any]

LAUNCH_COLUMNS: Final = """
    l.id, l.agency_id, l.rocket_id, l.slug, l.mission, l.destination, l.scheduled_at, l.price_cents,
    l.capacity, l.min_passengers, l.seats_booked, l.status, l.status_reason, l.public_from,
    l.last_delayed_at, l.confirmed_at, l.created_at, l.updated_at,
    r.name AS rocket_name, a.name AS agency_name"""
LAUNCH_FROM: Final = "launches l JOIN rockets r ON r.id = l.rocket_id JOIN agencies a ON a.id = l.agency_id"


async def fetch_launch(db: asyncpg.Pool | asyncpg.Connection, launch_id: str) -> Row:
    """One launch with its rocket's and agency's names (from a pool or inside a transaction)."""
    row = await db.fetchrow(f"SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM} WHERE l.id = $1", launch_id)
    if row is None:
        raise NotFound("no such launch")
    return dict(row.items())


def _rows(records: list[asyncpg.Record]) -> list[Row]:
    return [dict(r.items()) for r in records]


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

    async def create_launch(
        self,
        *,
        agency_id: str,
        rocket_id: str,
        slug: str,
        mission: str,
        destination: str,
        scheduled_at: datetime,
        price_cents: int,
        capacity: int,
        min_passengers: int,
        public_from: datetime,
    ) -> Row:
        launch_id = new_id("lch")
        candidate = slug
        for _ in range(5):
            try:
                async with write_tx(self._pool) as conn:
                    await conn.execute(
                        """INSERT INTO launches
                               (id, agency_id, rocket_id, slug, mission, destination, scheduled_at,
                               price_cents, capacity, min_passengers, public_from)
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
                        launch_id,
                        agency_id,
                        rocket_id,
                        candidate,
                        mission,
                        destination,
                        scheduled_at,
                        price_cents,
                        capacity,
                        min_passengers,
                        public_from,
                    )
                    row = await fetch_launch(conn, launch_id)
                    # The agency, and every VIP traveler as an exclusive early notice with the public link.
                    mail = notices.NoticeRows()
                    recipients = await notices.agency(conn, agency_id) + await notices.vip_travelers(conn)
                    mail.add("launch_scheduled", recipients, notices.launch_data(row))
                    await mail.write(conn)
                return row
            except asyncpg.UniqueViolationError:
                candidate = f"{slug}-{secrets.token_hex(2)}"  # another launch of that rocket that day
        raise Conflict("could not find a free slug for this launch; try again", code="slug_taken")

    async def launch(self, launch_id: str) -> Row:
        return await fetch_launch(self._pool, launch_id)

    async def launch_by_slug(self, slug: str) -> Row:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM} WHERE l.slug = $1", slug)
        if row is None:
            raise NotFound("no such launch")
        return dict(row.items())

    async def agency_launches(self, agency_id: str, after: str | None, limit: int) -> list[Row]:
        async with self._pool.acquire() as conn:
            return _rows(
                await conn.fetch(
                    f"""SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM}
                    WHERE l.agency_id = $1 AND ($2::text IS NULL OR l.id > $2) ORDER BY l.id LIMIT $3""",
                    agency_id,
                    after,
                    limit,
                )
            )

    async def upcoming(self) -> list[Row]:
        """Every launch still open for booking or not yet flown, soonest first (the public list)."""
        async with self._pool.acquire() as conn:
            return _rows(
                await conn.fetch(
                    f"""SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM}
                    WHERE l.status = ANY($1::text[]) ORDER BY l.scheduled_at, l.id""",
                    sorted(OPEN),
                )
            )
