"""The sync worker (continuous) and the sync job runner (IT-started full jobs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from actors.loop import BackgroundLoop
from astro.domain.launch import Launch
from astro.domain.launches import OPEN
from astro.domain.users import User
from astro.origin import Origin, acting_as
from astro.services.catalog import CardCache, launch_card

log = structlog.get_logger("astro.sync")
USER_FIELDS: Final = ("name", "email", "vip")
PG_CURSOR: Final = "postgres_changes"
# The lock a sync round holds: with several nodes, one round at a time runs over both change logs.
ROUND_LOCK: Final = "sync-worker-round"
BATCH: Final = 500
STALE_JOB_SECONDS: Final = 60.0
Row = dict[str, Any]


# -- ports ---------------------------------------------------------------------------------------


class PersonRows(Protocol):
    """Traveler and agency rows in PostgreSQL, as the sync reads and writes them."""

    async def people(self, user_ids: list[str]) -> dict[str, Row]: ...
    async def apply_user_fields(self, user_id: str, role: str, fields: dict[str, Any]) -> bool: ...


class ChangeLog(PersonRows, Protocol):
    """PostgreSQL's change log and the sync's cursor in it (and the rows the changes are applied to)."""

    async def cursor(self, name: str) -> str | None: ...
    async def move_cursor(self, name: str, position: str) -> None: ...
    async def latest_id(self) -> int: ...
    async def after(self, cursor: int, entities: list[str], limit: int) -> list[Row]: ...
    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Hold the cluster-wide lock `name` if no one else does (True), else hold nothing (False)."""
        ...


class UserChangeLog(Protocol):
    """MongoDB's change log of user documents; each change is marked once carried over."""

    async def unsynced(self, limit: int) -> list[Row]: ...
    async def mark_synced(self, ids: list[Any]) -> None: ...


class Users(Protocol):
    async def by_id(self, user_id: str) -> User | None: ...
    async def set_flags(self, user_id: str, flags: dict[str, Any]) -> User | None: ...


class UserDirectory(Protocol):
    """Every traveler and agency user in MongoDB, for a full comparison."""

    async def count(self) -> int: ...
    def batches(self, size: int) -> AsyncIterator[list[Row]]: ...


class LaunchRows(Protocol):
    """Launch rows (with rocket and agency) that launch cards are made from."""

    async def by_ids(self, launch_ids: list[str]) -> list[Launch]: ...
    async def count(self) -> int: ...
    async def after(self, launch_id: str, limit: int) -> list[Launch]: ...


class JobQueue(Protocol):
    async def claim(self, node: str) -> Row | None: ...
    async def progress(self, job_id: str, *, total: int, done: int, errors: list[str]) -> None: ...
    async def finish(self, job_id: str, *, failure: str | None) -> None: ...
    async def fail_abandoned(self, node: str | None, stale_seconds: float) -> int: ...


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


class SyncWorker:
    """Keeps user fields equal in MongoDB users and PostgreSQL travelers/agencies, and launch cards in Redis.

    It follows both change logs; a change whose origin is the sync itself is never sent back. Every node
    runs one, and a round runs only while holding a PostgreSQL lock: the other nodes skip their round, so
    two never read the same cursor and apply the same changes."""

    def __init__(
        self,
        *,
        node: str,
        pg: ChangeLog,
        mongo: UserChangeLog,
        users: Users,
        launches: LaunchRows,
        cache: CardCache,
        interval: float = 1.0,
        metrics: SyncMetrics | None = None,
    ) -> None:
        self.node = node
        self._pg, self._mongo, self._users, self._launches = pg, mongo, users, launches
        self._cache = cache
        self.metrics = metrics or SyncMetrics()
        self.background = BackgroundLoop(
            self.sync_once, interval=interval, name="sync-worker", failed_event="sync_round_failed"
        )
        self.applied = 0
        self.rounds = 0
        self.skipped = 0  # rounds left to another node, which held the lock

    @property
    def origin(self) -> Origin:
        return Origin(service="sync", via="sync", node=self.node)

    async def start(self) -> None:
        if await self._pg.cursor(PG_CURSOR) is None:  # a new installation starts from now
            await self._pg.move_cursor(PG_CURSOR, str(await self._pg.latest_id()))
        self.background.start()

    async def stop(self) -> None:
        await self.background.stop()

    def wake(self) -> None:
        self.background.wake()

    async def sync_once(self) -> int:
        """One round over both change logs; how many changes were applied to the other side (0 when
        another node's round is running: this one is skipped)."""
        async with self._pg.exclusive(ROUND_LOCK) as held:
            if not held:
                self.skipped += 1
                return 0
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
        rows = await self._launches.by_ids(launch_ids)
        await self._cache.put([launch_card(launch) for launch in rows])


Progress = Callable[[int, int, list[str]], Awaitable[None]]


class JobRunner:
    """Runs IT's full sync jobs one at a time per node, reporting progress; stale jobs are failed."""

    def __init__(
        self,
        *,
        node: str,
        jobs: JobQueue,
        launches: LaunchRows,
        directory: UserDirectory,
        people: PersonRows,
        cache: CardCache,
        interval: float = 1.0,
        metrics: SyncMetrics | None = None,
    ) -> None:
        self.node = node
        self._jobs, self._launches, self._directory, self._people = jobs, launches, directory, people
        self._cache = cache
        self.metrics = metrics or SyncMetrics()
        self.background = BackgroundLoop(
            self.run_pending, interval=interval, name="sync-jobs", failed_event="sync_round_failed"
        )

    async def start(self) -> None:
        failed = await self._jobs.fail_abandoned(self.node, STALE_JOB_SECONDS)
        if failed:
            log.warning("sync_jobs_interrupted", jobs=failed)
        self.background.start()

    async def stop(self) -> None:
        await self.background.stop()

    def wake(self) -> None:
        """Look for pending jobs now (IT just created one)."""
        self.background.wake()

    async def run_pending(self) -> None:
        """Fail abandoned jobs, then run every pending one."""
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
        return await (self._launches.count() if kind == "launch_cache" else self._directory.count())

    async def _launch_cache(self, report: Callable[[int], Awaitable[None]]) -> None:
        """Every launch card rebuilt from PostgreSQL, in batches, then the public list."""
        after = ""
        upcoming: list[dict[str, Any]] = []
        while rows := await self._launches.after(after, BATCH):
            cards = [launch_card(launch) for launch in rows]
            await self._cache.put(cards)
            upcoming += [c for c in cards if c["status"] in OPEN]
            after = rows[-1].id
            await report(len(rows))
        await self._cache.fill(upcoming)

    async def _user_directory(self, report: Callable[[int], Awaitable[None]], errors: list[str]) -> None:
        """Every traveler and agency user compared with its PostgreSQL row; MongoDB's fields win."""
        async for batch in self._directory.batches(BATCH):
            people = await self._people.people([u["_id"] for u in batch])
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
                    await self._people.apply_user_fields(user["_id"], row["role"], differs)
            await report(len(batch))
