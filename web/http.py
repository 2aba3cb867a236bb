"""Handler helpers: parse a body or query into a model, answer a model as JSON, check the caller."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import date
from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from astro import origin
from astro.domain.errors import DomainError, Forbidden, InvalidInput, Unauthenticated, UnsupportedMediaType
from astro.domain.users import Principal, Role
from astro.services.idempotency import InFlight, InProgress, StoredResponse
from web.errors import domain_error_response, status_of
from web.keys import AUTH, IDEMPOTENCY, PRINCIPAL

T = TypeVar("T")
MAX_LIMIT: Final = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Dotted field paths and what is wrong with each; a discriminated union's tag is left out."""
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"] if p not in ("traveler", "agency", "function-after")]
        if err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
            loc = [*loc, "role"]
        name = ".".join(loc) or "body"
        fields.setdefault(name, err["msg"])
    return fields


# One TypeAdapter per body model: building one costs more than validating a body.
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(model: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(model)
    return adapter


async def read_body(request: web.Request, model: type[T] | TypeAdapter[T]) -> T:
    """The JSON body validated into `model`; any problem is 400 invalid_input naming the fields."""
    raw = await request.read()
    if not raw:
        raise InvalidInput("a JSON body is required", {"fields": {"body": "missing"}})
    require_json(request)
    adapter: TypeAdapter[T] = model if isinstance(model, TypeAdapter) else _adapter(model)
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise InvalidInput("the body is not valid JSON", {"fields": {"body": "malformed JSON"}}) from None
        raise InvalidInput("some fields are missing or wrong", {"fields": field_errors(exc)}) from None


def require_json(request: web.Request) -> None:
    """415 unless the body is declared JSON: a form or text/plain body is what a page of another site can
    send without a CORS preflight (a cross-site login, a lockout), so no JSON endpoint reads one."""
    if not is_json(request.content_type):
        given = request.headers.get("Content-Type") or "no Content-Type"
        raise UnsupportedMediaType(
            f"send the body as application/json (got {given})", {"content_type": request.content_type}
        )


def is_json(media_type: str) -> bool:
    """application/json, or a JSON-based type such as application/merge-patch+json."""
    kind, _, subtype = media_type.lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def query_limit(request: web.Request, default: int = 50) -> int:
    """`limit`, 1..200; an empty parameter is the same as an absent one (as for every query parameter)."""
    raw = request.query.get("limit")
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}", {"fields": {"limit": raw}})
    return int(raw)


DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def query_date(request: web.Request, name: str) -> date | None:
    """A YYYY-MM-DD query parameter (none when absent or empty)."""
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        if not DAY.fullmatch(raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a date like 2027-01-31", {"fields": {name: raw}}) from None


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([value]).encode()).decode().rstrip("=")


def decode_cursor(request: web.Request) -> str | None:
    raw = request.query.get("cursor")
    if not raw:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))[0]
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError
        return value
    except (ValueError, IndexError, TypeError, KeyError):
        raise InvalidInput("cursor is not one this API gave out", {"fields": {"cursor": raw}}) from None


def page_of(rows: list[T], limit: int, key: Callable[[T], str]) -> tuple[list[T], str | None]:
    """The first `limit` of up to `limit + 1` rows, and the cursor of the next page when there is one."""
    if len(rows) > limit:
        return rows[:limit], encode_cursor(key(rows[limit - 1]))
    return rows, None


def json_body(model: BaseModel) -> bytes:
    """A response model as the JSON bytes of a body."""
    return model.__pydantic_serializer__.to_json(model)


def respond(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=json_body(model), status=status, content_type="application/json")


async def authenticate(request: web.Request) -> Principal:
    """The caller of this request from its Bearer token (checked once per request)."""
    if PRINCIPAL in request:
        return request[PRINCIPAL]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("log in first: send Authorization: Bearer <token>")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be: Bearer <token>", code="invalid_token")
    principal = await request.app[AUTH].authenticate(token.strip())
    request[PRINCIPAL] = principal
    origin.set_current(replace(origin.current(), user_id=principal.user_id))
    return principal


