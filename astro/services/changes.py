"""IT's view of the change logs of both stores, and the full sync jobs IT starts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Protocol

Row = dict[str, Any]
# SystemDB's change log holds this entity's changes; OperationsDB's every other one.
MONGO_ENTITY: Final = "users"


class ChangeLog(Protocol):
    """One store's change log, newest first."""

    async def page(
        self,
        *,
        entity: str | None,
        origin: str | None,
        since: datetime | None,
        before: datetime | None,
        limit: int,
    ) -> list[Row]: ...


class JobStore(Protocol):
    async def create(self, kind: str, user_id: str | None) -> Row: ...
    async def get(self, job_id: str) -> Row: ...
    async def page(self, before: str | None, limit: int) -> list[Row]: ...


class Changes:
    """The change logs of OperationsDB and SystemDB read as one, newest first."""

    def __init__(self, postgres: ChangeLog, mongo: ChangeLog) -> None:
        self._postgres = postgres
        self._mongo = mongo

    async def page(
        self,
        *,
        entity: str | None,
        origin: str | None,
        since: datetime | None,
        before: datetime | None,
        limit: int,
    ) -> list[Row]:
        """Up to `limit` changes older than `before`, of the one store holding `entity` (or of both)."""
        found: list[Row] = []
        if entity in (None, MONGO_ENTITY):
            found += await self._mongo.page(
                entity=MONGO_ENTITY, origin=origin, since=since, before=before, limit=limit
            )
        if entity != MONGO_ENTITY:
            found += await self._postgres.page(
                entity=entity, origin=origin, since=since, before=before, limit=limit
            )
        return sorted(found, key=lambda change: change["at"], reverse=True)[:limit]


class SyncJobs:
    """Full sync jobs: created here, run by whichever node's job runner claims them first."""

    def __init__(self, jobs: JobStore, wake: Callable[[], None]) -> None:
        self._jobs = jobs
        self._wake = wake

    async def start(self, kind: str, user_id: str) -> Row:
        """A new pending job; this node's runner is woken so it need not wait for its next round."""
        job = await self._jobs.create(kind, user_id)
        self._wake()
        return job

    async def get(self, job_id: str) -> Row:
        return await self._jobs.get(job_id)

    async def page(self, before: str | None, limit: int) -> list[Row]:
        return await self._jobs.page(before, limit)
