"""OpenAPI 3.1, generated from the routes and the pydantic models they declare, and a readable page."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from astro.schemas.common import ErrorBody

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    "400": "invalid input (details name the fields)",
    "401": "not authenticated",
    "403": "not allowed",
    "404": "not found",
    "409": "conflicts with the current state",
    "422": "refused by a business rule",
}


def doc(
    summary: str,
    *,
    body: Any = None,
    response: Any = None,
    status: int = 200,
    tag: str | None = None,
    query: dict[str, str] | None = None,
    public: bool = False,
    content_type: str = "application/json",
) -> Callable[[F], F]:
    """Describe a handler for the OpenAPI document: its body and response models, its query parameters;
    `content_type` for a response that is not JSON (e.g. application/pdf with response=bytes)."""

    def mark(handler: F) -> F:
        handler.__dict__["openapi"] = {
            "summary": summary,
            "body": body,
            "response": response,
            "status": status,
            "tag": tag,
            "query": query or {},
            "public": public,
            "content_type": content_type,
        }
        return handler

    return mark


def _schema(model: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if isinstance(model, type) and hasattr(model, "model_json_schema"):
        _, top = models_json_schema([(model, "serialization")], ref_template=REF)
        defs.update(top.get("$defs", {}))
        return {"$ref": REF.format(model=model.__name__)}
    schema = TypeAdapter(model).json_schema(ref_template=REF)
    defs.update(schema.pop("$defs", {}))
    return schema


def build_openapi(app: web.Application) -> dict[str, Any]:
    defs: dict[str, Any] = {}
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
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(path)
        ]
        params += [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": text,
            }
            for name, text in meta["query"].items()
        ]
        if params:
            op["parameters"] = params
        if meta["body"] is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(meta["body"], defs)}},
            }
        ok: dict[str, Any] = {"description": "success"}
        if meta["response"] is not None:
            media = meta.get("content_type", "application/json")
            ok["content"] = {media: {"schema": _schema(meta["response"], defs)}}
        responses = {str(meta["status"]): ok}
        roles = getattr(route.handler, "roles", None)
        for status, text in ERROR_STATUSES.items():
            if status in ("401", "403") and roles is None:
                continue
            responses[status] = {"description": text, "content": {"application/json": {"schema": error_ref}}}
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
            "schemas": dict(sorted(defs.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


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
