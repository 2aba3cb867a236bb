"""The one request middleware: request id, error body, access log and request metrics."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
import weakref
from typing import Final

import structlog
from aiohttp import web

from astro import logs, origin
from astro.domain.errors import DomainError, InvalidInput, NotFound, Unavailable
from astro.origin import Origin
from web.errors import HTTP_CODES, domain_error_response, error_response
from web.http import Handler
from web.keys import PRINCIPAL, REQUEST_ID
from web.metrics import HttpMetrics
from web.pages import is_page_path, not_found_page

log = structlog.get_logger("astro.web")

REQUEST_ID_HEADER: Final = "X-Request-ID"
NODE_HEADER: Final = "X-Astro-Node"
# Recorded (metrics, access log) for a request whose client closed its connection before the answer
# (the status nginx uses for it); never sent, there is no one to send it to.
CLIENT_GONE: Final = 499
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _service(path: str) -> str:
    """The API a path belongs to: system, agency, booking, finance, notify; else web."""
    parts = path.split("/", 3)
    return parts[2] if len(parts) > 2 and parts[1] == "api" and parts[2] else "web"


def make_middleware(metrics: HttpMetrics, node: str = "") -> web.middleware:  # type: ignore[valid-type]
    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request[REQUEST_ID] = request_id
        origin.set_current(
            Origin(service=_service(request.path), via="api", node=node, request_id=request_id)
        )
        # Every entry made while answering carries the request id, and the caller once authenticated.
        structlog.contextvars.bind_contextvars(request_id=request_id, user_id=_caller_of(request))
        started = time.perf_counter()
        try:
            response = await _answer(request, handler)
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "user_id")
        response.headers[REQUEST_ID_HEADER] = request_id
        elapsed = time.perf_counter() - started
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "unmatched"
        metrics.observe(route, request.method, response.status, elapsed)
        principal = request.get(PRINCIPAL)
        log.info(
            "request",
            method=request.method,
            path=request.path,
            route=route,
            status=response.status,
            duration_ms=round(elapsed * 1000, 2),
            request_id=request_id,
            user_id=principal.user_id if principal else None,
        )
        return response

    return observe


def name_the_node(app: web.Application, node: str) -> None:
    """`X-Astro-Node: <node>` on every response this app sends, as it is prepared: answers, errors,
    404s of unknown paths and WebSocket upgrades alike (several nodes may answer on one address)."""

    async def add_header(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[NODE_HEADER] = node

    app.on_response_prepare.append(add_header)


API_PATHS: Final = ("/api/", "/health", "/ready", "/metrics")
API_HEADERS: Final = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def guard_answers(app: web.Application) -> None:
    """`nosniff` on every response this app sends, and `Cache-Control: no-store` on every answer of the
    APIs and probes (errors included): they carry personal data (tax ids in reports, bookings), which no
    browser or proxy cache may keep. Pages and assets set their own (revalidated) caching."""

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith(API_PATHS):
            response.headers.update(API_HEADERS)
        else:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")

    app.on_response_prepare.append(add_headers)


def refuse_nul(request: web.Request) -> None:
    """No id, name or filter of ours holds a NUL, and PostgreSQL cannot even compare one: a path or query
    parameter with one is 400 naming it, before any handler sees it."""
    fields = {
        name: "must not contain a NUL character"
        for name, value in request.match_info.items()
        if "\x00" in value
    }
    fields |= {
        name: "must not contain a NUL character"
        for name, value in request.query.items()
        if "\x00" in name or "\x00" in value
    }
    if fields:
        raise InvalidInput("a parameter holds a NUL character", {"fields": fields})
    if "\x00" in request.path:  # outside any parameter: no route has such a path
        raise NotFound(f"no such endpoint or object: {request.path!r}")


def _caller_of(request: web.Request) -> logs.Lazy:
    """The authenticated user's id when an entry is made; weak, so tasks started here keep no request."""
    ref = weakref.ref(request)

    def user_id() -> str | None:
        found = ref()
        principal = found.get(PRINCIPAL) if found is not None else None
        return principal.user_id if principal is not None else None

    return logs.Lazy(user_id)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        refuse_nul(request)
        return await handler(request)
    except DomainError as exc:
        if isinstance(exc, Unavailable):  # a store (astro/store translates its driver's errors) or a gateway
            log.warning("unavailable", code=exc.code, message=exc.message, details=exc.details)
        return domain_error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404 and request.method in ("GET", "HEAD") and is_page_path(request.path):
            return not_found_page(request)  # a mistyped address: a page, not an API error body
        code = HTTP_CODES.get(exc.status, "http_error")
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        message = exc.reason if exc.status != 404 else f"no such endpoint: {request.method} {request.path}"
        if exc.status == 405:
            message = (
                f"{request.method} is not allowed on {request.path}; allowed: {exc.headers.get('Allow', '')}"
            )
        return error_response(exc.status, code, message, headers=headers)
    except asyncio.CancelledError:
        raise
    except OSError as exc:
        transport = request.transport
        if isinstance(exc, ConnectionError) and (transport is None or transport.is_closing()):
            # The client went away mid-request (its connection, not a store): nothing to answer.
            log.info("client_gone", error=f"{type(exc).__name__}: {exc}")
            return error_response(CLIENT_GONE, "client_gone", "the client closed the connection")
        # A socket of ours failed outside astro/store (which answers Unavailable itself): try later.
        log.warning("unavailable", error=f"{type(exc).__name__}: {exc}")
        return error_response(
            503,
            "unavailable",
            "a service we depend on is unreachable; retry shortly",
            {"error": type(exc).__name__},
            headers={"Retry-After": "5"},
        )
    except Exception:
        log.exception("unhandled_error", path=request.path)
        return error_response(
            500, "internal", f"something went wrong on our side; quote request id {request[REQUEST_ID]}"
        )
