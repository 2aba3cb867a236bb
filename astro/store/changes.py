"""The change logs of both stores, the sync cursors and the sync jobs (driver errors: Unavailable)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Final

import asyncpg
from pymongo.asynchronous.database import AsyncDatabase

from astro.domain.errors import NotFound
from astro.domain.ids import new_id
from astro.store.errors import unavailable_as
from astro.store.postgres import write_tx

Row = dict[str, Any]
# Changes younger than this are left for the next round: a transaction that took its id earlier may
# still be committing, and the cursor must not pass it.
SETTLE_SECONDS: Final = 2
LOCK_PREFIX: Final = "astro:"  # advisory locks are one space per database: ours are named astro:...
JOB_COLUMNS: Final = """id, kind, status, total, done, errors, created_by, created_at, started_at,
    finished_at, node,
    heartbeat_at, failure"""


@unavailable_as("PostgreSQL")
class PgChanges:
    """PostgreSQL's change log (`changes`), the sync cursors, and the person rows the sync writes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(
        self,
        *,
        entity: str | None,
        origin: str | None,
        since: datetime | None,
        before: datetime | None,
        limit: int,
    ) -> list[Row]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT id::text, at, store, entity, entity_id, op, fields, origin FROM changes
                   WHERE ($1::text IS NULL OR entity = $1)
                     AND ($2::text IS NULL OR origin ->> 'via' = $2 OR origin ->> 'service' = $2)
                     AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
                   ORDER BY at DESC, id DESC LIMIT $5""",
                entity,
                origin,
                since,
                before,
                limit,
            )
        return [dict(r.items()) for r in rows]

    async def after(self, cursor: int, entities: list[str], limit: int) -> list[Row]:
        """Settled changes of these tables after the cursor, oldest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT id, at, entity, entity_id, op, fields, origin FROM changes
                    WHERE id > $1 AND entity = ANY($2::text[])
                      AND at < clock_timestamp() - interval '{SETTLE_SECONDS} seconds'
                    ORDER BY id LIMIT $3""",
                cursor,
                entities,
                limit,
            )
        return [dict(r.items()) for r in rows]

    async def cursor(self, name: str) -> str | None:
        async with self._pool.acquire() as conn:
            value = await conn.fetchval("SELECT position FROM sync_cursors WHERE name = $1", name)
        return str(value) if value is not None else None

    async def move_cursor(self, name: str, position: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO sync_cursors (name, position) VALUES ($1, $2)
                   ON CONFLICT (name) DO UPDATE SET position = $2, updated_at = now()""",
                name,
                position,
            )

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """PostgreSQL's session advisory lock `name`, on a connection kept for as long as it is held:
        True while held, False (and nothing held) when another session holds it. The pool does not reset
        a released connection (postgres.PooledConnection), so the lock is released here, and a connection
        that may hold it unreleased (cancelled while taking or releasing it) is closed, which releases it:
        a lock is never left behind on a reused connection, where it would stop every other node's sync."""
        key = LOCK_PREFIX + name
        async with self._pool.acquire() as conn:
            try:
                held = bool(await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key))
            except BaseException:
                conn.terminate()
                raise
            try:
                yield held
            finally:
                if held:
                    try:
                        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
                    except BaseException:
                        conn.terminate()
                        raise

    async def latest_id(self) -> int:
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT COALESCE(max(id), 0) FROM changes"))

    async def apply_user_fields(self, user_id: str, role: str, fields: dict[str, Any]) -> bool:
        """Write synced user fields (name, email, vip) to the traveler or agency row; False if none."""
        table = {"traveler": "travelers", "agency": "agencies"}.get(role)
        allowed = {"name", "email", "vip"} if table == "travelers" else {"name", "email"}
        values = {k: v for k, v in fields.items() if k in allowed}
        if table is None or not values:
            return False
        sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(values, start=2))
        async with write_tx(self._pool) as conn:
            status = await conn.execute(f"UPDATE {table} SET {sets} WHERE id = $1", user_id, *values.values())
        return bool(status.endswith(" 1"))

    async def people(self, user_ids: list[str]) -> dict[str, Row]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT id, name, email, vip, 'traveler' AS role FROM travelers WHERE id = ANY($1::text[])
                   UNION ALL
                   SELECT id, name, email, NULL, 'agency' FROM agencies WHERE id = ANY($1::text[])""",
                user_ids,
            )
        return {r["id"]: dict(r.items()) for r in rows}


@unavailable_as("MongoDB")
class MongoChanges:
    """SystemDB's change log (`changes`), written next to each user document write."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._changes = db["changes"]

    async def unsynced(self, limit: int) -> list[Row]:
        cursor = self._changes.find({"synced": False}).sort([("at", 1), ("_id", 1)]).limit(limit)
        return [doc async for doc in cursor]

    async def mark_synced(self, ids: list[Any]) -> None:
        if ids:
            await self._changes.update_many({"_id": {"$in": ids}}, {"$set": {"synced": True}})

    async def page(
        self,
        *,
        entity: str | None,
        origin: str | None,
        since: datetime | None,
        before: datetime | None,
        limit: int,
    ) -> list[Row]:
        query: dict[str, Any] = {}
        if entity:
            query["entity"] = entity
        if origin:
            query["$or"] = [{"origin.via": origin}, {"origin.service": origin}]
        if since or before:
            query["at"] = {k: v for k, v in (("$gte", since), ("$lt", before)) if v is not None}
        cursor = self._changes.find(query, {"synced": 0}).sort([("at", -1), ("_id", -1)]).limit(limit)
        return [{**doc, "id": str(doc.pop("_id"))} async for doc in cursor]


