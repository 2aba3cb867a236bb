"""The five browser apps: their pages by URL, and the assets of web/static under /static/."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Final

from aiohttp import hdrs, web

from web.http import Handler

STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_PREFIX: Final = "/static/"
# URL -> the page that answers it; every app routes inside itself with the URL fragment.
PAGES: Final = {
    "/": "public/index.html",
    "/launches/{slug}": "public/launch.html",
    "/auth": "auth/index.html",
    "/auth/forgot": "auth/index.html",  # ask for a password reset link
    "/auth/reset": "auth/index.html",  # the link's target: choose a new password
    "/auth/password": "auth/index.html",  # change the password (logged in)
    "/traveler": "traveler/index.html",
    "/agency": "agency/index.html",
    "/system": "system/index.html",
}
# Text assets are UTF-8; JavaScript gets the type of RFC 9239, whatever the system's mime table says.
TEXT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
_HOST: Final = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
PAGE_HEADERS: Final = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def page(name: str) -> Handler:
    """A handler answering one app's index page."""
    path = STATIC_DIR / name

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {
            **PAGE_HEADERS,
            hdrs.CONTENT_TYPE: TEXT_TYPES[".html"],
            "Content-Security-Policy": content_security_policy(request),
        }
        return web.FileResponse(path, headers=headers)

    handler.__name__ = f"page_{name.replace('/', '_').removesuffix('.html')}"
    return handler


def content_security_policy(request: web.Request) -> str:
    """Only our own scripts, styles and images; the WebSocket on this host."""
    host = request.host if _HOST.match(request.host) else ""
    sockets = f" ws://{host} wss://{host}" if host else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


NOT_FOUND_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Page not found · AstroBookings</title>
<link rel="icon" href="/static/common/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/common/style.css">
</head>
<body>
<header class="site-header"><div class="bar">
<a href="/" class="brand" aria-label="AstroBookings home"><span aria-hidden="true" class="logo">◐</span>
AstroBookings</a>
</div></header>
<main id="main" data-app="not-found">
<section class="panel narrow" data-testid="not-found">
<h1>Page not found</h1>
<p>There is no page at <code class="long-text" data-testid="not-found-path">{path}</code>.
The address may be mistyped, or the page has moved.</p>
<div class="actions">
<a class="btn primary" href="/" data-testid="not-found-home">See upcoming launches</a>
<a class="btn" href="/auth">Log in to your account</a>
</div>
</section>
</main>
</body>
</html>
"""


def is_page_path(path: str) -> bool:
    """A path a person would type or follow (not an API, probe, WebSocket or asset)."""
    return not path.startswith(("/api/", "/health", "/ready", "/metrics", "/ws", STATIC_PREFIX))


def not_found_page(request: web.Request) -> web.Response:
    """The HTML 404 of a mistyped address: what happened and where to go instead."""
    body = NOT_FOUND_PAGE.format(path=html.escape(request.path))
    headers = {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy(request)}
    return web.Response(status=404, text=body, content_type="text/html", charset="utf-8", headers=headers)


async def asset_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: exact text types, and revalidation so a new version is seen at once."""
    if not request.path.startswith(STATIC_PREFIX) or not isinstance(response, web.FileResponse):
        return
    suffix = Path(request.path).suffix.lower()
    if response.status == 200 and suffix in TEXT_TYPES:
        response.headers[hdrs.CONTENT_TYPE] = TEXT_TYPES[suffix]
    elif response.status == 404:  # a missing asset: a plain, empty 404, not an API error body
        response.headers[hdrs.CONTENT_TYPE] = "text/plain; charset=utf-8"
    response.headers.setdefault("Cache-Control", "no-cache")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def setup(app: web.Application) -> None:
    """Serve the apps' pages and web/static; unknown assets are 404 like any other missing thing."""
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, name="static", follow_symlinks=False)
    for url, name in PAGES.items():
        app.router.add_get(url, page(name))
    app.on_response_prepare.append(asset_headers)
