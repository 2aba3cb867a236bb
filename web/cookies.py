"""The browser session's refresh token cookie: HttpOnly, SameSite=Strict, Secure over HTTPS, sent only
to the auth API."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from astro.services.auth import Session
from web.keys import AUTH, SETTINGS

REFRESH_COOKIE: Final = "astro_refresh"
COOKIE_PATH: Final = "/api/system/auth"


def refresh_token_of(request: web.Request) -> str | None:
    """The refresh token the browser sent, if any."""
    value = request.cookies.get(REFRESH_COOKIE, "").strip()
    return value or None


def is_https(request: web.Request) -> bool:
    """Served over HTTPS: the connection itself, a proxy in front saying so (X-Forwarded-Proto), or a
    public URL that is https. (A client lying about it only gets a cookie its browser will not keep on
    plain HTTP.)"""
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return proto == "https" or request.app[SETTINGS].base_url.startswith("https://")


def keep_session(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    """Give the browser the session's new refresh token (a fresh login, or a rotation)."""
    if session.refresh_token is None:
        return
    response.set_cookie(
        REFRESH_COOKIE,
        session.refresh_token,
        path=COOKIE_PATH,
        max_age=request.app[AUTH].session_ttl,
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def drop_session(request: web.Request, response: web.StreamResponse) -> None:
    """Make the browser forget the refresh token."""
    response.del_cookie(
        REFRESH_COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict", secure=is_https(request)
    )
