"""The sync worker (continuous) and the sync job runner (IT-started full jobs)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

import asyncpg
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from pymongo.asynchronous.database import AsyncDatabase

from astro.origin import Origin, acting_as
from astro.services.catalog import CardCache, launch_card
from astro.store.changes import MongoChanges, PgChanges, PgJobs
from astro.store.launches import LAUNCH_COLUMNS, LAUNCH_FROM, launch_of
from astro.store.mongo import MongoUsers

log = structlog.get_logger("astro.sync")
USER_FIELDS: Final = ("name", "email", "vip")
PG_CURSOR: Final = "postgres_changes"
BATCH: Final = 500
STALE_JOB_SECONDS: Final = 60.0


class SyncMetrics:
    """Prometheus figures of the sync worker and the sync jobs."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.applied = Counter(
            "astro_sync_changes_applied",
            "Changes carried to the other store",
            ["direction"],
            registry=registry,
        )
        self.jobs = Counter("astro_sync_jobs", "Sync jobs finished", ["kind", "status"], registry=registry)
        self.running = Gauge("astro_sync_jobs_running", "Sync jobs running on this node", registry=registry)
        self.items = Counter(
            "astro_sync_job_items", "Items processed by sync jobs", ["kind"], registry=registry
        )


class _Ticker:
    """A background loop: one round every `interval` seconds, or at once when woken."""

    _interval: float
    _task: asyncio.Task[None] | None
    _wake: asyncio.Event

    async def round(self) -> None:
        raise NotImplementedError

    def _begin(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task = self._task
        if task is None:
            return
        # Cancel until it is done: a cancel that lands as a round ends must not leave it running.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("sync_round_failed", loop=type(self).__name__)
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that arrives
            # as the event is set, and stop() then waited for ever (seen once in CI).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()


class SyncWorker(_Ticker):
    """Keeps user fields equal in MongoDB users and PostgreSQL travelers/agencies, and launch cards in Redis.

    It follows both change logs; a change whose origin is the sync itself is never sent back."""

    def __init__(
        self,
        *,
        node: str,
        pg: PgChanges,
        mongo: MongoChanges,
        users: MongoUsers,
        cache: CardCache,
        pool: asyncpg.Pool,
        interval: float = 1.0,
        metrics: SyncMetrics | None = None,
    ) -> None:
        self.node = node
        self._pg, self._mongo, self._users, self._cache, self._pool = pg, mongo, users, cache, pool
        self._interval = interval
        self.metrics = metrics or SyncMetrics()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.applied = 0
        self.rounds = 0

    @property
    def origin(self) -> Origin:
        return Origin(service="sync", via="sync", node=self.node)

    async def start(self) -> None:
        if await self._pg.cursor(PG_CURSOR) is None:  # a new installation starts from now
            await self._pg.move_cursor(PG_CURSOR, str(await self._pg.latest_id()))
        self._begin()

    async def round(self) -> None:
        await self.sync_once()

    async def sync_once(self) -> int:
        """One round over both change logs; how many changes were applied to the other side."""
        with acting_as(self.origin):
            to_mongo = await self._from_postgres()
            to_postgres = await self._from_mongo()
        self.metrics.applied.labels("postgres_to_mongo").inc(to_mongo)
        self.metrics.applied.labels("mongo_to_postgres").inc(to_postgres)
        applied = to_mongo + to_postgres
        self.applied += applied
        self.rounds += 1
        return applied

    async def _from_postgres(self) -> int:
        cursor = int(await self._pg.cursor(PG_CURSOR) or 0)
        changes = await self._pg.after(cursor, ["travelers", "agencies", "launches"], BATCH)
        applied = 0
        launches: set[str] = set()
        for change in changes:
            if change["origin"].get("via") == "sync":
                continue  # ours: never echoed back
            if change["entity"] == "launches":
                launches.add(change["entity_id"])
                continue
            fields = {k: v for k, v in (change["fields"] or {}).items() if k in USER_FIELDS}
            if change["op"] == "update" and fields:
                await self._users.set_flags(change["entity_id"], fields)
                applied += 1
                log.info(
                    "sync_step", direction="postgres->mongo", user_id=change["entity_id"], fields=list(fields)
                )
        if launches:
            await self._refresh_launches(sorted(launches))
            applied += len(launches)
        if changes:
            await self._pg.move_cursor(PG_CURSOR, str(changes[-1]["id"]))
        return applied

    async def _from_mongo(self) -> int:
        changes = await self._mongo.unsynced(BATCH)
        applied = 0
        for change in changes:
            if change["origin"].get("via") == "sync" or change["op"] != "update":
                continue
            fields = {k: v for k, v in (change["fields"] or {}).items() if k in USER_FIELDS}
            doc = await self._users.by_id(change["entity_id"])
            if (
                fields
                and doc is not None
                and await self._pg.apply_user_fields(doc.id, doc.role.value, fields)
            ):
                applied += 1
                log.info("sync_step", direction="mongo->postgres", user_id=doc.id, fields=list(fields))
        await self._mongo.mark_synced([c["_id"] for c in changes])
        return applied

    async def _refresh_launches(self, launch_ids: list[str]) -> None:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM} WHERE l.id = ANY($1::text[])", launch_ids
            )
        await self._cache.put([launch_card(launch_of(r)) for r in rows])


