"""SystemAPI /api/system/auth: changing a password, and resetting a forgotten one by e-mail."""

from __future__ import annotations

import structlog
from aiohttp import web

from astro.schemas.system import AuthOut, ChangePasswordRequest, PasswordResetConfirm, PasswordResetRequest
from web.cookies import keep_session
from web.http import authenticate, read_body, requires, respond
from web.keys import AUTH, BACKGROUND, DISPATCHER, RESETS
from web.openapi import doc
from web.system_api import PREFIX, session_out

log = structlog.get_logger("astro.auth")


@doc(
    "Change the caller's password: the current one is checked (counted like a login attempt: 429 past "
    "the limits; wrong is 422 wrong_password naming current_password), the new one must be strong (422 "
    "weak_password naming new_password). Every other token and session of the user is revoked; the caller "
    "gets a new token (and a new refresh cookie)",
    body=ChangePasswordRequest,
    response=AuthOut,
    errors={429: "too_many_attempts: too many wrong current passwords; wait Retry-After seconds"},
)
@requires()
async def change_password(request: web.Request) -> web.Response:
    data = await read_body(request, ChangePasswordRequest)
    principal = await authenticate(request)
    session = await request.app[AUTH].change_password(
        principal, data.current_password, data.new_password, request.remote or "unknown"
    )
    response = respond(session_out(session))
    keep_session(request, response, session)
    return response


@doc(
    "Ask for a password reset link: 202 whether or not an account has this email (rate-limited like a "
    "login: 429 with Retry-After). An account's login address gets a link to /auth/reset?token=..., "
    "valid 30 minutes and once",
    body=PasswordResetRequest,
    status=202,
    public=True,
    errors={429: "too_many_attempts: wait Retry-After seconds"},
)
async def request_reset(request: web.Request) -> web.Response:
    data = await read_body(request, PasswordResetRequest)
    resets = request.app[RESETS]
    await resets.request(data.email, request.remote or "unknown")

    async def send() -> None:
        # After the answer: an address with an account and one without answer alike.
        try:
            await resets.send(data.email)
        except Exception:
            log.exception("password_reset_not_queued")
            return
        dispatcher = request.app.get(DISPATCHER)
        if dispatcher is not None:
            dispatcher.wake()

    request.app[BACKGROUND].spawn(send(), name="password-reset")
    return web.Response(status=202)


@doc(
    "Set a new password with the token of a reset link (422 invalid_reset_token, details.reason unknown, "
    "used or expired; 422 weak_password when it is weak, which spends nothing). The link is spent and "
    "every token and session of the user is revoked",
    body=PasswordResetConfirm,
    status=204,
    public=True,
)
async def confirm_reset(request: web.Request) -> web.Response:
    data = await read_body(request, PasswordResetConfirm)
    await request.app[RESETS].confirm(data.token, data.password)
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/auth/password", change_password)
    app.router.add_post(f"{PREFIX}/auth/password-reset", request_reset)
    app.router.add_post(f"{PREFIX}/auth/password-reset/confirm", confirm_reset)