@unavailable_as("PostgreSQL")
class PgJobs:
    """IT's sync jobs (`sync_jobs`): created, claimed by one node, reported on, finished."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, kind: str, user_id: str | None) -> Row:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"INSERT INTO sync_jobs (id, kind, created_by) VALUES ($1, $2, $3) RETURNING {JOB_COLUMNS}",
                new_id("job"),
                kind,
                user_id,
            )
        return _job(row)

    async def get(self, job_id: str) -> Row:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {JOB_COLUMNS} FROM sync_jobs WHERE id = $1", job_id)
        if row is None:
            raise NotFound("no such sync job")
        return _job(row)

    async def page(self, before: str | None, limit: int) -> list[Row]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {JOB_COLUMNS} FROM sync_jobs WHERE ($1::text IS NULL OR id < $1)
                    ORDER BY id DESC LIMIT $2""",
                before,
                limit,
            )
        return [_job(r) for r in rows]

    async def claim(self, node: str) -> Row | None:
        """The oldest pending job, now running on this node; two nodes never get the same one."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT id FROM sync_jobs WHERE status = 'pending' ORDER BY created_at
                   LIMIT 1 FOR UPDATE SKIP LOCKED"""
            )
            if row is None:
                return None
            claimed = await conn.fetchrow(
                f"""UPDATE sync_jobs SET status = 'running', node = $2, started_at = now(),
                        heartbeat_at = now()
                    WHERE id = $1 RETURNING {JOB_COLUMNS}""",
                row["id"],
                node,
            )
        return _job(claimed)

    async def progress(self, job_id: str, *, total: int, done: int, errors: list[str]) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE sync_jobs SET total = $2, done = $3, errors = $4::jsonb, heartbeat_at = now()
                   WHERE id = $1 AND status = 'running'""",
                job_id,
                total,
                done,
                errors[-100:],
            )

    async def finish(self, job_id: str, *, failure: str | None) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE sync_jobs SET status = $2, failure = $3, finished_at = now(), heartbeat_at = now()
                   WHERE id = $1 AND status = 'running'""",
                job_id,
                "failed" if failure else "completed",
                failure,
            )

    async def fail_abandoned(self, node: str | None, stale_seconds: float) -> int:
        """Fail, with the reason, jobs left running by this node's previous life (`node`) or by any
        node that stopped reporting progress: never left `running` forever."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                f"""UPDATE sync_jobs SET status = 'failed', finished_at = now(),
                       failure = CASE WHEN node = $1 THEN 'interrupted: node ' || node || ' restarted'
                                 ELSE 'interrupted: node ' || COALESCE(node, '?')
                                      || ' stopped reporting progress'
                                 END
                    WHERE status = 'running'
                      AND (node = $1 OR heartbeat_at < now() - interval '{float(stale_seconds)} seconds')""",
                node,
            )
        return int(status.split()[-1])


def _job(row: asyncpg.Record) -> Row:
    job = dict(row.items())
    job["percent"] = (
        round(100 * job["done"] / job["total"], 1)
        if job["total"]
        else (100.0 if job["status"] == "completed" else 0.0)
    )
    return job
