"""The five browser apps: their pages by URL, and the assets of web/static under /static/."""

from __future__ import annotations

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