Progress = Callable[[int, int, list[str]], Awaitable[None]]


class JobRunner(_Ticker):
    """Runs IT's full sync jobs one at a time per node, reporting progress; stale jobs are failed."""

    def __init__(
        self,
        *,
        node: str,
        jobs: PgJobs,
        pool: asyncpg.Pool,
        db: AsyncDatabase[dict[str, Any]],
        cache: CardCache,
        pg: PgChanges,
        interval: float = 1.0,
        metrics: SyncMetrics | None = None,
    ) -> None:
        self.node = node
        self._jobs, self._pool, self._db, self._cache, self._pg = jobs, pool, db, cache, pg
        self._interval = interval
        self.metrics = metrics or SyncMetrics()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        failed = await self._jobs.fail_abandoned(self.node, STALE_JOB_SECONDS)
        if failed:
            log.warning("sync_jobs_interrupted", jobs=failed)
        self._begin()

    async def round(self) -> None:
        await self._jobs.fail_abandoned(None, STALE_JOB_SECONDS)
        while await self.run_next():
            pass

    async def run_next(self) -> bool:
        job = await self._jobs.claim(self.node)
        if job is None:
            return False
        log.info("sync_job_started", job_id=job["id"], kind=job["kind"])
        errors: list[str] = []
        kinds = ["launch_cache", "user_directory"] if job["kind"] == "all" else [job["kind"]]
        totals = {k: await self._count(k) for k in kinds}
        done = 0

        async def report(step: int) -> None:
            nonlocal done
            done += step
            self.metrics.items.labels(job["kind"]).inc(step)
            await self._jobs.progress(job["id"], total=sum(totals.values()), done=done, errors=errors)

        await report(0)
        self.metrics.running.inc()
        try:
            with acting_as(Origin(service="sync", via="sync", node=self.node)):
                for kind in kinds:
                    await (
                        self._launch_cache(report)
                        if kind == "launch_cache"
                        else self._user_directory(report, errors)
                    )
        except Exception as exc:
            await self._jobs.finish(job["id"], failure=f"{type(exc).__name__}: {exc}")
            self.metrics.jobs.labels(job["kind"], "failed").inc()
            log.exception("sync_job_failed", job_id=job["id"])
            return True
        finally:
            self.metrics.running.dec()
        await self._jobs.finish(job["id"], failure=None)
        self.metrics.jobs.labels(job["kind"], "completed").inc()
        log.info("sync_job_completed", job_id=job["id"], done=done, errors=len(errors))
        return True

    async def _count(self, kind: str) -> int:
        if kind == "launch_cache":
            async with self._pool.acquire() as conn:
                return int(await conn.fetchval("SELECT count(*) FROM launches"))
        return await self._db["users"].count_documents({"role": {"$in": ["traveler", "agency"]}})

    async def _launch_cache(self, report: Callable[[int], Awaitable[None]]) -> None:
        """Every launch card rebuilt from PostgreSQL, in batches, then the public list."""
        after = ""
        upcoming: list[dict[str, Any]] = []
        while True:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    f"SELECT {LAUNCH_COLUMNS} FROM {LAUNCH_FROM} WHERE l.id > $1 ORDER BY l.id LIMIT {BATCH}",
                    after,
                )
            if not rows:
                break
            cards = [launch_card(launch_of(r)) for r in rows]
            await self._cache.put(cards)
            upcoming += [c for c in cards if c["status"] in ("scheduled", "confirmed", "delayed")]
            after = rows[-1]["id"]
            await report(len(rows))
        await self._cache.fill(upcoming)

    async def _user_directory(self, report: Callable[[int], Awaitable[None]], errors: list[str]) -> None:
        """Every traveler and agency user compared with its PostgreSQL row; MongoDB's fields win."""
        cursor = (
            self._db["users"]
            .find({"role": {"$in": ["traveler", "agency"]}}, {"name": 1, "email": 1, "vip": 1, "role": 1})
            .sort("_id", 1)
        )
        batch: list[dict[str, Any]] = []

        async def flush() -> None:
            people = await self._pg.people([u["_id"] for u in batch])
            for user in batch:
                row = people.get(user["_id"])
                if row is None:
                    errors.append(f"user {user['_id']} has no {user['role']} row in PostgreSQL")
                    continue
                wanted = {
                    k: user.get(k)
                    for k in USER_FIELDS
                    if k in user and (k != "vip" or row["role"] == "traveler")
                }
                differs: dict[str, Any] = {k: v for k, v in wanted.items() if row.get(k) != v}
                if differs:
                    await self._pg.apply_user_fields(user["_id"], row["role"], differs)
            await report(len(batch))
            batch.clear()

        async for user in cursor:
            batch.append(user)
            if len(batch) >= BATCH:
                await flush()
        if batch:
            await flush()
