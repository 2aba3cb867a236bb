"""Waiting lists in PostgreSQL: the launch actor's moves (inside its fenced transactions) and the reads.

Every move is a conditional UPDATE on the entry's status; one that finds the row elsewhere than the actor
believed refuses the whole transaction (WaitlistMoved), and the actor reloads from what is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import asyncpg

from astro.domain.waitlist import Entry, WaitlistChange
from astro.store.errors import unavailable_as

Row = dict[str, Any]
ON_LIST: Final = "('waiting', 'offered')"


class WaitlistMoved(Exception):
    """A waiting-list entry is not in the status the launch actor moved it from: nothing is written."""

    def __init__(self, what: str) -> None:
        super().__init__(f"waiting list: {what}")


async def _moved(conn: asyncpg.Connection, sql: str, ids: list[str], *args: Any) -> None:
    if not ids:
        return
    done = await conn.fetchval(f"WITH u AS ({sql} RETURNING 1) SELECT count(*) FROM u", ids, *args)
    if done != len(ids):
        raise WaitlistMoved(f"{len(ids) - done} of {len(ids)} entries were not where the actor saw them")


async def apply_change(conn: asyncpg.Connection, launch_id: str, change: WaitlistChange) -> None:
    """One actor step's moves on the launch's list, in the caller's (fenced) transaction."""
    if change.joined is not None:
        e = change.joined
        await conn.execute(
            """INSERT INTO waitlist_entries (id, launch_id, traveler_id, seats, joined_at)
               VALUES ($1, $2, $3, $4, $5)""",
            e.id,
            launch_id,
            e.traveler_id,
            e.seats,
            e.joined_at,
        )
    await _moved(
        conn,
        f"""UPDATE waitlist_entries SET status = 'left', ended_at = now(), updated_at = now()
               WHERE id = ANY($1::text[]) AND status IN {ON_LIST}""",
        list(change.left),
    )
    await _moved(
        conn,
        """UPDATE waitlist_entries SET status = 'expired', ended_at = now(), updated_at = now()
           WHERE id = ANY($1::text[]) AND status = 'offered'""",
        list(change.expired),
    )
    if change.booked:
        ids, bookings = zip(*change.booked, strict=True)
        await _moved(
            conn,
            """UPDATE waitlist_entries w SET status = 'booked', booking_id = b.booking_id, ended_at = now(),
                   updated_at = now()
               FROM unnest($1::text[], $2::text[]) AS b(id, booking_id)
               WHERE w.id = b.id AND w.status = 'offered'""",
            list(ids),
            list(bookings),
        )
    if change.offers:
        await _moved(
            conn,
            """UPDATE waitlist_entries w SET status = 'offered', offered_at = now(),
                   offer_expires_at = o.expires_at, updated_at = now()
               FROM unnest($1::text[], $2::timestamptz[]) AS o(id, expires_at)
               WHERE w.id = o.id AND w.status = 'waiting'""",
            [o.entry_id for o in change.offers],
            [o.expires_at for o in change.offers],
        )
    if change.closed:
        await conn.execute(
            f"""UPDATE waitlist_entries SET status = 'closed', ended_at = now(), updated_at = now()
                WHERE launch_id = $1 AND status IN {ON_LIST}""",
            launch_id,
        )


async def load_entries(db: asyncpg.Pool | asyncpg.Connection, launch_id: str) -> list[Entry]:
    """The entries on the launch's list (waiting or offered), in joining order."""
    rows = await db.fetch(
        f"""SELECT id, traveler_id, seats, joined_at, offer_expires_at FROM waitlist_entries
            WHERE launch_id = $1 AND status IN {ON_LIST} ORDER BY joined_at, id""",
        launch_id,
    )
    return [Entry(r["id"], r["traveler_id"], r["seats"], r["joined_at"], r["offer_expires_at"]) for r in rows]


# An entry as its traveler reads it: its position among the launch's waiting entries (1 is next).
ENTRY_COLUMNS: Final = """w.id, w.launch_id, w.seats, w.status, w.joined_at, w.offer_expires_at, w.booking_id,
    w.ended_at, l.slug AS launch_slug, l.mission, l.scheduled_at, l.status AS launch_status, l.price_cents,
    CASE WHEN w.status = 'waiting' THEN
        (SELECT count(*) FROM waitlist_entries o WHERE o.launch_id = w.launch_id AND o.status = 'waiting'
           AND (o.joined_at, o.id) <= (w.joined_at, w.id))
    END AS position"""


@unavailable_as("PostgreSQL")
class PgWaitlist:
    """The waiting lists' read models: a traveler's entries, a launch's demand."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def traveler_entries(self, traveler_id: str, after: str | None, limit: int) -> list[Row]:
        """The traveler's entries, newest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {ENTRY_COLUMNS} FROM waitlist_entries w JOIN launches l ON l.id = w.launch_id
                    WHERE w.traveler_id = $1 AND ($2::text IS NULL OR w.id < $2)
                    ORDER BY w.id DESC LIMIT $3""",
                traveler_id,
                after,
                limit,
            )
        return [dict(r.items()) for r in rows]

    async def entry(self, entry_id: str) -> Row | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT {ENTRY_COLUMNS} FROM waitlist_entries w JOIN launches l ON l.id = w.launch_id
                    WHERE w.id = $1""",
                entry_id,
            )
        return None if row is None else dict(row.items())

    async def demand(self, launch_ids: list[str]) -> dict[str, Row]:
        """Per launch: entries waiting, the seats they want, and seats under offer."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT launch_id,
                          count(*) FILTER (WHERE status = 'waiting') AS waitlist_length,
                          COALESCE(sum(seats) FILTER (WHERE status = 'waiting'), 0) AS waitlist_seats,
                          COALESCE(sum(seats) FILTER (WHERE status = 'offered'), 0) AS seats_offered
                   FROM waitlist_entries
                   WHERE launch_id = ANY($1::text[]) AND status IN ('waiting', 'offered')
                   GROUP BY launch_id""",
                launch_ids,
            )
        return {r["launch_id"]: dict(r.items()) for r in rows}

    async def launches_with_offers_due(self, now: datetime, limit: int = 100) -> list[str]:
        """Launches holding an offer past its deadline (their actor may not be running: a restart)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT DISTINCT launch_id FROM waitlist_entries
                   WHERE status = 'offered' AND offer_expires_at <= $1 LIMIT $2""",
                now,
                limit,
            )
        return [r["launch_id"] for r in rows]