def requires(*roles: Role) -> Callable[[Handler], Handler]:
    """The role guard: a handler for these roles only (none named: any authenticated user)."""
    allowed = frozenset(roles)

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = await authenticate(request)
            if allowed and principal.role not in allowed:
                raise Forbidden(f"this needs the role {' or '.join(sorted(allowed))}")
            return await handler(request)

        guarded.__doc__ = handler.__doc__
        guarded.__name__ = handler.__name__
        guarded.__dict__.update(handler.__dict__)
        guarded.__dict__["roles"] = sorted(allowed) if allowed else ["any"]
        return guarded

    return wrap


def role_list(roles: Iterable[Role]) -> list[str]:
    return [r.value for r in roles]


IDEMPOTENCY_HEADER: Final = "Idempotency-Key"


Resume = Callable[[web.Request, str], Awaitable[web.StreamResponse | None]]
IDEMPOTENCY_CLAIM: Final = web.RequestKey("idempotency_claim", tuple)  # (user id, key) this request holds


def idempotent(handler: Handler) -> Handler:
    """Honour Idempotency-Key: a replay gets the first response; the same key with another body is 422."""
    return idempotent_resuming(None)(handler)


def idempotent_resuming(resume: Resume | None) -> Callable[[Handler], Handler]:
    """idempotent(), for a request that starts a payment attempt.

    A key whose first request has not answered -- it may have died in a crash -- is decided by what that
    request started: `resume(request, attempt_id)` answers from its payment attempt (or None: the attempt
    ended without its booking, so the retry runs afresh); without an attempt the retry waits (409), and
    takes the key over once the first request has shown no sign of life for 30 seconds."""

    def wrap(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            key = request.headers.get(IDEMPOTENCY_HEADER)
            if key is None:
                return await handler(request)
            if not 1 <= len(key) <= 255:
                raise InvalidInput(
                    "Idempotency-Key must have 1 to 255 characters", {"fields": {IDEMPOTENCY_HEADER: key}}
                )
            principal = await authenticate(request)
            body = await request.read()
            if body:
                require_json(request)  # before the key is claimed: a corrected retry must not replay a 415
            digest = hashlib.sha256(f"{request.method} {request.path}\n".encode() + body).hexdigest()
            store = request.app[IDEMPOTENCY]
            user_id = principal.user_id
            found = await store.begin(user_id, key, digest)
            if isinstance(found, StoredResponse):
                return web.Response(
                    body=found.body,
                    status=found.status,
                    content_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
            run = handler
            if isinstance(found, InFlight):
                attempt_id = found.attempt_id
                if attempt_id is None or resume is None:
                    raise InProgress()

                async def resumed(request: web.Request) -> web.StreamResponse:
                    answer = await resume(request, attempt_id)
                    if answer is not None:
                        return answer
                    if not await store.restart(user_id, key, attempt_id):
                        raise InProgress()
                    return await handler(request)  # the attempt ended without its booking: afresh

                run = resumed
            request[IDEMPOTENCY_CLAIM] = (user_id, key)
            try:
                response = await run(request)
            except InProgress:
                raise  # not this key's answer: the first request's is still to come
            except DomainError as exc:
                if status_of(exc) >= 500:
                    await store.abandon(user_id, key)  # kept when a payment attempt is tied to it
                    raise
                response = domain_error_response(exc)
            except BaseException:
                await store.abandon(user_id, key)
                raise
            if isinstance(response, web.Response) and response.body is not None and response.status < 500:
                await store.finish(user_id, key, response.status, bytes(response.body))  # type: ignore[arg-type]
            else:
                await store.abandon(user_id, key)
            return response

        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        wrapped.__dict__.update(handler.__dict__)
        return wrapped

    return wrap
