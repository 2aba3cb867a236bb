"""Domain errors to HTTP: one table of statuses and the DESIGN 6 error body."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from astro.domain import errors as e

STATUS: Final[dict[type[e.DomainError], int]] = {
    e.InvalidInput: 400,
    e.Unauthenticated: 401,
    e.PaymentDeclined: 402,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.UnsupportedMediaType: 415,
    e.RuleViolation: 422,
    e.TooManyAttempts: 429,
    e.Unavailable: 503,
}

# Router and aiohttp errors that are the client's doing, by status.
HTTP_CODES: Final = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def status_of(error: e.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return web.json_response(body, status=status, headers=headers)


def domain_error_response(error: e.DomainError) -> web.Response:
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:  # 429, 503, and a 409 that passes by itself (idempotency_in_progress)
        headers["Retry-After"] = str(retry_after)
    if isinstance(error, e.Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="astrobookings"'
    return error_response(status_of(error), error.code, error.message, error.details, headers)
