"""NotifyAPI /api/notify: the queue and its IT controls, templates, status, inbox, the sink's mailbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from astro.domain.errors import InvalidInput, NotFound
from astro.domain.notifications import EVENTS, PLACEHOLDERS, STATUSES
from astro.domain.users import Role
from astro.schemas.notify import (
    InboxEnvelope,
    InboxItem,
    InboxMessage,
    InboxPage,
    MailOut,
    MailPage,
    NotificationEnvelope,
    NotificationOut,
    NotificationPage,
    NotifyStatus,
    QueueOut,
    StatusChange,
    TemplateEnvelope,
    TemplateIn,
    TemplateOut,
)
from web.http import authenticate, decode_cursor, page_of, query_limit, read_body, requires, respond
from web.keys import DISPATCHER, NOTIFY
from web.openapi import NO_NUL, PAGE, Param, choice, doc

PREFIX: Final = "/api/notify"
it_only = requires(Role.IT)
ADDRESS_LIMIT: Final = 254
ADDRESS_SCHEMA: Final = {"type": "string", "maxLength": ADDRESS_LIMIT, "pattern": NO_NUL}


def _text_query(request: web.Request, name: str) -> str | None:
    raw = request.query.get(name)
    if not raw:
        return None
    if len(raw) > ADDRESS_LIMIT or "\x00" in raw:
        raise InvalidInput(
            f"{name} must be at most {ADDRESS_LIMIT} characters", {"fields": {name: raw[:300]}}
        )
    return raw


def _choice_query(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    raw = request.query.get(name)
    if not raw:
        return None
    if raw not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}", {"fields": {name: raw[:300]}})
    return raw


def _path_id(request: web.Request) -> str:
    value = request.match_info["id"]
    # Nothing the queue ever issued looks like this: not found, and never a database error.
    if len(value) > 64 or "\x00" in value:
        raise NotFound("no such notification")
    return value


def _event(request: web.Request) -> str:
    event = request.match_info["event"]
    if event not in EVENTS:
        raise NotFound(f"no template for the event {event[:100]!r}", {"events": list(EVENTS)})
    return event


def template_out(row: dict[str, Any]) -> TemplateOut:
    return TemplateOut.model_validate({**row, "placeholders": sorted(PLACEHOLDERS)})


@doc(
    "The notification queue, newest first; recipient is a user id or an email address",
    response=NotificationPage,
    query={
        "status": choice("notifications in this status", STATUSES),
        "event": choice("notifications of this event", EVENTS),
        "recipient": Param("a user id or an email address", ADDRESS_SCHEMA),
        **PAGE,
    },
)
@it_only
async def list_notifications(request: web.Request) -> web.Response:
    status = _choice_query(request, "status", STATUSES)
    event = _choice_query(request, "event", EVENTS)
    recipient = _text_query(request, "recipient")
    limit = query_limit(request)
    rows = await request.app[NOTIFY].notifications(
        status=status, event=event, recipient=recipient, after=decode_cursor(request), limit=limit + 1
    )
    rows, cursor = page_of(rows, limit, lambda r: str(r["id"]))
    return respond(
        NotificationPage(items=[NotificationOut.model_validate(r) for r in rows], next_cursor=cursor)
    )


@doc("Notifications per status, and how long the oldest pending one has waited", response=QueueOut)
@it_only
async def queue(request: web.Request) -> web.Response:
    return respond(QueueOut.model_validate(await request.app[NOTIFY].queue()))


@doc(
    "Hold, release, retry, cancel or mark as sent (409 invalid_transition for any other move)",
    body=StatusChange,
    response=NotificationEnvelope,
)
@it_only
async def patch_notification(request: web.Request) -> web.Response:
    notification_id = _path_id(request)
    data = await read_body(request, StatusChange)
    principal = await authenticate(request)
    row = await request.app[NOTIFY].move(notification_id, data.status, principal.user_id)
    if row["status"] == "pending":
        request.app[DISPATCHER].wake()
    return respond(NotificationEnvelope(notification=NotificationOut.model_validate(row)))


@doc(
    "SMTP reachable (a real connection and greeting), the dispatcher, and the last hour",
    response=NotifyStatus,
)
@it_only
async def status(request: web.Request) -> web.Response:
    service = request.app[NOTIFY]
    smtp, hour = await asyncio.gather(service.smtp_status(), service.last_hour())
    return respond(
        NotifyStatus.model_validate(
            {
                "smtp": smtp,
                "dispatcher": request.app[DISPATCHER].status(),
                "sent_last_hour": hour["sent"],
                "failed_last_hour": hour["failed"],
            }
        )
    )


@doc("An event's email template", response=TemplateEnvelope)
@it_only
async def get_template(request: web.Request) -> web.Response:
    row = await request.app[NOTIFY].template(_event(request))
    return respond(TemplateEnvelope(template=template_out(row)))


@doc(
    "Replace an event's template: {placeholders} must be known ones (400 names an unknown one)",
    body=TemplateIn,
    response=TemplateEnvelope,
)
@it_only
async def put_template(request: web.Request) -> web.Response:
    event = _event(request)
    data = await read_body(request, TemplateIn)
    principal = await authenticate(request)
    row = await request.app[NOTIFY].save_template(event, data.subject, data.body, principal.user_id)
    return respond(TemplateEnvelope(template=template_out(row)))


@doc("The caller's own notifications, newest first", response=InboxPage, query=PAGE)
@requires()
async def inbox(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    limit = query_limit(request)
    rows = await request.app[NOTIFY].inbox(principal.user_id, decode_cursor(request), limit + 1)
    rows, cursor = page_of(rows, limit, lambda r: str(r["id"]))
    return respond(InboxPage(items=[InboxItem.model_validate(r) for r in rows], next_cursor=cursor))


@doc("One of the caller's own notifications with its full text (anyone else's: 404)", response=InboxEnvelope)
@requires()
async def inbox_message(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    row = await request.app[NOTIFY].inbox_message(principal.user_id, _path_id(request))
    return respond(InboxEnvelope(message=InboxMessage.model_validate(row)))


def mail_out(doc: dict[str, Any]) -> MailOut:
    received = doc.get("received_at") or datetime.now(UTC)
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    return MailOut(
        id=doc["id"],
        received_at=received,
        mail_from=doc.get("from"),
        to=[str(t) for t in doc.get("to", [])],
        subject=str(doc.get("subject", "")),
        body=str(doc.get("body", "")),
        message_id=str(doc.get("message_id", "")),
    )


@doc(
    "Messages the embedded SMTP sink received, newest first",
    response=MailPage,
    query={"to": Param("a recipient address", ADDRESS_SCHEMA), **PAGE},
)
@it_only
async def mailbox(request: web.Request) -> web.Response:
    to = _text_query(request, "to")
    limit = query_limit(request)
    docs = await request.app[NOTIFY].mailbox(to, decode_cursor(request), limit + 1)
    docs, cursor = page_of(docs, limit, lambda d: str(d["id"]))
    return respond(MailPage(items=[mail_out(d) for d in docs], next_cursor=cursor))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/notifications", list_notifications, allow_head=False)
    r.add_patch(f"{PREFIX}/notifications/{{id}}", patch_notification)
    r.add_get(f"{PREFIX}/queue", queue, allow_head=False)
    r.add_get(f"{PREFIX}/status", status, allow_head=False)
    r.add_get(f"{PREFIX}/templates/{{event}}", get_template, allow_head=False)
    r.add_put(f"{PREFIX}/templates/{{event}}", put_template)
    r.add_get(f"{PREFIX}/inbox", inbox, allow_head=False)
    r.add_get(f"{PREFIX}/inbox/{{id}}", inbox_message, allow_head=False)
    r.add_get(f"{PREFIX}/mailbox", mailbox, allow_head=False)
