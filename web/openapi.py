"""OpenAPI 3.1, generated from the routes and the pydantic models they declare, and a readable page."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from astro.schemas.common import ErrorBody

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"
# What each error status means; which of them an operation can answer is worked out per route (_errors).
ERROR_STATUSES: Final = {
    400: "invalid input (details name the fields)",
    401: "not authenticated: no token, or one that is expired or revoked",
    402: "the payment was declined",
    403: "not allowed for this role",
    404: "not found",
    409: "conflicts with the current state",
    413: "the body is too large",
    415: "the body is not application/json",
    422: "refused by a business rule",
    429: "too many attempts; wait Retry-After seconds",
    503: "a store or the payment gateway is unavailable; retry after Retry-After seconds",
}
WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# No parameter, id or filter of ours may hold a NUL (the middleware answers 400 before any handler).
NO_NUL: Final = "^[^\\u0000]*$"


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter: what it means and the JSON Schema of the values the server accepts."""

    text: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string", "pattern": NO_NUL})


def text(description: str) -> Param:
    """Free text: any value without a NUL."""
    return Param(description)


def choice(description: str, values: list[str] | tuple[str, ...] | frozenset[str]) -> Param:
    return Param(description, {"type": "string", "enum": sorted(values)})


def day(description: str) -> Param:
    """A calendar date; year 0 and out-of-range days are refused like any other bad date."""
    return Param(
        description, {"type": "string", "format": "date", "pattern": "^(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
    )


LIMIT: Final = Param("page size (default 50)", {"type": "integer", "minimum": 1, "maximum": 200})
CURSOR: Final = Param(
    "next_cursor of the previous page, as given (opaque: a cursor the API did not give out is 400)",
    {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"},
)
PAGE: Final = {"limit": LIMIT, "cursor": CURSOR}


def doc(
    summary: str,
    *,
    body: Any = None,
    response: Any = None,
    status: int = 200,
    tag: str | None = None,
    query: Mapping[str, Param] | None = None,
    public: bool = False,
    errors: Mapping[int, str] | None = None,
    content_type: str = "application/json",
    also: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """Describe a handler for the OpenAPI document: its body and response models, its query parameters, and
    the error statuses it answers beyond the ones every route of its kind answers (see _errors)."""

    def mark(handler: F) -> F:
        handler.__dict__["openapi"] = {
            "summary": summary,
            "body": body,
            "response": response,
            "status": status,
            "tag": tag,
            "query": dict(query or {}),
            "public": public,
            "errors": dict(errors or {}),
            "content_type": content_type,
            "also": also,  # other media types of the success answer (a file: CSV, NDJSON, PDF)
        }
        return handler

    return mark


def _errors(
    method: str, path_params: list[str], meta: dict[str, Any], roles: list[str] | None
) -> dict[int, str]:
    """The error statuses an operation can answer.

    Every request can be malformed (400: a NUL in any parameter, a bad value) and meet a store that is down
    (503). A route with a role guard answers 401/403; with a path parameter, 404; with a body, 413/415; a
    write can conflict with the current state (409) or break a business rule (422). What a route answers
    beyond that it declares with doc(errors=...)."""
    found = {400, 503}
    if roles is not None:
        found |= {401, 403}
    if path_params:
        found.add(404)
    if meta["body"] is not None:
        found |= {413, 415}
    if method in WRITES:
        found |= {409, 422}
    texts = {status: ERROR_STATUSES[status] for status in found}
    texts.update(meta["errors"])
    return dict(sorted(texts.items()))


class _BodySchema(GenerateJsonSchema):
    """A request body's schema as validated: a string without a pattern of its own holds no NUL (Request
    refuses one in any field); the ones with a pattern exclude it there."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        found = super().str_schema(schema)
        found.setdefault("pattern", NO_NUL)
        return found


def _schema(model: Any, defs: dict[str, Any], *, body: bool = False) -> dict[str, Any]:
    """A model's JSON Schema: a body's as it is validated, a response's as it is serialized."""
    mode: JsonSchemaMode = "validation" if body else "serialization"
    generator = _BodySchema if body else GenerateJsonSchema
    if isinstance(model, type) and hasattr(model, "model_json_schema"):
        _, top = models_json_schema([(model, mode)], ref_template=REF, schema_generator=generator)
        defs.update(top.get("$defs", {}))
        return {"$ref": REF.format(model=model.__name__)}
    schema = TypeAdapter(model).json_schema(ref_template=REF, mode=mode, schema_generator=generator)
    defs.update(schema.pop("$defs", {}))
    return schema


def build_openapi(app: web.Application) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    body_defs: dict[str, Any] = {}  # a model in a body and a response is shown as a body takes it
    paths: dict[str, dict[str, Any]] = {}
    error_ref = _schema(ErrorBody, defs)
    for route in app.router.routes():
        meta = getattr(route.handler, "openapi", None)
        if meta is None or route.resource is None:
            continue
        path = route.resource.canonical
        op: dict[str, Any] = {
            "summary": meta["summary"],
            "operationId": re.sub(r"[^a-z0-9]+", "_", f"{route.method} {path}".lower()).strip("_"),
            "tags": [meta["tag"] or path.split("/")[2 if path.startswith("/api/") else 1]],
        }
        path_params = _path_params(path)
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": ID_SCHEMA} for name in path_params
        ]
        params += [
            {
                "name": name,
                "in": "query",
                "required": False,
                # An empty parameter is the same as an absent one, everywhere (what a blank form field sends).
                "allowEmptyValue": True,
                "schema": dict(p.schema),
                "description": p.text,
            }
            for name, p in meta["query"].items()
        ]
        if params:
            op["parameters"] = params
        if meta["body"] is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(meta["body"], body_defs, body=True)}},
            }
        ok: dict[str, Any] = {"description": "success"}
        if meta["response"] is not None:
            ok["content"] = {meta["content_type"]: {"schema": _schema(meta["response"], defs)}}
        elif meta["content_type"] != "application/json":
            ok["content"] = {meta["content_type"]: {"schema": {"type": "string"}}}
        for media_type in meta["also"]:
            ok.setdefault("content", {})[media_type] = {"schema": {"type": "string"}}
        responses = {str(meta["status"]): ok}
        roles = getattr(route.handler, "roles", None)
        for status, about in _errors(route.method, path_params, meta, roles).items():
            answer: dict[str, Any] = {
                "description": about,
                "content": {"application/json": {"schema": error_ref}},
            }
            if status in (429, 503):
                answer["headers"] = {"Retry-After": RETRY_AFTER}
            responses[str(status)] = answer
        op["responses"] = responses
        if roles is not None:
            op["security"] = [{"bearer": []}]
            op["description"] = "Roles: " + ", ".join(roles)
        paths.setdefault(path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AstroBookings",
            "version": "0.1.0",
            "description": "Seats on rocket launches. Errors are always {error: {code, message, details}}.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted({**defs, **body_defs}.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


# Our ids are ULID-like (usr_01…), slugs, numbers or report keys: letters, digits, '_', '-' and '.'.
ID_SCHEMA: Final = {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$", "maxLength": 200}
RETRY_AFTER: Final = {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}


def _path_params(path: str) -> list[str]:
    return [name.split(":")[0] for name in re.findall(r"\{([^}]+)\}", path)]  # also /{id}.pdf


DOCS_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#111}table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #ddd;padding:.35rem;text-align:left;vertical-align:top}"
    "pre{background:#f6f6f6;padding:.5rem;overflow:auto}"
)
# The page runs no script and loads nothing: its one inline style is allowed by its hash, all else refused.
DOCS_CSP: Final = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(DOCS_STYLE.encode()).digest()).decode()}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_HEADERS: Final = {
    "Content-Security-Policy": DOCS_CSP,
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def render_docs(spec: dict[str, Any]) -> str:
    """A plain, readable HTML page of every endpoint and schema (no CDN: it works offline)."""
    esc = html.escape
    rows = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            body_name = body.get("$ref", "").rsplit("/", 1)[-1] if body else ""
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            rows.append(
                f"<tr><td><code>{esc(method.upper())}</code></td><td><code>{esc(path)}</code></td>"
                f"<td>{esc(op['summary'])}</td><td>{esc(op.get('description', 'public'))}</td>"
                f"<td>{esc(body_name)}</td><td>{esc(', '.join(op['responses']))}</td>"
                f"<td>{esc(params)}</td></tr>"
            )
    schemas = "".join(
        f"<details id='{esc(name)}'><summary><code>{esc(name)}</code></summary><pre>"
        f"{esc(_pretty(schema))}</pre></details>"
        for name, schema in spec["components"]["schemas"].items()
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>AstroBookings API</title>
<style>{DOCS_STYLE}</style></head><body>
<h1>AstroBookings API</h1><p>The machine-readable document: <a href="/api/openapi.json">/api/openapi.json</a>
(OpenAPI {esc(spec["openapi"])}).
Send <code>Authorization: Bearer &lt;token&gt;</code> where roles are listed.
Errors are always <code>{{"error": {{"code", "message", "details"}}}}</code>.</p>
<table><thead><tr><th>Method</th><th>Path</th><th>What</th><th>Who</th><th>Body</th><th>Answers</th>
<th>Parameters</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<h2>Schemas</h2>{schemas}</body></html>"""


def _pretty(schema: Any) -> str:
    import json

    return json.dumps(schema, indent=2)


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build_openapi(request.app))


async def openapi_docs(request: web.Request) -> web.Response:
    return web.Response(
        text=render_docs(build_openapi(request.app)), content_type="text/html", headers=DOCS_HEADERS
    )
