"""SystemAPI monitoring endpoints (it only): entry logs, their streamed export, stored metric samples."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from aiohttp import web

from astro.domain.errors import InvalidInput, RuleViolation
from astro.domain.users import Role
from astro.schemas.common import in_utc
from astro.schemas.monitor import EntityRef, EntryOut, EntryPage, MetricPoint, MetricSeries
from astro.services.monitor import LEVELS, LogQuery, time_of_id
from web.http import decode_cursor, page_of, query_limit, requires, respond
from web.keys import REQUEST_ID
from web.monitoring import ENTRY_LOGS, METRIC_SAMPLES
from web.openapi import NO_NUL, PAGE, Param, choice, doc

RANGE_ERROR: Final = {422: "invalid_range: until is not later than since"}
LEVEL_RE: Final = "(" + "|".join(LEVELS) + ")"
SERVICE_RE: Final = "[A-Za-z0-9_.-]{1,100}"
FILTER_MAX: Final = 500


def filter_text(description: str) -> Param:
    """A filter value: up to 500 characters without NUL; blank is the same as absent."""
    return Param(description, {"type": "string", "maxLength": FILTER_MAX, "pattern": NO_NUL})


def moment(description: str) -> Param:
    return Param(
        f"ISO 8601 time, {description}",
        {"type": "string", "format": "date-time", "pattern": "^(?!0000)[0-9]{4}-"},
    )


log = structlog.get_logger("astro.monitor")

LOG_FILTERS: Final = ("level", "service", "user_id", "entity_id", "request_id", "q", "since", "until")
LOG_QUERY_DOC: Final = {
    "level": Param(
        "one or more of debug, info, warning, error, critical, comma-separated",
        {"type": "string", "pattern": f"^{LEVEL_RE}(,{LEVEL_RE})*$"},
    ),
    "service": Param(
        "one or more services (web, booking, auth, actors, ...), comma-separated",
        {"type": "string", "pattern": f"^{SERVICE_RE}(,{SERVICE_RE})*$"},
    ),
    "user_id": filter_text("entries of this user"),
    "entity_id": filter_text("entries about this launch, booking, invoice, ... (any id the entry names)"),
    "request_id": filter_text("every entry of one HTTP request (its X-Request-ID)"),
    "q": filter_text("text the message contains (case-insensitive)"),
    "since": moment("inclusive"),
    "until": moment("exclusive, later than since"),
}
EXPORT_BATCH: Final = 1000
EXPORT_CHUNK: Final = 64 * 1024
EXPORT_FLUSH_SECONDS: Final = 1.0  # what was found goes out at least this often (a download shows progress)
CSV_COLUMNS: Final = (
    "id",
    "time",
    "level",
    "service",
    "message",
    "user_id",
    "entity_type",
    "entity_id",
    "request_id",
    "node",
    "data",
)
MAX_SAMPLES: Final = 20_000
DEFAULT_RANGE: Final = timedelta(hours=1)
_LEVELS = re.compile(f"{LEVEL_RE}(,{LEVEL_RE})*")
_SERVICES = re.compile(f"{SERVICE_RE}(,{SERVICE_RE})*")
METRIC_RE: Final = "[a-z][a-z0-9_]{0,99}"
_METRICS = re.compile(f"{METRIC_RE}(,{METRIC_RE})*")


def _time(raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        # An unencoded "+" of an offset arrives as a space: 10:00:00+02:00 → "10:00:00 02:00".
        moment = datetime.fromisoformat(raw.replace(" ", "+"))
    return in_utc(moment)  # ValueError past year 1 or 9999


def _times(request: web.Request, fields: dict[str, str]) -> tuple[datetime | None, datetime | None]:
    found: dict[str, datetime | None] = {"since": None, "until": None}
    for name in found:
        raw = request.query.get(name)
        if not raw:
            continue
        try:
            found[name] = _time(raw)
        except ValueError:
            fields[name] = "expected an ISO 8601 time from year 1 to 9999, e.g. 2026-11-24T10:00:00Z"
    return found["since"], found["until"]


def _in_order(since: datetime | None, until: datetime | None) -> None:
    """Two well-formed times out of order: a rule of the pair (422), not a malformed parameter."""
    if since is not None and until is not None and until <= since:
        raise RuleViolation(
            "until must be later than since",
            {"fields": {"until": "must be later than since"}},
            code="invalid_range",
        )


def _unknown(request: web.Request, allowed: Iterable[str], fields: dict[str, str]) -> None:
    known = set(allowed)
    for name in request.query:
        if name not in known:
            fields[name] = "unknown parameter; known: " + ", ".join(sorted(known))


def _list(raw: str | None) -> tuple[str, ...]:
    """The parts of a comma-separated value, as written (an empty part fails the caller's pattern)."""
    return tuple(dict.fromkeys(raw.split(","))) if raw else ()


def log_query(request: web.Request, *, extra: tuple[str, ...] = ()) -> LogQuery:
    """The filters of the query string; every bad one is named in one 400 invalid_input."""
    fields: dict[str, str] = {}
    _unknown(request, (*LOG_FILTERS, *extra), fields)
    for name in LOG_FILTERS:
        raw = request.query.get(name)
        if raw is not None and ("\x00" in raw or len(raw) > FILTER_MAX):
            fields[name] = f"must be at most {FILTER_MAX} characters without NUL"
    levels = _list(request.query.get("level"))
    if "level" not in fields and levels and not _LEVELS.fullmatch(",".join(levels)):
        fields["level"] = "expected one or more of " + ", ".join(LEVELS) + ", comma-separated"
    services = _list(request.query.get("service"))
    if "service" not in fields and services and not _SERVICES.fullmatch(",".join(services)):
        fields["service"] = "expected service names (letters, digits, . _ -), comma-separated"
    since, until = _times(request, fields)
    if fields:
        raise InvalidInput("some filters are wrong", {"fields": fields})
    _in_order(since, until)

    def text(name: str) -> str | None:
        raw = (request.query.get(name) or "").strip()
        return raw or None  # blank is the same as absent

    return LogQuery(
        levels=levels,
        services=services,
        user_id=text("user_id"),
        entity_id=text("entity_id"),
        request_id=text("request_id"),
        text=text("q"),
        since=since,
        until=until,
    )


def entry_out(doc: dict[str, Any]) -> EntryOut:
    entity = doc.get("entity")
    return EntryOut(
        id=doc["_id"],
        time=doc["time"],
        level=doc.get("level", "info"),
        service=doc.get("service", ""),
        message=doc.get("message", ""),
        user_id=doc.get("user_id"),
        entity=EntityRef(type=entity["type"], id=entity["id"]) if entity else None,
        request_id=doc.get("request_id"),
        node=doc.get("node", ""),
        data=doc.get("data") or {},
    )


@doc(
    "Entry logs, newest first",
    response=EntryPage,
    query={**LOG_QUERY_DOC, **PAGE},
    errors=RANGE_ERROR,
)
@requires(Role.IT)
async def list_logs(request: web.Request) -> web.Response:
    query = log_query(request, extra=("limit", "cursor"))
    limit = query_limit(request)
    before = decode_cursor(request)
    if before is not None:
        try:
            time_of_id(before)
        except ValueError:
            raise InvalidInput(
                "cursor is not one this API gave out", {"fields": {"cursor": before}}
            ) from None
    docs = await request.app[ENTRY_LOGS].page(query, before=before, limit=limit + 1)
    docs, cursor = page_of(docs, limit, lambda d: str(d["_id"]))
    return respond(EntryPage(items=[entry_out(d) for d in docs], next_cursor=cursor))


def _ndjson(docs: list[dict[str, Any]]) -> str:
    return "".join(entry_out(d).model_dump_json() + "\n" for d in docs)


def _csv(docs: list[dict[str, Any]], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for d in docs:
        e = entry_out(d)
        writer.writerow(
            (
                e.id,
                e.time.isoformat(),
                e.level,
                e.service,
                e.message,
                e.user_id or "",
                e.entity.type if e.entity else "",
                e.entity.id if e.entity else "",
                e.request_id or "",
                e.node,
                json.dumps(e.model_dump(mode="json")["data"], ensure_ascii=False, separators=(",", ":")),
            )
        )
    return out.getvalue()


@doc(
    "Entry logs as a file, oldest first: NDJSON (one entry per line, as in the list) or CSV; streamed",
    query={**LOG_QUERY_DOC, "format": choice("ndjson (default) or csv", ("ndjson", "csv"))},
    content_type="application/x-ndjson",
    also=("text/csv",),
    errors=RANGE_ERROR,
)
@requires(Role.IT)
async def export_logs(request: web.Request) -> web.StreamResponse:
    query = log_query(request, extra=("format",))
    fmt = request.query.get("format") or "ndjson"
    if fmt not in ("ndjson", "csv"):
        raise InvalidInput("format must be ndjson or csv", {"fields": {"format": fmt}})
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/x-ndjson; charset=utf-8"
            if fmt == "ndjson"
            else "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="entry_logs-{stamp}.{fmt}"',
            "X-Request-ID": request[REQUEST_ID],
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    batch: list[dict[str, Any]] = []
    written, size, header = 0, 0, fmt == "csv"
    clock = asyncio.get_running_loop().time
    sent_at = clock()

    async def send() -> None:
        nonlocal batch, size, header, written, sent_at
        text = _ndjson(batch) if fmt == "ndjson" else _csv(batch, header)
        await response.write(text.encode())
        written += len(batch)
        batch, size, header, sent_at = [], 0, False, clock()

    try:
        async for entry in request.app[ENTRY_LOGS].stream(query, batch_size=EXPORT_BATCH):
            batch.append(entry)
            size += 200 + len(entry.get("message", ""))
            if size >= EXPORT_CHUNK or clock() - sent_at >= EXPORT_FLUSH_SECONDS:
                await send()
        if batch or header:
            await send()
    except ConnectionResetError:
        log.info("log_export_aborted", entries=written)
        return response
    except Exception as exc:
        # The status is sent already: end the connection without the last chunk, so the client
        # sees a cut-off file rather than a complete-looking one.
        log.error("log_export_failed", entries=written, error=f"{type(exc).__name__}: {exc}")
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    log.info("log_export", format=fmt, entries=written)
    return response


@doc(
    "Stored metric samples by name, oldest first (sampled every ASTRO_METRICS_INTERVAL seconds)",
    response=MetricSeries,
    query={
        "name": Param(
            "one or more metric names, comma-separated (default: all)",
            {"type": "string", "pattern": f"^{METRIC_RE}(,{METRIC_RE})*$"},
        ),
        "since": moment("inclusive (default: an hour before until)"),
        "until": moment("exclusive (default: now)"),
    },
    errors=RANGE_ERROR,
)
@requires(Role.IT)
async def metric_series(request: web.Request) -> web.Response:
    fields: dict[str, str] = {}
    _unknown(request, ("name", "since", "until"), fields)
    names = _list(request.query.get("name"))
    if names and not _METRICS.fullmatch(",".join(names)):
        fields["name"] = "expected metric names (lower case letters, digits, _), comma-separated"
    since, until = _times(request, fields)
    if fields:
        raise InvalidInput("some parameters are wrong", {"fields": fields})
    until = until or datetime.now(UTC)
    since = since or until - min(DEFAULT_RANGE, until - datetime.min.replace(tzinfo=UTC))  # not before year 1
    _in_order(since, until)
    docs = await request.app[METRIC_SAMPLES].between(names=names, since=since, until=until, limit=MAX_SAMPLES)
    series: dict[str, list[MetricPoint]] = {name: [] for name in names}
    for d in docs:
        series.setdefault(d["name"], []).append(
            MetricPoint(
                time=d["time"], value=d["value"], node=d.get("node", ""), labels=d.get("labels") or {}
            )
        )
    return respond(MetricSeries(series=series, since=since, until=until, truncated=len(docs) >= MAX_SAMPLES))
