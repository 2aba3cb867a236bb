"""SystemAPI models of the change log and the sync jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from astro.schemas.common import Request, Response


class SyncJobIn(Request):
    kind: Literal["launch_cache", "user_directory", "all"]


class SyncJobOut(Response):
    id: str
    kind: str
    status: Literal["pending", "running", "completed", "failed"]
    total: int
    done: int
    percent: float
    errors: list[str]
    created_by: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    node: str | None = None
    failure: str | None = None


class SyncJobEnvelope(Response):
    job: SyncJobOut


class SyncJobPage(Response):
    items: list[SyncJobOut]
    next_cursor: str | None = None


class ChangeOut(Response):
    id: str
    at: datetime
    store: Literal["postgres", "mongo"]
    entity: str
    entity_id: str
    op: str
    fields: dict[str, Any] | None = None
    origin: dict[str, Any]


class ChangePage(Response):
    items: list[ChangeOut]
    next_cursor: str | None = None
