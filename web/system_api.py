"""SystemAPI /api/system: authentication and user administration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from astro.domain.errors import InvalidInput, Unauthenticated
from astro.domain.users import Role, User
from astro.schemas.system import (
    AuthOut,
    CreateEmployeeRequest,
    LoginRequest,
    NodeList,
    NodeOut,
    PatchUserRequest,
    RegisterRequest,
    UserEnvelope,
    UserOut,
    UserPage,
    ValidateOut,
    ValidateRequest,
)
from astro.services.auth import Session
from web import monitor_api
from web.cookies import drop_session, keep_session, refresh_token_of
from web.errors import domain_error_response
from web.http import authenticate, decode_cursor, page_of, query_limit, read_body, requires, respond
from web.keys import AUTH, NODES, SCHEDULER, SETTINGS
from web.openapi import PAGE, choice, doc

PREFIX = "/api/system"
REGISTER = TypeAdapter(RegisterRequest)


def user_out(user: User, profile: dict[str, Any] | None = None) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role.value,
        vip=user.vip,
        disabled=user.disabled,
        verified=user.verified if user.role is Role.AGENCY else None,
        created_at=user.created_at,
        profile=profile,
    )


def session_out(session: Session) -> AuthOut:
    return AuthOut(
        user=user_out(session.user, session.profile),
        token=session.token,
        expires_at=datetime.fromtimestamp(session.expires_at, UTC),
    )


@doc(
    "Register a traveler or an agency with its profile",
    body=RegisterRequest,
    response=AuthOut,
    status=201,
    public=True,
)
async def register(request: web.Request) -> web.Response:
    data = await read_body(request, REGISTER)
    session = await request.app[AUTH].register(
        email=data.email,
        password=data.password,
        name=data.name,
        role=Role(data.role),
        profile=data.profile.model_dump(),
    )
    response = respond(session_out(session), status=201)
    keep_session(request, response, session)
    return response


@doc(
    "Log in (a JSON body only, else 415). Every attempt counts before the password is checked: past "
    "5 a minute for one email, or ASTRO_LOGIN_IP_LIMIT (20) failures a minute from one client address, "
    "the answer is 429 with Retry-After, the right password too. Besides the access token in the body, "
    "a browser session starts: its refresh token in the HttpOnly, SameSite=Strict cookie astro_refresh "
    "(Path=/api/system/auth; Secure over HTTPS)",
    body=LoginRequest,
    response=AuthOut,
    public=True,
    errors={
        401: "invalid_credentials, or user_disabled",
        429: "too_many_attempts: for this email or from this address; wait Retry-After seconds",
    },
)
async def login(request: web.Request) -> web.Response:
    # read_body refuses what is not JSON (415): a form or text/plain body can be sent cross-site without
    # a preflight (login CSRF, lock-outs).
    data = await read_body(request, LoginRequest)
    session = await request.app[AUTH].login(data.email, data.password, request.remote or "unknown")
    response = respond(session_out(session))
    keep_session(request, response, session)
    return response


@doc(
    "Log out: the Bearer token is revoked at once; the browser session of the refresh cookie (when it is "
    "the same user's) ends with every access token it issued, and the cookie is cleared. Either the "
    "token or the cookie is enough",
    status=204,
    public=True,
    errors={401: "neither a valid token nor a refresh cookie"},
)
async def logout(request: web.Request) -> web.Response:
    auth = request.app[AUTH]
    cookie = refresh_token_of(request)
    user_id: str | None = None
    if "Authorization" in request.headers or cookie is None:
        try:
            principal = await authenticate(request)
        except Unauthenticated:
            if cookie is None:
                raise
        else:
            await auth.logout(principal)
            user_id = principal.user_id
    if cookie is not None:
        await auth.end_session(cookie, user_id=user_id)
    response = web.Response(status=204)
    drop_session(request, response)
    return response


@doc(
    "Log out everywhere: every token and browser session of the caller (this one too, on every node and "
    "device) is revoked",
    status=204,
)
@requires()
async def logout_all(request: web.Request) -> web.Response:
    await request.app[AUTH].logout_all(await authenticate(request))
    response = web.Response(status=204)
    drop_session(request, response)
    return response


@doc("The caller, with the profile", response=UserEnvelope)
@requires()
async def me(request: web.Request) -> web.Response:
    user, profile = await request.app[AUTH].me(await authenticate(request))
    return respond(UserEnvelope(user=user_out(user, profile)))


@doc(
    "A new access token. With a Bearer token (API clients): for that token, which is revoked by it. "
    "Without one (browsers): for the refresh cookie, which is rotated -- a new one comes with the answer. "
    "Either is single use: of parallel refreshes with one token one wins, the others answer 401 "
    "token_revoked; a refresh cookie used again after its rotation ends its whole session",
    response=AuthOut,
    public=True,
    errors={401: "the token or the refresh cookie is expired, revoked or spent"},
)
async def refresh(request: web.Request) -> web.Response:
    auth = request.app[AUTH]
    cookie = refresh_token_of(request)
    if "Authorization" in request.headers or cookie is None:
        return respond(session_out(await auth.refresh(await authenticate(request))))
    try:
        session = await auth.refresh_session(cookie)
    except Unauthenticated as exc:  # the session ended: the browser forgets its cookie
        response = domain_error_response(exc)
        drop_session(request, response)
        return response
    response = respond(session_out(session))
    keep_session(request, response, session)
    return response


@doc("Is this token valid now? (for other services)", body=ValidateRequest, response=ValidateOut, public=True)
async def validate(request: web.Request) -> web.Response:
    data = await read_body(request, ValidateRequest)
    found = await request.app[AUTH].validate(data.token)
    if found is None:
        return respond(ValidateOut(valid=False))
    user, expires = found
    return respond(
        ValidateOut(valid=True, user=user_out(user), expires_at=datetime.fromtimestamp(expires, UTC))
    )


@doc(
    "Users, by id; filter by role",
    response=UserPage,
    query={"role": choice("users of this role", [r.value for r in Role]), **PAGE},
)
@requires(Role.IT)
async def list_users(request: web.Request) -> web.Response:
    limit = query_limit(request)
    role_raw = request.query.get("role")
    try:
        role = Role(role_raw) if role_raw else None
    except ValueError:
        raise InvalidInput(
            "role must be traveler, agency, finance or it", {"fields": {"role": role_raw}}
        ) from None
    users = await request.app[AUTH].list_users(role=role, after=decode_cursor(request), limit=limit + 1)
    users, cursor = page_of(users, limit, lambda u: u.id)
    return respond(UserPage(items=[user_out(u) for u in users], next_cursor=cursor))


@doc("Create a finance or IT employee", body=CreateEmployeeRequest, response=UserEnvelope, status=201)
@requires(Role.IT)
async def create_user(request: web.Request) -> web.Response:
    data = await read_body(request, CreateEmployeeRequest)
    user = await request.app[AUTH].create_employee(
        email=data.email, password=data.password, name=data.name, role=Role(data.role)
    )
    return respond(UserEnvelope(user=user_out(user)), status=201)


@doc(
    "Set or clear a user's VIP or disabled flag, rename them, or verify a pending agency. IT cannot "
    "disable itself (409 cannot_disable_self) nor the last active IT account (409 last_it_account)",
    body=PatchUserRequest,
    response=UserEnvelope,
)
@requires(Role.IT)
async def patch_user(request: web.Request) -> web.Response:
    data = await read_body(request, PatchUserRequest)
    it = await authenticate(request)
    user_id = request.match_info["id"]
    user = await request.app[AUTH].set_flags(
        user_id,
        vip=data.vip,
        disabled=data.disabled,
        name=data.name,
        verified=data.verified,
        by=it,
    )
    if data.verified:  # stored with the user first; this repeats harmlessly when a retry comes
        await request.app[SCHEDULER].agency_verified(user_id, it.user_id)
    return respond(UserEnvelope(user=user_out(user)))


@doc(
    "The platform's nodes: alive (a heartbeat within 3 leases, not stopped), the launches each owns",
    response=NodeList,
)
@requires(Role.IT)
async def list_nodes(request: web.Request) -> web.Response:
    status = request.app[NODES]
    rows = await status.nodes()
    return respond(
        NodeList(
            items=[NodeOut(**row) for row in rows],
            lease_seconds=status.lease_seconds,
            node=request.app[SETTINGS].node,
        )
    )


def setup(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/auth/register", register)
    app.router.add_post(f"{PREFIX}/auth/login", login)
    app.router.add_post(f"{PREFIX}/auth/logout", logout)
    app.router.add_post(f"{PREFIX}/auth/logout-all", logout_all)
    app.router.add_get(f"{PREFIX}/auth/me", me, allow_head=False)
    app.router.add_post(f"{PREFIX}/auth/refresh", refresh)
    app.router.add_post(f"{PREFIX}/auth/validate", validate)
    app.router.add_get(f"{PREFIX}/users", list_users, allow_head=False)
    app.router.add_post(f"{PREFIX}/users", create_user)
    app.router.add_patch(f"{PREFIX}/users/{{id}}", patch_user)
    app.router.add_get(f"{PREFIX}/nodes", list_nodes, allow_head=False)
    app.router.add_get(f"{PREFIX}/logs", monitor_api.list_logs, allow_head=False)
    app.router.add_get(f"{PREFIX}/logs/export", monitor_api.export_logs, allow_head=False)
    app.router.add_get(f"{PREFIX}/metrics", monitor_api.metric_series, allow_head=False)
