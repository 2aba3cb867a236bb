"""SystemAPI: the change log with origins, and IT's sync jobs."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from astro.domain.errors import InvalidInput
from astro.domain.users import Role
from astro.schemas.common import parse_time
from astro.schemas.sync import ChangeOut, ChangePage, SyncJobEnvelope, SyncJobIn, SyncJobOut, SyncJobPage
from web.http import authenticate, decode_cursor, page_of, query_limit, read_body, requires, respond
from web.keys import CHANGES, SYNC_JOBS
from web.openapi import PAGE, Param, choice, doc, text

PREFIX = "/api/system"
ENTITIES = (
    "agencies",
    "travelers",
    "rockets",
    "launches",
    "bookings",
    "passengers",
    "traveler_payments",
    "invoices",
    "invoice_payments",
    "users",
)


def query_time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        if datetime.fromisoformat(raw).tzinfo is None:
            raise ValueError
        return parse_time(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be an ISO 8601 time with a zone from year 1 to 9999, e.g. 2027-01-31T12:00:00Z",
            {"fields": {name: raw}},
        ) from None


@doc(
    "Changes to both stores with their origin, newest first",
    response=ChangePage,
    query={
        "entity": choice("changes to this kind of entity", ENTITIES),
        "origin": text("api, actor, sync, system or a service name"),
        "since": Param(
            "ISO 8601 time with a zone, inclusive",
            {"type": "string", "format": "date-time", "pattern": "^(?!0000)[0-9]{4}-"},
        ),
        **PAGE,
    },
)
@requires(Role.IT)
async def list_changes(request: web.Request) -> web.Response:
    entity = request.query.get("entity") or None
    if entity is not None and entity not in ENTITIES:
        raise InvalidInput(f"entity must be one of {', '.join(ENTITIES)}", {"fields": {"entity": entity}})
    origin = request.query.get("origin") or None
    since, limit = query_time(request, "since"), query_limit(request)
    cursor = decode_cursor(request)
    try:
        before = parse_time(cursor) if cursor else None
    except ValueError:
        raise InvalidInput("cursor is not one this API gave out", {"fields": {"cursor": cursor}}) from None
    merged = await request.app[CHANGES].page(
        entity=entity, origin=origin, since=since, before=before, limit=limit + 1
    )
    items, next_cursor = page_of(merged, limit, lambda c: c["at"].isoformat())
    return respond(ChangePage(items=[ChangeOut.model_validate(c) for c in items], next_cursor=next_cursor))


@doc(
    "Start a full sync job; watch it with GET /sync/jobs/{id}",
    body=SyncJobIn,
    response=SyncJobEnvelope,
    status=202,
)
@requires(Role.IT)
async def start_job(request: web.Request) -> web.Response:
    data = await read_body(request, SyncJobIn)
    job = await request.app[SYNC_JOBS].start(data.kind, (await authenticate(request)).user_id)
    return respond(SyncJobEnvelope(job=SyncJobOut.model_validate(job)), status=202)


@doc("Sync jobs, newest first", response=SyncJobPage, query=PAGE)
@requires(Role.IT)
async def list_jobs(request: web.Request) -> web.Response:
    limit = query_limit(request)
    rows = await request.app[SYNC_JOBS].page(decode_cursor(request), limit + 1)
    rows, cursor = page_of(rows, limit, lambda r: str(r["id"]))
    return respond(SyncJobPage(items=[SyncJobOut.model_validate(r) for r in rows], next_cursor=cursor))


@doc("One sync job: status, progress, start and end, errors", response=SyncJobEnvelope)
@requires(Role.IT)
async def get_job(request: web.Request) -> web.Response:
    job = await request.app[SYNC_JOBS].get(request.match_info["id"])
    return respond(SyncJobEnvelope(job=SyncJobOut.model_validate(job)))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/changes", list_changes, allow_head=False)
    r.add_post(f"{PREFIX}/sync/jobs", start_job)
    r.add_get(f"{PREFIX}/sync/jobs", list_jobs, allow_head=False)
    r.add_get(f"{PREFIX}/sync/jobs/{{id}}", get_job, allow_head=False)
