"""The notification queue in PostgreSQL (claim, mark, list, count, templates, inbox); the sink's mailbox.

A driver error that means a store is down comes out as the domain's Unavailable."""

from __future__ import annotations

import json
from typing import Any, Final

import asyncpg
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.asynchronous.database import AsyncDatabase

from astro.domain.errors import Conflict, InvalidInput, NotFound
from astro.domain.notifications import LIVE_STATUSES, MOVES, STATUSES, check_move
from astro.store.errors import unavailable_as

Row = dict[str, Any]
COLUMNS: Final = """id, event, recipient_id, recipient_role, recipient_email, data, status, attempts,
    next_attempt_at, last_error, claimed_by, claimed_at, subject, sent_at, created_at, updated_at"""
# An error text is kept short: it is for people reading the queue, not a log.
ERROR_LIMIT: Final = 1000


@unavailable_as("PostgreSQL")
class PgNotifications:
    """The queue: the dispatcher claims and marks rows; IT lists, counts and moves them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # -- the dispatcher's side -------------------------------------------------------------------

    async def claim(self, node: str, limit: int) -> list[Row]:
        """Take up to `limit` due pending rows for this node: one short transaction, skipping rows
        another node is claiming, so no row is ever claimed twice."""
        rows = await self._pool.fetch(
            f"""WITH due AS (
                    SELECT id FROM notifications
                    WHERE status = 'pending' AND next_attempt_at <= now()
                    ORDER BY next_attempt_at LIMIT $2
                    FOR UPDATE SKIP LOCKED)
                UPDATE notifications n
                SET status = 'sending', claimed_by = $1, claimed_at = clock_timestamp(), updated_at = now()
                FROM due WHERE n.id = due.id
                RETURNING {_prefixed("n")}""",
            node,
            limit,
        )
        return sorted((_row(r) for r in rows), key=lambda r: (r["next_attempt_at"], r["id"]))

    async def mark_sent_many(self, sent: list[tuple[Row, str]]) -> set[str]:
        """Record deliveries in one statement; the ids recorded (a missing one lost its claim meanwhile:
        it was requeued)."""
        rows = await self._pool.fetch(
            """UPDATE notifications n
               SET status = 'sent', sent_at = now(), subject = s.subject, attempts = n.attempts + 1,
                   updated_at = now(),
                   -- a reset link is for its recipient only: once mailed, the queue keeps no copy of it
                   data = CASE WHEN n.event = 'password_reset' THEN n.data - 'link_path' ELSE n.data END
               FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])
                    AS s(id, claimed_by, claimed_at, subject)
               WHERE n.id = s.id AND n.status = 'sending' AND n.claimed_by = s.claimed_by
                 AND n.claimed_at = s.claimed_at
               RETURNING n.id""",
            [r["id"] for r, _ in sent],
            [r["claimed_by"] for r, _ in sent],
            [r["claimed_at"] for r, _ in sent],
            [subject for _, subject in sent],
        )
        return {r["id"] for r in rows}

    async def mark_failed(self, row: Row, error: str, *, final: bool, delay: float) -> bool:
        """Record a failed attempt: back to pending, due after `delay` seconds, or `failed` when final."""
        status = await self._pool.execute(
            """UPDATE notifications
               SET status = CASE WHEN $4 THEN 'failed' ELSE 'pending' END,
                   attempts = attempts + 1, last_error = $5,
                   next_attempt_at = CASE WHEN $4 THEN next_attempt_at
                                          ELSE now() + $6 * interval '1 second' END,
                   claimed_by = NULL, claimed_at = NULL, updated_at = now()
               WHERE id = $1 AND status = 'sending' AND claimed_by = $2 AND claimed_at = $3""",
            row["id"],
            row["claimed_by"],
            row["claimed_at"],
            final,
            error[:ERROR_LIMIT],
            delay,
        )
        return bool(status == "UPDATE 1")

    async def unclaim(self, rows: list[Row]) -> int:
        """Give claimed rows that were never tried back to the queue, due now, no attempt counted."""
        if not rows:
            return 0
        status = await self._pool.execute(
            """UPDATE notifications
               SET status = 'pending', claimed_by = NULL, claimed_at = NULL, updated_at = now()
               WHERE status = 'sending' AND (id, claimed_by, claimed_at) IN (
                   SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]))""",
            [r["id"] for r in rows],
            [r["claimed_by"] for r in rows],
            [r["claimed_at"] for r in rows],
        )
        return int(status.split()[-1])

    async def requeue_stuck(self, older_than: float, max_attempts: int) -> list[Row]:
        """Rows left in `sending` longer than `older_than` seconds (their node died mid-send) go back
        to pending, counted as a failed attempt, or to failed after the last one."""
        rows = await self._pool.fetch(
            """UPDATE notifications
               SET status = CASE WHEN attempts + 1 >= $2 THEN 'failed' ELSE 'pending' END,
                   attempts = attempts + 1,
                   last_error = 'claim expired: node ' || coalesce(claimed_by, '?')
                                || ' did not finish sending (it may have stopped)',
                   next_attempt_at = now(), claimed_by = NULL, claimed_at = NULL, updated_at = now()
               WHERE status = 'sending' AND claimed_at < now() - $1 * interval '1 second'
               RETURNING id, event, recipient_email, status, attempts, last_error""",
            older_than,
            max_attempts,
        )
        return [dict(r) for r in rows]

    async def authors(self, launch_ids: list[str]) -> dict[str, str]:
        """The name of each launch's agency, now: e-mails name it as the author of the mission and reason
        they quote (read when rendering, so the stored notification data stays as the event made it)."""
        rows = await self._pool.fetch(
            """SELECT l.id, a.name FROM launches l JOIN agencies a ON a.id = l.agency_id
               WHERE l.id = ANY($1::text[])""",
            launch_ids,
        )
        return {r["id"]: r["name"] for r in rows}

    async def live_counts(self) -> dict[str, int]:
        """Rows per unfinished status (cheap: one index range each)."""
        rows = await self._pool.fetch(
            "SELECT status, count(*) AS n FROM notifications WHERE status = ANY($1::text[]) GROUP BY status",
            list(LIVE_STATUSES),
        )
        counts = dict.fromkeys(LIVE_STATUSES, 0)
        counts.update({r["status"]: int(r["n"]) for r in rows})
        return counts

    # -- IT's side -------------------------------------------------------------------------------

    async def page(
        self,
        *,
        status: str | None,
        event: str | None,
        recipient: str | None,
        after: str | None,
        limit: int,
    ) -> list[Row]:
        """Newest first; `recipient` is a recipient id or, with an @, an email address."""
        by_email = recipient is not None and "@" in recipient
        rows = await self._pool.fetch(
            f"""SELECT {COLUMNS} FROM notifications
                WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR event = $2)
                  AND ($3::text IS NULL OR recipient_id = $3)
                  AND ($4::text IS NULL OR lower(recipient_email) = lower($4))
                  AND ($5::text IS NULL OR id < $5)
                ORDER BY id DESC LIMIT $6""",
            status,
            event,
            None if by_email else recipient,
            recipient if by_email else None,
            after,
            limit,
        )
        return [_row(r) for r in rows]

    async def get(self, notification_id: str) -> Row:
        row = await self._pool.fetchrow(f"SELECT {COLUMNS} FROM notifications WHERE id = $1", notification_id)
        if row is None:
            raise NotFound("no such notification")
        return _row(row)

    async def move(self, notification_id: str, target: str) -> Row:
        """Set IT's status in one guarded statement; 404 unknown id, 409 a move not allowed from the
        status the row has at that moment (a row the dispatcher is sending is never touched)."""
        if target not in MOVES:
            check_move((await self.get(notification_id))["status"], target)
        row = await self._pool.fetchrow(
            f"""UPDATE notifications SET
                    status = $2,
                    attempts = CASE WHEN $2 = 'pending' AND status = 'failed' THEN 0 ELSE attempts END,
                    next_attempt_at = CASE WHEN $2 = 'pending' THEN now() ELSE next_attempt_at END,
                    sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END,
                    claimed_by = NULL, claimed_at = NULL, updated_at = now()
                WHERE id = $1 AND status = ANY($3::text[])
                RETURNING {COLUMNS}""",
            notification_id,
            target,
            list(MOVES[target]),
        )
        if row is None:
            current = (await self.get(notification_id))["status"]
            check_move(current, target)
            # It was in another status a moment ago and is back: let the caller look again.
            raise Conflict(
                "the notification changed meanwhile; try again",
                {"from": current, "to": target},
                code="invalid_transition",
            )
        return _row(row)

    async def queue(self) -> Row:
        """Rows per status, and the oldest pending row's creation time (None when nothing waits)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT status, count(*) AS n FROM notifications GROUP BY status")
            oldest = await conn.fetchrow(
                """SELECT created_at, extract(epoch FROM now() - created_at)::float8 AS age
                   FROM notifications WHERE status = 'pending' ORDER BY created_at LIMIT 1"""
            )
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({r["status"]: int(r["n"]) for r in rows})
        return {
            "counts": counts,
            "oldest_pending_at": oldest["created_at"] if oldest else None,
            "oldest_pending_age_seconds": max(float(oldest["age"]), 0.0) if oldest else None,
        }

    async def last_hour(self) -> Row:
        """Notifications delivered, and ones that ended failed, in the last hour (every node)."""
        row = await self._pool.fetchrow(
            """SELECT count(*) FILTER (WHERE status = 'sent' AND sent_at >= now() - interval '1 hour'
                                       AND claimed_by IS NOT NULL) AS sent,
                      count(*) FILTER (WHERE status = 'failed'
                                       AND updated_at >= now() - interval '1 hour') AS failed
               FROM notifications WHERE status IN ('sent', 'failed')"""
        )
        return {"sent": int(row["sent"]), "failed": int(row["failed"])}

    # -- templates -------------------------------------------------------------------------------

    async def templates(self) -> dict[str, Row]:
        rows = await self._pool.fetch("SELECT event, subject, body FROM notification_templates")
        return {r["event"]: dict(r) for r in rows}

    async def template(self, event: str) -> Row:
        row = await self._pool.fetchrow(
            """SELECT event, subject, body, updated_at, updated_by FROM notification_templates
               WHERE event = $1""",
            event,
        )
        if row is None:
            raise NotFound(f"no template for the event {event!r}")
        return dict(row)

    async def save_template(self, event: str, subject: str, body: str, user_id: str) -> Row:
        row = await self._pool.fetchrow(
            """UPDATE notification_templates SET subject = $2, body = $3, updated_at = now(), updated_by = $4
               WHERE event = $1 RETURNING event, subject, body, updated_at, updated_by""",
            event,
            subject,
            body,
            user_id,
        )
        if row is None:
            raise NotFound(f"no template for the event {event!r}")
        return dict(row)

    # -- a user's own ----------------------------------------------------------------------------

    async def inbox(self, recipient_id: str, after: str | None, limit: int) -> list[Row]:
        """The recipient's notifications, newest first (ids are time-ordered)."""
        rows = await self._pool.fetch(
            f"""SELECT {COLUMNS} FROM notifications
                WHERE recipient_id = $1 AND ($2::text IS NULL OR id < $2)
                ORDER BY id DESC LIMIT $3""",
            recipient_id,
            after,
            limit,
        )
        return [_row(r) for r in rows]

    async def inbox_item(self, recipient_id: str, notification_id: str) -> Row | None:
        """One notification of the recipient's (None when there is no such one, or it is someone else's)."""
        record = await self._pool.fetchrow(
            f"SELECT {COLUMNS} FROM notifications WHERE id = $1 AND recipient_id = $2",
            notification_id,
            recipient_id,
        )
        return None if record is None else _row(record)


def _row(record: asyncpg.Record) -> Row:
    """A notification as a dict; `data` always a dict (a JSON text is decoded)."""
    row = dict(record)
    data = row.get("data")
    if isinstance(data, str):
        row["data"] = json.loads(data)
    elif data is None:
        row["data"] = {}
    return row


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in COLUMNS.split(","))


@unavailable_as("MongoDB")
class MongoMailbox:
    """What the embedded SMTP sink received (SystemDB `mailbox`), newest first."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._mailbox = db["mailbox"]

    async def page(self, to: str | None, after: str | None, limit: int) -> list[Row]:
        query: dict[str, Any] = {}
        if to is not None:
            query["to"] = {"$in": sorted({to, to.lower()})}
        if after is not None:
            try:
                query["_id"] = {"$lt": ObjectId(after)}
            except (InvalidId, TypeError):
                raise InvalidInput(
                    "cursor is not one this API gave out", {"fields": {"cursor": after}}
                ) from None
        cursor = self._mailbox.find(query).sort("_id", -1).limit(limit)
        return [{**doc, "id": str(doc["_id"])} async for doc in cursor]
